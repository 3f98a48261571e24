"""The harness must not be vacuous: its CSV reader, canonical values and multiset diff catch what they claim to."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.correctness.harness import JSON_T, UUID_T, Col, canon, csv_rows, diff_message, parquet_rows, parse_csv

UTC = dt.UTC


def test_csv_reader_keeps_null_and_empty_string_apart() -> None:
    text = '"a","b"\n,""\n"x\n""y""",\r\n"1,2",z\n'
    assert parse_csv(text) == [
        [("a", True), ("b", True)],
        [("", False), ("", True)],
        [('x\n"y"', True), ("", False)],
        [("1,2", True), ("z", False)],
    ]
    with pytest.raises(ValueError):
        parse_csv('"a"b\n')
    with pytest.raises(ValueError):
        parse_csv('"unterminated\n')


def test_csv_cells_follow_the_spec_rendering() -> None:
    cols = [
        Col("tz", "", pa.timestamp("us", tz="UTC")),
        Col("naive", "", pa.timestamp("us")),
        Col("by", "", pa.binary()),
        Col("u", "", UUID_T),
        Col("ai", "", pa.list_(pa.decimal128(5, 2))),
    ]
    good = b'"tz","naive","by","u","ai"\n2024-01-01T00:00:00.000001Z,2024-01-01T00:00:00,"\\x00ff","00000000-0000-0000-0000-000000000001","[""1.50"", null]"\n'
    row = csv_rows(good, cols, "good")[0]
    assert row[0] == dt.datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert row[2] == b"\x00\xff" and row[3] == str(uuid.UUID(int=1)) and row[4] == (Decimal("1.5"), None)
    for bad in (
        b'"tz","naive","by","u","ai"\n2024-01-01T00:00:00,,,,\n',  # tz-aware without Z
        b'"tz","naive","by","u","ai"\n,2024-01-01T00:00:00Z,,,\n',  # naive with Z
        b'"tz","naive","by","u","ai"\n,,"00ff",,\n',  # bytes without \\x
        b'"tz","naive","by","u","ai"\n,,,"00000000000000000000000000000001",\n',  # uuid not canonical
        b'"tz","naive","by","u","ai"\n,,,\n',  # a missing cell
    ):
        with pytest.raises(AssertionError):
            csv_rows(bad, cols, "bad")


def test_canonical_values_are_exact() -> None:
    f32, f64 = pa.float32(), pa.float64()
    assert canon(0.1, f32) == canon(0.10000000149011612, f32)  # the same float4
    assert canon(0.1, f64) != canon(0.10000000149011612, f64)
    assert canon(-0.0, f64) != canon(0.0, f64)
    assert canon(float("nan"), f64) == canon(float("nan"), f64)
    tz = pa.timestamp("us", tz="UTC")
    ny = dt.timezone(dt.timedelta(hours=-5))
    assert canon(dt.datetime(2024, 1, 1, 5, tzinfo=UTC), tz) == canon(dt.datetime(2024, 1, 1, tzinfo=ny), tz)
    assert canon(dt.datetime(2024, 1, 1, 5), tz) == canon(dt.datetime(2024, 1, 1, 5, tzinfo=UTC), tz)
    assert canon(dt.datetime(2024, 1, 1, 5), pa.timestamp("us")) != canon(
        dt.datetime(2024, 1, 1, 5, tzinfo=UTC), pa.timestamp("us")
    )
    assert canon(dt.timedelta(hours=23, microseconds=5), pa.time64("us")) == dt.time(23, 0, 0, 5)
    assert canon(1, pa.bool_()) is True and canon(2, pa.bool_()) != canon(1, pa.bool_())
    assert canon(b"x", pa.string()) != canon("x", pa.string())
    assert canon(uuid.UUID(int=7).bytes, UUID_T) == canon(uuid.UUID(int=7), UUID_T)
    assert canon("{}", JSON_T) == "{}"


def test_diff_reports_missing_duplicated_and_changed_rows() -> None:
    want = [(1, "a"), (2, "b"), (3, "c")]
    assert diff_message(want, list(reversed(want)), ["id", "s"], "x") is None
    msg = diff_message(want, [(1, "a"), (2, "b"), (2, "b"), (3, "C")], ["id", "s"], "x")
    assert msg is not None
    assert "2 missing" not in msg and "1 missing, 2 extra" in msg
    assert "missing x1: {id=3, s='c'}" in msg and "extra x1: {id=2, s='b'}" in msg and "{id=3, s='C'}" in msg


def test_parquet_reader_compares_every_column() -> None:
    cols = [Col("id", "", pa.int32()), Col("at", "", pa.timestamp("us", tz="UTC")), Col("u", "", UUID_T)]
    table = pa.table(
        {
            "id": pa.array([1, None], pa.int32()),
            "at": pa.array([dt.datetime(1, 1, 1, tzinfo=UTC), None], pa.timestamp("us", tz="UTC")),
            "u": pa.ExtensionArray.from_storage(UUID_T, pa.array([uuid.UUID(int=9).bytes, None], pa.binary(16))),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    back = pq.read_table(io.BytesIO(sink.getvalue()))
    assert back.schema.field("u").type == UUID_T  # extension types survive the round trip
    assert parquet_rows(back, cols, "t") == [(1, dt.datetime(1, 1, 1, tzinfo=UTC), str(uuid.UUID(int=9))), (None,) * 3]
