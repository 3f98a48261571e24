"""One field table for the RivetExport spec, shared with the engine where the engine has the facts.

Enums come from the engine's own enums (`rivet.config.model`), tuning defaults from its `Tuning`, and the
destination keys allowed per type from its loader (`DEST_KEYS`). Bounds live here, once, and
`tests/unit/test_operator_api.py` renders a spec at every bound and enum value and checks the engine's loader
agrees. `run_defining` marks the fields that decide which rows land where: their fingerprint
(`run_fingerprint`) starts a new run when it changes; every other field applies to the run in flight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rivet.config.loader import CONDITIONAL_WRITES, DEST_KEYS, SSE_MODES
from rivet.config.model import Compression, DestinationType, Format, Mode, SourceType, Tuning, Verify

NAME: dict[str, Any] = {"type": "string", "maxLength": 253}
TEXT: dict[str, Any] = {"type": "string", "maxLength": 1024}
ENV_NAME: dict[str, Any] = {"type": "string", "maxLength": 253, "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}


def enum_values(enum: type[StrEnum], exclude: tuple[StrEnum, ...] = ()) -> list[str]:
    return [e.value for e in enum if e not in exclude]


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


@dataclass(frozen=True)
class Field:
    """A spec field: its schema, the rivet.yaml key it renders to (None: the operator's own) and whether it
    defines the run's data."""

    name: str
    schema: dict[str, Any]
    engine_key: str | None = None
    run_defining: bool = False
    minimum: int | None = None
    maximum: int | None = None
    default: Any = None
    enum: list[str] = field(default_factory=list)

    def openapi(self) -> dict[str, Any]:
        out = dict(self.schema)
        if self.enum:
            out["enum"] = list(self.enum)
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.default is not None:
            out["default"] = self.default
        return out


def _int(name: str, engine_key: str | None, run: bool, minimum: int, maximum: int | None = None, **kw: Any) -> Field:
    return Field(name, {"type": "integer", **kw}, engine_key, run, minimum, maximum)


def _enum(name: str, enum: type[StrEnum], run: bool, default: StrEnum | None = None, **kw: Any) -> Field:
    exclude = kw.pop("exclude", ())
    return Field(
        name,
        {"type": "string"},
        snake(name),
        run,
        default=default.value if default is not None else None,
        enum=enum_values(enum, exclude),
    )


# The export fields the engine reads (rendered into exports[0] of rivet.yaml), in the engine's order.
EXPORT_FIELDS: tuple[Field, ...] = (
    Field("table", NAME, "table", True),
    Field("query", {"type": "string", "maxLength": 65536}, "query", True),
    _enum("mode", Mode, True, default=Mode.FULL),
    Field("chunkColumn", NAME, "chunk_column", True),
    _int("chunkSize", "chunk_size", True, 1),
    _int("chunkCount", "chunk_count", True, 1, 100_000),
    Field("cursorColumn", NAME, "cursor_column", True),
    Field("timeColumn", NAME, "time_column", True),
    _int("daysWindow", "days_window", True, 1),
    _enum("format", Format, True, default=Format.PARQUET),
    _enum("compression", Compression, True),
    _enum("verify", Verify, False),  # how validate checks parts: never changes the data
    Field(
        "columns",
        {
            "type": "object",
            "maxProperties": 256,
            "additionalProperties": {"type": "string", "maxLength": 32},
            "description": 'per column: "string" (the database\'s exact text) or "decimal(p,s)" (a value that does'
            " not fit is refused); e.g. an unconstrained numeric for Parquet",
        },
        "columns",
        True,
    ),
)

# source.tuning: how the engine reads, not what it reads. Defaults are the engine's own (`Tuning`).
_TUNING = Tuning()
TUNING_FIELDS: tuple[Field, ...] = (
    _int(
        "batchSize",
        "batch_size",
        False,
        1,
        10_000_000,
        description=f"rows per batch read from the source (default {_TUNING.batch_size})",
    ),
    _int(
        "statementTimeoutS",
        "statement_timeout_s",
        False,
        0,
        description="seconds before a source statement is cancelled; 0 = no timeout"
        f" (default {_TUNING.statement_timeout_s})",
    ),
    _int(
        "maxRetries",
        "max_retries",
        False,
        0,
        20,
        description="retries of a transient failure inside `rivet run`; 0 = one attempt"
        f" (default {_TUNING.max_retries}). Operator Jobs are retried per maxChunkRetries instead",
    ),
    _int(
        "readTimeoutS",
        "read_timeout_s",
        False,
        0,
        description="seconds a source connection may stay silent before it is closed with a retryable error;"
        f" 0 = never (default {_TUNING.read_timeout}, and at least statementTimeoutS + 60)",
    ),
)

# The destination types a RivetExport may use: every engine type but stdout (no manifest, no resume).
OPERATOR_DESTINATIONS = enum_values(DestinationType, exclude=(DestinationType.STDOUT,))
# One spelling per concept in the CR: Azure's container is `container` (the engine also reads the 0.8
# spelling `bucket` for Azure; the CR does not, so `bucket` means an S3 or GCS bucket only).
ENGINE_ONLY_SPELLINGS = {(DestinationType.AZURE, "bucket")}


def destination_types_by_key() -> dict[str, list[str]]:
    """camelCase destination key -> the destination types that accept it (from the engine's loader)."""
    out: dict[str, list[str]] = {}
    for kind in DestinationType:
        if kind.value not in OPERATOR_DESTINATIONS:
            continue
        for key in sorted(DEST_KEYS[kind]):
            if key == "type" or (kind, key) in ENGINE_ONLY_SPELLINGS:
                continue
            out.setdefault(camel(key), []).append(kind.value)
    return out


def destination_property(key: str) -> dict[str, Any]:
    if key == "allowAnonymous":
        return {"type": "boolean"}
    if key == "sse":
        return {"type": "string", "enum": list(SSE_MODES)}
    if key == "conditionalWrites":
        return {"type": "string", "enum": list(CONDITIONAL_WRITES)}
    if key.endswith("Env"):
        return dict(ENV_NAME)
    if key in ("bucket", "region", "awsProfile", "accountName", "container"):
        return dict(NAME)
    return dict(TEXT)


SOURCE_TYPES = enum_values(SourceType)

# Operator-only fields and whether they define the run (the rest apply live to a run in flight).
RUN_DEFINING_OPERATOR_FIELDS = ("source", "destination", "date", "exportName", "cursor")
LIVE_FIELDS = (
    "parallelism",
    "envFrom",
    "env",
    "jobTemplate",
    "suspend",
    "maxChunkRetries",
    "force",
    "expectedSchemaFingerprint",
)


def run_defining_fields() -> tuple[str, ...]:
    return (
        RUN_DEFINING_OPERATOR_FIELDS[0],
        *(f.name for f in EXPORT_FIELDS if f.run_defining),
        *RUN_DEFINING_OPERATOR_FIELDS[1:],
    )
