"""The apply shell's trust decisions against an in-memory API (a fake: the 409 races and a pre-planted
object with a forged owner reference are what a real server cannot be made to produce on demand)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from rivet_operator.controller.apply import Conflict, create, put, write_ledger
from rivet_operator.controller.model import WriteLedger
from rivet_operator.runtime.client import ApiError
from rivet_operator.specs import configmaps
from rivet_operator.specs.names import Owner

OWNER = Owner("rivet.dev/v1alpha1", "RivetExport", "orders", "uid-1", "ns")


class FakeKube:
    """Objects by (kind, name); create refuses a taken name with 409, status patches 404 on a missing object."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[str] = []

    async def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(f"create {body['kind']}")
        key = (body["kind"], body["metadata"]["name"])
        if key in self.objects:
            raise ApiError(409, "already exists")
        stored = copy.deepcopy(body)
        stored.pop("status", None)  # a create never carries status (status subresource)
        self.objects[key] = stored
        return stored

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, name))

    async def replace_configmap(self, namespace: str, body: dict[str, Any]) -> None:
        self.calls.append("replace ConfigMap")
        self.objects[("ConfigMap", body["metadata"]["name"])] = copy.deepcopy(body)

    async def patch_status(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(f"patch_status {plural}")
        obj = self.objects.get(("RivetLedger", name))
        if obj is None:
            raise ApiError(404, "not found")
        records = obj.setdefault("status", {}).setdefault("records", {})
        records.update(patch["records"])
        return obj


def job(args: list[str], env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    container = {"name": "rivet", "image": "rivet:dev", "command": ["rivet"], "args": args, "env": env or []}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "orders-abc-c1-1", "ownerReferences": [OWNER.reference()]},
        "spec": {"template": {"spec": {"containers": [container]}}},
    }


def test_a_planted_job_with_our_name_and_owner_reference_is_not_taken_for_ours() -> None:
    kube = FakeKube()
    ours = job(["chunk", "--chunk", "1"], [{"name": "RIVET_JOB_CONFIG", "value": "a"}])
    planted = job(["chunk", "--chunk", "1"], [{"name": "RIVET_JOB_CONFIG", "value": "b"}])
    asyncio.run(kube.create("ns", planted))
    with pytest.raises(Conflict, match="does not run what the operator would run"):
        asyncio.run(create(kube, OWNER, ours))  # type: ignore[arg-type]
    # the same body created earlier by us (a repeated decision) is fine; a defaulted fieldRef too
    kube2 = FakeKube()
    ref = [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    stored = job(
        ["chunk"], [{"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}]
    )
    asyncio.run(kube2.create("ns", stored))
    assert asyncio.run(create(kube2, OWNER, job(["chunk"], ref))) is False  # type: ignore[arg-type]


def test_a_ledger_record_goes_to_the_status_of_a_shard_created_first_when_missing() -> None:
    kube = FakeKube()
    body = configmaps.ledger(OWNER, "orders-r1", 1, "orders")
    asyncio.run(write_ledger(kube, OWNER, WriteLedger(body, "chunk-000001.json", '{"rows":1}')))  # type: ignore[arg-type]
    asyncio.run(write_ledger(kube, OWNER, WriteLedger(body, "chunk-000002.json", '{"rows":2}')))  # type: ignore[arg-type]
    stored = kube.objects[("RivetLedger", body["metadata"]["name"])]
    assert stored["status"]["records"] == {"chunk-000001.json": '{"rows":1}', "chunk-000002.json": '{"rows":2}'}
    assert kube.calls == [
        "patch_status rivetledgers",
        "create RivetLedger",
        "patch_status rivetledgers",
        "patch_status rivetledgers",  # the second record: one call
    ]


def test_the_finalize_transport_replaces_whatever_holds_its_name() -> None:
    kube = FakeKube()
    (cm,) = configmaps.transports(OWNER, "orders-r1", {"chunk-000001.json": '{"rows":1}'})
    planted = copy.deepcopy(cm)
    planted["data"] = {"chunk-000001.json": '{"rows":0}', "chunk-000002.json": "{}"}
    asyncio.run(kube.create("ns", planted))
    asyncio.run(put(kube, OWNER, cm))  # type: ignore[arg-type]
    assert kube.objects[("ConfigMap", cm["metadata"]["name"])]["data"] == {"chunk-000001.json": '{"rows":1}'}
