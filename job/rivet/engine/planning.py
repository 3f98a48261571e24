"""Build a run's Plan from the export definition, the column types and (chunked mode) the key bounds.

The chunk column is judged by its type, never by the values it happens to hold: a numeric key with
fractions would lose the rows between two integer ranges, so it is refused before anything is written.
Integer, date and timestamp keys split into unit ranges from MIN and MAX; uuid, text and binary keys (and
any key with `chunk_by_key: true`) into a keyset plan whose boundaries the database picks in one ordered
pass over the key (`sources.sql.keyset_boundaries_query`), under the column's own collation.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
from typing import Any

import pyarrow as pa

from rivet.config.model import ExportConfig, Mode, SourceType
from rivet.contract import values
from rivet.contract.keys import RANGE_KINDS, KeyKind, unit_of
from rivet.contract.plan import DEFAULT_CHUNK_SIZE, MAX_BOUNDARY_BYTES, MAX_CHUNKS, Plan, boundary_bytes, chunk_size_for
from rivet.errors import ConfigError, SourceError
from rivet.log import log
from rivet.sources.base import Source
from rivet.sources.sql import (
    bound_query,
    chunk_kind,
    key_count_query,
    keyset_boundaries_query,
    mysql_column_type_query,
    null_cursor_count_query,
    row_estimate_query,
)


def is_keyset(exp: ExportConfig, key_kind: KeyKind | None) -> bool:
    """Keyset chunking: keys only the database can order, or any key with `chunk_by_key: true`."""
    return exp.mode is Mode.CHUNKED and key_kind is not None and (exp.chunk_by_key or key_kind not in RANGE_KINDS)


def plan_for(
    engine: SourceType | str,
    exp: ExportConfig,
    lo: int | None,
    hi: int | None,
    key_kind: KeyKind | None = None,
    boundaries: tuple[Any, ...] | None = None,
) -> Plan:
    """Pure: the plan for given bounds in the key's unit, or a keyset plan's encoded boundaries (a resume
    passes the ones it stored)."""
    chunked = exp.mode is Mode.CHUNKED
    plan = functools.partial(
        Plan,
        engine=str(engine),
        relation=exp.table or (exp.query or "").strip(),
        mode=exp.mode.value,
        format=exp.format.value,
        compression=exp.effective_compression.value,
        chunk_column=exp.chunk_column,
        chunk_count_requested=exp.chunk_count,
    )
    if is_keyset(exp, key_kind):
        assert key_kind is not None
        return plan(
            chunk_size=None if exp.chunk_count else (exp.chunk_size or DEFAULT_CHUNK_SIZE),
            key_kind=key_kind.value,
            keyset=True,
            boundaries=tuple(boundaries or ()),
        )
    bounded = chunked and lo is not None and hi is not None
    return plan(
        lo=lo if bounded else None,
        hi=hi if bounded else None,
        chunk_size=chunk_size_for(lo, hi, exp.chunk_size, exp.chunk_count) if chunked else None,
        key_kind=key_kind.value if chunked and key_kind not in (None, KeyKind.INT) else None,
    )


def chunk_key_kind(schema: pa.Schema, exp: ExportConfig) -> KeyKind:
    """The chunk column's kind from its type; a ConfigError naming the field and the alternatives."""
    kind, _ = chunk_kind(schema, exp.chunk_column or "", f"{exp.path}.chunk_column", exp.chunk_by_key)
    return kind


def read_plan(source: Source, exp: ExportConfig, schema: pa.Schema) -> Plan:
    """The plan of a new run: bounds of the non-NULL keys, refused when absurdly many chunks."""
    if exp.mode is not Mode.CHUNKED:
        return plan_for(source.engine, exp, None, None)
    kind = chunk_key_kind(schema, exp)
    if is_keyset(exp, kind):
        return read_keyset_plan(source, exp, kind)
    lo = _unit(source.scalar(bound_query(source.engine, exp, "MIN")), kind, exp)
    hi = _unit(source.scalar(bound_query(source.engine, exp, "MAX")), kind, exp)
    plan = plan_for(source.engine, exp, lo, hi, kind)
    check_size(plan, exp)
    return plan


def read_keyset_plan(source: Source, exp: ExportConfig, kind: KeyKind) -> Plan:
    """Boundaries every `chunk_size` keys (or chunk_count even slices of the non-NULL keys), in the
    database's order; refused when they would not fit the plan document."""
    if source.engine is SourceType.MYSQL:
        refuse_mysql_enum(source, exp)
    if exp.chunk_count:
        keys = int(source.scalar(key_count_query(source.engine, exp)) or 0)
        step = max(1, math.ceil(keys / exp.chunk_count))
    else:
        step = exp.chunk_size or DEFAULT_CHUNK_SIZE
    found = source.column(keyset_boundaries_query(source.engine, exp, step))
    try:
        encoded = tuple(values.encode(_plain(v)) for v in found)
    except TypeError as exc:
        raise SourceError(f"chunk_column {exp.chunk_column!r} of export {exp.name!r}: {exc}") from None
    plan = plan_for(source.engine, exp, None, None, kind, encoded)
    check_size(plan, exp, step)
    return plan


def _plain(value: Any) -> Any:
    """A boundary as the driver returned it, as a JSON-able typed value (uuid.UUID as its text)."""
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if value is None or isinstance(value, str | bytes | int | float | dt.date | decimal.Decimal):
        return value
    return str(value)  # uuid.UUID, and any type a driver returns as an object with a canonical text


def refuse_mysql_enum(source: Source, exp: ExportConfig) -> None:
    """MySQL/MariaDB ENUM and SET columns sort by their index but compare with a boundary as text: the
    chunks would overlap, so they are refused (a query can cast them: CAST(col AS CHAR))."""
    query = mysql_column_type_query(exp)
    if query is None:
        return
    declared = source.scalar(query)
    if isinstance(declared, bytes):
        declared = declared.decode("utf-8", "replace")
    if str(declared or "").lower() in ("enum", "set"):
        raise ConfigError(
            f"{exp.path}.chunk_column",
            f"column {exp.chunk_column!r} is a MySQL {str(declared).upper()}, which sorts by index but compares as"
            " text, so it cannot key exact chunks",
            "chunk by another key, export a query with CAST(col AS CHAR) AS col, or use mode: full",
        )


def check_size(plan: Plan, exp: ExportConfig, step: int | None = None) -> None:
    if plan.keyset:
        size = boundary_bytes(plan.boundaries or ())
        if size > MAX_BOUNDARY_BYTES:
            fits = max(1, len(plan.boundaries or ()) * MAX_BOUNDARY_BYTES // size)
            rows = f" of about {step:,} keys" if step else ""
            raise ConfigError(
                f"{exp.path}.chunk_count" if exp.chunk_count else f"{exp.path}.chunk_size",
                f"{plan.chunk_count:,} keyset chunks{rows} need {size:,} bytes of boundary values, more than a plan"
                f" can carry ({MAX_BOUNDARY_BYTES:,} bytes: the operator reads the plan from a 4 KiB termination"
                " message)",
                f"set chunk_count: {fits} or less, or a chunk_size of at least"
                f" {math.ceil((step or 1) * plan.chunk_count / fits):,}",
            )
        return

    if plan.chunk_count > MAX_CHUNKS:
        unit = "keys" if plan.kind is KeyKind.INT else "days"
        raise ConfigError(
            f"{exp.path}.chunk_size",
            f"{plan.chunk_count:,} chunks of {plan.chunk_size:,} {unit} over [{plan.lo}, {plan.hi}]"
            f" (more than {MAX_CHUNKS:,}): the keys are sparse or huge",
            "set chunk_count (e.g. chunk_count: 64) to split the range evenly, or a larger chunk_size",
        )


def _unit(value: Any, kind: KeyKind, exp: ExportConfig) -> int | None:
    if value is None:
        return None
    try:
        return unit_of(kind, value)
    except TypeError as exc:
        raise SourceError(f"chunk_column {exp.chunk_column!r} of export {exp.name!r}: {exc}") from None


def row_estimate(source: Source, exp: ExportConfig) -> int | None:
    query = row_estimate_query(source.engine, exp)
    if query is None:
        return None
    try:
        value = source.scalar(query)
    except SourceError:
        return None
    return int(value) if value is not None else None


def count_null_cursors(source: Source, exp: ExportConfig) -> int:
    """Incremental mode never exports rows whose cursor is NULL: count them and say so."""
    count = int(source.scalar(null_cursor_count_query(source.engine, exp)) or 0)
    if count:
        log(
            "incremental_null_cursor",
            level="warning",
            export=exp.name,
            cursor_column=exp.cursor_column,
            rows=count,
            note="rows with a NULL cursor are not exported by incremental mode; use a non-NULL cursor column",
        )
    return count
