"""Bring driver batches to the exact target schema and to at most `batch_size` rows.

Drivers disagree with the spec in small ways (ADBC: numeric as an opaque string, citext as opaque bytes;
ConnectorX: tinyint(1) as int8, timestamp naive, blobs as large_binary, decimals as decimal(38,10)).
Every cast here is Arrow's safe cast, so a value that does not fit exactly raises instead of rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from rivet.errors import SourceError


def conform_array(arr: pa.Array, target: pa.DataType) -> pa.Array:
    """`arr` as `target`: unwrap driver extension types, rebuild lists, wrap JSON/UUID, cast exactly."""
    if arr.type == target:
        return arr
    if isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
        if arr.type == target:
            return arr
    if isinstance(target, pa.BaseExtensionType):
        storage = conform_array(arr, target.storage_type)
        return pa.ExtensionArray.from_storage(target, storage)
    if pa.types.is_list(target) and (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        return _conform_list(arr, target)
    return pc.cast(arr, target, safe=True)


def _conform_list(arr: pa.Array, target: pa.DataType) -> pa.Array:
    offsets = arr.offsets
    values = arr.values
    if arr.offset:  # a slice: rebase offsets and values so the null mask lines up (Arrow requires it)
        start, end = offsets[0].as_py(), offsets[-1].as_py()
        values = values.slice(start, end - start)
        offsets = pc.subtract(offsets, pa.scalar(start, offsets.type))
    mask = arr.is_null() if arr.null_count else None
    return pa.ListArray.from_arrays(offsets, conform_array(values, target.value_type), type=target, mask=mask)


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema, engine: str) -> pa.RecordBatch:
    """The first len(schema) columns of `batch`, by position, as `schema`."""
    if batch.schema.names[: len(schema)] != schema.names:
        raise SourceError(
            f"{engine}: the query returns columns {batch.schema.names[: len(schema)]}, not {schema.names} "
            "as described: did the table change? Re-run to describe it again"
        )
    columns = []
    for i, field in enumerate(schema):
        try:
            columns.append(conform_array(batch.column(i), field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise SourceError(
                f'{engine}: column "{field.name}" has a value that does not fit {field.type} exactly: '
                f"{str(exc).splitlines()[0]}"
            ) from None
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def rechunk(batches: Iterable[pa.RecordBatch], batch_size: int) -> Iterator[pa.RecordBatch]:
    """Zero-copy slices of at most `batch_size` rows; empty batches dropped (they'd be empty row groups)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    for batch in batches:
        for offset in range(0, batch.num_rows, batch_size):
            yield batch.slice(offset, batch_size)
