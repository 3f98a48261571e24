"""Observe Jobs: outcome and the pod's termination message (the JSON the rivet CLI wrote)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rivet_operator.kube import Kube, ns_path


@dataclass(frozen=True)
class Outcome:
    state: str  # "running" | "succeeded" | "failed"
    result: dict[str, Any] | None  # parsed termination message, if any
    detail: str = ""  # why it failed when there is no message (OOMKilled, DeadlineExceeded, pod deleted)

    @property
    def error(self) -> dict[str, Any]:
        if self.result and isinstance(self.result.get("error"), dict):
            return dict(self.result["error"])
        return {
            "kind": "infrastructure",
            "permanent": False,
            "message": self.detail or "the pod ended without a result",
        }

    @property
    def permanent(self) -> bool:
        return bool(self.error.get("permanent"))


def job_state(job: dict[str, Any]) -> str:
    st = job.get("status") or {}
    for cond in st.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "succeeded"
        if cond.get("status") == "True" and cond.get("type") in ("Failed", "FailureTarget"):
            return "failed"
    if (st.get("succeeded") or 0) >= 1:
        return "succeeded"
    if (st.get("failed") or 0) >= 1:
        return "failed"
    return "running"


def termination(pods: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    """The newest terminated container's message, parsed as JSON, and a reason for humans."""
    best: tuple[str, dict[str, Any] | None, str] | None = None
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
            reason = f"{term.get('reason', '')} (exit {term.get('exitCode')})"
            if best is None or finished > best[0]:
                best = (finished, parsed if isinstance(parsed, dict) else None, reason)
    if best is None:
        return None, "no terminated container (pod deleted or never started)"
    return best[1], best[2]


async def outcome(kube: Kube, namespace: str, job: dict[str, Any]) -> Outcome:
    state = job_state(job)
    if state == "running":
        return Outcome("running", None)
    name = job["metadata"]["name"]
    pods = await kube.list(ns_path(namespace, "pods"), f"job-name={name}")
    result, detail = termination(pods)
    if state == "failed" and not pods:
        reasons = [c.get("message") or c.get("reason") for c in (job.get("status") or {}).get("conditions") or []]
        detail = "; ".join(r for r in reasons if r) or detail
    return Outcome(state, result, detail)
