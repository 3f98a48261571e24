"""time_window mode: rows with D - days_window <= time_column < D + 1 day, D a UTC calendar date.

timestamptz (PostgreSQL) and TIMESTAMP (MariaDB) edges are UTC instants; timestamp/datetime/date edges are
naive. The servers run in non-UTC zones (PostgreSQL database default America/New_York, MariaDB GLOBAL
time_zone -05:00) and D is the New York spring-forward day, so an engine that lets the session zone into the
window shifts the edge rows in or out, which the multiset comparison shows.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from tests.correctness.conftest import ENGINES, loader_for
from tests.correctness.harness import Col, Dest, Table, check_export, cli, config, export_entry

UTC = dt.UTC
DAY = dt.date(2024, 3, 10)
US = dt.timedelta(microseconds=1)


def columns(engine: str) -> list[Col]:
    pg = engine == "postgres"
    return [
        Col("rid", "int PRIMARY KEY", pa.int32()),
        Col("tstz", "timestamptz" if pg else "timestamp(6) NULL DEFAULT NULL", pa.timestamp("us", tz="UTC")),
        Col("ts", "timestamp" if pg else "datetime(6)", pa.timestamp("us")),
        Col("d", "date", pa.date32()),
        Col("note", "text", pa.string()),
    ]


def moments() -> list[dt.datetime]:
    """Naive UTC moments: every window edge (days_window 1 and 2) +-1us, New York midnights, random fill."""
    out: list[dt.datetime] = []
    for window in (1, 2):
        start = dt.datetime.combine(DAY - dt.timedelta(days=window), dt.time())
        for edge in (start, dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time())):
            out += [edge - US, edge, edge + US]
    out += [
        dt.datetime(2024, 3, 8, 5, 0),  # New York midnight starting the 8th (EST)
        dt.datetime(2024, 3, 11, 4, 0),  # New York midnight starting the 11th (EDT)
        dt.datetime(2024, 3, 11, 4, 59, 59, 999999),  # still the 10th at -05:00
        dt.datetime(2024, 3, 10, 2, 30),  # a local time New York skips
        dt.datetime(2024, 3, 10, 23, 59, 59, 999999),
    ]
    rng = random.Random(3)
    base = dt.datetime(2024, 3, 5)
    out += [
        base + dt.timedelta(seconds=rng.randint(0, 10 * 86400), microseconds=rng.randint(0, 999999)) for _ in range(150)
    ]
    return out


def rows(engine: str) -> list[tuple[Any, ...]]:
    rng = random.Random(4)
    ms = moments()
    out = []
    for i in range(len(ms) * 2):
        a, b, c = ms[i % len(ms)], rng.choice(ms), rng.choice(ms)
        tstz: dt.datetime | None = a.replace(tzinfo=UTC) if engine == "postgres" else a
        out.append(
            (
                i + 1,
                None if i % 31 == 5 else tstz,
                None if i % 37 == 6 else b,
                None if i % 41 == 7 else c.date(),
                f"{i} ' \\ \n",
            )
        )
    return out


def in_window(value: Any, column: str, window: int) -> bool:
    if value is None:
        return False
    start = DAY - dt.timedelta(days=window)
    end = DAY + dt.timedelta(days=1)
    if column == "d":
        return bool(start <= value < end)
    lo, hi = dt.datetime.combine(start, dt.time()), dt.datetime.combine(end, dt.time())
    if column == "tstz":
        lo, hi = lo.replace(tzinfo=UTC), hi.replace(tzinfo=UTC)
    return bool(lo <= value < hi)


WINDOWS = [("tstz", 2), ("tstz", 1), ("ts", 2), ("d", 1)]


@pytest.fixture(scope="module", params=ENGINES)
def window_run(
    request: pytest.FixtureRequest, make_dest: Callable[[str], Dest], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Table, dict[str, Dest], dict[str, Any], str]:
    engine: str = request.param
    table = loader_for(request, engine)("events", columns(engine), rows(engine))
    dests = {"local": make_dest("local"), "s3": make_dest("s3")}
    exports = []
    for i, (column, window) in enumerate(WINDOWS):
        fmt, where = ("parquet", "local") if i % 2 == 0 else ("csv", "s3")
        exports.append(
            {
                **export_entry(f"tw_{column}_{window}", table, dests[where], fmt, mode="time_window"),
                "time_column": column,
                "days_window": window,
            }
        )
    cfg = config(tmp_path_factory.mktemp("tw") / "rivet.yaml", table, exports)
    res = cli(table, dests["s3"], "run", "-c", str(cfg), "--date", DAY.isoformat(), "--validate")
    try:
        summaries = {s["export_name"]: s for s in res.json["exports"]}
    except (ValueError, KeyError):
        raise AssertionError(f"rivet run printed no summary (exit {res.code}):\n{res.output[-4000:]}") from None
    return table, dests, summaries, res.output


@pytest.mark.parametrize("index", range(len(WINDOWS)), ids=[f"{c}-{w}d" for c, w in WINDOWS])
def test_time_window_is_exactly_the_utc_window(window_run: Any, index: int) -> None:
    table, dests, summaries, output = window_run
    column, window = WINDOWS[index]
    fmt, where = ("parquet", "local") if index % 2 == 0 else ("csv", "s3")
    name = f"tw_{column}_{window}"
    summary = summaries[name]
    assert summary["status"] == "success", f"{summary}\n{output[-3000:]}"
    idx = table.names.index(column)
    expected = [r for r in table.rows() if in_window(r[idx], column, window)]
    assert expected, "the window should not be empty"
    check_export(dests[where], name, summary["run_id"], table, fmt, expected)
