"""Config-side helpers for the destination builders: read credential env vars, required fields, endpoints."""

from __future__ import annotations

from collections.abc import Mapping

from rivet.errors import ConfigError


def read_env(env: Mapping[str, str], field: str, name: str | None) -> str | None:
    """The value of the variable a config field names; an unset variable is a config error naming the field."""
    if not name:
        return None
    value = env.get(name)
    if value is None or value == "":
        raise ConfigError(
            f"destination.{field}", f"environment variable {name} is not set", "export it or change the field"
        )
    return value


def require(value: str | None, field: str, kind: str) -> str:
    if not value:
        raise ConfigError(f"destination.{field}", f"is required for a {kind} destination", f"set destination.{field}")
    return value


def check_endpoint(endpoint: str | None) -> str | None:
    if endpoint is None:
        return None
    if not endpoint.startswith(("http://", "https://")):
        raise ConfigError("destination.endpoint", f"{endpoint!r} is not an http(s) URL", "use e.g. https://host:port")
    return endpoint.rstrip("/")
