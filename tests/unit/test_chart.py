"""The Helm chart (helm/rivet-operator), offline: lint, render, validate against Kubernetes' schemas.

- `helm lint --strict` and `helm template` with several value sets;
- every rendered object validated (strict: unknown fields fail) against the Kubernetes OpenAPI schemas
  shipped in the kubernetes-validate wheel (no network, no cluster); the PodMonitor (a Prometheus
  Operator CRD, not in those schemas) gets a structural check;
- the chart's copy of the CRDs (files/crds/) equals crds/ and renders unchanged (plus labels and the
  keep annotation), and sample custom resources validate against the CRDs' openAPIV3Schema;
- what the operator needs: one replica, Recreate, kopf's flags, env, the restricted Pod Security
  profile, least-privilege RBAC (no Secrets) matching the watched namespaces.

helm comes from tests/cluster/helm.sh (cached binary) or RIVET_HELM or PATH; without it the tests skip,
or fail when RIVET_REQUIRE_SERVERS=1.
"""

from __future__ import annotations

import copy
import filecmp
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "rivet-operator"
CRDS = REPO / "crds"
K8S_VERSION = "1.33.0"  # the test bed's minor (tests/cluster/lib.sh)
CACHE_DIR = Path(os.environ.get("RIVET_TESTBED_CACHE", "/var/cache/rivet-testbed"))


def _missing(why: str) -> None:
    if os.environ.get("RIVET_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{why} (RIVET_REQUIRE_SERVERS=1)", pytrace=False)
    pytest.skip(why)


def find_helm() -> str | None:
    if os.environ.get("RIVET_HELM"):
        return os.environ["RIVET_HELM"]
    cached = sorted(CACHE_DIR.glob("bin/helm-v3.*"))
    if cached:
        return str(cached[-1])
    return shutil.which("helm")


@pytest.fixture(scope="session")
def helm() -> str:
    path = find_helm()
    if not path:
        _missing("no helm binary: run `bash tests/cluster/helm.sh` (or set RIVET_HELM)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def kv() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        _missing("kubernetes-validate is not installed (pip install -e .[dev])")
    return kubernetes_validate


# value sets: (id, helm arguments)
# fmt: off
VALUE_SETS: dict[str, list[str]] = {
    "default": [],
    "namespaced": ["--set-json", 'watchNamespaces=["team-a","team-b"]'],
    "metrics": [
        "--set", "metrics.enabled=true", "--set", "metrics.podMonitor.enabled=true",
        "--set-json", 'metrics.podMonitor.labels={"release":"prom"}',
    ],
    "no-crds": ["--set", "crds.enabled=false"],
    "everything": [
        "--set", "crds.enabled=false",
        "--set-json", 'watchNamespaces=["team-a"]',
        "--set", "image.repository=registry.example.com/rivet", "--set", "image.tag=1.2.3",
        "--set", "image.pullPolicy=Always", "--set", "jobImage=registry.example.com/rivet-job:1.2.3",
        "--set", "jobImagePullPolicy=IfNotPresent",
        "--set-json", 'imagePullSecrets=[{"name":"regcred"}]',
        "--set-json", 'jobDefaults={"nodeSelector":{"pool":"batch"},"tolerations":[{"key":"batch","operator":"Exists","effect":"NoSchedule"}],"resources":{"requests":{"cpu":"1","memory":"1Gi"}},"serviceAccountName":"rivet-exporter"}',
        "--set-json", 'serviceAccount.annotations={"eks.amazonaws.com/role-arn":"arn:aws:iam::123456789012:role/rivet"}',
        "--set-json", 'podAnnotations={"a":"b"}', "--set-json", 'podLabels={"azure.workload.identity/use":"true"}',
        "--set-json", 'nodeSelector={"kubernetes.io/os":"linux"}',
        "--set-json", 'tolerations=[{"key":"ops","operator":"Exists"}]',
        "--set-json", 'affinity={"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"kubernetes.io/arch","operator":"In","values":["amd64"]}]}]}}}',
        "--set", "priorityClassName=system-cluster-critical",
        "--set", "metrics.enabled=true", "--set", "logLevel=verbose", "--set", "workers=2",
        "--set", "grafanaDashboard.enabled=true", "--set", "jobActiveDeadlineSeconds=3600",
        "--set-json", 'jobPolicy={"allowedVolumeTypes":["emptyDir","hostPath"],"allowedServiceAccounts":["rivet-exporter"],"allowPrivileged":false}',
        "--set-json", 'extraEnv=[{"name":"TZ","value":"UTC"}]',
        "--set-json", 'hostAliases=[{"ip":"10.96.0.1","hostnames":["kubernetes.default.svc"]}]',
    ],
}
# fmt: on


def render(helm: str, args: list[str], release: str = "rel", namespace: str = "rivet-system") -> list[dict[str, Any]]:
    proc = subprocess.run(
        [helm, "template", release, str(CHART), "--namespace", namespace, "--kube-version", K8S_VERSION, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    return dict(pod["containers"][0])


def env_of(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(docs).get("env", [])}


@pytest.fixture(scope="session")
def rendered(helm: str) -> dict[str, list[dict[str, Any]]]:
    return {name: render(helm, args) for name, args in VALUE_SETS.items()}


# ---------------------------------------------------------------------------------------------- lint


@pytest.mark.parametrize("values", list(VALUE_SETS), ids=list(VALUE_SETS))
def test_helm_lint_strict(helm: str, values: str) -> None:
    proc = subprocess.run(
        [helm, "lint", "--strict", str(CHART), "--kube-version", K8S_VERSION, *VALUE_SETS[values]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "image.pullPolicy=Sometimes"], "image.pullPolicy"),
        (["--set", "replicaCount=2"], "replicaCount"),
        (["--set-json", 'watchNamespaces=["Not_A_Namespace"]'], "watchNamespaces"),
        (["--set", "logFormat=xml"], "logFormat"),
        (["--set", "unknownKey=1"], "unknownKey"),
        (["--set", "metrics.podMonitor.enabled=true"], "metrics.enabled"),
        (["--set", "serviceAccount.create=false"], "serviceAccount.name"),
        (["--set", "grafanaDashboard.enabled=true"], "metrics.enabled"),
        (["--set", "jobActiveDeadlineSeconds=-1"], "jobActiveDeadlineSeconds"),
        (["--set-json", 'jobPolicy={"allowHostPath":true}'], "allowHostPath"),
        (["--set", "admission.namedReferenceLimit=11"], "namedReferenceLimit"),
        (["--set-json", 'admission.validationActions=["Deny","Warn"]'], "validationActions"),
        (["--set-json", 'admission.validationActions=["Block"]'], "validationActions"),
    ],
)
def test_bad_values_are_rejected(helm: str, args: list[str], message: str) -> None:
    proc = subprocess.run(
        [helm, "template", "rel", str(CHART), *args], capture_output=True, text=True, timeout=60
    )  # fmt: skip
    assert proc.returncode != 0
    assert message in proc.stderr


# -------------------------------------------------------------------------------- schema validation


@pytest.mark.parametrize("values", list(VALUE_SETS), ids=list(VALUE_SETS))
def test_rendered_objects_match_kubernetes_schemas(
    rendered: dict[str, list[dict[str, Any]]], kv: Any, values: str
) -> None:
    docs = rendered[values]
    assert docs
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            check_pod_monitor(doc)
            continue
        try:
            kv.validate(doc, K8S_VERSION, strict=True)
        except kv.ValidationError as exc:
            raise AssertionError(f"{doc['kind']}/{doc['metadata']['name']}: {exc}") from exc


def check_pod_monitor(doc: dict[str, Any]) -> None:
    """No PodMonitor schema offline: check the fields the Prometheus Operator requires and uses."""
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PodMonitor"
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
    spec = doc["spec"]
    assert set(spec) <= {"jobLabel", "namespaceSelector", "selector", "podMetricsEndpoints", "podTargetLabels"}
    assert spec["selector"]["matchLabels"]
    for ep in spec["podMetricsEndpoints"]:
        assert set(ep) <= {"port", "path", "interval", "scrapeTimeout", "relabelings", "metricRelabelings"}
        assert isinstance(ep["port"], str)


# ------------------------------------------------------------------------------------------- CRDs


def crd_files() -> list[str]:
    return sorted(p.name for p in CRDS.glob("*.yaml"))


def test_chart_crds_are_a_copy_of_crds_dir() -> None:
    """helm can only read files inside the chart: files/crds/ must stay identical to crds/."""
    chart_copy = sorted(p.name for p in (CHART / "files" / "crds").glob("*.yaml"))
    assert chart_copy == crd_files(), "run: cp crds/*.yaml helm/rivet-operator/files/crds/"
    for name in chart_copy:
        assert filecmp.cmp(CRDS / name, CHART / "files" / "crds" / name, shallow=False), (
            f"helm/rivet-operator/files/crds/{name} differs from crds/{name}: "
            "run `cp crds/*.yaml helm/rivet-operator/files/crds/`"
        )


def test_crds_render_unchanged_with_keep_policy(rendered: dict[str, list[dict[str, Any]]]) -> None:
    crds = {d["metadata"]["name"]: d for d in by_kind(rendered["default"], "CustomResourceDefinition")}
    sources = {}
    for name in crd_files():
        src = yaml.safe_load((CRDS / name).read_text())
        sources[src["metadata"]["name"]] = src
    assert (
        set(crds)
        == set(sources)
        == {f"{plural}.rivet.dev" for plural in ("rivetexports", "rivetvalidations", "rivetschedules", "rivetledgers")}
    )
    for name, crd in crds.items():
        src = sources[name]
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        labels = crd["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm" and labels["app.kubernetes.io/instance"] == "rel"
        assert {k: labels[k] for k in src["metadata"].get("labels", {})} == src["metadata"].get("labels", {})
        stripped = copy.deepcopy(crd)
        stripped["metadata"] = {
            "name": name,
            **({"labels": src["metadata"]["labels"]} if "labels" in src["metadata"] else {}),
        }
        assert stripped == src, f"{name}: the rendered CRD differs from crds/ beyond labels and annotations"
    for values in ("no-crds", "everything"):
        assert not by_kind(rendered[values], "CustomResourceDefinition")


def test_crds_without_keep(helm: str) -> None:
    docs = render(helm, ["--set", "crds.keep=false"])
    for crd in by_kind(docs, "CustomResourceDefinition"):
        assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {})


def openapi_to_jsonschema(schema: Any) -> Any:
    """Kubernetes' structural OpenAPI v3 -> JSON Schema: `nullable` becomes a null type; x-kubernetes-* dropped."""
    if isinstance(schema, list):
        return [openapi_to_jsonschema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: openapi_to_jsonschema(v) for k, v in value.items()}
        elif isinstance(value, dict | list) and key not in ("enum", "required", "default", "example"):
            out[key] = openapi_to_jsonschema(value)
        else:
            out[key] = value
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def crd_validator(plural: str) -> Any:
    import jsonschema

    crd = yaml.safe_load((CRDS / f"rivet.dev_{plural}.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["served"]]
    schema = openapi_to_jsonschema(version["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def sample_export(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": {"type": "postgres", "urlFrom": {"secretKeyRef": {"name": "src", "key": "url"}}},
        "table": "public.orders",
        "mode": "chunked",
        "chunkColumn": "id",
        "chunkSize": 1000,
        "destination": {"type": "s3", "bucket": "lake", "prefix": "exports/{export}/{run_id}/", "region": "us-east-1"},
        "envFrom": [{"secretRef": {"name": "lake"}}],
        "jobTemplate": {"nodeSelector": {"pool": "batch"}, "resources": {"requests": {"cpu": "1"}}},
    }
    body.update(spec)
    return {"apiVersion": "rivet.dev/v1alpha1", "kind": "RivetExport", "metadata": {"name": "orders"}, "spec": body}


def test_sample_resources_validate_against_the_crd_schemas() -> None:
    exports = crd_validator("rivetexports")
    errors = [e.message for e in exports.iter_errors(sample_export())]
    assert errors == []
    validations = crd_validator("rivetvalidations")
    val = {
        "apiVersion": "rivet.dev/v1alpha1",
        "kind": "RivetValidation",
        "metadata": {"name": "check"},
        "spec": {"exportRef": {"name": "orders"}, "envFrom": [{"secretRef": {"name": "lake"}}]},
    }
    assert [e.message for e in validations.iter_errors(val)] == []
    # and the schema does reject what it should
    assert list(exports.iter_errors(sample_export(chunkSize=0)))
    assert list(exports.iter_errors(sample_export(mode="sometimes")))
    assert list(exports.iter_errors(sample_export(source={"type": "oracle"})))


# ------------------------------------------------------------------------------------- Deployment


def test_deployment_runs_kopf_standalone_once(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["default"]
    dep = one(docs, "Deployment")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"] == {"type": "Recreate"}
    c = container(docs)
    assert c["command"] == ["kopf"]
    assert c["args"][:4] == ["run", "-m", "rivet_operator.runtime.handlers", "--standalone"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in c["args"]
    assert "--all-namespaces" in c["args"] and not [a for a in c["args"] if a.startswith("--namespace")]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert {"name": "healthz", "containerPort": 8080, "protocol": "TCP"} in c["ports"]
    assert "readinessProbe" not in c and "startupProbe" not in c
    env = env_of(docs)
    assert env["RIVET_IMAGE"] == c["image"] == "rivet:0.1.0"
    assert env["RIVET_IMAGE_PULL_POLICY"] == c["imagePullPolicy"] == "IfNotPresent"
    assert env["RIVET_NAMESPACES"] == ""
    assert json.loads(env["RIVET_JOB_DEFAULTS"]) == {}
    assert "RIVET_METRICS_PORT" not in env
    assert env["RIVET_WORKERS"] == "4"
    assert env["RIVET_JOB_ACTIVE_DEADLINE_SECONDS"] == "21600"
    assert json.loads(env["RIVET_JOB_POLICY"]) == {
        "allowedVolumeTypes": ["configMap", "secret", "emptyDir", "projected", "downwardAPI", "persistentVolumeClaim"],
        "allowedServiceAccounts": [],
        "allowedTolerationKeys": [],
        "allowedPriorityClasses": [],
        "allowNodeSelection": True,
        "allowedImagePullSecrets": [],
        "allowPrivileged": False,
    }
    # kopf's identity from the pod name: no passwd lookup for the image's nameless uid 65532
    (pod_id,) = [e for e in c["env"] if e["name"] == "POD_ID"]
    assert pod_id["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_restricted_pod_security(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """The `restricted` Pod Security Standard, checked field by field (the e2e enforces it for real)."""
    for values, docs in rendered.items():
        pod = one(docs, "Deployment")["spec"]["template"]["spec"]
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532, values
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
            assert sc["readOnlyRootFilesystem"] is True and sc.get("privileged") is not True
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
        for vol in pod["volumes"]:
            assert set(vol) - {"name"} <= {"emptyDir", "configMap", "secret", "projected", "downwardAPI"}
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")


def test_namespaced_watch(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["namespaced"]
    c = container(docs)
    assert "--all-namespaces" not in c["args"]
    assert [a for a in c["args"] if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]
    assert env_of(docs)["RIVET_NAMESPACES"] == "team-a,team-b"


def test_metrics_service_and_pod_monitor(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["metrics"]
    assert env_of(docs)["RIVET_METRICS_PORT"] == "9090"
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container(docs)["ports"]
    svc = one(docs, "Service")
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    pm = one(docs, "PodMonitor")
    assert pm["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pm["spec"]["namespaceSelector"] == {"matchNames": ["rivet-system"]}
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    assert pm["metadata"]["labels"]["release"] == "prom"
    for values in ("default", "namespaced", "no-crds"):
        assert not by_kind(rendered[values], "Service") and not by_kind(rendered[values], "PodMonitor")
    assert by_kind(rendered["everything"], "Service") and not by_kind(rendered["everything"], "PodMonitor")


def test_values_reach_the_pod(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["everything"]
    dep = one(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = container(docs)
    env = env_of(docs)
    assert c["image"] == "registry.example.com/rivet:1.2.3" and c["imagePullPolicy"] == "Always"
    assert env["RIVET_IMAGE"] == "registry.example.com/rivet-job:1.2.3"
    assert env["RIVET_IMAGE_PULL_POLICY"] == "IfNotPresent"
    assert json.loads(env["RIVET_JOB_DEFAULTS"]) == {
        "nodeSelector": {"pool": "batch"},
        "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
        "serviceAccountName": "rivet-exporter",
    }
    assert env["RIVET_WORKERS"] == "2" and env["TZ"] == "UTC" and env["RIVET_JOB_ACTIVE_DEADLINE_SECONDS"] == "3600"
    assert json.loads(env["RIVET_JOB_POLICY"])["allowedServiceAccounts"] == ["rivet-exporter"]
    assert "--verbose" in c["args"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"] == [{"key": "ops", "operator": "Exists"}]
    assert "nodeAffinity" in pod["affinity"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["hostAliases"] == [{"ip": "10.96.0.1", "hostnames": ["kubernetes.default.svc"]}]
    assert dep["spec"]["template"]["metadata"]["annotations"] == {"a": "b"}
    assert dep["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    sa = one(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/rivet"}
    assert pod["serviceAccountName"] == sa["metadata"]["name"]


def test_image_digest_wins_over_tag(helm: str) -> None:
    digest = "sha256:" + "a" * 64
    docs = render(helm, ["--set", f"image.digest={digest}", "--set", "image.tag=9.9"])
    assert container(docs)["image"] == f"rivet@{digest}" == env_of(docs)["RIVET_IMAGE"]


def test_labels(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for docs in rendered.values():
        for doc in docs:
            labels = doc["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "Helm"
            assert labels["app.kubernetes.io/instance"] == "rel"
            assert labels["helm.sh/chart"] == "rivet-operator-0.1.0"
    dep = one(rendered["default"], "Deployment")
    assert dep["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "rivet-operator",
        "app.kubernetes.io/instance": "rel",
        "app.kubernetes.io/component": "operator",
    }


# ------------------------------------------------------------------------------------------- RBAC

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)


def grants(rules: list[dict[str, Any]]) -> set[Grant]:
    """Every (group, resource, verb) a rule list grants (no resourceNames or nonResourceURLs in ours)."""
    out: set[Grant] = set()
    for rule in rules:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule
        out |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    return out


def spread(group: str, resources: list[str], verbs: str) -> set[Grant]:
    return {(group, r, v) for r in resources for v in verbs.split()}


OUR_KINDS = ["rivetexports", "rivetvalidations", "rivetschedules"]
# The operator's rights in a namespace it serves, exactly: each verb is a call the operator makes
# (operator/rivet_operator/runtime/client.py) or a kopf watch. No Secrets, no pods/log, no write to our
# kinds' specs, no events.k8s.io.
OPERATOR_NAMESPACED: set[Grant] = (
    spread("rivet.dev", OUR_KINDS, "get list watch")
    | spread("rivet.dev", ["rivetexports"], "create delete")  # a schedule's runs
    | spread("rivet.dev", [k + "/status" for k in OUR_KINDS], "get patch")
    | spread("rivet.dev", ["rivetledgers"], "get list watch create delete")
    | spread("rivet.dev", ["rivetledgers/status"], "get patch update")
    | spread("batch", ["jobs"], "get list watch create delete")
    | spread("", ["pods"], "get list watch")
    | spread("", ["configmaps"], "get list create update patch delete")
    | spread("", ["events"], "create patch")  # patch: a repeated Event's count
)
CRD_WATCH = spread("apiextensions.k8s.io", ["customresourcedefinitions"], "get list watch")
NAMESPACES_WATCH = spread("", ["namespaces"], "get list watch")
USER_ROLES = {"rivet-view", "rivet-edit"}


def operator_roles(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in by_kind(docs, kind) if d["metadata"]["name"] not in USER_ROLES]


def check_no_excess(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        assert "secrets" not in rule["resources"], "the operator never reads Secrets: Jobs get them by reference"
        assert "pods/log" not in rule["resources"], "results come from termination messages, never logs"
        assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])


def test_rbac_cluster_wide_is_exactly_what_the_operator_calls(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["default"]
    assert not by_kind(docs, "Role") and not by_kind(docs, "RoleBinding")
    (role,) = operator_roles(docs, "ClusterRole")
    binding = one(docs, "ClusterRoleBinding")
    sa = one(docs, "ServiceAccount")
    assert role["metadata"]["name"] == "rel-rivet-operator-rivet-system"  # namespaced name: no clash across releases
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "rivet-system"}
    ]
    check_no_excess(role["rules"])
    # kopf lists namespaces only when it serves a list of namespaces (not with --all-namespaces)
    assert grants(role["rules"]) == OPERATOR_NAMESPACED | CRD_WATCH


@pytest.mark.parametrize("values", ["namespaced", "everything"])
def test_rbac_namespaced_is_exactly_what_the_operator_calls(
    rendered: dict[str, list[dict[str, Any]]], values: str
) -> None:
    docs = rendered[values]
    watched = {"namespaced": {"team-a", "team-b"}, "everything": {"team-a"}}[values]
    roles = {r["metadata"]["namespace"]: r for r in by_kind(docs, "Role")}
    bindings = {b["metadata"]["namespace"]: b for b in by_kind(docs, "RoleBinding")}
    assert set(roles) == set(bindings) == watched
    for ns, role in roles.items():
        check_no_excess(role["rules"])
        assert grants(role["rules"]) == OPERATOR_NAMESPACED, ns
        assert bindings[ns]["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
        assert bindings[ns]["subjects"][0]["namespace"] == "rivet-system"
    # the only cluster-scoped grant: kopf's read-only observation of CRDs and namespaces
    (cluster_role,) = operator_roles(docs, "ClusterRole")
    check_no_excess(cluster_role["rules"])
    assert grants(cluster_role["rules"]) == CRD_WATCH | NAMESPACES_WATCH


def test_every_rule_says_why() -> None:
    """Each rule of the operator's rules helper has a comment right above it."""
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    for name in ("rivet-operator.rules", "rivet-operator.crdRules"):
        body = helpers.split(f'{{{{- define "{name}" -}}}}', 1)[1].split("{{- end }}", 1)[0]
        lines = [line for line in body.splitlines() if line.strip()]
        for i, line in enumerate(lines):
            if line.startswith("- apiGroups:"):
                assert i > 0 and lines[i - 1].startswith("#"), f"{name}: no comment above {line!r}"


def test_no_role_anywhere_grants_pods_log(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for docs in rendered.values():
        for doc in docs:
            if doc["kind"] in ("Role", "ClusterRole"):
                assert "pods/log" not in json.dumps(doc["rules"]), doc["metadata"]["name"]


def test_rbac_strictly_namespaced_and_disabled(helm: str) -> None:
    docs = render(helm, ["--set-json", 'watchNamespaces=["team-a"]', "--set", "rbac.scanning=false"])
    assert not operator_roles(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")
    assert len(by_kind(docs, "Role")) == 1
    docs = render(
        helm,
        [
            "--set", "rbac.create=false", "--set", "rbac.userRoles=false",
            "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=mine",
        ],
    )  # fmt: skip
    assert not [d for d in docs if "Role" in d["kind"] or d["kind"] == "ServiceAccount"]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"


def test_user_roles_aggregate_and_never_reach_ledgers_or_status(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for values, docs in rendered.items():
        roles = {d["metadata"]["name"]: d for d in by_kind(docs, "ClusterRole") if d["metadata"]["name"] in USER_ROLES}
        assert set(roles) == USER_ROLES, values  # cluster-wide or namespaced, user roles are the same
        view, edit = roles["rivet-view"], roles["rivet-edit"]
        assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
        assert "rbac.authorization.k8s.io/aggregate-to-edit" not in view["metadata"]["labels"]
        for label in ("aggregate-to-edit", "aggregate-to-admin"):
            assert edit["metadata"]["labels"][f"rbac.authorization.k8s.io/{label}"] == "true"
        assert "rbac.authorization.k8s.io/aggregate-to-view" not in edit["metadata"]["labels"]
        assert grants(view["rules"]) == spread("rivet.dev", OUR_KINDS, "get list watch")
        assert grants(edit["rules"]) == spread("rivet.dev", OUR_KINDS, "get list watch create update patch delete")
        for role in roles.values():
            text = json.dumps(role["rules"])
            assert "rivetledgers" not in text and "/status" not in text and "*" not in text
            assert not {r for _, r, _ in grants(role["rules"])} - set(OUR_KINDS)
        assert not by_kind(docs, "ClusterRoleBinding") or all(
            b["roleRef"]["name"] not in USER_ROLES for b in by_kind(docs, "ClusterRoleBinding")
        ), "the chart grants the user roles to nobody"


def test_user_roles_are_optional(helm: str) -> None:
    docs = render(helm, ["--set", "rbac.userRoles=false"])
    assert not [d for d in by_kind(docs, "ClusterRole") if d["metadata"]["name"] in USER_ROLES]


# -------------------------------------------------------------------------------------- admission


def admission_policy(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    policy = one(docs, "ValidatingAdmissionPolicy")
    binding = one(docs, "ValidatingAdmissionPolicyBinding")
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    return policy, binding


def test_admission_policy_matches_our_kinds_and_exempts_only_the_operator(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    policy, binding = admission_policy(rendered["default"])
    assert policy["metadata"]["name"] == binding["metadata"]["name"] == binding["spec"]["policyName"]
    assert policy["metadata"]["name"] == "rel-rivet-operator-rivet-system"
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"]["resourceRules"] == [
        {
            "apiGroups": ["rivet.dev"],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": OUR_KINDS,
        }
    ]
    assert "namespaceSelector" not in spec["matchConstraints"]  # cluster-wide release: every namespace
    conditions = {c["name"]: c["expression"] for c in spec["matchConditions"]}
    assert conditions == {
        "not-the-operator": "request.userInfo.username != 'system:serviceaccount:rivet-system:rel-rivet-operator'",
        "spec-written": "request.operation == 'CREATE' || object.spec != oldObject.spec",
    }
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert "matchResources" not in binding["spec"] and "paramRef" not in binding["spec"]


def test_admission_policy_checks_every_reference_and_names_the_field(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    policy, _ = admission_policy(rendered["default"])
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    text = " ".join(variables.values())
    for path in (
        "source.urlFrom.secretKeyRef.name", "source.tls.caFrom.secretKeyRef.name",
        "source.tls.caFrom.configMapKeyRef.name", "valueFrom.secretKeyRef.name", "valueFrom.configMapKeyRef.name",
        "].secretRef.name", "].configMapRef.name", "].secret.secretName", "].configMap.name",
        "].projected.sources[", "].secret.name",
    ):  # fmt: skip
        assert f"{path}" in text, path
    assert variables["spec"] == "object.kind == 'RivetSchedule' ? object.spec.exportTemplate.spec : object.spec"
    assert "authorizer.group('').resource('secrets').namespace(request.namespace).check('get')" in text
    validations = policy["spec"]["validations"]
    by_name = [v for v in validations if ".name(variables." in v["expression"]]
    # 8 Secrets and 8 ConfigMaps by name (each check costs 350,000 of the 10,000,000 budget), 2 overflow rules,
    # list lengths, PYTHON*/LD_* env and envFrom prefixes, service account tokens, mounts over the code
    assert len(by_name) == 16 and len(validations) == 16 + 2 + 5
    assert validations[0]["expression"] == "variables.tooLong == ''"  # its message is the one shown
    for v in validations:
        assert v["message"] and v["reason"] in ("Forbidden", "Invalid")
        assert v["messageExpression"].startswith("variables.")
    assert any("you may not get Secret" in v["messageExpression"] for v in validations)
    assert any("serviceAccountToken" in v["messageExpression"] for v in validations)
    assert any("PYTHON*, LD_*" in v["messageExpression"] for v in validations)
    # at most two authorization checks per expression (the per-call cost limit is 1,000,000)
    for expr in [*variables.values(), *(v["expression"] for v in validations)]:
        assert expr.count(".check(") <= 1


def test_admission_policy_follows_the_values(helm: str) -> None:
    docs = render(
        helm,
        [
            "--set-json", 'watchNamespaces=["team-a","team-b"]', "--set", "serviceAccount.name=rivet-sa",
            "--set-json", 'admission.validationActions=["Warn","Audit"]', "--set", "admission.namedReferenceLimit=3",
        ],
        release="other",
        namespace="ops",
    )  # fmt: skip
    policy, binding = admission_policy(docs)
    assert policy["metadata"]["name"] == "other-rivet-operator-ops"
    assert policy["spec"]["matchConstraints"]["namespaceSelector"] == {
        "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "team-b"]}]
    }
    exempt = {c["name"]: c["expression"] for c in policy["spec"]["matchConditions"]}["not-the-operator"]
    assert exempt == "request.userInfo.username != 'system:serviceaccount:ops:rivet-sa'"
    assert binding["spec"]["validationActions"] == ["Warn", "Audit"]
    assert len([v for v in policy["spec"]["validations"] if ".name(variables." in v["expression"]]) == 6


def test_admission_off_renders_no_policy(helm: str) -> None:
    docs = render(helm, ["--set", "admission.enabled=false"])
    assert not by_kind(docs, "ValidatingAdmissionPolicy") and not by_kind(docs, "ValidatingAdmissionPolicyBinding")


def test_values_schema_covers_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(val: Any, sch: dict[str, Any], path: str) -> None:
        assert sch, f"{path} has no schema"
        if isinstance(val, dict) and "properties" in sch:
            assert sch.get("additionalProperties") is False or path == "", path
            for key, sub in val.items():
                assert key in sch["properties"], f"{path}.{key} is not in values.schema.json"
                walk(sub, sch["properties"][key], f"{path}.{key}")

    walk(values, schema, "")
    assert schema["properties"]["image"]["properties"]["pullPolicy"]["enum"] == ["Always", "IfNotPresent", "Never"]


# ------------------------------------------------------------------------------------ Grafana dashboard

DASHBOARD = CHART / "files" / "grafana-dashboard.json"


def exported_metric_names() -> set[str]:
    """Every series name the operator's registry exposes (counters with _total, histograms with their parts)."""
    from prometheus_client import REGISTRY

    import rivet_operator.runtime.metrics  # noqa: F401 - registers the operator's metrics

    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in ("", "_total", "_bucket", "_sum", "_count"))
    return names


def test_every_dashboard_query_names_a_metric_the_operator_exports() -> None:
    import re

    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    exported = exported_metric_names()
    words = {"sum", "by", "rate", "increase", "histogram_quantile", "max", "le", "phase", "kind", "namespace",
             "export", "outcome", "step", "verb", "result"}  # fmt: skip
    for expr in exprs:
        stripped = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^\]]*\]', " ", expr)
        metrics = {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped) if w not in words}
        assert metrics, expr
        for name in metrics:
            assert name.startswith("rivet_") and name in exported, f"{name} in {expr!r} is not exported"
    covered = " ".join(exprs)
    for needed in ("rivet_objects", "rivet_chunks_committed_total", "rivet_rows_written_total",
                   "rivet_bytes_written_total", "rivet_retries_total", "rivet_export_run_duration_seconds_bucket"):  # fmt: skip
        assert needed in covered


def test_dashboard_configmap_is_opt_in_and_labelled_for_the_grafana_sidecar(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for values in ("default", "namespaced", "metrics", "no-crds"):
        assert not [d for d in by_kind(rendered[values], "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")]
    (cm,) = [d for d in by_kind(rendered["everything"], "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["rivet-operator.json"]) == json.loads(DASHBOARD.read_text())
