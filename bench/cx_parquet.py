"""Reference reader: ConnectorX `arrow_stream` -> pyarrow ParquetWriter (zstd), in its own process.

Usage: python -m bench.cx_parquet URL QUERY OUT.parquet [BATCH_ROWS]  (URL from $BENCH_CX_URL if "-")
Prints one JSON line: rows, batches, seconds. Row groups are buffered to ~262k rows like the engine.
"""

from __future__ import annotations

import json
import os
import sys
import time

ROW_GROUP_ROWS = 262_144


def main(argv: list[str]) -> int:
    import connectorx as cx
    import pyarrow as pa
    import pyarrow.parquet as pq

    url, query, out = argv[0], argv[1], argv[2]
    batch_rows = int(argv[3]) if len(argv) > 3 else 50_000
    if url == "-":
        url = os.environ["BENCH_CX_URL"]
    started = time.monotonic()
    reader = cx.read_sql(url, query, return_type="arrow_stream", batch_size=batch_rows)
    writer: pq.ParquetWriter | None = None
    buffer: list[pa.RecordBatch] = []
    buffered = rows = batches = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        if batch.num_rows == 0:  # ConnectorX ends with an empty batch
            continue
        if writer is None:
            writer = pq.ParquetWriter(out, batch.schema, compression="zstd")
        buffer.append(batch)
        buffered += batch.num_rows
        rows += batch.num_rows
        batches += 1
        if buffered >= ROW_GROUP_ROWS:
            writer.write_table(pa.Table.from_batches(buffer), row_group_size=buffered)
            buffer, buffered = [], 0
    if writer is not None:
        if buffer:
            writer.write_table(pa.Table.from_batches(buffer), row_group_size=buffered)
        writer.close()
    print(json.dumps({"rows": rows, "batches": batches, "seconds": round(time.monotonic() - started, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
