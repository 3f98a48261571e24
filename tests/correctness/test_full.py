"""Full mode: the adversarial table exported whole equals the source, for every format and destination."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from tests.correctness.conftest import ENGINES, loader_for
from tests.correctness.data import columns_for, rows_for
from tests.correctness.harness import Col, Dest, Table, check_export, config, export_entry, run_ok, validate_ok

ROWS = 1200


@pytest.fixture(scope="module", params=ENGINES)
def adv(request: pytest.FixtureRequest) -> Table:
    engine: str = request.param
    return loader_for(request, engine)("adv", columns_for(engine), rows_for(engine, ROWS))


@pytest.fixture(scope="module")
def adv_rows(adv: Table) -> list[tuple[object, ...]]:
    rows = adv.rows()
    assert len(rows) == ROWS + 1
    return rows


@pytest.mark.parametrize("where", ["local", "s3"])
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_full_export_equals_source(
    adv: Table,
    adv_rows: list[tuple[object, ...]],
    fmt: str,
    where: str,
    make_dest: Callable[[str], Dest],
    tmp_path: Path,
) -> None:
    dest = make_dest(where)
    cfg = config(tmp_path / "rivet.yaml", adv, [export_entry("adv", adv, dest, fmt)])
    summary = run_ok(cfg, adv, dest, "adv", "r1")
    validate_ok(cfg, adv, dest, "adv", "r1")
    got = check_export(dest, "adv", "r1", adv, fmt, adv_rows)
    assert got.manifest["row_count"] == adv.count() == summary["rows"]


def test_mysql_datetime_before_year_1000_is_exact(
    request: pytest.FixtureRequest, make_dest: Callable[[str], Dest], tmp_path: Path
) -> None:
    """MariaDB stores DATETIME/DATE below its documented 1000-01-01 floor; they must not shift or vanish."""
    cols = [
        Col("rid", "int PRIMARY KEY", pa.int32()),
        Col("ts", "datetime(6)", pa.timestamp("us")),
        Col("d", "date", pa.date32()),
    ]
    rows = [
        (1, dt.datetime(1, 1, 1), dt.date(1, 1, 1)),
        (2, dt.datetime(999, 12, 31, 23, 59, 59, 999999), dt.date(999, 12, 31)),
        (3, dt.datetime(1582, 10, 10, 12, 0), dt.date(1582, 10, 10)),  # inside the Julian/Gregorian gap
        (4, None, None),
    ]
    table = loader_for(request, "mysql")("old_dates", cols, rows)
    dest = make_dest("local")
    for fmt in ("parquet", "csv"):
        cfg = config(tmp_path / f"{fmt}.yaml", table, [export_entry(f"old_{fmt}", table, dest, fmt)])
        run_ok(cfg, table, dest, f"old_{fmt}", "r1")
        check_export(dest, f"old_{fmt}", "r1", table, fmt, table.rows())


def test_pg_dates_in_the_calendar_gap_and_leap_days_are_exact(
    request: pytest.FixtureRequest, make_dest: Callable[[str], Dest], tmp_path: Path
) -> None:
    cols = [
        Col("rid", "int PRIMARY KEY", pa.int32()),
        Col("ts", "timestamp", pa.timestamp("us")),
        Col("tstz", "timestamptz", pa.timestamp("us", tz="UTC")),
        Col("d", "date", pa.date32()),
    ]
    utc = dt.UTC
    rows = [
        (1, dt.datetime(1582, 10, 10, 12), dt.datetime(1582, 10, 10, 12, tzinfo=utc), dt.date(1582, 10, 10)),
        (
            2,
            dt.datetime(1900, 2, 28, 23, 59, 59),
            dt.datetime(1883, 11, 18, 16, 59, 59, tzinfo=utc),
            dt.date(2000, 2, 29),
        ),
        (3, dt.datetime(1, 1, 1, 0, 0, 0, 1), dt.datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=utc), dt.date(1, 1, 1)),
    ]
    table = loader_for(request, "postgres")("gap_dates", cols, rows)
    dest = make_dest("local")
    for fmt in ("parquet", "csv"):
        cfg = config(tmp_path / f"{fmt}.yaml", table, [export_entry(f"gap_{fmt}", table, dest, fmt)])
        run_ok(cfg, table, dest, f"gap_{fmt}", "r1")
        check_export(dest, f"gap_{fmt}", "r1", table, fmt, table.rows())


DECIMALS = {
    "postgres": [(1, 0), (5, 5), (18, 0), (20, 0), (28, 10), (38, 0), (38, 38), (39, 0), (76, 0), (76, 38)],
    "mysql": [(1, 0), (5, 5), (18, 0), (19, 0), (20, 0), (28, 0), (28, 10), (29, 10), (38, 30), (65, 0), (65, 30)],
}


@pytest.mark.parametrize("engine", ENGINES)
def test_decimal_extremes_are_exact(
    engine: str, request: pytest.FixtureRequest, make_dest: Callable[[str], Dest], tmp_path: Path
) -> None:
    """The largest, smallest and finest value of each precision/scale, on both decimal128 and decimal256."""
    from decimal import Decimal

    specs = DECIMALS[engine]
    kw = "numeric" if engine == "postgres" else "decimal"
    cols = [Col("rid", "int PRIMARY KEY", pa.int32())] + [
        Col(f"n{p}_{s}", f"{kw}({p},{s})", pa.decimal128(p, s) if p <= 38 else pa.decimal256(p, s)) for p, s in specs
    ]

    def top(p: int, s: int, sign: str = "") -> Decimal:
        return Decimal(f"{sign}{10**p - 1}E-{s}")  # from text: exact (arithmetic would round to 28 digits)

    rows = [
        (1, *[top(p, s) for p, s in specs]),
        (2, *[top(p, s, "-") for p, s in specs]),
        (3, *[Decimal(f"1E-{s}") for _, s in specs]),
        (4, *[Decimal(0) for _ in specs]),
        (5, *[None for _ in specs]),
    ]
    table = loader_for(request, engine)("decimals", cols, rows)
    dest = make_dest("local")
    for fmt in ("parquet", "csv"):
        cfg = config(tmp_path / f"{fmt}.yaml", table, [export_entry(f"dec_{fmt}", table, dest, fmt)])
        run_ok(cfg, table, dest, f"dec_{fmt}", "r1")
        check_export(dest, f"dec_{fmt}", "r1", table, fmt, table.rows())
