"""The pipeline of one part: source batches, read ahead, through a format writer into an upload.

The upload is opened lazily at the first non-empty batch, so an empty chunk writes nothing, and any
failure aborts the upload, so no part appears without all its bytes (M1). So does SIGTERM
(`engine.signals`): it is polled between batches, here and in the read-ahead's consumer.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from rivet.config.model import Compression, Format
from rivet.contract.objects import ObjectInfo
from rivet.destinations.base import Destination, PartUpload
from rivet.engine import fastpath, signals
from rivet.formats.sink import DigestSink
from rivet.formats.writer import ROW_GROUP_ROWS, PartWriter, open_writer, row_group_bytes
from rivet.log import log
from rivet.sources.base import Source
from rivet.sources.query import Query

# Rivet 0.8 keys, set per worker thread by `rivet run` (engine/rivet08.py): a pause after each batch
# (`tuning.throttle_ms`), and a transform that appends meta columns (`meta_columns`), made once per part from
# the relation's schema. Either one turns the PostgreSQL CSV fast path (server-side COPY, no batches) off.
BatchTransform = Callable[[pa.Schema], tuple[pa.Schema, Callable[[pa.RecordBatch], pa.RecordBatch]]]
THROTTLE_MS: ContextVar[int] = ContextVar("rivet_throttle_ms", default=0)
BATCH_TRANSFORM: ContextVar[BatchTransform | None] = ContextVar("rivet_batch_transform", default=None)


@dataclass(frozen=True)
class PartResult:
    rows: int
    size_bytes: int
    content_fingerprint: str
    content_md5: str
    max_cursor: Any = None
    content_crc32c: str = ""


def export_part(
    source: Source,
    query: Query,
    schema: pa.Schema,
    dest: Destination,
    key: str,
    fmt: Format,
    compression: Compression,
    batch_size: int,
    on_rows: Callable[[int], None] = lambda n: None,
    cursor_column: str | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
    replace: ObjectInfo | None = None,
    row_group_max_bytes: int | None = None,
) -> PartResult | None:
    """Write the rows of `query` to `key`; None when there were no rows (nothing written).

    The commit is conditional (fencing): it creates `key` only if nothing is there, or replaces only the
    object `replace` if given; otherwise it fails with PartConflict and overwrites nothing. Row groups are
    cut at `row_group_rows` rows or `row_group_max_bytes` buffered bytes, whichever comes first."""
    max_bytes = row_group_bytes() if row_group_max_bytes is None else row_group_max_bytes
    throttle_s, make_transform = THROTTLE_MS.get() / 1000, BATCH_TRANSFORM.get()
    out_schema, transform = make_transform(schema) if make_transform is not None else (schema, None)
    if fmt is Format.CSV and cursor_column is None and not throttle_s and transform is None:
        # PostgreSQL: the server writes the CSV (fastpath)
        passed = fastpath.export_csv_part(source, query, schema, dest, key, on_rows, replace)
        if passed is not None:
            rows, done = passed
            if done is None:
                return None
            d = done.digest
            return PartResult(rows, d.size, d.fingerprint, d.md5_base64, None, done.crc32c)
    upload: PartUpload | None = None
    sink: DigestSink | None = None
    writer: PartWriter | None = None
    max_cursor: Any = None
    try:
        with contextlib.closing(prefetch(fastpath.read(source, query, schema, batch_size))) as batches:
            for batch in batches:
                signals.check()
                if batch.num_rows == 0:
                    continue
                if upload is None:
                    upload = dest.open_part(key, replace)
                    sink = DigestSink(upload)
                    writer = open_writer(fmt, sink, out_schema, compression, row_group_rows, max_bytes)
                assert writer is not None
                if transform is not None:
                    batch = transform(batch)
                writer.write_batch(batch)
                if cursor_column is not None:
                    max_cursor = _max(max_cursor, batch.column(cursor_column))
                on_rows(batch.num_rows)
                if throttle_s:
                    time.sleep(throttle_s)
        if upload is None or writer is None or sink is None:
            return None
        writer.close()
        signals.check()
        upload.commit(sink.digest.md5_digest)
    except BaseException:
        if sink is not None:
            sink.discard()
        if upload is not None:
            try:
                upload.abort()
            except Exception as exc:  # the original error matters more; the stray upload is logged
                log("upload_abort_failed", level="warning", key=key, error=str(exc))
        raise
    return PartResult(
        rows=writer.rows,
        size_bytes=sink.digest.size,
        content_fingerprint=sink.digest.fingerprint,
        content_md5=sink.digest.md5_base64,
        max_cursor=max_cursor,
        content_crc32c=sink.crc32c,
    )


_DONE = object()
TERMINATE_JOIN_S = 2.0


def prefetch(batches: Iterator[pa.RecordBatch], depth: int = 2) -> Generator[pa.RecordBatch, None, None]:
    """Read the next batches in a thread while the current one is encoded and uploaded.

    The readers (ADBC, ConnectorX) and the encoders (Parquet, zstd) release the GIL, so reading and
    writing overlap on two cores; memory grows by at most `depth` batches. Errors surface in the caller.
    """
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()  # the generator runs (and is closed) in this thread only

    thread = threading.Thread(target=pump, name="rivet-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = slots.get(timeout=0.2)
            except queue.Empty:
                signals.check()  # a worker thread waiting on a slow source still notices SIGTERM
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        # On SIGTERM do not wait for a source read that may take minutes: the daemon thread dies with us.
        thread.join(timeout=TERMINATE_JOIN_S if signals.terminating() else None)


def _max(current: Any, column: pa.ChunkedArray | pa.Array) -> Any:
    value = cast(pa.Scalar, pc.max(column)).as_py()
    if value is None:
        return current
    return value if current is None or value > current else current
