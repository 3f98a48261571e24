"""Azure container client construction: exactly one of account key, SAS token, or anonymous access."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.storage.blob import ContainerClient, ExponentialRetry

from rivet.config.model import DestinationConfig
from rivet.destinations._config import check_endpoint, read_env, require
from rivet.destinations.azure import AzureDestination
from rivet.destinations.azure_errors import AzureErrors
from rivet.errors import ConfigError
from rivet.log import add_secret


def _auth_mode(cfg: DestinationConfig) -> str:
    chosen = [
        name
        for name, on in (
            ("account_key_env", bool(cfg.account_key_env)),
            ("sas_token_env", bool(cfg.sas_token_env)),
            ("allow_anonymous", cfg.allow_anonymous),
        )
        if on
    ]
    if len(chosen) > 1:
        fields = " and ".join(chosen)
        raise ConfigError("destination", f"{fields} are {'both' if len(chosen) == 2 else 'all'} set", "set exactly one")
    if not chosen:
        raise ConfigError(
            "destination.account_key_env",
            "an azure destination needs one of account_key_env, sas_token_env or allow_anonymous: true",
            "set exactly one",
        )
    return chosen[0]


def open_azure(cfg: DestinationConfig, prefix: str, env: Mapping[str, str]) -> AzureDestination:
    container = require(cfg.container or cfg.bucket, "container", "azure")
    mode = _auth_mode(cfg)
    endpoint = check_endpoint(cfg.endpoint)
    if endpoint is None:
        account = require(cfg.account_name, "account_name", "azure")
        endpoint = f"https://{account}.blob.core.windows.net"
    credential: Any = None
    secrets: tuple[str, ...] = ()
    if mode == "account_key_env":
        account = require(cfg.account_name, "account_name", "azure (with account_key_env)")
        key = read_env(env, "account_key_env", cfg.account_key_env) or ""
        add_secret(key)  # registered the moment it is read: every later message is masked
        credential = {"account_name": account, "account_key": key}
        secrets = (key,)
        hint = "destination.account_name/account_key_env"
    elif mode == "sas_token_env":
        raw = read_env(env, "sas_token_env", cfg.sas_token_env) or ""
        sas = raw.strip().lstrip("?")
        add_secret(raw)
        add_secret(sas)
        if "sig=" not in sas:
            raise ConfigError(
                "destination.sas_token_env",
                f"the value of {cfg.sas_token_env} does not look like a SAS token (no sig=)",
                "use the query string of a container SAS, with or without the leading '?'",
            )
        credential = sas  # a string SAS rides on every URL, including a copy's source URL
        secrets = (raw, sas)
        hint = "destination.sas_token_env (the SAS needs read, add, create, write, delete and list; is it expired?)"
    else:
        hint = "destination.allow_anonymous (the container must allow public access; writes need a key or SAS)"
    client = ContainerClient(
        account_url=endpoint,
        container_name=container,
        credential=credential,
        connection_timeout=10,
        read_timeout=120,
        # The SDK's default backoff (15 s, growing) would stall a dead endpoint for minutes: ~2, 5, 11 s instead.
        retry_policy=ExponentialRetry(initial_backoff=2, increment_base=3, retry_total=3),
    )
    return AzureDestination(client, prefix, AzureErrors(container, endpoint, hint, secrets))
