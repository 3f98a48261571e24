"""What a Job's pods tell us (pure): its state and the JSON the `rivet` CLI wrote to the termination message.

The engine's exit codes: 0 ok, 1 permanent, 2 usage, 3 retryable, 4 integrity, 5 schema drift; the JSON
error carries `exit_code` (and, from older engines, `permanent`). A pod that ended without a message
(OOMKilled, DeadlineExceeded, deleted, never started) is an infrastructure failure: retryable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rivet_operator.specs import names

EXIT_RETRYABLE = 3
EXIT_REASONS = {2: "UsageError", 4: "IntegrityError", 5: "SchemaDrift"}
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


@dataclass(frozen=True)
class JobView:
    """One of our Jobs as observed: identity from its labels, outcome from its status and pods."""

    name: str
    run: str  # the run key label (names.run_key)
    component: str
    chunk: int | None
    attempt: int
    state: str  # running | succeeded | failed
    result: dict[str, Any] | None = None  # parsed termination message
    detail: str = ""  # why it failed when there is no message
    exit_code: int | None = None
    deleting: bool = False

    @property
    def error(self) -> dict[str, Any]:
        if self.result and isinstance(self.result.get("error"), dict):
            return dict(self.result["error"])
        return {"kind": "infrastructure", "message": self.detail or "the pod ended without a result"}

    @property
    def permanent(self) -> bool:
        """Whether another attempt cannot help (the engine said so, by exit code or flag)."""
        err = self.error
        code = err.get("exit_code")
        if isinstance(code, int) and not isinstance(code, bool):
            return code != EXIT_RETRYABLE
        if "permanent" in err:
            return bool(err["permanent"])
        return self.exit_code in EXIT_REASONS

    def reason(self, default: str) -> str:
        err = self.error
        if err.get("reason"):
            return str(err["reason"])
        code = err.get("exit_code", self.exit_code)
        return EXIT_REASONS.get(code, default) if isinstance(code, int) else default


def job_state(job: dict[str, Any]) -> str:
    st = job.get("status") or {}
    for cond in st.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return SUCCEEDED
        if cond.get("status") == "True" and cond.get("type") in ("Failed", "FailureTarget"):
            return FAILED
    if (st.get("succeeded") or 0) >= 1:
        return SUCCEEDED
    if (st.get("failed") or 0) >= 1:
        return FAILED
    return RUNNING


def termination(pods: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str, int | None]:
    """The newest terminated container's message parsed as JSON, a reason for humans, its exit code."""
    best: tuple[str, dict[str, Any] | None, str, int | None] | None = None
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
            if not term:
                continue
            finished = str(term.get("finishedAt") or "")
            message = term.get("message") or ""
            try:
                parsed = json.loads(message) if message else None
            except ValueError:
                parsed = None
            code = term.get("exitCode")
            reason = f"{term.get('reason', '')} (exit {code})"
            if best is None or finished > best[0]:
                best = (finished, parsed if isinstance(parsed, dict) else None, reason, code)
    if best is None:
        return None, "no terminated container (pod deleted or never started)", None
    return best[1], best[2], best[3]


def pod_job_name(pod: dict[str, Any]) -> str:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return str(labels.get("batch.kubernetes.io/job-name") or labels.get("job-name") or "")


def view(job: dict[str, Any], pods: list[dict[str, Any]]) -> JobView:
    """A JobView from the Job and the pods of this Job (only read when it has ended)."""
    meta = job.get("metadata") or {}
    labels = meta.get("labels") or {}
    state = job_state(job)
    chunk = labels.get(names.L_CHUNK)
    attempt = labels.get(names.L_ATTEMPT) or meta.get("name", "").rsplit("-", 1)[-1]
    base = JobView(
        name=str(meta.get("name")),
        run=str(labels.get(names.L_RUN, "")),
        component=str(labels.get(names.L_COMPONENT, "")),
        chunk=int(chunk) if chunk and str(chunk).isdigit() else None,
        attempt=int(attempt) if str(attempt).isdigit() else 1,
        state=state,
        deleting=bool(meta.get("deletionTimestamp")),
    )
    if state == RUNNING:
        return base
    result, detail, code = termination(pods)
    if state == FAILED and result is None:
        reasons = [c.get("message") or c.get("reason") for c in (job.get("status") or {}).get("conditions") or []]
        detail = "; ".join(r for r in reasons if r) or detail
    return JobView(**{**base.__dict__, "result": result, "detail": detail, "exit_code": code})


def pod_active(pod: dict[str, Any]) -> bool:
    """Whether a pod may still run code (and so still write to the destination)."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
