"""Jobs (pure): the plan, chunk, finalize and validate Jobs, and the `rivet` arguments each one runs.

Job pods get the `restricted` Pod Security profile; `spec.jobTemplate` (checked first by api/policy.py)
and the chart's jobDefaults can add resources, nodeSelector, tolerations, affinity, serviceAccountName,
imagePullSecrets, priorityClassName, labels, annotations, volumes and volumeMounts, and tighten the
security contexts. A null or empty template value never removes a default, and the restricted fields are
set again last (policy.enforce_restricted), unless the chart's jobPolicy.allowPrivileged is on.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from rivet_operator.api.policy import enforce_restricted
from rivet_operator.api.spec import CONFIG_ENV, SOURCE_CA_DIR, SOURCE_URL_ENV
from rivet_operator.specs.configmaps import metadata
from rivet_operator.specs.names import Owner

TERMINATION_LOG = "/dev/termination-log"
# The interpreter by absolute path, isolated (-I: no PYTHON* variable, no user site, no current directory on
# sys.path): an `envFrom` Secret or ConfigMap may hold any key (admission cannot see inside), so none of its
# keys may change which code runs. The loader's variables and PATH are pinned after `envFrom` (an `env` entry
# wins over `envFrom`) for the same reason. The image's venv is /opt/rivet (Dockerfile).
JOB_COMMAND = ("/opt/rivet/bin/python", "-I", "-m", "rivet")
PINNED_ENV = (
    {"name": "PATH", "value": "/opt/rivet/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
    {"name": "LD_PRELOAD", "value": ""},
    {"name": "LD_LIBRARY_PATH", "value": ""},
    {"name": "LD_AUDIT", "value": ""},
)
LEDGER_DIR = "/var/run/rivet/ledger"
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "fsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
}
POD_KEYS = ("nodeSelector", "tolerations", "affinity", "serviceAccountName", "imagePullSecrets", "priorityClassName")


@dataclass(frozen=True)
class Runtime:
    """What the chart decides for every Job: image, pull policy, defaults, default deadline."""

    image: str = "rivet:dev"
    pull_policy: str = "IfNotPresent"
    defaults: dict[str, Any] = field(default_factory=dict)
    active_deadline_s: int | None = None
    restricted: bool = True  # enforce the restricted profile last (off only with jobPolicy.allowPrivileged)


@dataclass(frozen=True)
class JobSpec:
    """What differs between the plan, chunk, finalize and validate Jobs."""

    name: str
    labels: dict[str, str]
    args: list[str]
    config: str  # the run's rendered rivet.yaml, passed in an env var of the immutable pod template
    ledger_shards: tuple[str, ...] = ()
    source_secret: dict[str, str] | None = None  # {"name":..., "key":...}; None for validate Jobs
    source_ca: dict[str, Any] | None = None  # spec.source.tls.caFrom; None for validate Jobs
    empty_ledger: bool = False  # finalize of a run with no chunks still gets an (empty) ledger directory


def job(owner: Owner, js: JobSpec, spec: dict[str, Any], rt: Runtime) -> dict[str, Any]:
    """A run-once Job (backoffLimit 0: the operator retries with its own backoff and permanent/retryable rules)."""
    own = spec.get("jobTemplate") or {}
    template = {**rt.defaults, **{k: v for k, v in own.items() if _says_something(v)}}
    env: list[dict[str, Any]] = [{"name": "RIVET_LOG_FORMAT", "value": "json"}]
    if js.source_secret:
        env.append({"name": SOURCE_URL_ENV, "valueFrom": {"secretKeyRef": dict(js.source_secret)}})
    env.extend(copy.deepcopy(spec.get("env") or []))
    # Last, so that no `env` entry of the spec (the later of two equal names wins) replaces the run's config.
    # The kubelet expands `$(NAME)` in env values and turns `$$` into `$`: doubling every `$` makes the
    # config arrive byte for byte (a query may well hold `$(...)` or `$$`).
    env.append({"name": CONFIG_ENV, "value": js.config.replace("$", "$$")})
    env.extend(dict(e) for e in PINNED_ENV)
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if js.ledger_shards:
        sources = [{"configMap": {"name": shard}} for shard in js.ledger_shards]
        volumes.append({"name": "ledger", "projected": {"sources": sources}})
        mounts.append({"name": "ledger", "mountPath": LEDGER_DIR, "readOnly": True})
    elif js.empty_ledger:
        volumes.append({"name": "ledger", "emptyDir": {}})
        mounts.append({"name": "ledger", "mountPath": LEDGER_DIR, "readOnly": True})
    if js.source_ca:
        volumes.append(source_ca_volume(js.source_ca))
        mounts.append({"name": "source-ca", "mountPath": SOURCE_CA_DIR, "readOnly": True})
    volumes.extend(copy.deepcopy(template.get("volumes") or []))
    mounts.extend(copy.deepcopy(template.get("volumeMounts") or []))
    container: dict[str, Any] = {
        "name": "rivet",
        "image": rt.image,
        "imagePullPolicy": rt.pull_policy,
        "command": list(JOB_COMMAND),
        "args": [*js.args, "-c", f"env:{CONFIG_ENV}", "--termination-log", TERMINATION_LOG],
        "env": env,
        "envFrom": copy.deepcopy(spec.get("envFrom") or []),
        "volumeMounts": mounts,
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
        "securityContext": _layered(CONTAINER_SECURITY, rt.defaults, own, "containerSecurityContext"),
    }
    if template.get("resources"):
        container["resources"] = copy.deepcopy(template["resources"])
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": volumes,
        "securityContext": _layered(POD_SECURITY, rt.defaults, own, "securityContext"),
        "automountServiceAccountToken": False,
    }
    for key in POD_KEYS:
        if template.get(key):
            pod_spec[key] = copy.deepcopy(template[key])
    pod_meta: dict[str, Any] = {"labels": {**(template.get("labels") or {}), **js.labels}}
    if template.get("annotations"):
        pod_meta["annotations"] = dict(template["annotations"])
    pod_template = {"metadata": pod_meta, "spec": pod_spec}
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": enforce_restricted(pod_template) if rt.restricted else pod_template,
    }
    deadline = template.get("activeDeadlineSeconds") or rt.active_deadline_s
    if deadline:
        job_spec["activeDeadlineSeconds"] = int(deadline)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata(owner, js.name, js.labels), "spec": job_spec}


def _says_something(value: Any) -> bool:
    """A template value that replaces a chart default: null and empty ones ({}, [], "") never do."""
    return value is not None and value != {} and value != [] and value != ""


def _layered(base: dict[str, Any], defaults: dict[str, Any], own: dict[str, Any], key: str) -> dict[str, Any]:
    """A security context field by field: the restricted base, the chart's jobDefaults, the template; a null
    field keeps what is under it (enforce_restricted then sets the restricted fields again)."""
    merged = copy.deepcopy(base)
    for layer in (defaults.get(key), own.get(key)):
        if isinstance(layer, dict):
            merged.update({k: copy.deepcopy(v) for k, v in layer.items() if v is not None})
    return merged


def common_args(export: str, run_id: str, run_date: str) -> list[str]:
    return ["-e", export, "--run-id", run_id, "--date", run_date]


def plan_args(export: str, run_id: str, run_date: str, force: bool) -> list[str]:
    return ["plan", *common_args(export, run_id, run_date), "--check-destination", *(["--force"] if force else [])]


def cursor_args(cursor: str | None) -> list[str]:
    return ["--cursor", cursor] if cursor else []


def chunk_args(export: str, run_id: str, run_date: str, chunk: int, plan: str, cursor: str | None = None) -> list[str]:
    """The chunk Job gets the plan as the plan Job printed it, and computes its own range from it."""
    return [
        "chunk",
        *common_args(export, run_id, run_date),
        "--chunk",
        str(chunk),
        "--plan",
        plan,
        *cursor_args(cursor),
    ]


def finalize_args(
    export: str,
    run_id: str,
    run_date: str,
    started_at: str,
    chunks: int,
    plan: str,
    force: bool,
    cursor: str | None = None,
    ledger_digest: str | None = None,
) -> list[str]:
    return [
        "finalize",
        *common_args(export, run_id, run_date),
        "--ledger",
        LEDGER_DIR,
        *(["--ledger-digest", ledger_digest] if ledger_digest else []),
        "--started-at",
        started_at,
        "--expect-chunks",
        str(chunks),
        "--plan",
        plan,
        *(["--force"] if force else []),
        *cursor_args(cursor),
    ]


def validate_args(export: str, date: str | None, run_id: str | None, prefix: str | None) -> list[str]:
    args = ["validate", "-e", export, "--format", "json"]
    if date:
        args += ["--date", date]
    if run_id:
        args += ["--run-id", run_id]
    if prefix:
        args += ["--prefix", prefix]
    return args


def source_ca_volume(ca_from: dict[str, Any]) -> dict[str, Any]:
    """The CA bundle of spec.source.tls.caFrom as `ca.crt` (the path the rendered config names)."""
    if ca_from.get("secretKeyRef"):
        ref = ca_from["secretKeyRef"]
        return {
            "name": "source-ca",
            "secret": {"secretName": ref["name"], "items": [{"key": ref["key"], "path": "ca.crt"}]},
        }
    ref = ca_from["configMapKeyRef"]
    return {"name": "source-ca", "configMap": {"name": ref["name"], "items": [{"key": ref["key"], "path": "ca.crt"}]}}
