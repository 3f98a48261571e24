"""Custom resource spec -> the run's rivet.yaml, checked by the engine's own strict loader.

The operator never sees secret values: the source URL reaches Jobs as an env var from a Secret, and
destination credentials are env var names filled by the Job's envFrom.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from rivet.config import RivetConfig, load_config_text
from rivet.errors import ConfigError

SOURCE_URL_ENV = "RIVET_SOURCE_URL"
CONFIG_DIR = "/etc/rivet"
CONFIG_FILE = f"{CONFIG_DIR}/rivet.yaml"
EXPORT_KEYS = (
    "table",
    "query",
    "mode",
    "chunkColumn",
    "chunkSize",
    "chunkCount",
    "cursorColumn",
    "timeColumn",
    "daysWindow",
    "format",
    "compression",
    "verify",
)
OPERATOR_ONLY = {
    "source",
    "destination",
    "parallelism",
    "envFrom",
    "env",
    "jobTemplate",
    "force",
    "suspend",
    "date",
    "maxChunkRetries",
    "exportName",
}


class SpecError(Exception):
    """A semantic spec error the API server could not catch: ends in Stalled=True naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def export_name(name: str, spec: dict[str, Any]) -> str:
    return str(spec.get("exportName") or name)


def render_config(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The rivet.yaml document for this export (pure; no secrets, only env var names)."""
    source = dict(spec.get("source") or {})
    src: dict[str, Any] = {"type": source.get("type", "postgres")}
    if source.get("urlEnv"):
        src["url_env"] = source["urlEnv"]
    else:
        src["url_env"] = SOURCE_URL_ENV
    tuning = source.get("tuning") or {}
    if tuning:
        src["tuning"] = {snake(k): v for k, v in tuning.items()}
    exp: dict[str, Any] = {"name": export_name(name, spec)}
    for key in EXPORT_KEYS:
        if spec.get(key) is not None:
            exp[snake(key)] = spec[key]
    if spec.get("parallelism") and spec.get("mode") == "chunked":
        exp["parallel"] = 1  # each Job exports one chunk; the operator runs `parallelism` Jobs at once
    exp["destination"] = {snake(k): v for k, v in (spec.get("destination") or {}).items()}
    return {"source": src, "exports": [exp]}


def render_yaml(name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump(render_config(name, spec), sort_keys=False)


def check_spec(name: str, spec: dict[str, Any]) -> RivetConfig:
    """Run the engine's loader over the rendered config; map its field paths back to spec paths."""
    source = spec.get("source") or {}
    if not source.get("urlFrom") and not source.get("urlEnv"):
        raise SpecError("spec.source.urlFrom", "set urlFrom.secretKeyRef (name, key) or urlEnv")
    ref = (source.get("urlFrom") or {}).get("secretKeyRef") or {}
    if source.get("urlFrom") and not (ref.get("name") and ref.get("key")):
        raise SpecError("spec.source.urlFrom.secretKeyRef", "needs both name and key")
    if (spec.get("destination") or {}).get("type") == "stdout":
        raise SpecError("spec.destination.type", "stdout cannot be used by the operator: pick an object store")
    text = render_yaml(name, spec)
    try:
        return load_config_text(text, env={}, need_source=False)
    except ConfigError as exc:
        raise SpecError(spec_path(exc.path), str(exc).split(": ", 1)[-1]) from None


def spec_path(engine_path: str) -> str:
    """`exports[0].destination.access_key_env` -> `spec.destination.accessKeyEnv`."""
    path = re.sub(r"^exports\[0\]\.?", "", engine_path)
    path = re.sub(r"^source", "source", path)
    parts = [camel(p) for p in path.split(".") if p]
    return ".".join(["spec", *parts])
