"""Pure parts of the sources: type mapping tables (spec section 4), exact casts, re-chunking, errors."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pyarrow as pa
import pytest

from rivet.errors import SourceError, UnsupportedTypeError
from rivet.sources.conform import conform_array, conform_batch, rechunk, refuse_pg_wrapped_temporal
from rivet.sources.failures import mysql_error, pg_error
from rivet.sources.mysql import text_projection, trailing_order_by
from rivet.sources.mysql_types import MyField, decimal_precision, invalid_date_refusal
from rivet.sources.mysql_types import arrow_type as my_arrow_type
from rivet.sources.pg_types import PgColumn, PgTypeInfo, numeric_typmod
from rivet.sources.pg_types import arrow_type as pg_arrow_type
from rivet.sources.postgres import with_ndims_markers
from rivet.sources.types import JSON, UUID
from rivet.sources.urls import MYSQL_SCHEMES, POSTGRES_SCHEMES, parse_url

UTC = pa.timestamp("us", tz="UTC")


def numeric_mod(precision: int, scale: int) -> int:
    return ((precision << 16) | (scale & 0x7FF)) + 4


# --- PostgreSQL -------------------------------------------------------------------------------

CATALOG = {
    16386: PgTypeInfo(16386, "mood", "e"),
    16390: PgTypeInfo(16390, "_mood", "b", 16386, "A"),
    16397: PgTypeInfo(16397, "citext", "b"),
    1007: PgTypeInfo(1007, "_int4", "b", 23, "A"),
    1009: PgTypeInfo(1009, "_text", "b", 25, "A"),
    1231: PgTypeInfo(1231, "_numeric", "b", 1700, "A"),
    2951: PgTypeInfo(2951, "_uuid", "b", 2950, "A"),
    1186: PgTypeInfo(1186, "interval", "b", 0, "T"),
    1187: PgTypeInfo(1187, "_interval", "b", 1186, "A"),
    790: PgTypeInfo(790, "money", "b", 0, "N"),
    142: PgTypeInfo(142, "xml", "b", 0, "U"),
}


@pytest.mark.parametrize(
    ("oid", "typmod", "expected"),
    [
        (16, -1, pa.bool_()),
        (17, -1, pa.binary()),
        (19, -1, pa.string()),
        (20, -1, pa.int64()),
        (21, -1, pa.int16()),
        (23, -1, pa.int32()),
        (25, -1, pa.string()),
        (1042, 7, pa.string()),
        (1043, 14, pa.string()),
        (700, -1, pa.float32()),
        (701, -1, pa.float64()),
        (1082, -1, pa.date32()),
        (1083, -1, pa.time64("us")),
        (1114, 3, pa.timestamp("us")),
        (1184, -1, UTC),
        (114, -1, JSON),
        (3802, -1, JSON),
        (2950, -1, UUID),
        (1700, numeric_mod(12, 2), pa.decimal128(12, 2)),
        (1700, numeric_mod(38, 0), pa.decimal128(38, 0)),
        (1700, numeric_mod(39, 10), pa.decimal256(39, 10)),
        (1700, numeric_mod(76, 76), pa.decimal256(76, 76)),
        (16386, -1, pa.string()),
        (16397, -1, pa.string()),
        (1007, -1, pa.list_(pa.int32())),
        (1009, -1, pa.list_(pa.string())),
        (1231, numeric_mod(10, 3), pa.list_(pa.decimal128(10, 3))),
        (2951, -1, pa.list_(UUID)),
        (16390, -1, pa.list_(pa.string())),
    ],
)
def test_pg_type_maps_to_spec_arrow_type(oid: int, typmod: int, expected: pa.DataType) -> None:
    assert pg_arrow_type(PgColumn("c", oid, typmod), CATALOG) == expected


def test_pg_numeric_typmod_decodes_precision_and_negative_scale() -> None:
    assert numeric_typmod(-1) is None
    assert numeric_typmod(numeric_mod(12, 2)) == (12, 2)
    assert numeric_typmod(numeric_mod(5, -2)) == (5, -2)


@pytest.mark.parametrize(
    ("oid", "typmod", "message"),
    [
        (
            1700,
            -1,
            'column "c" has type numeric without precision and scale, which has no exact Parquet decimal type: '
            'set columns: {c: string} (its exact text) or columns: {c: "decimal(38,10)"} on the export (a value '
            'that does not fit is refused), or, rounding, cast it in a query, e.g. "c"::numeric(38,9)',
        ),
        (
            1186,
            -1,
            'column "c" has type interval with no exact Arrow mapping: set columns: {c: string} on the export '
            '(its exact text), or cast it in a query, e.g. "c"::text',
        ),
        (
            790,
            -1,
            'column "c" has type money with no exact Arrow mapping: set columns: {c: string} on the export (its exact text), or cast it in a query, e.g. "c"::numeric(20,2)',
        ),
        (
            142,
            -1,
            'column "c" has type xml with no exact Arrow mapping: set columns: {c: string} on the export (its exact text), or cast it in a query, e.g. "c"::text',
        ),
        (
            1187,
            -1,
            'column "c" has type interval[] with no exact Arrow mapping: set columns: {c: string} on the export (its exact text), or cast it in a query, e.g. "c"::text[]',
        ),
        (
            1231,
            -1,
            'column "c" has type numeric[] without precision and scale, which has no exact Parquet decimal type: '
            'set columns: {c: string} (its exact text) or columns: {c: "decimal(38,10)"} on the export (a value '
            'that does not fit is refused), or, rounding, cast it in a query, e.g. "c"::numeric(38,9)[]',
        ),
        (1700, numeric_mod(100, 2), 'e.g. "c"::text'),
        (1700, numeric_mod(5, -2), 'e.g. "c"::numeric(7,0)'),
        (99999, -1, 'column "c" has type with OID 99999'),
    ],
)
def test_pg_unsupported_type_names_column_and_cast(oid: int, typmod: int, message: str) -> None:
    with pytest.raises(UnsupportedTypeError) as err:
        pg_arrow_type(PgColumn("c", oid, typmod), CATALOG)
    assert message in str(err.value)
    assert err.value.permanent


def test_pg_ndims_markers_only_when_lists_present() -> None:
    plain = pa.schema([("a", pa.int32())])
    assert with_ndims_markers("SELECT 1;", plain) == ("\nSELECT 1\n", [])
    schema = pa.schema([("a", pa.int32()), ("xs", pa.list_(pa.int32()))])
    sql, markers = with_ndims_markers("SELECT a, xs FROM t", schema)
    assert markers == [(2, "xs")]
    assert 'array_ndims(rivet_s."xs")' in sql and sql.endswith("FROM (\nSELECT a, xs FROM t\n) AS rivet_s")


# --- MySQL / MariaDB ----------------------------------------------------------------------------

UNSIGNED, BIN, UTF8MB4 = 32, 63, 45


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (MyField("c", 1, 1), pa.bool_()),  # tinyint(1)
        (MyField("c", 1, 4), pa.int8()),
        (MyField("c", 1, 3, flags=UNSIGNED), pa.int16()),
        (MyField("c", 2, 6), pa.int16()),
        (MyField("c", 2, 5, flags=UNSIGNED), pa.int32()),
        (MyField("c", 9, 9), pa.int32()),
        (MyField("c", 9, 8, flags=UNSIGNED), pa.int32()),
        (MyField("c", 3, 11), pa.int32()),
        (MyField("c", 3, 10, flags=UNSIGNED), pa.int64()),
        (MyField("c", 8, 20), pa.int64()),
        (MyField("c", 8, 20, flags=UNSIGNED), pa.uint64()),
        (MyField("c", 246, 14, 2), pa.decimal128(12, 2)),
        (MyField("c", 246, 11, 0), pa.decimal128(10, 0)),
        (MyField("c", 246, 13, 2, flags=UNSIGNED), pa.decimal128(12, 2)),
        (MyField("c", 246, 67, 30), pa.decimal256(65, 30)),
        (MyField("c", 4, 12, 31), pa.float32()),
        (MyField("c", 5, 22, 31), pa.float64()),
        (MyField("c", 10, 10), pa.date32()),
        (MyField("c", 11, 17, 6), pa.time64("us")),
        (MyField("c", 12, 26, 6), pa.timestamp("us")),
        (MyField("c", 7, 26, 6), UTC),
        (MyField("c", 254, 12, charset=UTF8MB4), pa.string()),
        (MyField("c", 253, 40, charset=UTF8MB4), pa.string()),
        (MyField("c", 252, 262140, flags=16, charset=UTF8MB4), pa.string()),
        (MyField("c", 252, 4294967295, flags=144, charset=UTF8MB4), pa.string()),  # MariaDB JSON (_bin)
        (MyField("c", 254, 4, flags=256, charset=UTF8MB4), pa.string()),  # enum
        (MyField("c", 254, 12, flags=2048, charset=UTF8MB4), pa.string()),  # set
        (MyField("c", 254, 4, flags=128, charset=BIN), pa.binary()),
        (MyField("c", 253, 10, flags=128, charset=BIN), pa.binary()),
        (MyField("c", 252, 65535, flags=144, charset=BIN), pa.binary()),
        (MyField("c", 245, 4294967295, charset=UTF8MB4), JSON),  # MySQL 8 JSON
    ],
)
def test_mysql_field_maps_to_spec_arrow_type(field: MyField, expected: pa.DataType) -> None:
    assert my_arrow_type(field) == expected


def test_mysql_decimal_precision_from_display_length() -> None:
    assert decimal_precision(MyField("c", 246, 14, 2)) == 12
    assert decimal_precision(MyField("c", 246, 11, 0)) == 10
    assert decimal_precision(MyField("c", 246, 10, 0, flags=UNSIGNED)) == 10


@pytest.mark.parametrize(
    ("code", "cast"),
    [(16, "CAST(`c` AS UNSIGNED)"), (13, "CAST(`c` AS SIGNED)"), (255, "ST_AsText(`c`)"), (6, "CAST(`c` AS CHAR)")],
)
def test_mysql_unsupported_type_names_column_and_cast(code: int, cast: str) -> None:
    with pytest.raises(UnsupportedTypeError, match=r'column "c" has type .* cast it in a query, e.g. ') as err:
        my_arrow_type(MyField("c", code, 8))
    assert str(err.value).endswith(cast)


def test_mysql_reads_narrow_decimals_natively_and_wide_ones_as_text() -> None:
    narrow = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(28, 10))])
    assert text_projection("SELECT * FROM t -- all", narrow) == "\nSELECT * FROM t -- all\n"
    wide = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(30, 15))])
    assert text_projection("SELECT * FROM t ORDER BY t.id DESC;", wide) == (
        "SELECT `id`, CAST(`amount` AS CHAR) AS `amount` FROM (\nSELECT * FROM t ORDER BY t.id DESC\n) AS rivet_s"
        " ORDER BY `id` DESC"
    )


@pytest.mark.parametrize(
    ("sql", "keys"),
    [
        ("SELECT * FROM t WHERE c > 5 ORDER BY c", "`c`"),
        ("SELECT * FROM t ORDER BY `a`.`b` ASC, c desc LIMIT 10", "`b` ASC, `c` DESC"),
        ("SELECT * FROM (SELECT * FROM t ORDER BY c) AS q", None),
        ("SELECT * FROM t", None),
    ],
)
def test_trailing_order_by_is_found_only_at_top_level_end(sql: str, keys: str | None) -> None:
    assert trailing_order_by(sql) == keys


# --- conform and rechunk ----------------------------------------------------------------------


def test_conform_casts_numeric_strings_exactly_and_refuses_rounding() -> None:
    arr = pa.array(["-12.34", None, "99999999999999999999999999999999999.99"])
    out = conform_array(arr, pa.decimal128(37, 2))
    assert out.to_pylist() == [Decimal("-12.34"), None, Decimal("99999999999999999999999999999999999.99")]
    with pytest.raises(pa.ArrowInvalid):
        conform_array(pa.array(["1.234"]), pa.decimal128(12, 2))


def test_conform_wraps_json_and_uuid_extension_types() -> None:
    raw = uuid.uuid4().bytes
    assert conform_array(pa.array(['{"a":1}']), JSON).type == JSON
    out = conform_array(pa.array([raw], pa.binary(16)), UUID)
    assert out.type == UUID and out.storage.to_pylist() == [raw]


def test_conform_rebuilds_sliced_lists_with_nulls() -> None:
    arr = pa.array([["1.5"], None, ["2.25", None], []], pa.list_(pa.string())).slice(1, 3)
    out = conform_array(arr, pa.list_(pa.decimal128(10, 3)))
    assert out.to_pylist() == [None, [Decimal("2.250"), None], []]


def test_conform_batch_names_the_column_that_does_not_fit() -> None:
    batch = pa.record_batch({"n": pa.array(["1.234"])})
    with pytest.raises(SourceError, match=r'column "n" has a value that does not fit numeric\(5,2\) exactly'):
        conform_batch(batch, pa.schema([("n", pa.decimal128(5, 2))]), "postgres")


@pytest.mark.parametrize(
    ("values", "target", "message"),
    [
        (
            ["1.5", None, "nan"],
            pa.decimal128(5, 2),
            'column "c" holds NaN, which has no exact value (numeric(5,2): Arrow decimals have no NaN or '
            "infinity): cast it in a query, e.g. NULLIF(\"c\", 'NaN')::numeric(5,2) to export NaN as NULL, "
            'or "c"::text',
        ),
        (
            ["-inf"],
            pa.decimal256(60, 10),
            'column "c" holds -Infinity, which has no exact value (numeric(60,10): Arrow decimals have no '
            "NaN or infinity): cast it in a query, e.g. CASE WHEN \"c\" IN ('NaN', 'Infinity', '-Infinity') "
            'THEN NULL ELSE "c" END::numeric(60,10)',
        ),
    ],
)
def test_conform_refuses_pg_numeric_nan_and_infinity(
    values: list[str | None], target: pa.DataType, message: str
) -> None:
    opaque = pa.opaque(pa.string(), "numeric", "PostgreSQL")  # how ADBC hands numerics over
    column = pa.ExtensionArray.from_storage(opaque, pa.array(values, pa.string()))
    with pytest.raises(UnsupportedTypeError) as err:
        conform_batch(pa.record_batch([column], names=["c"]), pa.schema([("c", target)]), "postgres")
    assert str(err.value) == message


def test_conform_refuses_nan_inside_numeric_arrays() -> None:
    arr = pa.array([["1.5"], ["NaN", None]], pa.list_(pa.string()))
    with pytest.raises(
        UnsupportedTypeError,
        match=r'column "a" holds NaN, which has no exact value \(numeric\(5,1\)\[\]: .* e\.g\. "a"::text\[\]$',
    ):
        conform_batch(
            pa.record_batch([arr], names=["a"]), pa.schema([("a", pa.list_(pa.decimal128(5, 1)))]), "postgres"
        )


@pytest.mark.parametrize(("value", "shown"), [(2, "2"), (-1, "-1"), (127, "127")])
def test_conform_refuses_mysql_tinyint1_other_than_0_or_1(value: int, shown: str) -> None:
    batch = pa.record_batch([pa.array([0, 1, None, value], pa.int8())], names=["b"])
    with pytest.raises(UnsupportedTypeError) as err:
        conform_batch(batch, pa.schema([("b", pa.bool_())]), "mysql")
    assert str(err.value) == (
        f'column "b" holds {shown}, which has no exact value (tinyint(1): only 0 and 1 map to a boolean exactly): '
        "cast it in a query, e.g. CAST(`b` AS SIGNED)"
    )


def test_conform_maps_0_and_1_to_boolean() -> None:
    out = conform_array(pa.array([0, 1, None], pa.int8()), pa.bool_())
    assert out.to_pylist() == [False, True, None]
    assert conform_array(pa.array([], pa.int8()), pa.bool_()).to_pylist() == []
    assert conform_array(pa.array([None], pa.int8()), pa.bool_()).to_pylist() == [None]


PG_EPOCH_US, PG_EPOCH_DAYS = 946_684_800_000_000, 10_957


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (
            pa.array([0, -(2**63) + PG_EPOCH_US - 1], pa.int64()).view(pa.timestamp("us")),
            'column "t" holds infinity or -infinity, which has no exact value (timestamp without time zone: Arrow '
            'dates and timestamps have no infinity): cast it in a query, e.g. CASE WHEN isfinite("t") THEN "t" END',
        ),
        (
            pa.array([-(2**31) + PG_EPOCH_DAYS], pa.int32()).view(pa.date32()),
            'column "t" holds infinity or -infinity, which has no exact value (date: Arrow '
            'dates and timestamps have no infinity): cast it in a query, e.g. CASE WHEN isfinite("t") THEN "t" END',
        ),
        (
            pa.array([-9222426057709551617], pa.int64()).view(pa.timestamp("us", "UTC")),  # 294276 AD wrapped
            'column "t" holds a value after 294247-01-10, which has no exact value '
            '(timestamp with time zone: Arrow timestamps end there): cast it in a query, e.g. "t"::text',
        ),
        (
            pa.ListArray.from_arrays(
                pa.array([0, 2]), pa.array([0, -(2**63) + PG_EPOCH_US], pa.int64()).view(pa.timestamp("us"))
            ),
            'column "t" holds infinity or -infinity, which has no exact value '
            '(timestamp without time zone[]: Arrow dates and timestamps have no infinity): cast it in a query, e.g. "t"::text[]',
        ),
    ],
)
def test_pg_wrapped_infinities_and_far_future_are_refused(column: pa.Array, message: str) -> None:
    with pytest.raises(UnsupportedTypeError) as err:
        refuse_pg_wrapped_temporal("t", column)
    assert str(err.value) == message


def test_pg_earliest_dates_are_not_mistaken_for_infinity() -> None:
    refuse_pg_wrapped_temporal("t", pa.array([-210866803200000000, None], pa.int64()).view(pa.timestamp("us")))
    refuse_pg_wrapped_temporal(
        "t", pa.array([-2440550, 2145042905], pa.int32()).view(pa.date32())
    )  # 4713 BC, 5874897 AD


@pytest.mark.parametrize(
    ("text", "candidates", "message"),
    [
        (
            "Could not retrieve `core::option::Option<chrono::naive::date::NaiveDate>`: Couldn't convert the value "
            "`Date(\"'0000-00-00'\")` to a desired type",
            'column "d"',
            "holds '0000-00-00', which is not a calendar date (a zero date, or a zero or invalid month or day) and "
            "has no exact date value: cast it in a query, e.g. CAST(`d` AS CHAR) to keep the text, or "
            "NULLIF(`d`, '0000-00-00') to export zero dates as NULL",
        ),
        (
            "Could not retrieve `core::option::Option<chrono::naive::datetime::NaiveDateTime>`: Couldn't convert the "
            "value `Date(\"'2024-00-10 01:02:03.250000'\")` to a desired type",
            'one of the columns "dt", "ts"',
            "holds '2024-00-10 01:02:03.250000', which is not a calendar date (a zero date, or a zero or invalid "
            "month or day) and has no exact timestamp value: cast it in a query, e.g. CAST(`dt` AS CHAR) to "
            "keep the text, or IF(MONTH(`dt`) = 0 OR DAYOFMONTH(`dt`) = 0, NULL, `dt`) to export NULL instead",
        ),
    ],
)
def test_mysql_invalid_date_refusal_names_candidate_columns(text: str, candidates: str, message: str) -> None:
    schema = pa.schema([("id", pa.int32()), ("d", pa.date32()), ("dt", pa.timestamp("us")), ("ts", UTC)])
    refusal = invalid_date_refusal(text, schema)
    assert refusal is not None and str(refusal) == f"{candidates} {message}"
    assert invalid_date_refusal("Table 't.x' doesn't exist", schema) is None


def test_rechunk_bounds_rows_and_drops_empty_batches() -> None:
    batches = [pa.record_batch({"a": pa.array(range(n), pa.int64())}) for n in (0, 25, 0, 3)]
    sizes = [b.num_rows for b in rechunk(batches, 10)]
    assert sizes == [10, 10, 5, 3]


# --- URLs and errors ----------------------------------------------------------------------------


def test_url_schemes_and_password_never_in_repr() -> None:
    url = parse_url("postgres://u:s%40cret@db:6543/app", POSTGRES_SCHEMES, "postgres")
    assert (url.host, url.port, url.user, url.password, url.database) == ("db", 6543, "u", "s@cret", "app")
    assert "cret" not in repr(url)
    assert parse_url("mariadb://u:p@h/d", MYSQL_SCHEMES, "mysql").port == 3306
    with pytest.raises(SourceError, match="must start with mariadb:// or mysql://"):
        parse_url("postgresql://u:p@h/d", MYSQL_SCHEMES, "mysql")


def test_driver_messages_are_classified_and_redacted() -> None:
    url = parse_url("postgresql://app:hunter2pw@db:5432/app", POSTGRES_SCHEMES, "postgres")
    echo = OSError('connection to "postgresql://app:hunter2pw@db:5432/app" failed: Connection refused')
    err = pg_error(echo, url, 300, "connect")
    assert not err.permanent and "hunter2pw" not in str(err) and "db:5432" in str(err)
    assert "check that the server is running and reachable" in str(err)
    mid_stream = RuntimeError("cx writer failed: MySqlError { ERROR 1969 (70100): Query execution was interrupted }")
    my_url = parse_url("mysql://app:hunter2pw@db/app", MYSQL_SCHEMES, "mysql")
    timeout = mysql_error(mid_stream, my_url, 5, "read")
    assert not timeout.permanent and "statement_timeout_s=5" in str(timeout)
    bad_sql = mysql_error(
        RuntimeError("MySqlError { ERROR 1146 (42S02): Table 'a.b' doesn't exist }"), my_url, 5, "read"
    )
    assert bad_sql.permanent and str(bad_sql) == "mysql: read failed: Table 'a.b' doesn't exist"
