"""The snippets of docs/gitops.md, exercised against real exports on the real cluster.

- Flux: the Kustomization is created (server dry run) against Flux's own CRD, fetched from the Go module
  proxy (kustomize-controller), so a wrong field or type fails here; its `wait: true` health check is
  Flux's kstatus fork (github.com/fluxcd/cli-utils), run on the objects below.
- Argo Workflows: the step's manifest is created as written (`generateName`, like the step's `kubectl
  create`) after pointing it at the test servers; its successCondition/failureCondition are evaluated
  the way Argo's executor does (apimachinery label-selector requirements over gjson paths; Argo itself
  is not on the Go proxy, see tests/e2e/gitops/main.go).
- kubectl wait: the documented commands run verbatim, only namespace, name and timeout substituted.
- Argo CD: docs/argocd-health.lua on the same objects.

Each reader sees the same three real objects: a fresh export (before the operator looks), one the
operator certified, and one it stalled (the table does not exist).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Cluster
from tests.e2e.operator_env import REPO, Operator, build_go_tool, go_binary, go_env, wait_phase
from tests.e2e.test_operator import secrets_for, seed_pg
from tests.fixtures.databases import DbServer
from tests.fixtures.objectstores import S3Server, unique_name
from tests.unit.test_argocd_health import health

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DOC = REPO / "docs" / "gitops.md"
FLUX_MODULE = "github.com/fluxcd/kustomize-controller@v1.9.6"
FLUX_CRD = "config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml"


def snippets() -> dict[str, str]:
    """Fenced blocks preceded by `<!-- snippet: NAME -->`."""
    found = re.findall(r"<!-- snippet: ([\w-]+) -->\n```\w*\n(.*?)\n```", DOC.read_text(), re.S)
    return dict(found)


@pytest.fixture(scope="session")
def readers() -> Callable[..., dict[str, str]]:
    binary = build_go_tool(REPO / "tests" / "e2e" / "gitops")

    def read(mode: str, obj: dict[str, Any], *args: str) -> dict[str, str]:
        out = subprocess.run([str(binary), mode, *args], input=json.dumps(obj), capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout))

    return read


@pytest.fixture(scope="session")
def flux_crd() -> Path:
    proc = subprocess.run(
        [go_binary(), "mod", "download", "-json", FLUX_MODULE],
        capture_output=True,
        text=True,
        env=go_env(),
        timeout=300,
    )
    info = json.loads(proc.stdout or "{}")
    assert proc.returncode == 0 and "Dir" in info, f"go mod download {FLUX_MODULE}: {info.get('Error')}{proc.stderr}"
    return Path(info["Dir"]) / FLUX_CRD


def run_snippet(cluster: Cluster, text: str, ns: str, name: str) -> subprocess.CompletedProcess[str]:
    """A documented shell snippet, verbatim but for namespace, object name and timeout."""
    script = text.replace("-n analytics", f"-n {ns}").replace("rivetexport/orders", f"rivetexport/{name}")
    script = script.replace("--timeout=2h", "--timeout=300s")
    prelude = f'kubectl() {{ "{cluster.kubectl_path}" --kubeconfig "{cluster.kubeconfig}" "$@"; }}\nset -e\n'
    return subprocess.run(["bash", "-c", prelude + script], capture_output=True, text=True, timeout=700)


def test_gitops_snippets_read_real_exports(
    cluster: Cluster,
    namespace: str,
    tmp_path: Path,
    crds_installed: None,
    pod_pg: DbServer,
    pod_s3: S3Server,
    readers: Callable[..., dict[str, str]],
    flux_crd: Path,
) -> None:
    ns = namespace
    docs = snippets()
    assert {"kubectl-wait", "kubectl-wait-either", "flux-kustomization", "argo-workflow"} <= set(docs)

    # Flux: the Kustomization is valid for Flux's CRD (the API server checks it, strictly)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(flux_crd))
    cluster.kubectl("wait", "--for=condition=Established", "crd/kustomizations.kustomize.toolkit.fluxcd.io")
    kustomization = yaml.safe_load(docs["flux-kustomization"])
    assert kustomization["spec"]["wait"] is True
    kustomization["metadata"]["namespace"] = ns
    dry = ("create", "--dry-run=server", "--validate=strict", "-f", "-")
    cluster.kubectl(*dry, input=json.dumps(kustomization))
    typo = copy.deepcopy(kustomization)
    typo["spec"]["wiat"] = typo["spec"].pop("wait")
    rejected = cluster.kubectl(*dry, input=json.dumps(typo), check=False)
    assert rejected.returncode != 0 and "wiat" in rejected.stderr, "the Flux schema check is not real"

    # Argo Workflows: the step creates the manifest as written, pointed at the test servers
    workflow = yaml.safe_load(docs["argo-workflow"])
    (template,) = workflow["spec"]["templates"]
    step = template["resource"]
    assert step["action"] == "create"
    conditions = ("-success", step["successCondition"], "-failure", step["failureCondition"])

    def judge(name: str) -> dict[str, str]:
        obj = cluster.get_json("rivetexport", name, namespace=ns)
        return {
            "flux": readers("flux", obj)["status"],
            "argo": readers("argo", obj, *conditions)["result"],
            "argocd": health(obj)["status"],
        }

    seed_pg(pod_pg, "public.gitops_e2e", 2_000)
    bucket = unique_name()
    pod_s3.client().create_bucket(Bucket=bucket)
    secrets_for(cluster, ns, pod_pg.url, pod_s3)  # secrets "src" and "lake" with the documented keys
    export = yaml.safe_load(step["manifest"])
    spec = export["spec"]
    spec["source"]["urlFrom"]["secretKeyRef"]["name"] = "src"
    spec["envFrom"] = [{"secretRef": {"name": "lake"}}]
    spec.update(table="public.gitops_e2e", chunkSize=1000, parallelism=2)
    spec["destination"].update(bucket=bucket, endpoint=pod_s3.endpoint, region="us-east-1")
    good = cluster.create(export, ns)["metadata"]["name"]
    bad_export = copy.deepcopy(export)
    bad_export["spec"]["table"] = "public.no_such_table"
    bad = cluster.create(bad_export, ns)["metadata"]["name"]
    assert good.startswith("orders-") and bad.startswith("orders-")

    # before the operator has looked, nobody may read "done"
    fresh = {"flux": "InProgress", "argo": "waiting", "argocd": "Progressing"}
    assert judge(good) == fresh and judge(bad) == fresh

    op = Operator(cluster, ns, tmp_path / "operator.log")
    op.start()
    try:
        for snippet in ("kubectl-wait", "kubectl-wait-either"):
            proc = run_snippet(cluster, docs[snippet], ns, good)
            assert proc.returncode == 0, f"{snippet} on a certified export:\n{proc.stdout}{proc.stderr}"
        assert judge(good) == {"flux": "Current", "argo": "succeeded", "argocd": "Healthy"}

        st = wait_phase(cluster, ns, "rivetexport", bad, ("Failed",), timeout=300)
        stalled = next(c for c in st["conditions"] if c["type"] == "Stalled")
        assert stalled["status"] == "True"
        assert judge(bad) == {"flux": "Failed", "argo": "failed", "argocd": "Degraded"}
        # the fail-fast recipe returns at once and fails; the plain wait would run out its timeout
        proc = run_snippet(cluster, docs["kubectl-wait-either"], ns, bad)
        assert proc.returncode != 0 and "condition met" in proc.stdout, proc.stdout + proc.stderr
    except BaseException:
        print(op.logs()[-10000:])
        raise
    finally:
        op.stop()
