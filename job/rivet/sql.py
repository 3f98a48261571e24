"""SQL text per mode and dialect, built in one place so every command queries the same rows.

Identifiers are quoted per dialect; values are integers or escaped literals we produced ourselves
(bounds, cursors, dates), never user text, so no driver-side parameters are needed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rivet.config.model import ExportConfig, Mode, SourceType


def quote_ident(engine: SourceType, name: str) -> str:
    """Quote `schema.table` or `column` for the dialect (each dotted part separately)."""
    q = '"' if engine is SourceType.POSTGRES else "`"
    return ".".join(q + part.replace(q, q + q) + q for part in name.split("."))


def literal(value: Any) -> str:
    """A SQL literal for a cursor/bound value we read back from the database ourselves."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        return "'" + value.isoformat(sep=" ") + "'"
    if isinstance(value, dt.date):
        return "'" + value.isoformat() + "'"
    return "'" + str(value).replace("'", "''") + "'"


def relation(engine: SourceType, exp: ExportConfig) -> str:
    """`FROM` target: the quoted table, or the user's query as a derived table."""
    if exp.table:
        return quote_ident(engine, exp.table)
    assert exp.query is not None
    return f"({exp.query.strip().rstrip(';')}) AS rivet_q"


def select_all(engine: SourceType, exp: ExportConfig) -> str:
    return f"SELECT * FROM {relation(engine, exp)}"


def bound_sql(engine: SourceType, exp: ExportConfig, func: str) -> str:
    """`SELECT MIN(col)` or `MAX(col)`: two index lookups when the chunk column is indexed."""
    col = quote_ident(engine, exp.chunk_column or "")
    return f"SELECT {func}({col}) FROM {relation(engine, exp)}"


def chunk_sql(engine: SourceType, exp: ExportConfig, lo: int, hi: int) -> str:
    col = quote_ident(engine, exp.chunk_column or "")
    return f"SELECT * FROM {relation(engine, exp)} WHERE {col} BETWEEN {lo} AND {hi}"


def count_sql(engine: SourceType, exp: ExportConfig, lo: int | None = None, hi: int | None = None) -> str:
    base = f"SELECT COUNT(*) FROM {relation(engine, exp)}"
    if lo is not None and hi is not None:
        base += f" WHERE {quote_ident(engine, exp.chunk_column or '')} BETWEEN {lo} AND {hi}"
    return base


def incremental_sql(engine: SourceType, exp: ExportConfig, last: Any | None) -> str:
    col = quote_ident(engine, exp.cursor_column or "")
    where = f" WHERE {col} > {literal(last)}" if last is not None else f" WHERE {col} IS NOT NULL"
    return f"SELECT * FROM {relation(engine, exp)}{where} ORDER BY {col}"


def time_window_sql(engine: SourceType, exp: ExportConfig, run_date: dt.date) -> str:
    """Rows with run_date - days_window <= time_column < run_date + 1 day: fixed per run, so resumable."""
    col = quote_ident(engine, exp.time_column or "")
    start = run_date - dt.timedelta(days=exp.days_window or 0)
    end = run_date + dt.timedelta(days=1)
    return f"SELECT * FROM {relation(engine, exp)} WHERE {col} >= {literal(start)} AND {col} < {literal(end)}"


def export_sql(engine: SourceType, exp: ExportConfig, *, run_date: dt.date, cursor: Any | None) -> str:
    """The single-part query for full, incremental and time_window modes."""
    if exp.mode is Mode.INCREMENTAL:
        return incremental_sql(engine, exp, cursor)
    if exp.mode is Mode.TIME_WINDOW:
        return time_window_sql(engine, exp, run_date)
    return select_all(engine, exp)


def row_estimate_sql(engine: SourceType, exp: ExportConfig) -> str | None:
    """Cheap catalog estimate for a table (no scan); None for queries."""
    if not exp.table:
        return None
    if engine is SourceType.POSTGRES:
        return f"SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = {literal(exp.table)}::regclass"
    schema, _, name = exp.table.rpartition(".")
    where = f"table_name = {literal(name)} AND table_schema = " + (literal(schema) if schema else "DATABASE()")
    return f"SELECT table_rows FROM information_schema.tables WHERE {where}"
