"""Probe: does overlapping the driver read with Parquet encoding help? (PostgreSQL, ADBC)

    .venv/bin/python -m bench.pipeline_probe [--rows 1000000] [--repeat 2]

Same reader and writer settings as the engine (ADBC binary COPY, 12.8 MB batch hint, 262,144-row row
groups, zstd), once serially (read a batch, write it, read the next) and once through the engine's
`rivet.engine.pipeline.prefetch` (a reader thread feeding a 2-batch queue), interleaved with the psql floor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa

from bench.datagen import TABLE, fill_postgres
from bench.rowgroups import write_row_groups
from rivet.engine.pipeline import prefetch
from tests.fixtures.databases import DbServer, start_postgres

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
                rows, _ = write_row_groups(prefetch(it) if name == "prefetch" else it, work / "o.parquet", storage=True)
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
