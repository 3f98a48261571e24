"""Chunked mode through `rivet run` (parallel 2): every row lands in exactly one chunk, whatever its key.

Keys are NULL, negative, zero, duplicated, sparse, near 2^62, beyond int64 (numeric(20,0), bigint unsigned),
dates and timestamps; bounds make chunks end at 0 and at negative numbers. Fractional, float and time keys and
plans of more than 100,000 chunks are refused before anything is written (uuid and text keys: test_keyset.py). Reconcile counts the whole source, NULL keys too.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
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
    insert_rows,
    prefix_of,
    run_ok,
    run_summary,
)
from tests.integration.rivet_cli import Result

UTC = dt.UTC


def key_cols(engine: str, key_ddl: str, key_type: pa.DataType) -> list[Col]:
    text = "text" if engine == "postgres" else "varchar(64)"
    return [Col("rid", "int PRIMARY KEY", pa.int32()), Col("k", key_ddl, key_type), Col("s", text, pa.string())]


def keyed_rows(keys: list[Any]) -> list[tuple[Any, ...]]:
    return [(i, k, f"row {i} key {k!r} ' \\ \n") for i, k in enumerate(keys, start=1)]


def dense_keys() -> list[Any]:
    """-99..310 once, 0/-99/310 twice more, and 15 NULL keys: chunk_size 100 ends chunk 1 at 0, 50 at -50."""
    return [*range(-99, 311), 0, 0, -99, 310, 310, *([None] * 15)]


def temporal_rows(engine: str, n: int = 400) -> tuple[list[Col], list[tuple[Any, ...]]]:
    rng = random.Random(7)
    if engine == "postgres":
        cols = [
            Col("rid", "int PRIMARY KEY", pa.int32()),
            Col("d", "date", pa.date32()),
            Col("ts", "timestamp", pa.timestamp("us")),
            Col("tstz", "timestamptz", pa.timestamp("us", tz="UTC")),
        ]
    else:
        cols = [
            Col("rid", "int PRIMARY KEY", pa.int32()),
            Col("d", "date", pa.date32()),
            Col("ts", "datetime(6)", pa.timestamp("us")),
            Col("tstz", "timestamp(6) NULL DEFAULT NULL", pa.timestamp("us", tz="UTC")),
        ]
    start = dt.datetime(2024, 1, 1)
    edges = [dt.datetime(2024, 3, 10, 2, 30), dt.datetime(2024, 3, 10, 7), dt.datetime(2024, 11, 3, 1, 30)]
    rows: list[tuple[Any, ...]] = []
    for i in range(1, n + 1):
        moment = rng.choice(edges) if i % 17 == 0 else start + dt.timedelta(seconds=rng.randint(0, 330 * 86400))
        moment = moment.replace(microsecond=rng.choice([0, 999999, rng.randint(0, 999999)]))
        aware: dt.datetime | None = moment.replace(tzinfo=UTC) if engine == "postgres" else moment
        rows.append(
            (
                i,
                None if i % 23 == 0 else moment.date(),
                None if i % 19 == 0 else moment,
                None if i % 29 == 0 else aware,
            )
        )
    return cols, rows


@dataclass
class World:
    engine: str
    adv: Table
    dense: Table
    temporal: Table
    edge: dict[str, Table]
    refuse: dict[str, Table]
    recon: Table


@pytest.fixture(scope="module", params=ENGINES)
def world(request: pytest.FixtureRequest) -> World:
    engine: str = request.param
    load = loader_for(request, engine)
    big = "bigint" if engine == "mysql" else "int8"
    adv = load("adv", columns_for(engine), rows_for(engine, 900))
    dense = load("dense", key_cols(engine, big, pa.int64()), keyed_rows(dense_keys()))
    tcols, trows = temporal_rows(engine)
    temporal = load("temporal", tcols, trows)
    rng = random.Random(11)
    num_ddl = "numeric(20,0)" if engine == "postgres" else "decimal(20,0)"
    edge = {
        "allnull": load("allnull", key_cols(engine, big, pa.int64()), keyed_rows([None] * 20)),
        "empty": load("empty", key_cols(engine, big, pa.int64()), []),
        "onekey": load("onekey", key_cols(engine, big, pa.int64()), keyed_rows([5] * 10 + [None] * 3)),
        "smallint": load(
            "smallint",
            key_cols(engine, "smallint", pa.int16()),
            keyed_rows([-32768, 32767, 0, -1, None, *[rng.randint(-32768, 32767) for _ in range(60)]]),
        ),
        "numkey": load(
            "numkey",
            key_cols(engine, num_ddl, pa.decimal128(20, 0)),
            keyed_rows(
                [Decimal(v) for v in (-(10**19), 10**19, 0, -1, 2**63, -(2**63) - 1)]
                + [Decimal(rng.randint(-(10**6), 10**6)) for _ in range(80)]
                + [None] * 4
            ),
        ),
    }
    if engine == "mysql":  # unsigned: keys past int64
        wide_keys = [0, 1, 2**63 - 1, 2**63, 2**63 + 5, 2**64 - 1, *[rng.randint(0, 2**64 - 1) for _ in range(60)]]
        wide_cols = key_cols(engine, "bigint unsigned", pa.uint64())
    else:  # int4 at both ends of its range
        wide_keys = [-(2**31), 2**31 - 1, 0, -1, *[rng.randint(-(2**31), 2**31 - 1) for _ in range(60)]]
        wide_cols = key_cols(engine, "int4", pa.int32())
    edge["widekey"] = load("widekey", wide_cols, keyed_rows([*wide_keys, None, None]))
    frac_ddl = "numeric(10,2)" if engine == "postgres" else "decimal(10,2)"
    refuse = {
        "fraction": load(
            "fraction",
            key_cols(engine, frac_ddl, pa.decimal128(10, 2)),
            keyed_rows([Decimal("1.50"), Decimal("2.25"), Decimal("3.00"), None]),
        ),
        "float": load(
            "floatkey",
            key_cols(engine, "double precision" if engine == "postgres" else "double", pa.float64()),
            keyed_rows([1.0, 2.0, 3.0]),
        ),
        "time": load(  # text keys are chunked by keyset (test_keyset.py); a time of day has no such order here
            "timekey",
            key_cols(engine, "time", pa.time64("us")),
            keyed_rows([dt.time(1, 2, 3), dt.time(23, 59, 59), None]),
        ),
        "toomany": load("toomany", key_cols(engine, big, pa.int64()), keyed_rows([1, 10**9])),
    }
    recon = load("recon", key_cols(engine, big, pa.int64()), keyed_rows([*range(-30, 50), None, None]))
    return World(engine, adv, dense, temporal, edge, refuse, recon)


def run_all(cfg: Path, table: Table, dest: Dest) -> tuple[Result, dict[str, dict[str, Any]]]:
    """`rivet run` over every export of the config at once (one process: cheaper than one per export).

    Run ids are unique per state file, so each export gets the generated one (read it from its summary)."""
    res = cli(table, dest, "run", "-c", str(cfg), "--validate")
    try:
        summaries = {s["export_name"]: s for s in res.json["exports"]}
    except (ValueError, KeyError):
        raise AssertionError(f"rivet run printed no summary (exit {res.code}):\n{res.output[-4000:]}") from None
    return res, summaries


# --- the adversarial table --------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "where"), [("parquet", "local"), ("csv", "s3")])
def test_chunked_adversarial_keys_every_row_once(
    world: World, fmt: str, where: str, make_dest: Callable[[str], Dest], tmp_path: Path
) -> None:
    """chunk_count 6 over keys from -2^62 to 2^62+7 with NULLs, zeros, duplicates and sparse values."""
    t = world.adv
    dest = make_dest(where)
    name = f"adv_{fmt}"
    exp = export_entry(name, t, dest, fmt, mode="chunked", chunk_column="k", chunk_count=6, parallel=2)
    cfg = config(tmp_path / "rivet.yaml", t, [exp])
    summary = run_ok(cfg, t, dest, name, "r1")
    got = check_export(dest, name, "r1", t, fmt, t.rows())
    assert got.manifest["row_count"] == t.count()
    assert_placement(got, t, "k", summary.get("chunks_total"))


# --- chunk bounds ending at 0 and at negative numbers ----------------------------------------------------


@pytest.fixture(scope="module")
def dense_run(world: World, make_dest: Callable[[str], Dest], tmp_path_factory: pytest.TempPathFactory) -> Any:
    t = world.dense
    dest = make_dest("local")
    exports = [
        export_entry(f"dense{size}", t, dest, "csv", mode="chunked", chunk_column="k", chunk_size=size, parallel=2)
        for size in (100, 50)
    ]
    cfg = config(tmp_path_factory.mktemp("dense") / "rivet.yaml", t, exports, batch_size=64)
    return dest, *run_all(cfg, t, dest)


@pytest.mark.parametrize(("size", "chunks", "first"), [(100, 5, [-99, 0]), (50, 9, [-99, -50])])
def test_chunk_ends_at_zero_or_negative(world: World, dense_run: Any, size: int, chunks: int, first: list[int]) -> None:
    dest, res, summaries = dense_run
    name = f"dense{size}"
    summary = summaries[name]
    assert summary["status"] == "success", f"{summary}\n{res.output[-3000:]}"
    t = world.dense
    got = check_export(dest, name, summary["run_id"], t, "csv", t.rows())
    assert summary.get("chunks_total", chunks) == chunks
    by_chunk = {p.get("chunk_index", p["part_id"]): p for p, _ in got.parts}
    assert by_chunk[1]["key_range"] == first, by_chunk[1]
    assert_placement(got, t, "k", chunks)


# --- temporal keys (chunk_size counts days) ---------------------------------------------------------


@pytest.fixture(scope="module")
def temporal_run(world: World, make_dest: Callable[[str], Dest], tmp_path_factory: pytest.TempPathFactory) -> Any:
    t = world.temporal
    dest = make_dest("s3")
    exports = [
        export_entry("by_date", t, dest, "parquet", mode="chunked", chunk_column="d", chunk_size=30, parallel=2),
        export_entry("by_ts", t, dest, "parquet", mode="chunked", chunk_column="ts", chunk_size=45, parallel=2),
        export_entry("by_tstz", t, dest, "parquet", mode="chunked", chunk_column="tstz", chunk_count=4, parallel=2),
    ]
    cfg = config(tmp_path_factory.mktemp("temporal") / "rivet.yaml", t, exports)
    return dest, *run_all(cfg, t, dest)


@pytest.mark.parametrize("name", ["by_date", "by_ts", "by_tstz"])
def test_temporal_chunk_keys_every_row_once(world: World, temporal_run: Any, name: str) -> None:
    dest, res, summaries = temporal_run
    summary = summaries[name]
    assert summary["status"] == "success", f"{summary}\n{res.output[-3000:]}"
    t = world.temporal
    check_export(dest, name, summary["run_id"], t, "parquet", t.rows())


# --- degenerate and beyond-int64 keys -------------------------------------------------------------------

EDGE_SIZING: dict[str, dict[str, int]] = {
    "allnull": {"chunk_size": 10},
    "empty": {"chunk_size": 10},
    "onekey": {"chunk_size": 1},
    "smallint": {"chunk_size": 10_000},
    "numkey": {"chunk_count": 5},
    "widekey": {"chunk_count": 4},
}


@pytest.fixture(scope="module")
def edge_run(world: World, make_dest: Callable[[str], Dest], tmp_path_factory: pytest.TempPathFactory) -> Any:
    dest = make_dest("local")
    exports = [
        export_entry(name, t, dest, "parquet", mode="chunked", chunk_column="k", parallel=2, **EDGE_SIZING[name])
        for name, t in world.edge.items()
    ]
    any_table = next(iter(world.edge.values()))
    cfg = config(tmp_path_factory.mktemp("edge") / "rivet.yaml", any_table, exports)
    return dest, *run_all(cfg, any_table, dest)


@pytest.mark.parametrize("name", list(EDGE_SIZING))
def test_degenerate_and_wide_keys(world: World, edge_run: Any, name: str) -> None:
    dest, res, summaries = edge_run
    summary = summaries[name]
    assert summary["status"] == "success", f"{summary}\n{res.output[-3000:]}"
    t = world.edge[name]
    got = check_export(dest, name, summary["run_id"], t, "parquet", t.rows())
    if name in ("allnull", "empty", "onekey"):
        assert summary.get("chunks_total", 1) == 1, "an all-NULL, empty or one-key table is one chunk"
    if name == "empty":
        assert got.manifest["row_count"] == 0 and got.manifest["parts"] == []
    if name == "allnull":
        assert [p["rows"] for p, _ in got.parts] == [20]
    if name != "empty":
        assert_placement(got, t, "k", summary.get("chunks_total"))


# --- refusals at plan time ------------------------------------------------------------------------------

REFUSALS = {
    "fraction": ({"chunk_size": 1}, ("chunk_column", "integer")),
    "float": ({"chunk_size": 1}, ("chunk_column", "integer")),
    "time": ({"chunk_size": 1}, ("chunk_column", "integer", "uuid, text or binary")),
    "toomany": ({"chunk_size": 1}, ("chunk_count",)),
}


@pytest.fixture(scope="module")
def refusal_run(world: World, make_dest: Callable[[str], Dest], tmp_path_factory: pytest.TempPathFactory) -> Any:
    dest = make_dest("local")
    exports = [
        export_entry(f"refuse_{name}", t, dest, "parquet", mode="chunked", chunk_column="k", **REFUSALS[name][0])
        for name, t in world.refuse.items()
    ]
    any_table = next(iter(world.refuse.values()))
    cfg = config(tmp_path_factory.mktemp("refuse") / "rivet.yaml", any_table, exports)
    res = cli(any_table, dest, "run", "-c", str(cfg), timeout=120)
    return dest, res


@pytest.mark.parametrize("name", list(REFUSALS))
def test_unchunkable_key_is_refused_before_writing(world: World, refusal_run: Any, name: str) -> None:
    dest, res = refusal_run
    assert res.code == 1, f"expected exit 1, got {res.code}:\n{res.output[-3000:]}"
    summary = run_summary(res, f"refuse_{name}")
    assert summary["status"] == "failed", summary
    error = str(summary.get("error", ""))
    for word in REFUSALS[name][1]:
        assert word in error, f"the error should name {word!r}: {error}"
    assert_nothing_written(dest, f"cx/refuse_{name}/")


# --- reconcile counts the whole source -----------------------------------------------------------------


def test_reconcile_sees_a_new_row_with_a_null_key(
    world: World, make_dest: Callable[[str], Dest], tmp_path: Path
) -> None:
    t = world.recon
    dest = make_dest("local")
    exp = export_entry("recon", t, dest, "parquet", mode="chunked", chunk_column="k", chunk_size=25, parallel=2)
    cfg = config(tmp_path / "rivet.yaml", t, [exp])
    run_ok(cfg, t, dest, "recon", "r1")
    check_export(dest, "recon", "r1", t, "parquet", t.rows())
    args = ["reconcile", "-c", str(cfg), "-e", "recon", "--prefix", dest.prefix_arg(prefix_of("recon", "r1"))]
    before = cli(t, dest, *args, "--format", "json")
    assert before.code == 0, f"reconcile right after the run should match:\n{before.output[-3000:]}"
    assert before.json["mismatch"] == 0, before.json
    insert_rows(t.server, t.database, t.name, t.names, [(10_000, None, "late row with a NULL key")])
    after = cli(t, dest, *args, "--format", "json")
    assert after.code != 0, f"reconcile must fail after a NULL-key insert:\n{after.output[-3000:]}"
    assert after.json["mismatch"] >= 1, after.json
