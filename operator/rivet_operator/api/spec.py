"""Custom resource spec -> the run's rivet.yaml, checked by the engine's own strict loader (pure).

The operator never sees secret values: the source URL reaches Jobs as an env var from a Secret, and
destination credentials are env var names filled by the Job's envFrom.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import yaml

from rivet.config import RivetConfig, load_config_text
from rivet.errors import ConfigError
from rivet_operator.api.fields import EXPORT_FIELDS, TUNING_FIELDS, camel, run_defining_fields, snake

SOURCE_URL_ENV = "RIVET_SOURCE_URL"
SOURCE_CA_DIR = "/etc/rivet-source-ca"  # spec.source.tls.caFrom, mounted read-only into the Jobs that read the source
SOURCE_CA_FILE = f"{SOURCE_CA_DIR}/ca.crt"
CONFIG_ENV = "RIVET_JOB_CONFIG"  # the run's rivet.yaml, in the Job's pod template (`rivet -c env:RIVET_JOB_CONFIG`)
_TUNING_KEYS = {f.name: f.engine_key for f in TUNING_FIELDS}


class SpecError(Exception):
    """A semantic spec error the API server could not catch: ends in Stalled=True naming the field."""

    def __init__(self, field: str, message: str, reason: str = "InvalidSpec") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = reason


def export_name(name: str, spec: dict[str, Any]) -> str:
    return str(spec.get("exportName") or name)


def render_config(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The rivet.yaml document for this export (no secrets, only env var names)."""
    source = dict(spec.get("source") or {})
    src: dict[str, Any] = {"type": source.get("type", "postgres"), "url_env": source.get("urlEnv") or SOURCE_URL_ENV}
    tuning = source.get("tuning") or {}
    if tuning:
        src["tuning"] = {_TUNING_KEYS.get(k, snake(k)): v for k, v in tuning.items()}
    tls = source.get("tls") or {}
    if tls.get("mode"):
        src["tls"] = {"mode": tls["mode"], **({"ca_file": SOURCE_CA_FILE} if tls.get("caFrom") else {})}
    exp: dict[str, Any] = {"name": export_name(name, spec)}
    for f in EXPORT_FIELDS:
        if spec.get(f.name) is not None and f.engine_key:
            exp[f.engine_key] = spec[f.name]
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
    if spec.get("cursor") is not None and spec.get("mode") != "incremental":
        raise SpecError("spec.cursor", "only applies to mode incremental")
    if (spec.get("destination") or {}).get("type") == "stdout":
        raise SpecError("spec.destination.type", "stdout cannot be used by the operator: pick an object store")
    try:
        return load_config_text(render_yaml(name, spec), env={}, need_source=False)
    except ConfigError as exc:
        raise SpecError(spec_path(exc.path), str(exc).split(": ", 1)[-1]) from None


def spec_path(engine_path: str) -> str:
    """`exports[0].destination.access_key_env` -> `spec.destination.accessKeyEnv`."""
    path = re.sub(r"^exports\[0\]\.?", "", engine_path)
    return ".".join(["spec", *(camel(p) for p in path.split(".") if p)])


def run_fingerprint(name: str, spec: dict[str, Any]) -> str:
    """Fingerprint of what a run exports (source, table/query, mode and chunking, format, destination, date):
    a change starts a new run; anything else (parallelism, retries, suspend, jobTemplate, env, verify, the
    source's tuning) applies to the run in flight."""
    doc: dict[str, Any] = {}
    for key in run_defining_fields():
        value = spec.get(key)
        if key == "source" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "tuning"}
        if value is not None:
            doc[key] = value
    doc["exportName"] = export_name(name, spec)
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def validation_export_spec(export_spec: dict[str, Any] | None, spec: dict[str, Any]) -> dict[str, Any]:
    """The export definition a RivetValidation checks against: the referenced RivetExport's, or an inline
    destination. Its Job gets the destination's credentials only (no source secret)."""
    base: dict[str, Any] = dict(export_spec or {})
    if spec.get("destination"):
        base["destination"] = spec["destination"]
        base.setdefault("table", "unused")
    base["source"] = {"type": (base.get("source") or {}).get("type", "postgres"), "urlEnv": "RIVET_UNUSED_SOURCE"}
    for key in ("verify", "envFrom", "env", "jobTemplate"):
        if spec.get(key) is not None:
            base[key] = spec[key]
    base.pop("force", None)
    base.pop("suspend", None)
    return base
