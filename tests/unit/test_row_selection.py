"""Row selection without a database server: the chunk predicates partition every row, values are bound
(never spliced), key kinds come from column types, cursors keep their types. SQLite evaluates the
predicates here (it binds `?` like the drivers bind `%s`); the real engines are in tests/correctness."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3

import pyarrow as pa
import pytest

from rivet.config.loader import load_config_text
from rivet.config.model import ExportConfig, SourceType
from rivet.contract import values
from rivet.contract.keys import KeyKind, kind_of, unit_of, value_at
from rivet.contract.plan import Plan
from rivet.engine.planning import check_size, plan_for
from rivet.errors import ConfigError
from rivet.sources.query import Query, mysql_literal, postgres_literal, q
from rivet.sources.sql import chunk_predicate, incremental_predicate, time_window_predicate

HOSTILE = ["x' UNION SELECT * FROM secrets -- ", "a\\' OR 1=1 #", "back\\slash", "/* c */", "\x01\n\t", "😀𝄞", "%s %%"]


WINDOW = "mode: time_window, time_column: ts, days_window: 1"
CHUNKED = "mode: chunked, chunk_column: k, chunk_size: 100"


def _exp(fields: str = CHUNKED) -> ExportConfig:
    text = (
        "source: {type: postgres, url: 'postgresql://u@h/d'}\nexports:\n"
        f"  - {{name: e, table: t, {fields}, destination: {{type: local, path: /tmp/x}}}}\n"
    )
    return load_config_text(text).exports[0]


def _select(db: sqlite3.Connection, predicate: Query | None) -> list[int]:
    text = "SELECT id FROM t" + ("" if predicate is None else " WHERE " + "?".join(predicate.fragments))
    text = text.replace('"', "")  # SQLite takes bare identifiers here
    return [r[0] for r in db.execute(text, predicate.params if predicate else ())]


@pytest.mark.parametrize(
    ("keys", "lo", "hi"),
    [
        ([-99, -1, 0, 1, 99, 100, 101, 199, 200, 310], -99, 310),  # a chunk ends at 0 and at negatives
        ([0, 0, 0], 0, 0),
        ([5, 2**62, -(2**62)], -(2**62), 2**62),
    ],
)
def test_chunks_partition_every_row_including_null_and_out_of_range_keys(keys: list[int], lo: int, hi: int) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER)")
    rows = [*keys, None, None, lo - 1000, hi + 1000]  # NULL keys, and keys written after planning
    db.executemany("INSERT INTO t (k) VALUES (?)", [(k,) for k in rows])
    exp = _exp("mode: chunked, chunk_column: k, chunk_count: 7" if hi - lo > 10**6 else CHUNKED)
    plan = plan_for(SourceType.POSTGRES, exp, lo, hi, KeyKind.INT)
    seen: list[int] = []
    for chunk in plan.chunks():
        seen += _select(db, chunk_predicate(SourceType.POSTGRES, "k", chunk))
    assert sorted(seen) == list(range(1, len(rows) + 1)), "each row exactly once"


def test_a_plan_without_bounds_is_one_chunk_with_no_predicate() -> None:
    plan = plan_for(SourceType.MYSQL, _exp(), None, None, KeyKind.INT)
    assert plan.chunk_count == 1 and chunk_predicate(SourceType.MYSQL, "k", plan.chunk(1)) is None


def test_absurd_plans_are_refused_with_a_hint() -> None:
    plan = Plan("postgres", "t", "chunked", "parquet", "zstd", "k", 0, 9 * 10**18, 100_000)
    with pytest.raises(ConfigError, match=r"chunk_size.*chunk_count"):
        check_size(plan, _exp())


def test_day_chunks_bind_typed_midnights() -> None:
    lo = unit_of(KeyKind.TIMESTAMPTZ, dt.datetime(2026, 3, 8, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))))
    assert value_at(KeyKind.TIMESTAMPTZ, lo) == dt.datetime(2026, 3, 9, tzinfo=dt.UTC)  # the UTC day
    plan = plan_for(SourceType.POSTGRES, _exp(), lo, lo + 250, KeyKind.TIMESTAMPTZ)
    second = chunk_predicate(SourceType.POSTGRES, "k", plan.chunk(2))
    assert second is not None and second.params == (
        dt.datetime(2026, 6, 17, tzinfo=dt.UTC),
        dt.datetime(2026, 9, 25, tzinfo=dt.UTC),
    )
    assert plan.chunk(1).key_range == ["2026-03-09", "2026-06-16"]


@pytest.mark.parametrize(
    ("arrow_type", "kind"),
    [
        (pa.int16(), KeyKind.INT),
        (pa.uint64(), KeyKind.INT),
        (pa.decimal128(20, 0), KeyKind.INT),
        (pa.decimal128(12, 2), None),  # fractions: refused, whatever the values
        (pa.float64(), None),
        (pa.string(), None),
        (pa.date32(), KeyKind.DATE),
        (pa.timestamp("us"), KeyKind.TIMESTAMP),
        (pa.timestamp("us", tz="UTC"), KeyKind.TIMESTAMPTZ),
    ],
)
def test_key_kind_comes_from_the_type(arrow_type: pa.DataType, kind: KeyKind | None) -> None:
    assert kind_of(arrow_type) is kind


def test_time_window_edges_are_utc_days_typed_to_the_column() -> None:
    day = dt.date(2026, 11, 1)  # a DST change in America/New_York
    aware = time_window_predicate(SourceType.POSTGRES, _exp(WINDOW), day, KeyKind.TIMESTAMPTZ)
    assert aware.params == (dt.datetime(2026, 10, 31, tzinfo=dt.UTC), dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
    naive = time_window_predicate(SourceType.MYSQL, _exp(WINDOW), day, KeyKind.DATE)
    assert naive.params == (dt.date(2026, 10, 31), dt.date(2026, 11, 2))


def test_incremental_reads_from_the_boundary_value_bound_not_spliced() -> None:
    for value in HOSTILE:
        pred = incremental_predicate(SourceType.MYSQL, _exp("mode: incremental, cursor_column: c"), value)
        assert pred.params == (value,) and value not in "".join(pred.fragments)
        assert ">=" in pred.fragments[0]


@pytest.mark.parametrize("value", HOSTILE)
def test_literals_cannot_leave_their_quotes(value: str) -> None:
    for render in (mysql_literal, postgres_literal):
        text = render(value)
        inner = text.split("'")[1]
        assert set(inner) <= set("0123456789abcdef"), text  # hex only: no quote, backslash or comment
        assert text.replace(inner, "") in ("_utf8mb4 X''", "convert_from(decode('', 'hex'), 'UTF8')")


def test_typed_literals() -> None:
    assert mysql_literal(dt.datetime(1, 1, 1)) == "TIMESTAMP'0001-01-01 00:00:00.000000'"
    assert mysql_literal(dt.datetime(2026, 1, 1, 5, tzinfo=dt.timezone(dt.timedelta(hours=5)))) == (
        "TIMESTAMP'2026-01-01 00:00:00.000000'"
    )
    assert postgres_literal(dt.date(9999, 12, 31)) == "'9999-12-31'::date"
    assert postgres_literal(decimal.Decimal("-1.50")) == "-1.50::numeric"
    assert postgres_literal(-(2**63)) == str(-(2**63))
    with pytest.raises(ValueError):
        mysql_literal(float("nan"))


def test_pyformat_doubles_percent_only_when_binding() -> None:
    assert q("SELECT '%'").pyformat() == ("SELECT '%'", ())
    assert (q("x LIKE '%a' AND y = ").bind(1)).pyformat() == ("x LIKE '%%a' AND y = %s", (1,))


@pytest.mark.parametrize(
    "value",
    [5, "s", None, 1.5, dt.date(2026, 1, 2), dt.datetime(2026, 1, 2, 3, tzinfo=dt.UTC), decimal.Decimal("1.10")],
)
def test_cursor_values_keep_their_type(value: object) -> None:
    assert values.decode(values.encode(value)) == value
    assert type(values.decode(values.encode(value))) is type(value)
