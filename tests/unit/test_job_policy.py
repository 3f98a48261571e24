"""Job pod policy as a merge that cannot weaken (api/policy.py, specs/jobs.py).

A template that asks to weaken with a value is refused, naming the field; a null or empty value is
overwritten: the Job the operator builds carries the restricted fields whatever the template held. The
restricted profile is checked here by an independent reading of the Pod Security Standard, not by the
operator's own code.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from rivet_operator.api.policy import JobPolicy, check_job_template, enforce_restricted
from rivet_operator.controller.export import refusal
from rivet_operator.controller.model import Settings
from rivet_operator.runtime.settings import from_env
from rivet_operator.specs import jobs as builders
from rivet_operator.specs import names
from tests.unit.test_operator_core import OWNER, SPEC

DEFAULT = JobPolicy()
ROOT = "spec.jobTemplate"
SC = f"{ROOT}.securityContext"
CSC = f"{ROOT}.containerSecurityContext"
APPARMOR = "container.apparmor.security.beta.kubernetes.io/rivet"
SECCOMP_POD = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER = "container.seccomp.security.alpha.kubernetes.io/rivet"
PSS_SYSCTLS = (
    {"kernel.shm_rmid_forced", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range"}
    | {
        f"net.ipv4.{n}"
        for n in ("ip_local_port_range", "ip_unprivileged_port_start", "ip_local_reserved_ports", "tcp_fin_timeout")
    }
    | {f"net.ipv4.tcp_keepalive_{n}" for n in ("time", "intvl", "probes")}
)


def built(template: dict[str, Any] | None, rt: builders.Runtime | None = None) -> dict[str, Any]:
    """The pod template (metadata + spec) of a chunk Job built for a spec holding `template`."""
    spec = {**SPEC, "jobTemplate": template} if template is not None else SPEC
    js = builders.JobSpec("j", names.labels(OWNER, "run-1", "chunk", 1, 1), ["chunk"], "cfg")
    pod_template: dict[str, Any] = builders.job(OWNER, js, spec, rt or builders.Runtime("img"))["spec"]["template"]
    return pod_template


def violations(pod_template: dict[str, Any]) -> list[str]:
    """What breaks the `restricted` Pod Security Standard (v1.33), read from its text, field by field."""
    out: list[str] = []
    meta, pod = pod_template.get("metadata") or {}, pod_template["spec"]
    psc = pod.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            out.append(key)
    for key, value in (meta.get("annotations") or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            out.append(f"annotation {key}")
        if "seccomp.security.alpha.kubernetes.io/" in key and not (
            value in ("runtime/default", "docker/default") or value.startswith("localhost/")
        ):
            out.append(f"annotation {key}")
    if psc.get("runAsUser") == 0:
        out.append("pod runAsUser")
    for sysctl in psc.get("sysctls") or []:
        if sysctl["name"] not in PSS_SYSCTLS:
            out.append(f"sysctl {sysctl['name']}")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    for c in pod["containers"]:
        sc = c.get("securityContext") or {}
        where = f"container {c['name']}"
        if sc.get("privileged"):
            out.append(f"{where} privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{where} allowPrivilegeEscalation")
        if not (sc.get("runAsNonRoot") is True or (psc.get("runAsNonRoot") is True and "runAsNonRoot" not in sc)):
            out.append(f"{where} runAsNonRoot")
        if sc.get("runAsUser") == 0:
            out.append(f"{where} runAsUser")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{where} capabilities.drop")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{where} capabilities.add")
        if sc.get("procMount", "Default") != "Default":
            out.append(f"{where} procMount")
        seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{where} seccompProfile")
        for profile in (sc.get("appArmorProfile"), psc.get("appArmorProfile")):
            if profile and profile.get("type") not in ("RuntimeDefault", "Localhost"):
                out.append(f"{where} appArmorProfile")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            out.append(f"{where} hostProcess")
    return out


# -- refused: a value that weakens names its field ---------------------------------------------------


@pytest.mark.parametrize(
    ("template", "field"),
    [
        # pod securityContext
        ({"securityContext": {"runAsNonRoot": False}}, f"{SC}.runAsNonRoot"),
        ({"securityContext": {"runAsUser": 0}}, f"{SC}.runAsUser"),
        ({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}, f"{SC}.seccompProfile.type"),
        ({"securityContext": {"seccompProfile": {"type": "Whatever"}}}, f"{SC}.seccompProfile.type"),
        ({"securityContext": {"seccompProfile": {"type": "Localhost"}}}, f"{SC}.seccompProfile.localhostProfile"),
        ({"securityContext": {"seccompProfile": "Unconfined"}}, f"{SC}.seccompProfile"),
        ({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}, f"{SC}.appArmorProfile.type"),
        ({"securityContext": {"appArmorProfile": {"type": "Localhost"}}}, f"{SC}.appArmorProfile.localhostProfile"),
        ({"securityContext": {"seLinuxOptions": {"type": "spc_t"}}}, f"{SC}.seLinuxOptions"),
        ({"securityContext": {"seLinuxOptions": {"user": "system_u"}}}, f"{SC}.seLinuxOptions"),
        ({"securityContext": {"windowsOptions": {"hostProcess": True}}}, f"{SC}.windowsOptions.hostProcess"),
        ({"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}}, f"{SC}.sysctls[0]"),
        # container securityContext
        ({"containerSecurityContext": {"privileged": True}}, f"{CSC}.privileged"),
        ({"containerSecurityContext": {"allowPrivilegeEscalation": True}}, f"{CSC}.allowPrivilegeEscalation"),
        ({"containerSecurityContext": {"runAsNonRoot": False}}, f"{CSC}.runAsNonRoot"),
        ({"containerSecurityContext": {"runAsUser": 0}}, f"{CSC}.runAsUser"),
        ({"containerSecurityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}, f"{CSC}.capabilities.add"),
        (
            {"containerSecurityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "CAP_NET_RAW"], "drop": []}}},
            f"{CSC}.capabilities.add",
        ),
        ({"containerSecurityContext": {"procMount": "Unmasked"}}, f"{CSC}.procMount"),
        ({"containerSecurityContext": {"seccompProfile": {"type": "Unconfined"}}}, f"{CSC}.seccompProfile.type"),
        ({"containerSecurityContext": {"appArmorProfile": {"type": "Unconfined"}}}, f"{CSC}.appArmorProfile.type"),
        (
            {"containerSecurityContext": {"windowsOptions": {"hostProcess": True}}},
            f"{CSC}.windowsOptions.hostProcess",
        ),
        # host namespaces (not in the CRD today)
        ({"hostNetwork": True}, f"{ROOT}.hostNetwork"),
        ({"hostPID": True}, f"{ROOT}.hostPID"),
        ({"hostIPC": True}, f"{ROOT}.hostIPC"),
        # AppArmor and seccomp annotations
        ({"annotations": {APPARMOR: "unconfined"}}, f"{ROOT}.annotations[{APPARMOR}]"),
        ({"annotations": {APPARMOR: ""}}, f"{ROOT}.annotations[{APPARMOR}]"),
        ({"annotations": {APPARMOR: "localhost/"}}, f"{ROOT}.annotations[{APPARMOR}]"),
        ({"annotations": {SECCOMP_POD: "unconfined"}}, f"{ROOT}.annotations[{SECCOMP_POD}]"),
        ({"annotations": {"a": "b", SECCOMP_CONTAINER: "unconfined"}}, f"{ROOT}.annotations[{SECCOMP_CONTAINER}]"),
        # the operator's and the Job controller's labels
        ({"labels": {"team": "a", "app.kubernetes.io/name": "x"}}, f"{ROOT}.labels[app.kubernetes.io/name]"),
        ({"labels": {"rivet.dev/run": "other"}}, f"{ROOT}.labels[rivet.dev/run]"),
        ({"labels": {"rivet.dev/owner-uid": "u"}}, f"{ROOT}.labels[rivet.dev/owner-uid]"),
        ({"labels": {"batch.kubernetes.io/job-name": "j"}}, f"{ROOT}.labels[batch.kubernetes.io/job-name]"),
        ({"labels": {"job-name": "j"}}, f"{ROOT}.labels[job-name]"),
        ({"labels": {"controller-uid": "u"}}, f"{ROOT}.labels[controller-uid]"),
        # scheduling and pulling
        ({"tolerations": [{"operator": "Exists"}]}, f"{ROOT}.tolerations[0].key"),
        ({"tolerations": [{"key": "", "operator": "Exists", "effect": "NoExecute"}]}, f"{ROOT}.tolerations[0].key"),
        ({"tolerations": [{"key": "gpu", "operator": "Exists"}]}, f"{ROOT}.tolerations[0].key"),
        ({"priorityClassName": "system-node-critical"}, f"{ROOT}.priorityClassName"),
        ({"priorityClassName": "high"}, f"{ROOT}.priorityClassName"),
        ({"imagePullSecrets": [{"name": "someone-elses"}]}, f"{ROOT}.imagePullSecrets[0].name"),
        # the existing lists
        ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, f"{ROOT}.volumes[0].hostPath"),
        ({"serviceAccountName": "cluster-admin-sa"}, f"{ROOT}.serviceAccountName"),
    ],
)
def test_a_weakening_value_is_refused_naming_the_field(template: dict[str, Any], field: str) -> None:
    refused = check_job_template(template, DEFAULT)
    assert refused is not None, template
    assert refused.field == field
    assert str(refused).startswith(f"{field}: ")


def test_a_refusal_stalls_the_export_naming_the_field() -> None:
    spec = {**SPEC, "jobTemplate": {"tolerations": [{"key": "batch", "operator": "Exists"}, {"operator": "Exists"}]}}
    reason, message = refusal("orders", spec, Settings()) or ("", "")
    assert reason == "JobTemplateRefused"
    assert message.startswith("spec.jobTemplate.tolerations[0].key: ") and "jobPolicy.allowedTolerationKeys" in message
    allowed = Settings(policy=JobPolicy.from_dict({"allowedTolerationKeys": ["batch"]}))
    reason, message = refusal("orders", spec, allowed) or ("", "")
    assert message.startswith("spec.jobTemplate.tolerations[1].key: ") and "every taint" in message


# -- accepted: null, empty, tightening and harmless values ---------------------------------------------

NULLS_AND_EMPTIES: list[dict[str, Any]] = [
    {"securityContext": {"seccompProfile": None}},
    {"securityContext": {"seccompProfile": {}}},
    {"securityContext": {"seccompProfile": {"type": None}}},
    {"securityContext": {"seccompProfile": {"type": ""}}},
    {"securityContext": {"runAsNonRoot": None, "runAsUser": None}},
    {"securityContext": {"appArmorProfile": None, "seLinuxOptions": None, "sysctls": None}},
    {"securityContext": None, "containerSecurityContext": None},
    {"securityContext": {}, "containerSecurityContext": {}},
    {"containerSecurityContext": {"allowPrivilegeEscalation": None}},
    {"containerSecurityContext": {"capabilities": None}},
    {"containerSecurityContext": {"capabilities": {}}},
    {"containerSecurityContext": {"capabilities": {"drop": []}}},
    {"containerSecurityContext": {"capabilities": {"drop": None, "add": None}}},
    {"containerSecurityContext": {"capabilities": {"drop": ["NET_RAW"]}}},
    {"containerSecurityContext": {"runAsNonRoot": None, "privileged": None, "procMount": None}},
    {"containerSecurityContext": {"seccompProfile": None, "appArmorProfile": {}}},
    {
        "securityContext": {"seccompProfile": None, "runAsNonRoot": None},
        "containerSecurityContext": {"allowPrivilegeEscalation": None, "capabilities": {"drop": []}},
    },
]


@pytest.mark.parametrize("template", NULLS_AND_EMPTIES)
def test_a_null_or_empty_value_is_accepted_and_the_built_job_is_restricted(template: dict[str, Any]) -> None:
    assert check_job_template(template, DEFAULT) is None
    pod_template = built(copy.deepcopy(template))
    assert violations(pod_template) == []
    pod, container = pod_template["spec"], pod_template["spec"]["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsUser"] == 65532  # a null never removes a default
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["runAsNonRoot"] is True
    assert "ALL" in sc["capabilities"]["drop"] and "add" not in sc["capabilities"]
    assert sc["readOnlyRootFilesystem"] is True
    assert "privileged" not in sc and "procMount" not in sc
    assert None not in [*pod["securityContext"].values(), *sc.values()]


@pytest.mark.parametrize(
    "template",
    [
        {"securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000, "supplementalGroups": [3000]}},
        {"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/rivet.json"}}},
        {"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}, "fsGroupChangePolicy": "OnRootMismatch"}},
        {"securityContext": {"sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}]}},
        {"securityContext": {"seLinuxOptions": {"type": "container_t", "level": "s0:c1,c2"}}},
        {"containerSecurityContext": {"readOnlyRootFilesystem": False, "runAsUser": 1001, "privileged": False}},
        {"containerSecurityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}},
        {"containerSecurityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "rivet"}}},
        {"containerSecurityContext": {"procMount": "Default", "seccompProfile": {"type": "RuntimeDefault"}}},
        {"annotations": {APPARMOR: "runtime/default", SECCOMP_POD: "localhost/rivet.json", "team": "a"}},
        {"labels": {"team": "a", "example.com/cost-centre": "42"}},
        {"tolerations": [], "priorityClassName": "", "imagePullSecrets": [], "nodeSelector": {}, "affinity": {}},
        {"nodeSelector": {"pool": "batch"}, "affinity": {"nodeAffinity": {}}},
    ],
)
def test_tightening_and_harmless_values_are_accepted_and_kept(template: dict[str, Any]) -> None:
    assert check_job_template(template, DEFAULT) is None
    pod_template = built(copy.deepcopy(template))
    assert violations(pod_template) == []
    pod, sc = pod_template["spec"], pod_template["spec"]["containers"][0]["securityContext"]
    for key, value in (template.get("securityContext") or {}).items():
        assert pod["securityContext"][key] == value, key
    for key, value in (template.get("containerSecurityContext") or {}).items():
        assert sc[key] == value, key
    for key, value in (template.get("annotations") or {}).items():
        assert pod_template["metadata"]["annotations"][key] == value


def test_drop_lists_keep_their_entries_and_gain_all() -> None:
    sc = built({"containerSecurityContext": {"capabilities": {"drop": ["NET_RAW"], "add": ["NET_BIND_SERVICE"]}}})
    caps = sc["spec"]["containers"][0]["securityContext"]["capabilities"]
    assert caps == {"drop": ["NET_RAW", "ALL"], "add": ["NET_BIND_SERVICE"]}


def test_the_chart_allow_lists_let_scheduling_and_pulling_through() -> None:
    policy = JobPolicy.from_dict(
        {
            "allowedTolerationKeys": ["batch", "gpu"],
            "allowedPriorityClasses": ["batch-low"],
            "allowedImagePullSecrets": ["regcred"],
        }
    )
    template = {
        "tolerations": [{"key": "batch", "operator": "Exists"}, {"key": "gpu", "value": "a", "effect": "NoSchedule"}],
        "priorityClassName": "batch-low",
        "imagePullSecrets": [{"name": "regcred"}],
    }
    assert check_job_template(template, policy) is None
    pod = built(template)["spec"]
    assert pod["tolerations"] == template["tolerations"] and pod["priorityClassName"] == "batch-low"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    any_key = JobPolicy.from_dict({"allowedTolerationKeys": ["*"]})
    assert check_job_template({"tolerations": [{"key": "anything", "operator": "Exists"}]}, any_key) is None
    refused = check_job_template({"tolerations": [{"operator": "Exists"}]}, any_key)  # never the keyless one
    assert refused is not None and refused.field == f"{ROOT}.tolerations[0].key"
    system = JobPolicy.from_dict({"allowedPriorityClasses": ["system-cluster-critical"]})
    refused = check_job_template({"priorityClassName": "system-cluster-critical"}, system)
    assert refused is not None and refused.field == f"{ROOT}.priorityClassName"  # system-* never


def test_node_selection_can_be_switched_off() -> None:
    policy = JobPolicy.from_dict({"allowNodeSelection": False})
    for key, value in (("nodeSelector", {"pool": "batch"}), ("affinity", {"nodeAffinity": {}})):
        refused = check_job_template({key: value}, policy)
        assert refused is not None and refused.field == f"{ROOT}.{key}"
    assert check_job_template({"nodeSelector": {}, "affinity": None}, policy) is None
    # and a null or empty one never removes the chart's own placement
    rt = builders.Runtime("img", defaults={"nodeSelector": {"pool": "batch"}, "tolerations": [{"key": "batch"}]})
    pod = built({"nodeSelector": {}, "tolerations": [], "affinity": None}, rt)["spec"]
    assert pod["nodeSelector"] == {"pool": "batch"} and pod["tolerations"] == [{"key": "batch"}]


def test_allow_privileged_opens_the_security_fields_only() -> None:
    wide = JobPolicy.from_dict({"allowPrivileged": True})
    template: dict[str, Any]
    for template in (
        {"containerSecurityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}},
        {"securityContext": {"seccompProfile": {"type": "Unconfined"}}},
        {"annotations": {APPARMOR: "unconfined"}},
    ):
        assert check_job_template(template, wide) is None
    for template, field in (
        ({"labels": {"rivet.dev/run": "x"}}, f"{ROOT}.labels[rivet.dev/run]"),
        ({"tolerations": [{"operator": "Exists"}]}, f"{ROOT}.tolerations[0].key"),
        ({"priorityClassName": "system-node-critical"}, f"{ROOT}.priorityClassName"),
        ({"imagePullSecrets": [{"name": "x"}]}, f"{ROOT}.imagePullSecrets[0].name"),
    ):
        refused = check_job_template(template, wide)
        assert refused is not None and refused.field == field


# -- the merge: defaults under the template, the restricted fields over both ----------------------------


def test_security_contexts_merge_field_by_field_over_the_chart_defaults() -> None:
    rt = builders.Runtime(
        "img",
        defaults={
            "securityContext": {"runAsUser": 2000, "fsGroup": 2000},
            "containerSecurityContext": {"readOnlyRootFilesystem": False},
        },
    )
    pod_template = built(
        {"securityContext": {"fsGroup": 3000, "runAsUser": None}, "containerSecurityContext": {"runAsUser": 4000}},
        rt,
    )
    psc = pod_template["spec"]["securityContext"]
    sc = pod_template["spec"]["containers"][0]["securityContext"]
    assert psc["runAsUser"] == 2000 and psc["fsGroup"] == 3000 and psc["runAsGroup"] == 65532
    assert sc["readOnlyRootFilesystem"] is False and sc["runAsUser"] == 4000
    assert violations(pod_template) == []


WEAKENING_DEFAULTS: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": False, "runAsUser": 0, "seccompProfile": {"type": "Unconfined"}},
    "containerSecurityContext": {
        "privileged": True,
        "allowPrivilegeEscalation": True,
        "capabilities": {"add": ["SYS_ADMIN", "NET_BIND_SERVICE"], "drop": []},
        "procMount": "Unmasked",
        "appArmorProfile": {"type": "Unconfined"},
    },
    "annotations": {APPARMOR: "unconfined", "team": "a"},
}


def test_the_restricted_fields_are_set_last_even_over_the_chart_defaults() -> None:
    """jobDefaults are the administrator's and not checked; still, Job pods stay restricted unless
    jobPolicy.allowPrivileged says otherwise."""
    pod_template = built(None, builders.Runtime("img", defaults=copy.deepcopy(WEAKENING_DEFAULTS)))
    assert violations(pod_template) == []
    sc = pod_template["spec"]["containers"][0]["securityContext"]
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert pod_template["metadata"]["annotations"] == {"team": "a"}
    assert "runAsUser" not in pod_template["spec"]["securityContext"]  # root removed; runAsNonRoot guards
    unrestricted = builders.Runtime("img", defaults=copy.deepcopy(WEAKENING_DEFAULTS), restricted=False)
    assert "container rivet privileged" in violations(built(None, unrestricted))


def test_enforce_restricted_is_idempotent_and_leaves_its_input_alone() -> None:
    raw = {
        "metadata": {"annotations": {APPARMOR: "unconfined"}},
        "spec": {
            "securityContext": {"seccompProfile": None},
            "containers": [{"name": "c", "securityContext": {"capabilities": {"drop": []}}}],
            "initContainers": [{"name": "i", "securityContext": {"privileged": True}}],
        },
    }
    before = copy.deepcopy(raw)
    once = enforce_restricted(raw)
    assert raw == before and enforce_restricted(once) == once
    assert once["spec"]["initContainers"][0]["securityContext"] == {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert once["metadata"]["annotations"] == {}


# every combination of a few null, harmless and weakening values (True: refused) of the restricted fields
FIELD_VALUES: dict[tuple[str, str], list[tuple[Any, bool]]] = {
    ("securityContext", "runAsNonRoot"): [(None, False), (True, False), (False, True)],
    ("securityContext", "runAsUser"): [(None, False), (1000, False), (0, True)],
    ("securityContext", "seccompProfile"): [(None, False), ({}, False), ({"type": "Unconfined"}, True)],
    ("containerSecurityContext", "allowPrivilegeEscalation"): [(None, False), (True, True)],
    ("containerSecurityContext", "capabilities"): [
        (None, False),
        ({"drop": []}, False),
        ({"add": ["SYS_ADMIN"]}, True),
    ],
    ("containerSecurityContext", "privileged"): [(None, False), (True, True)],
    ("containerSecurityContext", "procMount"): [(None, False), ("Unmasked", True)],
}


def test_every_combination_is_refused_exactly_when_it_weakens_and_always_builds_restricted() -> None:
    for combo in itertools.product(*FIELD_VALUES.values()):
        template: dict[str, Any] = {"securityContext": {}, "containerSecurityContext": {}}
        for (ctx, key), (value, _) in zip(FIELD_VALUES, combo, strict=True):
            template[ctx][key] = copy.deepcopy(value)
        weakens = any(w for _, w in combo)
        assert (check_job_template(template, DEFAULT) is not None) == weakens, template
        # built anyway (as unchecked chart defaults would be): the restricted fields win
        assert violations(built(copy.deepcopy(template))) == [], template
        assert violations(built(None, builders.Runtime("img", defaults=copy.deepcopy(template)))) == [], template


def test_the_chart_values_reach_the_policy_and_the_runtime() -> None:
    raw = (
        '{"allowedTolerationKeys":["batch"],"allowedPriorityClasses":["low"],"allowNodeSelection":false,'
        '"allowedImagePullSecrets":["regcred"],"allowedServiceAccounts":["exporter"]}'
    )
    config = from_env({"RIVET_JOB_POLICY": raw})
    assert config.settings.policy == JobPolicy(
        allowed_service_accounts=("default", "exporter"),
        allowed_toleration_keys=("batch",),
        allowed_priority_classes=("low",),
        allow_node_selection=False,
        allowed_image_pull_secrets=("regcred",),
    )
    assert config.settings.runtime.restricted is True
    assert from_env({}).settings.policy == JobPolicy() and from_env({}).settings.runtime.restricted is True
    assert from_env({"RIVET_JOB_POLICY": '{"allowPrivileged":true}'}).settings.runtime.restricted is False
