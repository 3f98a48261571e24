"""Events on our resources (pure): one per transition a person would want to see in `kubectl describe`."""

from __future__ import annotations

from typing import Any

from rivet_operator.specs.names import Owner

COMPONENT = "rivet-operator"


def event(owner: Owner, reason: str, message: str, type_: str, now: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{owner.name[:200]}.", "namespace": owner.namespace},
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
        "count": 1,
        "reportingComponent": COMPONENT,
    }
