"""Certify a run: verify every recorded part against the store, then manifest.json, then _SUCCESS (M1, M2, M7)."""

from __future__ import annotations

import datetime as dt

from rivet import __version__
from rivet.config.model import ExportConfig, SourceType
from rivet.contract.fingerprint import fingerprint_bytes
from rivet.contract.manifest import (
    MANIFEST_KEY,
    SUCCESS_KEY,
    CommitRecord,
    RunInfo,
    build_manifest,
    success_body,
)
from rivet.contract.plan import Plan
from rivet.contract.resume import matches
from rivet.destinations.base import Destination
from rivet.errors import ContractError
from rivet.log import log

PRODUCER = f"rivet-operator {__version__}"


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_info(
    exp: ExportConfig,
    engine: SourceType,
    dest: Destination,
    run_id: str,
    started_at: str,
    status: str,
    plan: Plan | None = None,
    run_date: dt.date | None = None,
) -> RunInfo:
    """Manifest header. `plan` and `run_date` are recorded so reconcile can recount chunks later."""
    schema, table = None, None
    if exp.table:
        qualifier, _, name = exp.table.rpartition(".")
        schema, table = (qualifier or None), name
    return RunInfo(
        run_id=run_id,
        export_name=exp.name,
        started_at=started_at,
        finished_at=utc_now(),
        status=status,
        engine=engine.value,
        schema=schema,
        table=table,
        destination_kind=dest.kind,
        destination_uri=dest.uri(),
        format=exp.format.value,
        compression=exp.effective_compression.value,
        producer=PRODUCER,
        extra={
            "run_date": run_date.isoformat() if run_date else None,
            "plan": {k: v for k, v in plan.to_dict().items() if k not in ("engine", "relation")} if plan else None,
            "plan_fingerprint": plan.fingerprint if plan else None,
        },
    )


def verify_parts(dest: Destination, records: list[CommitRecord]) -> None:
    """M1: every part we are about to list must be in the store, in full (one listing, no re-reads)."""
    listing = {o.key: o for o in dest.list()}
    for rec in records:
        if rec.key is None:
            continue
        obj = listing.get(rec.key)
        if obj is None:
            raise ContractError(
                f"part {rec.key} (chunk {rec.chunk}) is recorded as committed but missing from the destination;"
                " resume the run to re-export it",
                reason="PartMissing",
            )
        if not matches(rec, obj):
            raise ContractError(
                f"part {rec.key} (chunk {rec.chunk}) differs from its commit record (size {obj.size} vs"
                f" {rec.size_bytes}); resume the run to quarantine and re-export it",
                reason="PartMismatch",
            )


def schema_of(records: list[CommitRecord], fallback: str) -> str:
    fps = {r.schema_fingerprint for r in records if r.key is not None and r.schema_fingerprint}
    if len(fps) > 1:
        raise ContractError(
            "committed parts disagree on the schema fingerprint: the source schema changed during the run;"
            " start a new run (--force if the prefix is certified)",
            reason="SchemaChanged",
        )
    return fps.pop() if fps else fallback


def write_manifest(
    dest: Destination, info: RunInfo, records: list[CommitRecord], schema_fp: str, certify: bool
) -> tuple[str, str | None]:
    """Write manifest.json, then (when certifying) `_SUCCESS`; returns (manifest fingerprint, success body)."""
    if certify:
        verify_parts(dest, records)
    manifest = build_manifest(info, records, schema_fp)
    dest.put_bytes(MANIFEST_KEY, manifest)
    body: str | None = None
    if certify:
        raw = success_body(manifest)
        dest.put_bytes(SUCCESS_KEY, raw)
        body = raw.decode("ascii").strip()
    fp = fingerprint_bytes(manifest)
    log("manifest_written", run_id=info.run_id, status=info.status, manifest=fp, success=body or "-")
    return fp, body
