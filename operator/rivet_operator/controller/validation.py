"""RivetValidation: decide (pure). One validate Job per round (destination credentials only), its verdict in
status, the Job deleted once read. A new round starts when the spec changes (a new generation), when the
`rivet.dev/rerun` annotation gets a new value, or `spec.interval` seconds after the last verdict; each round
first deletes what the previous one left (so an interval never piles up Jobs).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from rivet_operator.api.policy import check_job_template
from rivet_operator.api.spec import SpecError, check_spec, export_name, render_yaml, validation_export_spec
from rivet_operator.api.status import verdict
from rivet_operator.controller.model import RERUN_ANNOTATION, Create, Decision, Delete, Observed, Settings, parse_time
from rivet_operator.controller.outcomes import RUNNING
from rivet_operator.controller.step import Step
from rivet_operator.specs import jobs as job_specs
from rivet_operator.specs import names

ACTIVE = ("starting", "validating")


def due_in(status: dict[str, Any], spec: dict[str, Any], now: dt.datetime) -> float | None:
    """Seconds until the next round of an `interval` validation (None: no interval)."""
    interval = spec.get("interval")
    if not interval:
        return None
    done = parse_time(status.get("completedAt"))
    if done is None:
        return 0.0
    return float(interval) - (now - done).total_seconds()


def wants_new_round(generation: int, spec: dict[str, Any], status: dict[str, Any], annotations: dict[str, str]) -> bool:
    if not status.get("runId") or status.get("runGeneration") != generation:
        return True
    token = annotations.get(RERUN_ANNOTATION)
    return bool(token and token != status.get("rerun"))


def needs_visit(body: dict[str, Any]) -> bool:
    meta = body.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return False
    status, spec = body.get("status") or {}, body.get("spec") or {}
    generation = int(meta.get("generation") or 1)
    if status.get("stage") in ACTIVE or spec.get("interval"):
        return True
    return wants_new_round(generation, spec, status, meta.get("annotations") or {})


@dataclass(frozen=True)
class Checked:
    """The definition a round validates against (`name` renders the config), or why it cannot run."""

    name: str = ""
    vspec: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    message: str = ""


def check(obs: Observed, settings: Settings) -> Checked:
    spec = obs.spec
    ref = (spec.get("exportRef") or {}).get("name")
    if ref and obs.export is None:
        return Checked(
            reason="ExportNotFound",
            message=f"spec.exportRef.name: RivetExport {ref!r} not found in {obs.owner.namespace}",
        )
    if not ref and not spec.get("destination"):
        return Checked(reason="InvalidSpec", message="spec: set exportRef.name or destination")
    vspec = validation_export_spec((obs.export or {}).get("spec") if ref else None, spec)
    name = ref or obs.owner.name
    try:
        check_spec(name, vspec)
    except SpecError as exc:
        return Checked(reason="InvalidSpec", message=str(exc))
    refused = check_job_template(spec.get("jobTemplate") or {}, settings.policy)
    if refused:
        return Checked(reason="JobTemplateRefused", message=str(refused))
    return Checked(name=name, vspec=vspec)


def decide_validation(obs: Observed, settings: Settings) -> Decision:
    s = Step(obs, settings)
    checked = check(obs, settings)
    stage = s.get("stage")
    if stage not in ACTIVE:
        wait = due_in(obs.status, obs.spec, obs.now)
        new = wants_new_round(obs.generation, obs.spec, obs.status, obs.annotations) or (wait is not None and wait <= 0)
        if not new:
            s.observe_generation()
            for job in obs.jobs:
                if not job.deleting:
                    s.do(Delete("jobs", job.name))
            if wait is not None:
                s.requeue_in(wait)
            return s.decision()
        if checked.reason:
            if s.get("reason") != checked.reason or s.get("message") != checked.message:
                s.event(checked.reason, checked.message, warning=True)
            s.set(reason=checked.reason)
            s.phase("Failed", checked.reason, checked.message)
            if wait is not None:  # an interval keeps trying: the export may appear, the spec be fixed
                s.requeue_in(max(30.0, float(obs.spec.get("interval") or 30)))
            return s.decision()
        _start(s, checked)
    elif checked.reason:
        s.set(reason=checked.reason)
        s.phase("Failed", checked.reason, checked.message)
        return s.decision()
    if s.get("stage") == "starting" and not _fence(s):
        return s.decision()
    _validate(s, checked)
    return s.decision()


def _start(s: Step, checked: Checked) -> None:
    obs = s.obs
    run_id = names.run_id(obs.owner, obs.now.strftime("%Y%m%dt%H%M%S"))
    if run_id == s.get("runId"):
        run_id = f"{run_id}-2"
    s.set(
        runId=run_id,
        runGeneration=obs.generation,
        rerun=obs.annotations.get(RERUN_ANNOTATION) or s.get("rerun"),
        stage="starting",
        startedAt=obs.now_s,
        reason=None,
    )
    s.phase("Pending", "Validating", f"validation {run_id} started")


def _fence(s: Step) -> bool:
    run = names.run_key(str(s.get("runId")))
    earlier = [j for j in s.obs.jobs if j.run != run]
    for job in earlier:
        if not job.deleting:
            s.do(Delete("jobs", job.name))
    for cm in s.obs.configmaps:
        if cm.run != run:
            s.do(Delete("configmaps", cm.name))
    earlier = [j for j in earlier if j.state == RUNNING]
    pods = [p for p in s.obs.pods if p.run != run and p.active]
    if earlier or pods:
        s.requeue_in(s.settings.fence_poll_s)
        return False
    s.set(stage="validating")
    return True


def _validate(s: Step, checked: Checked) -> None:
    obs, spec = s.obs, s.obs.spec
    vspec, name_for_cfg = checked.vspec, checked.name
    run_id = str(s.get("runId"))
    run = names.run_key(run_id)
    job_name = names.validate_job(obs.owner, run_id, 1)
    job = next((j for j in obs.jobs if j.run == run and j.name == job_name), None)
    if job is None:
        ref = (spec.get("exportRef") or {}).get("name")
        prefix = spec.get("prefix")
        if not prefix and not spec.get("date") and not spec.get("runId") and ref:
            prefix = ((obs.export or {}).get("status") or {}).get("resolvedPrefix")
        args = job_specs.validate_args(export_name(name_for_cfg, vspec), spec.get("date"), spec.get("runId"), prefix)
        js = job_specs.JobSpec(
            name=job_name,
            labels=names.labels(obs.owner, run_id, "validate", None, 1),
            args=args,
            config=render_yaml(name_for_cfg, vspec),
        )
        s.do(Create(job_specs.job(obs.owner, js, vspec, s.settings.runtime)))
        s.phase("Running", "Validating", f"validation {run_id} running")
        s.requeue_in(s.settings.active_requeue_s)
        return
    if job.state == RUNNING:
        s.requeue_in(s.settings.active_requeue_s)
        return
    result = job.result or {}
    s.set(stage="done", completedAt=obs.now_s)
    if "exports" not in result and "errors" not in result:
        message = f"validate Job failed: {job.error.get('message', '')}"
        s.set(passed=False, reason="ValidationError")
        s.phase("Failed", "ValidationError", message)
        s.event("ValidationError", message, warning=True)
    else:
        v = verdict(result)
        s.set(**v)
        if v["passed"]:
            note = " (legacy prefix: no manifest, not certified)" if v["legacyRun"] else ""
            message = f"passed: {v['partsVerified']} parts verified ({v['partsMd5Verified']} by checksum){note}"
            s.set(reason="Passed")
            s.phase("Succeeded", "Passed", message)
            s.event("Passed", message)
        else:
            kinds = ", ".join(sorted({f["kind"] for f in v["failures"]})) or v.get("error") or "error"
            message = f"failed: {kinds}"
            s.set(reason="ValidationFailed")
            s.phase("Failed", "ValidationFailed", message)
            s.event("ValidationFailed", message, warning=True)
    s.do(Delete("jobs", job.name))  # read: passed or failed, it goes (an interval must not pile up Jobs)
    if spec.get("interval"):
        s.requeue_in(float(spec["interval"]))
