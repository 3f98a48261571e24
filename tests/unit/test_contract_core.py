"""Pure contract pieces: fingerprints, prefixes, plans, manifests, resume decisions, SQL text."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest
import xxhash

from rivet.config import load_config_text
from rivet.config.model import SourceType
from rivet.contract.fingerprint import canonical_type, fingerprint_bytes, schema_fingerprint
from rivet.contract.manifest import (
    CommitRecord,
    RunInfo,
    build_manifest,
    parse_success,
    part_key,
    self_inconsistencies,
    success_body,
)
from rivet.contract.objects import ObjectInfo
from rivet.contract.plan import Plan, format_ranges, parse_ranges, plan_changes
from rivet.contract.prefix import resolve_prefix
from rivet.contract.resume import Decision, decide
from rivet.engine.planning import plan_for
from rivet.errors import ConfigError
from rivet.sources.sql import chunk_query, quote_name


def test_fingerprint_is_xxh3_64_of_exact_bytes() -> None:
    assert fingerprint_bytes(b"abc") == "xxh3:" + format(xxhash.xxh3_64_intdigest(b"abc"), "016x")


def test_canonical_type_strings_follow_rivet_08() -> None:
    assert canonical_type(pa.timestamp("us", tz="UTC")) == 'Timestamp(Microsecond, Some("UTC"))'
    assert canonical_type(pa.timestamp("us")) == "Timestamp(Microsecond, None)"
    assert canonical_type(pa.decimal128(12, 2)) == "Decimal128(12, 2)"
    assert canonical_type(pa.decimal256(50, 4)) == "Decimal256(50, 4)"
    assert canonical_type(pa.time64("us")) == "Time64(Microsecond)"
    assert canonical_type(pa.uuid()) == "FixedSizeBinary(16)"
    assert canonical_type(pa.json_(pa.string())) == "Utf8"
    assert canonical_type(pa.uint64()) == "UInt64"


def test_schema_fingerprint_sorts_columns_by_name() -> None:
    a = pa.schema([("b", pa.int64()), ("a", pa.string())])
    b = pa.schema([("a", pa.string()), ("b", pa.int64())])
    assert schema_fingerprint(a) == schema_fingerprint(b) == fingerprint_bytes(b"a\tUtf8\nb\tInt64\n")


def test_prefix_resolves_every_placeholder() -> None:
    out = resolve_prefix("x/{date}/{export}/{table}/{run_id}/", export="o", date=dt.date(2026, 11, 22), run_id="r1")
    assert out == "x/2026-11-22/o/o/r1/"


def test_prefix_refuses_unknown_placeholder() -> None:
    with pytest.raises(ConfigError, match=r"unknown placeholder \{nope\}"):
        resolve_prefix("{nope}/", export="o", date=dt.date(2026, 1, 1), run_id="r")


def test_chunk_plan_covers_the_range_exactly_once() -> None:
    plan = Plan("postgres", "t", "chunked", "parquet", "zstd", "id", lo=-5, hi=96, chunk_size=10)
    chunks = list(plan.chunks())
    assert plan.chunk_count == 11 and chunks[0].lo == -5 and chunks[-1].hi == 96
    covered = [k for c in chunks for k in range(c.lo or 0, (c.hi or 0) + 1)]
    assert covered == list(range(-5, 97))


def test_chunk_count_derives_the_size() -> None:
    cfg = load_config_text(
        """
source: {type: postgres, url: "postgresql://u@h/d"}
exports:
  - {name: e, table: t, mode: chunked, chunk_column: id, chunk_count: 4, destination: {type: local, path: /tmp/x}}
"""
    )
    plan = plan_for(SourceType.POSTGRES, cfg.exports[0], 1, 10)
    assert plan.chunk_size == 3 and plan.chunk_count == 4


def test_a_source_without_keys_is_one_chunk_holding_every_row() -> None:
    plan = Plan("postgres", "t", "chunked", "parquet", "zstd", "id", None, None, 10)
    assert plan.chunk_count == 1 and plan.chunk(1).lo is None


def test_plan_changes_name_the_field_and_ignore_bounds() -> None:
    a = Plan("postgres", "t", "chunked", "parquet", "zstd", "id", 1, 100, 10)
    b = Plan("postgres", "t", "chunked", "parquet", "zstd", "id", 1, 200, 20)
    assert plan_changes(a, b) == ["chunk_size: 10 -> 20"]
    assert plan_changes(a, Plan("postgres", "t", "chunked", "parquet", "zstd", "id", 1, 500, 10)) == []


def test_range_strings_round_trip() -> None:
    assert format_ranges([5, 1, 2, 3, 7, 8]) == "1-3,5,7-8"
    assert parse_ranges("1-3,5,7-8") == [1, 2, 3, 5, 7, 8]


def _rec(chunk: int, rows: int = 10, size: int = 100, md5: str = "bWQ1") -> CommitRecord:
    return CommitRecord(chunk, part_key(chunk, "parquet"), rows, size, fingerprint_bytes(b"x"), md5, "xxh3:0", [1, 2])


def test_manifest_bytes_follow_the_contract() -> None:
    info = RunInfo(
        "r1",
        "orders",
        "2026-11-22T00:00:00Z",
        "2026-11-22T00:01:00Z",
        "success",
        "postgres",
        "public",
        "orders",
        "s3",
        "s3://b/p/",
        "parquet",
        "zstd",
        "rivet-operator 0.1.0",
    )
    empty = CommitRecord(2, None, 0, 0, "", "", "xxh3:0", [11, 20])
    raw = build_manifest(info, [_rec(3), empty, _rec(1)], "xxh3:0000000000000001")
    doc = json.loads(raw)
    assert list(doc)[:14] == [
        "manifest_version",
        "run_id",
        "export_name",
        "started_at",
        "finished_at",
        "status",
        "source",
        "destination",
        "format",
        "compression",
        "schema_fingerprint",
        "row_count",
        "part_count",
        "parts",
    ]
    assert [p["part_id"] for p in doc["parts"]] == [1, 3]  # empty chunk is not a part
    assert doc["row_count"] == 20 and doc["part_count"] == 2
    assert raw.startswith(b'{\n  "manifest_version": 1,')
    assert self_inconsistencies(doc) == []
    assert success_body(raw) == (fingerprint_bytes(raw) + "\n").encode()
    assert parse_success(success_body(raw)) == fingerprint_bytes(raw)


def test_self_inconsistency_is_detected() -> None:
    info = RunInfo("r", "e", "t", "t", "success", "postgres", None, "t", "local", "file:///x/", "csv", "none", "p")
    doc = json.loads(build_manifest(info, [_rec(1)], "xxh3:0"))
    doc["row_count"] = 11
    assert any("row_count" in p for p in self_inconsistencies(doc))


@pytest.mark.parametrize("body", [b"", b"xxh3:abc\n", b"xxh3:0123456789abcdef", b"md5:0123456789abcdef\n"])
def test_malformed_success_bodies(body: bytes) -> None:
    assert parse_success(body) is None


@pytest.mark.parametrize(
    ("record", "obj", "decision"),
    [
        (True, ObjectInfo("part-000001.parquet", 100, "bWQ1"), Decision.SKIP),
        (True, ObjectInfo("part-000001.parquet", 100, None), Decision.SKIP),
        (True, ObjectInfo("part-000001.parquet", 99, "bWQ1"), Decision.QUARANTINE_EXPORT),
        (True, ObjectInfo("part-000001.parquet", 100, "b3RoZXI="), Decision.QUARANTINE_EXPORT),
        (True, None, Decision.EXPORT),
        (False, ObjectInfo("part-000001.parquet", 100, None), Decision.QUARANTINE_EXPORT),
        (False, None, Decision.EXPORT),
    ],
)
def test_resume_decision_table(record: bool, obj: ObjectInfo | None, decision: Decision) -> None:
    assert decide(_rec(1) if record else None, obj) is decision


def test_sql_quotes_identifiers_per_dialect() -> None:
    assert quote_name(SourceType.POSTGRES, 'public.we"ird') == '"public"."we""ird"'
    assert quote_name(SourceType.MYSQL, "db.t`x") == "`db`.`t``x`"
    cfg = load_config_text(
        """
source: {type: mysql, url: "mysql://u@h/d"}
exports:
  - {name: e, query: "SELECT * FROM t;", mode: chunked, chunk_column: id, destination: {type: local, path: /x}}
"""
    )
    plan = plan_for(SourceType.MYSQL, cfg.exports[0], 1, 30)
    text, params = chunk_query(SourceType.MYSQL, cfg.exports[0], plan.chunk(1)).pyformat()
    assert text == "SELECT * FROM (\nSELECT * FROM t\n) AS rivet_q" and params == ()  # one chunk: every row
