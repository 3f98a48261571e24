"""`rivet repair`: re-export the chunks a reconcile report flagged, then certify the prefix again.

Order keeps M5 true at every instant: `_SUCCESS` is withdrawn before any part changes, stale parts are
quarantined (never deleted), and a new manifest then `_SUCCESS` are written only after every re-export.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rivet.config.model import ExportConfig, RivetConfig
from rivet.contract.fingerprint import schema_fingerprint
from rivet.contract.manifest import SUCCESS_KEY, CommitRecord, part_key
from rivet.destinations.base import Destination
from rivet.errors import ContractError
from rivet.exporter import export_for, quarantine, record_for
from rivet.finalize import run_info, write_manifest
from rivet.log import log
from rivet.reconcile import manifest_plan, read_manifest
from rivet.sources.base import Source
from rivet.sql import chunk_sql, export_sql


def repair_plan(report: dict[str, Any], exp: ExportConfig) -> list[dict[str, Any]]:
    return [
        {
            "chunk": c["chunk"],
            "key": part_key(c["chunk"], exp.format.value),
            "key_range": c.get("key_range"),
            "recorded_rows": c.get("recorded_rows"),
            "source_rows": c.get("source_rows"),
            "action": "re-export",
        }
        for c in report.get("chunks", [])
        if c.get("status") == "mismatch"
    ]


def records_from_manifest(doc: dict[str, Any]) -> dict[int, CommitRecord]:
    out: dict[int, CommitRecord] = {}
    for p in doc.get("parts", []):
        if p.get("status") != "committed":
            continue
        idx = int(p.get("chunk_index", p["part_id"]))
        out[idx] = CommitRecord(
            chunk=idx,
            key=p["path"],
            rows=int(p["rows"]),
            size_bytes=int(p["size_bytes"]),
            content_fingerprint=p["content_fingerprint"],
            content_md5=p.get("content_md5", ""),
            schema_fingerprint=str(doc.get("schema_fingerprint", "")),
            key_range=p.get("key_range"),
        )
    return out


def execute_repair(
    cfg: RivetConfig, source: Source, exp: ExportConfig, dest: Destination, actions: list[dict[str, Any]]
) -> dict[str, Any]:
    doc = read_manifest(dest)
    run_id = str(doc["run_id"])
    run_date = dt.date.fromisoformat(doc["run_date"]) if doc.get("run_date") else dt.date.today()
    base_sql = export_sql(source.engine, exp, run_date=run_date, cursor=None)
    schema = source.describe(base_sql)
    schema_fp = schema_fingerprint(schema)
    if doc.get("schema_fingerprint") and doc["schema_fingerprint"] != schema_fp:
        raise ContractError(
            "the source schema changed since this run: repair would mix schemas; run a new export (--force)",
            reason="SchemaChanged",
        )
    records = records_from_manifest(doc)
    if dest.head(SUCCESS_KEY) is not None:
        dest.delete(SUCCESS_KEY)  # withdraw certification before any part changes (M5)
        log("success_marker_withdrawn", prefix=dest.uri(), reason="repair")
    existing = {o.key for o in dest.list()}
    quarantined: list[str] = []
    for action in actions:
        idx, key = int(action["chunk"]), str(action["key"])
        if key in existing:
            quarantined.append(quarantine(dest, run_id, key, existing))
        rng = action.get("key_range")
        sql = chunk_sql(source.engine, exp, rng[0], rng[1]) if rng else base_sql
        result = export_for(exp, cfg.source.tuning.batch_size, source, sql, schema, dest, key)
        if result is None:
            records.pop(idx, None)
            continue
        records[idx] = record_for(idx, key, result, schema_fp, rng)
        log("chunk_repaired", chunk=idx, key=key, rows=result.rows)
    plan = manifest_plan(doc, source.engine, exp)
    info = run_info(exp, source.engine, dest, run_id, str(doc.get("started_at")), "success", plan, run_date)
    fp, body = write_manifest(dest, info, list(records.values()), schema_fp, certify=True)
    return {"repaired": len(actions), "quarantined": quarantined, "manifest_fingerprint": fp, "success": body}
