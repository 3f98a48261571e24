"""Certify a run: verify every recorded part against the store, then manifest.json, then `_SUCCESS`.

One certifier for `rivet run`, the finalize Job and repair; one place that withdraws `_SUCCESS`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from typing import Any

from rivet.config.model import DestinationType, ExportConfig, Mode
from rivet.contract import values
from rivet.contract.fingerprint import fingerprint_bytes
from rivet.contract.manifest import (
    MANIFEST_KEY,
    QUARANTINE_DIR,
    SUCCESS_KEY,
    CommitRecord,
    RunInfo,
    build_manifest,
    quarantine_key,
    success_body,
)
from rivet.contract.objects import ObjectInfo
from rivet.contract.resume import matches
from rivet.destinations.base import Destination
from rivet.engine.context import RunContext
from rivet.errors import ConcurrentCertify, ContractError
from rivet.log import log


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_info(
    ctx: RunContext, dest: Destination, started_at: str, records: list[CommitRecord], cursor_start: Any = None
) -> RunInfo:
    """Manifest header. The plan and run date are recorded so reconcile can recount chunks later, and an
    incremental run records the cursor range it covers, so every dataset says what it holds."""
    exp, plan = ctx.exp, ctx.plan
    schema, table = None, None
    if exp.table:
        qualifier, _, name = exp.table.rpartition(".")
        schema, table = (qualifier or None), name
    extra: dict[str, Any] = {
        "run_date": ctx.run_date.isoformat(),
        "plan": plan.recorded(),
        "plan_fingerprint": plan.fingerprint,
    }
    if exp.mode is Mode.INCREMENTAL:
        highs = [r.max_cursor for r in records if r.max_cursor is not None]
        extra["cursor"] = {
            "column": exp.cursor_column,
            "low": values.show(cursor_start),
            "low_inclusive": True,
            "high": values.show(max(highs)) if highs else None,
        }
    return RunInfo(
        run_id=ctx.run_id,
        export_name=exp.name,
        started_at=started_at,
        finished_at=utc_now(),
        status="success",
        engine=ctx.cfg.source.type.value,
        schema=schema,
        table=table,
        destination_kind=dest.kind,
        destination_uri=dest.uri(),
        format=exp.format.value,
        compression=exp.effective_compression.value,
        producer=ctx.producer,
        extra=extra,
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


def schema_of(records: list[CommitRecord], fallback: str, current: str | None = None) -> str:
    """The one schema fingerprint of the committed parts (and of the source now, when `current` is given:
    a resumed run refuses before exporting more); SchemaChanged when they disagree."""
    fps = {r.schema_fingerprint for r in records if r.key is not None and r.schema_fingerprint}
    if fps and current is not None:
        fps.add(current)
    if len(fps) > 1:
        raise ContractError(
            "committed parts disagree on the schema fingerprint: the source schema changed during the run;"
            " start a new run (--force if the prefix is certified)",
            reason="SchemaChanged",
        )
    return fps.pop() if fps else fallback


def certify(
    ctx: RunContext, dest: Destination, records: list[CommitRecord], started_at: str, cursor_start: Any = None
) -> tuple[str, str]:
    """The only writer of manifest.json and `_SUCCESS`: verify every part (M1), write the manifest, then
    `_SUCCESS` holding its fingerprint (M2, M7). Returns (manifest fingerprint, `_SUCCESS` body)."""
    previous = dest.head(MANIFEST_KEY)  # what this run may replace: nothing, or exactly this version
    # a part's key range is the plan's for its chunk, whatever a record carried (a termination message
    # over 4 KiB drops it): the manifest always shows the planned range
    records = [dataclasses.replace(r, key_range=ctx.plan.chunk(r.chunk).key_range) for r in records]
    verify_parts(dest, records)
    schema_fp = schema_of(records, ctx.schema_fp)
    manifest = build_manifest(run_info(ctx, dest, started_at, records, cursor_start), records, schema_fp)
    write_once(dest, MANIFEST_KEY, manifest, previous)
    raw = success_body(manifest)
    write_once(dest, SUCCESS_KEY, raw, None)  # M8 made sure there is none: create-only
    body = raw.decode("ascii").strip()
    fp = fingerprint_bytes(manifest)
    log("manifest_written", run_id=ctx.run_id, manifest=fp, success=body)
    return fp, body


def write_once(dest: Destination, key: str, data: bytes, replace: ObjectInfo | None) -> None:
    """Write manifest.json or `_SUCCESS` with the same conditional commit as a part (create-only, or
    replace-only that version): two certifiers of one prefix never overwrite each other unnoticed."""
    upload = dest.open_part(key, replace)
    try:
        upload.write(data)
    except BaseException:
        upload.abort()
        raise
    try:
        upload.commit()
    except ContractError as exc:
        if exc.reason != "PartConflict":
            raise
        raise ConcurrentCertify(
            f"{dest.uri()}{key} changed while this run was certifying (another finalize or run of this prefix"
            " wrote it); nothing was overwritten. Run finalize again: it re-reads the prefix",
            reason="ConcurrentCertify",
        ) from None


def check_fencing(dest: Destination, exp: ExportConfig, run_id: str) -> None:
    """S3-compatible stores differ in whether they honour If-None-Match / If-Match: probe them. GCS
    (generation preconditions), Azure (ETag conditions) and local files (links) always do."""
    if exp.destination.type is DestinationType.S3:
        probe_conditional_writes(dest, run_id, exp.destination.conditional_writes)


def probe_conditional_writes(dest: Destination, run_id: str, policy: str) -> None:
    """At plan time: a create-only write where an object exists must lose. A store that lets it win would
    let two writers of one prefix overwrite parts, manifest.json and `_SUCCESS` unnoticed: refused
    (`require`, the default), or logged (`warn`). The probe lives under `_quarantine/<run_id>/` and goes."""
    key = f"{QUARANTINE_DIR}/{run_id}/.conditional-write-probe"
    honoured = False
    dest.delete(key)  # a probe an interrupted plan left behind
    try:
        write_once(dest, key, b"1", None)
        try:
            write_once(dest, key, b"2", None)
        except ConcurrentCertify:
            honoured = True
    finally:
        dest.delete(key)
    if honoured:
        return
    message = (
        f"{dest.uri()}: the store ignored a conditional write (If-None-Match: * over an existing object), so"
        " it cannot fence two writers of one prefix: a stale chunk or a second finalize could overwrite"
        " parts, manifest.json or _SUCCESS unnoticed"
    )
    if policy == "warn":
        log("conditional_writes_ignored", level="warning", prefix=dest.uri(), policy=policy)
        return
    raise ContractError(
        message + ". Use a store that honours them, or set destination.conditional_writes: warn to accept the risk",
        reason="ConditionalWritesIgnored",
    )


def withdraw(dest: Destination, reason: str) -> None:
    """Remove `_SUCCESS` before any part changes, so M5 holds at every instant."""
    if dest.head(SUCCESS_KEY) is not None:
        dest.delete(SUCCESS_KEY)
        log("success_marker_withdrawn", prefix=dest.uri(), reason=reason)


def refuse_unless_forced(dest: Destination, force: bool) -> bool:
    """M8: a certified prefix is refused unless forced. True when there is a `_SUCCESS` to withdraw: the
    caller withdraws it once planning has succeeded, just before the first byte changes, so a run that
    fails to plan leaves the earlier certification in place."""
    if dest.head(SUCCESS_KEY) is None:
        return False
    if not force:
        raise ContractError(
            f"{dest.uri()} already holds _SUCCESS (a certified export); rerun with --force to replace it,"
            " or change the prefix (e.g. add {run_id} or {date})",
            reason="SuccessMarkerPresent",
        )
    return True


def withdraw_or_refuse(dest: Destination, force: bool) -> None:
    """M8 at once: refuse a certified prefix unless forced, and withdraw its `_SUCCESS` when forced."""
    if refuse_unless_forced(dest, force):
        withdraw(dest, "forced run")


# --- fencing: whose prefix is this? ------------------------------------------------------------------------

MANIFEST_HEAD_BYTES = 4096  # run_id is the manifest's second field: a ranged read finds it
_RUN_ID = re.compile(rb'"run_id"\s*:\s*"((?:[^"\\]|\\.)*)"')


def takeover_key(run_id: str) -> str:
    """Where a run keeps, byte for byte, the manifest of the earlier run whose prefix it took over."""
    return quarantine_key(run_id, MANIFEST_KEY)


def manifest_run_id(dest: Destination) -> str | None:
    """The run_id of the prefix's manifest.json (None: no manifest, or none readable), with one ranged read."""
    head = dest.get_bytes(MANIFEST_KEY, limit=MANIFEST_HEAD_BYTES)
    if head is None:
        return None
    found = _RUN_ID.search(head)
    if found is not None:
        try:
            value = json.loads(b'"' + found.group(1) + b'"')
        except ValueError:
            value = None
        return value if isinstance(value, str) else None
    if len(head) < MANIFEST_HEAD_BYTES:
        return None  # the whole manifest was read and has no run_id: not ours to judge
    try:
        doc = json.loads(dest.get_bytes(MANIFEST_KEY) or b"")
    except ValueError:
        return None
    run_id = doc.get("run_id") if isinstance(doc, dict) else None
    return run_id if isinstance(run_id, str) else None


def take_over(dest: Destination, run_id: str) -> None:
    """Called once a run may change bytes at the prefix (after the M8 gate and planning): if the manifest
    there belongs to another run, keep a copy at `_quarantine/<run_id>/manifest.json`. That copy is this
    run's claim: its chunks may then write into a prefix whose manifest is not yet theirs, while a stale
    chunk of any other run is refused (`check_prefix_owner`). The manifest itself stays until this run
    certifies, so an interrupted run still reads as uncertified rather than legacy."""
    owner = manifest_run_id(dest)
    if owner is None or owner == run_id or dest.head(takeover_key(run_id)) is not None:
        return
    dest.copy(MANIFEST_KEY, takeover_key(run_id))
    log("prefix_taken_over", prefix=dest.uri(), run_id=run_id, previous_run_id=owner)


def check_prefix_owner(dest: Destination, run_id: str) -> None:
    """A chunk writes into a prefix only while it is its run's: never while `_SUCCESS` is there (certified;
    a forced run or a repair withdraws it first), and not when manifest.json belongs to another run that
    this run did not take over (`take_over`). A stale chunk of an earlier run therefore cannot move aside
    or add parts under a later run's manifest. One HEAD and one small ranged GET (a second HEAD only when
    the manifest is another run's)."""
    if dest.head(SUCCESS_KEY) is not None:
        raise ContractError(
            f"{dest.uri()} holds _SUCCESS (a certified export): a chunk of run {run_id} does not write into a"
            " certified prefix. This chunk is stale, or its run must withdraw the certification first"
            " (rivet run --force, or rivet plan --check-destination --force)",
            reason="SuccessMarkerPresent",
        )
    owner = manifest_run_id(dest)
    if owner is None or owner == run_id:
        return
    if dest.head(takeover_key(run_id)) is not None:
        return
    raise ContractError(
        f"{dest.uri()}: manifest.json belongs to run {owner}, and run {run_id} did not take this prefix over;"
        " this chunk is stale (another run has written here since). Nothing was written. Start the chunk"
        " through its run's plan step (rivet plan --check-destination) or use a fresh prefix",
        reason="PrefixOwnedByAnotherRun",
    )
