"""Memory is bounded per byte, not per row: wide rows (300 KB of text each) cut Parquet row groups by their
buffered bytes, and the process's peak RSS stays well under the table's size.

The byte budget is lowered to 8 MiB through RIVET_ROW_GROUP_BYTES so a ~570 MB table (2,000 rows) shows
many byte-cut row groups within a test's time; the default budget is 16 MiB per writer. Measured here:
peak RSS ~220 MB with the budget, ~735 MB when row groups were cut by rows only (one 570 MB row group).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from tests.fixtures.databases import DbServer, Namespace
from tests.integration.rivet_cli import write_config

ROWS = 2_000
ROW_BYTES = 300_000  # each note is 300 KB of text
BUDGET = 8 * 1024 * 1024
TIME_BIN = "/usr/bin/time"  # Debian package `time`, installed by .ci/setup.sh


def test_wide_rows_cut_row_groups_by_bytes_and_keep_peak_rss_bounded(
    pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    # repeat() of a per-row md5: 300 KB per row at the source, compressed by TOAST and by zstd alike
    pg.execute(f"CREATE TABLE {pg_schema}.docs (id bigint PRIMARY KEY, note text)")
    pg.execute(
        f"INSERT INTO {pg_schema}.docs SELECT g, repeat(md5(g::text), {ROW_BYTES // 32})"
        f" FROM generate_series(1, {ROWS}) g"
    )
    out = tmp_path / "out"
    exports = [
        {
            "name": "docs",
            "table": f"{pg_schema}.docs",
            "mode": "full",
            "destination": {"type": "local", "path": str(out / "{export}")},
        }
    ]
    cfg = write_config(tmp_path / "rivet.yaml", pg.url, exports)
    # Peak RSS from /usr/bin/time, whose child starts small: the exporter's own getrusage figure would
    # include the pytest process it was forked from (ru_maxrss survives execve), ~500 MB late in a suite.
    env = {**os.environ, "RIVET_ROW_GROUP_BYTES": str(BUDGET), "RIVET_TEST_DB_URL": pg.url}
    argv = [TIME_BIN, "-f", "rivet-peak-kb=%M", sys.executable, "-m", "rivet", "run", "-c", str(cfg)]
    res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads(res.stdout)
    peak_kb = re.findall(r"rivet-peak-kb=(\d+)", res.stderr)
    assert summary["exports"][0]["rows"] == ROWS

    meta = pq.ParquetFile(out / "docs" / "part-000001.parquet").metadata
    table_bytes = ROWS * ROW_BYTES
    sizes = [meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)]
    rows = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(rows) == ROWS
    # cut by bytes: ~570 MB in row groups of at most the 8 MiB budget (plus Parquet's per-value overhead),
    # where the row budget (262,144 rows) alone would have made a single 570 MB row group
    assert meta.num_row_groups >= table_bytes // BUDGET
    assert max(sizes) <= BUDGET * 1.05, sizes
    assert max(rows) <= BUDGET // ROW_BYTES + 1, rows

    # bounded by the budget, the read-ahead batches and the interpreter, far below the 570 MB table
    peak_mb = int(peak_kb[-1]) / 1024
    print(f"wide rows: {meta.num_row_groups} row groups, peak RSS {peak_mb} MB for a {table_bytes >> 20} MB table")
    assert peak_mb < 0.6 * (table_bytes >> 20), peak_mb
