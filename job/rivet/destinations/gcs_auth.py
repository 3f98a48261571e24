"""GCS client construction: credentials_file, then GOOGLE_APPLICATION_CREDENTIALS, then (emulator) anonymous,
then Application Default Credentials. Building the client never contacts a token endpoint."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import google.auth
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import DefaultCredentialsError
from google.cloud.storage import Client
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from rivet.config.model import DestinationConfig
from rivet.destinations._config import check_endpoint, require
from rivet.destinations.gcs import GcsDestination
from rivet.destinations.gcs_errors import GcsErrors
from rivet.errors import ConfigError
from rivet.log import add_secret

SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write"]


def _from_file(path: str, field: str) -> tuple[Any, str | None]:
    """Service account keys (and gcloud user credentials); the type is checked before anything is built."""

    def bad(problem: str) -> ConfigError:
        return ConfigError(
            field, f"cannot load credentials from {path}: {problem}", "point it at a service account JSON key"
        )

    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except OSError as exc:
        raise bad(exc.strerror or type(exc).__name__) from exc
    except ValueError as exc:
        raise bad("not valid JSON") from exc
    kind = info.get("type") if isinstance(info, dict) else None
    if isinstance(info, dict):  # registered the moment they are read: every later message is masked
        for secret in ("private_key", "client_secret", "refresh_token"):
            if isinstance(info.get(secret), str):
                add_secret(info[secret])
    try:
        if kind == "service_account":
            creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)  # type: ignore[no-untyped-call]
            return creds, info.get("project_id")
        if kind == "authorized_user":
            user = user_credentials.Credentials.from_authorized_user_info(info, scopes=SCOPES)  # type: ignore[no-untyped-call]
            return user, info.get("quota_project_id")
    except (ValueError, KeyError) as exc:
        raise bad(f"invalid {kind} credentials ({type(exc).__name__})") from exc
    raise bad(f"unsupported credential type {kind!r} (expected service_account or authorized_user)")


def open_gcs(cfg: DestinationConfig, prefix: str, env: Mapping[str, str]) -> GcsDestination:
    bucket = require(cfg.bucket, "bucket", "gcs")
    endpoint = check_endpoint(cfg.endpoint)
    creds: Any
    project: str | None
    if cfg.credentials_file:
        creds, project = _from_file(cfg.credentials_file, "destination.credentials_file")
        hint = "destination.credentials_file (the service account needs storage object admin on the bucket)"
    elif env.get("GOOGLE_APPLICATION_CREDENTIALS"):
        creds, project = _from_file(env["GOOGLE_APPLICATION_CREDENTIALS"], "GOOGLE_APPLICATION_CREDENTIALS")
        hint = "GOOGLE_APPLICATION_CREDENTIALS (or set destination.credentials_file)"
    elif endpoint:
        creds, project = AnonymousCredentials(), None  # type: ignore[no-untyped-call]  # an emulator
        hint = "destination.endpoint (anonymous access: set destination.credentials_file for a real server)"
    else:
        try:
            creds, project = google.auth.default(scopes=SCOPES)
        except DefaultCredentialsError as exc:
            raise ConfigError(
                "destination.credentials_file",
                "no Google credentials found (Application Default Credentials are not available)",
                "set destination.credentials_file or GOOGLE_APPLICATION_CREDENTIALS",
            ) from exc
        hint = "Application Default Credentials (or set destination.credentials_file)"
    options = {"api_endpoint": endpoint} if endpoint else None
    # project=None (not omitted) keeps the client from probing the environment for a project id.
    client = Client(project=project or None, credentials=creds, client_options=options)
    return GcsDestination(client, bucket, prefix, GcsErrors(bucket, endpoint, hint, ()))
