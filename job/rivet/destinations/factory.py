"""Build a Destination from its config: credentials are env var *names*, read here and only here."""

from __future__ import annotations

import os
from collections.abc import Mapping

from rivet.config.model import DestinationConfig, DestinationType
from rivet.destinations._common import normalise_prefix
from rivet.destinations._config import require
from rivet.destinations.base import Destination
from rivet.errors import ConfigError


def open_destination(cfg: DestinationConfig, resolved_prefix: str, env: Mapping[str, str] | None = None) -> Destination:
    """`resolved_prefix` is the resolved template: a path for local, the key prefix inside the bucket otherwise."""
    environ: Mapping[str, str] = os.environ if env is None else env
    if cfg.type is DestinationType.LOCAL:
        from rivet.destinations.local import LocalDestination

        return LocalDestination(require(resolved_prefix, "path", "local"))
    if cfg.type is DestinationType.STDOUT:
        from rivet.destinations.stdout import StdoutDestination

        return StdoutDestination()
    prefix = normalise_prefix(resolved_prefix)
    if cfg.type is DestinationType.S3:
        from rivet.destinations.s3_auth import open_s3

        return open_s3(cfg, prefix, environ)
    if cfg.type is DestinationType.GCS:
        from rivet.destinations.gcs_auth import open_gcs

        return open_gcs(cfg, prefix, environ)
    if cfg.type is DestinationType.AZURE:
        from rivet.destinations.azure_auth import open_azure

        return open_azure(cfg, prefix, environ)
    raise ConfigError(
        "destination.type", f"unknown destination type {cfg.type!r}", "use local, s3, gcs, azure or stdout"
    )
