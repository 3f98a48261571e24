"""PostgreSQL CSV passthrough (`sources/pg_copy.py`, `engine/fastpath.py`) writes exactly the bytes of the
Arrow path (`formats/writer.py`), for every type it takes and adversarial values; values it cannot format
fall back to the Arrow path; parallel readers over one snapshot read exactly the rows of one COPY."""

from __future__ import annotations

import io
import math
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rivet.config.model import Compression, Format, Secret, SourceConfig, SourceType, Tuning
from rivet.destinations.local import LocalDestination
from rivet.engine import fastpath
from rivet.engine.pipeline import export_part
from rivet.errors import UnsupportedTypeError
from rivet.formats.writer import open_writer
from rivet.sources import pg_copy, pg_parallel
from rivet.sources.base import Source
from rivet.sources.factory import open_source
from rivet.sources.query import q
from tests.fixtures.databases import DbServer, Namespace

TABLE = r"""
CREATE EXTENSION IF NOT EXISTS citext SCHEMA public;
CREATE TYPE mood AS ENUM ('sad', 'happy', 'a,"b"');
CREATE TABLE every_type (
  id int4, i2 int2, i8 int8, n numeric(12,2), n0 numeric(18,0), n6 numeric(20,6), n7 numeric(30,7),
  nw numeric(60,20), r real, d double precision, dt date, tm time, ts timestamp, tstz timestamptz,
  tx text, vc varchar(20), ch char(4), nm name, ci public.citext, by bytea, j json, jb jsonb, u uuid,
  b bool, e mood
);
INSERT INTO every_type VALUES
 (1, -32768, -9223372036854775808, -9999999999.99, -999999999999999999, -0.000001, 0.0000001,
  -1234567890123456789012345678901234567890.12345678901234567890, -3.5, 1.2345678901234567e15,
  '0001-01-01', '23:59:59.999999', '0001-01-01 00:00:00', '2024-06-30 23:30:00.5+05:30',
  'héllo 🌍 Ω', 'vç', 'ab', 'nm', 'MiXeD', '\x00ff10', '{"b": 1,  "a": [2], "s": "x\"y\\z\u00e9"}',
  '{"b": 1,  "a": [2], "s": "x\"y\\z\u00e9\n"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', false, 'a,"b"'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 32767, 9223372036854775807, 0.01, 0, 0, 0, 0.00000000000000000001, 0, -0.0, '9999-12-31', '00:00:00',
  '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999999+00', '', '', '', '', '', '\x', '[]', 'null',
  '00000000-0000-0000-0000-000000000000', true, 'sad'),
 (4, 0, 0, 0, 1, 1.5, -1.5, 1, 'NaN', 'NaN', '2024-02-29', '12:00:00.1', '2024-02-29 12:00:00.1',
  '1999-12-31 23:59:59.000001-00', E'a,b\r\nc"d''e\\f\tg\x01h', ',', '"', ' ', 'line
break', '\xdeadbeef', '"\u0000x"', '{"k": "\u2028\ud83d\ude00"}', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
  NULL, 'happy'),
 (5, 1, 1, 1.10, 10, 123.456789, 1.2345678, -0.1, 'Infinity', 'Infinity', '1970-01-01', '00:00:00.000001',
  '1969-12-31 23:59:59.999999', '1970-01-01 00:00:00+00', '  leading and trailing  ', 'NULL', 'null', '\N',
  'ǅ', '\x5c', ' {"a" : 1} ', '{"a": 1e400}', '12345678-1234-1234-1234-123456789abc', true, 'happy'),
 (6, -1, -1, -0.01, -10, -0.5, 0.0000001, 0.5, '-Infinity', '-Infinity', '2000-01-01', '01:02:03',
  '2000-01-01 00:00:00', '2262-04-11 23:47:16.854775+00', '-', '0', '1.0', '', E'\u00e9', '\x00', '1', '1.0',
  '00000000-0000-0000-0000-000000000001', false, 'sad');
"""

FLOATS = """CREATE TABLE floats (id int4, d double precision, r real)"""


def arrow_csv(src: Source, sql: str) -> bytes:
    """What the Arrow path writes for `sql`: the source's batches through the CSV part writer."""
    schema = src.describe(q(sql))
    buf = io.BytesIO()
    writer = open_writer(Format.CSV, buf, schema, Compression.NONE)
    for batch in src.stream(q(sql), schema, 1000):
        writer.write_batch(batch)
    writer.close()
    return buf.getvalue()


def passthrough_csv(src: Source, sql: str) -> bytes:
    schema = src.describe(q(sql))
    blocks = pg_copy.stream_csv(src, q(sql), schema)
    assert blocks is not None, "the schema should take the passthrough"
    return fastpath.csv_header(schema) + b"".join(block for block, _ in blocks)


@pytest.fixture
def src(pg: DbServer, pg_schema: Namespace) -> Iterator[Source]:
    pg.execute(f"SET search_path = {pg_schema.name}, public; {TABLE}")
    s = open_source(SourceConfig(SourceType.POSTGRES, Secret(pg_schema.url), Tuning(statement_timeout_s=60)))
    yield s
    s.close()


def test_every_type_and_adversarial_value_is_byte_identical(src: Source) -> None:
    sql = "SELECT * FROM every_type ORDER BY id"
    expected = arrow_csv(src, sql)
    assert passthrough_csv(src, sql) == expected
    assert expected.count(b"\n") >= 7  # header + 6 rows (some values hold line breaks)


def _random_double(rng: random.Random) -> float:
    while True:
        value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if not math.isnan(value):
            return float(value)


def test_floats_of_every_magnitude_are_byte_identical(pg: DbServer, pg_schema: Namespace, src: Source) -> None:
    rng = random.Random(20261130)
    values: list[float] = []
    for exponent in range(-45, 40):  # every decimal exponent either notation switches at, and beyond
        for mantissa in (1.0, 1.5, 9.999999, 2.0**0.5, 3.0):
            values += [mantissa * 10.0**exponent, -mantissa * 10.0**exponent]
    for k in range(-8, 17):  # exact powers of ten and their neighbours, where the branches meet
        p = 10.0**k
        values += [p, math.nextafter(p, 0.0), math.nextafter(p, math.inf)]
    values += [_random_double(rng) for _ in range(3000)]
    values += [rng.uniform(-1e6, 1e6) for _ in range(500)]
    singles = (struct.unpack("<f", rng.getrandbits(32).to_bytes(4, "little"))[0] for _ in range(2500))
    values += [x for x in singles if not math.isnan(x)]  # every float32 exponent
    values += [float(rng.getrandbits(rng.randint(20, 60))) for _ in range(2000)]  # wide integers, below and above 2^54
    values += [5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.0, -0.0, math.inf, -math.inf]
    values += [math.nan, 1.5e10, 3e10, 9.999999e19, 7480544186.369454, 2.0**54, 2.0**25, -(2.0**54), -(2.0**25)]
    rows, big = [], 0
    for i, v in enumerate(values):
        try:
            single: float | None = struct.unpack("<f", struct.pack("<f", v))[0]  # the nearest float32
        except OverflowError:
            single = None
        # Edge cases only the Arrow path spells right (see pg_copy._float_text) are checked further down.
        d = None if math.isfinite(v) and abs(v) >= 2.0**54 else v
        r = None if single is not None and math.isfinite(single) and abs(single) >= 2.0**25 else single
        big += (d is None) + (r is None and single is not None)
        rows.append((i, d, r))
    pg.execute(f"SET search_path = {pg_schema.name}; {FLOATS}")
    pg.executemany(f"INSERT INTO {pg_schema.name}.floats VALUES (%s, %s, %s)", rows)
    sql = "SELECT * FROM floats ORDER BY id"
    assert passthrough_csv(src, sql) == arrow_csv(src, sql)
    assert big > 100 and sum(d is not None for _, d, _ in rows) > 4000 and sum(r is not None for *_, r in rows) > 3000
    for d, r in (("2^54", "NULL"), ("-(2^54)", "NULL"), ("NULL", "2^25"), ("9.999999e19", "NULL"), ("NULL", "1.5e10")):
        edge = f"SELECT 1 AS id, ({d})::float8 AS d, ({r})::float4 AS r"
        with pytest.raises(pg_copy.PassthroughUnsupported):
            passthrough_csv(src, edge)


@pytest.mark.parametrize(
    ("value", "sql_type", "arrow_refuses"),
    [
        ("0044-03-15 BC", "date", False),  # the Arrow path writes some text for it: passthrough must not differ
        ("infinity", "date", True),
        ("-infinity", "timestamptz", True),
        ("0100-01-01 BC", "timestamp", False),
        ("10000-01-01", "timestamp", False),
        ("24:00:00", "time", False),
        ("NaN", "numeric(10,2)", True),
    ],
)
def test_values_the_server_cannot_format_fall_back_to_the_arrow_path(
    src: Source, tmp_path: Path, value: str, sql_type: str, arrow_refuses: bool
) -> None:
    sql = f"SELECT id, (CASE WHEN id = 1 THEN '{value}' END)::{sql_type} AS v FROM generate_series(1, 2) AS id"
    schema = src.describe(q(sql))
    blocks = pg_copy.stream_csv(src, q(sql), schema)
    assert blocks is not None
    with pytest.raises(pg_copy.PassthroughUnsupported):
        list(blocks)
    dest = LocalDestination(str(tmp_path))
    args = (src, q(sql), schema, dest, "part-000001.csv", Format.CSV, Compression.NONE, 1000)
    if arrow_refuses:
        with pytest.raises(UnsupportedTypeError):
            export_part(*args)
        assert not (tmp_path / "part-000001.csv").exists()
        return
    try:
        expected = arrow_csv(src, sql)
    except Exception:  # the Arrow path cannot read it either: the export fails the same way
        with pytest.raises(Exception):  # noqa: B017
            export_part(*args)
        return
    result = export_part(*args)
    assert result is not None and result.rows == 2
    assert (tmp_path / "part-000001.csv").read_bytes() == expected


def test_arrays_and_duplicate_names_do_not_take_the_passthrough(src: Source) -> None:
    for sql in ("SELECT ARRAY[1, 2] AS a", "SELECT 1 AS x, 2 AS x"):
        schema = src.describe(q(sql))
        assert pg_copy.stream_csv(src, q(sql), schema) is None


def test_export_part_writes_passthrough_bytes_and_fingerprints(
    src: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql = "SELECT * FROM every_type ORDER BY id"
    schema = src.describe(q(sql))
    results = {}
    assert not pg_copy.cheap_on_server(schema)  # timestamps: `auto` would take the Arrow path
    for mode in ("force", "0"):
        monkeypatch.setenv(fastpath.PASSTHROUGH_ENV, mode)
        out = tmp_path / mode
        result = export_part(src, q(sql), schema, LocalDestination(str(out)), "p.csv", Format.CSV, Compression.NONE, 2)
        assert result is not None
        results[mode] = (result, (out / "p.csv").read_bytes())
    (on, on_bytes), (off, off_bytes) = results["force"], results["0"]
    assert on_bytes == off_bytes
    assert (on.rows, on.size_bytes, on.content_fingerprint, on.content_md5, on.content_crc32c) == (
        off.rows,
        off.size_bytes,
        off.content_fingerprint,
        off.content_md5,
        off.content_crc32c,
    )
    empty = export_part(
        src,
        q(f"{sql} LIMIT 0"),
        schema,
        LocalDestination(str(tmp_path / "e")),
        "p.csv",
        Format.CSV,
        Compression.NONE,
        2,
    )
    assert empty is None and not (tmp_path / "e" / "p.csv").exists()


def _lines(data: bytes) -> list[bytes]:
    header, _, body = data.partition(b"\n")
    return [header, *sorted(body.splitlines())]


def test_parallel_readers_share_one_snapshot_and_read_every_row_once(
    pg: DbServer, pg_schema: Namespace, src: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg.execute(
        f"SET search_path = {pg_schema.name}; CREATE TABLE wide AS "
        "SELECT g AS id, md5(g::text) AS t, now() + g * interval '1 second' AS at, (g * 0.5)::float8 AS f "
        "FROM generate_series(1, 60000) g"
    )
    monkeypatch.setattr(pg_parallel, "MIN_PAGES", 1)
    monkeypatch.setenv(pg_parallel.READERS_ENV, "3")
    query = q('SELECT * FROM "wide"')
    schema = src.describe(query)
    assert pg_parallel.whole_table(query) == '"wide"'
    # CSV: the same rows as one reader's CSV
    blocks = pg_parallel.csv_blocks(src, query, schema)
    assert blocks is not None
    parallel = fastpath.csv_header(schema) + b"".join(b for b, _ in blocks)
    assert _lines(parallel) == _lines(arrow_csv(src, 'SELECT * FROM "wide"'))
    # Parquet: the pipeline reads through three readers; the part holds every row exactly once
    result = export_part(
        src, query, schema, LocalDestination(str(tmp_path)), "p.parquet", Format.PARQUET, Compression.ZSTD, 5000
    )
    assert result is not None and result.rows == 60000
    ids = pq.read_table(tmp_path / "p.parquet").column("id").to_pylist()
    assert sorted(ids) == list(range(1, 60001))


def test_readers_see_the_coordinators_snapshot_not_later_rows(
    pg: DbServer, pg_schema: Namespace, src: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg.execute(
        f"SET search_path = {pg_schema.name}; CREATE TABLE grows AS SELECT g AS id FROM generate_series(1, 5000) g"
    )
    monkeypatch.setattr(pg_parallel, "MIN_PAGES", 1)
    monkeypatch.setenv(pg_parallel.READERS_ENV, "2")
    query = q('SELECT * FROM "grows"')
    schema = src.describe(query)
    coordinator_init = pg_parallel.Coordinator.__init__

    def insert_after_export(self: pg_parallel.Coordinator, *args: object) -> None:
        coordinator_init(self, *args)  # type: ignore[arg-type]
        pg.execute(f"INSERT INTO {pg_schema.name}.grows SELECT g FROM generate_series(5001, 6000) g")

    monkeypatch.setattr(pg_parallel.Coordinator, "__init__", insert_after_export)
    batches = pg_parallel.stream(src, query, schema, 1000)
    assert batches is not None
    ids = sorted(i for b in batches for i in b.column("id").to_pylist())
    assert ids == list(range(1, 5001))


def test_ctid_ranges_partition_every_page() -> None:
    assert pg_parallel.ctid_ranges(10, 1) == ("TRUE",)
    assert pg_parallel.ctid_ranges(10, 2) == ("ctid < '(5,0)'::tid", "ctid >= '(5,0)'::tid")
    three = pg_parallel.ctid_ranges(9, 3)
    assert three[1] == "ctid >= '(3,0)'::tid AND ctid < '(6,0)'::tid" and three[2] == "ctid >= '(6,0)'::tid"
    assert pg_parallel.whole_table(q('SELECT * FROM "s"."t"')) == '"s"."t"'
    assert pg_parallel.whole_table(q('SELECT * FROM "t" WHERE "id" >= 1')) is None
    assert pg_parallel.whole_table(q("SELECT * FROM (\nselect 1\n) AS rivet_q")) is None
