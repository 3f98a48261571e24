"""What a resource's `spec.jobTemplate` may ask of the Job pods the operator creates on its behalf (pure).

Anyone who may create a RivetExport gets pods run by the operator, so by default a template may not relax
the `restricted` Pod Security profile, mount a volume type outside the allow-list (hostPath above all), or
run the pods under a service account the chart did not allow. Administrators widen the lists with chart
values (`jobPolicy.*`, passed as RIVET_JOB_POLICY). A refusal stalls the resource, naming the field.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class JobPolicy:
    """What templates may do. Service accounts: the namespace's `default` (or none) plus the listed ones."""

    allowed_volume_types: tuple[str, ...] = DEFAULT_VOLUME_TYPES
    allowed_service_accounts: tuple[str, ...] = ("default",)
    allow_privileged: bool = False

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> JobPolicy:
        volumes = raw.get("allowedVolumeTypes")
        accounts = raw.get("allowedServiceAccounts")
        return cls(
            allowed_volume_types=tuple(str(v) for v in volumes) if volumes is not None else DEFAULT_VOLUME_TYPES,
            allowed_service_accounts=("default", *(str(a) for a in accounts or ())),
            allow_privileged=bool(raw.get("allowPrivileged", False)),
        )


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
    if policy.allow_privileged:
        return
    for key in HOST_NAMESPACES:  # not in the CRD's jobTemplate today; refused should the schema grow them
        if t.get(key) is True:
            yield _privileged(f"{root}.{key}", "host namespaces are not allowed")
    yield from _security(t.get("securityContext") or {}, f"{root}.securityContext", pod=True)
    yield from _security(t.get("containerSecurityContext") or {}, f"{root}.containerSecurityContext", pod=False)


def _privileged(path: str, why: str) -> Refusal:
    return Refusal(
        path,
        f"{why} under the restricted Pod Security profile the operator enforces for Job pods "
        "(an administrator can set jobPolicy.allowPrivileged in the chart)",
    )


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
    extra = [c for c in added if str(c).upper().removeprefix("CAP_") not in ALLOWED_CAPABILITIES]
    if extra:
        yield _privileged(f"{path}.capabilities.add", f"capabilities {extra} are not allowed (only NET_BIND_SERVICE)")
    if str((sc.get("seccompProfile") or {}).get("type", "")) == "Unconfined":
        yield _privileged(f"{path}.seccompProfile.type", "seccomp profile Unconfined is not allowed")
    if str((sc.get("appArmorProfile") or {}).get("type", "")) == "Unconfined":
        yield _privileged(f"{path}.appArmorProfile.type", "AppArmor profile Unconfined is not allowed")
    se = sc.get("seLinuxOptions") or {}
    if se.get("type", "") not in SELINUX_TYPES or se.get("user") or se.get("role"):
        yield _privileged(f"{path}.seLinuxOptions", "custom SELinux options are not allowed")
    if (sc.get("windowsOptions") or {}).get("hostProcess") is True:
        yield _privileged(f"{path}.windowsOptions.hostProcess", "host processes are not allowed")
    if not pod and sc.get("procMount") not in (None, "Default"):
        yield _privileged(f"{path}.procMount", "an unmasked /proc is not allowed")
    for j, sysctl in enumerate(sc.get("sysctls") or [] if pod else []):
        if isinstance(sysctl, dict) and sysctl.get("name") not in SAFE_SYSCTLS:
            yield _privileged(f"{path}.sysctls[{j}]", f"sysctl {sysctl.get('name')!r} is not allowed")
