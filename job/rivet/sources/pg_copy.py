"""PostgreSQL CSV passthrough: the server writes the part's CSV, byte for byte what `formats/writer.py`
would write from the same rows, and `COPY (...) TO STDOUT (FORMAT csv)` bytes go to the part unchanged.

No Arrow array, no Python object per value: the client only moves rows (libpq hands over one row per
COPY message; blocks of about a megabyte go to the sink). The server formats each value as the CSV
writer does, which for most types is its own text output under fixed session settings (DateStyle ISO,
TimeZone UTC, extra_float_digits 1, bytea_output hex, client_encoding UTF8), and for the rest a
per-column expression in the SELECT list:

| Arrow type | expression | quoted |
|---|---|---|
| integers | the column | no |
| Boolean | `col::text` (true/false) | no |
| Float32/64 | the server's shortest text where both notations agree (1e-4 <= abs < 1e10 for float8), else rewritten to Arrow's notation (`nan`, `inf`, `1e-7`, `1.234e+10`); from 2^54 (float4: 2^25) up, the Arrow path | no |
| Decimal(p, s) | the column (numeric output of a numeric(p,s) value has exactly s digits); NaN is refused | s > 6 |
| Date32 | the column, years 1..9999 | no |
| Time64(us) | `to_char(col, 'HH24:MI:SS.US')` | yes |
| text-read (`columns:` string override, unconstrained numeric) | the column: its own text | yes |
| text-read decimal (`columns:` decimal(p,s) override) | none: the Arrow path casts it exactly or refuses | - |
| Timestamp(us[, UTC]) | `to_char(col, 'YYYY-MM-DD"T"HH24:MI:SS.US[Z]')`, years 1..9999 | yes |
| Utf8, JSON, UUID, Binary | the column | yes |

A value outside what the expression formats exactly (a BC or five-digit-year date, `24:00:00`, a NaN
numeric, an infinity) makes the statement fail with a marker the engine recognises
(`PassthroughUnsupported`): it aborts the part and exports it again through the Arrow path, which formats
or refuses the value as it always has. Lists and any other type never take this path (`csv_copy_sql`
returns None). The header is the engine's to write (the CSV writer's own header bytes).

Where it pays: the server is the floor's bottleneck, and its own text output costs it about what this
does, except `to_char` for times and timestamps (`cheap_on_server`). The engine takes this path by
default only for schemas without them (engine/fastpath.py); with them, binary COPY plus client-side
formatting is faster on 2 cores.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import psycopg
import pyarrow as pa
from psycopg import pq

from rivet.sources.columns import is_text
from rivet.sources.pg_types import quote_ident
from rivet.sources.query import Query, postgres_literal
from rivet.sources.sqltext import subquery

if TYPE_CHECKING:
    from rivet.sources.postgres import PostgresSource

# Arrow's CSV writer prints a decimal in plain notation only up to this scale (writer.py); above it the
# value is written as quoted text. Both spell the same digits.
MAX_NATIVE_DECIMAL_SCALE = 6
BLOCK_BYTES = 1 << 20  # rows are handed to the sink in blocks of about this size
FALLBACK_MARKER = "rivet-csv-passthrough-fallback"

# Settings under which the server's text output is the CSV writer's (see the table above), per session.
CSV_SETTINGS = (
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
    ("client_encoding", "UTF8"),
)


class PassthroughUnsupported(Exception):
    """A value the server-side formatting cannot write exactly: export the part through Arrow instead."""


@dataclass(frozen=True)
class CsvCopy:
    """The COPY statement text for a query (without its outer `COPY (`...`)`) and its FORCE_QUOTE list."""

    select: str
    force_quote: tuple[str, ...]

    def statement(self) -> str:
        quote = f", FORCE_QUOTE ({', '.join(self.force_quote)})" if self.force_quote else ""
        return f"COPY ({self.select}) TO STDOUT (FORMAT csv{quote})"


def _fail(why: str, col: str) -> str:
    """An expression that raises (only when evaluated, never at plan time: it depends on the row) with the
    fallback marker in the message."""
    return f"('{FALLBACK_MARKER}: {why} ' || {col}::text)::int"


def _float_text(col: str, single: bool) -> str:
    """Arrow's float text from the server's shortest text.

    Arrow writes the shortest round-trip digits in plain notation when the decimal exponent e is in
    -6..9, else as `d.ddde+N`/`d.ddde-N` (no exponent padding); `nan`, `inf`, `-inf`, `-0`. PostgreSQL
    (extra_float_digits > 0) writes the same digits in plain notation for e in -4..14 (float8) or -4..5
    (float4), else with an exponent of at least two digits. Comparing the value with a power of ten is
    exact for the decimal exponent of its shortest text (that text lies in the value's rounding
    interval, which holds no other double's power of ten).

    The digits differ only where a shorter decimal lies exactly on the rounding interval's edge: Arrow
    takes it (round-half-even reads it back), PostgreSQL's Ryu does not. An edge is an odd multiple of
    half the value's spacing, short in decimal only for integers of more than 54 (float8) or 25 (float4)
    bits: values from 2^54 (2^25) up take the Arrow path."""
    t = "float4" if single else "float8"
    text = f"{col}::text"
    plain = f"({text}::numeric)::text"  # 1.234e-05 -> 0.00001234; 1.2345e+07 -> 12345000
    digits = f"rtrim(replace(ltrim({text}, '-'), '.', ''), '0')"
    int_len = f"length(split_part(ltrim({text}, '-'), '.', 1))"
    sci = (  # 12345678901.5 -> 1.23456789015e+10 (float8, 1e10 <= |x| < 1e15, printed plain by PostgreSQL)
        f"CASE WHEN {col} < 0 THEN '-' ELSE '' END || left({digits}, 1) || "
        f"CASE WHEN length({digits}) > 1 THEN '.' || substr({digits}, 2) ELSE '' END || "
        f"'e+' || ({int_len} - 1)::text"
    )
    fail = f"{_fail('float', col)}::text"
    agree = "1e6" if single else "1e10"  # both plain: 1e-4 <= |x| < this
    ranges = (
        [f"WHEN abs({col}) < '33554432'::{t} THEN {plain} "]  # 1e6..2^25: PostgreSQL exponent, Arrow plain
        if single
        else [f"WHEN abs({col}) < '1e15'::{t} THEN {sci} ", f"WHEN abs({col}) < '18014398509481984'::{t} THEN {text} "]
    )
    return (
        f"CASE WHEN (abs({col}) >= '1e-4'::{t} AND abs({col}) < '{agree}'::{t}) OR {col} = 0 THEN {text} "
        f"WHEN {col} = 'NaN'::{t} THEN 'nan' "
        f"WHEN {col} = 'Infinity'::{t} THEN 'inf' "
        f"WHEN {col} = '-Infinity'::{t} THEN '-inf' "
        f"WHEN abs({col}) < '1e-6'::{t} THEN regexp_replace({text}, 'e-0', 'e-') "
        f"WHEN abs({col}) < '1e-4'::{t} THEN {plain} " + "".join(ranges) + f"ELSE {fail} END"
    )


def column_expression(col: str, t: pa.DataType) -> tuple[str, bool] | None:
    """(expression, quoted) writing column `col` of Arrow type `t` exactly as the CSV writer; None when
    no expression can (lists, and any type not listed in the module's table)."""
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name in ("arrow.uuid", "arrow.json"):
            return col, True
        return None
    if pa.types.is_integer(t):
        return col, False
    if pa.types.is_boolean(t):
        return f"{col}::text", False
    if pa.types.is_float32(t) or pa.types.is_float64(t):
        return _float_text(col, pa.types.is_float32(t)), False
    if pa.types.is_decimal(t):
        expr = f"CASE WHEN {col} = 'NaN'::numeric THEN {_fail('NaN', col)} ELSE {col} END"
        return expr, t.scale > MAX_NATIVE_DECIMAL_SCALE
    if pa.types.is_string(t) or pa.types.is_binary(t):
        return col, True
    if pa.types.is_date32(t):
        return (
            f"CASE WHEN {col} < '0001-01-01'::date OR {col} > '9999-12-31'::date THEN {_fail('date', col)}::text::date ELSE {col} END",
            False,
        )
    if t == pa.time64("us"):
        return (  # 24:00:00 falls back to the Arrow path, which writes it as 24:00:00.000000
            f"CASE WHEN {col} = '24:00:00'::time THEN {_fail('time', col)}::text ELSE to_char({col}, 'HH24:MI:SS.US') END",
            True,
        )
    if pa.types.is_timestamp(t) and t.unit == "us" and t.tz in (None, "UTC"):
        sql_type, fmt = (
            ("timestamptz", 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') if t.tz else ("timestamp", 'YYYY-MM-DD"T"HH24:MI:SS.US')
        )
        out_of_range = f"{col} < '0001-01-01 00:00:00+00'::{sql_type} OR {col} >= '10000-01-01 00:00:00+00'::{sql_type}"
        return f"CASE WHEN {out_of_range} THEN {_fail('timestamp', col)}::text ELSE to_char({col}, '{fmt}') END", True
    return None


def csv_copy_sql(sql: str, schema: pa.Schema, where: str | None = None) -> CsvCopy | None:
    """The passthrough COPY for `sql` (already inlined) of `schema`, or None when a column cannot take it.

    `where` is an extra predicate on the derived table (a reader's ctid range)."""
    if len(set(schema.names)) != len(schema.names) or not len(schema):
        return None  # rivet_s."name" would be ambiguous
    exprs, quoted = [], []
    for i, field in enumerate(schema):
        col = f"rivet_s.{quote_ident(field.name)}"
        if is_text(field):  # the database's text (string override, unconstrained numeric); a decimal
            got = (col, True) if pa.types.is_string(field.type) else None  # override is cast on the client
        else:
            got = column_expression(col, field.type)
        if got is None:
            return None
        expr, quote = got
        alias = f"c{i + 1}"
        exprs.append(f"{expr} AS {alias}")
        if quote:
            quoted.append(alias)
    select = f"SELECT {', '.join(exprs)} FROM ({subquery(sql)}) AS rivet_s"
    if where:
        select += f" WHERE {where}"
    return CsvCopy(select, tuple(quoted))


def cheap_on_server(schema: pa.Schema) -> bool:
    """Whether the passthrough costs the server about what its own CSV does. Not with timestamps and
    times: `to_char` costs the server 1.8 s more per million values than its own output (5M-row bench:
    the server, already the floor's bottleneck, took 10.8 s instead of 8.6 s), while the Arrow path
    reads them in binary (cheaper for the server) and formats them on the client (formats/csv_fast.py)."""
    for field in schema:
        t = field.type.storage_type if isinstance(field.type, pa.BaseExtensionType) else field.type
        if pa.types.is_timestamp(t) or pa.types.is_time(t):
            return False
    return True


def passthrough_sql(query: Query, schema: pa.Schema) -> CsvCopy | None:
    return csv_copy_sql(query.inline(postgres_literal), schema)


def is_fallback(exc: BaseException) -> bool:
    return FALLBACK_MARKER in str(exc)


def settings_sql(local: bool) -> list[str]:
    scope = "LOCAL " if local else ""
    return [f"SET {scope}{name} = '{value}'" for name, value in CSV_SETTINGS]


def copy_blocks(conn: psycopg.Connection[Any], copy: CsvCopy, source: PostgresSource) -> Iterator[tuple[bytes, int]]:
    """(block of whole CSV rows, rows in it) from `copy` on `conn`, about BLOCK_BYTES each.

    Reads libpq directly (one COPY message is one row; psycopg's Copy iterator costs 1.6x the CPU per row),
    without blocking in libpq: a blocking PQgetCopyData holds the GIL while it waits for the network,
    stalling the other readers and the upload thread. Driver errors become SourceError (`source.error`),
    except the fallback marker: PassthroughUnsupported. The caller owns `conn` and closes it, also when
    it stops reading early (closing ends the COPY)."""
    pg = conn.pgconn
    rows = 0
    try:
        pg.send_query(copy.statement().encode())
        started = pg.get_result()
        if started is None or started.status != pq.ExecStatus.COPY_OUT:
            _raise_result(started, conn)
        fd, get, consume, wait = pg.socket, pg.get_copy_data, pg.consume_input, select.select
        parts: list[Any] = []
        size = 0
        while True:
            n, row = get(1)
            if n > 0:
                parts.append(row)
                size += n
                if size >= BLOCK_BYTES:
                    rows += len(parts)
                    yield b"".join(parts), len(parts)
                    parts, size = [], 0
            elif n == 0:
                wait([fd], [], [])  # releases the GIL
                consume()
            else:
                break
        if parts:
            rows += len(parts)
            yield b"".join(parts), len(parts)
        done = pg.get_result()
        while pg.get_result() is not None:
            pass
        if done is None or done.status != pq.ExecStatus.COMMAND_OK:
            _raise_result(done, conn)
        reported = (done.command_status or b"").split()
        if len(reported) == 2 and reported[1].isdigit() and int(reported[1]) != rows:
            raise psycopg.DataError(f"COPY reported {int(reported[1])} rows, {rows} arrived")
    except psycopg.Error as exc:
        if is_fallback(exc):
            raise PassthroughUnsupported(str(exc).splitlines()[0]) from None
        raise source.error(exc, "read") from None


def _raise_result(result: Any, conn: psycopg.Connection[Any]) -> NoReturn:
    if result is not None and result.status == pq.ExecStatus.FATAL_ERROR:
        raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
    raise psycopg.OperationalError(conn.pgconn.error_message.decode("utf-8", "replace") or "COPY did not start")


def stream_csv(source: PostgresSource, query: Query, schema: pa.Schema) -> Iterator[tuple[bytes, int]] | None:
    """The rows of `query` as CSV blocks formatted by the server, or None when the schema cannot pass."""
    copy = passthrough_sql(query, schema)
    if copy is None:
        return None
    return _stream(source, copy)


def _stream(source: PostgresSource, copy: CsvCopy) -> Iterator[tuple[bytes, int]]:
    conn = source.session()
    try:
        try:
            for statement in [*source.session_sql(), *settings_sql(local=False)]:
                conn.execute(statement)
        except psycopg.Error as exc:
            raise source.error(exc, "connect") from None
        yield from copy_blocks(conn, copy, source)
    finally:
        conn.close()
