"""Values with no exact Arrow form must be REFUSED, before any byte is written.

PostgreSQL numeric NaN/+-Infinity and +-infinity timestamps/dates; MariaDB zero dates (0000-00-00, zero month
or day) and tinyint(1) holding something other than 0/1. Expected: the export fails (non-zero exit), its
error names the column and a fix, and the prefix holds nothing (no part, no manifest.json, no _SUCCESS).

The offending row sits after 1,500 clean rows (batch_size 250), so the refusal happens mid-stream and any
part already opened must be aborted, not left behind. Both formats.

These cases are owned by the value/type work in job/rivet/sources (conform, pg_types, mysql_types); they are
kept in this module so their status is visible on its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest

from tests.correctness.conftest import loader_for
from tests.correctness.harness import Col, Dest, cli, config, execute, export_entry

CLEAN_ROWS = 1500
ARROW_SPELLING = re.compile(r"extension<|decimal128|decimal256|time64|timestamp\[|date32|\bbool\b|\butf8\b|int32|int64")


@dataclass(frozen=True)
class Case:
    engine: str
    name: str
    ddl: str
    clean: str  # SQL literal of a valid value
    bad: str  # SQL literal of the value that must be refused
    formats: tuple[str, ...] = ("parquet", "csv")  # where it must be refused


CASES = [
    Case("postgres", "num_nan", "numeric(12,2)", "1.25", "'NaN'"),
    # Only unconstrained numeric holds the infinities: refused by type in Parquet (without a columns:
    # override); CSV writes the database's exact text (test_exact_values.py).
    Case("postgres", "num_inf", "numeric", "1.25", "'Infinity'", ("parquet",)),
    Case("postgres", "num_ninf", "numeric", "1.25", "'-Infinity'", ("parquet",)),
    Case("postgres", "ts_inf", "timestamp", "'2024-01-01 00:00:00'", "'infinity'"),
    Case("postgres", "ts_ninf", "timestamp", "'2024-01-01 00:00:00'", "'-infinity'"),
    Case("postgres", "tstz_inf", "timestamptz", "'2024-01-01 00:00:00+00'", "'infinity'"),
    Case("postgres", "tstz_ninf", "timestamptz", "'2024-01-01 00:00:00+00'", "'-infinity'"),
    Case("postgres", "date_inf", "date", "'2024-01-01'", "'infinity'"),
    Case("postgres", "date_ninf", "date", "'2024-01-01'", "'-infinity'"),
    Case("mysql", "zero_date", "date", "'2024-01-01'", "'0000-00-00'"),
    Case("mysql", "zero_month", "date", "'2024-01-01'", "'2024-00-15'"),
    Case("mysql", "zero_day", "date", "'2024-01-01'", "'2024-05-00'"),
    Case("mysql", "zero_datetime", "datetime(6)", "'2024-01-01 00:00:00'", "'0000-00-00 00:00:00'"),
    Case("mysql", "zero_day_datetime", "datetime(6)", "'2024-01-01 00:00:00'", "'2024-02-00 10:00:00'"),
    Case("mysql", "zero_timestamp", "timestamp(6) NULL DEFAULT NULL", "'2024-01-01 00:00:00'", "'0000-00-00 00:00:00'"),
    Case("mysql", "bool_two", "tinyint(1)", "1", "2"),
    Case("mysql", "bool_minus_one", "tinyint(1)", "0", "-1"),
]
FORMATS = ["parquet", "csv"]


def column_name(case: Case) -> str:
    return f"bad_{case.name}"


Outcome = tuple[Dest, dict[str, dict[str, Any]], int, str]


@pytest.fixture(scope="module")
def refusals(
    request: pytest.FixtureRequest, make_dest: Callable[[str], Dest], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Outcome]:
    """outcome(engine): one `rivet run` over every case x format of that engine, run once and cached."""
    cache: dict[str, Outcome] = {}

    def outcome(engine: str) -> Outcome:
        if engine not in cache:
            cache[engine] = run_cases(engine, request, make_dest, tmp_path_factory)
        return cache[engine]

    return outcome


def run_cases(
    engine: str,
    request: pytest.FixtureRequest,
    make_dest: Callable[[str], Dest],
    tmp_path_factory: pytest.TempPathFactory,
) -> Outcome:
    """One table per case, every case x format as an export, one `rivet run` over all of them."""
    load = loader_for(request, engine)
    dest = make_dest("local")
    exports = []
    table = None
    for case in (c for c in CASES if c.engine == engine):
        col = column_name(case)
        table = load(f"t_{case.name}", [Col("rid", "int PRIMARY KEY", pa.int32()), Col(col, case.ddl, pa.null())], [])
        mode = "SET SESSION sql_mode = ''" if engine == "mysql" else "SELECT 1"
        values = ", ".join(f"({i}, {case.clean})" for i in range(1, CLEAN_ROWS + 1))
        execute(
            table.server,
            table.database,
            mode,
            f"INSERT INTO {table.name} VALUES {values}",
            f"INSERT INTO {table.name} VALUES ({CLEAN_ROWS + 1}, NULL), ({CLEAN_ROWS + 2}, {case.bad})",
        )
        got = table.server.query(f"SELECT COUNT(*) FROM {table.name}", database=table.database)[0][0]
        assert got == CLEAN_ROWS + 2, f"could not load the {case.name} case"
        exports += [export_entry(f"{case.name}_{fmt}", table, dest, fmt) for fmt in case.formats]
    assert table is not None
    cfg = config(tmp_path_factory.mktemp("refusals") / "rivet.yaml", table, exports, batch_size=250)
    res = cli(table, dest, "run", "-c", str(cfg), timeout=300)
    try:
        summaries = {s["export_name"]: s for s in res.json["exports"]}
    except (ValueError, KeyError):
        raise AssertionError(f"rivet run printed no summary (exit {res.code}):\n{res.output[-4000:]}") from None
    return dest, summaries, res.code, res.output


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", CASES, ids=[f"{c.engine}-{c.name}" for c in CASES])
def test_unrepresentable_value_is_refused_before_writing(
    refusals: Callable[[str], Outcome], case: Case, fmt: str
) -> None:
    if fmt not in case.formats:
        pytest.skip(f"{case.ddl} {case.bad} is exported exactly in {fmt}")
    dest, summaries, code, _ = refusals(case.engine)
    name = f"{case.name}_{fmt}"
    summary = summaries[name]
    left = dest.keys(f"cx/{name}/")
    assert summary["status"] == "failed", (
        f"{case.bad} in a {case.ddl} column was exported instead of refused "
        f"({summary.get('rows')} rows; objects {left[:5]})"
    )
    assert code != 0
    error = str(summary.get("error") or "")
    col = column_name(case)
    assert col in error, f"the error should name column {col!r}: {error}"
    assert "e.g." in error or "cast" in error.lower() or "fix" in error.lower(), (
        f"the error should say how to fix it: {error}"
    )
    assert not ARROW_SPELLING.search(error), f"the error should name the database's types, not Arrow's: {error}"
    assert left == [], f"a refused export left objects behind: {left[:10]}"
