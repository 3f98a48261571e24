"""The RivetExport API against the engine: the CRD and the engine's loader must agree on every field's
existence, enum values, defaults and bounds (rendered through api/spec.py, loaded by rivet.config), and
the Job pod policy (api/policy.py) refuses what relaxes the restricted profile, naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rivet.config.loader import DEST_KEYS, EXPORT_KEYS, TUNING_KEYS
from rivet.config.model import Compression, DestinationType, Format, Mode, SourceType, Verify
from rivet_operator.api import crds
from rivet_operator.api.fields import EXPORT_FIELDS, TUNING_FIELDS, camel, destination_types_by_key
from rivet_operator.api.policy import JobPolicy, check_job_template
from rivet_operator.api.spec import SpecError, check_spec
from tests.unit.test_chart import crd_validator

BASE: dict[str, Any] = {
    "source": {"type": "postgres", "urlFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
    "table": "public.orders",
    "mode": "full",
    "format": "parquet",
    "destination": {"type": "s3", "bucket": "lake", "prefix": "p/"},
}
MODE_FIELDS = {
    "full": {},
    "chunked": {"chunkColumn": "id"},
    "incremental": {"cursorColumn": "updated_at"},
    "time_window": {"timeColumn": "at", "daysWindow": 1},
}
DESTINATIONS = {
    "local": {"type": "local", "path": "/data/out"},
    "s3": {"type": "s3", "bucket": "lake"},
    "gcs": {"type": "gcs", "bucket": "lake"},
    "azure": {"type": "azure", "accountName": "acct", "container": "lake", "accountKeyEnv": "AZ_KEY"},
}
SPEC_PROPS = crds.export_spec()["properties"]


def resource(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "rivet.dev/v1alpha1", "kind": "RivetExport", "metadata": {"name": "orders"}, "spec": spec}


def crd_accepts(spec: dict[str, Any]) -> bool:
    return not list(crd_validator("rivetexports").iter_errors(resource(spec)))


def engine_accepts(spec: dict[str, Any]) -> bool:
    try:
        check_spec("orders", spec)
    except SpecError:
        return False
    return True


def with_(**fields: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    mode = fields.get("mode", "full")
    spec.update(MODE_FIELDS[mode])
    spec.update(fields)
    return spec


# -- enums and defaults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "enum"),
    [("mode", Mode), ("format", Format), ("compression", Compression), ("verify", Verify)],
)
def test_crd_enums_are_the_engines(field: str, enum: type[Any]) -> None:
    assert SPEC_PROPS[field]["enum"] == [e.value for e in enum]


def test_destination_and_source_types_are_the_engines_less_stdout() -> None:
    assert SPEC_PROPS["destination"]["properties"]["type"]["enum"] == [
        t.value for t in DestinationType if t is not DestinationType.STDOUT
    ]
    assert SPEC_PROPS["source"]["properties"]["type"]["enum"] == [t.value for t in SourceType]
    with pytest.raises(SpecError, match=r"spec\.destination\.type"):
        check_spec("orders", {**BASE, "destination": {"type": "stdout"}})


@pytest.mark.parametrize("mode", [m.value for m in Mode])
@pytest.mark.parametrize("fmt", [f.value for f in Format])
def test_every_mode_and_format_the_crd_accepts_the_engine_accepts(mode: str, fmt: str) -> None:
    spec = with_(mode=mode, format=fmt)
    if mode == "chunked":
        spec["chunkSize"] = 10
    assert crd_accepts(spec) and engine_accepts(spec)


@pytest.mark.parametrize("compression", [c.value for c in Compression])
def test_every_compression_the_crd_accepts_the_engine_accepts(compression: str) -> None:
    assert crd_accepts(with_(compression=compression)) and engine_accepts(with_(compression=compression))


@pytest.mark.parametrize("verify", [v.value for v in Verify])
def test_every_verify_value_the_crd_accepts_the_engine_accepts(verify: str) -> None:
    assert crd_accepts(with_(verify=verify)) and engine_accepts(with_(verify=verify))


@pytest.mark.parametrize("kind", list(DESTINATIONS))
def test_every_destination_type_the_crd_accepts_the_engine_accepts(kind: str) -> None:
    spec = with_(destination=DESTINATIONS[kind])
    assert crd_accepts(spec) and engine_accepts(spec)


def test_crd_defaults_are_the_engines_defaults() -> None:
    spec = copy.deepcopy(BASE)
    del spec["mode"], spec["format"]
    exp = check_spec("orders", spec).exports[0]
    assert SPEC_PROPS["mode"]["default"] == exp.mode.value == "full"
    assert SPEC_PROPS["format"]["default"] == exp.format.value == "parquet"
    tuning = check_spec("orders", BASE).source.tuning
    for f in TUNING_FIELDS:
        default = getattr(tuning, str(f.engine_key))
        if default is None:  # derived by the engine (read_timeout_s): its effective value is quoted
            default = getattr(tuning, str(f.engine_key).removesuffix("_s"))
        assert f"(default {default}" in f.openapi()["description"], f.name


# -- bounds ------------------------------------------------------------------------------------------


def bounded() -> list[tuple[str, int | None, int | None]]:
    out = [(f.name, f.minimum, f.maximum) for f in EXPORT_FIELDS if f.minimum is not None]
    out += [(f"source.tuning.{f.name}", f.minimum, f.maximum) for f in TUNING_FIELDS]
    return out


def spec_with_value(path: str, value: int) -> dict[str, Any]:
    if path.startswith("source.tuning."):
        spec = with_()
        spec["source"] = {**spec["source"], "tuning": {path.rsplit(".", 1)[1]: value}}
        return spec
    mode = {"chunkSize": "chunked", "chunkCount": "chunked", "daysWindow": "time_window"}[path]
    spec = with_(mode=mode)
    spec[path] = value
    return spec


@pytest.mark.parametrize(("path", "minimum", "maximum"), bounded(), ids=[b[0] for b in bounded()])
def test_crd_and_engine_agree_on_bounds(path: str, minimum: int | None, maximum: int | None) -> None:
    assert minimum is not None
    at_min = spec_with_value(path, minimum)
    assert crd_accepts(at_min) and engine_accepts(at_min), f"{path}={minimum}"
    below = spec_with_value(path, minimum - 1)
    assert not crd_accepts(below) and not engine_accepts(below), f"{path}={minimum - 1}"
    if maximum is not None:
        at_max = spec_with_value(path, maximum)
        assert crd_accepts(at_max) and engine_accepts(at_max), f"{path}={maximum}"
        assert not crd_accepts(spec_with_value(path, maximum + 1))


# -- existence ---------------------------------------------------------------------------------------


def test_every_engine_export_key_has_a_crd_field_and_back() -> None:
    rendered = {f.engine_key for f in EXPORT_FIELDS}
    assert rendered | {"name", "destination", "parallel"} == EXPORT_KEYS
    assert {f.name for f in EXPORT_FIELDS} <= set(SPEC_PROPS)
    assert {f.engine_key for f in TUNING_FIELDS} == TUNING_KEYS
    assert set(SPEC_PROPS["source"]["properties"]["tuning"]["properties"]) == {f.name for f in TUNING_FIELDS}


def test_every_destination_key_exists_on_both_sides_for_the_same_types() -> None:
    props = SPEC_PROPS["destination"]["properties"]
    by_key = destination_types_by_key()
    assert set(props) == {"type", *by_key}
    for kind in DESTINATIONS:
        engine = {camel(k) for k in DEST_KEYS[DestinationType(kind)]} - {"type"}
        crd = {k for k, types in by_key.items() if kind in types}
        assert crd == engine - ({"bucket"} if kind == "azure" else set()), kind
    rules = [r["rule"] for r in SPEC_PROPS["destination"]["x-kubernetes-validations"]]
    # one spelling per concept: Azure's container is `container`; `bucket` is S3's and GCS's only
    assert "!has(self.container) || self.type in ['azure']" in rules
    assert "!has(self.bucket) || self.type in ['s3', 'gcs']" in rules


@pytest.mark.parametrize(("kind", "key"), [(k, key) for k, ks in destination_types_by_key().items() for key in ks])
def test_each_destination_key_renders_to_a_key_the_engine_takes_for_its_type(kind: str, key: str) -> None:
    dest = {**DESTINATIONS[key], kind: True if kind == "allowAnonymous" else "X_ENV" if kind.endswith("Env") else "v"}
    if kind in ("accountKeyEnv", "sasTokenEnv", "allowAnonymous"):
        for auth in ("accountKeyEnv", "sasTokenEnv", "allowAnonymous"):
            if auth != kind:
                dest.pop(auth, None)
    if kind in ("accessKeyEnv", "secretKeyEnv"):
        dest.update(accessKeyEnv="A", secretKeyEnv="B")
    if kind == "prefix" or kind == "path":
        dest[kind] = "x/"
    if kind in ("sse", "sseKmsKeyId"):
        dest["sse"] = "aws:kms"
    if kind == "conditionalWrites":
        dest[kind] = "warn"
    if kind in ("accessKeyEnv", "secretKeyEnv", "awsProfile"):  # the engine takes one or the other
        dest.pop("awsProfile" if kind != "awsProfile" else "accessKeyEnv", None)
        if kind == "awsProfile":
            dest.pop("secretKeyEnv", None)
    assert engine_accepts(with_(destination=dest)), (kind, key)


# -- job pod policy ----------------------------------------------------------------------------------

DEFAULT = JobPolicy()


@pytest.mark.parametrize(
    ("template", "field"),
    [
        (
            {"volumes": [{"name": "c", "configMap": {"name": "x"}}, {"name": "h", "hostPath": {"path": "/"}}]},
            "spec.jobTemplate.volumes[1].hostPath",
        ),
        ({"volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}]}, "spec.jobTemplate.volumes[0].nfs"),
        ({"containerSecurityContext": {"privileged": True}}, "spec.jobTemplate.containerSecurityContext.privileged"),
        (
            {"containerSecurityContext": {"allowPrivilegeEscalation": True}},
            "spec.jobTemplate.containerSecurityContext.allowPrivilegeEscalation",
        ),
        ({"securityContext": {"runAsNonRoot": False}}, "spec.jobTemplate.securityContext.runAsNonRoot"),
        ({"securityContext": {"runAsUser": 0}}, "spec.jobTemplate.securityContext.runAsUser"),
        ({"containerSecurityContext": {"runAsUser": 0}}, "spec.jobTemplate.containerSecurityContext.runAsUser"),
        (
            {"containerSecurityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "SYS_ADMIN"]}}},
            "spec.jobTemplate.containerSecurityContext.capabilities.add",
        ),
        (
            {"securityContext": {"seccompProfile": {"type": "Unconfined"}}},
            "spec.jobTemplate.securityContext.seccompProfile.type",
        ),
        (
            {"containerSecurityContext": {"procMount": "Unmasked"}},
            "spec.jobTemplate.containerSecurityContext.procMount",
        ),
        ({"hostNetwork": True}, "spec.jobTemplate.hostNetwork"),
        ({"hostPID": True}, "spec.jobTemplate.hostPID"),
        ({"serviceAccountName": "cluster-admin-sa"}, "spec.jobTemplate.serviceAccountName"),
        (
            {"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}},
            "spec.jobTemplate.securityContext.sysctls[0]",
        ),
    ],
)
def test_the_default_policy_refuses_what_relaxes_the_restricted_profile(template: dict[str, Any], field: str) -> None:
    refusal = check_job_template(template, DEFAULT)
    assert refusal is not None and refusal.field == field
    assert str(refusal).startswith(field + ": ")


@pytest.mark.parametrize(
    "template",
    [
        {},
        {"volumes": [{"name": v, v: {}} for v in ("configMap", "secret", "emptyDir", "projected", "downwardAPI")]},
        {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "out"}}]},
        {"serviceAccountName": "default"},
        {"containerSecurityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}},
        {"securityContext": {"runAsUser": 1000, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}},
        {"resources": {"limits": {"memory": "1Gi"}}, "nodeSelector": {"pool": "batch"}, "labels": {"a": "b"}},
    ],
)
def test_the_default_policy_accepts_restricted_templates(template: dict[str, Any]) -> None:
    assert check_job_template(template, DEFAULT) is None


def test_chart_values_widen_the_policy() -> None:
    wide = JobPolicy.from_dict(
        {
            "allowedVolumeTypes": ["hostPath", "emptyDir"],
            "allowedServiceAccounts": ["rivet-exporter"],
            "allowPrivileged": True,
        }
    )
    assert check_job_template({"volumes": [{"name": "h", "hostPath": {"path": "/data"}}]}, wide) is None
    assert check_job_template({"serviceAccountName": "rivet-exporter"}, wide) is None
    assert check_job_template({"serviceAccountName": "default"}, wide) is None
    assert check_job_template({"containerSecurityContext": {"privileged": True}}, wide) is None
    assert check_job_template({"volumes": [{"name": "c", "configMap": {"name": "x"}}]}, wide) is not None


def test_cel_rules_name_only_typed_fields() -> None:
    """CEL cannot see an untyped (preserve-unknown) field: the API server would refuse the whole CRD."""
    import re

    def walk(schema: dict[str, Any], where: str) -> None:
        props = schema.get("properties") or {}
        for rule in schema.get("x-kubernetes-validations") or []:
            for field in re.findall(r"self\.spec\.(\w+)|self\.(\w+)", rule["rule"]):
                name = field[0] or field[1]
                target = props.get("spec", {}).get("properties", {}).get(name) if field[0] else props.get(name)
                if target is not None:
                    assert "type" in target, f"{where}: rule uses untyped {name}: {rule['rule'][:80]}"
        for key, sub in props.items():
            walk(sub, f"{where}.{key}")

    for doc in crds.all_crds().values():
        walk(doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"], doc["metadata"]["name"])


def test_spec_cursor_applies_to_incremental_mode_only() -> None:
    with pytest.raises(SpecError, match=r"spec\.cursor"):
        check_spec("orders", with_(cursor=5))
    assert engine_accepts(with_(mode="incremental", cursor={"$type": "date", "value": "2026-01-01"}))
