"""Sources against real PostgreSQL 15 and MariaDB: exact schemas, exact values, bounded batches, errors."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Generator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rivet.config.model import Secret, SourceConfig, SourceType, Tuning
from rivet.errors import SourceError, UnsupportedTypeError
from rivet.sources.base import Source
from rivet.sources.factory import open_source
from rivet.sources.query import q
from rivet.sources.types import JSON, UUID
from tests.fixtures.databases import DbServer, Namespace, free_port

UTC = dt.UTC
BATCH = 10_000
BIG_ROWS = 300_000
BIG_TEXT = 400  # bytes per row of payload: the whole result (~120 MB) would dwarf one batch


def source(engine: SourceType, url: str, timeout_s: int = 300) -> Source:
    return open_source(SourceConfig(engine, Secret(url), Tuning(statement_timeout_s=timeout_s)))


@pytest.fixture
def pg_source(pg_schema: Namespace) -> Iterator[Source]:
    src = source(SourceType.POSTGRES, pg_schema.url)
    yield src
    src.close()


@pytest.fixture
def my_source(mysql_db: Namespace) -> Iterator[Source]:
    src = source(SourceType.MYSQL, mysql_db.url.replace("mysql://", "mariadb://", 1))
    yield src
    src.close()


def read(src: Source, sql: str, batch_size: int = BATCH) -> pa.Table:
    schema = src.describe(q(sql))
    batches = list(src.stream(q(sql), schema, batch_size))
    assert all(0 < b.num_rows <= batch_size for b in batches)
    assert all(b.schema == schema for b in batches)
    return pa.Table.from_batches(batches, schema=schema)


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def assert_bounded_stream(src: Source, sql: str) -> None:
    """300k wide rows in batches of at most 10k, none empty, with RSS far below the result size."""
    schema = src.describe(q(sql))
    for _ in src.stream(q(f"{sql} LIMIT {4 * BATCH}"), schema, BATCH):  # warm up: load kernels, fill allocator
        pass
    baseline, peak, rows, count = rss_bytes(), 0, 0, 0
    for batch in src.stream(q(sql), schema, BATCH):
        assert 0 < batch.num_rows <= BATCH
        rows += batch.num_rows
        count += 1
        peak = max(peak, rss_bytes())
        del batch
    assert rows == BIG_ROWS and count >= BIG_ROWS // BATCH
    assert peak - baseline < BIG_ROWS * BIG_TEXT // 2, f"RSS grew {(peak - baseline) >> 20} MiB"
    # A consumer that stops early (a failed upload) releases the connection without draining the rest.
    started = time.monotonic()
    early = cast(Generator[pa.RecordBatch, None, None], src.stream(q(sql), schema, BATCH))
    try:
        assert 0 < next(early).num_rows <= BATCH
    finally:
        early.close()  # an unclosed stream would hold its table lock until garbage collection
    assert time.monotonic() - started < 5
    assert src.scalar(q("SELECT 1")) == 1


def assert_one_line_without(err: SourceError, *secrets: str) -> None:
    text = str(err)
    assert "\n" not in text
    for secret in secrets:
        assert secret not in text


# --- PostgreSQL -------------------------------------------------------------------------------

PG_TABLE = """
CREATE EXTENSION IF NOT EXISTS citext SCHEMA public;
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE all_types (
  id int4, i2 int2, i8 int8, n numeric(12,2), nw numeric(60,20), r real, d double precision, dt date,
  tm time, ts timestamp, tstz timestamptz, tx text, vc varchar(20), ch char(4), nm name, ci public.citext,
  by bytea, j json, jb jsonb, u uuid, b bool, e mood, ai int4[], at text[], an numeric(10,3)[]
);
INSERT INTO all_types VALUES
 (1, -32768, -9223372036854775808, -9999999999.99,
  -1234567890123456789012345678901234567890.12345678901234567890, -3.5, 1.7976931348623157e308,
  '0001-01-01', '23:59:59.999999', '1970-01-01 00:00:00.000001', '2024-06-30 23:30:00.5+05:30',
  'héllo 🌍 Ω', 'vç', 'ab', 'nm', 'MiXeD', '\\x00ff10', '{"b": 1,  "a": [2]}', '{"b": 1,  "a": [2]}',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', false, 'happy', '{1,NULL,3}', '{"x,y",NULL}', '{1.5,-2.25}'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 32767, 9223372036854775807, 0.01, 0.00000000000000000001, 0, -0.0, '9999-12-31', '00:00:00',
  '2262-04-11 23:47:16', '1900-01-01 00:00:00-08', '', '', '', '', '', '\\x', '[]', 'null',
  '00000000-0000-0000-0000-000000000000', true, 'sad', '{}', '{}', '{}');
"""

PG_SCHEMA = pa.schema(
    [
        ("id", pa.int32()),
        ("i2", pa.int16()),
        ("i8", pa.int64()),
        ("n", pa.decimal128(12, 2)),
        ("nw", pa.decimal256(60, 20)),
        ("r", pa.float32()),
        ("d", pa.float64()),
        ("dt", pa.date32()),
        ("tm", pa.time64("us")),
        ("ts", pa.timestamp("us")),
        ("tstz", pa.timestamp("us", tz="UTC")),
        ("tx", pa.string()),
        ("vc", pa.string()),
        ("ch", pa.string()),
        ("nm", pa.string()),
        ("ci", pa.string()),
        ("by", pa.binary()),
        ("j", JSON),
        ("jb", JSON),
        ("u", UUID),
        ("b", pa.bool_()),
        ("e", pa.string()),
        ("ai", pa.list_(pa.int32())),
        ("at", pa.list_(pa.string())),
        ("an", pa.list_(pa.decimal128(10, 3))),
    ]
)

PG_ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "i2": -32768,
        "i8": -9223372036854775808,
        "n": Decimal("-9999999999.99"),
        "nw": Decimal("-1234567890123456789012345678901234567890.12345678901234567890"),
        "r": -3.5,
        "d": 1.7976931348623157e308,
        "dt": dt.date(1, 1, 1),
        "tm": dt.time(23, 59, 59, 999999),
        "ts": dt.datetime(1970, 1, 1, 0, 0, 0, 1),
        "tstz": dt.datetime(2024, 6, 30, 18, 0, 0, 500000, tzinfo=UTC),
        "tx": "héllo 🌍 Ω",
        "vc": "vç",
        "ch": "ab  ",
        "nm": "nm",
        "ci": "MiXeD",
        "by": b"\x00\xff\x10",
        "j": '{"b": 1,  "a": [2]}',
        "jb": '{"a": [2], "b": 1}',
        "u": uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        "b": False,
        "e": "happy",
        "ai": [1, None, 3],
        "at": ["x,y", None],
        "an": [Decimal("1.500"), Decimal("-2.250")],
    },
    {name: (2 if name == "id" else None) for name in PG_SCHEMA.names},
    {
        "id": 3,
        "i2": 32767,
        "i8": 9223372036854775807,
        "n": Decimal("0.01"),
        "nw": Decimal("1E-20"),
        "r": 0.0,
        "d": -0.0,
        "dt": dt.date(9999, 12, 31),
        "tm": dt.time(0, 0),
        "ts": dt.datetime(2262, 4, 11, 23, 47, 16),
        "tstz": dt.datetime(1900, 1, 1, 8, 0, tzinfo=UTC),
        "tx": "",
        "vc": "",
        "ch": "    ",
        "nm": "",
        "ci": "",
        "by": b"",
        "j": "[]",
        "jb": "null",
        "u": uuid.UUID(int=0),
        "b": True,
        "e": "sad",
        "ai": [],
        "at": [],
        "an": [],
    },
]


def test_pg_describe_gives_exact_spec_schema(pg: DbServer, pg_schema: Namespace, pg_source: Source) -> None:
    pg.execute(f"SET search_path = {pg_schema.name}; {PG_TABLE}")
    assert pg_source.describe(q("SELECT * FROM all_types")) == PG_SCHEMA


def test_pg_stream_returns_exact_values(pg: DbServer, pg_schema: Namespace, pg_source: Source, tmp_path: Path) -> None:
    pg.execute(f"SET search_path = {pg_schema.name}; {PG_TABLE}")
    table = read(pg_source, "SELECT * FROM all_types ORDER BY id;", batch_size=1)
    assert table.num_rows == 3
    rows = table.to_pylist()
    assert rows == PG_ROWS
    assert isinstance(rows[0]["nw"], Decimal) and rows[0]["nw"].as_tuple().exponent == -20
    assert table.column("u").chunk(0).storage.to_pylist()[0] == uuid.UUID(PG_ROWS[0]["u"].hex).bytes
    # The Parquet file carries the JSON and UUID logical types.
    pq.write_table(table, tmp_path / "t.parquet")
    parquet_schema = str(pq.ParquetFile(tmp_path / "t.parquet").schema)
    assert "j (JSON)" in parquet_schema and "u (UUID)" in parquet_schema


def test_pg_scalar_reads_bounds_in_utc(pg: DbServer, pg_schema: Namespace, pg_source: Source) -> None:
    pg.execute(f"SET search_path = {pg_schema.name}; {PG_TABLE}")
    assert pg_source.scalar(q("SELECT count(*) FROM all_types")) == 3
    assert pg_source.scalar(q("SELECT max(tstz) FROM all_types")) == dt.datetime(
        2024, 6, 30, 18, 0, 0, 500000, tzinfo=UTC
    )
    assert pg_source.scalar(q("SELECT id FROM all_types WHERE false")) is None


@pytest.mark.parametrize(
    ("column", "ddl", "cast"),
    [
        ("dur", "interval", '"dur"::text'),
        ("amount", "numeric", '"amount"::numeric(38,9)'),
        ("cash", "money", '"cash"::numeric(20,2)'),
        ("doc", "xml", '"doc"::text'),
        ("pt", "point", '"pt"::text'),
        ("span", "int4range", '"span"::text'),
        ("flags", "bit(3)", '"flags"::text'),
        ("addr", "inet", '"addr"::text'),
        ("at_tz", "timetz", '"at_tz"::text'),
        ("durs", "interval[]", '"durs"::text[]'),
    ],
)
def test_pg_unsupported_type_names_column_and_cast(pg_source: Source, column: str, ddl: str, cast: str) -> None:
    with pytest.raises(UnsupportedTypeError) as err:
        pg_source.describe(q(f"SELECT NULL::{ddl} AS {column}, 1 AS ok"))
    assert str(err.value).startswith(f'column "{column}" has type ')
    assert str(err.value).endswith(f"cast it in a query, e.g. {cast}")


def test_pg_cast_in_query_makes_unsupported_type_exportable(pg_source: Source) -> None:
    table = read(pg_source, "SELECT (1.5::numeric)::numeric(38,9) AS amount, interval '1 day'::text AS dur")
    assert table.to_pylist() == [{"amount": Decimal("1.500000000"), "dur": "1 day"}]


def test_pg_multidimensional_array_is_refused_not_flattened(
    pg: DbServer, pg_schema: Namespace, pg_source: Source
) -> None:
    pg.execute(
        f"CREATE TABLE {pg_schema.name}.grid (id int, g int4[]); INSERT INTO {pg_schema.name}.grid VALUES (1, '{{1,2}}'), (2, '{{{{1,2}},{{3,4}}}}')"
    )
    with pytest.raises(UnsupportedTypeError, match=r'column "g" holds a multi-dimensional array.*"g"::text'):
        read(pg_source, "SELECT * FROM grid")


@pytest.mark.parametrize("value", ["'infinity'::timestamp", "'-infinity'::timestamptz", "'infinity'::date"])
def test_pg_infinity_is_refused_not_wrapped_around(pg_source: Source, value: str) -> None:
    sql = f"SELECT now()::date AS ok, {value} AS t"
    with pytest.raises(UnsupportedTypeError, match=r'column "t" holds infinity .* isfinite\("t"\)'):
        read(pg_source, sql)
    assert read(pg_source, f"SELECT CASE WHEN isfinite({value}) THEN {value} END AS t").column("t").null_count == 1


def test_pg_streams_300k_rows_in_bounded_batches(pg: DbServer, pg_schema: Namespace, pg_source: Source) -> None:
    pg.execute(
        f"CREATE TABLE {pg_schema.name}.big AS SELECT g AS id, ((g % 1000)::numeric / 7)::numeric(12,2) AS amount,"
        f" repeat('x', {BIG_TEXT}) AS payload FROM generate_series(1, {BIG_ROWS}) g"
    )
    assert_bounded_stream(pg_source, "SELECT * FROM big")


def test_pg_postgres_scheme_is_accepted(pg: DbServer) -> None:
    src = source(SourceType.POSTGRES, pg.url.replace("postgresql://", "postgres://", 1))
    assert read(src, "SELECT 1::int8 AS one").to_pylist() == [{"one": 1}]
    src.close()


def test_pg_wrong_password_is_permanent_and_redacted(pg: DbServer) -> None:
    bad = "wrongpw" + pg.password[-6:]
    with pytest.raises(SourceError) as err:
        source(SourceType.POSTGRES, pg.url.replace(pg.password, bad))
    assert err.value.permanent
    assert f"authentication failed for user '{pg.user}'" in str(err.value)
    assert "password_env" in str(err.value)
    assert_one_line_without(err.value, bad, pg.password)


def test_pg_unreachable_port_is_retryable(pg: DbServer) -> None:
    port = free_port()
    with pytest.raises(SourceError) as err:
        source(SourceType.POSTGRES, f"postgresql://{pg.user}:{pg.password}@127.0.0.1:{port}/rivet")
    assert not err.value.permanent
    assert f"postgres at 127.0.0.1:{port}" in str(err.value)
    assert "check that the server is running and reachable" in str(err.value)
    assert_one_line_without(err.value, pg.password)


def test_pg_missing_database_is_permanent(pg: DbServer) -> None:
    with pytest.raises(SourceError, match="database 'nosuchdb' does not exist") as err:
        source(SourceType.POSTGRES, pg.url_for("nosuchdb"))
    assert err.value.permanent
    assert_one_line_without(err.value, pg.password)


def test_pg_bad_sql_is_permanent_with_server_message(pg: DbServer, pg_source: Source) -> None:
    for call in (
        lambda: pg_source.describe(q("SELECT * FROM nosuch")),
        lambda: list(pg_source.stream(q("SELECT * FROM nosuch"), pa.schema([]), BATCH)),
    ):
        with pytest.raises(SourceError, match='relation "nosuch" does not exist') as err:
            call()
        assert err.value.permanent
        assert_one_line_without(err.value, pg.password)


def test_pg_statement_timeout_applies_to_both_connections(pg: DbServer) -> None:
    src = source(SourceType.POSTGRES, pg.url, timeout_s=1)
    with pytest.raises(SourceError, match="statement_timeout_s=1") as err:
        src.scalar(q("SELECT pg_sleep(3)"))
    assert not err.value.permanent
    sql = "SELECT 1 AS x FROM pg_sleep(3)"
    with pytest.raises(SourceError, match="statement_timeout_s=1"):
        list(src.stream(q(sql), pa.schema([("x", pa.int32())]), BATCH))
    src.close()


# --- MariaDB / MySQL --------------------------------------------------------------------------

MY_TABLE = """
CREATE TABLE all_types (
  id INT, b TINYINT(1), ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT,
  miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED, d DECIMAL(12,2),
  dw DECIMAL(65,30), du DECIMAL(10,4) UNSIGNED, f FLOAT, db DOUBLE, dt DATE, tm TIME(6), dtm DATETIME(6),
  ts TIMESTAMP(6) NULL, ch CHAR(4), vc VARCHAR(20), tx TEXT, en ENUM('a','b'), st SET('x','y'), bn BINARY(4),
  vb VARBINARY(10), bl BLOB, js JSON
) CHARACTER SET utf8mb4
"""
MY_INSERT = """
INSERT INTO all_types VALUES
 (1, 1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808,
  18446744073709551615, -9999999999.99, -99999999999999999999999999999999999.999999999999999999999999999999,
  999999.9999, -0.25, 1.7976931348623157e308, '1000-01-01', '23:59:59.999999', '1000-01-01 00:00:00.000001',
  '2024-06-30 23:30:00.5', 'ab', 'héllo 🌍', 'Ω text', 'b', 'x,y', x'00ff', x'0001', x'deadbeef',
  '{"b": 1,  "a": [2]}'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 0, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0, 0.01,
  0.000000000000000000000000000001, 0, 3.5, -0.0, '9999-12-31', '00:00:00', '9999-12-31 23:59:59.999999',
  '1970-01-01 05:30:01', '', '', '', 'a', '', '', '', '', '[]')
"""

MY_SCHEMA = pa.schema(
    [
        ("id", pa.int32()),
        ("b", pa.bool_()),
        ("ti", pa.int8()),
        ("tiu", pa.int16()),
        ("si", pa.int16()),
        ("siu", pa.int32()),
        ("mi", pa.int32()),
        ("miu", pa.int32()),
        ("i", pa.int32()),
        ("iu", pa.int64()),
        ("bi", pa.int64()),
        ("biu", pa.uint64()),
        ("d", pa.decimal128(12, 2)),
        ("dw", pa.decimal256(65, 30)),
        ("du", pa.decimal128(10, 4)),
        ("f", pa.float32()),
        ("db", pa.float64()),
        ("dt", pa.date32()),
        ("tm", pa.time64("us")),
        ("dtm", pa.timestamp("us")),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("ch", pa.string()),
        ("vc", pa.string()),
        ("tx", pa.string()),
        ("en", pa.string()),
        ("st", pa.string()),
        ("bn", pa.binary()),
        ("vb", pa.binary()),
        ("bl", pa.binary()),
        ("js", pa.string()),
    ]
)

MY_ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "b": True,
        "ti": -128,
        "tiu": 255,
        "si": -32768,
        "siu": 65535,
        "mi": -8388608,
        "miu": 16777215,
        "i": -2147483648,
        "iu": 4294967295,
        "bi": -9223372036854775808,
        "biu": 18446744073709551615,
        "d": Decimal("-9999999999.99"),
        "dw": Decimal("-99999999999999999999999999999999999.999999999999999999999999999999"),
        "du": Decimal("999999.9999"),
        "f": -0.25,
        "db": 1.7976931348623157e308,
        "dt": dt.date(1000, 1, 1),
        "tm": dt.time(23, 59, 59, 999999),
        "dtm": dt.datetime(1000, 1, 1, 0, 0, 0, 1),
        "ts": dt.datetime(2024, 6, 30, 18, 0, 0, 500000, tzinfo=UTC),
        "ch": "ab",
        "vc": "héllo 🌍",
        "tx": "Ω text",
        "en": "b",
        "st": "x,y",
        "bn": b"\x00\xff\x00\x00",
        "vb": b"\x00\x01",
        "bl": b"\xde\xad\xbe\xef",
        "js": '{"b": 1,  "a": [2]}',
    },
    {name: (2 if name == "id" else None) for name in MY_SCHEMA.names},
    {
        "id": 3,
        "b": False,
        "ti": 127,
        "tiu": 0,
        "si": 32767,
        "siu": 0,
        "mi": 8388607,
        "miu": 0,
        "i": 2147483647,
        "iu": 0,
        "bi": 9223372036854775807,
        "biu": 0,
        "d": Decimal("0.01"),
        "dw": Decimal("0.000000000000000000000000000001"),
        "du": Decimal("0.0000"),
        "f": 3.5,
        "db": -0.0,
        "dt": dt.date(9999, 12, 31),
        "tm": dt.time(0, 0),
        "dtm": dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        "ts": dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
        "ch": "",
        "vc": "",
        "tx": "",
        "en": "a",
        "st": "",
        "bn": b"\x00\x00\x00\x00",
        "vb": b"",
        "bl": b"",
        "js": "[]",
    },
]


@pytest.fixture
def my_all_types(mysql: DbServer, mysql_db: Namespace) -> Iterator[None]:
    """The all-types table, inserted from a +05:30 session while the server's default zone is +03:00."""
    mysql.execute(MY_TABLE, database=mysql_db.name)
    conn = mysql.connect(mysql_db.name)
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+05:30'")
            cur.execute(MY_INSERT)
    finally:
        conn.close()
    mysql.execute("SET GLOBAL time_zone = '+03:00'")
    try:
        yield
    finally:
        mysql.execute("SET GLOBAL time_zone = '+00:00'")


def test_mysql_describe_gives_exact_spec_schema(my_all_types: None, my_source: Source) -> None:
    assert my_source.describe(q("SELECT * FROM all_types")) == MY_SCHEMA


def test_mysql_stream_returns_exact_values(my_all_types: None, mysql_db: Namespace) -> None:
    # Opened after the global zone changed, so only the source's own SET time_zone can give UTC.
    src = source(SourceType.MYSQL, mysql_db.url)
    table = read(src, "SELECT * FROM all_types ORDER BY id DESC", batch_size=2)
    assert table.to_pylist() == MY_ROWS[::-1]  # wide decimals are read as text: ORDER BY must survive
    assert src.scalar(q("SELECT max(ts) FROM all_types")) == dt.datetime(2024, 6, 30, 18, 0, 0, 500000)
    src.close()


def test_mysql_narrow_decimals_read_natively_stay_exact(
    mysql: DbServer, mysql_db: Namespace, my_source: Source
) -> None:
    mysql.execute("CREATE TABLE m (a DECIMAL(28,10), b DECIMAL(5,0) UNSIGNED)", database=mysql_db.name)
    mysql.execute(
        "INSERT INTO m VALUES (-999999999999999999.9999999999, 99999), (0.0000000001, 0)", database=mysql_db.name
    )
    table = read(my_source, "SELECT * FROM m")
    assert table.schema == pa.schema([("a", pa.decimal128(28, 10)), ("b", pa.decimal128(5, 0))])
    assert sorted(table.to_pylist(), key=lambda r: r["b"]) == [
        {"a": Decimal("0.0000000001"), "b": Decimal(0)},
        {"a": Decimal("-999999999999999999.9999999999"), "b": Decimal(99999)},
    ]


@pytest.mark.parametrize(
    ("column", "ddl", "cast"),
    [
        ("flags", "BIT(8)", "CAST(`flags` AS UNSIGNED)"),
        ("yr", "YEAR", "CAST(`yr` AS SIGNED)"),
        ("shape", "POINT", "ST_AsText(`shape`)"),
    ],
)
def test_mysql_unsupported_type_names_column_and_cast(
    mysql: DbServer, mysql_db: Namespace, my_source: Source, column: str, ddl: str, cast: str
) -> None:
    mysql.execute(f"CREATE TABLE u (id INT, {column} {ddl})", database=mysql_db.name)
    with pytest.raises(UnsupportedTypeError) as err:
        my_source.describe(q("SELECT * FROM u"))
    assert str(err.value).startswith(f'column "{column}" has type ')
    assert str(err.value).endswith(f"cast it in a query, e.g. {cast}")


def test_mysql_time_beyond_one_day_is_refused(mysql: DbServer, mysql_db: Namespace, my_source: Source) -> None:
    mysql.execute("CREATE TABLE d (t TIME)", database=mysql_db.name)
    mysql.execute("INSERT INTO d VALUES ('-838:59:59')", database=mysql_db.name)
    with pytest.raises(UnsupportedTypeError, match=r'column "t" holds a TIME value .* CAST\(`t` AS CHAR\)'):
        read(my_source, "SELECT * FROM d")


def test_mysql_streams_300k_rows_in_bounded_batches(mysql: DbServer, mysql_db: Namespace, my_source: Source) -> None:
    mysql.execute(
        f"CREATE TABLE big AS SELECT seq AS id, CAST(seq % 1000 AS DECIMAL(12,2)) AS amount,"
        f" REPEAT('x', {BIG_TEXT}) AS payload FROM seq_1_to_{BIG_ROWS}",
        database=mysql_db.name,
    )
    assert_bounded_stream(my_source, "SELECT * FROM big")


def test_mysql_wrong_password_is_permanent_and_redacted(mysql: DbServer) -> None:
    bad = "wrongpw" + mysql.password[-6:]
    with pytest.raises(SourceError) as err:
        source(SourceType.MYSQL, mysql.url.replace(mysql.password, bad))
    assert err.value.permanent
    assert f"authentication failed for user '{mysql.user}'" in str(err.value)
    assert_one_line_without(err.value, bad, mysql.password)


def test_mysql_unreachable_port_is_retryable(mysql: DbServer) -> None:
    port = free_port()
    with pytest.raises(SourceError) as err:
        source(SourceType.MYSQL, f"mysql://{mysql.user}:{mysql.password}@127.0.0.1:{port}/rivet")
    assert not err.value.permanent
    assert f"mysql at 127.0.0.1:{port}" in str(err.value)
    assert "check that the server is running and reachable" in str(err.value)
    assert_one_line_without(err.value, mysql.password)


def test_mysql_missing_database_is_permanent(mysql: DbServer) -> None:
    with pytest.raises(SourceError, match="database 'nosuchdb' does not exist") as err:
        source(SourceType.MYSQL, mysql.url_for("nosuchdb"))
    assert err.value.permanent


def test_mysql_bad_sql_is_permanent_with_server_message(mysql: DbServer, my_source: Source) -> None:
    for call in (
        lambda: my_source.describe(q("SELECT * FROM nosuch")),
        lambda: list(my_source.stream(q("SELECT * FROM nosuch"), pa.schema([]), BATCH)),
    ):
        with pytest.raises(SourceError, match=r"Table '.*\.nosuch' doesn't exist") as err:
            call()
        assert err.value.permanent
        assert_one_line_without(err.value, mysql.password)


def test_mysql_statement_timeout_applies_to_both_readers(mysql: DbServer) -> None:
    src = source(SourceType.MYSQL, mysql.url, timeout_s=1)
    with pytest.raises(SourceError, match="statement_timeout_s=1") as err:
        src.scalar(q("SELECT SLEEP(3)"))
    assert not err.value.permanent
    with pytest.raises(SourceError, match="statement_timeout_s=1"):
        list(src.stream(q("SELECT SLEEP(3) AS s"), pa.schema([("s", pa.int64())]), BATCH))
    src.close()


@pytest.mark.parametrize("engine", [SourceType.POSTGRES, SourceType.MYSQL])
def test_query_with_trailing_comment_and_semicolon_is_wrapped_safely(
    engine: SourceType, pg: DbServer, mysql: DbServer
) -> None:
    server = pg if engine is SourceType.POSTGRES else mysql
    src = source(engine, server.url)
    sql = "SELECT CAST(12.5 AS DECIMAL(30,15)) AS amount -- the user's note\n;"
    assert read(src, sql).to_pylist() == [{"amount": Decimal("12.5")}]
    src.close()


def test_pg_connections_cannot_hang_on_a_silent_network(pg: DbServer) -> None:
    """The liveness settings reach the socket: keepalive on, unacknowledged sends bounded."""
    import os
    import socket

    src = source(SourceType.POSTGRES, pg.url)
    fd = src._conn.pgconn.socket
    sock = socket.socket(fileno=os.dup(fd))
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 120_000
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
    finally:
        sock.close()
        src.close()
