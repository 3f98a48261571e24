"""S3 client construction for the three auth modes: explicit keys, a named profile, or the default chain."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ProfileNotFound

from rivet.config.model import DestinationConfig
from rivet.destinations._config import check_endpoint, read_env, require
from rivet.destinations.s3 import S3Destination
from rivet.destinations.s3_errors import S3Errors
from rivet.errors import ConfigError
from rivet.log import add_secret

# SeaweedFS (and other S3-compatibles) reject the newer default checksum headers on multipart uploads;
# and botocore computes no checksum of its own: every request that carries bytes carries ours
# (destinations/s3.py), so botocore adding one would hash every byte again.
CLIENT_CONFIG = dict(
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
    retries={"max_attempts": 3, "mode": "standard"},
    connect_timeout=10,
    read_timeout=120,
)


def _secret(value: str | None) -> str | None:
    """Register a credential for redaction the moment it is read (the access key id is not secret)."""
    add_secret(value)
    return value


def _session(env: Mapping[str, str], profile: str | None) -> boto3.session.Session:
    """A session that honours the given env mapping's AWS config file locations, not only os.environ's."""
    core = botocore.session.Session()
    if env is not os.environ:
        for var, setting in (("AWS_CONFIG_FILE", "config_file"), ("AWS_SHARED_CREDENTIALS_FILE", "credentials_file")):
            if env.get(var):
                core.set_config_variable(setting, env[var])
    if profile:
        core.set_config_variable("profile", profile)
    return boto3.session.Session(botocore_session=core)


def open_s3(cfg: DestinationConfig, prefix: str, env: Mapping[str, str]) -> S3Destination:
    bucket = require(cfg.bucket, "bucket", "s3")
    endpoint = check_endpoint(cfg.endpoint)
    if bool(cfg.access_key_env) != bool(cfg.secret_key_env):
        raise ConfigError(
            "destination.access_key_env",
            "access_key_env and secret_key_env must be set together",
            "set both or neither",
        )
    if cfg.session_token_env and not cfg.access_key_env:
        raise ConfigError("destination.session_token_env", "needs access_key_env and secret_key_env", "set them too")
    if cfg.aws_profile and cfg.access_key_env:
        raise ConfigError(
            "destination.aws_profile", "aws_profile and access_key_env/secret_key_env are both set", "use exactly one"
        )
    kwargs: dict[str, Any] = {}
    if cfg.access_key_env:
        kwargs["aws_access_key_id"] = read_env(env, "access_key_env", cfg.access_key_env)
        kwargs["aws_secret_access_key"] = _secret(read_env(env, "secret_key_env", cfg.secret_key_env))
        kwargs["aws_session_token"] = _secret(read_env(env, "session_token_env", cfg.session_token_env))
        hint = "destination.access_key_env/secret_key_env" + ("/session_token_env" if cfg.session_token_env else "")
    elif cfg.aws_profile:
        hint = f"destination.aws_profile ({cfg.aws_profile})"
    else:
        hint = "the default AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, role)"
        for var in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):  # the chain may read them itself
            _secret(env.get(var) or None)
        if env is not os.environ and env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            kwargs["aws_access_key_id"] = env["AWS_ACCESS_KEY_ID"]
            kwargs["aws_secret_access_key"] = _secret(env["AWS_SECRET_ACCESS_KEY"])
            kwargs["aws_session_token"] = _secret(env.get("AWS_SESSION_TOKEN") or None)
    region = cfg.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ("us-east-1" if endpoint else None)
    s3_options = {"addressing_style": "path"} if endpoint else {}
    try:
        session = _session(env, cfg.aws_profile)
        client = session.client(
            "s3", endpoint_url=endpoint, region_name=region, config=Config(**CLIENT_CONFIG, s3=s3_options), **kwargs
        )
        if str(client.meta.endpoint_url).startswith("https://"):
            # Over TLS, SigV4 need not hash the payload: every request that carries bytes also carries a
            # checksum of them the store verifies. botocore skips that SHA-256 pass by itself only when a
            # Content-MD5 header is there, and parts carry x-amz-checksum-crc32c instead. Over plain http the
            # payload stays signed (the only protection of the bytes on the wire).
            unsigned = Config(**CLIENT_CONFIG, s3=s3_options | {"payload_signing_enabled": False})
            client = session.client("s3", endpoint_url=endpoint, region_name=region, config=unsigned, **kwargs)
    except ProfileNotFound as exc:
        raise ConfigError(
            "destination.aws_profile",
            f"profile {cfg.aws_profile!r} is not in the AWS config files",
            "add it or set AWS_CONFIG_FILE/AWS_SHARED_CREDENTIALS_FILE",
        ) from exc
    except BotoCoreError as exc:
        raise ConfigError(
            "destination", f"cannot build the S3 client: {type(exc).__name__}", "check the s3 fields"
        ) from exc
    secrets = tuple(v for k, v in kwargs.items() if k != "aws_access_key_id" and isinstance(v, str))
    errors = S3Errors(bucket, endpoint, hint, secrets)
    return S3Destination(client, bucket, prefix, errors, sse=cfg.sse, sse_kms_key_id=cfg.sse_kms_key_id)
