"""Edge values against real PostgreSQL 15 and MariaDB: each lands exactly in Parquet and CSV, or the
export refuses it with UnsupportedTypeError naming the column and the query that fixes it.

Every exact case loads the values into a real table, streams them through the source, writes them with
the part writers, reads the bytes back (pyarrow.parquet; pyarrow.csv with quoted "" kept apart from the
unquoted empty NULL cell) and compares with what the database itself returns (psycopg / PyMySQL).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import struct
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from rivet.config.model import Compression, Format, Secret, SourceConfig, SourceType, Tuning
from rivet.errors import SourceError, UnsupportedTypeError
from rivet.formats.writer import open_writer
from rivet.sources.base import Source
from rivet.sources.factory import open_source
from rivet.sources.query import q
from tests.fixtures.databases import DbServer, Namespace

UTC = dt.UTC
BATCH = 2  # several batches per table, so batch boundaries are crossed too
ALL_BYTES = bytes(range(256))
BIG_TEXT = "ß€😀x" * 10_240 + "end"  # 100 KB of UTF-8 with non-BMP characters
NASTY_TEXT = "ctl \x01 tab \t cr \r lf \n crlf \r\n quote \" 'single' back\\slash, comma; 😀 𝄞 é"


def source(engine: SourceType, url: str) -> Source:
    return open_source(SourceConfig(engine, Secret(url), Tuning(statement_timeout_s=60)))


@pytest.fixture
def pg_source(pg_schema: Namespace) -> Iterator[Source]:
    src = source(SourceType.POSTGRES, pg_schema.url)
    yield src
    src.close()


@pytest.fixture
def my_source(mysql_db: Namespace) -> Iterator[Source]:
    src = source(SourceType.MYSQL, mysql_db.url)
    yield src
    src.close()


def read(src: Source, sql: str) -> tuple[pa.Schema, list[pa.RecordBatch]]:
    schema = src.describe(q(sql))
    return schema, list(src.stream(q(sql), schema, BATCH))


def write(fmt: Format, schema: pa.Schema, batches: list[pa.RecordBatch]) -> bytes:
    sink = io.BytesIO()
    writer = open_writer(fmt, sink, schema, Compression.ZSTD if fmt is Format.PARQUET else Compression.NONE, 3)
    for batch in batches:
        writer.write_batch(batch)
    writer.close()
    return sink.getvalue()


def export(src: Source, sql: str) -> tuple[pa.Schema, list[dict[str, Any]], list[dict[str, str | None]]]:
    """The rows of `sql` as written to Parquet and read back, and as CSV cells (None: unquoted empty)."""
    schema, batches = read(src, sql)
    parquet = pq.read_table(io.BytesIO(write(Format.PARQUET, schema, batches)))
    assert parquet.schema.equals(schema, check_metadata=False)
    text = pcsv.read_csv(
        io.BytesIO(write(Format.CSV, schema, batches)),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in schema.names},
            null_values=[""],  # only the unquoted empty cell (the defaults also take "nan", "NULL" ...)
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    assert text.column_names == schema.names
    return schema, parquet.to_pylist(), text.to_pylist()


def db_rows(server: DbServer, database: str | None, sql: str) -> list[dict[str, Any]]:
    """What the database itself returns for `sql`, in a UTC session."""
    conn = server.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'" if server.engine == "postgres" else "SET time_zone = '+00:00'")
            cur.execute(sql)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()


def same_float(a: float | None, b: float | None, width: pa.DataType) -> bool:
    """Bit-exact at the column's width (NaN equals NaN, -0.0 differs from 0.0)."""
    if a is None or b is None:
        return a is b
    fmt = "<f" if width == pa.float32() else "<d"
    return struct.pack(fmt, a) == struct.pack(fmt, b)


def csv_expected(value: Any, t: pa.DataType) -> str | None:
    """The CSV cell the contract promises for a database value of Arrow type `t`."""
    if value is None:
        return None
    if pa.types.is_boolean(t):
        return "true" if value else "false"
    if pa.types.is_decimal(t):
        return format(value, "f")  # plain, all `scale` digits (the driver's Decimal has that exponent)
    if pa.types.is_timestamp(t):
        if t.tz:
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
        return str(value.isoformat(timespec="microseconds"))
    if pa.types.is_date32(t):
        return str(value.isoformat())
    if pa.types.is_binary(t):
        return "\\x" + bytes(value).hex()
    return str(value)


def assert_exact(
    schema: pa.Schema, db: list[dict[str, Any]], parquet: list[dict[str, Any]], csv: list[dict[str, str | None]]
) -> None:
    assert len(db) == len(parquet) == len(csv) > 0
    for want, got, cells in zip(db, parquet, csv, strict=True):
        for field in schema:
            expected, value, cell = want[field.name], got[field.name], cells[field.name]
            where = f"row {want.get('id')} column {field.name}"
            if pa.types.is_floating(field.type):
                assert same_float(value, expected, field.type), f"{where}: parquet {value!r} != db {expected!r}"
                parsed = None if cell is None else float(cell)  # nan, inf, -inf, -0 as Arrow spells them
                assert same_float(parsed, expected, field.type), f"{where}: csv {cell!r} != db {expected!r}"
                continue
            if pa.types.is_timestamp(field.type) and field.type.tz and expected is not None:
                expected = expected.replace(tzinfo=UTC) if expected.tzinfo is None else expected
            assert value == expected and type(value) is type(expected), f"{where}: parquet {value!r} != {expected!r}"
            if isinstance(expected, Decimal):
                assert value.as_tuple().exponent == expected.as_tuple().exponent == -field.type.scale
            assert cell == csv_expected(expected, field.type), f"{where}: csv {cell!r}"


# --- PostgreSQL -------------------------------------------------------------------------------

PG_TABLE = """
CREATE TABLE edges (
  id int4, i8 int8, n numeric(38,10), f8 double precision, f4 real, ts timestamp, tstz timestamptz, d date,
  tx text, by bytea, b bool
)
"""
PG_ROWS: list[tuple[Any, ...]] = [
    (
        1,
        -(2**63),
        Decimal("-9999999999999999999999999999.9999999999"),
        float("nan"),
        float("nan"),
        dt.datetime(1, 1, 1),
        dt.datetime(1, 1, 1, tzinfo=UTC),
        dt.date(1, 1, 1),
        NASTY_TEXT,
        ALL_BYTES,
        False,
    ),
    (
        2,
        2**63 - 1,
        Decimal("9999999999999999999999999999.9999999999"),
        float("inf"),
        float("inf"),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        dt.date(9999, 12, 31),
        BIG_TEXT,
        ALL_BYTES[::-1],
        True,
    ),
    (3, 0, Decimal("0E-10"), float("-inf"), float("-inf"), None, None, None, "", b"", None),
    (4, None, Decimal("1E-10"), -0.0, -0.0, None, None, None, None, None, None),
    (5, -1, Decimal("-1E-10"), 5e-324, 1.401298464324817e-45, None, None, None, "\\N", b"\x00", None),
    (6, 1, None, 1.7976931348623157e308, 3.4028234663852886e38, None, None, None, "NULL", None, None),
    (7, None, Decimal("0.0000001"), None, None, None, None, None, '""', None, None),
]


def test_pg_edge_values_land_exactly_in_parquet_and_csv(pg: DbServer, pg_schema: Namespace, pg_source: Source) -> None:
    pg.execute(f"SET search_path = {pg_schema.name}; {PG_TABLE}")
    pg.executemany(
        f"INSERT INTO {pg_schema.name}.edges VALUES (%s, %s, %s, %s, %s::real, %s, %s, %s, %s, %s, %s)", PG_ROWS
    )
    sql = "SELECT * FROM edges ORDER BY id"
    schema, parquet, csv = export(pg_source, sql)
    db = db_rows(pg, None, f"SELECT * FROM {pg_schema.name}.edges ORDER BY id")
    assert db[0]["tx"] == NASTY_TEXT and db[0]["by"] == ALL_BYTES and len(db[1]["tx"].encode()) > 100_000
    assert math.copysign(1, db[3]["f8"]) == -1 and math.copysign(1, db[3]["f4"]) == -1
    assert_exact(schema, db, parquet, csv)
    # Empty text/bytes and NULL stay apart in both formats.
    assert (parquet[2]["tx"], parquet[3]["tx"], csv[2]["tx"], csv[3]["tx"]) == ("", None, "", None)
    assert (parquet[2]["by"], parquet[3]["by"], csv[2]["by"], csv[3]["by"]) == (b"", None, "\\x", None)


@pytest.mark.parametrize(
    ("ddl", "values", "fix", "fixed"),
    [
        ("numeric(38,10)", "('1.5'), ('NaN')", "NULLIF(\"n\", 'NaN')::numeric(38,10)", [Decimal("1.5"), None]),
        ("numeric(60,20)", "('NaN'), ('2')", "NULLIF(\"n\", 'NaN')::numeric(60,20)", [None, Decimal(2)]),
        ("numeric(10,3)[]", "('{1.5}'), ('{NaN,2}')", '"n"::text[]', [["1.500"], ["NaN", "2.000"]]),
    ],
)
def test_pg_numeric_nan_is_refused_naming_the_column(
    pg: DbServer, pg_schema: Namespace, pg_source: Source, ddl: str, values: str, fix: str, fixed: list[Any]
) -> None:
    pg.execute(
        f"SET search_path = {pg_schema.name}; CREATE TABLE t (k serial, n {ddl}); INSERT INTO t (n) VALUES {values}"
    )
    with pytest.raises(UnsupportedTypeError) as err:
        read(pg_source, "SELECT n FROM t ORDER BY k")
    assert str(err.value).startswith('column "n" holds NaN, which has no exact value (numeric(')
    assert f"cast it in a query, e.g. {fix}" in str(err.value)
    assert "\n" not in str(err.value)
    _, parquet, _ = export(pg_source, f"SELECT {fix} AS n FROM t ORDER BY k")
    assert [r["n"] for r in parquet] == fixed


def test_pg_numeric_infinity_never_reaches_a_part(pg: DbServer, pg_schema: Namespace, pg_source: Source) -> None:
    """PostgreSQL 14+ keeps infinities only in unbounded numeric, which describe already refuses; the
    suggested bounded cast makes the server itself refuse them (numeric field overflow)."""
    pg.execute(
        f"SET search_path = {pg_schema.name}; CREATE TABLE t (n numeric); INSERT INTO t VALUES (1), ('Infinity')"
    )
    with pytest.raises(UnsupportedTypeError, match=r'column "n" has type numeric without precision and scale'):
        read(pg_source, "SELECT n FROM t")
    with pytest.raises(SourceError, match="numeric field overflow"):
        read(pg_source, 'SELECT "n"::numeric(38,9) AS n FROM t')
    sql = "SELECT CASE WHEN n IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE n END::numeric(38,9) AS n FROM t"
    assert pa.Table.from_batches(read(pg_source, f"{sql} ORDER BY 1")[1]).column("n").to_pylist() == [
        Decimal("1.000000000"),
        None,
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ARRAY['-infinity'::timestamp]", r'column "t" holds infinity or -infinity, .* e\.g\. "t"::text\[\]$'),
        ("ARRAY['2024-01-01'::date, 'infinity']", r'column "t" holds infinity or -infinity, .* e\.g\. "t"::text\[\]$'),
        ("'294276-12-31 23:59:59'::timestamptz", r'column "t" holds a value after 294247-01-10, .* e\.g\. "t"::text$'),
    ],
)
def test_pg_infinite_and_far_future_temporals_are_refused(pg_source: Source, value: str, message: str) -> None:
    with pytest.raises(UnsupportedTypeError, match=message):
        read(pg_source, f"SELECT 1 AS id, {value} AS t")


# --- MariaDB ----------------------------------------------------------------------------------

MY_TABLE = """
CREATE TABLE edges (
  id INT, bi BIGINT, bu BIGINT UNSIGNED, dw DECIMAL(65,30), dn DECIMAL(38,10), d28 DECIMAL(28,10),
  db DOUBLE, f FLOAT, d DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL, b TINYINT(1), tx MEDIUMTEXT, bl BLOB
) CHARACTER SET utf8mb4
"""
MY_ROWS: list[tuple[Any, ...]] = [
    (
        1,
        -(2**63),
        0,
        Decimal("-" + "9" * 35 + "." + "9" * 30),
        Decimal("-9999999999999999999999999999.9999999999"),
        Decimal("-999999999999999999.9999999999"),
        -1.7976931348623157e308,
        -3.4028234663852886e38,
        dt.date(1, 1, 1),
        dt.datetime(1, 1, 1),
        dt.datetime(1970, 1, 1, 0, 0, 1),
        0,
        NASTY_TEXT + "\x00nul",
        ALL_BYTES,
    ),
    (
        2,
        2**63 - 1,
        2**64 - 1,
        Decimal("9" * 35 + "." + "9" * 30),
        Decimal("9999999999999999999999999999.9999999999"),
        Decimal("999999999999999999.9999999999"),
        1.7976931348623157e308,
        3.4028234663852886e38,
        dt.date(9999, 12, 31),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        dt.datetime(2038, 1, 19, 3, 14, 7, 999999),
        1,
        BIG_TEXT,
        ALL_BYTES[::-1],
    ),
    (
        3,
        0,
        1,
        Decimal("1E-30"),
        Decimal("-1E-10"),
        Decimal("0E-10"),
        5e-324,
        1.401298464324817e-45,
        dt.date(1000, 1, 1),
        dt.datetime(1000, 1, 1),
        None,
        None,
        "",
        b"",
    ),
    (4, None, None, Decimal(0), None, None, -0.0, -0.0, None, None, None, None, None, None),
]


def test_mysql_edge_values_land_exactly_in_parquet_and_csv(
    mysql: DbServer, mysql_db: Namespace, my_source: Source
) -> None:
    mysql.execute(MY_TABLE, database=mysql_db.name)
    mysql.executemany(
        "INSERT INTO edges VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        MY_ROWS,
        database=mysql_db.name,
    )
    schema, parquet, csv = export(my_source, "SELECT * FROM edges ORDER BY id")
    # FLOAT through the text protocol has 6 digits; widened to DOUBLE it shows the stored value exactly.
    columns = ", ".join("CAST(f AS DOUBLE) AS f" if name == "f" else name for name in schema.names)
    db = db_rows(mysql, mysql_db.name, f"SELECT {columns} FROM edges ORDER BY id")
    assert db[0]["tx"] == NASTY_TEXT + "\x00nul" and db[0]["bl"] == ALL_BYTES and db[0]["d"] == dt.date(1, 1, 1)
    assert [r["b"] for r in db] == [0, 1, None, None]
    for row in db:  # MariaDB returns tinyint(1) as 0/1, the contract maps it to Boolean
        row["b"] = None if row["b"] is None else bool(row["b"])
    assert_exact(schema, db, parquet, csv)
    assert (parquet[2]["tx"], parquet[3]["tx"], csv[2]["tx"], csv[3]["tx"]) == ("", None, "", None)
    assert (parquet[2]["bl"], parquet[3]["bl"], csv[2]["bl"], csv[3]["bl"]) == (b"", None, "\\x", None)


@pytest.mark.parametrize(("value", "shown"), [(2, "2"), (-1, "-1")])
def test_mysql_tinyint1_other_than_0_or_1_is_refused(
    mysql: DbServer, mysql_db: Namespace, my_source: Source, value: int, shown: str
) -> None:
    mysql.execute("CREATE TABLE t (id INT, b TINYINT(1))", database=mysql_db.name)
    mysql.execute(f"INSERT INTO t VALUES (1, 1), (2, 0), (3, {value})", database=mysql_db.name)
    with pytest.raises(UnsupportedTypeError) as err:
        read(my_source, "SELECT * FROM t ORDER BY id")
    assert str(err.value) == (
        f'column "b" holds {shown}, which has no exact value (tinyint(1): only 0 and 1 map to a boolean exactly): '
        "cast it in a query, e.g. CAST(`b` AS SIGNED)"
    )
    _, parquet, csv = export(my_source, "SELECT id, CAST(`b` AS SIGNED) AS b FROM t ORDER BY id")
    assert [r["b"] for r in parquet] == [1, 0, value] and [r["b"] for r in csv] == ["1", "0", shown]


@pytest.mark.parametrize(
    ("ddl", "value", "fix"),
    [
        ("DATE", "0000-00-00", "NULLIF(`v`, '0000-00-00')"),
        ("DATE", "2024-00-10", "IF(MONTH(`v`) = 0 OR DAYOFMONTH(`v`) = 0, NULL, `v`)"),
        ("DATETIME", "0000-00-00 00:00:00", "NULLIF(`v`, '0000-00-00')"),
        ("DATETIME(6)", "2024-01-00 12:00:00.5", "IF(MONTH(`v`) = 0 OR DAYOFMONTH(`v`) = 0, NULL, `v`)"),
        ("TIMESTAMP NULL", "0000-00-00 00:00:00", "NULLIF(`v`, '0000-00-00')"),
    ],
)
def test_mysql_zero_dates_are_refused_naming_the_column(
    mysql: DbServer, mysql_db: Namespace, my_source: Source, ddl: str, value: str, fix: str
) -> None:
    other = "DATETIME" if ddl == "DATE" else "DATE"  # a temporal of the other kind is not named
    mysql.execute(f"CREATE TABLE t (id INT, ok {other}, v {ddl})", database=mysql_db.name)
    conn = mysql.connect(mysql_db.name)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = ''")  # the default strict mode refuses zero dates on insert
            cur.execute("INSERT INTO t VALUES (1, '2024-01-01', NULL), (2, '2024-01-02', %s)", (value,))
            cur.execute("SELECT CAST(v AS CHAR) FROM t WHERE id = 2")
            stored = cur.fetchone()[0]
    finally:
        conn.close()
    assert stored.startswith(value[:10])  # the server kept the zero date, not a NULL or a coerced date
    with pytest.raises(UnsupportedTypeError) as err:
        read(my_source, "SELECT * FROM t ORDER BY id")
    message = str(err.value)
    assert message.startswith(f'column "v" holds \'{value[:10]}')
    assert "not a calendar date" in message and "CAST(`v` AS CHAR) to keep the text" in message and fix in message
    _, parquet, csv = export(my_source, f"SELECT id, {fix} AS v, CAST(`v` AS CHAR) AS raw FROM t ORDER BY id")
    assert [r["v"] for r in parquet] == [None, None] and [r["v"] for r in csv] == [None, None]
    assert [r["raw"] for r in parquet] == [None, stored]
