"""`columns:` overrides and exact values (issue #20 item 4): config, describe mapping, text reads, refusals."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pyarrow as pa
import pytest

from rivet.config import load_config_text
from rivet.config.model import Compression, SourceType
from rivet.contract.plan import Chunk
from rivet.errors import ConfigError, UnsupportedTypeError
from rivet.formats.writer import CsvPartWriter, ParquetPartWriter, time_text
from rivet.sources.columns import TEXT_KEY, is_text, overrides, text_field
from rivet.sources.conform import ROW_KEY, conform_batch, conform_pg_batch, decimal_misfit
from rivet.sources.mysql import text_projection
from rivet.sources.mysql_types import NEWDECIMAL, MyField
from rivet.sources.mysql_types import column_field as my_field
from rivet.sources.pg_copy import csv_copy_sql
from rivet.sources.pg_types import NUMERIC_OID, PgColumn, PgTypeInfo, column_field
from rivet.sources.postgres import with_ndims_markers
from rivet.sources.query import ColumnTyping
from rivet.sources.sql import chunk_query, select_all

CONFIG = """
source: {type: postgres, url: "postgresql://u@h/db"}
exports:
  - name: e
    table: t
    format: %s
    destination: {type: local, path: /tmp/x}
    columns: %s
"""


def load(columns: str, fmt: str = "parquet") -> tuple[tuple[str, str], ...]:
    return load_config_text(CONFIG % (fmt, columns)).exports[0].columns


# --- config -------------------------------------------------------------------------------------


def test_columns_accepts_string_and_decimal_normalized() -> None:
    got = load('{amount: "decimal(38,10)", note: string, b: " Decimal( 5 , 0 ) ", c: STRING}')
    assert got == (("amount", "decimal(38,10)"), ("note", "string"), ("b", "decimal(5,0)"), ("c", "string"))
    assert load("null") == ()


@pytest.mark.parametrize(
    "value",
    ['"decimal(39,2)"', '"decimal(0,0)"', '"decimal(5,6)"', "text", "3", '"numeric(10,2)"', '"decimal(10)"', "[]"],
)
def test_columns_bad_spelling_names_the_entry_and_the_fix(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(f"{{amount: {value}}}")
    assert err.value.path == "exports[0].columns.amount"
    assert 'use "string"' in str(err.value) and "decimal(p,s)" in str(err.value)


def test_columns_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError) as err:
        load("[amount]")
    assert err.value.path == "exports[0].columns"


def test_select_all_carries_the_typing_through_chunk_predicates() -> None:
    exp = load_config_text(CONFIG % ("csv", "{a: string}")).exports[0]
    typing = ColumnTyping((("a", "string"),), True, "exports[0]", (), "t")
    assert select_all(SourceType.POSTGRES, exp).typing == typing
    assert (select_all(SourceType.POSTGRES, exp) + " WHERE x").wrap("(", ")").typing == typing


def test_unknown_override_column_is_refused_naming_it() -> None:
    typing = ColumnTyping((("amount", "string"), ("nope", "string")), False, "exports[2]")
    with pytest.raises(ConfigError) as err:
        overrides(typing, ["id", "amount"])
    assert err.value.path == "exports[2].columns.nope"
    assert "no column 'nope'" in str(err.value) and "id, amount" in str(err.value)
    assert overrides(None, ["a"]) == {}


# --- describe mapping ---------------------------------------------------------------------------

UNBOUNDED = PgColumn("amount", NUMERIC_OID, -1)


def test_unconstrained_numeric_is_text_in_csv_and_refused_in_parquet_without_override() -> None:
    field = column_field(UNBOUNDED, {}, None, csv=True)
    assert field.type == pa.string() and field.metadata == {TEXT_KEY: b"numeric"}
    with pytest.raises(UnsupportedTypeError) as err:
        column_field(UNBOUNDED, {}, None, csv=False)
    message = str(err.value)
    assert 'column "amount" has type numeric without precision and scale' in message
    assert "columns: {amount: string}" in message and 'columns: {amount: "decimal(38,10)"}' in message


def test_overrides_read_the_database_text() -> None:
    decimal = column_field(UNBOUNDED, {}, "decimal(38,10)", csv=False)
    assert decimal.type == pa.decimal128(38, 10) and is_text(decimal)
    interval = column_field(PgColumn("i", 1186), {1186: PgTypeInfo(1186, "interval", "b")}, "string", csv=False)
    assert interval.type == pa.string() and interval.metadata == {TEXT_KEY: b"interval"}
    arr = column_field(PgColumn("xs", 1007), {1007: PgTypeInfo(1007, "_int4", "b", 23, "A")}, "string", False)
    assert arr.metadata == {TEXT_KEY: b"int4[]"}
    time = column_field(PgColumn("t", 1083), {}, "string", csv=False)
    assert time.metadata == {TEXT_KEY: b"time without time zone"}


def test_decimal_override_only_on_numeric_columns() -> None:
    with pytest.raises(UnsupportedTypeError, match=r'column "t" has type text: a decimal override applies to numeric'):
        column_field(PgColumn("t", 25), {}, "decimal(10,2)", csv=False)
    with pytest.raises(UnsupportedTypeError, match="applies to decimal columns only"):
        my_field(MyField("t", 253, 40, 0, 0, 45), "decimal(10,2)")
    field = my_field(MyField("d", NEWDECIMAL, 12, 2, 0, 63), "string")
    assert field.type == pa.string() and field.metadata == {TEXT_KEY: b"decimal(10,2)"}


# --- how text columns are read ------------------------------------------------------------------


def test_pg_reads_text_columns_as_text_and_marks_array_bounds() -> None:
    schema = pa.schema(
        [
            pa.field("id", pa.int32()),
            text_field("amount", pa.string(), "numeric"),
            pa.field("xs", pa.list_(pa.int32())),
        ]
    )
    sql, markers = with_ndims_markers("SELECT * FROM t", schema)
    assert sql.startswith(
        'SELECT rivet_s."id", rivet_s."amount"::text AS "amount", '
        'CASE WHEN array_lower(rivet_s."xs", 1) <> 1 THEN NULL ELSE rivet_s."xs" END AS "xs", CASE WHEN'
    )  # ADBC fails on an array based below 0 (naming no column): it is read as NULL, and the marker refuses
    assert 'array_lower(rivet_s."xs", 1) <> 1 THEN 1' in sql and markers == [(3, "xs")]
    twice = pa.schema([pa.field("xs", pa.list_(pa.int32())), pa.field("xs", pa.int32())])
    assert with_ndims_markers("SELECT * FROM t", twice)[0].startswith("SELECT rivet_s.*, CASE WHEN")


def test_mysql_reads_text_columns_with_cast() -> None:
    schema = pa.schema([pa.field("id", pa.int32()), text_field("d", pa.decimal128(38, 10), "decimal(65,30)")])
    assert text_projection("SELECT * FROM t", schema).startswith("SELECT `id`, CAST(`d` AS CHAR) AS `d` FROM")


def test_csv_passthrough_writes_text_columns_as_the_server_does_and_never_decimal_overrides() -> None:
    schema = pa.schema([pa.field("id", pa.int32()), text_field("amount", pa.string(), "numeric")])
    copy = csv_copy_sql("SELECT * FROM t", schema)
    assert copy is not None and copy.select.startswith('SELECT rivet_s."id" AS c1, rivet_s."amount" AS c2 FROM')
    assert copy.force_quote == ("c2",)
    decimal = pa.schema([text_field("amount", pa.decimal128(38, 10), "numeric")])
    assert csv_copy_sql("SELECT * FROM t", decimal) is None
    time = csv_copy_sql("SELECT * FROM t", pa.schema([pa.field("t", pa.time64("us"))]))
    assert time is not None and "'24:00:00'::time THEN" in time.select  # to the Arrow path, which writes it


def test_array_not_based_at_one_is_refused_naming_the_column() -> None:
    schema = pa.schema([pa.field("xs", pa.list_(pa.int32()))])
    batch = pa.record_batch([pa.array([[7, 8]], pa.list_(pa.int32())), pa.array([1], pa.int32())], names=["xs", "m"])
    with pytest.raises(UnsupportedTypeError) as err:
        conform_pg_batch(batch, schema, [(1, "xs")])
    assert str(err.value) == (
        "column \"xs\" holds an array whose subscripts do not start at 1 (e.g. '[0:1]={7,8}'), whose bounds a list"
        ' would lose: cast it in a query, e.g. "xs"::text, or set columns: {xs: string} on the export (its exact'
        " text)"
    )
    batch = pa.record_batch([pa.array([[7]], pa.list_(pa.int32())), pa.array([2], pa.int32())], names=["xs", "m"])
    with pytest.raises(UnsupportedTypeError, match="multi-dimensional array"):
        conform_pg_batch(batch, schema, [(1, "xs")])


# --- decimal overrides: exact or refused, naming the row -----------------------------------------


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("1", None),
        ("-0", None),
        ("0.0000000000000", None),
        ("1.5000000000000", None),  # trailing zeros past the scale lose nothing
        ("9999999999999999999999999999.9999999999", None),
        ("1E-30", "it has 30 digits after the point and the scale is 10"),
        ("0.00000000001", "it has 11 digits after the point and the scale is 10"),
        ("1e30", "it has 31 digits before the point and decimal(38,10) holds 28"),
        ("1234567890123456789012345678901234567890.5", "it has 40 digits before the point and decimal(38,10) holds 28"),
        ("100", None),
        ("NaN", "a decimal has no NaN or infinity"),
        ("-Infinity", "a decimal has no NaN or infinity"),
        (None, None),
    ],
)
def test_decimal_misfit(text: str | None, why: str | None) -> None:
    assert decimal_misfit(text, 38, 10) == why


def decimal_schema(key: list[str] | None) -> pa.Schema:
    schema = pa.schema([pa.field("id", pa.int64()), text_field("amount", pa.decimal128(38, 10), "numeric")])
    return schema.with_metadata({ROW_KEY: json.dumps(key).encode()}) if key is not None else schema


def test_decimal_override_casts_exact_values() -> None:
    batch = pa.record_batch([pa.array([1, 2, 3]), pa.array(["1.5", None, "-0.0000000001"])], names=["id", "amount"])
    out = conform_batch(batch, decimal_schema(["id"]), "postgres")
    assert out.column(1).to_pylist() == [Decimal("1.5000000000"), None, Decimal("-1E-10")]


def test_decimal_override_takes_long_texts_that_fit() -> None:
    """MySQL writes decimal(65,30) with 30 digits after the point: more than Arrow's parser takes for 38."""
    texts = ["123456789012345678.012345678900000000000000000000", "-0.000000000000000000000000000000", None]
    batch = pa.record_batch([pa.array([1, 2, 3]), pa.array(texts)], names=["id", "amount"])
    out = conform_batch(batch, decimal_schema(None), "mysql")
    assert out.column(1).to_pylist() == [Decimal("123456789012345678.0123456789"), Decimal(0), None]
    assert out.column(1).type == pa.decimal128(38, 10)


def test_parquet_refuses_24_00_inside_arrays() -> None:
    schema = pa.schema([("ts", pa.list_(pa.time64("us")))])
    writer = ParquetPartWriter(io.BytesIO(), schema, Compression.NONE, 1000)
    arr = pa.ListArray.from_arrays(pa.array([0, 2]), times(1, END_OF_DAY))
    with pytest.raises(UnsupportedTypeError, match=r'column "ts" .* holds 24:00:00'):
        writer.write_batch(pa.record_batch([arr], names=["ts"]))


def test_decimal_override_refusal_names_the_key() -> None:
    batch = pa.record_batch([pa.array([1, 42]), pa.array(["1.5", "0.12345678901"])], names=["id", "amount"])
    with pytest.raises(UnsupportedTypeError) as err:
        conform_batch(batch, decimal_schema(["id"]), "postgres")
    assert str(err.value) == (
        'column "amount" (numeric) holds 0.12345678901 in the row with id = 42, which does not fit the override'
        " decimal(38,10): it has 11 digits after the point and the scale is 10. Nothing is rounded: widen the"
        " override in columns: (at most decimal(38,s)), or set columns: {amount: string} to export its exact text"
    )


def test_decimal_override_refusal_names_the_row_position_without_a_key() -> None:
    batch = pa.record_batch([pa.array([1, 2]), pa.array(["1", "NaN"])], names=["id", "amount"])
    with pytest.raises(UnsupportedTypeError, match=r"holds NaN in row 1002 of the part, .* no NaN or infinity"):
        conform_batch(batch, decimal_schema(None), "postgres", offset=1000)


# --- time 24:00:00 ----------------------------------------------------------------------------------

END_OF_DAY = 86_400_000_000


def times(*values: int | None) -> pa.Array:
    return pa.array(list(values), pa.int64()).view(pa.time64("us"))


def test_csv_writes_24_00_exactly() -> None:
    assert time_text(times(END_OF_DAY, 86_399_999_999, None)).to_pylist() == [
        "24:00:00.000000",
        "23:59:59.999999",
        None,
    ]
    sink = io.BytesIO()
    writer = CsvPartWriter(sink, pa.schema([("t", pa.time64("us"))]))
    writer.write_batch(pa.record_batch([times(END_OF_DAY)], names=["t"]))
    writer.close()
    assert b"<value out of range" not in sink.getvalue() and b'"24:00:00.000000"' in sink.getvalue()


def test_parquet_refuses_24_00_naming_the_column() -> None:
    schema = pa.schema([("t", pa.time64("us"))])
    writer = ParquetPartWriter(io.BytesIO(), schema, Compression.NONE, 1000)
    writer.write_batch(pa.record_batch([times(1, None)], names=["t"]))
    with pytest.raises(UnsupportedTypeError) as err:
        writer.write_batch(pa.record_batch([times(END_OF_DAY)], names=["t"]))
    assert str(err.value) == (
        'column "t" (time without time zone) holds 24:00:00, which Parquet\'s time type cannot hold (it ends at'
        " 23:59:59.999999): set columns: {t: string} on the export (its exact text), or cast it in a query, e.g."
        ' "t"::text, or CASE WHEN "t" = \'24:00\' THEN NULL ELSE "t" END'
    )
    assert writer.rows == 2  # the refused batch was not counted (nor buffered)


def test_chunk_query_keeps_typing() -> None:
    exp = load_config_text(CONFIG % ("parquet", "{a: string}")).exports[0]
    assert chunk_query(SourceType.POSTGRES, exp, Chunk(1, None, None)).typing is not None


def test_override_of_a_key_column_is_refused() -> None:
    typing = ColumnTyping((("k", "string"),), False, "exports[1]", (("cursor_column", "k"),))
    with pytest.raises(ConfigError) as err:
        overrides(typing, ["k", "v"])
    assert err.value.path == "exports[1].columns.k"
    assert "'k' is the export's cursor_column" in str(err.value)


def test_select_all_names_the_key_columns() -> None:
    text = CONFIG.replace("    format: %s\n", "    format: %s\n    mode: chunked\n    chunk_column: id\n")
    exp = load_config_text(text % ("csv", "{a: string}")).exports[0]
    typing = select_all(SourceType.POSTGRES, exp).typing
    assert typing is not None and typing.keys == (("chunk_column", "id"),)
