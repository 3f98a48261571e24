"""The Job pod policy on the real cluster: a jobTemplate cannot weaken the `restricted` profile.

RivetExports are created (`kubectl create` of JSON, explicit nulls kept by the API server inside the
schema-less security contexts) in a namespace that enforces the restricted Pod Security Standard: a Job
pod that lost a restricted default would be refused by admission and the run would never finish. Every
pod the Job controller creates is read back from the API (a watch, so none is missed before the operator
deletes its Job) and must carry the restricted values. A template that asks to weaken with a value is
refused: Stalled, reason JobTemplateRefused, naming the field, and no Job.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cluster
from tests.e2e.operator_env import Operator, status, wait_phase
from tests.e2e.test_operator import s3_export, secrets_for, seed_pg
from tests.fixtures.databases import DbServer
from tests.fixtures.objectstores import S3Server, unique_name

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# the four measured on the cluster before the fix (each produced a pod without the restricted defaults)
NULLS_AND_EMPTIES: dict[str, dict[str, Any]] = {
    "seccomp-null": {"securityContext": {"seccompProfile": None}},
    "ape-null": {"containerSecurityContext": {"allowPrivilegeEscalation": None}},
    "caps-null": {"containerSecurityContext": {"capabilities": None}},
    "caps-drop-empty": {"containerSecurityContext": {"capabilities": {"drop": []}, "runAsNonRoot": None}},
}
APPARMOR = "container.apparmor.security.beta.kubernetes.io/rivet"
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "tolerate-all": ({"tolerations": [{"operator": "Exists"}]}, "spec.jobTemplate.tolerations[0].key"),
    "apparmor-unconfined": ({"annotations": {APPARMOR: "unconfined"}}, f"spec.jobTemplate.annotations[{APPARMOR}]"),
}


def watched_pods(path: Path) -> dict[str, dict[str, Any]]:
    """The newest version of every pod a `kubectl get pods --watch -o json` wrote to `path`."""
    text, at = path.read_text(), 0
    pods: dict[str, dict[str, Any]] = {}
    decoder = json.JSONDecoder()
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return pods
        try:
            obj, at = decoder.raw_decode(text, at)
        except ValueError:  # a last object still being written
            return pods
        pods[obj["metadata"]["name"]] = obj


def refused_pods(cluster: Cluster, ns: str) -> list[str]:
    """What admission said when it refused a Job's pod (PodSecurity: a restricted default was lost)."""
    events = cluster.get_json("events", "--field-selector", "reason=FailedCreate", namespace=ns)["items"]
    return [str(e.get("message")) for e in events]


def finished(cluster: Cluster, ns: str, name: str, timeout: float = 600) -> dict[str, Any]:
    """The export's status once it is Failed or Succeeded; fails at once when a Job's pod is refused
    (the operator would wait for it until the Job's deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        refused = refused_pods(cluster, ns)
        assert refused == [], refused[:3]
        st = status(cluster, ns, "rivetexport", name)
        if st.get("phase") in ("Failed", "Succeeded"):
            return st
        assert time.monotonic() < deadline, f"{name} never finished; last status: {st}"
        time.sleep(1)


def restricted_problems(pod: dict[str, Any]) -> list[str]:
    spec, out = pod["spec"], []
    psc = spec.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True:
        out.append(f"pod runAsNonRoot {psc.get('runAsNonRoot')!r}")
    if psc.get("seccompProfile") != {"type": "RuntimeDefault"}:
        out.append(f"pod seccompProfile {psc.get('seccompProfile')!r}")
    for key, value in (pod["metadata"].get("annotations") or {}).items():
        if "apparmor" in key or "seccomp" in key:
            out.append(f"annotation {key}={value}")
    for c in spec["containers"]:
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{c['name']} allowPrivilegeEscalation {sc.get('allowPrivilegeEscalation')!r}")
        if sc.get("runAsNonRoot") is not True:
            out.append(f"{c['name']} runAsNonRoot {sc.get('runAsNonRoot')!r}")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            out.append(f"{c['name']} capabilities {sc.get('capabilities')!r}")
        if (sc.get("capabilities") or {}).get("add") or sc.get("privileged"):
            out.append(f"{c['name']} adds capabilities or is privileged")
    return out


def test_null_and_empty_template_values_leave_job_pods_restricted_and_weakening_ones_are_refused(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server, tmp_path: Path
) -> None:
    ns = namespace
    cluster.kubectl(
        "label", "namespace", ns,
        "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/enforce-version=latest",
        "--overwrite",
    )  # fmt: skip
    seed_pg(pod_pg, "public.policy_e2e", 40)
    bucket = unique_name()
    pod_s3.client().create_bucket(Bucket=bucket)
    secrets_for(cluster, ns, pod_pg.url, pod_s3)
    watch_out = tmp_path / "pods.json"
    with watch_out.open("wb") as out:
        watch = subprocess.Popen(
            [cluster.kubectl_path, "--kubeconfig", cluster.kubeconfig, "--namespace", ns, "get", "pods",
             "--watch", "-o", "json", "-l", "rivet.dev/export"],
            stdout=out, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        for name, template in {**NULLS_AND_EMPTIES, **{n: t for n, (t, _) in REFUSED.items()}}.items():
            export = s3_export(
                name, "public.policy_e2e", pod_s3, bucket, "{export}/{run_id}/", chunkSize=20, parallelism=2
            )
            export["spec"]["jobTemplate"] = template
            created = cluster.create(export, ns)
            # the API server kept what the test sent: the nulls and empties do reach the operator
            assert created["spec"]["jobTemplate"] == template, created["spec"]["jobTemplate"]

        for name, (_, field) in REFUSED.items():
            st = wait_phase(cluster, ns, "rivetexport", name, ("Failed", "Succeeded"), timeout=180)
            stalled = next(c for c in st["conditions"] if c["type"] == "Stalled")
            assert st["phase"] == "Failed" and stalled["status"] == "True", st
            assert stalled["reason"] == "JobTemplateRefused", stalled
            assert stalled["message"].startswith(f"{field}: "), stalled["message"]
            assert not cluster.get_json("jobs", "-l", f"rivet.dev/export={name}", namespace=ns)["items"]

        for name in NULLS_AND_EMPTIES:
            st = finished(cluster, ns, name)
            assert st["phase"] == "Succeeded", st
            assert st["chunks"]["total"] == 2 and st["rowsWritten"] == 40, st
    finally:
        watch.terminate()
        watch.wait(timeout=30)

    pods = watched_pods(watch_out)
    by_export: dict[str, set[str]] = {}
    for pod in pods.values():
        labels = pod["metadata"]["labels"]
        by_export.setdefault(labels["rivet.dev/export"], set()).add(labels["rivet.dev/component"])
        assert restricted_problems(pod) == [], (pod["metadata"]["name"], pod["spec"])
    # every run's pods were seen: plan, its two chunks, finalize; none for the refused templates
    assert by_export == {name: {"plan", "chunk", "finalize"} for name in NULLS_AND_EMPTIES}, by_export
    chunk_pods = [p for p in pods.values() if p["metadata"]["labels"]["rivet.dev/component"] == "chunk"]
    assert len(chunk_pods) >= 2 * len(NULLS_AND_EMPTIES)
    # admission never refused a pod (it would have, had a restricted default been lost)
    assert refused_pods(cluster, ns) == []
