"""Row selection without a database server: the chunk predicates partition every row, values are bound
(never spliced), key kinds come from column types, cursors keep their types. SQLite evaluates the
predicates here (it binds `?` like the drivers bind `%s`); the real engines are in tests/correctness."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sqlite3

import pyarrow as pa
import pytest

from rivet.config.loader import load_config_text
from rivet.config.model import ExportConfig, SourceType
from rivet.contract import values
from rivet.contract.keys import KeyKind, keyset_kind_of, kind_of, unit_of, value_at
from rivet.contract.plan import MAX_BOUNDARY_BYTES, PLAN_DOCUMENT_LIMIT, Plan, boundary_bytes, plan_changes
from rivet.engine.planning import check_size, plan_for
from rivet.errors import ConfigError
from rivet.sources.query import Query, Untyped, dollar_quoted, mysql_literal, postgres_literal, q
from rivet.sources.sql import chunk_kind, chunk_predicate, incremental_predicate, time_window_predicate

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


# --- keyset plans -------------------------------------------------------------------------------------


def test_keyset_plan_arithmetic_and_round_trip() -> None:
    """uuid/text/binary keys plan a keyset: n boundaries, n+1 chunks, open ends, typed values, fingerprinted."""
    exp = _exp("mode: chunked, chunk_column: k, chunk_size: 10")
    bounds = (values.encode("b"), values.encode("a'; DROP"), values.encode(b"\x00\xff"))
    plan = plan_for(SourceType.POSTGRES, exp, None, None, KeyKind.TEXT, bounds)
    assert plan.keyset and plan.chunk_count == 4 and plan.lo is None and plan.hi is None
    chunks = list(plan.chunks())
    assert [(c.lower, c.upper) for c in chunks] == [
        (None, "b"),
        ("b", "a'; DROP"),
        ("a'; DROP", b"\x00\xff"),
        (b"\x00\xff", None),
    ]
    assert chunks[0].key_range == [None, "b"] and chunks[3].key_range == ["AP8=", None]
    doc = json.loads(json.dumps(plan.recorded()))
    assert (
        doc["keyset"] is True
        and doc["key_kind"] == "text"
        and doc["boundaries"][2] == {"$type": "bytes", "value": "AP8="}
    )
    again = Plan.from_recorded("postgres", "t", doc)
    assert again == plan and again.fingerprint == plan.fingerprint
    assert plan_changes(plan, plan_for(SourceType.POSTGRES, exp, None, None, KeyKind.TEXT, again.boundaries)) == []
    edited = Plan.from_recorded("postgres", "t", {**doc, "boundaries": ["c"]})
    assert edited.fingerprint != plan.fingerprint  # an edited plan document is refused by its fingerprint


def test_integer_plans_keep_their_bytes_and_chunk_by_key_forces_keyset() -> None:
    exp = _exp(CHUNKED)
    ranged = plan_for(SourceType.POSTGRES, exp, 1, 250, KeyKind.INT)
    assert "keyset" not in ranged.to_dict() and "boundaries" not in ranged.to_dict() and ranged.chunk_count == 3
    forced = plan_for(SourceType.POSTGRES, _exp(CHUNKED + ", chunk_by_key: true"), None, None, KeyKind.INT, (100, 200))
    assert forced.keyset and forced.key_kind == "int" and forced.chunk_count == 3
    assert any(c.startswith("keyset") for c in plan_changes(ranged, forced)), "switching to keyset is a plan change"


def test_keyset_predicates_partition_rows_and_bind_untyped_text() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT)")
    keys = ["", " ", "a", "a", "b", "c'", "d", None, None, "zz"]
    db.executemany("INSERT INTO t (k) VALUES (?)", [(k,) for k in keys])
    bounds = tuple(values.encode(v) for v in ["a", "c'", "zz"])
    plan = plan_for(SourceType.POSTGRES, _exp(), None, None, KeyKind.TEXT, bounds)
    seen: list[int] = []
    for chunk in plan.chunks():
        predicate = chunk_predicate(SourceType.POSTGRES, "k", chunk)
        assert predicate is not None and all(isinstance(p, Untyped) for p in predicate.params)
        text, params = predicate.pyformat()
        assert all(isinstance(p, str) for p in params), "psycopg gets plain str: sent untyped"
        assert "c'" not in text and ("$rivet$c'$rivet$" in predicate.inline(postgres_literal)) == (
            "c'" in (chunk.lower, chunk.upper)
        )
        seen += _select(db, Query(predicate.fragments, tuple(p.text for p in predicate.params)))
    assert sorted(seen) == list(range(1, len(keys) + 1))


@pytest.mark.parametrize("value", [*HOSTILE, "$rivet$", "x$rivet", "$", "$rivet_x$ $rivet$"])
def test_dollar_quoted_literals_cannot_end_early(value: str) -> None:
    literal = dollar_quoted(value)
    tag = literal[: literal.index("$", 1) + 1]
    assert literal.endswith(tag) and literal[len(tag) : -len(tag)] == value
    assert (value + tag).find(tag) == len(value), "the closing tag first appears after the value"


def test_keyset_kinds_and_refusal_message() -> None:
    assert keyset_kind_of(pa.uuid()) is KeyKind.UUID and keyset_kind_of(pa.string()) is KeyKind.TEXT
    assert keyset_kind_of(pa.binary()) is KeyKind.BINARY and keyset_kind_of(pa.json_(pa.string())) is None
    schema = pa.schema([("j", pa.json_(pa.string())), ("f", pa.float64()), ("u", pa.uuid()), ("i", pa.int64())])
    assert chunk_kind(schema, "u", "exports[0].chunk_column", False) == (KeyKind.UUID, True)
    assert chunk_kind(schema, "i", "exports[0].chunk_column", False) == (KeyKind.INT, False)
    assert chunk_kind(schema, "i", "exports[0].chunk_column", True) == (KeyKind.INT, True)
    for col in ("j", "f"):
        with pytest.raises(ConfigError) as err:
            chunk_kind(schema, col, "exports[0].chunk_column", False)
        text = str(err.value)
        assert "exports[0].chunk_column" in text and repr(col) in text and "uuid, text or binary" in text
        assert "mode: full" in text


def test_too_many_keyset_boundaries_are_refused_with_a_count_that_fits() -> None:
    exp = _exp("mode: chunked, chunk_column: k, chunk_size: 1000")
    uuids = tuple(f"{i:08x}-0000-4000-8000-000000000000" for i in range(200))
    plan = plan_for(SourceType.POSTGRES, exp, None, None, KeyKind.UUID, uuids)
    assert boundary_bytes(uuids) > MAX_BOUNDARY_BYTES
    with pytest.raises(ConfigError) as err:
        check_size(plan, exp, 1000)
    text = str(err.value)
    assert "exports[0].chunk_size" in text and "4 KiB" in text and "201 keyset chunks" in text
    fits = int(text.split("chunk_count: ")[1].split()[0])
    assert boundary_bytes(uuids[: fits - 1]) <= MAX_BOUNDARY_BYTES < boundary_bytes(uuids[: fits + 2])
    check_size(plan_for(SourceType.POSTGRES, exp, None, None, KeyKind.UUID, uuids[: fits - 1]), exp, 1000)


def test_a_plan_document_at_the_boundary_budget_fits_the_termination_message() -> None:
    """The worst case `rivet plan` prints: the budget's boundaries plus every other field at a generous size."""
    exp = _exp("mode: chunked, chunk_column: k, chunk_size: 1000")
    bounds: list[str] = []
    while boundary_bytes([*bounds, "😀" * 4]) <= MAX_BOUNDARY_BYTES:
        bounds.append("😀" * 4)  # ASCII escapes: the costliest characters per byte of budget
    plan = plan_for(SourceType.POSTGRES, exp, None, None, KeyKind.TEXT, tuple(bounds))
    doc = {
        "export": "e" * 63,
        "run_id": "r" * 80,
        "resolved_prefix": "s3://" + "p" * 200 + "/",
        "mode": "chunked",
        "chunk_column": "k" * 63,
        "lo": None,
        "hi": None,
        "key_range": None,
        "chunk_size": 1000,
        "chunk_count": plan.chunk_count,
        "row_estimate": 10**12,
        "plan_fingerprint": plan.fingerprint,
        "schema_fingerprint": plan.fingerprint,
        "plan": {**plan.recorded(), "chunk_column": "k" * 63},
    }
    assert len(json.dumps(doc, separators=(",", ":"))) <= PLAN_DOCUMENT_LIMIT < 4096
