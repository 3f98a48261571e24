"""Build a run's Plan from the export definition and (for chunked mode) the key bounds in the source."""

from __future__ import annotations

from typing import Any

from rivet.config.model import ExportConfig, Mode, SourceType
from rivet.contract.plan import Plan, chunk_size_for
from rivet.errors import SourceError
from rivet.sources.base import Source
from rivet.sql import bound_sql, row_estimate_sql


def plan_for(engine: SourceType, exp: ExportConfig, lo: int | None, hi: int | None) -> Plan:
    """Pure: the plan for given bounds (a resume passes the bounds it stored)."""
    chunked = exp.mode is Mode.CHUNKED
    return Plan(
        engine=engine.value,
        relation=exp.table or (exp.query or "").strip(),
        mode=exp.mode.value,
        format=exp.format.value,
        compression=exp.effective_compression.value,
        chunk_column=exp.chunk_column,
        lo=lo if chunked else None,
        hi=hi if chunked else None,
        chunk_size=chunk_size_for(lo, hi, exp.chunk_size, exp.chunk_count) if chunked else None,
        chunk_count_requested=exp.chunk_count,
    )


def read_bounds(source: Source, exp: ExportConfig) -> tuple[int | None, int | None]:
    lo = _as_int(source.scalar(bound_sql(source.engine, exp, "MIN")), exp)
    hi = _as_int(source.scalar(bound_sql(source.engine, exp, "MAX")), exp)
    return lo, hi


def _as_int(value: Any, exp: ExportConfig) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            as_int = int(value)
        except (TypeError, ValueError):
            as_int = None
        if as_int is None or as_int != value:
            raise SourceError(
                f"chunk_column {exp.chunk_column!r} of export {exp.name!r} is not an integer column"
                f" (got {type(value).__name__}): chunked mode needs integer keys; pick another chunk_column"
            )
        return as_int
    return value


def build_plan(source: Source, exp: ExportConfig) -> Plan:
    lo, hi = read_bounds(source, exp) if exp.mode is Mode.CHUNKED else (None, None)
    return plan_for(source.engine, exp, lo, hi)


def row_estimate(source: Source, exp: ExportConfig) -> int | None:
    sql = row_estimate_sql(source.engine, exp)
    if sql is None:
        return None
    try:
        value = source.scalar(sql)
    except SourceError:
        return None
    return int(value) if value is not None else None
