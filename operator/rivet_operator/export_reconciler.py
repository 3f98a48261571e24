"""RivetExport: one idempotent reconcile step per timer tick, from status + ledger + live Jobs.

Stages: planning (plan Job) -> exporting (chunk Jobs, at most `parallelism`) -> finalizing (finalize
Job) -> done | failed. Everything needed to continue after an operator restart is in the CR status
(run id, date, plan), the ledger ConfigMaps and the Jobs, all found by deterministic names and labels.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rivet.contract.plan import format_ranges
from rivet_operator import builders, conditions, ledger, names
from rivet_operator.jobs import Outcome, outcome
from rivet_operator.kube import Kube, ns_path
from rivet_operator.spec import SpecError, check_spec, export_name, render_yaml

GROUP, VERSION, PLURAL = "rivet.dev", "v1alpha1", "rivetexports"
DEFAULT_RETRIES = 3
RANGES_LIMIT = 1024
log = logging.getLogger("rivet_operator.export")


@dataclass
class Context:
    """What one tick works with; `status` accumulates the merge patch, `events` what to announce."""

    kube: Kube
    owner: builders.Owner
    spec: dict[str, Any]
    status: dict[str, Any]
    generation: int
    image: str
    pull_policy: str
    job_defaults: dict[str, Any]
    now: dt.datetime
    patch: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def now_s(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def get(self, key: str, default: Any = None) -> Any:
        return self.patch.get(key, self.status.get(key, default))

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append((reason, message, "Warning" if warning else "Normal"))

    def phase(self, phase: str, reason: str, message: str, generation: int | None = None) -> None:
        gen = self.generation if generation is None else generation
        self.patch["phase"] = phase
        self.patch["message"] = message[:1024]
        self.patch["observedGeneration"] = gen
        self.patch["conditions"] = conditions.for_phase(
            self.get("conditions", []) or [], phase, reason, message, gen, self.now_s
        )


async def reconcile(ctx: Context) -> None:
    try:
        check_spec(ctx.owner.name, ctx.spec)
    except SpecError as exc:
        if ctx.get("reason") != "InvalidSpec" or ctx.get("observedGeneration") != ctx.generation:
            ctx.event("InvalidSpec", str(exc), warning=True)
        ctx.patch["reason"] = "InvalidSpec"
        ctx.phase("Failed", "InvalidSpec", str(exc))
        return
    stage = ctx.get("stage")
    run_gen = ctx.get("runGeneration")
    if ctx.get("runId") is None or (stage in ("done", "failed") and run_gen != ctx.generation):
        await start_run(ctx)
        return
    if stage in ("done", "failed"):
        return
    gen = int(run_gen or ctx.generation)
    if stage == "planning":
        await plan_stage(ctx, gen)
    elif stage == "exporting":
        await export_stage(ctx, gen)
    elif stage == "finalizing":
        await finalize_stage(ctx, gen)


# -- start -----------------------------------------------------------------------------------------


async def start_run(ctx: Context) -> None:
    run_date = str(ctx.spec.get("date") or ctx.now.date().isoformat())
    run_id = f"{ctx.owner.name[:40]}-{ctx.now:%Y%m%dt%H%M%S}"
    cm = builders.config_map(
        ctx.owner,
        names.config_map(ctx.owner.name, run_id),
        names.labels(names.L_EXPORT, ctx.owner.name, run_id, "config"),
        render_yaml(ctx.owner.name, ctx.spec),
    )
    await ctx.kube.create(ns_path(ctx.owner.namespace, "configmaps"), cm)
    await forget_earlier_runs(ctx, names.run_key(run_id))
    ctx.patch.update(
        {
            "runId": run_id,
            "runDate": run_date,
            "runGeneration": ctx.generation,
            "stage": "planning",
            "startedAt": ctx.now_s,
            "completedAt": None,
            "plan": None,
            "resolvedPrefix": None,
            "reason": None,
            "chunks": progress({}, 0, 0, 0),
            "rowsWritten": 0,
            "bytesWritten": 0,
            "manifest": None,
            "success": None,
            "retries": None,
            "attempts": {"plan": 1, "finalize": 1},
        }
    )
    ctx.phase("Pending", "RunStarted", f"run {run_id} started: planning")
    ctx.event("RunStarted", f"run {run_id} started (date {run_date})")
    log.info("run_start export=%s run_id=%s", ctx.owner.name, run_id)


async def forget_earlier_runs(ctx: Context, keep: str, owner_label: str = names.L_EXPORT) -> None:
    """Earlier runs' config and ledger ConfigMaps are only resume state: drop them when a new run starts."""
    selector = f"{owner_label}={ctx.owner.name[:63]},{names.L_RUN}!={keep}"
    for cm in await ctx.kube.list(ns_path(ctx.owner.namespace, "configmaps"), selector):
        await ctx.kube.delete(ns_path(ctx.owner.namespace, "configmaps", cm["metadata"]["name"]))


def _common(ctx: Context) -> tuple[str, str, str]:
    return export_name(ctx.owner.name, ctx.spec), str(ctx.get("runId")), str(ctx.get("runDate"))


def _secret(ctx: Context) -> dict[str, str] | None:
    ref = ((ctx.spec.get("source") or {}).get("urlFrom") or {}).get("secretKeyRef")
    return {"name": ref["name"], "key": ref["key"]} if ref else None


def _job(
    ctx: Context, name: str, component: str, args: list[str], chunk: int | None = None, shards: tuple[str, ...] = ()
) -> dict[str, Any]:
    run_id = str(ctx.get("runId"))
    js = builders.JobSpec(
        name=name,
        labels=names.labels(names.L_EXPORT, ctx.owner.name, run_id, component, chunk),
        args=args,
        config_map=names.config_map(ctx.owner.name, run_id),
        ledger_shards=shards,
        source_secret=_secret(ctx),
    )
    return builders.job(ctx.owner, js, ctx.spec, ctx.image, ctx.pull_policy, ctx.job_defaults)


async def _jobs(ctx: Context, component: str) -> list[dict[str, Any]]:
    selector = (
        f"{names.L_EXPORT}={ctx.owner.name[:63]},{names.L_RUN}={names.run_key(str(ctx.get('runId')))},"
        f"{names.L_COMPONENT}={component}"
    )
    return await ctx.kube.list(ns_path(ctx.owner.namespace, "jobs", group="batch"), selector)


def _attempt(ctx: Context, key: str) -> int:
    return int((ctx.get("attempts") or {}).get(key, 1))


def _fail(ctx: Context, gen: int, reason: str, message: str) -> None:
    ctx.patch.update({"stage": "failed", "reason": reason, "completedAt": ctx.now_s})
    ctx.phase("Failed", reason, message, gen)
    ctx.event(reason, message, warning=True)
    log.warning("run_failed export=%s reason=%s message=%s", ctx.owner.name, reason, message)


def _max_retries(ctx: Context) -> int:
    return int(ctx.spec.get("maxChunkRetries", DEFAULT_RETRIES))


async def _retry_or_fail(ctx: Context, gen: int, key: str, out: Outcome, reason: str, what: str) -> None:
    """Permanent errors stall at once; transient ones get another attempt (new Job name) up to the limit."""
    error = out.error
    message = f"{what} failed: {error.get('message', '')}"
    if out.permanent:
        _fail(ctx, gen, str(error.get("reason") or reason), message)
        return
    attempt = _attempt(ctx, key)
    if attempt > _max_retries(ctx):
        _fail(ctx, gen, "RetriesExhausted", f"{message} (after {attempt} attempts)")
        return
    ctx.patch["attempts"] = {**(ctx.get("attempts") or {}), key: attempt + 1}
    ctx.event("Retrying", f"{message}; attempt {attempt + 1}", warning=True)


async def _run_once(
    ctx: Context, component: str, name: str, body: Callable[[], dict[str, Any]]
) -> tuple[bool, Outcome | None]:
    """A stage's run-once Job (plan, finalize): (created now, its outcome once it has ended)."""
    job = next((j for j in await _jobs(ctx, component) if j["metadata"]["name"] == name), None)
    if job is None:
        await ctx.kube.create(ns_path(ctx.owner.namespace, "jobs", group="batch"), body())
        return True, None
    out = await outcome(ctx.kube, ctx.owner.namespace, job)
    return False, None if out.state == "running" else out


async def _end_run_once(ctx: Context, name: str, failed: tuple[int, str, Outcome, str, str] | None = None) -> None:
    """Delete a finished run-once Job; a failure (gen, key, outcome, reason, what) is retried or fails the
    run first, and a failed run keeps its Job as evidence."""
    if failed is not None:
        await _retry_or_fail(ctx, *failed)
    if ctx.get("stage") != "failed":
        await ctx.kube.delete(ns_path(ctx.owner.namespace, "jobs", name, group="batch"))


# -- planning --------------------------------------------------------------------------------------


async def plan_stage(ctx: Context, gen: int) -> None:
    exp, run_id, run_date = _common(ctx)
    name = names.plan_job(ctx.owner.name, run_id, _attempt(ctx, "plan"))
    args = builders.plan_args(exp, run_id, run_date, bool(ctx.spec.get("force")))
    created, out = await _run_once(ctx, "plan", name, lambda: _job(ctx, name, "plan", args))
    if created:
        ctx.phase("Pending", "Planning", f"run {run_id}: planning", gen)
    if out is None:
        return
    if out.state == "succeeded" and out.result and "chunk_count" in out.result:
        plan = out.result
        total = int(plan["chunk_count"])
        ctx.patch.update(
            {
                "stage": "exporting" if total else "finalizing",
                "resolvedPrefix": plan.get("resolved_prefix"),
                "plan": {
                    "lo": plan.get("lo"),
                    "hi": plan.get("hi"),
                    "chunkSize": plan.get("chunk_size"),
                    "chunkCount": total,
                    "rowEstimate": plan.get("row_estimate"),
                    "fingerprint": plan.get("plan_fingerprint"),
                    "schemaFingerprint": plan.get("schema_fingerprint"),
                    "document": json.dumps(plan, separators=(",", ":"), sort_keys=True),
                },
                "chunks": progress({}, total, 0, 0),
            }
        )
        ctx.phase("Running", "Planned", f"run {run_id}: {total} chunks planned", gen)
        ctx.event(
            "Planned", f"{total} chunks over [{plan.get('lo')}, {plan.get('hi')}] -> {plan.get('resolved_prefix')}"
        )
        await _end_run_once(ctx, name)
        return
    await _end_run_once(ctx, name, (gen, "plan", out, "PlanFailed", "planning"))


# -- exporting -------------------------------------------------------------------------------------


def progress(records: dict[int, dict[str, Any]], total: int, running: int, failed: int) -> dict[str, Any]:
    """Bounded progress for status: counts and a range string, never a list per chunk (pure)."""
    ranges = format_ranges(sorted(records))
    if len(ranges) > RANGES_LIMIT:
        ranges = ranges[: RANGES_LIMIT - 3].rsplit(",", 1)[0] + ",..."
    return {
        "total": total,
        "committed": len(records),
        "running": running,
        "failed": failed,
        "committedRanges": ranges,
        "progress": f"{len(records)}/{total}",
    }


# What a chunk Job prints beside its commit record (how it decided); the rest is stored verbatim.
JOB_ONLY_FIELDS = frozenset({"decision", "resolved_prefix", "quarantined"})


def commit_record(result: dict[str, Any]) -> dict[str, Any]:
    """The engine's commit record as the chunk Job printed it, without the Job's own remarks (pure)."""
    return {k: v for k, v in result.items() if k not in JOB_ONLY_FIELDS}


async def export_stage(ctx: Context, gen: int) -> None:
    exp, run_id, run_date = _common(ctx)
    plan = ctx.get("plan") or {}
    total = int(plan.get("chunkCount") or 0)
    records = await ledger.read(ctx.kube, ctx.owner.namespace, names.L_EXPORT, ctx.owner.name, run_id)
    running: dict[int, dict[str, Any]] = {}
    retries = dict(ctx.get("retries") or {})
    failed_now = 0
    for job in await _jobs(ctx, "chunk"):
        idx = int(job["metadata"]["labels"][names.L_CHUNK])
        out = await outcome(ctx.kube, ctx.owner.namespace, job)
        job_path = ns_path(ctx.owner.namespace, "jobs", job["metadata"]["name"], group="batch")
        if out.state == "running":
            running[idx] = job
            continue
        recorded = out.state == "succeeded" and bool(out.result) and "rows" in (out.result or {})
        if recorded and out.result is not None and idx not in records:
            record = commit_record(out.result)
            await ledger.write(ctx.kube, ctx.owner, run_id, idx, record)  # durable before the Job goes
            records[idx] = record
            if str(idx) in retries:
                retries[str(idx)] = None
        elif idx not in records:  # failed, or succeeded without a readable commit record: retry, bounded
            failed_now += 1
            n = int(retries.get(str(idx)) or 0) + 1
            error = out.error
            if out.permanent or n > _max_retries(ctx):
                why = "" if out.permanent else f" (after {n} attempts)"
                reason = str(error.get("reason") or ("ChunkFailed" if out.permanent else "RetriesExhausted"))
                _fail(ctx, gen, reason, f"chunk {idx} failed: {error.get('message', '')}{why}")
                ctx.patch["chunks"] = progress(records, total, len(running), failed_now)
                return
            retries[str(idx)] = n
            ctx.event("ChunkRetry", f"chunk {idx} failed ({error.get('message', '')}); retry {n}", warning=True)
        await ctx.kube.delete(job_path)
    if not ctx.spec.get("suspend"):
        slots = max(1, int(ctx.spec.get("parallelism") or 1)) - len(running)
        idx = 1
        while slots > 0 and idx <= total:
            if idx not in records and idx not in running:
                attempt = int(retries.get(str(idx)) or 0) + 1
                name = names.chunk_job(ctx.owner.name, run_id, idx, attempt)
                args = builders.chunk_args(exp, run_id, run_date, idx, str(plan.get("document")))
                body = _job(ctx, name, "chunk", args, chunk=idx)
                await ctx.kube.create(ns_path(ctx.owner.namespace, "jobs", group="batch"), body)
                running[idx] = body
                slots -= 1
            idx += 1
    ctx.patch["retries"] = {k: v for k, v in retries.items()} or None
    ctx.patch["chunks"] = progress(records, total, len(running), failed_now)
    ctx.patch["rowsWritten"] = sum(int(r.get("rows") or 0) for r in records.values())
    ctx.patch["bytesWritten"] = sum(int(r.get("size_bytes") or 0) for r in records.values())
    if len(records) >= total and not running:
        ctx.patch["stage"] = "finalizing"
        ctx.phase("Running", "Finalizing", f"run {run_id}: all {total} chunks committed; finalizing", gen)
        ctx.event("ChunksCommitted", f"all {total} chunks committed; writing manifest.json then _SUCCESS")
    elif ctx.spec.get("suspend"):
        ctx.phase("Suspended", "Suspended", f"run {run_id} suspended at {len(records)}/{total} chunks", gen)
    else:
        ctx.phase("Running", "Exporting", f"run {run_id}: {len(records)}/{total} chunks committed", gen)


# -- finalizing ------------------------------------------------------------------------------------


async def finalize_stage(ctx: Context, gen: int) -> None:
    exp, run_id, run_date = _common(ctx)
    plan = ctx.get("plan") or {}
    total = int(plan.get("chunkCount") or 0)
    name = names.finalize_job(ctx.owner.name, run_id, _attempt(ctx, "finalize"))
    shards = tuple(names.ledger_shard(ctx.owner.name, run_id, s) for s in range(ledger.shard_count(total)))
    args = builders.finalize_args(
        exp, run_id, run_date, str(ctx.get("startedAt")), total, str(plan.get("document")), bool(ctx.spec.get("force"))
    )
    _, out = await _run_once(ctx, "finalize", name, lambda: _job(ctx, name, "finalize", args, shards=shards))
    if out is None:
        return
    if out.state == "succeeded" and out.result and "manifest_fingerprint" in out.result:
        r = out.result
        ctx.patch.update(
            {
                "stage": "done",
                "completedAt": ctx.now_s,
                "resolvedPrefix": r.get("resolved_prefix"),
                "manifest": {
                    "fingerprint": r.get("manifest_fingerprint"),
                    "partCount": r.get("part_count"),
                    "rowCount": r.get("row_count"),
                },
                "success": r.get("success"),
                "rowsWritten": r.get("row_count"),
                "bytesWritten": r.get("bytes"),
                "reason": "Succeeded",
            }
        )
        msg = f"run {run_id}: {r.get('row_count')} rows in {r.get('part_count')} parts certified at {r.get('resolved_prefix')}"
        ctx.phase("Succeeded", "Succeeded", msg, gen)
        ctx.event("Succeeded", msg)
        await _end_run_once(ctx, name)
        return
    await _end_run_once(ctx, name, (gen, "finalize", out, "FinalizeFailed", "finalize"))
