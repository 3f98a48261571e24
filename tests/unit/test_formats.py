"""Part encoders: CSV text rules and Parquet dictionary choices (pure, no I/O)."""

from __future__ import annotations

import datetime as dt
import io
import random
import uuid
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from rivet.config.model import Compression, Format
from rivet.formats.csv_fast import fixed_width_offsets, timestamp_text
from rivet.formats.writer import csv_text, dictionary_columns, open_writer, uuid_text


def test_uuid_text_is_canonical_for_every_value_and_null() -> None:
    values = [uuid.uuid4() for _ in range(1000)]
    storage = pa.array([None if i % 7 == 0 else v.bytes for i, v in enumerate(values)], type=pa.binary(16))
    expected = [None if i % 7 == 0 else str(v) for i, v in enumerate(values)]
    assert uuid_text(storage).to_pylist() == expected
    assert uuid_text(storage.slice(3, 10)).to_pylist() == expected[3:13]


def test_csv_text_rules() -> None:
    assert csv_text(pa.array([dt.datetime(2026, 1, 2, 3, 4, 5, 6)], pa.timestamp("us", "UTC"))).to_pylist() == [
        "2026-01-02T03:04:05.000006Z"
    ]
    assert csv_text(pa.array([dt.datetime(2026, 1, 2)], pa.timestamp("us"))).to_pylist() == [
        "2026-01-02T00:00:00.000000"
    ]
    assert csv_text(pa.array([Decimal("-0.001")], pa.decimal128(10, 3))).type == pa.decimal128(10, 3)  # exact
    assert csv_text(pa.array([b"\x00\xff"])).to_pylist() == ["\\x00ff"]
    assert csv_text(pa.array([[1, 2], None], pa.list_(pa.int32()))).to_pylist() == ["[1, 2]", None]
    assert csv_text(pa.array([dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)])).to_pylist() == [
        "0001-01-01T00:00:00.000000",
        "9999-12-31T23:59:59.999999",
    ]


def test_timestamp_text_equals_arrows_own_formatting_across_calendars_nulls_and_slices() -> None:
    """The assembled text (formats/csv_fast.py) against pc.strftime, on batches that make its calendar of
    days start, grow, be replaced, and be skipped for spans too wide for one (the digit path)."""
    rng = random.Random(7)
    day_us = 86_400_000_000
    year1, year10000 = -62_135_596_800_000_000, 253_402_300_800_000_000
    spans = [
        (1_600_000_000_000_000, 30 * day_us),  # a month: a first calendar
        (1_500_000_000_000_000, 400 * 365 * day_us),  # grows it
        (-10 * day_us, 20 * day_us),  # around 1970
        (year1, 3 * day_us),  # the first days: replaces it
        (year10000 - 3 * day_us, 3 * day_us - 1),  # the last ones, to 9999-12-31T23:59:59.999999
        (year1, year10000 - year1 - 1),  # every year: no calendar, digit by digit
        (0, 0),  # one instant
    ]
    for tz in (None, "UTC"):
        t = pa.timestamp("us", tz)
        suffix = "Z" if tz else ""
        for low, width in spans:
            values = [None if rng.random() < 0.1 else low + rng.randint(0, width) for _ in range(3000)]
            values[0] = low
            col = pa.array(values, pa.int64()).cast(t)
            for piece in (col, col.slice(17, 2000)):
                expected = pc.strftime(piece, format="%Y-%m-%dT%H:%M:%S" + suffix)
                got = timestamp_text(piece)
                assert got is not None and got.to_pylist() == expected.to_pylist()
    assert timestamp_text(pa.nulls(3, pa.timestamp("us"))).to_pylist() == [None] * 3
    assert timestamp_text(pa.array([year1 - 1], pa.timestamp("us"))) is None  # year 0: the caller's


def test_fixed_width_offsets_from_the_cache_and_past_it() -> None:
    for n in (0, 1, 5, 70_000, 1 << 18, (1 << 18) + 1, 3):  # grows the cache, passes its cap, reuses it
        offsets = pa.Array.from_buffers(pa.int32(), n + 1, [None, fixed_width_offsets(36, n)])
        assert offsets.to_pylist() == list(range(0, 36 * (n + 1), 36))


def test_csv_decimals_are_plain_never_scientific() -> None:
    values = [
        Decimal(0),
        Decimal("1E-10"),
        Decimal("-1.234E-7"),
        None,
        Decimal("-9999999999999999999999999999.9999999999"),
    ]
    assert csv_text(pa.array(values, pa.decimal128(38, 10))).to_pylist() == [
        "0.0000000000",
        "0.0000000001",
        "-0.0000001234",
        None,
        "-9999999999999999999999999999.9999999999",
    ]
    assert csv_text(pa.array(values, pa.decimal128(38, 10)).slice(1, 2)).to_pylist() == [
        "0.0000000001",
        "-0.0000001234",
    ]
    wide = pa.array([Decimal("-1E-30"), Decimal("9" * 35 + "." + "9" * 30)], pa.decimal256(65, 30))
    assert csv_text(wide).to_pylist() == ["-0." + "0" * 29 + "1", "9" * 35 + "." + "9" * 30]
    assert csv_text(pa.array([Decimal("0.000001")], pa.decimal128(12, 6))).type == pa.decimal128(12, 6)  # native


def test_csv_arrays_are_json_with_scalar_text_for_their_elements() -> None:
    assert csv_text(pa.array([[b"\x00\xff", None, b""]], pa.list_(pa.binary()))).to_pylist() == [
        r'["\\x00ff", null, "\\x"]'
    ]
    assert csv_text(pa.array([[Decimal(0)]], pa.list_(pa.decimal128(38, 10)))).to_pylist() == ['["0.0000000000"]']
    stamps = pa.array([None, [dt.datetime(1, 1, 1, tzinfo=dt.UTC)]], pa.list_(pa.timestamp("us", "UTC")))
    assert csv_text(stamps.slice(1)).to_pylist() == ['["0001-01-01T00:00:00.000000Z"]']
    assert csv_text(pa.array([['x,"y"', "😀"], []], pa.list_(pa.string()))).to_pylist() == ['["x,\\"y\\"", "😀"]', "[]"]


def test_csv_writer_quotes_as_needed_and_writes_null_as_empty() -> None:
    schema = pa.schema([("id", pa.int32()), ("s", pa.string()), ("d", pa.decimal128(6, 3)), ("f", pa.float64())])
    sink = io.BytesIO()
    w = open_writer(Format.CSV, sink, schema, Compression.NONE)
    cols = [
        pa.array([1, 2, 3]),
        pa.array(['a,"b"', None, ""]),
        pa.array([Decimal("-0.001"), Decimal("12.500"), None], pa.decimal128(6, 3)),
        pa.array([0.1, None, 1e20]),
    ]
    w.write_batch(pa.record_batch(cols, schema=schema))
    w.close()
    assert sink.getvalue() == b'"id","s","d","f"\n1,"a,""b""",-0.001,0.1\n2,,12.500,\n3,"",,1e+20\n'
    assert pcsv.read_csv(io.BytesIO(sink.getvalue())).num_rows == 3


def test_csv_keeps_empty_text_apart_from_null_and_spells_special_floats() -> None:
    schema = pa.schema([("s", pa.string()), ("b", pa.binary()), ("f", pa.float64()), ("g", pa.float32())])
    sink = io.BytesIO()
    w = open_writer(Format.CSV, sink, schema, Compression.NONE)
    cols = [
        pa.array(["", None, "a\r\nb", "\x01\t\\"]),
        pa.array([b"", None, b"\x00", b"\xff"]),
        pa.array([float("nan"), float("inf"), float("-inf"), -0.0]),
        pa.array([float("nan"), None, 1.4e-45, 3.4028234663852886e38], pa.float32()),
    ]
    w.write_batch(pa.record_batch(cols, schema=schema))
    w.close()
    # Empty text is "" and NULL an empty cell; floats as Arrow spells them (nan, inf, -inf, -0).
    assert sink.getvalue() == (
        b'"s","b","f","g"\n"","\\x",nan,nan\n,,inf,\n"a\r\nb","\\x00",-inf,1e-45\n"\x01\t\\","\\xff",-0,3.4028235e+38\n'
    )


def test_dictionary_only_where_values_repeat() -> None:
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("kind", pa.string()),
            ("uid", pa.uuid()),
            ("n", pa.int32()),
            ("ok", pa.bool_()),
            ("amount", pa.decimal128(12, 2)),
            ("at", pa.timestamp("us")),
        ]
    )
    assert dictionary_columns(schema) == ["kind", "n", "ok"]


def test_parquet_row_groups_are_buffered_not_one_per_batch() -> None:
    schema = pa.schema([("id", pa.int64())])
    sink = io.BytesIO()
    w = open_writer(Format.PARQUET, sink, schema, Compression.ZSTD, row_group_rows=1000)
    for start in range(0, 2500, 100):
        w.write_batch(pa.record_batch([pa.array(range(start, start + 100))], schema=schema))
    w.close()
    meta = pq.ParquetFile(io.BytesIO(sink.getvalue())).metadata
    assert meta.num_rows == 2500 and meta.num_row_groups == 3
