"""Chunked mode through the exact commands the operator's Jobs run: `rivet plan`, then `rivet chunk` per chunk
(two concurrent processes at a time, each handed the whole plan JSON, inline or as @file), then
`rivet finalize` over a JSON-lines ledger of their commit records."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.correctness.conftest import ENGINES, loader_for
from tests.correctness.data import columns_for, rows_for
from tests.correctness.harness import (
    Col,
    Dest,
    Table,
    assert_nothing_written,
    assert_placement,
    check_export,
    cli,
    config,
    export_entry,
    run_chunks_concurrently,
    validate_ok,
)

RECORD_FIELDS = {"chunk", "key", "rows", "size_bytes", "content_fingerprint", "content_md5", "schema_fingerprint"}


@pytest.fixture(scope="module", params=ENGINES)
def adv(request: pytest.FixtureRequest) -> Table:
    engine: str = request.param
    return loader_for(request, engine)("adv", columns_for(engine), rows_for(engine, 600))


def operator_run(cfg: Path, table: Table, dest: Dest, name: str, run_id: str, tmp: Path) -> dict[str, Any]:
    """plan -> chunk x N (2 at a time) -> finalize, as the operator does; returns the plan JSON."""
    planned = cli(table, dest, "plan", "-c", str(cfg), "-e", name, "--run-id", run_id, "--format", "json")
    assert planned.code == 0, f"rivet plan exit {planned.code}:\n{planned.output[-3000:]}"
    plan = planned.json
    for field in ("chunk_count", "plan_fingerprint", "plan"):
        assert field in plan, f"rivet plan output lacks {field!r}: {plan}"
    n = int(plan["chunk_count"])
    plan_text = planned.stdout.strip()
    plan_file = tmp / "plan.json"
    plan_file.write_text(plan_text)
    base = ["chunk", "-c", str(cfg), "-e", name, "--run-id", run_id]
    per_chunk = [["--chunk", str(i), "--plan", plan_text if i % 2 else f"@{plan_file}"] for i in range(1, n + 1)]
    records = []
    for i, (code, out, err) in enumerate(run_chunks_concurrently(table, dest, base, per_chunk), start=1):
        assert code == 0, f"rivet chunk {i} exit {code}:\n{(out + err)[-3000:]}"
        record = json.loads(out.strip().splitlines()[-1])
        missing = RECORD_FIELDS - set(record)
        assert not missing, f"chunk {i} record lacks {sorted(missing)}: {record}"
        assert record["chunk"] == i
        records.append(record)
    ledger = tmp / "ledger.jsonl"
    ledger.write_text("".join(json.dumps(r) + "\n" for r in records))
    fin = cli(
        table,
        dest,
        "finalize",
        "-c",
        str(cfg),
        "-e",
        name,
        "--run-id",
        run_id,
        "--ledger",
        str(ledger),
        "--expect-chunks",
        str(n),
        "--plan",
        plan_text,
    )
    assert fin.code == 0, f"rivet finalize exit {fin.code}:\n{fin.output[-3000:]}"
    plan["_records"] = records
    return dict(plan)


@pytest.mark.parametrize(("fmt", "where"), [("csv", "local"), ("parquet", "s3")])
def test_plan_chunk_finalize_every_row_once(
    adv: Table, fmt: str, where: str, make_dest: Callable[[str], Dest], tmp_path: Path
) -> None:
    dest = make_dest(where)
    name = f"op_{fmt}"
    exp = export_entry(name, adv, dest, fmt, mode="chunked", chunk_column="k", chunk_count=4, parallel=2)
    cfg = config(tmp_path / "rivet.yaml", adv, [exp])
    plan = operator_run(cfg, adv, dest, name, "op1", tmp_path)
    validate_ok(cfg, adv, dest, name, "op1")
    got = check_export(dest, name, "op1", adv, fmt, adv.rows())
    assert got.manifest["row_count"] == adv.count() == sum(r["rows"] for r in plan["_records"])
    by_key = {r["key"]: r for r in plan["_records"] if r["key"]}
    for part, _ in got.parts:
        rec = by_key[part["path"]]
        assert (rec["rows"], rec["size_bytes"], rec["content_fingerprint"]) == (
            part["rows"],
            part["size_bytes"],
            part["content_fingerprint"],
        )
    assert_placement(got, adv, "k", int(plan["chunk_count"]))


@pytest.mark.parametrize("engine", ENGINES)
def test_plan_refuses_a_fractional_chunk_key(
    engine: str, request: pytest.FixtureRequest, make_dest: Callable[[str], Dest], tmp_path: Path
) -> None:
    ddl = "numeric(10,2)" if engine == "postgres" else "decimal(10,2)"
    cols = [Col("rid", "int PRIMARY KEY", pa.int32()), Col("k", ddl, pa.decimal128(10, 2))]
    table = loader_for(request, engine)("frac_op", cols, [(1, Decimal("0.50")), (2, Decimal("7.25")), (3, None)])
    dest = make_dest("local")
    exp = export_entry("frac_op", table, dest, "parquet", mode="chunked", chunk_column="k", chunk_size=1)
    cfg = config(tmp_path / "rivet.yaml", table, [exp])
    res = cli(table, dest, "plan", "-c", str(cfg), "-e", "frac_op", "--run-id", "p1", "--format", "json")
    assert res.code == 1, f"expected exit 1, got {res.code}:\n{res.output[-3000:]}"
    assert "chunk_column" in res.output, res.output[-3000:]
    assert_nothing_written(dest, "cx/frac_op/")
