"""Deterministic names and labels, so a restarted operator finds everything it made (and 409 means done)."""

from __future__ import annotations

import hashlib

MANAGED_BY = "rivet-operator"
L_EXPORT = "rivet.dev/export"
L_VALIDATION = "rivet.dev/validation"
L_RUN = "rivet.dev/run"
L_COMPONENT = "rivet.dev/component"
L_CHUNK = "rivet.dev/chunk"


def run_key(run_id: str) -> str:
    """A short, label-safe key for a run id (run ids can be longer than a label value allows)."""
    return hashlib.sha256(run_id.encode()).hexdigest()[:10]


def base(name: str, run_id: str) -> str:
    return f"{name[:30].rstrip('-.')}-{run_key(run_id)}"


def config_map(name: str, run_id: str) -> str:
    return f"{base(name, run_id)}-config"


def plan_job(name: str, run_id: str, attempt: int) -> str:
    return f"{base(name, run_id)}-plan-{attempt}"


def chunk_job(name: str, run_id: str, chunk: int, attempt: int) -> str:
    return f"{base(name, run_id)}-c{chunk}-{attempt}"


def finalize_job(name: str, run_id: str, attempt: int) -> str:
    return f"{base(name, run_id)}-fin-{attempt}"


def ledger_shard(name: str, run_id: str, shard: int) -> str:
    return f"{base(name, run_id)}-ledger-{shard}"


def validate_job(name: str, run_id: str, attempt: int) -> str:
    return f"{base(name, run_id)}-val-{attempt}"


def labels(owner_label: str, owner: str, run_id: str, component: str, chunk: int | None = None) -> dict[str, str]:
    out = {
        "app.kubernetes.io/name": "rivet",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        owner_label: owner[:63],
        L_RUN: run_key(run_id),
        L_COMPONENT: component,
    }
    if chunk is not None:
        out[L_CHUNK] = str(chunk)
    return out
