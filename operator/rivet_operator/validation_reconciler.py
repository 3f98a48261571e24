"""RivetValidation: run one validate Job (destination credentials only) and report the verdict.

With `spec.interval` (seconds), a finished validation starts again after that long, so a prefix that
is tampered with later turns the resource un-Ready.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rivet_operator import builders, names
from rivet_operator.export_reconciler import Context, forget_earlier_runs
from rivet_operator.jobs import outcome
from rivet_operator.kube import ns_path
from rivet_operator.spec import SpecError, check_spec, export_name, render_yaml

PLURAL = "rivetvalidations"
FAILURES_KEPT = 5


def validation_spec(export_spec: dict[str, Any] | None, spec: dict[str, Any]) -> dict[str, Any]:
    """The export definition to validate against: the referenced RivetExport's, or an inline destination."""
    base: dict[str, Any] = dict(export_spec or {})
    if spec.get("destination"):
        base["destination"] = spec["destination"]
        base.setdefault("table", "unused")
    base["source"] = {"type": (base.get("source") or {}).get("type", "postgres"), "urlEnv": "RIVET_UNUSED_SOURCE"}
    for key in ("verify", "envFrom", "env", "jobTemplate"):
        if spec.get(key) is not None:
            base[key] = spec[key]
    base.pop("force", None)
    base.pop("suspend", None)
    return base


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    """Bounded status fields from the validate JSON (first failures only)."""
    if result.get("errors"):
        err = result["errors"][0]
        return {"passed": False, "legacyRun": False, "error": err.get("message"), "failures": []}
    e = (result.get("exports") or [{}])[0]
    v = e.get("verification") or {}
    failures = v.get("failures") or []
    return {
        "passed": bool(v.get("passed")),
        "legacyRun": bool(v.get("legacy_run")),
        "resolvedPrefix": e.get("resolved_prefix"),
        "manifestFound": bool(v.get("manifest_found")),
        "partsVerified": v.get("parts_verified", 0),
        "partsMd5Verified": v.get("parts_md5_verified", 0),
        "partsFailed": v.get("parts_failed", 0),
        "successMarkerConsistent": bool(v.get("success_marker_consistent")),
        "failureCount": v.get("failure_count", len(failures)),
        "failures": [{k: str(val)[:200] for k, val in f.items()} for f in failures[:FAILURES_KEPT]],
    }


async def reconcile(ctx: Context) -> None:
    spec = ctx.spec
    export_spec = None
    name_for_cfg = ctx.owner.name
    ref = (spec.get("exportRef") or {}).get("name")
    if ref:
        obj = await ctx.kube.get(
            ns_path(ctx.owner.namespace, "rivetexports", ref, group="rivet.dev", version="v1alpha1")
        )
        if obj is None:
            ctx.phase(
                "Failed",
                "ExportNotFound",
                f"spec.exportRef.name: RivetExport {ref!r} not found in {ctx.owner.namespace}",
            )
            return
        export_spec = obj.get("spec") or {}
        name_for_cfg = ref
        export_status = obj.get("status") or {}
    else:
        export_status = {}
        if not spec.get("destination"):
            ctx.phase("Failed", "InvalidSpec", "spec: set exportRef.name or destination")
            return
    vspec = validation_spec(export_spec, spec)
    try:
        check_spec(name_for_cfg, vspec)
    except SpecError as exc:
        ctx.phase("Failed", "InvalidSpec", str(exc))
        return
    stage = ctx.get("stage")
    interval = spec.get("interval")
    if stage == "done" and ctx.get("runGeneration") == ctx.generation:
        if interval and _due(ctx, int(interval)):
            stage = None
        else:
            return
    if ctx.get("runId") is None or stage is None or ctx.get("runGeneration") != ctx.generation:
        run_id = f"{ctx.owner.name[:40]}-{ctx.now:%Y%m%dt%H%M%S}"
        cm = builders.config_map(
            ctx.owner,
            names.config_map(ctx.owner.name, run_id),
            names.labels(names.L_VALIDATION, ctx.owner.name, run_id, "config"),
            render_yaml(name_for_cfg, vspec),
        )
        await ctx.kube.create(ns_path(ctx.owner.namespace, "configmaps"), cm)
        await forget_earlier_runs(ctx, names.run_key(run_id), names.L_VALIDATION)
        ctx.patch.update(
            {"runId": run_id, "runGeneration": ctx.generation, "stage": "validating", "startedAt": ctx.now_s}
        )
        ctx.phase("Pending", "Validating", f"validation {run_id} started")
        return
    run_id = str(ctx.get("runId"))
    job_name = names.validate_job(ctx.owner.name, run_id, 1)
    job = await ctx.kube.get(ns_path(ctx.owner.namespace, "jobs", job_name, group="batch"))
    if job is None:
        prefix = spec.get("prefix")
        if not prefix and not spec.get("date") and not spec.get("runId") and ref:
            prefix = export_status.get("resolvedPrefix")
        args = builders.validate_args(export_name(name_for_cfg, vspec), spec.get("date"), spec.get("runId"), prefix)
        js = builders.JobSpec(
            name=job_name,
            labels=names.labels(names.L_VALIDATION, ctx.owner.name, run_id, "validate"),
            args=args,
            config_map=names.config_map(ctx.owner.name, run_id),
        )
        await ctx.kube.create(
            ns_path(ctx.owner.namespace, "jobs", group="batch"),
            builders.job(ctx.owner, js, vspec, ctx.image, ctx.pull_policy, ctx.job_defaults),
        )
        ctx.phase("Running", "Validating", f"validation {run_id} running")
        return
    out = await outcome(ctx.kube, ctx.owner.namespace, job)
    if out.state == "running":
        return
    result = out.result or {}
    if "exports" not in result and "errors" not in result:
        ctx.patch.update({"stage": "done", "completedAt": ctx.now_s, "passed": False})
        msg = f"validate Job failed: {out.error.get('message', '')}"
        ctx.phase("Failed", "ValidationError", msg)
        ctx.event("ValidationError", msg, warning=True)
        return
    v = verdict(result)
    ctx.patch.update({"stage": "done", "completedAt": ctx.now_s, **v})
    if v["passed"]:
        note = " (legacy prefix: no manifest, not certified)" if v["legacyRun"] else ""
        msg = f"passed: {v['partsVerified']} parts verified ({v['partsMd5Verified']} by checksum){note}"
        ctx.phase("Succeeded", "Passed", msg)
        ctx.event("Passed", msg)
    else:
        kinds = ", ".join(sorted({f["kind"] for f in v["failures"]})) or v.get("error") or "error"
        msg = f"failed: {kinds}"
        ctx.phase("Failed", "ValidationFailed", msg)
        ctx.event("ValidationFailed", msg, warning=True)
    await ctx.kube.delete(ns_path(ctx.owner.namespace, "jobs", job_name, group="batch"))


def _due(ctx: Context, interval_s: int) -> bool:
    done = ctx.get("completedAt")
    if not done:
        return True
    finished = dt.datetime.strptime(str(done), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return (ctx.now - finished).total_seconds() >= interval_s
