"""Reference reader: ConnectorX `arrow_stream` -> pyarrow ParquetWriter (zstd), in its own process.

Usage: python -m bench.cx_parquet URL QUERY OUT.parquet [BATCH_ROWS]  (URL from $BENCH_CX_URL if "-")
Prints one JSON line: rows, batches, seconds. Row groups are buffered to ~262k rows like the engine (bench.rowgroups).
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(argv: list[str]) -> int:
    import connectorx as cx

    from bench.rowgroups import write_row_groups

    url, query, out = argv[0], argv[1], argv[2]
    batch_rows = int(argv[3]) if len(argv) > 3 else 50_000
    if url == "-":
        url = os.environ["BENCH_CX_URL"]
    started = time.monotonic()
    reader = cx.read_sql(url, query, return_type="arrow_stream", batch_size=batch_rows)
    rows, batches = write_row_groups(reader, out)
    print(json.dumps({"rows": rows, "batches": batches, "seconds": round(time.monotonic() - started, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
