"""`rivet finalize`: the operator's finalize Job. Reads the ledger the operator kept, checks it covers
every chunk of the plan, and certifies through the engine's one certifier."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from rivet.config.model import ExportConfig, RivetConfig
from rivet.contract.fingerprint import ledger_digest
from rivet.contract.manifest import CommitRecord
from rivet.destinations.factory import open_destination
from rivet.engine.certify import certify, utc_now, withdraw_or_refuse
from rivet.engine.context import recorded_context
from rivet.errors import ContractError, LedgerMismatch, UsageError
from rivet.sources.factory import open_source


def finalize_command(
    cfg: RivetConfig,
    exp: ExportConfig,
    run_id: str,
    run_date: dt.date,
    records: list[CommitRecord],
    started_at: str | None,
    plan_doc: dict[str, Any],
    force: bool = False,
    cursor: Any = None,
) -> dict[str, Any]:
    """Verify the ledger's parts in the store, then write manifest.json and `_SUCCESS`."""
    source = open_source(cfg.source)
    try:
        ctx = recorded_context(cfg, exp, run_id, run_date, plan_doc, source, cursor=cursor)
    finally:
        source.close()
    expected = ctx.plan.chunk_count
    missing = sorted(set(range(1, expected + 1)) - {r.chunk for r in records})
    extra = sorted({r.chunk for r in records} - set(range(1, expected + 1)))
    if missing or extra:
        raise ContractError(
            f"the ledger does not match the plan's {expected} chunks (missing: {missing[:5]}, unknown: {extra[:5]});"
            " every chunk must be committed before finalize",
            reason="LedgerIncomplete",
        )
    dest = open_destination(exp.destination, ctx.prefix)
    withdraw_or_refuse(dest, force)
    fp, body = certify(ctx, dest, records, started_at or utc_now(), cursor)
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


def read_ledger(path: str, digest: str | None = None) -> list[CommitRecord]:
    """A ledger: a directory of one-record JSON files (the operator's projected ConfigMaps), or a file of
    JSON lines, a JSON list, or {"records": [...]}. With `digest` (the operator's), the directory must hold
    exactly the records the operator recorded, byte for byte (`ledger_digest`)."""
    p = Path(path)
    if p.is_dir():
        # ConfigMap volumes keep each key as a top-level symlink into a hidden `..<timestamp>/` dir:
        # read the top level only, or every record would be counted twice.
        files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        try:
            texts = [(f.name, f.read_text(encoding="utf-8")) for f in files]
        except OSError as exc:
            raise UsageError(f"ledger directory {path} holds an unreadable record: {exc}") from None
        if digest is not None and ledger_digest(texts) != digest:
            raise LedgerMismatch(
                f"the ledger handed to finalize ({len(texts)} records in {path}) is not the one the operator"
                " recorded: a transport ConfigMap was changed on the way. Nothing was certified; the operator"
                " hands the records over again on the next attempt",
                reason="LedgerMismatch",
            )
        try:
            return unique_records([CommitRecord.from_dict(json.loads(text)) for _, text in texts])
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"ledger directory {path} holds an unreadable record: {exc}") from None
    if digest is not None:
        raise UsageError("--ledger-digest checks a ledger directory (the operator's), not a file")
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
