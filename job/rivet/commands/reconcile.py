"""`rivet reconcile`: recount the source per chunk and as a whole, and compare with the manifest. Never writes.

The per-chunk predicates are the export's own, and they partition every row (NULL keys and keys beyond
the planned bounds included); the whole-source count catches anything else, such as rows added since.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from rivet.config.model import ExportConfig, Mode, RivetConfig, SourceType
from rivet.contract.manifest import MANIFEST_KEY
from rivet.contract.plan import Plan
from rivet.destinations.base import Destination
from rivet.engine.context import RunContext
from rivet.errors import ContractError, RivetError
from rivet.sources.base import Source
from rivet.sources.query import Query
from rivet.sources.sql import select_all


def read_manifest(dest: Destination) -> dict[str, Any]:
    raw = dest.get_bytes(MANIFEST_KEY)
    if raw is None:
        raise ContractError(f"no manifest.json at {dest.uri()}: nothing to compare (check --date/--run-id/--prefix)")
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ContractError(f"manifest.json at {dest.uri()} is not valid JSON; run rivet validate") from None
    if not isinstance(doc, dict):
        raise ContractError(f"manifest.json at {dest.uri()} is not a JSON object; run rivet validate")
    return doc


def manifest_plan(doc: dict[str, Any], engine: SourceType, exp: ExportConfig) -> Plan | None:
    """The run's chunk plan as recorded in the manifest, rebuilt with today's definition."""
    recorded = doc.get("plan")
    if not isinstance(recorded, dict):
        return None
    try:
        return Plan.from_recorded(engine.value, exp.table or (exp.query or "").strip(), recorded)
    except TypeError:
        return None


def manifest_context(cfg: RivetConfig, exp: ExportConfig, source: Source, doc: dict[str, Any]) -> RunContext | None:
    """The context of the run a manifest certifies, or None when today's definition no longer matches it."""
    plan = manifest_plan(doc, source.engine, exp)
    if plan is None or doc.get("plan_fingerprint") not in (None, plan.fingerprint):
        return None
    run_date = dt.date.fromisoformat(doc["run_date"]) if doc.get("run_date") else dt.datetime.now(dt.UTC).date()
    schema = source.describe(select_all(source.engine, exp))
    return RunContext(cfg, exp, str(doc.get("run_id")), run_date, plan, schema)


def _count(source: Source, query: Query) -> int:
    return int(source.scalar(query.wrap("SELECT COUNT(*) FROM (\n", "\n) AS rivet_c")))


def _compare(source: Source, query: Query, recorded: int) -> dict[str, Any]:
    try:
        actual = _count(source, query)
    except RivetError as exc:
        return {"recorded_rows": recorded, "source_rows": None, "status": "unknown", "error": exc.message}
    return {"recorded_rows": recorded, "source_rows": actual, "status": "match" if actual == recorded else "mismatch"}


def reconcile(cfg: RivetConfig, source: Source, exp: ExportConfig, dest: Destination) -> dict[str, Any]:
    doc = read_manifest(dest)
    parts = {
        int(p.get("chunk_index", p.get("part_id"))): p for p in doc.get("parts", []) if p.get("status") == "committed"
    }
    ctx = manifest_context(cfg, exp, source, doc)
    note = None
    results: list[dict[str, Any]] = []
    total: dict[str, Any] | None = None
    if ctx is None:
        note = "the export definition changed since this run: counts cannot be compared"
    elif exp.mode is Mode.INCREMENTAL:
        note = "incremental runs export what changed since the last run: counts cannot be replayed"
    else:
        for chunk in ctx.plan.chunks():
            recorded = int(parts[chunk.index]["rows"]) if chunk.index in parts else 0
            results.append(
                {"chunk": chunk.index, "key_range": chunk.key_range, **_compare(source, ctx.query(chunk), recorded)}
            )
        if exp.mode in (Mode.FULL, Mode.CHUNKED):
            total = _compare(source, select_all(source.engine, exp), int(doc.get("row_count") or 0))
    tally = {s: sum(1 for r in results if r["status"] == s) for s in ("match", "mismatch", "unknown")}
    if total is not None:
        tally[total["status"]] += 1
    if not results:
        tally["unknown"] = 1
    return {
        "export_name": exp.name,
        "resolved_prefix": dest.uri(),
        "run_id": doc.get("run_id"),
        "mode": exp.mode.value,
        **tally,
        "passed": tally["mismatch"] == 0,
        "note": note,
        "total": total,
        "chunks": results,
    }
