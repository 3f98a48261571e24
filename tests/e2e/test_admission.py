"""The chart's admission policy on the real cluster (ValidatingAdmissionPolicy, Kubernetes 1.33).

The chart is installed once for the module (watchNamespaces: its own namespace, the operator in-cluster)
and a user, alice, is impersonated (`kubectl --as=alice`) with nothing but the chart's `rivet-edit` role
in that namespace, plus `get` on single Secrets by name as the test grants them:
- a RivetExport naming a Secret alice may not get is refused, the field named; once she may get it (and
  every other Secret it names) it is admitted; a later spec edit is checked again, a metadata edit is not;
- PYTHON*/LD_* env entries, projected service account tokens and mounts over the image's code are
  refused; a RivetSchedule's exportTemplate and a RivetValidation are checked like a RivetExport;
- the operator's own service account is exempt (and only it, by exact name): a schedule alice may
  create gets its RivetExport from the in-cluster operator, whose role grants no Secret at all.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Cluster, Helm
from tests.e2e.test_chart import require_helm
from tests.unit.test_chart import CHART

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

RELEASE = "rivet-operator"
USER = "alice"


@pytest.fixture(scope="module")
def installed(cluster: Cluster, crds_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A namespace with the chart installed in it, serving it; yields the namespace."""
    home = tmp_path_factory.mktemp("helm")
    helm = Helm(require_helm(), cluster, home)
    ns = f"e2e-admission-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("label", "namespace", ns, "rivet.test/e2e=true")
    cluster.wait_default_serviceaccount(ns)
    repository, _, tag = cluster.image.rpartition(":")
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": cluster.pull_policy},
        "watchNamespaces": [ns],
        "crds": {"enabled": False},
        "workers": 1,
    }
    values_file = Path(home) / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    try:
        helm("install", RELEASE, str(CHART), "--namespace", ns, "-f", str(values_file), "--wait", "--timeout", "180s")
        cluster.kubectl(
            "create", "rolebinding", f"{USER}-edit", "--clusterrole=rivet-edit", f"--user={USER}", namespace=ns
        )
        for name in ("orders-db", "lake", "vault"):
            secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"url": "x"}}
            cluster.create(secret, ns)
        yield ns
    finally:
        helm("uninstall", RELEASE, "--namespace", ns, "--wait", "--timeout", "120s", check=False)
        if os.environ.get("RIVET_E2E_KEEP_NAMESPACES") != "1":
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def as_user(cluster: Cluster, ns: str, verb: str, doc: dict[str, Any], user: str = USER) -> tuple[bool, str]:
    """`kubectl <verb> --as=user -f -`: (admitted, what the API server said)."""
    proc = cluster.kubectl(verb, f"--as={user}", "-f", "-", namespace=ns, input=json.dumps(doc), check=False)
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def refused(cluster: Cluster, ns: str, doc: dict[str, Any], message: str, verb: str = "create") -> None:
    admitted, said = as_user(cluster, ns, verb, doc)
    assert not admitted, f"admitted: {said}"
    assert f"ValidatingAdmissionPolicy '{RELEASE}-{ns}'" in said and message in said, said


def may_get_secret(cluster: Cluster, ns: str, name: str, user: str = USER) -> None:
    """A Role granting `get` on this one Secret, bound to `user`."""
    role = f"get-secret-{name}"
    cluster.kubectl("create", "role", role, "--verb=get", "--resource=secrets", f"--resource-name={name}", namespace=ns)
    cluster.kubectl("create", "rolebinding", f"{role}-{user}", f"--role={role}", f"--user={user}", namespace=ns)


def can_i(cluster: Cluster, ns: str, *args: str, user: str = USER) -> bool:
    proc = cluster.kubectl("auth", "can-i", *args, f"--as={user}", namespace=ns, check=False)
    return proc.stdout.strip() == "yes"


def export(name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "suspend": True,  # admission is what is tested: no Jobs
        "source": {"type": "postgres", "urlFrom": {"secretKeyRef": {"name": "orders-db", "key": "url"}}},
        "table": "public.orders",
        "destination": {"type": "s3", "bucket": "lake", "region": "us-east-1"},
        "envFrom": [{"secretRef": {"name": "lake"}}],
        **spec,
    }
    return {"apiVersion": "rivet.dev/v1alpha1", "kind": "RivetExport", "metadata": {"name": name}, "spec": body}


def schedule(name: str, **spec: Any) -> dict[str, Any]:
    template = export("unused", **spec)["spec"]
    return {
        "apiVersion": "rivet.dev/v1alpha1",
        "kind": "RivetSchedule",
        "metadata": {"name": name},
        "spec": {"schedule": "* * * * *", "exportTemplate": {"spec": template}},
    }


def test_a_user_may_reference_only_the_secrets_they_may_get(cluster: Cluster, installed: str) -> None:
    ns = installed
    # what rivet-edit gives: our kinds, never their status, never RivetLedgers, never Secrets
    assert can_i(cluster, ns, "create", "rivetexports.rivet.dev")
    assert can_i(cluster, ns, "patch", "rivetschedules.rivet.dev")
    assert not can_i(cluster, ns, "patch", "rivetexports.rivet.dev", "--subresource=status")
    assert not can_i(cluster, ns, "get", "rivetledgers.rivet.dev")
    assert not can_i(cluster, ns, "get", "secrets")

    refused(cluster, ns, export("orders"), "spec.source.urlFrom.secretKeyRef.name: you may not get Secret orders-db")
    may_get_secret(cluster, ns, "orders-db")
    refused(cluster, ns, export("orders"), "spec.envFrom[0].secretRef.name: you may not get Secret lake")
    may_get_secret(cluster, ns, "lake")
    admitted, said = as_user(cluster, ns, "create", export("orders"))
    assert admitted, said

    # an edit of the spec is checked again; a metadata-only edit references nothing new
    edited = export("orders", env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "vault", "key": "url"}}}])
    refused(cluster, ns, edited, "spec.env[0].valueFrom.secretKeyRef.name: you may not get Secret vault", "apply")
    proc = cluster.kubectl("annotate", f"--as={USER}", "rivetexport", "orders", "team=data", namespace=ns, check=False)
    assert proc.returncode == 0, proc.stderr

    # what no one may ask for, whatever their rights
    refused(
        cluster,
        ns,
        export("pythonpath", env=[{"name": "PYTHONPATH", "value": "/tmp"}]),
        "spec.env[0].name: PYTHONPATH is an interpreter or loader variable",
    )
    token = {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "t", "audience": "vault"}}]}}
    refused(
        cluster,
        ns,
        export("token", jobTemplate={"volumes": [token]}),
        "spec.jobTemplate.volumes[0].projected.sources[0].serviceAccountToken:",
    )
    over_code = {"volumes": [{"name": "e", "emptyDir": {}}], "volumeMounts": [{"name": "e", "mountPath": "/opt/rivet"}]}
    refused(
        cluster, ns, export("overcode", jobTemplate=over_code), "spec.jobTemplate.volumeMounts[0].mountPath: /opt/rivet"
    )

    # a schedule's exportTemplate and a validation are checked like an export
    refused(
        cluster,
        ns,
        schedule("nightly", envFrom=[{"secretRef": {"name": "vault"}}]),
        "spec.exportTemplate.spec.envFrom[0].secretRef.name: you may not get Secret vault",
    )
    validation = {
        "apiVersion": "rivet.dev/v1alpha1",
        "kind": "RivetValidation",
        "metadata": {"name": "check"},
        "spec": {"exportRef": {"name": "orders"}, "envFrom": [{"secretRef": {"name": "vault"}}]},
    }
    refused(cluster, ns, validation, "spec.envFrom[0].secretRef.name: you may not get Secret vault")


def test_only_the_operator_is_exempt_and_it_creates_a_schedules_runs(cluster: Cluster, installed: str) -> None:
    ns = installed
    operator_sa = f"system:serviceaccount:{ns}:{RELEASE}"
    policy = cluster.get_json("validatingadmissionpolicy", f"{RELEASE}-{ns}")
    conditions = {c["name"]: c["expression"] for c in policy["spec"]["matchConditions"]}
    assert conditions["not-the-operator"] == f"request.userInfo.username != '{operator_sa}'"
    # the operator may not get Secrets: only the exemption lets it create runs that name them
    assert not can_i(cluster, ns, "get", "secrets", user=operator_sa)
    assert can_i(cluster, ns, "create", "rivetexports.rivet.dev", user=operator_sa)
    # the exemption is by exact name: another service account of the namespace is checked
    other_sa = f"system:serviceaccount:{ns}:default"
    cluster.kubectl(
        "create", "rolebinding", "default-edit", "--clusterrole=rivet-edit", f"--user={other_sa}", namespace=ns
    )
    admitted, said = as_user(cluster, ns, "create", export("by-default-sa"), user=other_sa)
    assert not admitted and "you may not get Secret orders-db" in said, said
    admitted, said = as_user(cluster, ns, "create", export("by-operator-sa"), user=operator_sa)
    assert admitted, said

    # a schedule alice may write (she may get both Secrets) gets its run from the in-cluster operator
    for name in ("orders-db", "lake"):
        if not can_i(cluster, ns, "get", f"secret/{name}"):
            may_get_secret(cluster, ns, name)
    admitted, said = as_user(cluster, ns, "create", schedule("minutely"))
    assert admitted, said

    def first_run() -> dict[str, Any] | None:
        runs = cluster.get_json("rivetexports", "-l", "rivet.dev/schedule=minutely", namespace=ns)["items"]
        return runs[0] if runs else None

    try:
        run = cluster.wait_for("the schedule's first RivetExport", first_run, timeout=150, interval=2)
    except TimeoutError:
        raise AssertionError(
            f"no run; schedule status: {cluster.get_json('rivetschedule', 'minutely', namespace=ns).get('status')}"
        ) from None
    assert run["spec"]["source"]["urlFrom"]["secretKeyRef"]["name"] == "orders-db"
    assert run["metadata"]["ownerReferences"][0]["kind"] == "RivetSchedule"
