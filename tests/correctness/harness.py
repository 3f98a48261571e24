"""The differential harness: read what an export certified, read the source independently, compare multisets.

The exporter reads PostgreSQL through ADBC and MariaDB through ConnectorX; the reference side here reads with
psycopg / PyMySQL `fetchall()` (row by row, text protocol), so the two paths share no decoding code. Both sides
are brought to canonical, hashable Python values per the spec's Arrow type of the column, then compared as
`collections.Counter` multisets: a lost row, a duplicated row or a changed value all show up, with examples.

Nothing here imports the engine (`rivet`): the export is driven through the real CLI in a subprocess and read
back from the store with pyarrow, the csv rules of the spec, boto3 and the file system.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import math
import re
import secrets
import struct
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from tests.fixtures.databases import DbServer, Namespace
from tests.integration.rivet_cli import Result, popen, rivet, write_config

UTC = dt.UTC
PREFIX = "cx/{export}/{run_id}/"
JSON_T = pa.json_(pa.string())
UUID_T = pa.uuid()
S3_KEY_ENV, S3_SECRET_ENV = "RIVET_CX_S3_KEY", "RIVET_CX_S3_SECRET"


# --- columns and canonical values -------------------------------------------------------------------


@dataclass(frozen=True)
class Col:
    """One source column: its DDL and the Arrow type the spec maps it to (which also picks how to compare)."""

    name: str
    ddl: str
    arrow: pa.DataType


@dataclass
class Table:
    """A loaded source table: where it lives and the spec's schema for it."""

    engine: str  # "postgres" | "mysql"
    server: DbServer
    database: str  # PostgreSQL database / MariaDB database holding the table
    name: str  # qualified as the export's `table:` names it
    columns: list[Col]
    url: str  # the URL the exporter connects with

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def col(self, name: str) -> Col:
        return next(c for c in self.columns if c.name == name)

    def rows(self, where: str = "", params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every source row (optionally filtered), canonical, through the independent reader."""
        cols = ", ".join(quote(self.engine, c.name) for c in self.columns)
        sql = f"SELECT {cols} FROM {self.name}" + (f" WHERE {where}" if where else "")
        return canon_rows(reference_fetch(self.server, self.database, sql, params), self.columns)

    def count(self) -> int:
        return int(reference_fetch(self.server, self.database, f"SELECT COUNT(*) FROM {self.name}")[0][0])


def quote(engine: str, ident: str) -> str:
    q = '"' if engine == "postgres" else "`"
    return q + ident.replace(q, q + q) + q


def _f32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def canon(value: Any, t: pa.DataType) -> Any:
    """A canonical, hashable form of one value of Arrow type `t` (None stays None).

    Values of the wrong Python type are kept as a tagged tuple so they show up as mismatches, not crashes.
    """
    if value is None:
        return None
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.uuid":
            if isinstance(value, uuid.UUID):
                return str(value)
            if isinstance(value, bytes | bytearray | memoryview) and len(bytes(value)) == 16:
                return str(uuid.UUID(bytes=bytes(value)))
            return ("bad-uuid", repr(value))
        t = t.storage_type
    if pa.types.is_boolean(t):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):  # MariaDB tinyint(1) through PyMySQL
            return bool(value)
        return ("bad-bool", repr(value))
    if pa.types.is_integer(t):
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else ("bad-int", repr(value))
    if pa.types.is_floating(t):
        f = float(value)
        if pa.types.is_float32(t):
            f = _f32(f)
        return "nan" if math.isnan(f) else f.hex()  # hex keeps -0.0 apart from 0.0
    if pa.types.is_decimal(t):
        d = value if isinstance(value, Decimal) else Decimal(str(value))
        return ("decimal", str(d)) if not d.is_finite() else d
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return value if isinstance(value, str) else ("bad-str", repr(value))
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else ("bad-bytes", repr(value))
    if pa.types.is_date(t):
        ok = isinstance(value, dt.date) and not isinstance(value, dt.datetime)
        return value if ok else ("bad-date", repr(value))
    if pa.types.is_time(t):
        if isinstance(value, dt.timedelta):  # PyMySQL reads TIME as a duration
            if dt.timedelta(0) <= value < dt.timedelta(days=1):
                return (dt.datetime.min + value).time()
            return ("bad-time", repr(value))
        return value if isinstance(value, dt.time) else ("bad-time", repr(value))
    if pa.types.is_timestamp(t):
        if not isinstance(value, dt.datetime):
            return ("bad-timestamp", repr(value))
        if t.tz is None:
            return value if value.tzinfo is None else ("aware-in-naive-column", value.isoformat())
        # The MariaDB reference session runs at +00:00, so its naive TIMESTAMP values are UTC.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        if not isinstance(value, list | tuple):
            return ("bad-list", repr(value))
        return tuple(canon(v, t.value_type) for v in value)
    raise AssertionError(f"harness: no canonical form for {t}")


def canon_rows(rows: Iterable[Sequence[Any]], columns: Sequence[Col]) -> list[tuple[Any, ...]]:
    out = []
    for row in rows:
        assert len(row) == len(columns), f"row has {len(row)} values for {len(columns)} columns"
        out.append(tuple(canon(v, c.arrow) for v, c in zip(row, columns, strict=True)))
    return out


# --- the independent reference readers ---------------------------------------------------------------


def pg_connect(server: DbServer, database: str) -> Any:
    """psycopg, autocommit, UTC session (so year-1 instants print without an LMT offset); json as text."""
    import psycopg
    from psycopg.types.string import TextLoader

    conn = psycopg.connect(server.url_for(database), autocommit=True, options="-c TimeZone=UTC")
    for name in ("json", "jsonb"):
        conn.adapters.register_loader(name, TextLoader)
    return conn


def my_connect(server: DbServer, database: str) -> Any:
    """PyMySQL, autocommit, +00:00 session (TIMESTAMP values come back as naive UTC)."""
    import pymysql

    return pymysql.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        database=database,
        autocommit=True,
        charset="utf8mb4",
        init_command="SET time_zone = '+00:00'",
        max_allowed_packet=64 << 20,
    )


def connect(server: DbServer, database: str) -> Any:
    return pg_connect(server, database) if server.engine == "postgres" else my_connect(server, database)


def reference_fetch(server: DbServer, database: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    conn = connect(server, database)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, tuple(params) if params else None)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def execute(server: DbServer, database: str, *statements: str) -> None:
    conn = connect(server, database)
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


def insert_rows(
    server: DbServer, database: str, table: str, names: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Bound parameters, so every value arrives exactly (bytes, NUL, quotes, 100 KB text)."""
    if not rows:
        return
    engine = server.engine
    cols = ", ".join(quote(engine, n) for n in names)
    marks = ", ".join(["%s"] * len(names))
    conn = connect(server, database)
    try:
        with conn.cursor() as cur:
            sql = f"INSERT INTO {table} ({cols}) VALUES ({marks})"
            if engine == "postgres":
                cur.executemany(sql, [tuple(r) for r in rows])
            else:  # small batches: PyMySQL folds executemany into one statement under max_allowed_packet
                for start in range(0, len(rows), 200):
                    cur.executemany(sql, [tuple(r) for r in rows[start : start + 200]])
    finally:
        conn.close()


def create_table(server: DbServer, database: str, table: str, columns: Sequence[Col], extra: str = "") -> None:
    body = ", ".join(f"{quote(server.engine, c.name)} {c.ddl}" for c in columns)
    suffix = " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" if server.engine == "mysql" else ""
    execute(server, database, f"CREATE TABLE {table} ({body}{extra}){suffix}")


# --- namespaces ---------------------------------------------------------------------------------------


@contextmanager
def pg_database(pg: DbServer, timezone: str | None = "America/New_York") -> Iterator[Namespace]:
    """A fresh PostgreSQL database whose sessions default to a non-UTC zone (the exporter must not care)."""
    name = "cx_" + secrets.token_hex(5)
    pg.execute(f"CREATE DATABASE {name}")
    if timezone:
        pg.execute(f"ALTER DATABASE {name} SET timezone TO '{timezone}'")
    try:
        yield Namespace(name, pg.url_for(name))
    finally:
        pg.execute(f"DROP DATABASE {name} WITH (FORCE)")


@contextmanager
def my_database(mysql: DbServer) -> Iterator[Namespace]:
    name = "cx_" + secrets.token_hex(5)
    mysql.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield Namespace(name, mysql.url_for(name))
    finally:
        conn = mysql.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION lock_wait_timeout = 10")
                cur.execute(f"DROP DATABASE {name}")
        finally:
            conn.close()


@contextmanager
def mysql_global(mysql: DbServer, variable: str, value: str) -> Iterator[None]:
    """SET GLOBAL for the duration (new sessions pick it up), restored afterwards whatever happens."""
    old = mysql.query(f"SELECT @@GLOBAL.{variable}")[0][0]
    mysql.execute(f"SET GLOBAL {variable} = %s", (value,))
    try:
        yield
    finally:
        mysql.execute(f"SET GLOBAL {variable} = %s", (old,))


# --- destinations -------------------------------------------------------------------------------------


@dataclass
class Dest:
    """Where an export writes, read back without the engine: the file system or boto3."""

    kind: str  # "local" | "s3"
    root: Path | None = None
    bucket: str | None = None
    s3: Any = None  # tests.fixtures.objectstores.S3Server
    env: dict[str, str] = field(default_factory=dict)
    _client: Any = None

    def yaml(self, template: str = PREFIX) -> dict[str, Any]:
        if self.kind == "local":
            assert self.root is not None
            return {"type": "local", "path": str(self.root / template)}
        return {
            "type": "s3",
            "bucket": self.bucket,
            "prefix": template,
            "endpoint": self.s3.endpoint,
            "region": self.s3.region,
            "access_key_env": S3_KEY_ENV,
            "secret_key_env": S3_SECRET_ENV,
        }

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.s3.client()
        return self._client

    def read(self, prefix: str, key: str) -> bytes | None:
        if self.kind == "local":
            assert self.root is not None
            path = self.root / prefix / key
            return path.read_bytes() if path.is_file() else None
        try:
            return bytes(self.client.get_object(Bucket=self.bucket, Key=prefix + key)["Body"].read())
        except self.client.exceptions.NoSuchKey:
            return None

    def keys(self, prefix: str) -> list[str]:
        """Every object under `prefix`, relative to it (hidden temp files included: they are bytes too)."""
        if self.kind == "local":
            assert self.root is not None
            base = self.root / prefix
            if not base.exists():
                return []
            return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())
        out: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out.extend(o["Key"][len(prefix) :] for o in page.get("Contents", []))
        return sorted(out)

    def prefix_arg(self, prefix: str) -> str:
        """The exact prefix as `--prefix` takes it: a local path, or the key prefix in the bucket."""
        if self.kind == "local":
            assert self.root is not None
            return str(self.root / prefix)
        return prefix


def local_dest(root: Path) -> Dest:
    root.mkdir(parents=True, exist_ok=True)
    return Dest("local", root=root)


def s3_dest(s3_server: Any) -> Dest:
    bucket = "cx-" + secrets.token_hex(6)
    s3_server.client().create_bucket(Bucket=bucket)
    env = {S3_KEY_ENV: s3_server.access_key, S3_SECRET_ENV: s3_server.secret_key}
    return Dest("s3", bucket=bucket, s3=s3_server, env=env)


# --- reading a certified export -----------------------------------------------------------------------


@dataclass
class Export:
    """What a prefix certifies: the manifest, canonical rows per part, each part's Arrow schema (Parquet)."""

    prefix: str
    manifest: dict[str, Any]
    parts: list[tuple[dict[str, Any], list[tuple[Any, ...]]]]
    schemas: list[pa.Schema]

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        return [r for _, rows in self.parts for r in rows]


def read_export(dest: Dest, prefix: str, columns: Sequence[Col], fmt: str) -> Export:
    """Read a certified prefix without the engine; fail if `_SUCCESS` is absent or does not certify the manifest."""
    success = dest.read(prefix, "_SUCCESS")
    raw = dest.read(prefix, "manifest.json")
    assert success is not None, f"no _SUCCESS at {prefix} (objects: {dest.keys(prefix)[:20]})"
    assert raw is not None, f"_SUCCESS without manifest.json at {prefix}"
    assert success == f"xxh3:{xxhash.xxh3_64_hexdigest(raw)}\n".encode(), "_SUCCESS does not fingerprint manifest"
    manifest = json.loads(raw)
    assert manifest["status"] == "success", manifest["status"]
    parts = []
    schemas = []
    listed = {p["path"] for p in manifest["parts"]}
    stray = [k for k in dest.keys(prefix) if k.startswith("part-") and k not in listed]
    assert not stray, f"part objects not in the manifest at {prefix}: {stray}"
    for part in manifest["parts"]:
        data = dest.read(prefix, part["path"])
        assert data is not None, f"manifest lists {part['path']} but it is not at {prefix}"
        assert len(data) == part["size_bytes"], f"{part['path']}: {len(data)} bytes, manifest {part['size_bytes']}"
        if fmt == "parquet":
            table = pq.read_table(io.BytesIO(data))
            schemas.append(table.schema)
            rows = parquet_rows(table, columns, part["path"])
        else:
            rows = csv_rows(data, columns, part["path"])
        assert len(rows) == part["rows"], f"{part['path']} holds {len(rows)} rows, manifest says {part['rows']}"
        parts.append((part, rows))
    total = sum(len(r) for _, r in parts)
    assert manifest["row_count"] == total, f"manifest row_count {manifest['row_count']} but parts hold {total}"
    assert manifest["part_count"] == len(parts)
    return Export(prefix, manifest, parts, schemas)


def parquet_rows(table: pa.Table, columns: Sequence[Col], where: str) -> list[tuple[Any, ...]]:
    assert table.column_names == [c.name for c in columns], f"{where}: columns {table.column_names}"
    pycols = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [tuple(canon(v, c.arrow) for v, c in zip(vals, columns, strict=True)) for vals in zip(*pycols, strict=True)]


# CSV per the spec: header row, comma, RFC 4180 quoting, NULL as an empty unquoted cell ("" is the empty string).
_UNQUOTED = re.compile(r'[^,\r\n"]*')


def parse_csv(text: str) -> list[list[tuple[str, bool]]]:
    """RFC 4180 records as (text, was_quoted) cells; strict: a stray quote or bad separator raises."""
    rows: list[list[tuple[str, bool]]] = []
    row: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == '"':
            i += 1
            buf = []
            while True:
                j = text.find('"', i)
                if j < 0:
                    raise ValueError(f"unterminated quoted cell at offset {i}")
                buf.append(text[i:j])
                if text.startswith('""', j):
                    buf.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            row.append(("".join(buf), True))
        else:
            m = _UNQUOTED.match(text, i)
            assert m is not None
            row.append((m.group(0), False))
            i = m.end()
        if i >= n:
            rows.append(row)
            break
        if text[i] == ",":
            i += 1
            if i == n:
                row.append(("", False))
                rows.append(row)
            continue
        if text.startswith("\r\n", i):
            i += 2
        elif text[i] == "\n":
            i += 1
        else:
            raise ValueError(f"unexpected {text[i]!r} after a cell at offset {i}")
        rows.append(row)
        row = []
    return rows


def csv_value(text: str, quoted: bool, t: pa.DataType) -> Any:
    """One CSV cell back to a Python value of Arrow type `t`, per the spec's rendering rules."""
    if not quoted and text == "":
        return None
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.uuid":
            u = uuid.UUID(text)
            if str(u) != text:
                raise ValueError("uuid not in canonical 8-4-4-4-12 lowercase form")
            return u
        t = t.storage_type
    if pa.types.is_boolean(t):
        return {"true": True, "false": False}[text]
    if pa.types.is_integer(t):
        return int(text)
    if pa.types.is_floating(t):
        return float(text)
    if pa.types.is_decimal(t):
        return Decimal(text)
    if pa.types.is_string(t):
        return text
    if pa.types.is_binary(t) or pa.types.is_fixed_size_binary(t):
        if not text.startswith("\\x"):
            raise ValueError("bytes must be written as \\x-hex")
        return bytes.fromhex(text[2:])
    if pa.types.is_date(t):
        if len(text) != 10:
            raise ValueError("date must be YYYY-MM-DD")
        return dt.date.fromisoformat(text)
    if pa.types.is_time(t):
        return dt.time.fromisoformat(text)
    if pa.types.is_timestamp(t):
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z?", text):
            raise ValueError("timestamp must be ISO-8601 YYYY-MM-DDTHH:MM:SS[.ffffff][Z]")
        if t.tz is not None:
            if not text.endswith("Z"):
                raise ValueError("a UTC timestamp must end in Z")
            return dt.datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
        if text.endswith("Z"):
            raise ValueError("a naive timestamp must not carry Z")
        return dt.datetime.fromisoformat(text)
    if pa.types.is_list(t):
        items = json.loads(text)
        if not isinstance(items, list):
            raise ValueError("array must be a JSON array")
        return [None if v is None else csv_value(json_scalar_text(v), True, t.value_type) for v in items]
    raise AssertionError(f"harness: no CSV reading for {t}")


def json_scalar_text(v: Any) -> str:
    """A JSON array element as the text the scalar rules above read (decimals may arrive as strings)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else json.dumps(v)


def csv_rows(data: bytes, columns: Sequence[Col], where: str) -> list[tuple[Any, ...]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AssertionError(f"{where}: CSV is not UTF-8: {exc}") from None
    try:
        records = parse_csv(text)
    except ValueError as exc:
        raise AssertionError(f"{where}: not RFC 4180 CSV: {exc}") from None
    assert records, f"{where}: empty CSV (no header)"
    header = [cell for cell, _ in records[0]]
    assert header == [c.name for c in columns], f"{where}: header {header}"
    out = []
    for r, record in enumerate(records[1:], start=2):
        assert len(record) == len(columns), f"{where} line-record {r}: {len(record)} cells for {len(columns)} columns"
        values = []
        for (text, quoted), c in zip(record, columns, strict=True):
            try:
                values.append(canon(csv_value(text, quoted, c.arrow), c.arrow))
            except (ValueError, KeyError) as exc:
                raise AssertionError(
                    f"{where} record {r} column {c.name!r} ({c.arrow}): cannot read CSV cell {text[:80]!r}: {exc}"
                ) from None
        out.append(tuple(values))
    return out


# --- comparisons --------------------------------------------------------------------------------------


def _short(row: tuple[Any, ...], names: Sequence[str] | None) -> str:
    def one(v: Any) -> str:
        text = repr(v)
        return text if len(text) <= 60 else text[:45] + f"...({len(text)} chars)"

    if names:
        return "{" + ", ".join(f"{n}={one(v)}" for n, v in zip(names, row, strict=False)) + "}"
    return "(" + ", ".join(one(v) for v in row) + ")"


def diff_message(
    expected: Sequence[tuple[Any, ...]], actual: Sequence[tuple[Any, ...]], names: Sequence[str] | None, what: str
) -> str | None:
    want, got = Counter(expected), Counter(actual)
    if want == got:
        return None
    missing, extra = want - got, got - want
    lines = [
        f"{what}: expected {len(expected)} rows, exported {len(actual)}; "
        f"{sum(missing.values())} missing, {sum(extra.values())} extra"
    ]
    for label, bag in (("missing", missing), ("extra", extra)):
        for row, n in list(bag.items())[:5]:
            lines.append(f"  {label} x{n}: {_short(row, names)}")
    return "\n".join(lines)


def assert_same_rows(
    expected: Sequence[tuple[Any, ...]],
    actual: Sequence[tuple[Any, ...]],
    names: Sequence[str] | None = None,
    what: str = "rows",
) -> None:
    msg = diff_message(expected, actual, names, what)
    assert msg is None, msg


def types_equal(got: pa.DataType, want: pa.DataType) -> bool:
    if (pa.types.is_list(got) or pa.types.is_large_list(got)) and pa.types.is_list(want):
        return pa.types.is_list(got) and types_equal(got.value_type, want.value_type)
    return bool(got == want)


def assert_schema(export: Export, columns: Sequence[Col]) -> None:
    """Each Parquet part's Arrow schema is the spec's mapping of the source columns."""
    want = [(c.name, c.arrow) for c in columns]
    for schema, (part, _) in zip(export.schemas, export.parts, strict=True):
        got = [(f.name, f.type) for f in schema]
        bad = [
            f"{name}: got {g}, spec {w}" for (name, g), (_, w) in zip(got, want, strict=False) if not types_equal(g, w)
        ]
        assert [n for n, _ in got] == [n for n, _ in want], f"{part['path']}: columns {[n for n, _ in got]}"
        assert not bad, f"{part['path']}: Arrow types differ from the spec mapping: " + "; ".join(bad)


def assert_placement(export: Export, table: Table, key: str, chunk_count: int | None) -> None:
    """Each row sits in the chunk the spec assigns: [lo, hi] of its part; NULL and below-lo keys in chunk 1;
    above-hi keys in the last chunk. Parts' ranges do not overlap."""
    k = table.names.index(key)
    ranges = []
    last = chunk_count or max((p["chunk_index"] for p, _ in export.parts), default=1)
    problems = []
    for part, rows in export.parts:
        rng = part.get("key_range")
        idx = part.get("chunk_index", part["part_id"])
        if rng is None:  # no bounds: only a table without non-NULL keys has a plan without a key range
            if any(row[k] is not None for row in rows):
                problems.append(f"{part['path']} has no key_range but holds non-NULL keys")
            continue
        lo, hi = int(rng[0]), int(rng[1])
        ranges.append((lo, hi, part["path"]))
        for row in rows:
            v = row[k]
            if v is None:
                ok = idx == 1
            else:
                v = int(v)
                ok = lo <= v <= hi or (v < lo and idx == 1) or (v > hi and idx == last)
            if not ok:
                problems.append(f"{part['path']} (chunk {idx}, key_range {rng}) holds key {v!r}")
    ranges.sort()
    for (_, hi1, p1), (lo2, _, p2) in itertools.pairwise(ranges):
        if lo2 <= hi1:
            problems.append(f"key ranges of {p1} and {p2} overlap")
    assert not problems, "chunk placement: " + "; ".join(problems[:8])


# --- driving the CLI ----------------------------------------------------------------------------------


def export_entry(name: str, table: Table, dest: Dest, fmt: str, mode: str = "full", **extra: Any) -> dict[str, Any]:
    return {"name": name, "table": table.name, "mode": mode, "format": fmt, "destination": dest.yaml(), **extra}


def config(path: Path, table: Table, exports: list[dict[str, Any]], batch_size: int = 333) -> Path:
    """A rivet.yaml for `table`'s server, with its own state file; small odd batches so parts span batches."""
    state = path.parent / f"{path.stem}.state.db"
    return write_config(path, table.url, exports, engine=table.engine, state=state, tuning={"batch_size": batch_size})


def cli(table: Table, dest: Dest, *args: str, timeout: float = 180) -> Result:
    return rivet(*args, env=dest.env, db_url=table.url, timeout=timeout)


def run_summary(res: Result, export: str) -> dict[str, Any]:
    try:
        doc = res.json
    except ValueError:
        raise AssertionError(f"rivet run printed no JSON (exit {res.code}):\n{res.output[-3000:]}") from None
    for s in doc.get("exports", []):
        if s.get("export_name") == export:
            return dict(s)
    raise AssertionError(f"no summary for export {export!r}: {res.stdout[-2000:]}")


def run_ok(cfg: Path, table: Table, dest: Dest, export: str, run_id: str, *extra: str) -> dict[str, Any]:
    """`rivet run -e export --run-id R --validate`: exit 0, status success, validation passed."""
    res = cli(table, dest, "run", "-c", str(cfg), "-e", export, "--run-id", run_id, "--validate", *extra)
    assert res.code == 0, f"rivet run {export} exit {res.code}:\n{res.output[-4000:]}"
    summary = run_summary(res, export)
    assert summary["status"] == "success", summary
    checks = res.json.get("validation", {})
    assert not checks.get("errors"), checks
    assert all(e["verification"]["passed"] for e in checks.get("exports", [])), checks
    return summary


def validate_ok(cfg: Path, table: Table, dest: Dest, export: str, run_id: str) -> None:
    res = cli(table, dest, "validate", "-c", str(cfg), "-e", export, "--run-id", run_id, "--format", "json")
    assert res.code == 0, f"rivet validate {export} exit {res.code}:\n{res.output[-3000:]}"
    report = res.json
    assert report["errors"] == [] and report["exports"][0]["verification"]["passed"], report


def prefix_of(export: str, run_id: str) -> str:
    return PREFIX.format(export=export, run_id=run_id)


def check_export(
    dest: Dest,
    export: str,
    run_id: str,
    table: Table,
    fmt: str,
    expected: Sequence[tuple[Any, ...]],
    what: str = "",
) -> Export:
    """The differential check itself: certified rows == expected rows (multiset), schema per spec."""
    got = read_export(dest, prefix_of(export, run_id), table.columns, fmt)
    assert_same_rows(expected, got.rows, table.names, what or f"{export} {run_id}")
    if fmt == "parquet":
        assert_schema(got, table.columns)
    return got


def assert_nothing_written(dest: Dest, prefix: str) -> None:
    left = dest.keys(prefix)
    assert left == [], f"a refused export left objects at {prefix}: {left[:10]}"


def run_chunks_concurrently(
    table: Table, dest: Dest, base_args: list[str], plan_args: list[list[str]], width: int = 2
) -> list[tuple[int, str, str]]:
    """Start `rivet chunk` subprocesses `width` at a time (as the operator's Jobs run); (exit, stdout, stderr)."""
    results: list[tuple[int, str, str]] = []
    pending = list(plan_args)
    while pending:
        batch, pending = pending[:width], pending[width:]
        procs = [popen(*base_args, *args, env=dest.env, db_url=table.url) for args in batch]
        for proc in procs:
            out, err = proc.communicate(timeout=180)
            results.append((proc.returncode, out, err))
    return results
