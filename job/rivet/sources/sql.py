"""All SQL text, per mode and dialect, built in one place so every command reads the same rows.

Identifiers are quoted here and nowhere else; values (bounds, cursors, window edges) are bound into a
`Query`, never spliced (see `rivet.sources.query`). The predicates are total: the chunks of a plan
partition every row of the relation (NULL keys and keys outside the planned bounds included), so an
export cannot lose a row to a predicate and reconcile counts exactly what was exported.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

from rivet.config.model import ExportConfig, Format, Mode, SourceType
from rivet.contract.keys import RANGE_KINDS, KeyKind, keyset_kind_of, kind_of, value_at, window_edge
from rivet.contract.plan import Chunk
from rivet.errors import ConfigError
from rivet.sources.query import ColumnTyping, Query, Untyped, q


def quote_ident(engine: SourceType | str, name: str) -> str:
    """One identifier (a column), quoted for the dialect."""
    mark = '"' if str(engine) == SourceType.POSTGRES.value else "`"
    return mark + name.replace(mark, mark + mark) + mark


def quote_name(engine: SourceType | str, name: str) -> str:
    """A possibly qualified name (`schema.table`): each dotted part quoted separately."""
    return ".".join(quote_ident(engine, part) for part in name.split("."))


def relation(engine: SourceType, exp: ExportConfig) -> str:
    """`FROM` target: the quoted table, or the user's own query as a derived table."""
    if exp.table:
        return quote_name(engine, exp.table)
    assert exp.query is not None
    return f"(\n{exp.query.strip().rstrip(';').rstrip()}\n) AS rivet_q"


def select_all(engine: SourceType, exp: ExportConfig) -> Query:
    """Every row of the export, carrying its column typing (`columns:` overrides, CSV) to `describe`."""
    keys = (("chunk_column", exp.chunk_column), ("cursor_column", exp.cursor_column), ("time_column", exp.time_column))
    typing = ColumnTyping(
        exp.columns, exp.format is Format.CSV, exp.path, tuple((k, c) for k, c in keys if c), exp.table
    )
    return Query((f"SELECT * FROM {relation(engine, exp)}",), (), typing)


def bound_query(engine: SourceType, exp: ExportConfig, func: str) -> Query:
    """`SELECT MIN(col)` or `MAX(col)`: two index lookups when the chunk column is indexed."""
    return q(f"SELECT {func}({quote_ident(engine, exp.chunk_column or '')}) FROM {relation(engine, exp)}")


def keyset_boundaries_query(engine: SourceType, exp: ExportConfig, step: int) -> Query:
    """A keyset plan's boundaries, chosen and ordered by the database with the column's own collation:
    the key at every `step`-th position (1 + step, 1 + 2*step, ... of the non-NULL keys in ORDER BY),
    except values equal to the smallest key (RANK > 1: chunk 1 is never empty for nothing), grouped so
    that values equal under the collation ('a', 'A', 'a ' under a case-insensitive PAD SPACE one) give one
    boundary. One ordered pass over the key (an index-only scan where the key is indexed)."""
    col = quote_ident(engine, exp.chunk_column or "")
    ranked = (
        f"SELECT {col} AS rivet_k, ROW_NUMBER() OVER (ORDER BY {col}) AS rivet_n,"
        f" RANK() OVER (ORDER BY {col}) AS rivet_r FROM {relation(engine, exp)} WHERE {col} IS NOT NULL"
    )
    return (
        q(f"SELECT rivet_k FROM ({ranked}) AS rivet_b WHERE rivet_r > 1 AND MOD(rivet_n - 1, ").bind(step)
        + ") = 0 GROUP BY rivet_k ORDER BY rivet_k"
    )


def key_count_query(engine: SourceType, exp: ExportConfig) -> Query:
    """The number of non-NULL keys (keyset planning with chunk_count)."""
    return q(f"SELECT COUNT({quote_ident(engine, exp.chunk_column or '')}) FROM {relation(engine, exp)}")


def mysql_column_type_query(exp: ExportConfig) -> Query | None:
    """MySQL/MariaDB: the declared type of a table's chunk column (ENUM and SET order by their index but
    compare as text, so they cannot key a keyset plan); None for a query export."""
    if not exp.table:
        return None
    schema, _, name = exp.table.rpartition(".")
    base = q("SELECT DATA_TYPE FROM information_schema.columns WHERE table_name = ").bind(name)
    base = base + " AND column_name = " + q("").bind(exp.chunk_column or "")
    return base + " AND table_schema = " + (q("").bind(schema) if schema else q("DATABASE()"))


def key_value(value: object) -> object:
    """A keyset boundary as bound into a predicate: text untyped, so the column's type and collation rule."""
    return Untyped(value) if isinstance(value, str) else value


def chunk_predicate(engine: SourceType, column: str, chunk: Chunk) -> Query | None:
    """The rows of `chunk`: [lo, hi] in units, widened to NULL keys and keys below lo for the first
    chunk and to keys above hi for the last; None when the chunk is the whole relation. A keyset chunk:
    `lower <= key < upper` compared by the database, the first chunk without lower bound and with NULL
    keys, the last without upper bound."""
    if chunk.keyset:
        col = quote_ident(engine, column)
        lower = None if chunk.lower is None else q(f"{col} >= ").bind(key_value(chunk.lower))
        upper = None if chunk.upper is None else q(f"{col} < ").bind(key_value(chunk.upper))
        return _joined(col, lower, upper)
    if chunk.lo is None or chunk.hi is None or chunk.key_kind is None:
        return None
    col = quote_ident(engine, column)
    lower = None if chunk.first else q(f"{col} >= ").bind(value_at(chunk.key_kind, chunk.lo))
    upper = None if chunk.last else q(f"{col} < ").bind(value_at(chunk.key_kind, chunk.hi + 1))
    return _joined(col, lower, upper)


def _joined(col: str, lower: Query | None, upper: Query | None) -> Query | None:
    """lower AND upper; without a lower bound the chunk is the first and also holds NULL keys."""
    if lower is None and upper is None:
        return None
    if lower is None:
        assert upper is not None
        return upper.wrap("(", f" OR {col} IS NULL)")
    if upper is None:
        return lower
    return lower + " AND " + upper


def where(base: Query, predicate: Query | None) -> Query:
    return base if predicate is None else base + " WHERE " + predicate


def chunk_query(engine: SourceType, exp: ExportConfig, chunk: Chunk) -> Query:
    return where(select_all(engine, exp), chunk_predicate(engine, exp.chunk_column or "", chunk))


def count_query(engine: SourceType, exp: ExportConfig, predicate: Query | None = None) -> Query:
    return where(q(f"SELECT COUNT(*) FROM {relation(engine, exp)}"), predicate)


def incremental_predicate(engine: SourceType, exp: ExportConfig, last: Any | None) -> Query:
    """Rows at or after the last certified cursor value: the boundary value is read again, so a row that
    shares it but committed after the last run is never lost (it may be delivered twice: dedupe by key)."""
    col = quote_ident(engine, exp.cursor_column or "")
    if last is None:
        return q(f"{col} IS NOT NULL")
    return q(f"{col} >= ").bind(last)


def incremental_query(engine: SourceType, exp: ExportConfig, last: Any | None) -> Query:
    col = quote_ident(engine, exp.cursor_column or "")
    return where(select_all(engine, exp), incremental_predicate(engine, exp, last)) + f" ORDER BY {col}"


def null_cursor_count_query(engine: SourceType, exp: ExportConfig) -> Query:
    return count_query(engine, exp, q(f"{quote_ident(engine, exp.cursor_column or '')} IS NULL"))


def column_kind(schema: pa.Schema, column: str, field_path: str, fix: str) -> KeyKind:
    """The kind of the integer/date/timestamp column named at `field_path`, judged by its type; anything
    else is a ConfigError naming the field and `fix`."""
    index = schema.get_field_index(column)
    if index < 0:
        names = ", ".join(schema.names[:20])
        raise ConfigError(field_path, f"column {column!r} is not in the result (columns: {names})")
    kind = kind_of(schema.field(index).type)
    if kind is None:
        raise ConfigError(
            field_path,
            f"column {column!r} is {type_words(schema.field(index))}, which cannot be split into exact ranges",
            fix,
        )
    return kind


def type_words(field: pa.Field) -> str:
    """The column's type in database words for messages (either engine), never an Arrow spelling."""
    t = field.type
    if field.metadata and b"rivet.source_text" in field.metadata:
        return str(field.metadata[b"rivet.source_text"].decode("utf-8")) + " read as text"
    if isinstance(t, pa.BaseExtensionType):
        name = str(t.extension_name)
        return {"arrow.uuid": "uuid", "arrow.json": "json"}.get(name, name)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return "an array"
    if pa.types.is_decimal(t):
        return f"numeric/decimal({t.precision},{t.scale})"
    if pa.types.is_floating(t):
        return "a floating-point number (real, double precision, float, double)"
    if pa.types.is_time(t):
        return "a time of day"
    if pa.types.is_boolean(t):
        return "a boolean"
    return str(t)


def chunk_kind(schema: pa.Schema, column: str, field_path: str, by_key: bool) -> tuple[KeyKind, bool]:
    """(kind, keyset) of a chunk column, judged by its type: integer, date and timestamp keys split into
    unit ranges (or keyset, with `chunk_by_key`); uuid, text and binary keys keyset. Anything else (float,
    fractional numeric, JSON, arrays, time, ...) is a ConfigError naming the field and the alternatives."""
    index = schema.get_field_index(column)
    if index < 0:
        names = ", ".join(schema.names[:20])
        raise ConfigError(field_path, f"column {column!r} is not in the result (columns: {names})")
    arrow_type = schema.field(index).type
    kind = kind_of(arrow_type)
    if kind in RANGE_KINDS:
        return kind, by_key
    kind = keyset_kind_of(arrow_type)
    if kind is None:
        raise ConfigError(
            field_path,
            f"column {column!r} is {type_words(schema.field(index))}, which cannot be split into exact ranges or"
            " ordered keysets",
            "chunk by an integer (or numeric with scale 0), date or timestamp column, or by a uuid, text or"
            " binary key (keyset chunking); or use mode: full",
        )
    return kind, True


def time_window_predicate(engine: SourceType, exp: ExportConfig, run_date: dt.date, kind: KeyKind) -> Query:
    """run_date - days_window <= time_column < run_date + 1 day, in UTC days: instants (timestamptz,
    MySQL TIMESTAMP) compare with UTC midnights, naive columns with naive midnights, never the server's zone."""
    if kind is KeyKind.INT:
        raise ConfigError(
            f"{exp.path}.time_column", f"column {exp.time_column!r} is an integer", "use a date or timestamp column"
        )
    col = quote_ident(engine, exp.time_column or "")
    start = window_edge(kind, run_date - dt.timedelta(days=exp.days_window or 0))
    end = window_edge(kind, run_date + dt.timedelta(days=1))
    return q(f"{col} >= ").bind(start) + f" AND {col} < " + q("").bind(end)


def export_query(
    engine: SourceType, exp: ExportConfig, schema: pa.Schema, *, run_date: dt.date, cursor: Any | None
) -> Query:
    """The single-part query for full, incremental and time_window modes (chunked: see chunk_query)."""
    if exp.mode is Mode.INCREMENTAL:
        return incremental_query(engine, exp, cursor)
    if exp.mode is Mode.TIME_WINDOW:
        kind = column_kind(
            schema,
            exp.time_column or "",
            f"{exp.path}.time_column",
            "use a date or timestamp column, or cast one in a query",
        )
        return where(select_all(engine, exp), time_window_predicate(engine, exp, run_date, kind))
    return select_all(engine, exp)


def row_estimate_query(engine: SourceType, exp: ExportConfig) -> Query | None:
    """Cheap catalog estimate for a table (no scan); None for queries."""
    if not exp.table:
        return None
    if engine is SourceType.POSTGRES:
        return (
            q("SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = to_regclass(").bind(
                quote_name(engine, exp.table)
            )
            + ")"
        )
    schema, _, name = exp.table.rpartition(".")
    base = q("SELECT table_rows FROM information_schema.tables WHERE table_name = ").bind(name)
    return base + " AND table_schema = " + (q("").bind(schema) if schema else q("DATABASE()"))
