"""RivetExport: decide (pure) what to do next from the observed status, ledger, Jobs and pods.

A run: starting (fence: earlier runs' Jobs deleted and their pods gone) -> planning (plan Job) ->
exporting (chunk Jobs, at most `parallelism`) -> finalizing (finalize Job) -> done | failed. Everything
needed to continue after an operator restart is in the status (run id, date, plan, retries, cursor), the
ledger ConfigMaps and the Jobs, all found by the owner's uid label. A new run starts only when the
run-defining spec changes (`runFingerprint`), when the `rivet.dev/rerun` annotation gets a new value, or when
a run refused by `_SUCCESS` (SuccessMarkerPresent) is allowed to replace it with `spec.force`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from rivet.contract import values
from rivet.contract.fingerprint import ledger_digest
from rivet_operator.api.policy import check_job_template
from rivet_operator.api.spec import SpecError, check_spec, export_name, render_yaml, run_fingerprint
from rivet_operator.api.status import ACTIVE_STAGES, progress
from rivet_operator.controller.model import (
    RERUN_ANNOTATION,
    Create,
    Decision,
    Delete,
    Observed,
    Put,
    Settings,
    WriteLedger,
    parse_time,
    stamp,
)
from rivet_operator.controller.outcomes import RUNNING, SUCCEEDED, JobView
from rivet_operator.controller.step import Step
from rivet_operator.specs import configmaps, names
from rivet_operator.specs import jobs as job_specs

ACTIVE = ACTIVE_STAGES
DEFAULT_RETRIES = 3
IGNORED_KEPT = 20  # status.ignoredObjects: the names already reported, newest last
# What a chunk Job prints beside its commit record (how it decided); the rest is stored verbatim.
JOB_ONLY_FIELDS = frozenset({"decision", "resolved_prefix", "quarantined"})


def commit_record(result: dict[str, Any]) -> dict[str, Any]:
    """The engine's commit record as the chunk Job printed it, without the Job's own remarks."""
    return {k: v for k, v in result.items() if k not in JOB_ONLY_FIELDS}


def refusal(name: str, spec: dict[str, Any], settings: Settings) -> tuple[str, str] | None:
    """(reason, message naming the field) when the spec cannot run: the engine's loader, then the job policy."""
    try:
        check_spec(name, spec)
    except SpecError as exc:
        return exc.reason, str(exc)
    refused = check_job_template(spec.get("jobTemplate") or {}, settings.policy)
    return ("JobTemplateRefused", str(refused)) if refused else None


def wants_new_run(
    name: str, generation: int, spec: dict[str, Any], status: dict[str, Any], annotations: dict[str, str]
) -> str | None:
    """Why a new run should start once no run is active (None: it should not)."""
    if not status.get("runId"):
        return "first"
    recorded = status.get("runFingerprint")
    if recorded is None:  # a run recorded before fingerprints: its generation decides, once
        if status.get("runGeneration") not in (None, generation):
            return "spec"
    elif recorded != run_fingerprint(name, spec):
        return "spec"
    token = annotations.get(RERUN_ANNOTATION)
    if token and token != status.get("rerun"):
        return "rerun"
    if status.get("stage") == "failed" and status.get("reason") == "SuccessMarkerPresent" and spec.get("force"):
        return "force"
    return None


def needs_visit(body: dict[str, Any]) -> bool:
    """Whether a watch event for this object is worth a reconcile: work in flight, or something to start or
    observe. A finished, unchanged object costs nothing."""
    meta = body.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return False
    status = body.get("status") or {}
    generation = int(meta.get("generation") or 1)
    if status.get("stage") in ACTIVE or status.get("observedGeneration") != generation:
        return True
    why = wants_new_run(meta.get("name", ""), generation, body.get("spec") or {}, status, meta.get("annotations") or {})
    return why is not None


def decide_export(obs: Observed, settings: Settings) -> Decision:
    s = Step(obs, settings)
    refused = refusal(obs.owner.name, obs.spec, settings)
    stage = s.get("stage")
    if stage in ACTIVE and _redefined(s):
        _abandon(s)
        stage = s.get("stage")
    if stage not in ACTIVE:
        why = wants_new_run(obs.owner.name, obs.generation, obs.spec, obs.status, obs.annotations)
        if why is None:
            _idle(s)
            return s.decision()
        if obs.spec.get("suspend"):
            s.phase("Suspended", "Suspended", "suspended: no run starts while spec.suspend is true")
            return s.decision()
        if refused:
            _hold(s, refused)
            return s.decision()
        _start(s, why)
    if s.get("stage") == "starting" and not _fence(s):
        return s.decision()
    if s.get("stage") == "planning" and not _plan(s, refused):
        return s.decision()
    if s.get("stage") == "exporting" and not _export(s, refused):
        return s.decision()
    if s.get("stage") == "finalizing":
        _finalize(s, refused)
    return s.decision()


# -- helpers ---------------------------------------------------------------------------------------


def _run(s: Step) -> tuple[str, str, str, str]:
    """(export name, run id, run key, run date) of the current run."""
    run_id = str(s.get("runId"))
    return export_name(s.obs.owner.name, s.obs.spec), run_id, names.run_key(run_id), str(s.get("runDate"))


def _jobs(s: Step, component: str | None = None, current: bool = True) -> list[JobView]:
    run = names.run_key(str(s.get("runId")))
    return [j for j in s.obs.jobs if (j.run == run) == current and (component is None or j.component == component)]


def _secret(spec: dict[str, Any]) -> dict[str, str] | None:
    ref = ((spec.get("source") or {}).get("urlFrom") or {}).get("secretKeyRef")
    return {"name": ref["name"], "key": ref["key"]} if ref else None


def _job_body(
    s: Step, name: str, component: str, args: list[str], chunk: int | None, attempt: int, **kw: Any
) -> dict[str, Any]:
    run_id = str(s.get("runId"))
    js = job_specs.JobSpec(
        name=name,
        labels=names.labels(s.obs.owner, run_id, component, chunk, attempt),
        args=args,
        config=str(s.get("runConfig") or render_yaml(s.obs.owner.name, s.obs.spec)),
        source_secret=_secret(s.obs.spec),
        source_ca=((s.obs.spec.get("source") or {}).get("tls") or {}).get("caFrom"),
        **kw,
    )
    return job_specs.job(s.obs.owner, js, s.obs.spec, s.settings.runtime)


def _max_retries(spec: dict[str, Any]) -> int:
    value = spec.get("maxChunkRetries")
    return DEFAULT_RETRIES if value is None else int(value)


def _retries(s: Step) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in (s.get("retries") or {}).items() if isinstance(v, dict)}


def _wait(s: Step, entry: dict[str, Any] | None) -> float:
    """Seconds until a retry may start (0: now)."""
    when = parse_time((entry or {}).get("notBefore"))
    return max(0.0, s.seconds_until(when)) if when else 0.0


def _cursor_arg(s: Step) -> str | None:
    if s.obs.spec.get("mode") != "incremental":
        return None
    value = (s.get("cursor") or {}).get("value")
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _hold(s: Step, refused: tuple[str, str]) -> None:
    """The spec cannot run as it is: Stalled, naming the field; a run in flight keeps its state and goes on
    when the spec is fixed."""
    reason, message = refused
    if s.get("reason") != reason or s.get("message") != message:
        s.event(reason, message, warning=True)
    s.set(reason=reason)
    s.phase("Failed", reason, message)


def _fail_run(s: Step, reason: str, message: str) -> None:
    s.set(stage="failed", reason=reason, completedAt=s.obs.now_s)
    s.phase("Failed", reason, message)
    s.event(reason, message, warning=True)
    for job in _jobs(s):  # nothing more of this run is worth running; failed Jobs stay as evidence
        if job.state == RUNNING:
            s.do(Delete("jobs", job.name))


def _failed_step(s: Step, key: str, job: JobView, reason: str, what: str) -> None:
    """Permanent errors stall at once; retryable ones get a new Job after an exponential backoff, up to
    maxChunkRetries."""
    message = f"{what} failed: {job.error.get('message', '')}"
    retries = _retries(s)
    failures = int(retries.get(key, {}).get("attempts", 0)) + 1
    if job.permanent:
        _fail_run(s, job.reason(reason), message)
        return
    if failures > _max_retries(s.obs.spec):
        _fail_run(s, "RetriesExhausted", f"{message} (after {failures} attempts)")
        return
    delay = s.settings.backoff(failures)
    not_before = s.obs.now + dt.timedelta(seconds=delay)
    retries[key] = {"attempts": failures, "notBefore": stamp(not_before), "lastError": message[:512]}
    s.set(retries=retries)
    s.event(
        "ChunkRetry" if key.isdigit() else "Retrying",
        f"{message}; attempt {failures + 1} in {delay:.0f}s",
        warning=True,
        series=f"{s.get('runId')}/{key}",
        count=failures,
    )
    s.do(Delete("jobs", job.name))
    s.requeue_in(delay)


def _redefined(s: Step) -> bool:
    """Whether the run-defining spec differs from the active run's (admission refuses such an edit; this
    holds where it was bypassed or predates the rule): a run never mixes two definitions."""
    recorded = s.get("runFingerprint")
    return bool(recorded) and recorded != run_fingerprint(s.obs.owner.name, s.obs.spec)


def _abandon(s: Step) -> None:
    """Stop the active run for good: its running Jobs are deleted, nothing more of it is created or
    certified. A new run of the new definition starts once they are gone (the fence); parts the abandoned
    run left in the prefix are quarantined by the new run's chunks, never certified."""
    run_id = s.get("runId")
    message = (
        f"the run-defining spec changed while run {run_id} was {s.get('stage')}: that run is abandoned (its Jobs"
        " are stopped, nothing of it is certified) and a run of the new definition starts"
    )
    s.set(stage="failed", reason="SpecChanged", completedAt=s.obs.now_s)
    s.event("RunAbandoned", message, warning=True)
    for job in _jobs(s):
        if job.state == RUNNING and not job.deleting:
            s.do(Delete("jobs", job.name))


def _report_foreign(s: Step, run: str) -> None:
    """ConfigMaps that carry this run's labels but that the operator does not write during a run (older
    operators kept the ledger in them): ignored, and said once in an Event."""
    seen = list(s.get("ignoredObjects") or [])
    new = [cm.name for cm in s.obs.configmaps if cm.run == run and cm.component != "transport" and cm.name not in seen]
    if not new:
        return
    s.event(
        "ForeignObjectIgnored",
        f"ConfigMap {', '.join(new[:5])} carries this export's labels but was not written by the operator: ignored"
        " (commit records live only in RivetLedger objects, which only the operator may write)",
        warning=True,
    )
    s.set(ignoredObjects=(seen + new)[-IGNORED_KEPT:])


def _idle(s: Step) -> None:
    """No run to start: keep observedGeneration current and clean Jobs a finished run left behind."""
    s.observe_generation()
    failed = s.get("stage") == "failed"
    for job in s.obs.jobs:
        evidence = failed and job.run == names.run_key(str(s.get("runId"))) and job.state != RUNNING
        if not evidence and not job.deleting:
            s.do(Delete("jobs", job.name))


# -- stages ----------------------------------------------------------------------------------------


def _start(s: Step, why: str) -> None:
    obs = s.obs
    previous = s.get("runId")
    run_id = names.run_id(obs.owner, obs.now.strftime("%Y%m%dt%H%M%S"))
    if run_id == previous:  # a second run within the same second
        run_id = f"{run_id}-2"
    run_date = str(obs.spec.get("date") or obs.now.date().isoformat())
    token = obs.annotations.get(RERUN_ANNOTATION)
    s.set(
        runId=run_id,
        runDate=run_date,
        runGeneration=obs.generation,
        runFingerprint=run_fingerprint(obs.owner.name, obs.spec),
        rerun=token or s.get("rerun"),
        stage="starting",
        startedAt=obs.now_s,
        completedAt=None,
        plan=None,
        resolvedPrefix=None,
        reason=None,
        chunks=progress([], 0, 0, 0),
        rowsWritten=0,
        bytesWritten=0,
        manifest=None,
        success=None,
        retries=None,
        cursor=_cursor_for_run(s),
        runConfig=render_yaml(obs.owner.name, obs.spec),
        ledger=None,
    )
    if why == "spec" and previous:
        s.event("SpecChanged", f"the run-defining spec changed since run {previous}: starting run {run_id}")
    elif why == "rerun":
        s.event("RerunRequested", f"annotation {RERUN_ANNOTATION}={token}: starting run {run_id}")
    elif why == "force":
        s.event("ForcedRun", f"spec.force is set: run {run_id} replaces the certified prefix")
    s.event("RunStarted", f"run {run_id} started (date {run_date})")
    s.phase("Pending", "RunStarted", f"run {run_id} started")


def _cursor_for_run(s: Step) -> dict[str, Any] | None:
    """The cursor a new run starts at: the last certified one (status.cursor), else `spec.cursor` (a
    RivetSchedule's carried value), else none; a changed cursorColumn starts from scratch."""
    cursor = s.get("cursor")
    spec = s.obs.spec
    if spec.get("mode") != "incremental":
        return cursor if isinstance(cursor, dict) else None
    column = spec.get("cursorColumn")
    old = cursor.get("column") if isinstance(cursor, dict) else None
    if isinstance(cursor, dict) and old == column and cursor.get("value") is not None:
        return cursor
    if old and old != column:
        s.event(
            "CursorReset",
            f"cursorColumn changed from {old} to {column}: the new run starts from the beginning",
            warning=True,
        )
        return {"column": column, "value": None, "runId": None}
    return {"column": column, "value": spec.get("cursor"), "runId": None}


def _fence(s: Step) -> bool:
    """A run never starts while an earlier run's Jobs or pods are active: delete them, wait until gone."""
    _, run_id, run, _ = _run(s)
    earlier = _jobs(s, current=False)
    for job in earlier:
        if not job.deleting:
            s.do(Delete("jobs", job.name))
    for cm in s.obs.configmaps:  # earlier runs' ConfigMaps (finalize transport, older operators' state)
        if cm.run != run:
            s.do(Delete("configmaps", cm.name))
    for lg in s.obs.ledgers:  # earlier runs' ledgers: resume state of runs that will never resume
        if lg.run != run:
            s.do(Delete("rivetledgers", lg.name))
    earlier = [j for j in earlier if j.state == RUNNING]  # finished ones need no wait, only deletion
    pods = [p for p in s.obs.pods if p.run != run and p.active]
    if earlier or pods:
        s.phase(
            "Pending",
            "Fencing",
            f"run {run_id}: waiting for {len(earlier)} Jobs and {len(pods)} pods of earlier runs to end",
        )
        s.requeue_in(s.settings.fence_poll_s)
        return False
    s.set(stage="planning")
    return True


def _gate(s: Step, refused: tuple[str, str] | None, what: str) -> bool:
    """Whether a new Job may be created now (not refused, not suspended)."""
    if refused:
        _hold(s, refused)
        return False
    if s.obs.spec.get("suspend"):
        s.phase("Suspended", "Suspended", f"run {s.get('runId')} suspended before {what}")
        return False
    return True


def _run_once(
    s: Step, component: str, name_of: Any, refused: tuple[str, str] | None, body: Any
) -> tuple[JobView | None, str]:
    """A stage's run-once Job (plan, finalize): created when due. Returns (the Job once it has ended, what
    happened: ended | created | running | waiting | held)."""
    retries = _retries(s)
    attempt = int(retries.get(component, {}).get("attempts", 0)) + 1
    name = name_of(attempt)
    job = None
    for j in _jobs(s, component):
        if j.name == name:
            job = j
        elif j.state != RUNNING and not j.deleting:
            s.do(Delete("jobs", j.name))  # an earlier attempt, already counted
    if job is None:
        if not _gate(s, refused, component):
            return None, "held"
        wait = _wait(s, retries.get(component))
        if wait > 0:
            s.requeue_in(wait)
            return None, "waiting"
        run = names.run_key(str(s.get("runId")))
        if any(p.active and p.run == run and p.component == component for p in s.obs.pods):
            s.requeue_in(s.settings.fence_poll_s)  # an earlier attempt's pod still runs: never two at once
            return None, "waiting"
        s.do(Create(body(name, attempt)))
        s.requeue_in(s.settings.active_requeue_s)
        return None, "created"
    if job.state == RUNNING:
        s.requeue_in(s.settings.active_requeue_s)
        return None, "running"
    return job, "ended"


def _waiting_phase(s: Step, what: str, phase: str, reason: str, message: str, key: str) -> None:
    if what in ("created", "running"):
        s.phase(phase, reason, message)
    elif what == "waiting":
        entry = _retries(s).get(key, {})
        s.phase(phase, "Retrying", f"{message}; attempt {int(entry.get('attempts', 0)) + 1} after a backoff")


def _plan(s: Step, refused: tuple[str, str] | None) -> bool:
    exp, run_id, _, run_date = _run(s)
    owner = s.obs.owner
    args = job_specs.plan_args(exp, run_id, run_date, bool(s.obs.spec.get("force")))
    job, what = _run_once(
        s,
        "plan",
        lambda attempt: names.plan_job(owner, run_id, attempt),
        refused,
        lambda name, attempt: _job_body(s, name, "plan", args, None, attempt),
    )
    if job is None:
        _waiting_phase(s, what, "Pending", "Planning", f"run {run_id}: planning", "plan")
        return False
    if job.state == SUCCEEDED and job.result and "chunk_count" in job.result:
        plan = job.result
        total = int(plan["chunk_count"])
        retries = _retries(s)
        retries.pop("plan", None)
        expected = s.obs.spec.get("expectedSchemaFingerprint")
        schema = plan.get("schema_fingerprint")
        changed = bool(expected and schema and schema != expected)
        s.set(
            stage="exporting" if total else "finalizing",
            resolvedPrefix=plan.get("resolved_prefix"),
            plan={
                "lo": plan.get("lo"),
                "hi": plan.get("hi"),
                "chunkSize": plan.get("chunk_size"),
                "chunkCount": total,
                "rowEstimate": plan.get("row_estimate"),
                "fingerprint": plan.get("plan_fingerprint"),
                "schemaFingerprint": plan.get("schema_fingerprint"),
                "document": json.dumps(plan, separators=(",", ":"), sort_keys=True),
            },
            chunks=progress([], total, 0, 0),
            retries=retries or None,
        )
        s.do(Delete("jobs", job.name))
        if changed:
            _fail_run(
                s,
                "SchemaChanged",
                f"the source schema changed ({expected} -> {schema}) and spec.expectedSchemaFingerprint refuses a "
                "run with another schema (a RivetSchedule's schemaChangePolicy: fail): nothing was exported",
            )
            return False
        s.event("Planned", f"{total} chunks {_planned_over(plan)} -> {plan.get('resolved_prefix')}")
        s.phase("Running", "Planned", f"run {run_id}: {total} chunks planned")
        return True
    _failed_step(s, "plan", job, "PlanFailed", "planning")
    if s.get("stage") != "failed":
        _waiting_phase(s, "waiting", "Pending", "Planning", f"run {run_id}: planning failed", "plan")
    return False


def ledger_reads(status: dict[str, Any], job_chunks: list[int]) -> list[int] | None:
    """Which RivetLedger shards a reconcile reads (None: all of them). While exporting, only the shards that
    can change or whose chunks the decision needs: partly filled ones, and those holding a chunk with a Job
    (a record may have reached the shard just before a crash, ahead of the status that counts it). A full
    shard is summarised in `status.ledger.shards` (count, rows, bytes), which only the operator writes; an
    empty one without Jobs holds nothing. Starting and finalizing read every shard (fence, transport), and so
    does the tail of a run, once every chunk still to commit has a Job."""
    if status.get("stage") != "exporting":
        return None
    shards = (status.get("ledger") or {}).get("shards")
    if not isinstance(shards, dict):
        return None  # a status from before the summary: read all once, the summary follows
    total = int((status.get("plan") or {}).get("chunkCount") or 0)
    known = sum(int((entry or {}).get("count") or 0) for entry in shards.values())
    if known + len(set(job_chunks)) >= total:
        return None  # the run's tail: this reconcile may commit the last chunk and hand the ledger to finalize
    want = {configmaps.shard_of(c) for c in job_chunks}
    for key, entry in shards.items():
        count = int((entry or {}).get("count") or 0)
        if 0 < count < configmaps.capacity(int(key), total):
            want.add(int(key))
    return sorted(want)


def _ledger(s: Step) -> tuple[dict[int, dict[str, Any]], dict[str, str]]:
    """The current run's commit records (parsed by chunk, and as recorded), from the RivetLedger shards only
    the operator writes. ConfigMaps are never read back: anyone with ConfigMap rights could plant one. While
    exporting only the shards `ledger_reads` named were read: see `_committed` for the rest."""
    run = names.run_key(str(s.get("runId")))
    shards = [lg.records for lg in s.obs.ledgers if lg.run == run]
    shards.append({a.key: a.record for a in s.actions if isinstance(a, WriteLedger)})  # recorded this reconcile
    return configmaps.parse_records(shards)


def _planned_over(plan: dict[str, Any]) -> str:
    """How the plan splits the key, for people: a range, or keyset boundaries the database picked."""
    inner = plan.get("plan")
    if isinstance(inner, dict) and inner.get("keyset"):
        return f"at {len(inner.get('boundaries') or [])} keyset boundaries of {plan.get('chunk_column')}"
    return f"over [{plan.get('lo')}, {plan.get('hi')}]"


def _records(s: Step) -> dict[int, dict[str, Any]]:
    return _ledger(s)[0]


def _committed(s: Step, records: dict[int, dict[str, Any]], total: int) -> tuple[set[int], dict[str, Any]]:
    """Every committed chunk of the run and the per-shard summary to keep in status: shards read this
    reconcile are counted from their records, the others taken from the status summary (full shards: all
    their chunks; a shard not read and not summarised holds none)."""
    run = names.run_key(str(s.get("runId")))
    read = {configmaps.shard_of(i) for i in records}
    read |= {
        int(lg.name.rsplit("-", 1)[1]) for lg in s.obs.ledgers if lg.run == run and lg.name.rsplit("-", 1)[1].isdigit()
    }
    known = (s.get("ledger") or {}).get("shards") or {}
    committed = set(records)
    shards: dict[str, Any] = {}
    for n in range(configmaps.shard_count(total)):
        if n in read or s.obs.ledger_complete:
            mine = [r for i, r in records.items() if configmaps.shard_of(i) == n]
            if mine:
                shards[str(n)] = {
                    "count": len(mine),
                    "rows": sum(int(r.get("rows") or 0) for r in mine),
                    "bytes": sum(int(r.get("size_bytes") or 0) for r in mine),
                }
            continue
        entry = known.get(str(n))
        if not entry:
            continue
        shards[str(n)] = dict(entry)
        if int(entry.get("count") or 0) >= configmaps.capacity(n, total):
            lo = n * configmaps.SHARD_SIZE + 1
            committed.update(range(lo, lo + configmaps.capacity(n, total)))
    return committed, shards


def _export(s: Step, refused: tuple[str, str] | None) -> bool:
    exp, run_id, run, _ = _run(s)
    _report_foreign(s, run)
    owner, spec = s.obs.owner, s.obs.spec
    plan = s.get("plan") or {}
    total = int(plan.get("chunkCount") or 0)
    records = _records(s)
    running: set[int] = set()
    for job in sorted(_jobs(s, "chunk"), key=lambda j: (j.chunk or 0, j.attempt)):
        idx = job.chunk
        if idx is None:
            continue
        if job.state == RUNNING:
            running.add(idx)
            continue
        if job.state == SUCCEEDED and job.result and "rows" in job.result:
            if idx not in records:
                record = commit_record(job.result)
                s.do(
                    WriteLedger(
                        configmaps.ledger(owner, run_id, idx, exp),
                        configmaps.record_key(idx),
                        configmaps.record_text(record),
                        int(record.get("rows") or 0),
                        int(record.get("size_bytes") or 0),
                    )
                )
                records[idx] = record
            retries = _retries(s)
            if retries.pop(str(idx), None) is not None:
                s.set(retries=retries or None)
            s.do(Delete("jobs", job.name))
            continue
        counted = int(_retries(s).get(str(idx), {}).get("attempts", 0))
        if idx in records or job.attempt <= counted:
            s.do(Delete("jobs", job.name))  # its failure was counted by an earlier reconcile
            continue
        _failed_step(s, str(idx), job, "ChunkFailed", f"chunk {idx}")
        if s.get("stage") == "failed":
            _progress(s, *_committed(s, records, total), total, running)
            return False
    committed, shards = _committed(s, records, total)
    if not refused and not spec.get("suspend"):
        _start_chunks(s, committed, running, total)
    _progress(s, committed, shards, total, running)
    if len(committed) >= total and not running:
        s.set(stage="finalizing")
        s.event("ChunksCommitted", f"all {total} chunks committed; writing manifest.json then _SUCCESS")
        return True
    if running:
        s.requeue_in(s.settings.active_requeue_s)
    if refused:
        _hold(s, refused)
    elif spec.get("suspend"):
        s.phase("Suspended", "Suspended", f"run {run_id} suspended at {len(committed)}/{total} chunks")
    else:
        s.phase("Running", "Exporting", f"run {run_id}: {len(committed)}/{total} chunks committed")
    return False


def _start_chunks(s: Step, records: set[int], running: set[int], total: int) -> None:
    """Start chunk Jobs in the free slots of `parallelism`. A chunk waiting out its retry backoff holds its
    slot: in a source outage no new chunks pile up behind failing ones, and `status.retries` never holds
    more chunk entries than `parallelism` (the CRD allows 256, its map 300)."""
    exp, run_id, _, run_date = _run(s)
    plan = s.get("plan") or {}
    retries = _retries(s)
    pending = sorted(int(k) for k in retries if k.isdigit() and int(k) not in records and int(k) not in running)
    free = max(1, int(s.obs.spec.get("parallelism") or 1)) - len(running)
    fresh = (i for i in range(1, total + 1) if i not in records and i not in running and str(i) not in retries)
    for idx in [*pending, *fresh]:
        if free <= 0:
            break
        free -= 1
        entry = retries.get(str(idx))
        wait = _wait(s, entry)
        if wait > 0:
            s.requeue_in(wait)
            continue
        attempt = int((entry or {}).get("attempts", 0)) + 1
        args = job_specs.chunk_args(exp, run_id, run_date, idx, str(plan.get("document")), _cursor_arg(s))
        s.do(Create(_job_body(s, names.chunk_job(s.obs.owner, run_id, idx, attempt), "chunk", args, idx, attempt)))
        running.add(idx)


def _progress(s: Step, committed: set[int], shards: dict[str, Any], total: int, running: set[int]) -> None:
    """Progress and the ledger summary into status."""
    waiting = sum(1 for k in _retries(s) if k.isdigit() and int(k) not in committed)
    s.set(
        chunks=progress(sorted(committed), total, len(running), waiting),
        rowsWritten=sum(int(e["rows"]) for e in shards.values()),
        bytesWritten=sum(int(e["bytes"]) for e in shards.values()),
        ledger={"shards": shards},
    )


def _finalize(s: Step, refused: tuple[str, str] | None) -> None:
    exp, run_id, _, run_date = _run(s)
    owner, spec = s.obs.owner, s.obs.spec
    plan = s.get("plan") or {}
    total = int(plan.get("chunkCount") or 0)
    shards = tuple(names.ledger_shard(owner, run_id, n) for n in range(configmaps.shard_count(total)))
    if not s.obs.ledger_complete:  # the reconcile that committed the last chunk read only the open shards
        s.requeue_in(0)
        s.phase("Running", "Finalizing", f"run {run_id}: all {total} chunks committed; finalizing")
        return
    _, texts = _ledger(s)
    args = job_specs.finalize_args(
        exp,
        run_id,
        run_date,
        str(s.get("startedAt")),
        total,
        str(plan.get("document")),
        bool(spec.get("force")),
        _cursor_arg(s),
        ledger_digest(texts.items()),
    )

    def body(name: str, attempt: int) -> dict[str, Any]:
        """The finalize Job, after the transport ConfigMaps it reads (rewritten for every attempt)."""
        for cm in configmaps.transports(owner, run_id, texts):
            s.do(Put(cm))
        return _job_body(s, name, "finalize", args, None, attempt, ledger_shards=shards, empty_ledger=not shards)

    job, what = _run_once(s, "finalize", lambda attempt: names.finalize_job(owner, run_id, attempt), refused, body)
    if job is None:
        _waiting_phase(
            s, what, "Running", "Finalizing", f"run {run_id}: all {total} chunks committed; finalizing", "finalize"
        )
        return
    if not (job.state == SUCCEEDED and job.result and "manifest_fingerprint" in job.result):
        _failed_step(s, "finalize", job, "FinalizeFailed", "finalize")
        if s.get("stage") != "failed":
            _waiting_phase(s, "waiting", "Running", "Finalizing", f"run {run_id}: finalize failed", "finalize")
        return
    r = job.result
    s.set(
        stage="done",
        completedAt=s.obs.now_s,
        resolvedPrefix=r.get("resolved_prefix"),
        manifest={
            "fingerprint": r.get("manifest_fingerprint"),
            "partCount": r.get("part_count"),
            "rowCount": r.get("row_count"),
        },
        success=r.get("success"),
        rowsWritten=r.get("row_count"),
        bytesWritten=r.get("bytes"),
        reason="Succeeded",
        retries=None,
    )
    if spec.get("mode") == "incremental":
        s.set(cursor=advance_cursor(s.get("cursor"), _records(s).values(), run_id))
    message = f"run {run_id}: {r.get('row_count')} rows in {r.get('part_count')} parts certified at {r.get('resolved_prefix')}"
    s.phase("Succeeded", "Succeeded", message)
    s.event("Succeeded", message)
    for j in _jobs(s):
        s.do(Delete("jobs", j.name))
    for cm in s.obs.configmaps:  # the transport: a copy of the ledger, done with
        if cm.component == "transport":
            s.do(Delete("configmaps", cm.name))


def advance_cursor(cursor: dict[str, Any] | None, records: Any, run_id: str) -> dict[str, Any] | None:
    """After certification only: the highest `max_cursor` of the run's commit records, if it is higher than
    the cursor the run started at (typed comparison: a timestamp is never compared as text)."""
    base = dict(cursor or {})
    best_raw, best = base.get("value"), None
    if best_raw is not None:
        best = values.decode(best_raw)
    advanced = False
    for record in records:
        raw = record.get("max_cursor")
        if raw is None:
            continue
        value = values.decode(raw)
        try:
            higher = best is None or value > best
        except TypeError:
            higher = True
        if higher:
            best_raw, best, advanced = raw, value, True
    if not advanced:
        return cursor
    return {**base, "value": best_raw, "runId": run_id}
