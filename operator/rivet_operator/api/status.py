"""Status of our resources (pure): metav1.Condition bookkeeping, bounded progress, merge patches.

Readers: kstatus/Flux (Reconciling=True in progress, Stalled=True failed), `kubectl wait
--for=condition=Ready`, Argo CD (Lua health on the same fields), Argo Workflows (flat `status.phase`).
"""

from __future__ import annotations

from typing import Any

from rivet.contract.plan import format_ranges

TYPES = ("Ready", "Reconciling", "Stalled")
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Suspended")
RANGES_LIMIT = 1024

# The stages of a run that still has Jobs to start (the controller and the CRD's immutability rule).
ACTIVE_STAGES = ("starting", "planning", "exporting", "finalizing")


def set_condition(
    conditions: list[dict[str, Any]], type_: str, status: bool, reason: str, message: str, generation: int, now: str
) -> list[dict[str, Any]]:
    """Return a new list with `type_` set; lastTransitionTime moves only when the status flips."""
    value = "True" if status else "False"
    out: list[dict[str, Any]] = []
    found = False
    for cond in conditions:
        if cond.get("type") == type_:
            found = True
            changed = cond.get("status") != value
            cond = {
                "type": type_,
                "status": value,
                "reason": reason,
                "message": message[:1024],
                "observedGeneration": generation,
                "lastTransitionTime": now if changed else cond.get("lastTransitionTime", now),
            }
        out.append(cond)
    if not found:
        out.append(
            {
                "type": type_,
                "status": value,
                "reason": reason,
                "message": message[:1024],
                "observedGeneration": generation,
                "lastTransitionTime": now,
            }
        )
    return out


def for_phase(
    conditions: list[dict[str, Any]], phase: str, reason: str, message: str, generation: int, now: str
) -> list[dict[str, Any]]:
    """The three conditions implied by a phase (Pending/Running/Succeeded/Failed/Suspended)."""
    ready = phase == "Succeeded"
    reconciling = phase in ("Pending", "Running")
    stalled = phase == "Failed"
    conds = set_condition(
        conditions, "Ready", ready, reason if ready or not reconciling else "Reconciling", message, generation, now
    )
    conds = set_condition(
        conds,
        "Reconciling",
        reconciling,
        reason if reconciling else "Idle",
        message if reconciling else "",
        generation,
        now,
    )
    conds = set_condition(
        conds, "Stalled", stalled, reason if stalled else "NotStalled", message if stalled else "", generation, now
    )
    return [c for t in TYPES for c in conds if c["type"] == t]


def get(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def progress(committed: list[int], total: int, running: int, failed: int) -> dict[str, Any]:
    """Bounded progress for status: counts and a range string, never a list per chunk."""
    ranges = format_ranges(sorted(committed))
    if len(ranges) > RANGES_LIMIT:
        ranges = ranges[: RANGES_LIMIT - 3].rsplit(",", 1)[0] + ",..."
    return {
        "total": total,
        "committed": len(committed),
        "running": running,
        "failed": failed,
        "committedRanges": ranges,
        "progress": f"{len(committed)}/{total}",
    }


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `old` into `new` for the keys `new` names: maps merge key by
    key (a key gone from a map becomes null), anything else is replaced whole; unchanged keys are left out."""
    out: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            inner = merge_patch(before, value)
            inner.update({k: None for k in before if k not in value})
            if inner:
                out[key] = inner
        elif value != before:
            out[key] = value
    return out


FAILURES_KEPT = 5


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    """RivetValidation status fields from `rivet validate --format json` (bounded: first failures only)."""
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
        "error": None,
    }
