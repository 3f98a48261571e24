"""PostgreSQL: metadata (describe, scalar) through psycopg, bulk rows through ADBC's binary COPY.

ADBC streams record batches straight from `COPY ... TO STDOUT (FORMAT binary)`, about 1.4x the server's
own floor with flat memory (perf-notes); psycopg is lighter for one-row answers and exposes typmods.
"""

from __future__ import annotations

import contextlib
import json
import threading
import weakref
from collections.abc import Callable, Generator, Iterator
from typing import Any

import adbc_driver_manager
import adbc_driver_postgresql
import psycopg
import pyarrow as pa

from rivet.config.model import SourceConfig, SourceType
from rivet.errors import SourceError
from rivet.sources import liveness, pg_parallel
from rivet.sources.columns import is_text, key_columns, overrides
from rivet.sources.conform import ROW_KEY, conform_pg_batch, rechunk
from rivet.sources.failures import pg_error
from rivet.sources.pg_types import PgColumn, PgTypeInfo, catalog_oids_needed, column_field, quote_ident
from rivet.sources.query import Query, postgres_literal
from rivet.sources.sqltext import subquery
from rivet.sources.tls import check_ca_file, pg_tls_params, warn_if_plaintext
from rivet.sources.urls import POSTGRES_SCHEMES, parse_url, pg_url

# ADBC cuts batches by bytes, not rows: aim a batch at `batch_size` rows of a typical width, clamped,
# so batch_size stays the memory knob (one in-flight batch) whatever the table's row count.
HINT_BYTES_PER_ROW = 256
MIN_HINT_BYTES = 1 << 20
MAX_HINT_BYTES = 32 << 20
CONNECT_TIMEOUT_S = 10
_MARKER = "rivet_ndims_"

_CATALOG_SQL = """
SELECT t.oid, t.typname, t.typtype, t.typelem, t.typcategory
FROM pg_catalog.pg_type t
WHERE t.oid = ANY(%(oids)s)
   OR t.oid IN (SELECT typelem FROM pg_catalog.pg_type WHERE oid = ANY(%(oids)s))
"""


_PRIMARY_KEY_SQL = """
SELECT a.attname FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = to_regclass(%(rel)s) AND i.indisprimary
ORDER BY array_position(i.indkey::int2[], a.attnum)
"""


class PostgresSource:
    """A PostgreSQL source; one psycopg session for metadata, one ADBC connection per stream()."""

    engine = SourceType.POSTGRES

    def __init__(self, cfg: SourceConfig) -> None:
        self._url = parse_url(cfg.url.reveal(), POSTGRES_SCHEMES, "postgres")
        self._timeout_s = cfg.tuning.statement_timeout_s
        self._lock = threading.Lock()  # psycopg connections are not for concurrent use
        check_ca_file(cfg.tls)
        # One libpq URI for both drivers: keepalives, TCP_USER_TIMEOUT, then source.tls (sslmode, sslrootcert).
        self._conninfo = pg_url(self._url, pg_tls_params(self._url, cfg.tls))
        try:
            self._conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
            for statement in self.session_sql():
                self._conn.execute(statement)
        except psycopg.Error as exc:
            raise self.error(exc, "connect") from None
        info = self._conn.info
        warn_if_plaintext("postgres", info.host, bool(self._conn.pgconn.ssl_in_use))
        # libpq has no read timeout: the guard closes a connection that stays silent (sources/liveness.py).
        fd = self._conn.fileno()
        liveness.metadata(fd)
        watch = liveness.watch(self._url.host, self._url.port, cfg.tuning.read_timeout, liveness.peer_of(fd))
        weakref.finalize(self, liveness.unwatch, watch)

    def session(self, autocommit: bool = True) -> psycopg.Connection[Any]:
        """A new psycopg session like the metadata one (the same libpq URI: TLS, keepalives), for the
        COPY paths (`pg_copy`, `pg_parallel`); the caller runs `session_sql()` in it and closes it."""
        try:
            return psycopg.connect(self._conninfo, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            raise self.error(exc, "connect") from None

    def error(self, exc: BaseException, doing: str) -> SourceError:
        """`exc` (psycopg or ADBC) as the SourceError this source reports: classified, credentials masked."""
        return pg_error(exc, self._url, self._timeout_s, doing)

    def session_sql(self) -> list[str]:
        """Every session (metadata and bulk) runs in UTC, so timestamps and any value the server converts
        are read alike whatever the server's or role's TimeZone, and under the configured timeout."""
        return [f"SET statement_timeout = {int(self._timeout_s) * 1000}", "SET TIME ZONE 'UTC'"]

    def describe(self, query: Query) -> pa.Schema:
        """Zero-row execution gives OIDs and typmods; pg_type resolves enums, arrays and extensions."""
        text, params = query.wrap("SELECT * FROM (\n", "\n) AS rivet_d LIMIT 0").pyformat()
        with self._lock:
            try:
                cur = self._conn.execute(text, params or None)
                result = cur.pgresult
                assert result is not None and cur.description is not None
                columns = [PgColumn(d.name, result.ftype(i), result.fmod(i)) for i, d in enumerate(cur.description)]
                catalog = self._catalog(catalog_oids_needed(columns))
            except psycopg.Error as exc:
                raise self.error(exc, "describe") from None
        wanted = overrides(query.typing, [c.name for c in columns])
        csv = query.typing is not None and query.typing.csv
        keys = key_columns(query.typing)  # an unconstrained numeric key stays refused: it is no text
        schema = pa.schema([column_field(c, catalog, wanted.get(c.name), csv and c.name not in keys) for c in columns])
        if any(is_text(f) and pa.types.is_decimal(f.type) for f in schema):
            schema = schema.with_metadata({ROW_KEY: json.dumps(self._row_key(query, schema.names)).encode()})
        return schema

    def _row_key(self, query: Query, names: list[str]) -> list[str]:
        """The columns that name a row in a refusal: the table's primary key when the export reads a whole
        table and the result has it, else none (the row is then named by its position in the part)."""
        relation = pg_parallel.whole_table(query)
        if relation is None:
            return []
        with self._lock:
            try:
                rows = self._conn.execute(_PRIMARY_KEY_SQL, {"rel": relation}).fetchall()
            except psycopg.Error as exc:
                raise self.error(exc, "describe") from None
        key = [str(r[0]) for r in rows]
        return key if key and all(k in names for k in key) else []

    def _catalog(self, oids: list[int]) -> dict[int, PgTypeInfo]:
        if not oids:
            return {}
        rows = self._conn.execute(_CATALOG_SQL, {"oids": oids}).fetchall()
        return {int(r[0]): PgTypeInfo(int(r[0]), r[1], r[2], int(r[3]), r[4]) for r in rows}

    def scalar(self, query: Query) -> Any:
        """First column of the first row, or None when there is no row (values bound by psycopg)."""
        column = self.column(query)
        return column[0] if column else None

    def column(self, query: Query) -> list[Any]:
        """First column of every row (values bound by psycopg)."""
        text, params = query.pyformat()
        with self._lock:
            try:
                rows = self._conn.execute(text, params or None).fetchall()
            except psycopg.Error as exc:
                raise self.error(exc, "query") from None
        return [row[0] for row in rows]

    def stream(
        self,
        query: Query,
        schema: pa.Schema,
        batch_size: int,
        snapshot: str | None = None,
        on_joined: Callable[[], None] | None = None,
    ) -> Generator[pa.RecordBatch, None, None]:
        """Batches of exactly `schema`, at most `batch_size` rows each, never empty.

        ADBC reads through COPY, which takes no parameters: values are rendered by `postgres_literal`.
        `snapshot`: read in a transaction on that exported snapshot (`pg_parallel`), then `on_joined()`."""
        sql, markers = with_ndims_markers(query.inline(postgres_literal), schema)
        conn = self._connect_bulk()
        try:
            try:
                if snapshot is not None:
                    pg_parallel.join_snapshot(conn, snapshot, on_joined)
                reader = conn.query(sql, {_HINT_OPTION: str(batch_hint_bytes(batch_size))})
            except (adbc_driver_manager.Error, OSError) as exc:
                raise self.error(exc, "query") from None
            yield from rechunk(self._conformed(reader, schema, markers), batch_size)
        finally:
            conn.close()

    def _conformed(
        self, reader: pa.RecordBatchReader, schema: pa.Schema, markers: list[tuple[int, str]]
    ) -> Iterator[pa.RecordBatch]:
        offset = 0  # rows of the part before the batch, to name a refused row when no key names it
        for batch in self._batches(reader):
            yield conform_pg_batch(batch, schema, markers, offset)
            offset += batch.num_rows

    def _batches(self, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        """The reader's batches, with mid-stream driver failures mapped to SourceError."""
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (adbc_driver_manager.Error, OSError, pa.ArrowException) as exc:
                raise self.error(exc, "read") from None
            yield batch

    def _connect_bulk(self) -> BulkConnection:
        try:
            conn = BulkConnection(self._conninfo)
        except (adbc_driver_manager.Error, OSError) as exc:
            raise self.error(exc, "connect") from None
        try:
            for statement in self.session_sql():
                conn.execute(statement)
        except (adbc_driver_manager.Error, OSError) as exc:
            conn.close()
            raise self.error(exc, "connect") from None
        return conn

    def close(self) -> None:
        self._conn.close()


_HINT_OPTION = adbc_driver_postgresql.StatementOptions.BATCH_SIZE_HINT_BYTES.value


class BulkConnection:
    """One ADBC PostgreSQL connection (autocommit) through the driver manager's own API.

    Not through its DB-API module, which imports pyarrow.dataset (about 7 MB of RSS in every process,
    for bulk ingestion this engine never does). The result readers it hands out are closed with it."""

    def __init__(self, uri: str) -> None:
        self._db = adbc_driver_postgresql.connect(uri)
        try:
            self._conn = adbc_driver_manager.AdbcConnection(self._db)
        except BaseException:
            self._db.close()
            raise
        self._open: list[tuple[adbc_driver_manager.AdbcStatement, pa.RecordBatchReader]] = []

    def set_autocommit(self, enabled: bool) -> None:
        self._conn.set_autocommit(enabled)

    def execute(self, sql: str) -> None:
        """Run one statement that returns no rows."""
        stmt = adbc_driver_manager.AdbcStatement(self._conn)
        try:
            stmt.set_sql_query(sql)
            stmt.execute_update()
        finally:
            stmt.close()

    def query(self, sql: str, options: dict[str, str]) -> pa.RecordBatchReader:
        """The rows of `sql` as a reader (statement `options` set first), valid until `close`."""
        stmt = adbc_driver_manager.AdbcStatement(self._conn)
        try:
            stmt.set_options(**options)
            stmt.set_sql_query(sql)
            handle, _ = stmt.execute_query()
            reader = pa.RecordBatchReader._import_from_c(handle.address)
        except BaseException:
            stmt.close()
            raise
        self._open.append((stmt, reader))
        return reader

    def close(self) -> None:
        """Readers first, then their statements, the connection and the database (errors ignored: the
        part has already succeeded or failed by now)."""
        for stmt, reader in self._open:
            with contextlib.suppress(Exception):
                reader.close()
            with contextlib.suppress(Exception):
                stmt.close()
        self._open = []
        with contextlib.suppress(Exception):
            self._conn.close()
        with contextlib.suppress(Exception):
            self._db.close()


def batch_hint_bytes(batch_size: int) -> int:
    """ADBC's batch size hint for `batch_size` rows."""
    return min(max(batch_size * HINT_BYTES_PER_ROW, MIN_HINT_BYTES), MAX_HINT_BYTES)


def _read_as(field: pa.Field) -> str:
    """How the bulk read selects a column: text-read columns as `::text`; an array whose subscripts do not
    start at 1 as NULL (ADBC fails on one based below 0 without naming the column; the marker refuses it)."""
    col = f"rivet_s.{quote_ident(field.name)}"
    if is_text(field):
        return f"{col}::text AS {quote_ident(field.name)}"
    if pa.types.is_list(field.type):
        return f"CASE WHEN array_lower({col}, 1) <> 1 THEN NULL ELSE {col} END AS {quote_ident(field.name)}"
    return col


def with_ndims_markers(sql: str, schema: pa.Schema) -> tuple[str, list[tuple[int, str]]]:
    """Add one integer per list column: 2 when this row's array has more than one dimension, 1 when its
    subscripts do not start at 1 (`'[0:1]={7,8}'`), else 0; and read text-read columns (`columns.is_text`:
    overrides, unconstrained numeric in CSV) as `::text`, the database's own text of the value.

    ADBC silently flattens multi-dimensional arrays and drops the bounds of an array, and pg types record
    neither, so the check must happen on the rows. Returns the query and (marker column index, column name).
    """
    lists = [f.name for f in schema if pa.types.is_list(f.type)]
    texts = [f.name for f in schema if is_text(f)]
    if not lists and not texts:
        return subquery(sql), []
    unique = len(set(schema.names)) == len(schema.names)  # else rivet_s."a" would be ambiguous
    cols = ", ".join(_read_as(f) for f in schema) if unique else "rivet_s.*"
    exprs = "".join(
        f", CASE WHEN coalesce(array_ndims({col}), 1) > 1 THEN 2 WHEN array_lower({col}, 1) <> 1 THEN 1 ELSE 0 END"
        f" AS {_MARKER}{k}"
        for k, col in enumerate(f"rivet_s.{quote_ident(name)}" for name in lists)
    )
    markers = [(len(schema) + k, name) for k, name in enumerate(lists)]
    return f"SELECT {cols}{exprs} FROM ({subquery(sql)}) AS rivet_s", markers
