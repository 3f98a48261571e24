"""The pipeline of one part: source batches, read ahead, through a format writer into an upload.

The upload is opened lazily at the first non-empty batch, so an empty chunk writes nothing, and any
failure aborts the upload, so no part appears without all its bytes (M1).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from rivet.config.model import Compression, Format
from rivet.destinations.base import Destination, PartUpload
from rivet.formats.sink import DigestSink
from rivet.formats.writer import ROW_GROUP_ROWS, PartWriter, open_writer
from rivet.log import log
from rivet.sources.base import Source
from rivet.sources.query import Query


@dataclass(frozen=True)
class PartResult:
    rows: int
    size_bytes: int
    content_fingerprint: str
    content_md5: str
    max_cursor: Any = None


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
) -> PartResult | None:
    """Write the rows of `query` to `key`; None when there were no rows (nothing written)."""
    upload: PartUpload | None = None
    sink: DigestSink | None = None
    writer: PartWriter | None = None
    max_cursor: Any = None
    try:
        with contextlib.closing(prefetch(source.stream(query, schema, batch_size))) as batches:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                if upload is None:
                    upload = dest.open_part(key)
                    sink = DigestSink(upload)
                    writer = open_writer(fmt, sink, schema, compression, row_group_rows)
                assert writer is not None
                writer.write_batch(batch)
                if cursor_column is not None:
                    max_cursor = _max(max_cursor, batch.column(cursor_column))
                on_rows(batch.num_rows)
        if upload is None or writer is None or sink is None:
            return None
        writer.close()
        upload.commit(sink.digest.md5_digest)
    except BaseException:
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
    )


_DONE = object()


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
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _max(current: Any, column: pa.ChunkedArray | pa.Array) -> Any:
    value = cast(pa.Scalar, pc.max(column)).as_py()
    if value is None:
        return current
    return value if current is None or value > current else current
