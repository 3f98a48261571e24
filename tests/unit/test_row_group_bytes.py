"""Parquet row groups are cut by buffered bytes as well as rows, so wide rows never buffer gigabytes."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rivet.config.model import Compression
from rivet.engine.chunk import MIN_ROW_GROUP_BYTES, row_group_budget
from rivet.formats.writer import ROW_GROUP_BYTES, ParquetPartWriter, row_group_bytes

SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("note", pa.string())])


def batch(start: int, rows: int, width: int) -> pa.RecordBatch:
    return pa.record_batch(
        [pa.array(range(start, start + rows), pa.int64()), pa.array(["x" * width] * rows, pa.string())],
        schema=SCHEMA,
    )


def write(batches: list[pa.RecordBatch], max_bytes: int, max_rows: int = 1_000_000) -> pq.FileMetaData:
    out = io.BytesIO()
    writer = ParquetPartWriter(out, SCHEMA, Compression.NONE, max_rows, max_bytes)
    for b in batches:
        writer.write_batch(b)
    writer.close()
    return pq.ParquetFile(io.BytesIO(out.getvalue())).metadata


def test_wide_rows_are_cut_by_bytes_and_stay_within_the_budget() -> None:
    budget = 1_000_000
    batches = [batch(i * 10, 10, 30_000) for i in range(20)]  # 20 batches of ~300 KB: 6 MB in all
    meta = write(batches, budget)
    rows = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(rows) == 200 and meta.num_row_groups >= 6
    assert max(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) <= budget * 1.05


def test_one_batch_over_the_budget_is_split_into_row_groups_of_at_most_the_budget() -> None:
    meta = write([batch(0, 100, 50_000)], max_bytes=1_000_000)  # one 5 MB batch
    assert meta.num_row_groups >= 5
    assert sum(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) == 100
    assert max(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) <= 1_050_000


def test_narrow_rows_are_still_cut_by_rows() -> None:
    meta = write([batch(i * 1000, 1000, 8) for i in range(10)], max_bytes=64 << 20, max_rows=3000)
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3000, 3000, 3000, 1000]


def test_budget_comes_from_the_environment_and_is_shared_by_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RIVET_ROW_GROUP_BYTES", raising=False)
    assert row_group_bytes() == ROW_GROUP_BYTES
    assert row_group_budget(4)[1] == max(ROW_GROUP_BYTES // 4, min(ROW_GROUP_BYTES, MIN_ROW_GROUP_BYTES))
    monkeypatch.setenv("RIVET_ROW_GROUP_BYTES", str(64 << 20))
    assert row_group_budget(4)[1] == 16 << 20  # shared by the workers
    assert row_group_budget(64)[1] == MIN_ROW_GROUP_BYTES  # never below a useful row group
    monkeypatch.setenv("RIVET_ROW_GROUP_BYTES", "4194304")
    assert row_group_bytes() == 4 << 20
    assert row_group_budget(2)[1] == 4 << 20  # a budget below the floor is taken as given
    monkeypatch.setenv("RIVET_ROW_GROUP_BYTES", "nonsense")
    assert row_group_bytes() == ROW_GROUP_BYTES
