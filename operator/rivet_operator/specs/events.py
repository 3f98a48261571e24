"""Events on our resources (pure): one per transition a person would want to see in `kubectl describe`."""

from __future__ import annotations

import hashlib
from typing import Any

from rivet_operator.specs.names import Owner

COMPONENT = "rivet-operator"


def event(
    owner: Owner, reason: str, message: str, type_: str, now: str, series: str | None = None, count: int = 1
) -> dict[str, Any]:
    """One Event; with `series` its name is derived from (object, reason, series), so a repeat updates that
    Event's count instead of adding one (as the kubelet's own repeated Events do)."""
    if series:
        digest = hashlib.sha256(f"{owner.uid}/{reason}/{series}".encode()).hexdigest()[:16]
        meta: dict[str, Any] = {"name": f"{owner.name[:200]}.{digest}", "namespace": owner.namespace}
    else:
        meta = {"generateName": f"{owner.name[:200]}.", "namespace": owner.namespace}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": meta,
        "involvedObject": {
            "apiVersion": owner.api_version,
            "kind": owner.kind,
            "name": owner.name,
            "uid": owner.uid,
            "namespace": owner.namespace,
        },
        "reason": reason,
        "message": message[:1024],
        "type": type_,
        "source": {"component": COMPONENT},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": count,
        "reportingComponent": COMPONENT,
    }
