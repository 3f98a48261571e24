"""The commands the operator's Jobs run: plan, one chunk, finalize. Each returns a small JSON-able dict.

They share the engine with `rivet run`; the ledger lives in the cluster, so these keep no local state.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from rivet.config.model import ExportConfig, Mode, RivetConfig
from rivet.contract.fingerprint import schema_fingerprint
from rivet.contract.manifest import CommitRecord, part_key
from rivet.contract.prefix import resolve_prefix
from rivet.contract.resume import Decision, decide
from rivet.destinations.factory import open_destination
from rivet.errors import ContractError, UsageError
from rivet.exporter import export_for, quarantine, record_for
from rivet.finalize import run_info, schema_of, utc_now, write_manifest
from rivet.planning import build_plan, plan_for, row_estimate
from rivet.runner import withdraw_or_refuse
from rivet.sources.factory import open_source
from rivet.sql import chunk_sql, export_sql


def plan_command(
    cfg: RivetConfig,
    exp: ExportConfig,
    run_id: str,
    run_date: dt.date,
    check_destination: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Bounds and fingerprints; with `check_destination`, also the M8 gate (refuse or withdraw `_SUCCESS`)."""
    prefix = resolve_prefix(exp.destination.template, export=exp.name, date=run_date, run_id=run_id)
    resolved_uri = None
    if check_destination:
        dest = open_destination(exp.destination, prefix)
        dest.check()
        withdraw_or_refuse(dest, force, dest.uri())
        resolved_uri = dest.uri()
    source = open_source(cfg.source)
    try:
        plan = build_plan(source, exp)
        schema = source.describe(export_sql(source.engine, exp, run_date=run_date, cursor=None))
        estimate = row_estimate(source, exp)
    finally:
        source.close()
    return {
        "export": exp.name,
        "run_id": run_id,
        "resolved_prefix": resolved_uri or prefix,
        "mode": plan.mode,
        "chunk_column": plan.chunk_column,
        "lo": plan.lo,
        "hi": plan.hi,
        "chunk_size": plan.chunk_size,
        "chunk_count": plan.chunk_count,
        "row_estimate": estimate,
        "plan_fingerprint": plan.fingerprint,
        "schema_fingerprint": schema_fingerprint(schema),
    }


def chunk_command(
    cfg: RivetConfig,
    exp: ExportConfig,
    run_id: str,
    run_date: dt.date,
    index: int,
    lo: int | None,
    hi: int | None,
    committed: CommitRecord | None = None,
    cursor: Any = None,
) -> dict[str, Any]:
    """Export chunk `index` to its part key, applying the resume decision for that key first."""
    if exp.mode is Mode.CHUNKED and (lo is None or hi is None):
        raise UsageError("chunked exports need --lo and --hi for the chunk's key range")
    prefix = resolve_prefix(exp.destination.template, export=exp.name, date=run_date, run_id=run_id)
    dest = open_destination(exp.destination, prefix)
    key = part_key(index, exp.format.value)
    decision = decide(committed, dest.head(key))
    out: dict[str, Any] = {"decision": decision.value, "resolved_prefix": dest.uri()}
    if decision is Decision.SKIP and committed is not None:
        return {**committed.to_dict(), **out}
    if decision is Decision.QUARANTINE_EXPORT:
        existing = {o.key for o in dest.list() if o.key.startswith("_quarantine/")}
        out["quarantined"] = quarantine(dest, run_id, key, existing)
    source = open_source(cfg.source)
    try:
        base = export_sql(source.engine, exp, run_date=run_date, cursor=cursor)
        sql = (
            chunk_sql(source.engine, exp, lo, hi)
            if exp.mode is Mode.CHUNKED and lo is not None and hi is not None
            else base
        )
        schema = source.describe(sql)
        result = export_for(exp, cfg.source.tuning.batch_size, source, sql, schema, dest, key)
    finally:
        source.close()
    key_range = [lo, hi] if lo is not None and hi is not None else None
    record = record_for(index, key, result, schema_fingerprint(schema), key_range)
    return {**record.to_dict(), **out}


def read_ledger(path: str) -> list[CommitRecord]:
    """A ledger: a directory of one-record JSON files (the operator's projected ConfigMaps), or a file of
    JSON lines, a JSON list, or {"records": [...]}."""
    p = Path(path)
    if p.is_dir():
        # ConfigMap volumes keep each key as a top-level symlink into a hidden `..<timestamp>/` dir:
        # read the top level only, or every record would be counted twice.
        files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        try:
            return unique_records([CommitRecord.from_dict(json.loads(f.read_text(encoding="utf-8"))) for f in files])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"ledger directory {path} holds an unreadable record: {exc}") from None
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read ledger {path}: {exc.strerror}") from None
    try:
        stripped = text.strip()
        if stripped.startswith("[") or stripped.startswith('{"records"'):
            data = json.loads(stripped)
            items = data["records"] if isinstance(data, dict) else data
        else:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        return unique_records([CommitRecord.from_dict(item) for item in items])
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"ledger {path} is not valid commit-record JSON: {exc}") from None


def unique_records(records: list[CommitRecord]) -> list[CommitRecord]:
    """One record per chunk; the same chunk recorded twice with different parts is a broken ledger."""
    by_chunk: dict[int, CommitRecord] = {}
    for rec in records:
        seen = by_chunk.get(rec.chunk)
        if seen is not None and seen != rec:
            raise ContractError(
                f"the ledger holds two different records for chunk {rec.chunk}", reason="LedgerConflict"
            )
        by_chunk[rec.chunk] = rec
    return [by_chunk[k] for k in sorted(by_chunk)]


def finalize_command(
    cfg: RivetConfig,
    exp: ExportConfig,
    run_id: str,
    run_date: dt.date,
    records: list[CommitRecord],
    started_at: str | None,
    expected_chunks: int | None,
    force: bool = False,
    bounds: tuple[int | None, int | None] = (None, None),
) -> dict[str, Any]:
    """Verify the ledger's parts in the store, then write manifest.json and `_SUCCESS`."""
    if expected_chunks is not None:
        seen = {r.chunk for r in records}
        missing = sorted(set(range(1, expected_chunks + 1)) - seen)
        if missing:
            raise ContractError(
                f"ledger lacks {len(missing)} of {expected_chunks} chunks (first: {missing[:5]});"
                " every chunk must be committed before finalize",
                reason="LedgerIncomplete",
            )
    prefix = resolve_prefix(exp.destination.template, export=exp.name, date=run_date, run_id=run_id)
    dest = open_destination(exp.destination, prefix)
    withdraw_or_refuse(dest, force, dest.uri())
    schema_fp = schema_of(records, "")
    if not schema_fp:
        source = open_source(cfg.source)  # no parts at all: the schema comes from the source
        try:
            schema_fp = schema_fingerprint(
                source.describe(export_sql(source.engine, exp, run_date=run_date, cursor=None))
            )
        finally:
            source.close()
    plan = plan_for(cfg.source.type, exp, *bounds)
    info = run_info(exp, cfg.source.type, dest, run_id, started_at or utc_now(), "success", plan, run_date)
    fp, body = write_manifest(dest, info, records, schema_fp, certify=True)
    parts = [r for r in records if r.key is not None]
    return {
        "run_id": run_id,
        "resolved_prefix": dest.uri(),
        "manifest_fingerprint": fp,
        "success": body,
        "part_count": len(parts),
        "row_count": sum(r.rows for r in parts),
        "bytes": sum(r.size_bytes for r in parts),
    }
