"""Names and labels of what the operator creates, derived from the owner's uid and the run, so that two
resources whose names share a long prefix never collide, and every name and label value stays valid.

Kubernetes limits: object names here are DNS labels (63 characters, [a-z0-9-], alphanumeric at both ends:
a Job's name also becomes its pods' `job-name` label); label values are at most 63 characters, begin and
end alphanumeric. A 409 on create is trusted only when the existing object's owner reference is ours
(controller/apply.py).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

MANAGED_BY = "rivet-operator"
L_NAME = "app.kubernetes.io/name"
L_MANAGED = "app.kubernetes.io/managed-by"
L_EXPORT = "rivet.dev/export"  # owner name (sanitised, for people: selectors use L_OWNER_UID)
L_VALIDATION = "rivet.dev/validation"
L_OWNER_UID = "rivet.dev/owner-uid"
L_RUN = "rivet.dev/run"
L_COMPONENT = "rivet.dev/component"
L_CHUNK = "rivet.dev/chunk"
L_ATTEMPT = "rivet.dev/attempt"
OWNER_LABEL = {"RivetExport": L_EXPORT, "RivetValidation": L_VALIDATION}
MAX_NAME = 63
PREFIX_MAX = 30  # leaves room for -<10 hex>-c100000-21 (chunk index and attempt at their bounds)


@dataclass(frozen=True)
class Owner:
    """The custom resource that owns (and garbage-collects) what we create."""

    api_version: str
    kind: str
    name: str
    uid: str
    namespace: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": False,
        }

    @property
    def key(self) -> str:
        """Short, stable key of this object (uid hash): part of every name we derive from it."""
        return hashlib.sha256(self.uid.encode()).hexdigest()[:8]


def dns_label(text: str, limit: int = MAX_NAME) -> str:
    """`text` as a DNS label prefix: lowercase [a-z0-9-], at most `limit`, alphanumeric at both ends."""
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower())[:limit].strip("-")
    return out or "x"


def label_value(text: str) -> str:
    """`text` as a label value: [A-Za-z0-9_.-], at most 63, alphanumeric at both ends (may be empty)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63].strip("-_.")


def run_key(run_id: str) -> str:
    """A short, label-safe key for a run id (run ids can be longer than a label value allows)."""
    return hashlib.sha256(run_id.encode()).hexdigest()[:10]


def run_id(owner: Owner, stamp: str) -> str:
    """The run id (`{run_id}` in prefixes, the manifest's run_id): `<name>-<stamp>`, where a long name is
    cut and marked with the owner's uid hash so that two names sharing a long prefix never share run ids."""
    if len(owner.name) <= 40:
        return f"{owner.name}-{stamp}"
    return f"{owner.name[:31].rstrip('-.')}-{owner.key}-{stamp}"


def base(owner: Owner, run: str) -> str:
    """`<name prefix>-<hash of uid and run>`: unique per object and run, at most 41 characters."""
    digest = hashlib.sha256(f"{owner.uid}/{run}".encode()).hexdigest()[:10]
    return f"{dns_label(owner.name, PREFIX_MAX)}-{digest}"


def plan_job(owner: Owner, run: str, attempt: int) -> str:
    return f"{base(owner, run)}-plan-{attempt}"


def chunk_job(owner: Owner, run: str, chunk: int, attempt: int) -> str:
    return f"{base(owner, run)}-c{chunk}-{attempt}"


def finalize_job(owner: Owner, run: str, attempt: int) -> str:
    return f"{base(owner, run)}-fin-{attempt}"


def validate_job(owner: Owner, run: str, attempt: int) -> str:
    return f"{base(owner, run)}-val-{attempt}"


def ledger_shard(owner: Owner, run: str, shard: int) -> str:
    return f"{base(owner, run)}-ledger-{shard}"


def labels(
    owner: Owner, run: str, component: str, chunk: int | None = None, attempt: int | None = None
) -> dict[str, str]:
    out = {
        L_NAME: "rivet",
        L_MANAGED: MANAGED_BY,
        OWNER_LABEL.get(owner.kind, L_EXPORT): label_value(owner.name),
        L_OWNER_UID: owner.uid,
        L_RUN: run_key(run),
        L_COMPONENT: component,
    }
    if chunk is not None:
        out[L_CHUNK] = str(chunk)
    if attempt is not None:
        out[L_ATTEMPT] = str(attempt)
    return out


def owned_selector(owner: Owner) -> str:
    return f"{L_OWNER_UID}={owner.uid}"
