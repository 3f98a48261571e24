"""Pure builders: custom resource spec + run facts -> Kubernetes manifests (dicts), testable without a cluster.

Job pods default to the `restricted` Pod Security profile; `spec.jobTemplate` can add resources,
nodeSelector, tolerations, serviceAccountName, labels, annotations, volumes and volumeMounts.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from rivet_operator import names
from rivet_operator.spec import CONFIG_DIR, CONFIG_FILE, SOURCE_URL_ENV

TERMINATION_LOG = "/dev/termination-log"
LEDGER_DIR = "/var/run/rivet/ledger"


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


def metadata(
    owner: Owner, name: str, labels: dict[str, str], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels,
        "ownerReferences": [owner.reference()],
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


def config_map(owner: Owner, name: str, labels: dict[str, str], rivet_yaml: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, name, labels),
        "data": {"rivet.yaml": rivet_yaml},
    }


def ledger_shard(owner: Owner, name: str, labels: dict[str, str], records: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(owner, name, labels), "data": records}


POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "fsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
}


@dataclass(frozen=True)
class JobSpec:
    """What differs between the plan, chunk, finalize and validate Jobs."""

    name: str
    labels: dict[str, str]
    args: list[str]
    config_map: str
    ledger_shards: tuple[str, ...] = ()
    source_secret: dict[str, str] | None = None  # {"name":..., "key":...}; None for validate Jobs


def job(
    owner: Owner,
    js: JobSpec,
    spec: dict[str, Any],
    image: str,
    pull_policy: str = "IfNotPresent",
    defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A run-once Job (backoffLimit 0: the operator retries with its own backoff and permanent/transient rules)."""
    template = {**(defaults or {}), **(spec.get("jobTemplate") or {})}
    env: list[dict[str, Any]] = [{"name": "RIVET_LOG_FORMAT", "value": "json"}]
    if js.source_secret:
        env.append({"name": SOURCE_URL_ENV, "valueFrom": {"secretKeyRef": dict(js.source_secret)}})
    env.extend(copy.deepcopy(spec.get("env") or []))
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": js.config_map}},
        {"name": "tmp", "emptyDir": {}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if js.ledger_shards:
        sources = [{"configMap": {"name": shard}} for shard in js.ledger_shards]
        volumes.append({"name": "ledger", "projected": {"sources": sources}})
        mounts.append({"name": "ledger", "mountPath": LEDGER_DIR, "readOnly": True})
    elif LEDGER_DIR in js.args:  # an empty run (no chunks) still gets an (empty) ledger directory
        volumes.append({"name": "ledger", "emptyDir": {}})
        mounts.append({"name": "ledger", "mountPath": LEDGER_DIR, "readOnly": True})
    volumes.extend(copy.deepcopy(template.get("volumes") or []))
    mounts.extend(copy.deepcopy(template.get("volumeMounts") or []))
    container: dict[str, Any] = {
        "name": "rivet",
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": ["rivet"],
        "args": [*js.args, "-c", CONFIG_FILE, "--termination-log", TERMINATION_LOG],
        "env": env,
        "envFrom": copy.deepcopy(spec.get("envFrom") or []),
        "volumeMounts": mounts,
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
        "securityContext": {**CONTAINER_SECURITY, **(template.get("containerSecurityContext") or {})},
    }
    if template.get("resources"):
        container["resources"] = copy.deepcopy(template["resources"])
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": volumes,
        "securityContext": {**POD_SECURITY, **(template.get("securityContext") or {})},
        "automountServiceAccountToken": False,
    }
    for key in (
        "nodeSelector",
        "tolerations",
        "affinity",
        "serviceAccountName",
        "imagePullSecrets",
        "priorityClassName",
    ):
        if template.get(key):
            pod_spec[key] = copy.deepcopy(template[key])
    pod_labels = {**(template.get("labels") or {}), **js.labels}
    pod_meta: dict[str, Any] = {"labels": pod_labels}
    if template.get("annotations"):
        pod_meta["annotations"] = dict(template["annotations"])
    job_spec: dict[str, Any] = {"backoffLimit": 0, "template": {"metadata": pod_meta, "spec": pod_spec}}
    if template.get("activeDeadlineSeconds"):
        job_spec["activeDeadlineSeconds"] = template["activeDeadlineSeconds"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata(owner, js.name, js.labels), "spec": job_spec}


def common_args(export: str, run_id: str, run_date: str) -> list[str]:
    return ["-e", export, "--run-id", run_id, "--date", run_date]


def plan_args(export: str, run_id: str, run_date: str, force: bool) -> list[str]:
    return ["plan", *common_args(export, run_id, run_date), "--check-destination", *(["--force"] if force else [])]


def chunk_args(export: str, run_id: str, run_date: str, chunk: int, plan_document: str) -> list[str]:
    """The chunk Job gets the plan as the plan Job printed it, and computes its own range from it."""
    return ["chunk", *common_args(export, run_id, run_date), "--chunk", str(chunk), "--plan", plan_document]


def finalize_args(
    export: str, run_id: str, run_date: str, started_at: str, chunks: int, plan_json: str, force: bool
) -> list[str]:
    return [
        "finalize",
        *common_args(export, run_id, run_date),
        "--ledger",
        LEDGER_DIR,
        "--started-at",
        started_at,
        "--expect-chunks",
        str(chunks),
        "--plan",
        plan_json,
        *(["--force"] if force else []),
    ]


def validate_args(export: str, date: str | None, run_id: str | None, prefix: str | None) -> list[str]:
    args = ["validate", "-e", export, "--format", "json"]
    if date:
        args += ["--date", date]
    if run_id:
        args += ["--run-id", run_id]
    if prefix:
        args += ["--prefix", prefix]
    return args


def event(
    owner: Owner, reason: str, message: str, type_: str, now: str, component: str = "rivet-operator"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{owner.name}.", "namespace": owner.namespace},
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
        "source": {"component": component},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "reportingComponent": component,
    }


__all__ = ["LEDGER_DIR", "JobSpec", "Owner", "config_map", "event", "job", "ledger_shard", "names"]
