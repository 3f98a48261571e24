"""`rivet repair`: re-export the chunks a reconcile report flagged, then certify the prefix again.

Order keeps M5 true at every instant: `_SUCCESS` is withdrawn before any part changes, stale parts are
quarantined (never deleted), and a new manifest then `_SUCCESS` are written only after every re-export.
A report is only a list of chunk numbers to us: each chunk's rows come from the recorded plan, never
from ranges in the report, which is a file anyone could have edited.
"""

from __future__ import annotations

from typing import Any

from rivet.commands.reconcile import manifest_context, read_manifest
from rivet.config.model import ExportConfig, RivetConfig
from rivet.contract.manifest import CommitRecord, part_key
from rivet.destinations.base import Destination
from rivet.engine.certify import certify, withdraw
from rivet.engine.chunk import export_chunk
from rivet.errors import ContractError, UsageError
from rivet.log import log
from rivet.sources.base import Source


def repair_plan(report: dict[str, Any], exp: ExportConfig) -> list[dict[str, Any]]:
    actions = []
    for c in report.get("chunks", []):
        if c.get("status") != "mismatch":
            continue
        if isinstance(c.get("chunk"), bool) or not isinstance(c.get("chunk"), int) or c["chunk"] < 1:
            raise UsageError(f"the report names chunk {c.get('chunk')!r}: chunk numbers are positive integers")
        actions.append(
            {
                "chunk": c["chunk"],
                "key": part_key(c["chunk"], exp.format.value),
                "key_range": c.get("key_range"),
                "recorded_rows": c.get("recorded_rows"),
                "source_rows": c.get("source_rows"),
                "action": "re-export",
            }
        )
    return actions


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
    ctx = manifest_context(cfg, exp, source, doc)
    if ctx is None:
        raise ContractError(
            "the export definition changed since this run: repair would mix two definitions; run a new export (--force)",
            reason="PlanChanged",
        )
    if doc.get("schema_fingerprint") and doc["schema_fingerprint"] != ctx.schema_fp:
        raise ContractError(
            "the source schema changed since this run: repair would mix schemas; run a new export (--force)",
            reason="SchemaChanged",
        )
    chunks = []
    for action in actions:
        try:
            chunk = ctx.plan.chunk(int(action["chunk"]))
        except IndexError as exc:
            raise UsageError(f"the report names chunk {action['chunk']}: {exc}") from None
        if action.get("key_range") not in (None, chunk.key_range):
            raise UsageError(
                f"the report's key_range {action['key_range']} for chunk {chunk.index} is not the run's"
                f" {chunk.key_range}: use a report of this run"
            )
        chunks.append(chunk)
    records = records_from_manifest(doc)
    withdraw(dest, "repair")
    quarantined: list[str] = []
    for chunk in chunks:
        outcome = export_chunk(ctx, source, dest, chunk, None)  # untracked: what is there moves aside
        if outcome.quarantined:
            quarantined.append(outcome.quarantined)
        records[chunk.index] = outcome.record
        log("chunk_repaired", chunk=chunk.index, key=outcome.record.key or "-", rows=outcome.record.rows)
    fp, body = certify(ctx, dest, list(records.values()), str(doc.get("started_at")))
    return {"repaired": len(chunks), "quarantined": quarantined, "manifest_fingerprint": fp, "success": body}
