"""Incremental mode over three or four runs, with inserts and updates between them.

Rule under test: run k exports exactly the source rows (at run time) whose cursor is >= the largest cursor
certified by run k-1 (all non-NULL cursors on the first run). Rows at the boundary come again (at-least-once
on the boundary), no row is ever lost, rows with a NULL cursor are never exported and are counted in the
summary's `null_cursor_rows`. Cursors are integers, timestamptz (PostgreSQL, database zone New York), and on
MariaDB strings full of quotes and backslashes, DATETIME and TIMESTAMP, with NO_BACKSLASH_ESCAPES on and off:
a cursor value must never become SQL text, so a `secrets` table beside it must never leak into a part.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.correctness.conftest import loader_for
from tests.correctness.harness import (
    Col,
    Dest,
    Table,
    assert_same_rows,
    assert_schema,
    cli,
    config,
    connect,
    execute,
    export_entry,
    insert_rows,
    mysql_global,
    prefix_of,
    read_export,
    reference_fetch,
)

UTC = dt.UTC
SECRET = "TOP-SECRET-"
# Each run's maximum string cursor tries to break out of a quoted literal (with and without backslash escapes).
INJECT = {
    100: "x\\' UNION SELECT * FROM secrets -- ",
    110: "y\\'' OR 1=1 UNION SELECT * FROM secrets #",
    120: "z'; SELECT * FROM secrets; -- \\",
}
BASE = dt.datetime(2024, 3, 10, 5, 30)  # the New York spring-forward night, in UTC


@dataclass
class Cursor:
    export: str
    column: str
    fmt: str
    where: str
    boundary: Any = None  # canonical value of the last certified maximum
    runs: list[str] = field(default_factory=list)


def level_values(engine: str, level: int | None) -> tuple[Any, ...]:
    """The cursor columns of a row at `level` (same level, same cursor value in every column: ties align)."""
    if level is None:
        return (None,) * len(cursor_cols(engine))
    moment = BASE + dt.timedelta(minutes=7 * level, microseconds=level)
    if engine == "postgres":
        return (level, moment.replace(tzinfo=UTC))
    if level in INJECT:
        text = INJECT[level]
    elif level > min(INJECT):  # above an injection value: extend it, so string order follows level order
        text = INJECT[max(k for k in INJECT if k < level)] + f"{level:04d}"
    else:
        text = f"a{level:04d} '\\\" -- /* #"
    return (text, moment, moment)


def columns(engine: str) -> list[Col]:
    if engine == "postgres":
        return [
            Col("rid", "int PRIMARY KEY", pa.int32()),
            Col("cur", "bigint", pa.int64()),
            Col("tsc", "timestamptz", pa.timestamp("us", tz="UTC")),
            Col("payload", "text", pa.string()),
            Col("blob", "bytea", pa.binary()),
        ]
    return [
        Col("rid", "int PRIMARY KEY", pa.int32()),
        Col("cur", "varchar(100) COLLATE utf8mb4_nopad_bin NULL", pa.string()),
        Col("dtc", "datetime(6) NULL", pa.timestamp("us")),
        Col("tsc", "timestamp(6) NULL DEFAULT NULL", pa.timestamp("us", tz="UTC")),
        Col("payload", "text", pa.string()),
        Col("blob", "blob", pa.binary()),
    ]


def make_row(engine: str, rid: int, level: int | None, rng: random.Random, note: str = "") -> tuple[Any, ...]:
    payload = f"row {rid} level {level} {note} ' \" \\ -- /* */ # \n\t\x01 🎉"
    return (rid, *level_values(engine, level), payload, rng.randbytes(rng.randint(0, 20)))


def cursor_cols(engine: str) -> list[str]:
    return ["cur", "tsc"] if engine == "postgres" else ["cur", "dtc", "tsc"]


class Incremental:
    """Drives one table through runs and mutations, keeping the expected boundary per export."""

    def __init__(self, table: Table, cursors: list[Cursor], dests: dict[str, Dest], cfg: Path) -> None:
        self.t, self.cursors, self.dests, self.cfg = table, cursors, dests, cfg
        self.rng = random.Random(5)
        self.reporting: list[str] = []  # null_cursor_rows problems, asserted after every run's rows

    def update(self, where: str, level: int | None, note: str) -> None:
        engine = self.t.engine
        sets = ", ".join(f"{c} = %s" for c in cursor_cols(engine)) + ", payload = CONCAT(payload, %s)"
        if engine == "postgres":
            sets = sets.replace("CONCAT(payload, %s)", "payload || %s")
        conn = connect(self.t.server, self.t.database)
        try:
            with conn.cursor() as cur:
                cur.execute(f"UPDATE {self.t.name} SET {sets} WHERE {where}", (*level_values(engine, level), note))
        finally:
            conn.close()

    def insert(self, rids: range, level: int | None, note: str = "new") -> None:
        self.insert_levels([(rid, level) for rid in rids], note)

    def insert_levels(self, levels: list[tuple[int, int | None]], note: str) -> None:
        rows = [make_row(self.t.engine, rid, level, self.rng, note) for rid, level in levels]
        insert_rows(self.t.server, self.t.database, self.t.name, self.t.names, rows)

    def run(self, label: str) -> None:
        """One `rivet run` of every export; each export's parts must be exactly its expected rows."""
        rows = self.t.rows()
        s3 = next((d for d in self.dests.values() if d.kind == "s3"), self.dests["local"])
        res = cli(self.t, s3, "run", "-c", str(self.cfg), "--validate")
        assert res.code == 0, f"{label}: rivet run exit {res.code}:\n{res.output[-4000:]}"
        summaries = {s["export_name"]: s for s in res.json["exports"]}
        for c in self.cursors:
            idx = self.t.names.index(c.column)
            expected = [r for r in rows if r[idx] is not None and (c.boundary is None or r[idx] >= c.boundary)]
            nulls = sum(1 for r in rows if r[idx] is None)
            summary = summaries[c.export]
            assert summary["status"] == "success", summary
            got = read_export(self.dests[c.where], prefix_of(c.export, summary["run_id"]), self.t.columns, c.fmt)
            leaked = [r for r in got.rows if any(SECRET in repr(v) for v in r)]
            assert not leaked, f"{label} {c.export}: rows of the secrets table in a part: {leaked[:3]}"
            assert_same_rows(expected, got.rows, self.t.names, f"{label} {c.export}")
            if c.fmt == "parquet":
                assert_schema(got, self.t.columns)
            if summary.get("null_cursor_rows") != nulls:
                self.reporting.append(
                    f"{label} {c.export}: null_cursor_rows {summary.get('null_cursor_rows')}, source has {nulls}"
                )
            if nulls and "incremental_null_cursor" not in res.stderr:
                self.reporting.append(f"{label}: no incremental_null_cursor warning on stderr")
            if expected:
                c.boundary = max(r[idx] for r in expected)
            c.runs.append(summary["run_id"])


def scenario(inc: Incremental, noop_run: bool = True) -> None:
    """Three runs (four with `noop_run`). Between them: boundary ties, higher cursors, cursor moves up and down,
    NULL <-> value; the fourth run, with no changes, must deliver exactly the boundary rows again."""
    # Initial: levels 1..99 random, 25 rows at the max level 100, 15 NULL cursors.
    rng = random.Random(9)
    inc.insert_levels(
        [(rid, None if rid <= 15 else 100 if rid <= 40 else rng.randint(1, 99)) for rid in range(1, 201)], "initial"
    )
    inc.run("run 1")
    inc.insert(range(201, 206), 100, "tie with run 1's max")
    inc.insert(range(206, 216), 105)
    inc.update("rid IN (50, 51, 52, 53, 54)", 108, " moved up")
    inc.update("rid IN (1, 2, 3)", 100, " was NULL, now at the boundary")
    inc.update("rid IN (60, 61, 62, 63)", 7, " changed, still below the boundary")
    inc.update("rid IN (20, 21)", 100, " changed at the boundary")
    inc.update("rid = 210", 110, " new max")
    inc.run("run 2")
    inc.insert(range(216, 231), 110, "tie with run 2's max")
    inc.insert(range(231, 236), None, "NULL cursor")
    inc.update("rid IN (206, 207)", None, " cursor removed")
    inc.update("rid IN (208, 209)", 3, " cursor moved down: not exported again")
    inc.update("rid IN (4, 5)", 120, " was NULL, now the max")
    inc.run("run 3")
    if noop_run:
        inc.run("run 4 (no changes: the boundary rows only)")
    assert not inc.reporting, "\n".join(inc.reporting)


def secrets_table(engine: str, load: Callable[..., Table], width: int, database: Table) -> None:
    """A table beside the export with as many columns, so a UNION injection would type-check."""
    schema = "public" if engine == "postgres" else database.database
    there = reference_fetch(
        database.server,
        database.database,
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = 'secrets'",
        (schema,),
    )
    if there[0][0]:
        return
    cols = [Col("id", "int PRIMARY KEY", pa.int32())] + [
        Col(f"s{i}", "text" if engine == "postgres" else "varchar(100)", pa.string()) for i in range(1, width)
    ]
    load("secrets", cols, [(i, *[f"{SECRET}{i}-{j}" for j in range(1, width)]) for i in range(1, 4)])


def test_postgres_incremental_int_and_timestamptz_cursors(
    request: pytest.FixtureRequest, make_dest: Callable[[str], Dest], tmp_path: Path
) -> None:
    load = loader_for(request, "postgres")
    table = load("inc", columns("postgres"), [])
    secrets_table("postgres", load, len(table.columns), table)
    dests = {"local": make_dest("local"), "s3": make_dest("s3")}
    cursors = [Cursor("inc_int", "cur", "parquet", "local"), Cursor("inc_tstz", "tsc", "csv", "s3")]
    exports = [
        {**export_entry(c.export, table, dests[c.where], c.fmt, mode="incremental"), "cursor_column": c.column}
        for c in cursors
    ]
    cfg = config(tmp_path / "rivet.yaml", table, exports, batch_size=40)
    scenario(Incremental(table, cursors, dests, cfg))


@pytest.mark.parametrize("sql_mode", ["backslash_escapes", "no_backslash_escapes"])
def test_mysql_incremental_quote_backslash_cursors(
    sql_mode: str, request: pytest.FixtureRequest, make_dest: Callable[[str], Dest], tmp_path: Path
) -> None:
    mysql = request.getfixturevalue("mysql")
    base_mode = str(mysql.query("SELECT @@GLOBAL.sql_mode")[0][0])
    modes = [m for m in base_mode.split(",") if m and m != "NO_BACKSLASH_ESCAPES"]
    if sql_mode == "no_backslash_escapes":
        modes.append("NO_BACKSLASH_ESCAPES")
    load = loader_for(request, "mysql")
    suffix = "nbe" if sql_mode == "no_backslash_escapes" else "be"
    with mysql_global(mysql, "sql_mode", ",".join(modes)):
        table = load(f"inc_{suffix}", columns("mysql"), [])
        secrets_table("mysql", load, len(table.columns), table)
        dests = {"local": make_dest("local"), "s3": make_dest("s3")}
        fmt_str = "csv" if suffix == "be" else "parquet"
        cursors = [
            Cursor(f"str_{suffix}", "cur", fmt_str, "s3"),
            Cursor(f"dt_{suffix}", "dtc", "parquet", "local"),
            Cursor(f"ts_{suffix}", "tsc", "csv", "local"),
        ]
        exports = [
            {**export_entry(c.export, table, dests[c.where], c.fmt, mode="incremental"), "cursor_column": c.column}
            for c in cursors
        ]
        cfg = config(tmp_path / "rivet.yaml", table, exports, batch_size=40)
        check = mysql.query("SELECT @@GLOBAL.sql_mode")[0][0]
        assert ("NO_BACKSLASH_ESCAPES" in check) == (suffix == "nbe"), check
        scenario(Incremental(table, cursors, dests, cfg), noop_run=suffix == "nbe")
    execute(mysql, table.database, f"DROP TABLE {table.name}")
