"""Open the configured source: the only place that knows which class serves which engine."""

from __future__ import annotations

from rivet.config.model import SourceConfig, SourceType
from rivet.errors import SourceError
from rivet.sources.base import Source


def open_source(cfg: SourceConfig) -> Source:
    """A connected Source for `cfg` (postgresql:// or postgres://; mysql:// or mariadb://)."""
    # Imported here so a PostgreSQL-only run never loads ConnectorX, and vice versa.
    if cfg.type is SourceType.POSTGRES:
        from rivet.sources.postgres import PostgresSource

        return PostgresSource(cfg)
    if cfg.type is SourceType.MYSQL:
        from rivet.sources.mysql import MysqlSource

        return MysqlSource(cfg)
    raise SourceError(f"unknown source type {cfg.type!r}: expected postgres or mysql")
