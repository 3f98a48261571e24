"""The PostgreSQL fast paths of `pipeline.export_part`.

- `read`: a whole-table part of a large table is read by several connections sharing one snapshot
  (`sources/pg_parallel.py`); any other part by the source's one stream.
- `export_csv_part`: CSV parts without Arrow. The server's COPY CSV bytes, formatted to be exactly the
  bytes `formats/writer.py` writes from the same rows (`sources/pg_copy.py`), go straight to the upload.

CSV passthrough is taken for CSV exports from PostgreSQL whose every column the server can format exactly and that need no
per-row work here (no cursor column to track). The part starts with the CSV writer's own header bytes;
size, fingerprints and MD5 come from the same DigestSink as every part's. A value the server-side
formatting cannot write exactly aborts the part (nothing is committed) and the caller exports it through
the Arrow path, which formats or refuses that value as it always has. By default (`auto`) the path is
taken only for schemas the server formats about as cheaply as its own text (`pg_copy.cheap_on_server`);
RIVET_CSV_PASSTHROUGH=force takes it whenever it can, =0 never.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

from rivet.config.env import env_int
from rivet.config.model import Compression, Format, SourceType
from rivet.contract.objects import ObjectInfo
from rivet.destinations.base import Destination, PartUpload
from rivet.engine import signals
from rivet.formats.sink import DigestSink
from rivet.formats.writer import open_writer
from rivet.log import log
from rivet.sources.base import Source
from rivet.sources.query import Query

if TYPE_CHECKING:
    from rivet.sources.postgres import PostgresSource

PASSTHROUGH_ENV = "RIVET_CSV_PASSTHROUGH"
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
MMAP_THRESHOLD_ENV = "RIVET_MALLOC_MMAP_THRESHOLD"
_M_ARENA_MAX = -8  # glibc mallopt parameters
_M_MMAP_THRESHOLD = -3
MALLOC_ARENAS = 2
MMAP_THRESHOLD = 256 * 1024
_tuned = False


def tune_memory() -> None:
    """Allocators that give memory back: Arrow's system pool (glibc malloc, which also holds the drivers'
    batches) instead of jemalloc, whose retained pages added about 20 MB of RSS to every export here; at
    most MALLOC_ARENAS glibc arenas for the reader, writer and upload threads; and every block of
    MMAP_THRESHOLD bytes or more in its own mapping, returned to the system when freed. Without the last,
    glibc raises its threshold after the first large free and serves batch buffers from the heap, which
    fragments: a 5M-row MariaDB export held a 329 MB heap with 68 MB in use, and peak RSS grew with table
    size. RIVET_MALLOC_MMAP_THRESHOLD sets the threshold in bytes (0 keeps glibc's own). Once per process;
    an explicit ARROW_DEFAULT_MEMORY_POOL is left alone."""
    global _tuned
    if _tuned:
        return
    _tuned = True
    if not os.environ.get(ARROW_POOL_ENV):
        pa.set_memory_pool(pa.system_memory_pool())
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
            threshold = _mmap_threshold()
            if threshold:
                libc.mallopt(_M_MMAP_THRESHOLD, threshold)


def _mmap_threshold() -> int:
    return env_int(MMAP_THRESHOLD_ENV, MMAP_THRESHOLD, 0)


def _postgres(source: Source) -> PostgresSource | None:
    """`source` when it is a PostgresSource. PostgreSQL's modules (psycopg, ADBC: about 15-20 MB) are
    imported only here, so a MariaDB export never loads them."""
    if source.engine is not SourceType.POSTGRES:
        return None
    from rivet.sources.postgres import PostgresSource

    return source if isinstance(source, PostgresSource) else None


def passthrough_mode() -> str:
    """`auto` (default), `force` or `off` (RIVET_CSV_PASSTHROUGH: 0/off/false/no turn it off)."""
    raw = os.environ.get(PASSTHROUGH_ENV, "auto").strip().lower()
    if raw in ("0", "false", "no", "off"):
        return "off"
    return "force" if raw == "force" else "auto"


def csv_header(schema: pa.Schema) -> bytes:
    """The CSV writer's header row for `schema`, from the writer itself."""
    buf = io.BytesIO()
    open_writer(Format.CSV, buf, schema, Compression.NONE).close()
    return buf.getvalue()


def read(source: Source, query: Query, schema: pa.Schema, batch_size: int) -> Iterator[pa.RecordBatch]:
    """The part's record batches: from parallel readers where that applies, else the source's stream."""
    tune_memory()
    pg = _postgres(source)
    if pg is not None:
        from rivet.sources import pg_parallel

        parallel = pg_parallel.stream(pg, query, schema, batch_size)
        if parallel is not None:
            return parallel
    return source.stream(query, schema, batch_size)


def csv_blocks(source: Source, query: Query, schema: pa.Schema) -> Iterator[tuple[bytes, int]] | None:
    """The part's rows as server-formatted CSV blocks, or None when this path does not apply."""
    mode = passthrough_mode()
    pg = _postgres(source)
    if mode == "off" or pg is None:
        return None
    from rivet.sources import pg_copy, pg_parallel

    if mode == "auto" and not pg_copy.cheap_on_server(schema):
        return None
    parallel = pg_parallel.csv_blocks(pg, query, schema)
    if parallel is not None:
        return parallel
    return pg_copy.stream_csv(pg, query, schema)


def export_csv_part(
    source: Source,
    query: Query,
    schema: pa.Schema,
    dest: Destination,
    key: str,
    on_rows: Callable[[int], None],
    replace: ObjectInfo | None,
) -> tuple[int, DigestSink | None] | None:
    """(rows, sink) after committing the part, (0, None) when there were no rows (nothing written); None
    when the path does not apply or a value needs the Arrow path (nothing written: export it as usual)."""
    tune_memory()
    blocks = csv_blocks(source, query, schema)
    if blocks is None:
        return None
    upload: PartUpload | None = None
    sink: DigestSink | None = None
    rows = 0
    try:
        for block, n in blocks:
            signals.check()
            if upload is None:
                upload = dest.open_part(key, replace)
                sink = DigestSink(upload)
                sink.write(csv_header(schema))
            assert sink is not None
            sink.write(block)
            rows += n
            on_rows(n)
        if upload is None or sink is None:
            return 0, None
        signals.check()
        upload.commit(sink.digest.md5_digest)
    except BaseException as exc:
        if sink is not None:
            sink.discard()
        if upload is not None:
            try:
                upload.abort()
            except Exception as abort_exc:
                log("upload_abort_failed", level="warning", key=key, error=str(abort_exc))
        from rivet.sources import pg_copy  # loaded already: `blocks` came from it

        if isinstance(exc, pg_copy.PassthroughUnsupported):
            log("csv_passthrough_fallback", key=key, reason=str(exc))
            if rows:
                on_rows(-rows)  # the Arrow path counts the part's rows again
            return None
        raise
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()
    return rows, sink
