"""Parquet and CSV part writers behind one small interface.

Parquet buffers batches into row groups of about `row_group_rows` rows (one write_batch call would make
one tiny row group per batch: bigger files, more footers), and cuts a row group early once the buffered
batches hold `row_group_max_bytes` of Arrow data, so memory is bounded per byte, not per row: 2,000 rows
of 300 KB jsonb would otherwise buffer 600 MB before the first flush.
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO, Protocol, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from rivet.config.env import env_int
from rivet.config.model import Compression, Format
from rivet.errors import UnsupportedTypeError
from rivet.formats.csv_fast import fixed_width_text, timestamp_text
from rivet.formats.parquet_encoding import writer_options

ROW_GROUP_ROWS = 262_144
# Arrow bytes buffered per writer before a row group is cut. pyarrow writes a row group from whole Arrow
# tables only (no buffered row group), so this much of the part's data is in memory at once, and peak RSS
# follows it about MB for MB. Bench table (5M rows x 12 columns, zstd), budget -> file size, peak RSS:
# PostgreSQL 64 MiB 185.4 MB, 199-221 MB; 32 MiB 188.5 MB, 191 MB; 16 MiB 197.2 MB, 158-167 MB.
# MariaDB 64 MiB 207.1 MB, 261 MB; 32 MiB 211.9 MB, 252 MB; 16 MiB 221.7 MB, 221-231 MB.
# The Rust CLI 0.8 writes 234 MB (PostgreSQL) and 256 MB (MariaDB) for the same rows.
ROW_GROUP_BYTES = 16 * 1024 * 1024
ROW_GROUP_BYTES_ENV = "RIVET_ROW_GROUP_BYTES"  # override (tests, memory-tight pods, smaller files)


def row_group_bytes() -> int:
    """The byte budget for one writer's buffered row group: ROW_GROUP_BYTES unless RIVET_ROW_GROUP_BYTES."""
    return env_int(ROW_GROUP_BYTES_ENV, ROW_GROUP_BYTES, 0) or ROW_GROUP_BYTES  # 0 or less: unset


class PartWriter(Protocol):
    rows: int

    def write_batch(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> None:
        """Flush buffered rows and the format's trailer (Parquet footer)."""


class ParquetPartWriter:
    def __init__(
        self,
        sink: BinaryIO,
        schema: pa.Schema,
        compression: Compression,
        row_group_rows: int,
        row_group_max_bytes: int | None = None,
    ) -> None:
        codec = None if compression is Compression.NONE else compression.value
        self._writer = pq.ParquetWriter(
            sink,
            schema,
            compression=codec,
            write_statistics=True,
            use_dictionary=dictionary_columns(schema),
            **writer_options(schema),  # per-column encodings (formats/parquet_encoding.py)
        )
        self._schema = schema
        self._times = [i for i, f in enumerate(schema) if pa.types.is_time64(_element(f.type))]
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0
        self._buffered_bytes = 0
        self._row_group_rows = row_group_rows
        self._max_bytes = row_group_max_bytes or row_group_bytes()
        self.rows = 0

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        for i in self._times:
            refuse_end_of_day(self._schema.field(i).name, batch.column(i))
        self.rows += batch.num_rows
        size = batch.nbytes
        if self._buffer and self._buffered_bytes + size > self._max_bytes:
            self._flush()  # cut before the budget is crossed, so a row group stays within it
        if size > self._max_bytes and batch.num_rows > 1:
            # One batch over the budget (very wide rows): write it as row groups of at most the budget
            # each, so a row group never holds more than that (a single row larger than it stands alone).
            step = max(1, batch.num_rows * self._max_bytes // size)
            for offset in range(0, batch.num_rows, step):
                piece = batch.slice(offset, step)
                self._writer.write_table(pa.Table.from_batches([piece], schema=self._schema), row_group_size=step)
            return
        self._buffer.append(batch)
        self._buffered += batch.num_rows
        self._buffered_bytes += size
        if self._buffered >= self._row_group_rows or self._buffered_bytes >= self._max_bytes:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            table = pa.Table.from_batches(self._buffer, schema=self._schema)
            self._writer.write_table(table, row_group_size=max(self._buffered, 1))
            self._buffer, self._buffered, self._buffered_bytes = [], 0, 0

    def close(self) -> None:
        self._flush()
        self._writer.close()


END_OF_DAY_US = 86_400_000_000  # PostgreSQL time '24:00:00', one past the last time64 value of a day


def refuse_end_of_day(name: str, col: pa.Array) -> None:
    """Parquet's TIME(MICROS) ends at 23:59:59.999999: a PostgreSQL `time '24:00:00'` is refused, naming
    the column and the ways to export it exactly (never written as a value readers cannot read back)."""
    while pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        col = cast(pa.ListArray, col).flatten()
    if col.null_count == len(col) or pc.max(col.view(pa.int64())).as_py() < END_OF_DAY_US:
        return
    ident = '"' + name.replace('"', '""') + '"'
    raise UnsupportedTypeError(
        f'column "{name}" (time without time zone) holds 24:00:00, which Parquet\'s time type cannot hold'
        f" (it ends at 23:59:59.999999): set columns: {{{name}: string}} on the export (its exact text), or"
        f" cast it in a query, e.g. {ident}::text, or CASE WHEN {ident} = '24:00' THEN NULL ELSE {ident} END"
    )


def _element(t: pa.DataType) -> pa.DataType:
    while pa.types.is_list(t) or pa.types.is_large_list(t):
        t = t.value_type
    return t


def time_text(col: pa.Array) -> pa.Array:
    """time64[us] as `HH:MM:SS.ffffff`; PostgreSQL's `24:00:00` as `24:00:00.000000` (Arrow's own cast
    would print `<value out of range: 86400000000>`)."""
    if col.null_count == len(col) or pc.max(col.view(pa.int64())).as_py() < END_OF_DAY_US:
        return col.cast(pa.string())
    micros = col.view(pa.int64())
    late = pc.fill_null(pc.greater_equal(micros, END_OF_DAY_US), False)
    early = pc.if_else(late, pa.scalar(0, pa.int64()), micros).view(col.type)
    return pc.if_else(late, pa.scalar("24:00:00.000000"), early.cast(pa.string()))


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns where dictionary encoding usually pays: plain text, booleans, small integers, dates.

    Measured here: dictionary-encoding every column (pyarrow's default) doubled Parquet encode time per
    row, mostly on uuid, json, float, timestamp and decimal columns, whose values rarely repeat.
    """
    out = []
    for f in schema:
        t = f.type
        if isinstance(t, pa.BaseExtensionType):
            continue  # uuid, json
        if (
            pa.types.is_string(t)
            or pa.types.is_boolean(t)
            or pa.types.is_date(t)
            or (pa.types.is_integer(t) and t.bit_width <= 32)
        ):
            out.append(f.name)
    return out


class CsvPartWriter:
    """RFC 4180 CSV: header row, comma, quoting as needed, NULL as an empty cell, exact text values."""

    def __init__(self, sink: BinaryIO, schema: pa.Schema) -> None:
        self._sink = sink
        self._schema = schema
        self._text_schema = pa.schema([pa.field(f.name, csv_type(f.type)) for f in schema])
        self._writer = pcsv.CSVWriter(sink, self._text_schema, write_options=pcsv.WriteOptions(quoting_style="needed"))
        self.rows = 0

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        columns = [csv_text(col) for col in batch.columns]
        self._writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=self._text_schema))
        self.rows += batch.num_rows

    def close(self) -> None:
        self._writer.close()


# Arrow prints a decimal in scientific notation when its exponent is below -6 (0 in decimal(38,10) is
# "0E-10"): columns whose scale allows that are written as plain text (quoted, as all text is).
MAX_NATIVE_DECIMAL_SCALE = 6


def _native_csv(t: pa.DataType) -> bool:
    """Types the CSV writer prints exactly as they are (unquoted numbers, true/false, ISO dates).

    Floats are the shortest text that reads back as the same value of their width; the special values
    are spelled as Arrow writes them: `nan`, `inf`, `-inf`, and `-0` for negative zero (a reader whose
    default null markers include "nan", like pyarrow's and pandas', must be told the only null is "").
    """
    return bool(
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or (pa.types.is_decimal(t) and t.scale <= MAX_NATIVE_DECIMAL_SCALE)
        or pa.types.is_date32(t)
    )


def csv_type(t: pa.DataType) -> pa.DataType:
    return t if not isinstance(t, pa.BaseExtensionType) and _native_csv(t) else pa.string()


def csv_text(col: pa.Array) -> pa.Array:
    """One column for CSV per the spec: exact plain decimals, ISO-8601 times, hex bytes, JSON arrays."""
    t = col.type
    if not isinstance(t, pa.BaseExtensionType) and _native_csv(t):
        return col
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.uuid":
            return uuid_text(cast(pa.ExtensionArray, col).storage)
        col, t = cast(pa.ExtensionArray, col).storage, t.storage_type
    if pa.types.is_timestamp(t):
        fast = timestamp_text(col)  # the same text, assembled from digits (formats/csv_fast.py)
        if fast is not None:
            return fast
        fmt = "%Y-%m-%dT%H:%M:%SZ" if t.tz else "%Y-%m-%dT%H:%M:%S"
        return cast(pa.Array, pc.strftime(col, format=fmt))
    if pa.types.is_decimal(t):
        return decimal_text(col)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.array([None if v is None else "\\x" + v.hex() for v in col.to_pylist()], type=pa.string())
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return list_text(col)
    if pa.types.is_string(t):
        return col
    if pa.types.is_time64(t):
        return time_text(col)
    return col.cast(pa.string())


def list_text(col: pa.Array) -> pa.Array:
    """Arrays as JSON arrays: integers, floats and booleans as JSON values, every other element as the
    string its scalar column would have in CSV (plain decimals, ISO-8601 times, hex bytes)."""
    values = cast(pa.ListArray, col).flatten()  # only this slice's values
    vt = values.type
    if isinstance(vt, pa.BaseExtensionType) or not (
        pa.types.is_integer(vt) or pa.types.is_floating(vt) or pa.types.is_boolean(vt)
    ):
        values = csv_text(values).cast(pa.string())
    items = values.to_pylist()
    offsets = cast(pa.ListArray, col).offsets.to_pylist()
    valid = col.is_valid().to_pylist()
    base = offsets[0] if offsets else 0
    out = [
        json.dumps(items[start - base : end - base], ensure_ascii=False) if ok else None
        for ok, start, end in zip(valid, offsets, offsets[1:], strict=False)
    ]
    return pa.array(out, type=pa.string())


def decimal_text(col: pa.Array) -> pa.Array:
    """Decimals in plain notation with all `scale` digits ("0.0000000000", never "0E-10").

    Arrow's own text is plain except for values below 1e-6 in magnitude; only those rows are redone,
    from the unscaled integer (the same buffers read as scale 0), padded and split at the point."""
    text = col.cast(pa.string())
    scientific = pc.fill_null(pc.match_substring(text, "E"), False)
    if not pc.any(scientific).as_py():
        return text
    small = pc.filter(col, scientific)
    t, scale = small.type, small.type.scale
    unscaled_type = pa.decimal128(t.precision, 0) if pa.types.is_decimal128(t) else pa.decimal256(t.precision, 0)
    digits = pa.Array.from_buffers(unscaled_type, len(small), small.buffers(), 0, small.offset).cast(pa.string())
    padded = pc.utf8_lpad(pc.utf8_ltrim(digits, characters="-"), width=scale + 1, padding="0")
    plain = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(padded, 0, -scale), pc.utf8_slice_codeunits(padded, -scale), "."
    )
    plain = pc.if_else(pc.starts_with(digits, "-"), pc.binary_join_element_wise("-", plain, ""), plain)
    return pc.replace_with_mask(text, scientific, plain)


def uuid_text(storage: pa.Array) -> pa.Array:
    """FixedSizeBinary(16) -> canonical 8-4-4-4-12 text in a few C-level passes (a per-value Python loop
    cost ~10 s per million rows): hex the whole buffer once, then stride each hex digit into place."""
    n = len(storage)
    if n == 0:
        return pa.array([], type=pa.string())
    raw = storage.buffers()[1].to_pybytes()[storage.offset * 16 : (storage.offset + n) * 16]
    hexed = raw.hex().encode("ascii")
    out = bytearray(b"-" * (36 * n))
    for j in range(32):
        pos = j + (0 if j < 8 else 1 if j < 12 else 2 if j < 16 else 3 if j < 20 else 4)
        out[pos::36] = hexed[j::32]
    text = fixed_width_text(out, 36, n)
    return text if storage.null_count == 0 else pc.if_else(pc.is_null(storage), pa.scalar(None, pa.string()), text)


def open_writer(
    fmt: Format,
    sink: Any,
    schema: pa.Schema,
    compression: Compression,
    row_group_rows: int = ROW_GROUP_ROWS,
    row_group_max_bytes: int | None = None,
) -> PartWriter:
    """`row_group_max_bytes` None: the process-wide budget (`row_group_bytes()`)."""
    if fmt is Format.PARQUET:
        return ParquetPartWriter(sink, schema, compression, row_group_rows, row_group_max_bytes)
    return CsvPartWriter(sink, schema)
