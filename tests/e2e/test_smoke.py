"""Smoke tests of the cluster itself: what the operator's e2e tests rely on, checked for real.

Run: tests/cluster/cluster.sh up && tests/cluster/image.sh && .venv/bin/pytest tests/e2e -m smoke
"""

from __future__ import annotations

import json
import textwrap
import uuid
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .conftest import Cluster, HostPostgres

pytestmark = [pytest.mark.e2e, pytest.mark.smoke]


def py(source: str) -> list[str]:
    """A command running Python source with the image's interpreter (the venv's python3)."""
    return ["python3", "-c", textwrap.dedent(source)]


def terminated(pod: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    return state


def test_job_completes_with_termination_message(cluster: Cluster, namespace: str) -> None:
    job = cluster.job_manifest(
        "hello",
        py("""
            import json, os, shutil, sys
            import rivet
            msg = {"uid": os.getuid(), "python": sys.executable,
                   "rivet": shutil.which("rivet"), "kopf": shutil.which("kopf")}
            with open("/dev/termination-log", "w") as f:
                json.dump(msg, f)
        """),
    )
    cluster.apply(job, namespace=namespace)
    assert cluster.wait_job("hello", namespace) == "Complete", cluster.describe(namespace)
    (pod,) = cluster.job_pods("hello", namespace)
    state = terminated(pod)
    assert state["exitCode"] == 0
    msg = json.loads(state["message"])
    assert msg["uid"] != 0
    assert msg["python"].startswith("/opt/rivet/")
    assert msg["rivet"] and msg["kopf"], msg


def test_failing_job_is_retried_per_backoff_limit(cluster: Cluster, namespace: str) -> None:
    job = cluster.job_manifest("fails", py("import sys; print('failing on purpose'); sys.exit(1)"), backoff_limit=1)
    cluster.apply(job, namespace=namespace)
    assert cluster.wait_job("fails", namespace, timeout=240) == "Failed"
    status = cluster.get_json("job", "fails", namespace=namespace)["status"]
    failed = [c for c in status["conditions"] if c["type"] == "Failed"]
    assert failed[0]["reason"] == "BackoffLimitExceeded"
    assert status.get("failed") == 2
    pods = cluster.job_pods("fails", namespace)
    assert len(pods) == 2
    assert [terminated(p)["exitCode"] for p in pods] == [1, 1]
    logs = cluster.kubectl("logs", pods[0]["metadata"]["name"], namespace=namespace).stdout
    assert "failing on purpose" in logs


def test_pod_reaches_postgres_on_the_host(cluster: Cluster, namespace: str, host_postgres: HostPostgres) -> None:
    job = cluster.job_manifest(
        "pg",
        py("""
            import os, psycopg
            with psycopg.connect(os.environ["DSN"], connect_timeout=10) as conn:
                one = conn.execute("select 1").fetchone()[0]
                version = conn.execute("show server_version").fetchone()[0]
            with open("/dev/termination-log", "w") as f:
                f.write(f"{one} {version}")
        """),
        env={"DSN": host_postgres.dsn},
    )
    cluster.apply(job, namespace=namespace)
    assert cluster.wait_job("pg", namespace) == "Complete", cluster.describe(namespace)
    (pod,) = cluster.job_pods("pg", namespace)
    one, version = terminated(pod)["message"].split(maxsplit=1)
    assert one == "1"
    assert version.startswith("15")


def test_pod_reaches_api_server_with_in_cluster_config(cluster: Cluster, namespace: str) -> None:
    # The `kubernetes` Service ClusterIP (kube-proxy) with the pod's own service account token and CA.
    job = cluster.job_manifest(
        "incluster",
        py("""
            import json, os, ssl, urllib.request
            sa = "/var/run/secrets/kubernetes.io/serviceaccount"
            host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
            req = urllib.request.Request(
                f"https://{host}:{port}/apis/authentication.k8s.io/v1/selfsubjectreviews",
                data=json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).encode(),
                headers={"Authorization": "Bearer " + open(sa + "/token").read(),
                         "Content-Type": "application/json"},
                method="POST")
            ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
            with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
                user = json.load(resp)["status"]["userInfo"]["username"]
            with open("/dev/termination-log", "w") as f:
                f.write(f"{host} {user}")
        """),
        automountServiceAccountToken=True,
    )
    cluster.apply(job, namespace=namespace)
    assert cluster.wait_job("incluster", namespace) == "Complete", cluster.describe(namespace)
    (pod,) = cluster.job_pods("incluster", namespace)
    host, user = terminated(pod)["message"].split()
    svc_ip = cluster.get_json("service", "kubernetes", namespace="default")["spec"]["clusterIP"]
    assert host == svc_ip
    assert user == f"system:serviceaccount:{namespace}:default"


def test_crd_with_status_subresource(cluster: Cluster) -> None:
    group = f"smoke{uuid.uuid4().hex[:6]}.rivet.test"
    crd_name = f"widgets.{group}"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                    "required": ["size"],
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {"phase": {"type": "string"}},
                                },
                            },
                        }
                    },
                }
            ],
        },
    }
    ns = f"e2e-crd-{uuid.uuid4().hex[:6]}"
    cluster.apply(crd)
    try:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd_name}", "--timeout=60s")
        cluster.kubectl("create", "namespace", ns)
        kind = f"widgets.v1.{group}"
        # The schema is enforced.
        bad = cluster.kubectl(
            "apply", "-f", "-", namespace=ns, check=False,
            input=json.dumps({"apiVersion": f"{group}/v1", "kind": "Widget",
                              "metadata": {"name": "bad"}, "spec": {"size": 0}}),
        )  # fmt: skip
        assert bad.returncode != 0 and "spec.size" in bad.stderr
        cluster.apply(
            {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}},
            namespace=ns,
        )
        # A status written through the main resource is dropped; through /status it sticks.
        cluster.kubectl("patch", kind, "w1", "--type=merge", "-p", '{"status": {"phase": "Ignored"}}', namespace=ns)
        assert "status" not in cluster.get_json(kind, "w1", namespace=ns)
        cluster.kubectl(
            "patch", kind, "w1", "--subresource=status", "--type=merge", "-p", '{"status": {"phase": "Ready"}}',
            namespace=ns,
        )  # fmt: skip
        obj = cluster.get_json(kind, "w1", namespace=ns)
        assert obj["status"] == {"phase": "Ready"}
        assert obj["spec"] == {"size": 3}
        assert obj["metadata"]["generation"] == 1
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        cluster.kubectl("delete", "crd", crd_name, "--wait=false", check=False)


def test_owner_reference_garbage_collection(cluster: Cluster, namespace: str) -> None:
    owner = cluster.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}, "data": {"k": "v"}},
        namespace=namespace,
    )
    job = cluster.job_manifest("child", py("import time; time.sleep(600)"))
    job["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "owner",
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    cluster.apply(job, namespace=namespace)

    def child_running() -> bool:
        pods = cluster.job_pods("child", namespace)
        return bool(pods) and pods[0]["status"].get("phase") == "Running"

    cluster.wait_for("the child Job's pod to run", child_running, timeout=120)
    cluster.kubectl("delete", "configmap", "owner", namespace=namespace)

    def child_gone() -> bool:
        jobs = cluster.get_json("jobs", namespace=namespace)["items"]
        return not any(j["metadata"]["name"] == "child" for j in jobs)

    cluster.wait_for("the garbage collector to delete the child Job", child_gone, timeout=120)
    cluster.wait_for(
        "the child Job's pods to go",
        lambda: not cluster.job_pods("child", namespace),
        timeout=120,
    )
