"""One PostgreSQL part read by several connections at one point in time (as `pg_dump -j` does).

A single COPY is bound by one server backend formatting rows on one core. A whole-table part (`SELECT *
FROM <table>`, no predicate: full mode, or a one-chunk plan) of a large heap table is instead read as
`ctid` ranges (TID range scans: each reader reads only its pages) by `readers()` connections that share
one snapshot: a coordinating REPEATABLE READ transaction exports it (`pg_export_snapshot()`), each reader
imports it (`SET TRANSACTION SNAPSHOT`) as the first statement of its own REPEATABLE READ transaction,
and the coordinator ends as soon as every reader has imported it. The part therefore holds exactly the
rows one COPY would have read, from one consistent snapshot; only their order differs, and a query
without ORDER BY has none. The last range is open-ended, so rows on pages added since the size was read
(invisible to the snapshot anyway) cannot be missed.

Readers run in threads (the drivers release the GIL) and hand batches or CSV blocks to one consumer
through a small queue, so memory grows by a few batches per extra reader. RIVET_PG_READERS sets the
number of readers; the default is 1 (off), see `readers()`.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
import pyarrow as pa

from rivet.config.env import env_int
from rivet.sources import pg_copy
from rivet.sources.query import Query, q

if TYPE_CHECKING:
    from rivet.sources.postgres import PostgresSource

READERS_ENV = "RIVET_PG_READERS"
MIN_PAGES = 4096  # 32 MB of heap: below this the extra connections cost more than they save
QUEUE_PER_READER = 2
_IDENT = r'"(?:[^"]|"")+"'
_SELECT_ALL = re.compile(rf"SELECT \* FROM ({_IDENT}(?:\.{_IDENT})?)")

T = TypeVar("T")


def readers() -> int:
    """RIVET_PG_READERS, default 1 (off): on 2 cores the client's decoding and encoding already take the
    core the server does not, and 2 readers measured 5-15% slower (bench, 5M rows); with more cores
    than the one export uses, 2-4 readers let the server format rows on as many."""
    return env_int(READERS_ENV, 1, 1)


def whole_table(query: Query) -> str | None:
    """The quoted relation when `query` is exactly the builders' `SELECT * FROM <table>` (sql.select_all)."""
    if query.params or len(query.fragments) != 1:
        return None
    match = _SELECT_ALL.fullmatch(query.fragments[0])
    return match.group(1) if match else None


@dataclass(frozen=True)
class Split:
    snapshot: str
    predicates: tuple[str, ...]  # one ctid range per reader, together every page


def ctid_ranges(pages: int, n: int) -> tuple[str, ...]:
    """n predicates over ctid partitioning every tuple: [0, b1), [b1, b2), ..., [b(n-1), end of table)."""
    bounds = [pages * i // n for i in range(1, n)]
    preds = []
    for i in range(n):
        lo = f"ctid >= '({bounds[i - 1]},0)'::tid" if i > 0 else ""
        hi = f"ctid < '({bounds[i]},0)'::tid" if i < n - 1 else ""
        preds.append(" AND ".join(p for p in (lo, hi) if p) or "TRUE")
    return tuple(preds)


_PLAN_SQL = """
SELECT pg_export_snapshot(), c.relkind, pg_relation_size(c.oid) / current_setting('block_size')::int
FROM pg_catalog.pg_class c WHERE c.oid = to_regclass(%s)
"""


class Coordinator:
    """The snapshot-exporting transaction: open until every reader has imported its snapshot."""

    def __init__(self, source: PostgresSource, relation: str, n: int) -> None:
        self.split: Split | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._waiting = n
        self._lock = threading.Lock()
        conn = source.session(autocommit=False)
        try:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            row = conn.execute(_PLAN_SQL, (relation,)).fetchone()
        except psycopg.Error as exc:
            conn.close()
            raise source.error(exc, "query") from None
        if row is None or row[1] not in ("r", "m") or int(row[2]) < MIN_PAGES:
            conn.close()
            return
        self._conn = conn
        self.split = Split(str(row[0]), ctid_ranges(int(row[2]), n))

    def imported(self) -> None:
        """One reader has imported the snapshot (or gave up): the last one ends the coordinator."""
        with self._lock:
            self._waiting -= 1
            if self._waiting <= 0:
                self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
            conn.close()


def join_snapshot_sql(snapshot: str) -> list[str]:
    """The first statements of a reader's transaction (after BEGIN)."""
    if not re.fullmatch(r"[0-9A-Fa-f-]+", snapshot):
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    return ["SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", f"SET TRANSACTION SNAPSHOT '{snapshot}'"]


def join_snapshot(adbc_conn: Any, snapshot: str, on_joined: Callable[[], None] | None = None) -> None:
    """Turn an ADBC connection (`postgres.BulkConnection`) into a reader of `snapshot` (leaving autocommit
    opens a transaction), then `on_joined()`, also when joining failed (the coordinator need not wait)."""
    try:
        adbc_conn.set_autocommit(False)
        for statement in join_snapshot_sql(snapshot):
            adbc_conn.execute(statement)
    finally:
        if on_joined is not None:
            on_joined()


_DONE = object()


def merge(producers: list[Callable[[Callable[[T], bool]], None]]) -> Iterator[T]:
    """Run each producer in a thread; yield what they put, in arrival order, until all are done.

    A producer calls `put(item)`, which returns False once the consumer has gone (it should then stop).
    The first error of any producer is raised here; closing the iterator stops every producer."""
    slots: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_PER_READER * len(producers))
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(produce: Callable[[Callable[[T], bool]], None]) -> None:
        try:
            produce(put)
            put(_DONE)
        except BaseException as exc:  # handed to the consumer
            put(exc)

    threads = [threading.Thread(target=run, args=(p,), name="rivet-pg-reader", daemon=True) for p in producers]
    for t in threads:
        t.start()
    try:
        running = len(threads)
        while running:
            item = slots.get()
            if item is _DONE:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        for t in threads:
            t.join()


def _plan(source: PostgresSource, query: Query) -> Coordinator | None:
    n = readers()
    relation = whole_table(query)
    if n < 2 or relation is None:
        return None
    coordinator = Coordinator(source, relation, n)
    if coordinator.split is None:
        return None
    return coordinator


def stream(source: PostgresSource, query: Query, schema: pa.Schema, batch_size: int) -> Iterator[pa.RecordBatch] | None:
    """Record batches of a whole-table `query` from several ADBC readers, or None when not applicable."""
    coordinator = _plan(source, query)
    if coordinator is None:
        return None
    assert coordinator.split is not None
    split = coordinator.split
    relation = whole_table(query)
    assert relation is not None

    def producer(predicate: str) -> Callable[[Callable[[pa.RecordBatch], bool]], None]:
        def produce(put: Callable[[pa.RecordBatch], bool]) -> None:
            ranged = q(f"SELECT * FROM {relation} WHERE {predicate}")
            batches = source.stream(ranged, schema, batch_size, snapshot=split.snapshot, on_joined=coordinator.imported)
            with contextlib.closing(batches):
                for batch in batches:
                    if not put(batch):
                        return

        return produce

    return _guarded(merge([producer(p) for p in split.predicates]), coordinator)


def csv_blocks(source: PostgresSource, query: Query, schema: pa.Schema) -> Iterator[tuple[bytes, int]] | None:
    """Server-formatted CSV blocks of a whole-table `query` from several readers, or None."""
    relation = whole_table(query)
    if relation is None or pg_copy.passthrough_sql(query, schema) is None:
        return None
    coordinator = _plan(source, query)
    if coordinator is None:
        return None
    assert coordinator.split is not None
    split = coordinator.split

    def producer(predicate: str) -> Callable[[Callable[[tuple[bytes, int]], bool]], None]:
        def produce(put: Callable[[tuple[bytes, int]], bool]) -> None:
            copy = pg_copy.csv_copy_sql(f"SELECT * FROM {relation} WHERE {predicate}", schema)
            assert copy is not None
            conn = source.session(autocommit=False)
            try:
                try:
                    for statement in join_snapshot_sql(split.snapshot):
                        conn.execute(statement)
                finally:
                    coordinator.imported()
                try:
                    for statement in [*source.session_sql(), *pg_copy.settings_sql(local=False)]:
                        conn.execute(statement)
                except psycopg.Error as exc:
                    raise source.error(exc, "connect") from None
                for block in pg_copy.copy_blocks(conn, copy, source):
                    if not put(block):
                        return
            finally:
                conn.close()

        return produce

    return _guarded(merge([producer(p) for p in split.predicates]), coordinator)


def _guarded(items: Iterator[T], coordinator: Coordinator) -> Iterator[T]:
    try:
        yield from items
    finally:
        coordinator.close()
        close = getattr(items, "close", None)
        if close is not None:
            close()
