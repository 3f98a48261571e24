"""`rivet reconcile`: recount the source per chunk key range and compare with the manifest. Never writes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from rivet.config.model import ExportConfig, Mode, SourceType
from rivet.contract.manifest import MANIFEST_KEY
from rivet.contract.plan import Chunk, Plan
from rivet.destinations.base import Destination
from rivet.errors import ContractError, RivetError
from rivet.sources.base import Source
from rivet.sql import chunk_sql, export_sql


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
    relation = exp.table or (exp.query or "").strip()
    try:
        return Plan(engine=engine.value, relation=relation, **recorded)
    except TypeError:
        return None


def count(source: Source, sql: str) -> int:
    return int(source.scalar(f"SELECT COUNT(*) FROM ({sql}) AS rivet_c"))


def reconcile(source: Source, exp: ExportConfig, dest: Destination) -> dict[str, Any]:
    doc = read_manifest(dest)
    parts = {
        int(p.get("chunk_index", p.get("part_id"))): p for p in doc.get("parts", []) if p.get("status") == "committed"
    }
    plan = manifest_plan(doc, source.engine, exp)
    run_date = dt.date.fromisoformat(doc["run_date"]) if doc.get("run_date") else None
    chunks: list[Chunk]
    note = None
    if plan is not None and doc.get("plan_fingerprint") not in (None, plan.fingerprint):
        note = "the export definition changed since this run: counts cannot be compared"
        chunks = []
    elif exp.mode is Mode.CHUNKED and plan is not None:
        chunks = list(plan.chunks())
    elif exp.mode is Mode.FULL or (exp.mode is Mode.TIME_WINDOW and run_date is not None):
        chunks = [Chunk(1, None, None)]
    else:
        note = f"mode {exp.mode.value} records no replayable range: counts cannot be compared"
        chunks = []
    results: list[dict[str, Any]] = []
    for chunk in chunks:
        recorded = int(parts[chunk.index]["rows"]) if chunk.index in parts else 0
        if chunk.lo is not None and chunk.hi is not None:
            sql = chunk_sql(source.engine, exp, chunk.lo, chunk.hi)
        else:
            sql = export_sql(source.engine, exp, run_date=run_date or dt.date.today(), cursor=None)
        error: str | None = None
        try:
            actual: int | None = count(source, sql)
        except RivetError as exc:
            actual, status, error = None, "unknown", exc.message
        else:
            status = "match" if actual == recorded else "mismatch"
        row: dict[str, Any] = {
            "chunk": chunk.index,
            "key_range": chunk.key_range,
            "recorded_rows": recorded,
            "source_rows": actual,
            "status": status,
        }
        if error:
            row["error"] = error
        results.append(row)
    tally = {s: sum(1 for r in results if r["status"] == s) for s in ("match", "mismatch", "unknown")}
    if not chunks:
        tally["unknown"] = 1
    return {
        "export_name": exp.name,
        "resolved_prefix": dest.uri(),
        "run_id": doc.get("run_id"),
        "mode": exp.mode.value,
        **tally,
        "passed": tally["mismatch"] == 0,
        "note": note,
        "chunks": results,
    }
