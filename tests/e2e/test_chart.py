"""The Helm chart on the real cluster: the operator runs in-cluster, in a `restricted` namespace, and exports.

`helm install` helm/rivet-operator into a fresh namespace that enforces the `restricted` Pod Security
Standard, scoped to that namespace (watchNamespaces), with the test bed's image; then a chunked
PostgreSQL -> S3 export runs there through the installed operator (its Jobs admitted under `restricted`
too) and is awaited with `kubectl wait --for=condition=Ready`; then `helm uninstall` leaves the CRDs
and a RivetExport that still deletes at once (no finalizer left behind).

The CRDs are cluster-scoped and shared with the other e2e tests: they come from the crds_installed
fixture and the release runs with crds.enabled=false (the chart's CRD rendering is checked here with a
server-side dry run only, which changes nothing).
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Cluster, Helm
from tests.e2e.operator_env import status, wait_phase
from tests.e2e.test_operator import bucket_objects, ids_from, s3_export, secrets_for, seed_pg
from tests.fixtures.databases import DbServer
from tests.fixtures.objectstores import S3Server, unique_name
from tests.unit.test_chart import CHART, find_helm

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

RELEASE = "rivet-operator"  # fullname = the release name; cluster-scoped names add the namespace
METRICS_PORT = 9090


def require_helm() -> str:
    """The pinned helm binary; without one the test fails where servers are required (CI), else skips."""
    binary = find_helm()
    if not binary:
        why = "no helm binary: run `bash tests/cluster/helm.sh` (or set RIVET_HELM)"
        if os.environ.get("RIVET_E2E_REQUIRE_CLUSTER") == "1" or os.environ.get("RIVET_REQUIRE_SERVERS") == "1":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    return binary


@pytest.fixture
def helm(cluster: Cluster, tmp_path: Path) -> Helm:
    return Helm(require_helm(), cluster, tmp_path / "helm")


def notes_export(notes: str) -> dict[str, Any]:
    """The RivetExport example printed by NOTES.txt (between `cat <<'YAML'` and `YAML`)."""
    match = re.search(r"<<'YAML'[^\n]*\n(.*?)\n\s*YAML\n", notes, re.S)
    assert match, notes
    doc: dict[str, Any] = yaml.safe_load(match.group(1))
    return doc


def operator_logs(cluster: Cluster, ns: str) -> str:
    proc = cluster.kubectl("logs", f"deployment/{RELEASE}", "--tail=-1", namespace=ns, check=False)
    return proc.stdout + proc.stderr


def can_i(cluster: Cluster, sa: str, *args: str) -> bool:
    proc = cluster.kubectl("auth", "can-i", *args, f"--as={sa}", check=False)
    return proc.stdout.strip() == "yes"


def test_chart_installs_operator_that_exports_in_restricted_namespace(
    cluster: Cluster,
    namespace: str,
    helm: Helm,
    crds_installed: None,
    pod_pg: DbServer,
    pod_s3: S3Server,
) -> None:
    ns = namespace
    cluster.kubectl(
        "label", "namespace", ns,
        "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/enforce-version=latest",
        "pod-security.kubernetes.io/warn=restricted", "--overwrite",
    )  # fmt: skip
    repository, _, tag = cluster.image.rpartition(":")
    # no hostAliases: the test bed has no cluster DNS, and the operator logs in through
    # KUBERNETES_SERVICE_HOST/PORT (rivet_operator.runtime.login), as it must on any such cluster
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": cluster.pull_policy},
        "watchNamespaces": [ns],
        "crds": {"enabled": False},
        "workers": 2,
        "metrics": {"enabled": True, "port": METRICS_PORT},
        "jobDefaults": {"labels": {"rivet.test/chart": "yes"}, "activeDeadlineSeconds": 600},
    }
    values_file = Path(helm.env["HELM_CACHE_HOME"]).parent / "values.yaml"
    values_file.parent.mkdir(parents=True, exist_ok=True)
    values_file.write_text(yaml.safe_dump(values))

    # the chart's CRDs against the real API server, without changing anything (they are shared)
    crds = helm("template", RELEASE, str(CHART), "--namespace", ns, "--show-only", "templates/crds.yaml")
    cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=crds)

    # from here on, always uninstall: even a failed install leaves a release and cluster-scoped RBAC
    try:
        out = helm(
            "install", RELEASE, str(CHART), "--namespace", ns, "-f", str(values_file),
            "--wait", "--timeout", "180s",
        )  # fmt: skip
        cluster.kubectl("wait", "--for=condition=Available", f"deployment/{RELEASE}", "--timeout=120s", namespace=ns)
        dep = cluster.get_json("deployment", RELEASE, namespace=ns)
        assert dep["spec"]["strategy"]["type"] == "Recreate" and dep["status"]["availableReplicas"] == 1
        (pod,) = cluster.get_json("pods", "-l", "app.kubernetes.io/component=operator", namespace=ns)["items"]
        assert pod["spec"]["containers"][0]["image"] == cluster.image

        # RBAC: what the operator may do, and what it may not
        sa = f"system:serviceaccount:{ns}:{RELEASE}"
        assert can_i(cluster, sa, "create", "jobs.batch", "-n", ns)
        assert can_i(cluster, sa, "patch", "rivetexports.rivet.dev", "--subresource=status", "-n", ns)
        assert not can_i(cluster, sa, "get", "secrets", "-n", ns)
        assert not can_i(cluster, sa, "list", "rivetexports.rivet.dev", "-n", "default")
        assert not can_i(cluster, sa, "create", "jobs.batch", "-n", "default")
        assert not can_i(cluster, sa, "list", "rivetexports.rivet.dev", "--all-namespaces")

        # the NOTES example is a valid RivetExport for the real API server (schema and CEL rules)
        example = notes_export(out)
        cluster.kubectl("apply", "--dry-run=server", "-f", "-", namespace=ns, input=json.dumps(example))
        assert "kubectl wait --for=condition=Ready rivetexport/orders" in re.sub(r"-n \S+ ", "", out)

        # a small chunked export through the in-cluster operator
        table = f"public.chart_{uuid.uuid4().hex[:8]}"
        seed_pg(pod_pg, table, 3_000)
        bucket = unique_name()
        pod_s3.client().create_bucket(Bucket=bucket)
        secrets_for(cluster, ns, pod_pg.url, pod_s3)
        cluster.apply(s3_export("orders", table, pod_s3, bucket, "chart/{run_id}/", chunkSize=1000), ns)
        # while it runs, look at the Jobs the operator creates (finished ones are cleaned up)
        seen_jobs: dict[str, dict[str, str]] = {}

        def ready() -> bool:
            for job in cluster.get_json("jobs", namespace=ns)["items"]:
                seen_jobs[job["metadata"]["name"]] = job["spec"]["template"]["metadata"].get("labels") or {}
            conds = (cluster.get_json("rivetexport", "orders", namespace=ns).get("status") or {}).get("conditions")
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conds or [])

        cluster.wait_for("RivetExport orders Ready", ready, timeout=420, interval=0.5)
        cluster.kubectl("wait", "--for=condition=Ready", "rivetexport/orders", "--timeout=30s", namespace=ns)
        st = status(cluster, ns, "rivetexport", "orders")
        assert st["phase"] == "Succeeded" and st["rowsWritten"] == 3_000
        assert st["chunks"]["total"] == 3 and st["chunks"]["committed"] == 3
        prefix = f"chart/{st['runId']}/"
        assert st["resolvedPrefix"] == f"s3://{bucket}/{prefix}"
        objects = bucket_objects(pod_s3, bucket, prefix)
        manifest = json.loads(objects["manifest.json"])
        assert manifest["row_count"] == 3_000 and len(manifest["parts"]) == 3
        assert st["manifest"]["rowCount"] == 3_000
        assert ids_from(objects) == list(range(1, 3_001))

        # jobDefaults reached the Jobs' pods (and the restricted namespace admitted them)
        assert seen_jobs, "no Job seen while the export ran"
        assert all(labels.get("rivet.test/chart") == "yes" for labels in seen_jobs.values()), seen_jobs

        # metrics on the pod's own address (the bridge the host shares with pods)
        pod_ip = cluster.get_json("pods", "-l", "app.kubernetes.io/component=operator", namespace=ns)["items"][0][
            "status"
        ]["podIP"]
        with urllib.request.urlopen(f"http://{pod_ip}:{METRICS_PORT}/metrics", timeout=10) as resp:
            metrics = resp.read().decode()
        assert f'rivet_export_rows_written{{export="orders",namespace="{ns}"}} 3000.0' in metrics

        logs = operator_logs(cluster, ns)
        assert "operator_started" in logs
        for bad in ("Not enough permissions", "Forbidden", "forbidden"):
            assert bad not in logs, f"{bad!r} in the operator log:\n{logs[-5000:]}"
        assert pod_pg.password not in logs and pod_s3.secret_key not in logs

        # the chart's default job policy: a template that mounts a host path is refused, naming the field
        host = s3_export("hostpath", table, pod_s3, bucket, "hostpath/")
        host["spec"]["jobTemplate"] = {
            "volumes": [{"name": "host", "hostPath": {"path": "/var/lib"}}],
            "volumeMounts": [{"name": "host", "mountPath": "/host"}],
        }
        cluster.apply(host, ns)
        refused = wait_phase(cluster, ns, "rivetexport", "hostpath", ("Failed", "Succeeded"), timeout=120)
        stalled = next(c for c in refused["conditions"] if c["type"] == "Stalled")
        assert (
            refused["phase"] == "Failed" and stalled["status"] == "True" and stalled["reason"] == "JobTemplateRefused"
        )
        assert stalled["message"].startswith("spec.jobTemplate.volumes[0].hostPath:"), stalled["message"]
        assert not cluster.get_json("jobs", "-l", "rivet.dev/export=hostpath", namespace=ns)["items"]

        # no finalizer on our resource: it can outlive the operator
        obj = cluster.get_json("rivetexport", "orders", namespace=ns)
        assert not obj["metadata"].get("finalizers")
        # and the operator never restarted (liveness probe, crashes)
        (pod,) = cluster.get_json("pods", "-l", "app.kubernetes.io/component=operator", namespace=ns)["items"]
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    except BaseException:
        print(f"===== operator log =====\n{operator_logs(cluster, ns)[-20000:]}")
        prev = cluster.kubectl("logs", f"deployment/{RELEASE}", "--previous", namespace=ns, check=False)
        print(f"===== previous operator log =====\n{prev.stdout[-5000:]}{prev.stderr}")
        raise
    finally:
        # check=False: never mask the test's own failure; the assertions below catch a failed uninstall
        helm("uninstall", RELEASE, "--namespace", ns, "--wait", "--timeout", "120s", check=False)

    # after uninstall: no operator, no cluster-scoped leftovers, the CRDs untouched, and the export deletes
    assert cluster.kubectl("get", "deployment", RELEASE, namespace=ns, check=False).returncode != 0
    assert RELEASE not in helm("list", "--namespace", ns, "--all", "-q").split()
    assert cluster.kubectl("get", "clusterrole", f"{RELEASE}-{ns}-scanning", check=False).returncode != 0, (
        "cluster-scoped RBAC left behind"
    )
    cluster.kubectl("get", "crd", "rivetexports.rivet.dev", "rivetvalidations.rivet.dev")
    cluster.kubectl("delete", "rivetexport", "orders", "--timeout=60s", namespace=ns, timeout=90)
    assert cluster.kubectl("get", "rivetexport", "orders", namespace=ns, check=False).returncode != 0
