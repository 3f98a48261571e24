"""docs/examples: every Rivet 0.8 key we support, loaded and run against the test databases (small tables).

Each example reads DATABASE_URL and writes under ./out/ of the directory it runs in, as a user would.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from rivet.config import load_config
from rivet.engine import rivet08
from tests.fixtures.databases import DbServer, Namespace
from tests.integration.rivet_cli import Result, rivet

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
ROWS = 300


def seed_pg(pg: DbServer, ns: Namespace) -> None:
    pg.execute(
        f"CREATE TABLE {ns}.orders (id bigint PRIMARY KEY, code text NOT NULL, email text, amount numeric(10,2),"
        " created_at timestamptz NOT NULL)"
    )
    pg.execute(
        f"INSERT INTO {ns}.orders SELECT g, 'c' || lpad(g::text, 4, '0'),"
        " CASE WHEN g % 10 = 0 THEN NULL ELSE 'u' || g || '@x.test' END, g * 1.25,"
        f" timestamptz '2026-01-01 00:00:00+00' + g * interval '5 hours' FROM generate_series(1, {ROWS}) g"
    )
    pg.execute(f"CREATE TABLE {ns}.events (id int PRIMARY KEY, at timestamptz NOT NULL)")
    pg.execute(f"INSERT INTO {ns}.events SELECT g, now() - g * interval '6 hours' FROM generate_series(1, 40) g")


def seed_mysql(mysql: DbServer, ns: Namespace) -> None:
    mysql.execute(
        "CREATE TABLE orders (id bigint PRIMARY KEY, code varchar(8) NOT NULL, email varchar(40),"
        " created_at datetime(6) NOT NULL)",
        database=ns.name,
    )
    rows = [
        (i, f"c{i:04d}", None if i % 10 == 0 else f"u{i}@x.test", f"2026-01-01 {i % 24:02d}:00:00")
        for i in range(1, ROWS + 1)
    ]
    mysql.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s)", rows, database=ns.name)


def run_example(name: str, tmp_path: Path, url: str, edit: Any = None, *args: str) -> Result:
    """Copy docs/examples/<name> to tmp_path (optionally edited) and `rivet run` it there."""
    doc = yaml.safe_load((EXAMPLES / name).read_text())
    if edit is not None:
        edit(doc)
    (tmp_path / "rivet.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return rivet("run", "-c", "rivet.yaml", *args, env={"DATABASE_URL": url}, cwd=tmp_path)


def manifest(tmp_path: Path, export: str) -> dict[str, Any]:
    out = tmp_path / "out" / export
    assert (out / "_SUCCESS").exists(), sorted(p.name for p in out.iterdir())
    doc: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    return doc


def parquet_rows(tmp_path: Path, export: str) -> pa.Table:
    doc = manifest(tmp_path, export)
    return pa.concat_tables([pq.read_table(tmp_path / "out" / export / p["path"]) for p in doc["parts"]])


def test_every_example_loads() -> None:
    names = sorted(p.name for p in EXAMPLES.glob("*.yaml"))
    assert names
    for name in names:
        url = "mysql://u@h/d" if name.startswith("mysql") else "postgresql://u@h/d"
        assert load_config(EXAMPLES / name, env={"DATABASE_URL": url}).exports


def test_tuned_chunked(pg: DbServer, pg_schema: Namespace, tmp_path: Path) -> None:
    seed_pg(pg, pg_schema)
    res = run_example("pg_tuned_chunked.yaml", tmp_path, pg_schema.url)
    assert res.code == 0, res.output
    doc = manifest(tmp_path, "orders_chunked")
    assert (doc["row_count"], doc["part_count"]) == (ROWS, 3)


def test_throttle_ms_pauses_after_each_batch(pg: DbServer, pg_schema: Namespace, tmp_path: Path) -> None:
    seed_pg(pg, pg_schema)

    def slow(doc: dict[str, Any]) -> None:  # 300 rows in batches of 10, 100 ms after each: >= 3 s
        doc["exports"][0]["tuning"] = {"batch_size": 10, "throttle_ms": 100}
        doc["exports"][0]["parallel"] = 1

    started = time.monotonic()
    res = run_example("pg_tuned_chunked.yaml", tmp_path, pg_schema.url, slow)
    assert res.code == 0, res.output
    assert time.monotonic() - started >= 3.0
    assert manifest(tmp_path, "orders_chunked")["row_count"] == ROWS


def test_days_and_keyset(pg: DbServer, pg_schema: Namespace, tmp_path: Path) -> None:
    seed_pg(pg, pg_schema)
    res = run_example("pg_days_keyset.yaml", tmp_path, pg_schema.url)
    assert res.code == 0, res.output
    weekly = manifest(tmp_path, "orders_by_week")
    days = (ROWS * 5) // 24 + 1  # 5 hours apart from 2026-01-01 05:00: 63 UTC days
    assert weekly["row_count"] == ROWS and weekly["compression"] == "snappy"
    assert weekly["part_count"] == -(-days // 7)
    keyset = manifest(tmp_path, "orders_by_code")
    assert (keyset["row_count"], keyset["part_count"]) == (ROWS, 3)


def test_chunk_by_days_refuses_an_integer_key(pg: DbServer, pg_schema: Namespace, tmp_path: Path) -> None:
    seed_pg(pg, pg_schema)

    def on_id(doc: dict[str, Any]) -> None:
        doc["exports"] = doc["exports"][:1]
        doc["exports"][0]["chunk_column"] = "id"

    res = run_example("pg_days_keyset.yaml", tmp_path, pg_schema.url, on_id)
    assert res.code == 1
    assert "exports[0].chunk_by_days: needs a date or timestamp chunk column" in res.output


def test_meta_columns_and_quality(pg: DbServer, pg_schema: Namespace, tmp_path: Path) -> None:
    seed_pg(pg, pg_schema)
    res = run_example("pg_meta_quality.yaml", tmp_path, pg_schema.url)
    assert res.code == 0, res.output
    table = parquet_rows(tmp_path, "orders_checked")
    assert table.num_rows == ROWS
    assert table.column_names[-2:] == [rivet08.EXPORTED_AT, rivet08.ROW_HASH]
    assert table.schema.field(rivet08.EXPORTED_AT).type == pa.timestamp("us", tz="UTC")
    # the hash is recomputable from the exported values alone
    data = table.drop_columns([rivet08.EXPORTED_AT, rivet08.ROW_HASH])
    assert table.column(rivet08.ROW_HASH).to_pylist() == rivet08.row_hashes(data).to_pylist()
    events = manifest(tmp_path, "recent_events")
    # 6-hourly rows back from now; the window is today and the 3 UTC days before it (contract: time windows)
    window = pg.query(
        f"SELECT count(*) FROM {pg_schema}.events WHERE at >= ((now() AT TIME ZONE 'UTC')::date - 3) AT TIME ZONE 'UTC'"
    )
    assert events["row_count"] == window[0][0] > 0
    with (tmp_path / "out" / "recent_events" / events["parts"][0]["path"]).open() as f:
        assert next(csv.reader(f)) == ["id", "at"]


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ({"row_count_min": ROWS + 1}, f"row_count_min: {ROWS} rows < {ROWS + 1}"),
        ({"row_count_max": 10}, f"row_count_max: {ROWS} rows > 10"),
        ({"null_ratio_max": {"email": 0.05}}, "null_ratio_max.email: 30/300 = 0.1000 > 0.05"),
        ({"unique_columns": ["amount", "created_at"]}, None),
    ],
)
def test_a_failed_quality_gate_certifies_nothing(
    pg: DbServer, pg_schema: Namespace, tmp_path: Path, gate: dict[str, Any], message: str | None
) -> None:
    seed_pg(pg, pg_schema)
    if message is None:  # make a duplicate
        pg.execute(f"UPDATE {pg_schema}.orders SET amount = 1.25 WHERE id = 2")
        message = "unique_columns.amount: 1 values appear more than once"

    def gated(doc: dict[str, Any]) -> None:
        doc["exports"] = doc["exports"][:1]
        doc["exports"][0]["quality"] = gate

    res = run_example("pg_meta_quality.yaml", tmp_path, pg_schema.url, gated)
    assert res.code == 1, res.output
    assert message in res.output
    out = tmp_path / "out" / "orders_checked"
    assert not (out / "_SUCCESS").exists() and not (out / "manifest.json").exists()
    assert any(p.name.startswith("part-") for p in out.iterdir())  # committed, uncertified: --resume re-checks

    def relaxed(doc: dict[str, Any]) -> None:
        doc["exports"] = doc["exports"][:1]

    res = run_example("pg_meta_quality.yaml", tmp_path, pg_schema.url, relaxed, "--resume")
    assert res.code == 0, res.output
    assert manifest(tmp_path, "orders_checked")["row_count"] == ROWS


def test_empty_table_certifies_no_parts(pg: DbServer, pg_schema: Namespace, tmp_path: Path) -> None:
    seed_pg(pg, pg_schema)
    pg.execute(f"DELETE FROM {pg_schema}.orders")

    def no_gates(doc: dict[str, Any]) -> None:
        doc["exports"] = doc["exports"][:1]
        del doc["exports"][0]["quality"]

    res = run_example("pg_meta_quality.yaml", tmp_path, pg_schema.url, no_gates)
    assert res.code == 0, res.output
    doc = manifest(tmp_path, "orders_checked")
    assert (doc["row_count"], doc["part_count"], doc["parts"]) == (0, 0, [])


def test_mysql_incremental_quality(mysql: DbServer, mysql_db: Namespace, tmp_path: Path) -> None:
    seed_mysql(mysql, mysql_db)
    res = run_example("mysql_incremental_quality.yaml", tmp_path, mysql_db.url)
    assert res.code == 0, res.output
    table = parquet_rows(tmp_path, "orders_incremental")
    assert table.num_rows == ROWS and table.column_names[-1] == rivet08.ROW_HASH
    data = table.drop_columns([rivet08.ROW_HASH])
    assert table.column(rivet08.ROW_HASH).to_pylist() == rivet08.row_hashes(data).to_pylist()
    # the next run starts at the last cursor value (inclusive): one row again, and row_count_min 0 passes
    shutil.rmtree(tmp_path / "out")
    res = run_example("mysql_incremental_quality.yaml", tmp_path, mysql_db.url)
    assert res.code == 0, res.output
    assert manifest(tmp_path, "orders_incremental")["row_count"] == 1


def test_meta_columns_in_csv(pg: DbServer, pg_schema: Namespace, tmp_path: Path) -> None:
    seed_pg(pg, pg_schema)

    def as_csv(doc: dict[str, Any]) -> None:
        doc["exports"] = doc["exports"][:1]
        exp = doc["exports"][0]
        exp["format"] = "csv"
        del exp["compression_profile"]

    res = run_example("pg_meta_quality.yaml", tmp_path, pg_schema.url, as_csv)
    assert res.code == 0, res.output
    doc = manifest(tmp_path, "orders_checked")
    with (tmp_path / "out" / "orders_checked" / doc["parts"][0]["path"]).open() as f:
        rows = list(csv.reader(f))
    assert rows[0][-2:] == [rivet08.EXPORTED_AT, rivet08.ROW_HASH]
    assert len(rows) == ROWS + 1 and all(r[-1].lstrip("-").isdigit() for r in rows[1:])


def test_export_tuning_and_chunk_max_attempts_reach_the_run(pg: DbServer, pg_schema: Namespace, tmp_path: Path) -> None:
    """The export's own tuning (statement timeout 1 s) and attempts (2) apply, not source.tuning's."""
    seed_pg(pg, pg_schema)
    # slow only when the rows are streamed (COPY), not while the run plans (MIN/MAX over the same query)
    sleepy = (
        "SELECT id, length(pg_sleep(CASE WHEN current_query() LIKE 'COPY%' THEN 3 ELSE 0 END)::text) AS n"
        " FROM orders WHERE id = 1"
    )

    def slow_chunk(doc: dict[str, Any]) -> None:
        doc["source"]["tuning"] = {"profile": "safe", "statement_timeout_s": 300, "max_retries": 0}
        exp = doc["exports"][0]
        exp.update(query=sleepy, chunk_size=10, parallel=1, chunk_max_attempts=2)
        del exp["table"]
        exp["tuning"] = {"statement_timeout_s": 1}

    res = run_example("pg_tuned_chunked.yaml", tmp_path, pg_schema.url, slow_chunk)
    assert res.code == 3, res.output  # a statement timeout is retryable
    assert "statement_timeout_s=1" in res.output
    retries = [line for line in res.stderr.splitlines() if "event=chunk_retry" in line]
    failed = [line for line in res.stderr.splitlines() if "event=chunk_failed" in line]
    assert len(retries) == 1 and len(failed) == 1 and "attempt=2" in failed[0], res.output
