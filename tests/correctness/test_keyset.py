"""Keyset chunking through `rivet run` (parallel 2) and the operator's plan/chunk/finalize commands: uuid, text
and binary keys split at boundaries the database picked, compared by the database under the column's own
collation, so every row lands in exactly one chunk.

The keys are chosen to break a Python-side comparison or a careless boundary: NULLs, duplicates, the empty
string, trailing spaces, case variants ('a', 'A', 'a '), accents, emoji (all equal under MariaDB's
utf8mb4_general_ci), quotes, backslashes and `$rivet$` (the PostgreSQL literal's own tag); PostgreSQL "C",
the database default, ICU and a case-insensitive (nondeterministic) ICU collation when the server has ICU,
char(n) (blank-padded); MariaDB utf8mb4_general_ci (PAD SPACE, case- and accent-insensitive) and utf8mb4_bin.

Each export is checked three ways: the certified rows are the source rows, each exactly once (the harness);
each part holds exactly the rows the database itself puts between that chunk's boundaries (bound through the
reference drivers, not the exporter's SQL); and the chunk count is the plan's (one chunk per distinct value
under the collation for chunk_size 1, one chunk when chunk_size exceeds the table).
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.correctness.conftest import ENGINES, loader_for
from tests.correctness.harness import (
    UUID_T,
    Col,
    Dest,
    Export,
    Table,
    assert_nothing_written,
    check_export,
    cli,
    config,
    execute,
    export_entry,
    quote,
    reference_fetch,
    run_summary,
    validate_ok,
)
from tests.correctness.test_chunked import run_all
from tests.correctness.test_operator_path import operator_run

TEXT_KEYS = [
    "",
    " ",
    "  ",
    "a",
    "A",
    "a ",
    "a  ",
    " a",
    "b",
    "B",
    "ab",
    "aB",
    "Ab",
    "AB",
    "ä",
    "Ä",
    "u",
    "ü",
    "Ü",
    "e",
    "é",
    "É",
    "strasse",
    "Straße",
    "STRASSE",
    "😀",
    "𝄞",
    "😀a",
    "O'Brien",
    "o'brien",
    "back\\slash",
    "back\\\\slash",
    '"quoted"',
    "$rivet$",
    "x$rivet$y",
    "%s %%",
    "-- comment",
    "z",
    "Z",
    "zz",
    "~",
    "0",
    "00",
    "9",
    "10",
]


def text_keys(seed: int, short: bool = False) -> list[str | None]:
    """The adversarial keys, each 1-3 times, some random words, and NULLs; `short`: at most 4 characters."""
    rng = random.Random(seed)
    keys: list[str | None] = []
    for k in TEXT_KEYS:
        keys.extend([k] * rng.randint(1, 3))
    alphabet = "aAbB zZ'\\é😀"
    keys.extend("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(40))
    keys.extend([None] * 7)
    if short:
        keys = [k if k is None else k[:4] for k in keys]
    rng.shuffle(keys)
    return keys


def uuid_keys(seed: int, n: int = 36) -> list[uuid.UUID | None]:
    rng = random.Random(seed)
    keys: list[uuid.UUID | None] = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(n)]
    keys += [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), keys[0], keys[1], keys[1], None, None, None]
    rng.shuffle(keys)
    return keys


def keyed(keys: list[Any]) -> list[tuple[Any, ...]]:
    return [(i, k, f"row {i} ' \\ \n") for i, k in enumerate(keys, start=1)]


def cols(engine: str, ddl: str, arrow: pa.DataType) -> list[Col]:
    text = "text" if engine == "postgres" else "varchar(64)"
    return [Col("rid", "int PRIMARY KEY", pa.int32()), Col("k", ddl, arrow), Col("s", text, pa.string())]


@dataclass
class World:
    engine: str
    tables: dict[str, Table]


def pg_icu(server: Any, database: str) -> list[str]:
    """Collations this server can give a column: ICU ones only when built with ICU."""
    rows = reference_fetch(server, database, "SELECT collname FROM pg_collation WHERE collprovider = 'i' LIMIT 1")
    return [] if not rows else [str(rows[0][0])]


@pytest.fixture(scope="module", params=ENGINES)
def world(request: pytest.FixtureRequest) -> World:
    engine: str = request.param
    load = loader_for(request, engine)
    tables: dict[str, Table] = {}
    if engine == "postgres":
        tables["uuid"] = load("ks_uuid", cols(engine, "uuid", UUID_T), keyed(uuid_keys(1)))
        tables["text_c"] = load("ks_text_c", cols(engine, 'text COLLATE "C"', pa.string()), keyed(text_keys(2)))
        tables["text_default"] = load("ks_text_def", cols(engine, "varchar(64)", pa.string()), keyed(text_keys(3)))
        tables["char4"] = load("ks_char4", cols(engine, "char(4)", pa.string()), keyed(text_keys(4, short=True)))
        tables["bytea"] = load(
            "ks_bytea",
            cols(engine, "bytea", pa.binary()),
            keyed([None if u is None else u.bytes[:3] for u in uuid_keys(5)] + [b"", b"\x00", b"\x00\x00"]),
        )
        server, ns = request.getfixturevalue("pg"), request.getfixturevalue("pg_db")
        icu = pg_icu(server, ns.name)
        if icu:
            tables["text_icu"] = load(
                "ks_text_icu", cols(engine, f'text COLLATE "{icu[0]}"', pa.string()), keyed(text_keys(6))
            )
            execute(
                server,
                ns.name,
                "CREATE COLLATION IF NOT EXISTS rivet_ci (provider = icu, locale = 'und-u-ks-level2',"
                " deterministic = false)",
            )
            tables["text_ci"] = load(
                "ks_text_ci", cols(engine, 'text COLLATE "rivet_ci"', pa.string()), keyed(text_keys(7))
            )
    else:
        ci = "varchar(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
        binc = "varchar(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        as_text = [None if u is None else str(u) for u in uuid_keys(1)]
        tables["uuid"] = load("ks_uuid", cols(engine, "char(36) CHARACTER SET ascii", pa.string()), keyed(as_text))
        tables["general_ci"] = load("ks_general_ci", cols(engine, ci, pa.string()), keyed(text_keys(2)))
        tables["bin"] = load("ks_bin", cols(engine, binc, pa.string()), keyed(text_keys(3)))
        tables["binary16"] = load(
            "ks_binary16",
            cols(engine, "binary(16)", pa.binary()),
            keyed([None if u is None else u.bytes for u in uuid_keys(5)]),
        )
    return World(engine, tables)


SIZINGS: dict[str, dict[str, int]] = {
    "s1": {"chunk_size": 1},
    "s7": {"chunk_size": 7},
    "big": {"chunk_size": 100_000},
    "c4": {"chunk_count": 4},
}


@pytest.fixture(scope="module")
def keyset_run(world: World, make_dest: Callable[[str], Dest], tmp_path_factory: pytest.TempPathFactory) -> Any:
    dest = make_dest("local")
    exports = [
        export_entry(
            f"{t}_{s}",
            table,
            dest,
            "csv" if s == "s7" else "parquet",
            mode="chunked",
            chunk_column="k",
            parallel=2,
            **sizing,
        )
        for t, table in world.tables.items()
        for s, sizing in SIZINGS.items()
    ]
    any_table = next(iter(world.tables.values()))
    cfg = config(tmp_path_factory.mktemp("keyset") / "rivet.yaml", any_table, exports, batch_size=7)
    return dest, cfg, *run_all(cfg, any_table, dest)


def decode(value: Any) -> Any:
    """A recorded boundary as the reference driver binds it (bytes are tagged base64 in the plan)."""
    if isinstance(value, dict) and value.get("$type") == "bytes":
        return base64.b64decode(value["value"])
    return value


def db_placement(table: Table, boundaries: list[Any]) -> list[Counter[int]]:
    """Row ids per chunk as the database's own comparison places them (reference driver, bound values)."""
    k = quote(table.engine, "k")
    rid = quote(table.engine, "rid")
    out = []
    n = len(boundaries) + 1
    for i in range(1, n + 1):
        lower = decode(boundaries[i - 2]) if i > 1 else None
        upper = decode(boundaries[i - 1]) if i < n else None
        where, params = [], []
        if lower is not None:
            where.append(f"{k} >= %s")
            params.append(lower)
        if upper is not None:
            where.append(f"({k} < %s" + (f" OR {k} IS NULL)" if lower is None else ")"))
            params.append(upper)
        sql = f"SELECT {rid} FROM {table.name}" + (" WHERE " + " AND ".join(where) if where else "")
        out.append(Counter(int(r[0]) for r in reference_fetch(table.server, table.database, sql, params)))
    return out


def distinct_keys(table: Table) -> int:
    k = quote(table.engine, "k")
    return int(reference_fetch(table.server, table.database, f"SELECT COUNT(DISTINCT {k}) FROM {table.name}")[0][0])


def assert_keyset_placement(got: Export, table: Table) -> list[Any]:
    plan = got.manifest["plan"]
    assert plan.get("keyset") is True, plan
    boundaries = plan["boundaries"]
    expected = db_placement(table, boundaries)
    assert sum(sum(c.values()) for c in expected) == table.count(), "the database's chunks must cover every row"
    parts = {p.get("chunk_index", p["part_id"]): Counter(int(r[0]) for r in rows) for p, rows in got.parts}
    for i, want in enumerate(expected, start=1):
        assert parts.get(i, Counter()) == want, f"chunk {i} holds other rows than the database puts there"
    for p, _ in got.parts:
        i = p.get("chunk_index", p["part_id"])
        shown = [None if i == 1 else boundaries[i - 2], None if i == len(boundaries) + 1 else boundaries[i - 1]]
        shown = [b["value"] if isinstance(b, dict) else b for b in shown]
        assert p["key_range"] == shown, (p["key_range"], shown)
    return list(boundaries)


def export_names(world: World) -> list[str]:
    return [f"{t}_{s}" for t in world.tables for s in SIZINGS]


@pytest.mark.parametrize("sizing", list(SIZINGS))
def test_keyset_chunks_hold_every_row_once(world: World, keyset_run: Any, sizing: str) -> None:
    dest, _cfg, res, summaries = keyset_run
    for t, table in world.tables.items():
        name = f"{t}_{sizing}"
        summary = summaries[name]
        assert summary["status"] == "success", f"{name}: {summary}\n{res.output[-3000:]}"
        fmt = "csv" if sizing == "s7" else "parquet"
        got = check_export(dest, name, summary["run_id"], table, fmt, table.rows(), what=name)
        boundaries = assert_keyset_placement(got, table)
        chunks = len(boundaries) + 1
        assert summary["chunks_total"] == chunks, (name, summary["chunks_total"], chunks)
        if sizing == "s1":  # one chunk per value, values equal under the collation being one value
            assert chunks == distinct_keys(table), (name, chunks, distinct_keys(table))
        if sizing == "big":
            assert chunks == 1 and boundaries == [], name
        if sizing == "c4":
            assert 1 < chunks <= 4, (name, chunks)


def test_reconcile_matches_a_keyset_run(world: World, keyset_run: Any) -> None:
    """reconcile counts each keyset chunk with psycopg/PyMySQL-bound boundaries: every chunk matches."""
    dest, cfg, _res, summaries = keyset_run
    t = next(k for k in world.tables if "text" in k or "ci" in k)
    name = f"{t}_s7"
    table = world.tables[t]
    args = ["reconcile", "-c", str(cfg), "-e", name, "--run-id", summaries[name]["run_id"], "--format", "json"]
    report = cli(table, dest, *args)
    assert report.code == 0, report.output[-3000:]
    assert report.json["mismatch"] == 0 and report.json["match"] > 1, report.json


@pytest.mark.parametrize("engine", ENGINES)
def test_keyset_through_plan_chunk_finalize(
    engine: str, request: pytest.FixtureRequest, make_dest: Callable[[str], Dest], tmp_path: Path
) -> None:
    """The operator's Jobs: the plan document carries the boundaries, each chunk Job rebuilds its range."""
    load = loader_for(request, engine)
    if engine == "postgres":
        table = load("ks_op", cols(engine, "uuid", UUID_T), keyed(uuid_keys(9, 60)))
    else:
        ddl = "varchar(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
        table = load("ks_op", cols(engine, ddl, pa.string()), keyed(text_keys(9)))
    dest = make_dest("s3")
    exp = export_entry("ks_op", table, dest, "parquet", mode="chunked", chunk_column="k", chunk_count=5)
    cfg = config(tmp_path / "rivet.yaml", table, [exp])
    plan = operator_run(cfg, table, dest, "ks_op", "op1", tmp_path)
    assert plan["plan"]["keyset"] is True and len(plan["plan"]["boundaries"]) == plan["chunk_count"] - 1
    assert plan["key_range"] is None and plan["lo"] is None and plan["hi"] is None
    assert len(json.dumps(plan["plan"])) < 4096
    validate_ok(cfg, table, dest, "ks_op", "op1")
    got = check_export(dest, "ks_op", "op1", table, "parquet", table.rows())
    assert_keyset_placement(got, table)


@pytest.mark.parametrize("engine", ENGINES)
def test_refusals(
    engine: str, request: pytest.FixtureRequest, make_dest: Callable[[str], Dest], tmp_path: Path
) -> None:
    """Too many boundaries for the plan document; a JSON key; a MySQL ENUM key: refused before writing."""
    load = loader_for(request, engine)
    many = load(
        "ks_many",
        cols(engine, "uuid" if engine == "postgres" else "char(36)", UUID_T if engine == "postgres" else pa.string()),
        keyed([str(uuid.UUID(int=i * 7919 + 1)) for i in range(300)]),
    )
    if engine == "postgres":
        odd = load("ks_json", cols(engine, "jsonb", pa.json_(pa.string())), keyed(['{"a": 1}', "[]"]))
        odd_words = ("chunk_column", "uuid, text or binary")
    else:
        odd = load("ks_enum", cols(engine, "enum('b','a')", pa.string()), keyed(["a", "b"]))
        odd_words = ("chunk_column", "ENUM")
    dest = make_dest("local")
    exports = [
        export_entry("ks_many", many, dest, "parquet", mode="chunked", chunk_column="k", chunk_size=1),
        export_entry("ks_odd", odd, dest, "parquet", mode="chunked", chunk_column="k", chunk_size=1),
    ]
    cfg = config(tmp_path / "rivet.yaml", many, exports)
    res = cli(many, dest, "run", "-c", str(cfg), timeout=120)
    assert res.code == 1, res.output[-3000:]
    error = str(run_summary(res, "ks_many").get("error"))
    assert "chunk_size" in error and "chunk_count:" in error and "4 KiB" in error, error
    error = str(run_summary(res, "ks_odd").get("error"))
    for word in odd_words:
        assert word in error, error
    planned = cli(many, dest, "plan", "-c", str(cfg), "-e", "ks_many", "--run-id", "p1", "--format", "json")
    assert planned.code == 1 and "chunk_count:" in planned.output, planned.output[-3000:]
    assert_nothing_written(dest, "cx/ks_many/")
    assert_nothing_written(dest, "cx/ks_odd/")
