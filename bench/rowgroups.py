"""Parquet from record batches in row groups of ~262k rows (the engine's setting), for the bench's
reference writers: the same buffering for every probe, so only the reader differs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 262_144


def _storage(t: pa.DataType) -> pa.DataType:
    return t.storage_type if isinstance(t, pa.BaseExtensionType) else t


def _plain(c: pa.Array) -> pa.Array:
    return c.storage if isinstance(c.type, pa.BaseExtensionType) else c


def write_row_groups(batches: Iterable[pa.RecordBatch], out: Path | str, storage: bool = False) -> tuple[int, int]:
    """Write the non-empty batches to `out` (zstd); return (rows, batches written).

    storage=True writes extension-typed columns (ADBC's opaque numeric, json, uuid) as their storage type:
    fine for a timing probe, which needs no logical types.
    """
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    buffer: list[pa.RecordBatch] = []
    buffered = rows = count = 0
    for batch in batches:
        if batch.num_rows == 0:  # ConnectorX ends with an empty batch
            continue
        if writer is None:
            schema = pa.schema([pa.field(f.name, _storage(f.type)) for f in batch.schema]) if storage else batch.schema
            writer = pq.ParquetWriter(out, schema, compression="zstd")
        if storage:
            batch = pa.RecordBatch.from_arrays([_plain(c) for c in batch.columns], schema=schema)
        buffer.append(batch)
        buffered += batch.num_rows
        rows += batch.num_rows
        count += 1
        if buffered >= ROW_GROUP_ROWS:
            writer.write_table(pa.Table.from_batches(buffer), row_group_size=buffered)
            buffer, buffered = [], 0
    if writer is not None:
        if buffer:
            writer.write_table(pa.Table.from_batches(buffer), row_group_size=buffered)
        writer.close()
    return rows, count
