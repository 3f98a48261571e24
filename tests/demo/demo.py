"""`make demo`: the Kubernetes path end to end, the way a user runs it; nothing mocked.

1. A cluster: the local test bed (`tests/cluster`, brought up and loaded with the image when needed), or
   the current kube context with RIVET_DEMO_CONTEXT=current (KUBECONFIG or ~/.kube/config; the image
   already loaded, e.g. `kind load docker-image rivet:dev`; RIVET_DEMO_HOST_ADDRESS an address of this
   host that pods reach; RIVET_DEMO_IMAGE the image, default docker.io/library/rivet:dev).
2. PostgreSQL with a 200,000-row `orders` table and an S3 server (SeaweedFS), bound to that address.
3. `helm upgrade --install` of helm/rivet-operator into namespace `rivet-demo` (which enforces the
   `restricted` Pod Security level), watching that namespace only.
4. Secrets and a RivetExport (chunked, 8 chunks, parallelism 4, Parquet) applied with kubectl.
5. `kubectl wait --for=condition=Ready`, then `kubectl get rivetexports`.
6. manifest.json and `_SUCCESS` read from the bucket and checked against the status.
7. A RivetValidation of the export, awaited Ready, and its verdict.

The database and the S3 server are this process's children and stop when it ends; the release and the
namespace stay for a look around (`--cleanup` removes them). A re-run starts from a fresh namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import DEFAULT_IMAGE, TESTBED_JSON, Cluster, Helm, KubectlError, _kubectl_path
from tests.fixtures.databases import start_postgres
from tests.fixtures.objectstores import start_seaweedfs
from tests.unit.test_chart import CHART, find_helm

REPO = Path(__file__).resolve().parents[2]
NS = "rivet-demo"
RELEASE = "rivet-operator"
ROWS = 200_000
CRD_NAMES = ("rivetexports.rivet.dev", "rivetvalidations.rivet.dev")


def say(text: str) -> None:
    print(text, flush=True)


def local_bed() -> Cluster:
    """The test bed of tests/cluster: up (idempotent) with the image imported."""
    for script in ("cluster.sh", "image.sh"):
        args = ["bash", str(REPO / "tests" / "cluster" / script)] + (["up"] if script == "cluster.sh" else [])
        say(f"$ {' '.join(args[1:]).replace(str(REPO) + '/', '')}")
        subprocess.run(args, check=True)
    info = json.loads(TESTBED_JSON.read_text())
    return Cluster(info["kubeconfig"], info["image"], info["host_address"], _kubectl_path(), "Never", True)


def current_context() -> Cluster:
    kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    host = os.environ.get("RIVET_DEMO_HOST_ADDRESS")
    if not host:
        raise SystemExit(
            "RIVET_DEMO_CONTEXT=current needs RIVET_DEMO_HOST_ADDRESS: an address of this machine that pods reach "
            "(kind: the gateway of the `kind` docker network, e.g. `docker network inspect kind`)"
        )
    image = os.environ.get("RIVET_DEMO_IMAGE", DEFAULT_IMAGE)
    return Cluster(kubeconfig, image, host, _kubectl_path(), "IfNotPresent", False)


def kubectl(cluster: Cluster, *args: str, **kw: Any) -> str:
    """kubectl, echoed as the user would type it (no --kubeconfig, paths relative to the repository)."""
    ns = kw.get("namespace")
    say(f"$ kubectl {'-n ' + ns + ' ' if ns else ''}{shlex.join(args)}".replace(str(REPO) + "/", ""))
    return cluster.kubectl(*args, **kw).stdout


def helm(h: Helm, *args: str) -> str:
    """helm, echoed the same way; a failure ends the demo with helm's own output."""
    say(f"$ helm {shlex.join(args)}".replace(str(REPO) + "/", ""))
    try:
        return h(*args, timeout=600)
    except AssertionError as exc:
        raise SystemExit(str(exc)) from None


def crds_owned_elsewhere(cluster: Cluster) -> bool:
    """True when the CRDs exist but not from this release (kubectl apply, another release): then the
    release must not template them (Helm refuses to adopt objects it does not own)."""
    for name in CRD_NAMES:
        proc = cluster.kubectl("get", "crd", name, "-o", "json", check=False)
        if proc.returncode != 0:
            continue
        ann = json.loads(proc.stdout)["metadata"].get("annotations") or {}
        if (ann.get("meta.helm.sh/release-name"), ann.get("meta.helm.sh/release-namespace")) != (RELEASE, NS):
            return True
    return False


def fresh_namespace(cluster: Cluster, h: Helm) -> None:
    if cluster.kubectl("get", "namespace", NS, check=False).returncode == 0:
        say(f"demo: namespace {NS} exists from an earlier run; removing it first")
        releases = cluster.kubectl("get", "secrets", "-l", "owner=helm", "-o", "name", namespace=NS).stdout
        if f"sh.helm.release.v1.{RELEASE}." in releases:
            helm(h, "uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "120s")
        cluster.kubectl("delete", "namespace", NS, "--timeout=180s", timeout=200)
    kubectl(cluster, "create", "namespace", NS)
    kubectl(
        cluster, "label", "namespace", NS,
        "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/enforce-version=latest",
    )  # fmt: skip
    cluster.wait_default_serviceaccount(NS)


def export_yaml(endpoint: str) -> str:
    return f"""apiVersion: rivet.dev/v1alpha1
kind: RivetExport
metadata:
  name: orders
spec:
  source:
    type: postgres
    urlFrom: {{secretKeyRef: {{name: orders-db, key: url}}}}
  table: public.orders
  mode: chunked
  chunkColumn: id
  chunkSize: 25000
  parallelism: 4
  format: parquet
  destination:
    type: s3
    bucket: lake
    prefix: "exports/{{date}}/{{export}}/"
    endpoint: {endpoint}
    region: us-east-1
    accessKeyEnv: AWS_ACCESS_KEY_ID
    secretKeyEnv: AWS_SECRET_ACCESS_KEY
  envFrom:
    - secretRef: {{name: lake-credentials}}
"""


VALIDATION_YAML = """apiVersion: rivet.dev/v1alpha1
kind: RivetValidation
metadata:
  name: orders-check
spec:
  exportRef: {name: orders}
  envFrom:
    - secretRef: {name: lake-credentials}
"""


def seed(pg: Any) -> None:
    """The sample `orders` table both demos export (ROWS rows of mixed types)."""
    pg.execute(
        "CREATE TABLE public.orders (id bigint PRIMARY KEY, customer text, amount numeric(12,2),"
        " placed_at timestamptz, status text, attrs jsonb)"
    )
    pg.execute(
        f"INSERT INTO public.orders SELECT g, 'customer-' || (g % 997), (g % 10000) / 100.0,"
        f" timestamptz '2026-01-01' + g * interval '1 minute', (ARRAY['new','paid','shipped'])[1 + g % 3],"
        f" jsonb_build_object('n', g) FROM generate_series(1, {ROWS}) g"
    )


def abridged(doc: dict[str, Any]) -> dict[str, Any]:
    parts = doc["parts"]
    return {**doc, "parts": parts[:2] + ([f"... {len(parts) - 2} more"] if len(parts) > 2 else [])}


def run(cluster: Cluster, cleanup: bool) -> int:
    helm_bin = find_helm()
    if not helm_bin:
        raise SystemExit("no helm binary: run `bash tests/cluster/helm.sh` (make helm)")
    h = Helm(helm_bin, cluster, Path(tempfile.mkdtemp(prefix="rivet-demo-helm-")))
    host = str(cluster.host_address)
    say(f"demo: PostgreSQL ({ROWS:,} orders) and SeaweedFS (S3) on {host}, the address pods reach")
    pg = start_postgres(host=host)
    s3 = start_seaweedfs(host=host)
    try:
        seed(pg)
        s3.client().create_bucket(Bucket="lake")
        fresh_namespace(cluster, h)

        repository, _, tag = cluster.image.rpartition(":")
        crds_enabled = not crds_owned_elsewhere(cluster)
        if not crds_enabled:
            say("demo: the CRDs are already installed outside this release; applying the current ones with kubectl")
            kubectl(cluster, "apply", "-f", str(CHART / "files" / "crds"))
        t0 = time.monotonic()
        helm(
            h, "upgrade", "--install", RELEASE, str(CHART), "-n", NS,
            "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
            "--set", f"image.pullPolicy={cluster.pull_policy}", "--set", f"watchNamespaces={{{NS}}}",
            "--set", f"crds.enabled={str(crds_enabled).lower()}", "--wait", "--timeout", "180s",
        )  # fmt: skip
        say(f"demo: operator installed and Available in {time.monotonic() - t0:.0f}s")

        # credentials go into Secrets; the operator never reads them, Jobs get them via urlFrom/envFrom
        say("$ kubectl -n rivet-demo create secret generic orders-db --from-literal=url=postgresql://...")
        cluster.kubectl("create", "secret", "generic", "orders-db", f"--from-literal=url={pg.url}", namespace=NS)
        say("$ kubectl -n rivet-demo create secret generic lake-credentials --from-literal=AWS_ACCESS_KEY_ID=... ...")
        cluster.kubectl(
            "create", "secret", "generic", "lake-credentials",
            f"--from-literal=AWS_ACCESS_KEY_ID={s3.access_key}",
            f"--from-literal=AWS_SECRET_ACCESS_KEY={s3.secret_key}", namespace=NS,
        )  # fmt: skip

        manifest = export_yaml(s3.endpoint)
        say(f"$ kubectl -n {NS} apply -f - <<'EOF'\n{manifest}EOF")
        cluster.kubectl("apply", "-f", "-", namespace=NS, input=manifest)
        t0 = time.monotonic()
        try:
            say(kubectl(cluster, "wait", "--for=condition=Ready", "rivetexport/orders", "--timeout=600s",
                        namespace=NS, timeout=630).strip())  # fmt: skip
        except KubectlError:
            say(cluster.kubectl("get", "rivetexport", "orders", "-o", "yaml", namespace=NS).stdout)
            raise
        say(f"demo: Ready after {time.monotonic() - t0:.0f}s")
        say(kubectl(cluster, "get", "rivetexports", "-o", "wide", namespace=NS).rstrip())
        st: dict[str, Any] = cluster.get_json("rivetexport", "orders", namespace=NS)["status"]
        brief = {k: st.get(k) for k in ("phase", "runId", "resolvedPrefix", "chunks", "rowsWritten", "bytesWritten")}
        say(f"$ kubectl -n {NS} get rivetexport orders -o jsonpath='{{.status}}'  # abridged")
        say(json.dumps(brief, indent=2))

        bucket, _, prefix = st["resolvedPrefix"].removeprefix("s3://").partition("/")
        client = s3.client()
        body = client.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read()
        marker = client.get_object(Bucket=bucket, Key=prefix + "_SUCCESS")["Body"].read().decode().strip()
        doc = json.loads(body)
        say(f"demo: {st['resolvedPrefix']}manifest.json ({doc['part_count']} parts, {doc['row_count']:,} rows):")
        say(json.dumps(abridged(doc), indent=2))
        say(f"demo: _SUCCESS = {marker}")
        agree = marker == st["success"] == st["manifest"]["fingerprint"] and doc["row_count"] == ROWS
        say(f"demo: _SUCCESS, status.success and status.manifest.fingerprint agree: {agree}")
        if not agree:
            return 1

        say(f"$ kubectl -n {NS} apply -f - <<'EOF'\n{VALIDATION_YAML}EOF")
        cluster.kubectl("apply", "-f", "-", namespace=NS, input=VALIDATION_YAML)
        say(kubectl(cluster, "wait", "--for=condition=Ready", "rivetvalidation/orders-check", "--timeout=300s",
                    namespace=NS, timeout=330).strip())  # fmt: skip
        say(kubectl(cluster, "get", "rivetvalidations", namespace=NS).rstrip())
        vst = cluster.get_json("rivetvalidation", "orders-check", namespace=NS)["status"]
        ready = next(c for c in vst["conditions"] if c["type"] == "Ready")
        say(f"demo: validation passed={vst['passed']}: {ready['message']}")
        if not vst["passed"]:
            return 1
        say(f"demo: done. Look around: kubectl --kubeconfig {cluster.kubeconfig} -n {NS} get rivetexports,jobs,events")
        return 0
    finally:
        if cleanup:
            say(f"demo: --cleanup: helm uninstall {RELEASE} and delete namespace {NS}")
            h("uninstall", RELEASE, "-n", NS, "--wait", check=False)
            cluster.kubectl("delete", "namespace", NS, "--wait=false", check=False)
        if s3.process:
            s3.process.stop()
        pg.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--cleanup", action="store_true", help="uninstall the release and delete the namespace at the end")
    args = ap.parse_args()
    cluster = current_context() if os.environ.get("RIVET_DEMO_CONTEXT") == "current" else local_bed()
    return run(cluster, args.cleanup)


if __name__ == "__main__":
    sys.exit(main())
