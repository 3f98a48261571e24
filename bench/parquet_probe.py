"""Probe: CPU cost of the engine's Parquet writer settings on the bench table (PostgreSQL rows).

    .venv/bin/python -m bench.parquet_probe [--rows 1000000]

Reads the table once through the engine's own source (conformed batches, kept in memory), then writes it
to a null sink with the engine's writer and with variants: no dictionary on high-cardinality columns,
no statistics, other codecs. Reports wall and process CPU seconds (load-independent-ish) and file size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa
import pyarrow.parquet as pq

from bench.datagen import TABLE, fill_postgres
from bench.profile import NullSink
from tests.fixtures.databases import start_postgres

ROW_GROUP_ROWS = 262_144
HIGH_CARDINALITY = ["id", "name", "amount", "score", "created_at", "local_ts", "uid", "payload"]


def write(batches: list[pa.RecordBatch], schema: pa.Schema, digest: bool, **opts: Any) -> tuple[float, float, int]:
    sink = NullSink(digest)
    w0, c0 = time.perf_counter(), time.process_time()
    writer = pq.ParquetWriter(sink, schema, **opts)
    buf: list[pa.RecordBatch] = []
    n = 0
    for b in batches:
        buf.append(b)
        n += b.num_rows
        if n >= ROW_GROUP_ROWS:
            writer.write_table(pa.Table.from_batches(buf, schema=schema), row_group_size=n)
            buf, n = [], 0
    if buf:
        writer.write_table(pa.Table.from_batches(buf, schema=schema), row_group_size=n)
    writer.close()
    return time.perf_counter() - w0, time.process_time() - c0, sink.size


def main() -> int:
    from rivet.config.model import Secret, SourceConfig, SourceType
    from rivet.sources.factory import open_source
    from rivet.sources.query import q

    p = argparse.ArgumentParser(prog="bench.parquet_probe")
    p.add_argument("--rows", type=int, default=1_000_000)
    args = p.parse_args()
    db = start_postgres()
    try:
        fill_postgres(db, args.rows)
        src = open_source(SourceConfig(SourceType.POSTGRES, Secret(db.url)))
        try:
            sql = f"SELECT * FROM {TABLE}"
            schema = src.describe(q(sql))
            w0, c0 = time.perf_counter(), time.process_time()
            batches = list(src.stream(q(sql), schema, 50_000))
            print(
                f"read+conform {args.rows:,} rows: {time.perf_counter() - w0:.2f}s wall, {time.process_time() - c0:.2f}s CPU"
            )
        finally:
            src.close()
        engine = {"compression": "zstd", "write_statistics": True}
        variants: list[tuple[str, bool, dict[str, Any]]] = [
            ("engine settings (zstd, dict on, stats) + digest", True, engine),
            ("engine settings, no digest", False, engine),
            (
                "dictionary only on low-cardinality columns",
                True,
                engine | {"use_dictionary": ["qty", "category", "note", "active"]},
            ),
            ("no dictionary at all", True, engine | {"use_dictionary": False}),
            ("no statistics", True, engine | {"write_statistics": False}),
            ("snappy", True, engine | {"compression": "snappy"}),
            ("no compression", True, engine | {"compression": "none"}),
        ]
        for _ in range(2):  # second pass is the one reported (warm allocator), first is printed too
            for name, digest, opts in variants:
                wall, cpu, size = write(batches, schema, digest, **opts)
                print(f"  {name:<52} {wall:6.2f}s wall {cpu:6.2f}s CPU {size / 1e6:7.1f} MB")
            print("--")
    finally:
        db.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
