"""Export one part: stream source batches through a format writer into a destination upload.

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

from rivet.config.model import Compression, ExportConfig, Format, Mode
from rivet.contract.manifest import QUARANTINE_DIR, CommitRecord, quarantine_key
from rivet.destinations.base import Destination, PartUpload
from rivet.formats.sink import DigestSink
from rivet.formats.writer import ROW_GROUP_ROWS, PartWriter, open_writer
from rivet.log import log
from rivet.sources.base import Source

MIN_ROW_GROUP_ROWS = 65_536


@dataclass(frozen=True)
class PartResult:
    rows: int
    size_bytes: int
    content_fingerprint: str
    content_md5: str
    max_cursor: Any = None


def export_part(
    source: Source,
    sql: str,
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
    """Write the rows of `sql` to `key`; None when there were no rows (nothing written)."""
    upload: PartUpload | None = None
    sink: DigestSink | None = None
    writer: PartWriter | None = None
    max_cursor: Any = None
    try:
        with contextlib.closing(prefetch(source.stream(sql, schema, batch_size))) as batches:
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


def export_for(
    exp: ExportConfig,
    batch_size: int,
    source: Source,
    sql: str,
    schema: pa.Schema,
    dest: Destination,
    key: str,
    on_rows: Callable[[int], None] = lambda n: None,
) -> PartResult | None:
    """export_part with the export's format, compression and (incremental) cursor column.

    Parallel workers share the row-group memory budget, so peak RSS does not grow with `parallel`.
    """
    cursor = exp.cursor_column if exp.mode is Mode.INCREMENTAL else None
    row_group = max(MIN_ROW_GROUP_ROWS, ROW_GROUP_ROWS // max(1, exp.parallel))
    return export_part(
        source, sql, schema, dest, key, exp.format, exp.effective_compression, batch_size, on_rows, cursor, row_group
    )


def record_for(
    chunk: int, key: str, result: PartResult | None, schema_fp: str, key_range: list[int] | None
) -> CommitRecord:
    """The commit record of a finished chunk; an empty chunk (no result) records no part."""
    if result is None:
        return CommitRecord(chunk, None, 0, 0, "", "", schema_fp, key_range)
    return CommitRecord(
        chunk,
        key,
        result.rows,
        result.size_bytes,
        result.content_fingerprint,
        result.content_md5,
        schema_fp,
        key_range,
        result.max_cursor,
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


def quarantine(dest: Destination, run_id: str, key: str, existing: set[str]) -> str:
    """Move the object at `key` to `_quarantine/<run_id>/<key>` (copy, then delete): never lose evidence (M9).

    A second quarantine of the same key in one run gets a numeric suffix instead of overwriting.
    A failed delete leaves both copies; the next resume moves it again.
    """
    target = quarantine_key(run_id, key)
    n = 1
    while target in existing:
        target = f"{quarantine_key(run_id, key)}.{n}"
        n += 1
    dest.copy(key, target)
    existing.add(target)
    try:
        dest.delete(key)
    except Exception as exc:
        log("quarantine_delete_failed", level="warning", key=key, quarantined_to=target, error=str(exc))
    log("quarantined", key=key, to=target)
    return target


def is_quarantined(key: str) -> bool:
    return key.startswith(QUARANTINE_DIR + "/")
