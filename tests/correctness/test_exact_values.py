"""Exact values or a refusal, with `columns:` overrides (issue #20 item 4), through the real CLI.

- Unconstrained PostgreSQL `numeric`: CSV is the database's exact text; Parquet needs an override:
  `string` (exact text) or `decimal(38,10)` (exact where it fits, else refused naming the row's key).
- `time '24:00:00'`: exact in CSV (`24:00:00.000000`, both the server-formatted and the Arrow CSV path),
  refused in Parquet naming the column, exact text with a `string` override.
- Arrays whose subscripts do not start at 1: refused naming the column, exact text with `string`;
  default-bound arrays unchanged.
- MariaDB DECIMAL(65,30) with `string` and `decimal(38,10)` overrides.

The reference side reads with psycopg / PyMySQL as text (`::text`, `CAST(... AS CHAR)`), so the expected
values are the database's own spelling. Every refused export leaves nothing at its prefix (no _SUCCESS).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
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
    canon_rows,
    cli,
    config,
    execute,
    export_entry,
    read_export,
    reference_fetch,
)

CLEAN = 1500  # refused rows sit after this many clean ones (batch_size 250): the refusal is mid-stream
RID = Col("rid", "int PRIMARY KEY", pa.int32())
TEXT = pa.string()
DEC = pa.decimal128(38, 10)

# Unconstrained numeric, chosen to break it: signs, zeros, tiny and huge magnitudes, 40+ digits, trailing
# zeros, the non-finite values.
NUMERIC_VALUES = [
    "NULL",
    "0",
    "-0",
    "-1.5",
    "1.500",
    "-0.0000000001",
    "0.000000000000000000000000000001",  # 1e-30
    "1e30",
    "123456789012345678901234567890.123",
    "1234567890123456789012345678901234567890123.5",  # 43 integer digits
    "-98765432109876543210987654321098765432109876543210",
    "'NaN'",
    "'Infinity'",
    "'-Infinity'",
]
FITTING = ["NULL", "0", "-0", "-1.5", "1.500", "-0.0000000001", "123456789012345678.0123456789", "-42"]
TIMES = ["'24:00:00'", "'23:59:59.999999'", "NULL", "'00:00:00'", "'12:34:56.789'"]
ARRAYS = ["'[0:1]={7,8}'", "'[-1:0]={1,2}'", "'{1,2}'", "NULL", "'{}'"]
PLAIN_ARRAYS = ["'{1,2}'", "NULL", "'{}'", "'{NULL,3}'", "'[1:2]={5,6}'"]

PASSTHROUGH = {"force": "force", "off": "off"}  # RIVET_CSV_PASSTHROUGH: server-formatted CSV, or the Arrow path


@dataclasses.dataclass
class Outcome:
    dest: Dest
    summaries: dict[str, dict[str, Any]]
    tables: dict[str, Table]


def _load(load: Callable[..., Table], name: str, col: Col, literals: Sequence[str], clean: str | None = None) -> Table:
    table = load(name, [RID, col], [])
    values = [f"({i}, {v})" for i, v in enumerate(literals, start=1)]
    if clean is not None:  # clean rows first, then the listed ones
        values = [f"({i}, {clean})" for i in range(1, CLEAN + 1)]
        values += [f"({CLEAN + i}, {v})" for i, v in enumerate(literals, start=1)]
    execute(table.server, table.database, f"INSERT INTO {table.name} VALUES {', '.join(values)}")
    return table


def _run(
    engine: str, tables: dict[str, Table], exports: list[dict[str, Any]], dest: Dest, tmp: Path
) -> dict[str, dict[str, Any]]:
    table = next(iter(tables.values()))
    cfg = config(tmp / "rivet.yaml", table, exports, batch_size=250)
    res = cli(table, dest, "run", "-c", str(cfg), timeout=600)
    try:
        summaries = {s["export_name"]: s for s in res.json["exports"]}
    except (ValueError, KeyError):
        raise AssertionError(f"rivet run printed no summary (exit {res.code}):\n{res.output[-4000:]}") from None
    assert set(summaries) == {e["name"] for e in exports}, res.output[-3000:]
    return summaries


def _pg_exports(tables: dict[str, Table], dest: Dest, mode: str) -> list[dict[str, Any]]:
    def e(name: str, table: str, fmt: str, **columns: str) -> dict[str, Any]:
        extra = {"columns": columns} if columns else {}
        return export_entry(f"{mode}_{name}", tables[table], dest, fmt, **extra)

    return [
        e("num_csv", "num", "csv"),
        e("num_parquet", "num", "parquet"),
        e("num_string_parquet", "num", "parquet", amount="string"),
        e("num_string_csv", "num", "csv", amount="string"),
        e("fit_dec_parquet", "fit", "parquet", amount="decimal(38,10)"),
        e("fit_dec_csv", "fit", "csv", amount="decimal(38,10)"),
        e("scale_dec_parquet", "scale", "parquet", amount="decimal(38,10)"),
        e("wide_dec_parquet", "wide", "parquet", amount="decimal(38,10)"),
        e("nan_dec_parquet", "nan", "parquet", amount="decimal(38,10)"),
        e("inf_dec_csv", "inf", "csv", amount="decimal(38,10)"),
        e("time_csv", "tm", "csv"),
        e("time_parquet", "tm_late", "parquet"),
        e("time_string_parquet", "tm", "parquet", t="string"),
        e("arr_parquet", "arr", "parquet"),
        e("arr_csv", "arr", "csv"),
        e("arr_string_parquet", "arr", "parquet", xs="string"),
        e("arr_string_csv", "arr", "csv", xs="string"),
        e("plain_arr_parquet", "plain_arr", "parquet"),
        e("plain_arr_csv", "plain_arr", "csv"),
        e("unknown_column", "num", "csv", nope="string"),
        {  # a query export has no primary key: the refused row is named by its position in the part
            "name": f"{mode}_query_dec_parquet",
            "query": f"SELECT rid, amount FROM {tables['scale'].name} ORDER BY rid",
            "mode": "full",
            "format": "parquet",
            "destination": dest.yaml(),
            "columns": {"amount": "decimal(38,10)"},
        },
    ]


@pytest.fixture(scope="module")
def pg_outcome(
    request: pytest.FixtureRequest, make_dest: Callable[[str], Dest], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    load = loader_for(request, "postgres")
    num = Col("amount", "numeric", TEXT)
    tables = {
        "num": _load(load, "num", num, NUMERIC_VALUES),
        "fit": _load(load, "fit", num, FITTING),
        "scale": _load(load, "scale", num, ["0.00000000001"], clean="1.25"),
        "wide": _load(load, "wide", num, ["1234567890123456789012345678901234567890"], clean="-3"),
        "nan": _load(load, "nan", num, ["NULL", "'NaN'"], clean="0.5"),
        "inf": _load(load, "inf", num, ["'-Infinity'"], clean="7"),
        "tm": _load(load, "tm", Col("t", "time", TEXT), TIMES),
        "tm_late": _load(load, "tm_late", Col("t", "time", TEXT), ["'24:00:00'"], clean="'01:02:03'"),
        "arr": _load(load, "arr", Col("xs", "int[]", TEXT), ARRAYS),
        "plain_arr": _load(load, "plain_arr", Col("xs", "int[]", pa.list_(pa.int32())), PLAIN_ARRAYS),
    }
    out = {}
    for mode, env in PASSTHROUGH.items():
        base = make_dest("local")
        dest = dataclasses.replace(base, env={**base.env, "RIVET_CSV_PASSTHROUGH": env})
        summaries = _run("postgres", tables, _pg_exports(tables, dest, mode), dest, tmp_path_factory.mktemp(mode))
        out[mode] = Outcome(dest, summaries, tables)
    return out


def _exported(outcome: Outcome, name: str, columns: list[Col], fmt: str) -> list[tuple[Any, ...]]:
    summary = outcome.summaries[name]
    assert summary["status"] == "success", f"{name}: {summary.get('error')}"
    prefix = f"cx/{name}/{summary['run_id']}/"
    return read_export(outcome.dest, prefix, columns, fmt).rows


_ARROW_SPELLING = re.compile(
    r"extension<|decimal128|decimal256|time64|timestamp\[|date32|\bbool\b|\butf8\b|int32|int64"
)


def _refused(outcome: Outcome, name: str, *phrases: str) -> str:
    summary = outcome.summaries[name]
    left = outcome.dest.keys(f"cx/{name}/")
    assert summary["status"] == "failed", f"{name} was exported instead of refused ({summary.get('rows')} rows)"
    assert left == [], f"{name}: a refused export left objects behind (certified or not): {left[:10]}"
    error = str(summary.get("error") or "")
    for phrase in phrases:
        assert phrase in error, f"{name}: the error should say {phrase!r}: {error}"
    assert not _ARROW_SPELLING.search(error), f"{name}: the error speaks Arrow's type names: {error}"
    return error


def _text_reference(table: Table, col: str) -> list[tuple[Any, ...]]:
    rows = reference_fetch(table.server, table.database, f'SELECT rid, "{col}"::text FROM {table.name}')
    return canon_rows(rows, [RID, Col(col, "", TEXT)])


MODES = list(PASSTHROUGH)


# --- unconstrained numeric ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_unconstrained_numeric_csv_is_the_database_text(pg_outcome: dict[str, Outcome], mode: str) -> None:
    outcome = pg_outcome[mode]
    expected = _text_reference(outcome.tables["num"], "amount")
    assert ("NaN" in {r[1] for r in expected}) and any(r[1] and len(r[1]) > 45 for r in expected)
    for name in ("num_csv", "num_string_csv"):
        got = _exported(outcome, f"{mode}_{name}", [RID, Col("amount", "", TEXT)], "csv")
        assert_same_rows(expected, got, ["rid", "amount"], name)


@pytest.mark.parametrize("mode", MODES)
def test_unconstrained_numeric_parquet_needs_an_override(pg_outcome: dict[str, Outcome], mode: str) -> None:
    outcome = pg_outcome[mode]
    _refused(
        outcome,
        f"{mode}_num_parquet",
        'column "amount" has type numeric without precision and scale',
        "columns: {amount: string}",
        'columns: {amount: "decimal(38,10)"}',
    )
    expected = _text_reference(outcome.tables["num"], "amount")
    got = _exported(outcome, f"{mode}_num_string_parquet", [RID, Col("amount", "", TEXT)], "parquet")
    assert_same_rows(expected, got, ["rid", "amount"], "string override")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("mode", MODES)
def test_decimal_override_is_exact_where_it_fits(pg_outcome: dict[str, Outcome], mode: str, fmt: str) -> None:
    outcome = pg_outcome[mode]
    table = outcome.tables["fit"]
    rows = reference_fetch(table.server, table.database, f"SELECT rid, amount FROM {table.name}")
    expected = canon_rows(rows, [RID, Col("amount", "", DEC)])
    got = _exported(outcome, f"{mode}_fit_dec_{fmt}", [RID, Col("amount", "", DEC)], fmt)
    assert_same_rows(expected, got, ["rid", "amount"], "decimal(38,10) override")
    assert Decimal("123456789012345678.0123456789") in {r[1] for r in got}


@pytest.mark.parametrize("mode", MODES)
def test_decimal_override_refuses_what_does_not_fit_naming_the_key(pg_outcome: dict[str, Outcome], mode: str) -> None:
    outcome = pg_outcome[mode]
    _refused(
        outcome,
        f"{mode}_scale_dec_parquet",
        f'column "amount" (numeric) holds 0.00000000001 in the row with rid = {CLEAN + 1}',
        "it has 11 digits after the point and the scale is 10",
        "Nothing is rounded",
    )
    _refused(
        outcome,
        f"{mode}_wide_dec_parquet",
        f"holds 1234567890123456789012345678901234567890 in the row with rid = {CLEAN + 1}",
        "it has 40 digits before the point and decimal(38,10) holds 28",
    )
    _refused(outcome, f"{mode}_nan_dec_parquet", f"holds NaN in the row with rid = {CLEAN + 2}", "no NaN or infinity")
    _refused(outcome, f"{mode}_inf_dec_csv", f"holds -Infinity in the row with rid = {CLEAN + 1}")
    _refused(outcome, f"{mode}_query_dec_parquet", f"holds 0.00000000001 in row {CLEAN + 1} of the part")


@pytest.mark.parametrize("mode", MODES)
def test_override_of_a_column_the_result_lacks_is_refused(pg_outcome: dict[str, Outcome], mode: str) -> None:
    _refused(pg_outcome[mode], f"{mode}_unknown_column", "columns.nope", "no column 'nope'")


# --- time 24:00:00 --------------------------------------------------------------------------------

_TIME = re.compile(r"(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?")


def _time_key(text: str | None) -> tuple[int, int, int, int] | None:
    """A time's text (`24:00:00`, `23:59:59.999999`, `12:34:56.789000`) as (h, m, s, us), spelling aside."""
    if text is None:
        return None
    match = _TIME.fullmatch(text)
    assert match, f"not a time of day: {text!r}"
    return (int(match[1]), int(match[2]), int(match[3]), int((match[4] or "0").ljust(6, "0")))


@pytest.mark.parametrize("mode", MODES)
def test_time_24_00_is_exact_in_csv_and_refused_in_parquet(pg_outcome: dict[str, Outcome], mode: str) -> None:
    outcome = pg_outcome[mode]
    table = outcome.tables["tm"]
    expected = [(r[0], _time_key(r[1])) for r in _text_reference(table, "t")]
    assert (24, 0, 0, 0) in {r[1] for r in expected}
    got = _exported(outcome, f"{mode}_time_csv", [RID, Col("t", "", TEXT)], "csv")
    assert all("out of range" not in (r[1] or "") for r in got), got
    assert_same_rows(expected, [(r[0], _time_key(r[1])) for r in got], ["rid", "t"], "time CSV")
    _refused(
        outcome,
        f"{mode}_time_parquet",
        'column "t" (time without time zone) holds 24:00:00',
        "columns: {t: string}",
        '"t"::text',
    )
    text = _exported(outcome, f"{mode}_time_string_parquet", [RID, Col("t", "", TEXT)], "parquet")
    assert_same_rows(_text_reference(table, "t"), text, ["rid", "t"], "time string override")


# --- arrays not based at 1 ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_arrays_not_based_at_one_are_refused_or_exact_text(pg_outcome: dict[str, Outcome], mode: str) -> None:
    outcome = pg_outcome[mode]
    for fmt in ("parquet", "csv"):
        _refused(outcome, f"{mode}_arr_{fmt}", 'column "xs" holds an array whose subscripts do not start at 1')
        expected = _text_reference(outcome.tables["arr"], "xs")
        assert (1, "[0:1]={7,8}") in expected and (2, "[-1:0]={1,2}") in expected
        got = _exported(outcome, f"{mode}_arr_string_{fmt}", [RID, Col("xs", "", TEXT)], fmt)
        assert_same_rows(expected, got, ["rid", "xs"], f"array string override {fmt}")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("mode", MODES)
def test_default_bound_arrays_are_unchanged(pg_outcome: dict[str, Outcome], mode: str, fmt: str) -> None:
    outcome = pg_outcome[mode]
    table = outcome.tables["plain_arr"]
    got = _exported(outcome, f"{mode}_plain_arr_{fmt}", table.columns, fmt)
    assert_same_rows(table.rows(), got, table.names, "default-bound arrays")


# --- MariaDB ----------------------------------------------------------------------------------------


def test_mariadb_decimal_overrides(
    request: pytest.FixtureRequest, make_dest: Callable[[str], Dest], tmp_path: Path
) -> None:
    load = loader_for(request, "mysql")
    wide = Col("d", "decimal(65,30)", TEXT)
    values = ["NULL", "0", "-1.5", "12345678901234567890123456789012345.123456789012345678901234567890"]
    fits = _load(load, "dfit", wide, ["NULL", "0", "-1.5", "-0.0000000001", "123456789012345678.0123456789"])
    table = _load(load, "dwide", wide, values)
    misfit = _load(load, "dmisfit", wide, ["0.00000000001"], clean="2.5")
    hours = _load(load, "hours", Col("t", "time(6)", TEXT), ["'838:59:59'", "'-00:00:01.5'", "'12:00:00'", "NULL"])
    dest = make_dest("local")
    exports = [
        export_entry("my_string", table, dest, "parquet", columns={"d": "string"}),
        export_entry("my_string_csv", table, dest, "csv", columns={"d": "string"}),
        export_entry("my_fit", fits, dest, "parquet", columns={"d": "decimal(38,10)"}),
        export_entry("my_misfit", misfit, dest, "parquet", columns={"d": "decimal(38,10)"}),
        export_entry("my_int_decimal", table, dest, "parquet", columns={"rid": "decimal(10,0)"}),
        export_entry("my_hours", hours, dest, "csv"),
        export_entry("my_hours_string", hours, dest, "parquet", columns={"t": "string"}),
    ]
    summaries = _run("mysql", {"t": table}, exports, dest, tmp_path)
    outcome = Outcome(dest, summaries, {})
    as_text = reference_fetch(table.server, table.database, f"SELECT rid, CAST(d AS CHAR) FROM {table.name}")
    expected = canon_rows(as_text, [RID, Col("d", "", TEXT)])
    for name, fmt in (("my_string", "parquet"), ("my_string_csv", "csv")):
        assert_same_rows(expected, _exported(outcome, name, [RID, Col("d", "", TEXT)], fmt), ["rid", "d"], name)
    ref = reference_fetch(fits.server, fits.database, f"SELECT rid, d FROM {fits.name}")
    got = _exported(outcome, "my_fit", [RID, Col("d", "", DEC)], "parquet")
    assert_same_rows(canon_rows(ref, [RID, Col("d", "", DEC)]), got, ["rid", "d"], "my_fit")
    _refused(
        outcome,
        "my_misfit",
        f'column "d" (decimal(65,30)) holds 0.000000000010000000000000000000 in the row with rid = {CLEAN + 1}',
        "it has 11 digits after the point and the scale is 10",
    )
    _refused(outcome, "my_int_decimal", 'column "rid" has type int: a decimal override applies to decimal columns only')
    _refused(outcome, "my_hours", 'column "t" holds a TIME value outside 00:00:00..23:59:59', "columns: {t: string}")
    ref = reference_fetch(hours.server, hours.database, f"SELECT rid, CAST(t AS CHAR) FROM {hours.name}")
    got = _exported(outcome, "my_hours_string", [RID, Col("t", "", TEXT)], "parquet")
    assert_same_rows(canon_rows(ref, [RID, Col("t", "", TEXT)]), got, ["rid", "t"], "my_hours_string")
    assert (1, "838:59:59.000000") in got


# --- a run planned under one set of overrides is not continued under another -------------------------


def test_chunk_with_other_overrides_than_planned_is_refused(
    pg_outcome: dict[str, Outcome], make_dest: Callable[[str], Dest], tmp_path: Path
) -> None:
    """`rivet plan` under `amount: string`, then `rivet chunk` with `decimal(38,10)`: the schema fingerprint
    the plan recorded differs, so the chunk is refused (SchemaChanged) before writing anything."""
    table = pg_outcome["off"].tables["fit"]
    dest = make_dest("local")

    def cfg(columns: dict[str, str], name: str) -> Path:
        exp = export_entry("ov", table, dest, "parquet", mode="chunked", chunk_column="rid", chunk_count=2)
        return config(tmp_path / name, table, [{**exp, "columns": columns}])

    planned = cli(table, dest, "plan", "-c", str(cfg({"amount": "string"}, "a.yaml")), "-e", "ov", "--run-id", "r1")
    assert planned.code == 0, planned.output[-3000:]
    plan = planned.stdout.strip()
    same = cli(
        table,
        dest,
        "chunk",
        "-c",
        str(cfg({"amount": "string"}, "b.yaml")),
        "-e",
        "ov",
        "--run-id",
        "r1",
        "--chunk",
        "1",
        "--plan",
        plan,
    )
    assert same.code == 0, same.output[-3000:]
    other = cfg({"amount": "decimal(38,10)"}, "c.yaml")
    changed = cli(table, dest, "chunk", "-c", str(other), "-e", "ov", "--run-id", "r1", "--chunk", "2", "--plan", plan)
    assert changed.code == 5 and '"reason":"SchemaChanged"' in changed.stdout, changed.output[-3000:]
    assert not [k for k in dest.keys("cx/ov/r1/") if "part-000002" in k], dest.keys("cx/ov/r1/")
