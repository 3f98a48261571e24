"""What a resource's `spec.jobTemplate` may ask of the Job pods the operator creates on its behalf (pure).

Anyone who may create a RivetExport gets pods run by the operator, so by default a template may not relax
the `restricted` Pod Security profile, mount a volume type outside the allow-list (hostPath above all), run
the pods under a service account, pull secret or priority class the chart did not allow, tolerate taints the
chart did not list, or relabel the pods with the operator's own label keys. Administrators widen the lists
with chart values (`jobPolicy.*`, passed as RIVET_JOB_POLICY). A refusal stalls the resource, naming the field.

Two halves, one rule ("a template can tighten, never weaken"):
- `check_job_template` refuses a template that asks to weaken with a value (`privileged: true`,
  `seccompProfile: {type: Unconfined}`, an `unconfined` AppArmor annotation, a keyless `Exists` toleration...).
- `enforce_restricted` is the last step of every Job pod the operator builds: whatever null or empty value
  reached the pod (`seccompProfile: null`, `capabilities: {drop: []}`, `allowPrivilegeEscalation: null`...),
  the restricted fields are set again, after the template and the chart's jobDefaults.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# The restricted profile's volume types, minus csi and ephemeral (driver-defined: an admin opts in).
DEFAULT_VOLUME_TYPES = ("configMap", "secret", "emptyDir", "projected", "downwardAPI", "persistentVolumeClaim")
ALLOWED_CAPABILITIES = ("NET_BIND_SERVICE",)
SAFE_SYSCTLS = (
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
)
SELINUX_TYPES = ("", "container_t", "container_init_t", "container_kvm_t", "container_engine_t")
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
PROFILE_TYPES = ("RuntimeDefault", "Localhost")  # seccompProfile.type and appArmorProfile.type
RUNTIME_DEFAULT = {"type": "RuntimeDefault"}
# The legacy annotations: AppArmor per container, seccomp per pod or container (the fields' forerunners).
APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_PREFIXES = ("seccomp.security.alpha.kubernetes.io/", "container.seccomp.security.alpha.kubernetes.io/")
APPARMOR_VALUES = ("runtime/default",)
SECCOMP_VALUES = ("runtime/default", "docker/default")
# Label keys the operator (app.kubernetes.io/*, rivet.dev/*) or the Job controller set on Job pods.
RESERVED_LABEL_PREFIXES = ("app.kubernetes.io/", "rivet.dev/", "batch.kubernetes.io/")
RESERVED_LABELS = ("job-name", "controller-uid")
ANY_KEY = "*"  # in allowedTolerationKeys: any keyed toleration (never the keyless one that tolerates every taint)


@dataclass(frozen=True)
class JobPolicy:
    """What templates may do. Service accounts: the namespace's `default` (or none) plus the listed ones;
    tolerations, priority classes and image pull secrets: only the listed ones (none by default);
    nodeSelector and affinity: allowed unless allow_node_selection is off."""

    allowed_volume_types: tuple[str, ...] = DEFAULT_VOLUME_TYPES
    allowed_service_accounts: tuple[str, ...] = ("default",)
    allow_privileged: bool = False
    allowed_toleration_keys: tuple[str, ...] = ()
    allowed_priority_classes: tuple[str, ...] = ()
    allow_node_selection: bool = True
    allowed_image_pull_secrets: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> JobPolicy:
        volumes = raw.get("allowedVolumeTypes")
        node_selection = raw.get("allowNodeSelection")
        return cls(
            allowed_volume_types=tuple(str(v) for v in volumes) if volumes is not None else DEFAULT_VOLUME_TYPES,
            allowed_service_accounts=("default", *_names(raw, "allowedServiceAccounts")),
            allow_privileged=bool(raw.get("allowPrivileged", False)),
            allowed_toleration_keys=_names(raw, "allowedTolerationKeys"),
            allowed_priority_classes=_names(raw, "allowedPriorityClasses"),
            allow_node_selection=True if node_selection is None else bool(node_selection),
            allowed_image_pull_secrets=_names(raw, "allowedImagePullSecrets"),
        )


def _names(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    return tuple(str(v) for v in raw.get(key) or () if v)


@dataclass(frozen=True)
class Refusal:
    field: str  # spec path, e.g. spec.jobTemplate.volumes[0].hostPath
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def check_job_template(template: dict[str, Any], policy: JobPolicy, root: str = "spec.jobTemplate") -> Refusal | None:
    """The first thing in `template` the policy refuses, or None."""
    return next(_refusals(template or {}, policy, root), None)


def _refusals(t: dict[str, Any], policy: JobPolicy, root: str) -> Iterator[Refusal]:
    for i, vol in enumerate(t.get("volumes") or []):
        kinds = [k for k in vol if k != "name"] if isinstance(vol, dict) else []
        for kind in kinds:
            if kind not in policy.allowed_volume_types:
                yield Refusal(
                    f"{root}.volumes[{i}].{kind}",
                    f"volume type {kind} is not allowed by the operator's job policy (allowed: "
                    f"{', '.join(policy.allowed_volume_types)}); an administrator can widen "
                    "jobPolicy.allowedVolumeTypes in the chart",
                )
    sa = t.get("serviceAccountName")
    if sa and sa not in policy.allowed_service_accounts:
        yield Refusal(
            f"{root}.serviceAccountName",
            f"service account {sa!r} is not allowed by the operator's job policy (allowed: "
            f"{', '.join(policy.allowed_service_accounts)}); an administrator can add it to "
            "jobPolicy.allowedServiceAccounts in the chart",
        )
    yield from _labels(t.get("labels") or {}, f"{root}.labels")
    yield from _scheduling(t, policy, root)
    for i, ref in enumerate(t.get("imagePullSecrets") or []):
        name = ref.get("name") if isinstance(ref, dict) else None
        if name not in policy.allowed_image_pull_secrets:
            yield Refusal(
                f"{root}.imagePullSecrets[{i}].name",
                f"image pull secret {name!r} is not allowed by the operator's job policy "
                f"(allowed: {_listed(policy.allowed_image_pull_secrets)}); an administrator can add it to "
                "jobPolicy.allowedImagePullSecrets in the chart, or give every Job pull secrets through jobDefaults",
            )
    if policy.allow_privileged:
        return
    for key in HOST_NAMESPACES:  # not in the CRD's jobTemplate today; refused should the schema grow them
        if t.get(key) is True:
            yield _privileged(f"{root}.{key}", "host namespaces are not allowed")
    yield from _annotations(t.get("annotations") or {}, f"{root}.annotations")
    yield from _security(t.get("securityContext") or {}, f"{root}.securityContext", pod=True)
    yield from _security(t.get("containerSecurityContext") or {}, f"{root}.containerSecurityContext", pod=False)


def _listed(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else "none"


def _labels(labels: dict[str, Any], path: str) -> Iterator[Refusal]:
    for key in labels:
        if key in RESERVED_LABELS or key.startswith(RESERVED_LABEL_PREFIXES):
            yield Refusal(
                f"{path}[{key}]",
                "the operator and the Job controller own this label key on Job pods (app.kubernetes.io/*, "
                "rivet.dev/*, batch.kubernetes.io/*, job-name, controller-uid); choose another key",
            )


def _scheduling(t: dict[str, Any], policy: JobPolicy, root: str) -> Iterator[Refusal]:
    for i, tol in enumerate(t.get("tolerations") or []):
        tol = tol if isinstance(tol, dict) else {}
        key = str(tol.get("key") or "")
        if not key:
            yield Refusal(
                f"{root}.tolerations[{i}].key",
                "a toleration without a key (operator Exists) tolerates every taint, NoExecute ones included; "
                "name the taint's key",
            )
        elif key not in policy.allowed_toleration_keys and ANY_KEY not in policy.allowed_toleration_keys:
            yield Refusal(
                f"{root}.tolerations[{i}].key",
                f"toleration of taint key {key!r} is not allowed by the operator's job policy (allowed: "
                f"{_listed(policy.allowed_toleration_keys)}); an administrator can add it to "
                "jobPolicy.allowedTolerationKeys in the chart",
            )
    pc = t.get("priorityClassName")
    if pc and (str(pc).startswith("system-") or pc not in policy.allowed_priority_classes):
        yield Refusal(
            f"{root}.priorityClassName",
            f"priority class {pc!r} is not allowed by the operator's job policy (allowed: "
            f"{_listed(policy.allowed_priority_classes)}; system-* never); an administrator can add it to "
            "jobPolicy.allowedPriorityClasses in the chart",
        )
    if not policy.allow_node_selection:
        for key in ("nodeSelector", "affinity"):
            if t.get(key):
                yield Refusal(
                    f"{root}.{key}",
                    "the operator's job policy does not let templates choose nodes (jobPolicy.allowNodeSelection "
                    "is false); the chart's jobDefaults decide where Job pods run",
                )


def _privileged(path: str, why: str) -> Refusal:
    return Refusal(
        path,
        f"{why} under the restricted Pod Security profile the operator enforces for Job pods "
        "(an administrator can set jobPolicy.allowPrivileged in the chart)",
    )


def _annotations(annotations: dict[str, Any], path: str) -> Iterator[Refusal]:
    for key, value in annotations.items():
        if not _annotation_ok(key, value):
            kind = "AppArmor" if key.startswith(APPARMOR_PREFIX) else "seccomp"
            yield _privileged(
                f"{path}[{key}]",
                f"{kind} profile {value!r} is not allowed (only runtime/default or localhost/<profile>)",
            )


def _annotation_ok(key: str, value: Any) -> bool:
    allowed: tuple[str, ...]
    if key.startswith(APPARMOR_PREFIX):
        allowed = APPARMOR_VALUES
    elif key.startswith(SECCOMP_PREFIXES):
        allowed = SECCOMP_VALUES
    else:
        return True
    value = str(value or "")
    return value in allowed or (value.startswith("localhost/") and len(value) > len("localhost/"))


def _profile_refusal(profile: Any, path: str, kind: str) -> Refusal | None:
    """seccompProfile / appArmorProfile: null, {} or no type is left to the default; RuntimeDefault and
    Localhost (with a localhostProfile) pass; anything else is refused."""
    if profile is None or profile == {}:
        return None
    if not isinstance(profile, dict):
        return _privileged(path, f"{kind} profile {profile!r} is not an object")
    kind_of = profile.get("type")
    if kind_of is None or kind_of == "":
        return None
    if kind_of not in PROFILE_TYPES:
        return _privileged(
            f"{path}.type", f"{kind} profile {kind_of} is not allowed (only RuntimeDefault or Localhost)"
        )
    if kind_of == "Localhost" and not profile.get("localhostProfile"):
        return _privileged(f"{path}.localhostProfile", f"a Localhost {kind} profile needs localhostProfile")
    return None


def _security(sc: dict[str, Any], path: str, pod: bool) -> Iterator[Refusal]:
    if sc.get("privileged") is True:
        yield _privileged(f"{path}.privileged", "privileged containers are not allowed")
    if sc.get("allowPrivilegeEscalation") is True:
        yield _privileged(f"{path}.allowPrivilegeEscalation", "privilege escalation is not allowed")
    if sc.get("runAsNonRoot") is False:
        yield _privileged(f"{path}.runAsNonRoot", "running as root is not allowed")
    if sc.get("runAsUser") == 0:
        yield _privileged(f"{path}.runAsUser", "uid 0 (root) is not allowed")
    added = ((sc.get("capabilities") or {}).get("add")) or []
    extra = [c for c in added if _capability(c) not in ALLOWED_CAPABILITIES]
    if extra:
        yield _privileged(f"{path}.capabilities.add", f"capabilities {extra} are not allowed (only NET_BIND_SERVICE)")
    for key, kind in (("seccompProfile", "seccomp"), ("appArmorProfile", "AppArmor")):
        refused = _profile_refusal(sc.get(key), f"{path}.{key}", kind)
        if refused:
            yield refused
    if not _selinux_ok(sc.get("seLinuxOptions")):
        yield _privileged(f"{path}.seLinuxOptions", "custom SELinux options are not allowed")
    if (sc.get("windowsOptions") or {}).get("hostProcess") is True:
        yield _privileged(f"{path}.windowsOptions.hostProcess", "host processes are not allowed")
    if not pod and sc.get("procMount") not in (None, "Default"):
        yield _privileged(f"{path}.procMount", "an unmasked /proc is not allowed")
    for j, sysctl in enumerate(sc.get("sysctls") or [] if pod else []):
        if not _sysctl_ok(sysctl):
            yield _privileged(f"{path}.sysctls[{j}]", f"sysctl {(sysctl or {}).get('name')!r} is not allowed")


def _capability(name: Any) -> str:
    return str(name).upper().removeprefix("CAP_")


def _selinux_ok(se: Any) -> bool:
    se = se or {}
    return (
        isinstance(se, dict) and (se.get("type") or "") in SELINUX_TYPES and not se.get("user") and not se.get("role")
    )


def _sysctl_ok(sysctl: Any) -> bool:
    return isinstance(sysctl, dict) and sysctl.get("name") in SAFE_SYSCTLS


def _profile_ok(profile: Any) -> bool:
    return (
        isinstance(profile, dict)
        and profile.get("type") in PROFILE_TYPES
        and (profile["type"] != "Localhost" or bool(profile.get("localhostProfile")))
    )


def _without_nulls(sc: Any) -> dict[str, Any]:
    return {k: v for k, v in sc.items() if v is not None} if isinstance(sc, dict) else {}


def enforce_restricted(pod_template: dict[str, Any]) -> dict[str, Any]:
    """`pod_template` (a Job's spec.template: metadata and spec) with the restricted profile set again, last.

    Whatever a template or the chart's jobDefaults left (null, empty, or a weakening value that got past
    check_job_template), the result has pod and container runAsNonRoot true, seccomp RuntimeDefault unless
    the pod names RuntimeDefault or Localhost (with a profile), allowPrivilegeEscalation false, capabilities
    dropping ALL and adding at most NET_BIND_SERVICE, no privileged, no procMount but Default, no AppArmor or
    seccomp profile (field or annotation) but RuntimeDefault or Localhost, no root uid, unsafe sysctl, custom
    SELinux type or host process. Harmless fields (runAsUser, fsGroup, readOnlyRootFilesystem...) stay.
    """
    out = copy.deepcopy(pod_template)
    meta = out.get("metadata") or {}
    if meta.get("annotations"):
        meta["annotations"] = {k: v for k, v in meta["annotations"].items() if _annotation_ok(k, v)}
    spec = out["spec"]
    for key in HOST_NAMESPACES:
        spec.pop(key, None)
    sc = _restricted_context(spec.get("securityContext"))
    if not _profile_ok(sc.get("seccompProfile")):
        sc["seccompProfile"] = dict(RUNTIME_DEFAULT)
    sc["sysctls"] = [s for s in sc.get("sysctls") or [] if _sysctl_ok(s)]
    if not sc["sysctls"]:
        del sc["sysctls"]
    spec["securityContext"] = sc
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(group) or []:
            csc = _restricted_context(container.get("securityContext"))
            csc["allowPrivilegeEscalation"] = False
            if csc.get("privileged") is not False:
                csc.pop("privileged", None)
            if csc.get("procMount") != "Default":
                csc.pop("procMount", None)
            caps = _without_nulls(csc.get("capabilities"))
            drop = [d for d in caps.get("drop") or [] if d]
            add = [a for a in caps.get("add") or [] if _capability(a) in ALLOWED_CAPABILITIES]
            csc["capabilities"] = {
                "drop": drop if any(_capability(d) == "ALL" for d in drop) else [*drop, "ALL"],
                **({"add": add} if add else {}),
            }
            container["securityContext"] = csc
    return out


def _restricted_context(raw: Any) -> dict[str, Any]:
    """The fields pod and container security contexts share, restricted: runAsNonRoot true, no uid 0, only
    RuntimeDefault or Localhost profiles (a bad container profile goes: the pod's applies)."""
    sc = _without_nulls(raw)
    sc["runAsNonRoot"] = True
    if sc.get("runAsUser") == 0:
        del sc["runAsUser"]
    for key in ("seccompProfile", "appArmorProfile"):
        if key in sc and not _profile_ok(sc[key]):
            del sc[key]
    if not _selinux_ok(sc.get("seLinuxOptions")):
        del sc["seLinuxOptions"]
    if (sc.get("windowsOptions") or {}).get("hostProcess") is True:
        sc["windowsOptions"] = {k: v for k, v in sc["windowsOptions"].items() if k != "hostProcess"}
    return sc
