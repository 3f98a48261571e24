"""metav1.Condition bookkeeping for Ready / Reconciling / Stalled (pure).

Readers: kstatus/Flux (Reconciling=True in progress, Stalled=True failed), `kubectl wait
--for=condition=Ready`, Argo CD (Lua health on the same fields), Argo Workflows (flat `status.phase`).
"""

from __future__ import annotations

from typing import Any

TYPES = ("Ready", "Reconciling", "Stalled")


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
