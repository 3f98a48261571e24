"""MySQL/MariaDB: metadata (describe, scalar) through PyMySQL, bulk rows through ConnectorX.

ConnectorX's `arrow_stream` reads the binary protocol at 0.84x the CLI's floor (perf-notes), through a
relay that keeps it a bounded distance ahead of the writer (`readahead.py`): without it, the rows the
writer had not taken yet piled up in memory. It reads DECIMAL through a 28-digit decimal and emits
decimal(38,10), which is exact only for precision <= 28 and scale <= 10; wider decimals (and MySQL 8
JSON) are fetched as text instead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import socket
import ssl
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import connectorx as cx
import pyarrow as pa
import pymysql

from rivet.config.model import SourceConfig, SourceType, TlsMode
from rivet.errors import SourceError, UnsupportedTypeError
from rivet.log import log
from rivet.sources import liveness
from rivet.sources.columns import is_text, overrides
from rivet.sources.conform import ROW_KEY, conform_batch, rechunk
from rivet.sources.failures import mysql_error, stalled, unreachable
from rivet.sources.mysql_types import MyField, column_field, invalid_date_refusal, quote_ident
from rivet.sources.query import Query, mysql_literal
from rivet.sources.readahead import Relay
from rivet.sources.sqltext import bare, subquery
from rivet.sources.tls import (
    MYSQL_URL_TLS_KEYS,
    check_ca_file,
    cx_tls_params,
    mysql_ssl_context,
    mysql_tls,
    warn_if_plaintext,
)
from rivet.sources.types import JSON
from rivet.sources.urls import MYSQL_SCHEMES, PG_LIVENESS, cx_mysql_url, parse_url, with_endpoint

CONNECT_TIMEOUT_S = 10
RELAY_ENV = "RIVET_MYSQL_RELAY"  # 0/off: ConnectorX reads the server directly, as far ahead as it likes
# ConnectorX builds batches of at most this many rows (fewer if batch_size says so): each batch in flight
# (being built, read ahead, queued, conformed) costs its rows once. 5M x 12 columns, Parquet: peak RSS
# 221 MB with 16,384-row batches, 249-261 MB with 50,000, same wall time and output.
READ_BATCH_ROWS = 16_384
CX_EXACT_DECIMAL_PRECISION = 28
CX_DECIMAL_SCALE = 10

_KEY = r"(?:(?:`[^`]+`|\w+)\.)*(`[^`]+`|\w+)(?:\s+(asc|desc))?"
_ORDER_BY = re.compile(rf"(?is)\border\s+by\s+({_KEY}(?:\s*,\s*{_KEY})*)\s*(?:limit\s+\d+(?:\s*(?:,|offset)\s*\d+)?)?$")
_ONE_KEY = re.compile(rf"(?is){_KEY}")


def _not_interrupt(exc: BaseException) -> bool:
    return not isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit))


class MysqlSource:
    """A MySQL or MariaDB source; one PyMySQL session for metadata, one ConnectorX read per stream()."""

    engine = SourceType.MYSQL

    def __init__(self, cfg: SourceConfig) -> None:
        self._url = parse_url(cfg.url.reveal(), MYSQL_SCHEMES, "mysql")
        self._timeout_s = cfg.tuning.statement_timeout_s
        # Both connections follow one TLS setting: source.tls, else the URL's ssl-mode (refused if they differ).
        tls = mysql_tls(self._url, cfg.tls)
        check_ca_file(tls)
        # ConnectorX's URL: keepalives, TCP_USER_TIMEOUT, no switch to a Unix socket, then ssl-mode/ssl-ca.
        self._cx_url = cx_mysql_url(self._url, cx_tls_params(tls), drop=MYSQL_URL_TLS_KEYS if tls.mode else ())
        # A relay holds ConnectorX's read to about a batch ahead (sources/readahead.py), unless
        # ConnectorX must check the server's host name, which it would then see as the relay's.
        self._relay = tls.mode is not TlsMode.VERIFY_FULL and relay_enabled()
        self._read_timeout_s = cfg.tuning.read_timeout
        self._lock = threading.Lock()
        read_timeout = cfg.tuning.read_timeout or None  # PyMySQL: None = wait forever
        context = mysql_ssl_context(tls)
        try:
            self._conn = pymysql.connect(
                host=self._url.host,
                port=self._url.port,
                user=self._url.user,
                password=self._url.password,
                database=self._url.database or None,
                autocommit=True,
                charset="utf8mb4",
                connect_timeout=CONNECT_TIMEOUT_S,
                read_timeout=read_timeout,
                write_timeout=read_timeout,
                ssl=context,
                ssl_disabled=tls.mode is not None and context is None,
            )
            _keepalive(self._conn._sock)
            self.is_mariadb = "mariadb" in self._conn.get_server_info().lower()
            with self._conn.cursor() as cur:
                for statement in self.session_sql():
                    cur.execute(statement)
        except pymysql.Error as exc:
            raise mysql_error(exc, self._url, self._timeout_s, "connect") from None
        # The rows travel through ConnectorX, encrypted only when a TLS mode says so.
        warn_if_plaintext("mysql", self._url.host, tls.mode is not None and context is not None)
        # ConnectorX has no read timeout: the guard closes a connection that stays silent (sources/liveness.py).
        fd = self._conn._sock.fileno()
        liveness.metadata(fd)
        watch = liveness.watch(self._url.host, self._url.port, cfg.tuning.read_timeout, liveness.peer_of(fd))
        weakref.finalize(self, liveness.unwatch, watch)

    def session_sql(self) -> list[str]:
        """UTC session (TIMESTAMP values are converted to the session zone) and the statement timeout."""
        if self.is_mariadb:
            timeout = f"SET SESSION max_statement_time = {int(self._timeout_s)}"
        else:  # MySQL: milliseconds, applies to SELECT only (all we run)
            timeout = f"SET SESSION max_execution_time = {int(self._timeout_s) * 1000}"
        return ["SET time_zone = '+00:00'", timeout]

    def describe(self, query: Query) -> pa.Schema:
        """Zero-row execution; the field descriptors carry type, UNSIGNED, length, decimals, charset."""
        text, params = _bound(query.wrap("SELECT * FROM (\n", "\n) AS rivet_d LIMIT 0"))
        with self._lock:
            try:
                with self._conn.cursor() as cur:
                    cur.execute(text, params)
                    # PyMySQL's public description lacks flags and charset; the field packets have them.
                    fields = [
                        MyField(f.name, f.type_code, f.length, f.scale, f.flags, f.charsetnr)
                        for f in cur._result.fields
                    ]
            except pymysql.Error as exc:
                raise mysql_error(exc, self._url, self._timeout_s, "describe") from None
        wanted = overrides(query.typing, [f.name for f in fields])
        schema = pa.schema([column_field(f, wanted.get(f.name)) for f in fields])
        if query.typing is not None and any(is_text(f) and pa.types.is_decimal(f.type) for f in schema):
            key = self._row_key(query.typing.table, schema.names)
            schema = schema.with_metadata({ROW_KEY: json.dumps(key).encode()})
        return schema

    def _row_key(self, table: str | None, names: list[str]) -> list[str]:
        """The table's primary key columns, to name a refused row (none for a query export)."""
        if not table:
            return []
        schema, _, name = table.rpartition(".")
        sql = (
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE CONSTRAINT_NAME = 'PRIMARY'"
            " AND TABLE_NAME = %s AND TABLE_SCHEMA = "
            + ("%s" if schema else "DATABASE()")
            + " ORDER BY ORDINAL_POSITION"
        )
        with self._lock:
            try:
                with self._conn.cursor() as cur:
                    cur.execute(sql, (name, schema) if schema else (name,))
                    key = [str(r[0]) for r in cur.fetchall()]
            except pymysql.Error as exc:
                raise mysql_error(exc, self._url, self._timeout_s, "describe") from None
        return key if key and all(k in names for k in key) else []

    def scalar(self, query: Query) -> Any:
        """First column of the first row, or None. Temporal values are naive UTC. Values bound by PyMySQL."""
        column = self.column(query)
        return column[0] if column else None

    def column(self, query: Query) -> list[Any]:
        """First column of every row (values bound by PyMySQL)."""
        text, params = _bound(query)
        with self._lock:
            try:
                with self._conn.cursor() as cur:
                    cur.execute(text, params)
                    rows = cur.fetchall()
            except pymysql.Error as exc:
                raise mysql_error(exc, self._url, self._timeout_s, "query") from None
        return [row[0] for row in rows]

    def stream(self, query: Query, schema: pa.Schema, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Batches of exactly `schema`, at most `batch_size` rows each, never empty.

        ConnectorX takes no parameters: values are rendered by `mysql_literal` (hex for text, so no
        sql_mode can make a value leave its literal)."""
        sql = text_projection(query.inline(mysql_literal), schema)
        relay = self._open_relay() if self._relay else None
        try:
            url = self._cx_url if relay is None else with_endpoint(self._cx_url, "127.0.0.1", relay.port)
            try:
                reader = cx.read_sql(
                    url,
                    sql,
                    return_type="arrow_stream",
                    batch_size=min(batch_size, READ_BATCH_ROWS),
                    pre_execution_query=self.session_sql(),
                )
            except BaseException as exc:
                if not _not_interrupt(exc):
                    raise
                raise self._stream_error(exc, schema, relay) from None
            yield from rechunk(_conformed(self._batches(reader, schema, relay), schema), batch_size)
        finally:
            if relay is not None:
                relay.close()

    def _open_relay(self) -> Relay | None:
        """A relay for one read, on a server connection opened here (keepalives, TCP_USER_TIMEOUT); None
        when no relay process can be started (the read then goes to the server directly)."""
        try:
            server = socket.create_connection((self._url.host, self._url.port), timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            raise unreachable("mysql", self._url, str(exc)) from None
        try:
            server.settimeout(None)
            _keepalive(server)
            with contextlib.suppress(OSError):
                server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return Relay(server, self._read_timeout_s)
        except OSError as exc:  # no interpreter to start (sys.executable unset), no fds left, ...
            server.close()
            log("mysql_relay_unavailable", level="warning", error=str(exc), effect="rows read without a bound")
            return None
        except BaseException:
            server.close()
            raise

    def _batches(self, reader: Any, schema: pa.Schema, relay: Relay | None = None) -> Iterator[pa.RecordBatch]:
        while True:
            if relay is not None:
                relay.waiting()
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except BaseException as exc:  # ConnectorX reports server errors as a pyo3 PanicException
                if not _not_interrupt(exc):
                    raise
                raise self._stream_error(exc, schema, relay) from None
            if relay is not None:
                relay.took()
            yield batch

    def _stream_error(self, exc: BaseException, schema: pa.Schema, relay: Relay | None = None) -> SourceError:
        silent_s = relay.stalled_s() if relay is not None else None
        if silent_s is not None:  # the relay closed a server connection that went silent
            return stalled("mysql", self._url, silent_s, self._read_timeout_s)
        text = str(exc)
        if "NaiveTime" in text:  # TIME spans -838:59:59..838:59:59; Arrow time64 is one day
            times = [f.name for f in schema if f.type == pa.time64("us")]
            names = ", ".join(f'"{n}"' for n in times) or "a TIME column"
            cast = f"CAST({quote_ident(times[0])} AS CHAR)" if times else "CAST(col AS CHAR)"
            override = f"columns: {{{times[0]}: string}}" if times else "columns: {<column>: string}"
            return UnsupportedTypeError(
                f"column {names} holds a TIME value outside 00:00:00..23:59:59, which has no exact value (time:"
                f" Arrow times span one day): set {override} on the export (its exact text), or cast it in a"
                f" query, e.g. {cast}"
            )
        return invalid_date_refusal(text, schema) or mysql_error(exc, self._url, self._timeout_s, "read")

    def close(self) -> None:
        self._conn.close()


def relay_enabled() -> bool:
    """RIVET_MYSQL_RELAY: on unless 0/off/false/no."""
    return os.environ.get(RELAY_ENV, "").strip().lower() not in ("0", "off", "false", "no")


def _keepalive(sock: socket.socket | ssl.SSLSocket | None) -> None:
    """PyMySQL turns SO_KEEPALIVE on; add the same probe timing and TCP_USER_TIMEOUT as libpq gets."""
    if sock is None:
        return
    options = [
        ("TCP_KEEPIDLE", PG_LIVENESS["keepalives_idle"]),
        ("TCP_KEEPINTVL", PG_LIVENESS["keepalives_interval"]),
        ("TCP_KEEPCNT", PG_LIVENESS["keepalives_count"]),
        ("TCP_USER_TIMEOUT", PG_LIVENESS["tcp_user_timeout"]),
    ]
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in options:
            if hasattr(socket, name):  # Linux names; other systems keep their defaults
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), int(value))
    except OSError:
        pass  # a Unix socket has no TCP options


def _bound(query: Query) -> tuple[str, tuple[Any, ...] | None]:
    """(text, params) for PyMySQL, whose escaping follows the session's NO_BACKSLASH_ESCAPES; aware
    datetimes become naive UTC, the session's zone."""
    text, params = query.pyformat()
    if not params:
        return text, None
    return text, tuple(
        p.astimezone(dt.UTC).replace(tzinfo=None) if isinstance(p, dt.datetime) and p.tzinfo else p for p in params
    )


def _conformed(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    offset = 0  # rows of the part before the batch, to name a refused row by its position
    for batch in batches:
        yield conform_batch(batch, schema, "mysql", offset)
        offset += batch.num_rows


def needs_text(field: pa.Field) -> bool:
    """Columns ConnectorX cannot carry exactly: wide decimals, and MySQL 8 JSON (sent as text).

    ConnectorX carries DECIMAL through a 28-digit decimal rescaled to scale 10, so a value needs its
    integer digits plus 10 to fit in 28: more than 18 integer digits fail mid-read ("decimal scale is not
    equal to expected scale")."""
    if is_text(field):  # a `columns:` override
        return True
    t = field.type
    if pa.types.is_decimal(t):
        integer_digits = t.precision - t.scale
        return bool(
            t.precision > CX_EXACT_DECIMAL_PRECISION
            or t.scale > CX_DECIMAL_SCALE
            or integer_digits + CX_DECIMAL_SCALE > CX_EXACT_DECIMAL_PRECISION
        )
    return bool(t == JSON)


def text_projection(sql: str, schema: pa.Schema) -> str:
    """`sql` unchanged, or wrapped to read wide decimals/JSON as exact text.

    MariaDB drops a derived table's ORDER BY, so a trailing `ORDER BY <columns> [LIMIT n]` is re-applied
    on the outside (by output column name).
    """
    if not any(needs_text(f) for f in schema):
        return subquery(sql)
    exprs = ", ".join(
        f"CAST({quote_ident(f.name)} AS CHAR) AS {quote_ident(f.name)}" if needs_text(f) else quote_ident(f.name)
        for f in schema
    )
    wrapped = f"SELECT {exprs} FROM ({subquery(sql)}) AS rivet_s"
    order = trailing_order_by(bare(sql))
    return f"{wrapped} ORDER BY {order}" if order else wrapped


def trailing_order_by(sql: str) -> str | None:
    """The final ORDER BY keys as output column references (qualifiers dropped), or None."""
    match = _ORDER_BY.search(sql)
    if not match:
        return None
    keys = []
    for key in _ONE_KEY.finditer(match.group(1)):
        ident, direction = key.group(1), key.group(2)
        if not ident.startswith("`"):
            ident = quote_ident(ident)
        keys.append(f"{ident} {direction.upper()}" if direction else ident)
    return ", ".join(keys)
