"""Build a run's Plan from the export definition, the column types and (chunked mode) the key bounds.

The chunk column is judged by its type, never by the values it happens to hold: a numeric key with
fractions would lose the rows between two integer ranges, so it is refused before anything is written.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from rivet.config.model import ExportConfig, Mode, SourceType
from rivet.contract.keys import KeyKind, unit_of
from rivet.contract.plan import MAX_CHUNKS, Plan, chunk_size_for
from rivet.errors import ConfigError, SourceError
from rivet.log import log
from rivet.sources.base import Source
from rivet.sources.sql import bound_query, column_kind, null_cursor_count_query, row_estimate_query


def plan_for(
    engine: SourceType | str, exp: ExportConfig, lo: int | None, hi: int | None, key_kind: KeyKind | None = None
) -> Plan:
    """Pure: the plan for given bounds in the key's unit (a resume passes the bounds it stored)."""
    chunked = exp.mode is Mode.CHUNKED
    bounded = chunked and lo is not None and hi is not None
    return Plan(
        engine=str(engine),
        relation=exp.table or (exp.query or "").strip(),
        mode=exp.mode.value,
        format=exp.format.value,
        compression=exp.effective_compression.value,
        chunk_column=exp.chunk_column,
        lo=lo if bounded else None,
        hi=hi if bounded else None,
        chunk_size=chunk_size_for(lo, hi, exp.chunk_size, exp.chunk_count) if chunked else None,
        chunk_count_requested=exp.chunk_count,
        key_kind=key_kind.value if chunked and key_kind not in (None, KeyKind.INT) else None,
    )


def chunk_key_kind(schema: pa.Schema, exp: ExportConfig) -> KeyKind:
    """The chunk column's kind from its type; a ConfigError naming the field and the alternatives."""
    return column_kind(
        schema,
        exp.chunk_column or "",
        f"{exp.path}.chunk_column",
        "chunk by an integer (or numeric with scale 0), date or timestamp column; or use mode: full",
    )


def read_plan(source: Source, exp: ExportConfig, schema: pa.Schema) -> Plan:
    """The plan of a new run: bounds of the non-NULL keys, refused when absurdly many chunks."""
    if exp.mode is not Mode.CHUNKED:
        return plan_for(source.engine, exp, None, None)
    kind = chunk_key_kind(schema, exp)
    lo = _unit(source.scalar(bound_query(source.engine, exp, "MIN")), kind, exp)
    hi = _unit(source.scalar(bound_query(source.engine, exp, "MAX")), kind, exp)
    plan = plan_for(source.engine, exp, lo, hi, kind)
    check_size(plan, exp)
    return plan


def check_size(plan: Plan, exp: ExportConfig) -> None:
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
