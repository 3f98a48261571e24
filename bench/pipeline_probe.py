"""Probe: does overlapping the driver read with Parquet encoding help? (PostgreSQL, ADBC, no engine changes)

    .venv/bin/python -m bench.pipeline_probe [--rows 1000000] [--repeat 2]

Same reader and writer settings as the engine (ADBC binary COPY, 12.8 MB batch hint, 262,144-row row
groups, zstd), once serially (read a batch, write it, read the next: what export_part does today) and
once with a reader thread feeding a 2-batch queue, interleaved with the psql floor.
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa
import pyarrow.parquet as pq

from bench.datagen import TABLE, fill_postgres
from tests.fixtures.databases import DbServer, start_postgres

ROW_GROUP_ROWS = 262_144
HINT = str(50_000 * 256)


def batches(db: DbServer) -> Iterator[pa.RecordBatch]:
    import adbc_driver_postgresql
    import adbc_driver_postgresql.dbapi as adbc_pg

    conn = adbc_pg.connect(db.url, autocommit=True)
    cur = conn.cursor()
    try:
        cur.adbc_statement.set_options(**{adbc_driver_postgresql.StatementOptions.BATCH_SIZE_HINT_BYTES.value: HINT})
        cur.execute(f"SELECT * FROM {TABLE}")
        yield from cur.fetch_record_batch()
    finally:
        cur.close()
        conn.close()


def prefetched(it: Iterator[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()

    def pump() -> None:
        try:
            for b in it:
                q.put(b)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)
        q.put(done)

    threading.Thread(target=pump, daemon=True).start()
    while True:
        item = q.get()
        if item is done:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def write(it: Iterator[pa.RecordBatch], out: Path) -> int:
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    buf: list[pa.RecordBatch] = []
    n = rows = 0
    for b in it:
        if b.num_rows == 0:
            continue
        if writer is None:
            # ADBC's opaque numeric and extension types are fine for a timing probe: write the storage
            schema = pa.schema([pa.field(f.name, _storage(f.type)) for f in b.schema])
            writer = pq.ParquetWriter(out, schema, compression="zstd")
        b = pa.RecordBatch.from_arrays([_plain(c) for c in b.columns], schema=schema)
        buf.append(b)
        n += b.num_rows
        rows += b.num_rows
        if n >= ROW_GROUP_ROWS:
            writer.write_table(pa.Table.from_batches(buf), row_group_size=n)
            buf, n = [], 0
    if writer is not None:
        if buf:
            writer.write_table(pa.Table.from_batches(buf), row_group_size=n)
        writer.close()
    return rows


def _storage(t: pa.DataType) -> pa.DataType:
    return t.storage_type if isinstance(t, pa.BaseExtensionType) else t


def _plain(c: pa.Array) -> pa.Array:
    return c.storage if isinstance(c.type, pa.BaseExtensionType) else c


def floor(db: DbServer, out: Path) -> float:
    url = f"postgresql://{db.user}@{db.host}:{db.port}/{db.database}"
    t = time.perf_counter()
    subprocess.run(
        ["/usr/bin/psql", url, "-X", "-q", "-c", f"\\copy (SELECT * FROM {TABLE}) TO '{out}' CSV"],
        check=True,
        env={**os.environ, "PGPASSWORD": db.password},
    )
    took = time.perf_counter() - t
    out.unlink()
    return took


def main() -> int:
    p = argparse.ArgumentParser(prog="bench.pipeline_probe")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rivet-probe-"))
    db = start_postgres()
    try:
        fill_postgres(db, args.rows)
        floor(db, work / "f.csv")  # warm
        results: dict[str, list[float]] = {"floor": [], "serial": [], "prefetch": []}
        results["floor"].append(floor(db, work / "f.csv"))
        for _ in range(args.repeat):
            for name in ("serial", "prefetch"):
                t = time.perf_counter()
                it = batches(db)
                rows = write(prefetched(it) if name == "prefetch" else it, work / "o.parquet")
                results[name].append(time.perf_counter() - t)
                assert rows == args.rows, rows
                results["floor"].append(floor(db, work / "f.csv"))
        f = sum(results["floor"]) / len(results["floor"])
        print(f"{args.rows:,} rows; psql floor mean {f:.2f}s over {len(results['floor'])} runs")
        for name in ("serial", "prefetch"):
            m = sum(results[name]) / len(results[name])
            runs = ", ".join(f"{x:.2f}" for x in results[name])
            print(f"  ADBC -> Parquet zstd, {name:<8}: mean {m:.2f}s = {m / f:.2f}x floor  (runs: {runs})")
    finally:
        db.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
