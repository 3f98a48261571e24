"""The CRDs as data (pure), built from the field table. `python -m rivet_operator.api.crds crds/` writes
crds/*.yaml; a unit test keeps them in sync.

Admission catches what it can: enums (the engine's), defaults, bounds and CEL rules (exactly one of
table/query, destination keys only for the types the engine accepts them for, chunk settings only with
chunked mode, run-defining fields immutable while a run is active).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from rivet.config.model import TlsMode
from rivet_operator import GROUP, VERSION
from rivet_operator.api.fields import (
    EXPORT_FIELDS,
    NAME,
    OPERATOR_DESTINATIONS,
    SOURCE_TYPES,
    TEXT,
    TUNING_FIELDS,
    destination_property,
    destination_types_by_key,
    run_defining_fields,
)
from rivet_operator.api.status import ACTIVE_STAGES

LEDGER_SHARD_RECORDS = 1000  # specs/configmaps.SHARD_SIZE: records per RivetLedger / transport ConfigMap
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
ANY_OBJ = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
ANY_LIST = {"type": "array", "maxItems": 64, "items": ANY_OBJ}
ANY_JSON = {"x-kubernetes-preserve-unknown-fields": True, "nullable": True}
OPT_INT = {"type": "integer", "nullable": True}
OPT_STR = {"type": "string", "nullable": True}


def _obj(props: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, **extra}
    if required:
        out["required"] = required
    return out


def destination() -> dict[str, Any]:
    by_key = destination_types_by_key()
    props: dict[str, Any] = {"type": {"type": "string", "enum": list(OPERATOR_DESTINATIONS)}}
    props.update({key: destination_property(key) for key in by_key})
    rules: list[dict[str, Any]] = []
    for key, types in by_key.items():
        if len(types) < len(OPERATOR_DESTINATIONS):
            allowed = ", ".join(f"'{t}'" for t in types)
            rules.append(
                {
                    "rule": f"!has(self.{key}) || self.type in [{allowed}]",
                    "message": f"{key} applies to destination type {' or '.join(types)} only",
                    "fieldPath": f".{key}",
                }
            )
    rules += [
        {
            "rule": "!(has(self.accountKeyEnv) && has(self.sasTokenEnv))",
            "message": "accountKeyEnv and sasTokenEnv are mutually exclusive: keep one",
            "fieldPath": ".sasTokenEnv",
        },
        {"rule": "self.type != 'local' || has(self.path)", "message": "local destinations need path"},
        {
            "rule": "!(self.type in ['s3', 'gcs']) || has(self.bucket)",
            "message": "s3 and gcs destinations need bucket",
        },
        {
            "rule": "self.type != 'azure' || (has(self.accountName) && has(self.container))",
            "message": "azure destinations need accountName and container",
        },
        {
            "rule": "has(self.accessKeyEnv) == has(self.secretKeyEnv)",
            "message": "accessKeyEnv and secretKeyEnv go together",
        },
    ]
    return _obj(props, ["type"], **{"x-kubernetes-validations": rules})


def job_template() -> dict[str, Any]:
    return _obj(
        {
            "resources": ANY_OBJ,
            "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
            "tolerations": ANY_LIST,
            "affinity": ANY_OBJ,
            "serviceAccountName": NAME,
            "imagePullSecrets": ANY_LIST,
            "priorityClassName": NAME,
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "securityContext": ANY_OBJ,
            "containerSecurityContext": ANY_OBJ,
            "volumes": ANY_LIST,
            "volumeMounts": ANY_LIST,
            "activeDeadlineSeconds": {
                "type": "integer",
                "minimum": 1,
                "description": "seconds a Job may run before it is failed (and retried); default: the chart's "
                "jobActiveDeadlineSeconds",
            },
        }
    )


def conditions() -> dict[str, Any]:
    cond = _obj(
        {
            "type": NAME,
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": NAME,
            "message": {"type": "string", "maxLength": 32768},
            "observedGeneration": INT,
            "lastTransitionTime": {"type": "string", "format": "date-time"},
        },
        ["type", "status", "lastTransitionTime"],
    )
    return {
        "type": "array",
        "maxItems": 8,
        "items": cond,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    }


def immutable_while_running() -> dict[str, Any]:
    same = " && ".join(
        f"(has(self.spec.{f}) == has(oldSelf.spec.{f})) && (!has(self.spec.{f}) || self.spec.{f} == oldSelf.spec.{f})"
        for f in run_defining_fields()
        if f != "cursor"  # untyped JSON: CEL cannot compare it (and a run copies it when it starts)
    )
    # A run is active while its stage is (a held run reads phase Failed with its Jobs still to come), or
    # while the phase says so (objects written before `stage` existed).
    active = (
        "(has(oldSelf.status.phase) && oldSelf.status.phase in ['Pending', 'Running', 'Suspended'])"
        " || (has(oldSelf.status.stage) && oldSelf.status.stage in "
        f"{list(ACTIVE_STAGES)!r})"
    )
    return {
        "rule": f"!has(oldSelf.status) || !({active}) || ({same})",
        "message": "run-defining fields (source, table/query, mode, chunking, format, destination, date) are "
        "immutable while a run is active: wait for it to finish, or delete and re-create the export",
    }


def source() -> dict[str, Any]:
    return _obj(
        {
            "type": {"type": "string", "enum": list(SOURCE_TYPES)},
            "urlFrom": _obj({"secretKeyRef": _obj({"name": NAME, "key": NAME}, ["name", "key"])}, ["secretKeyRef"]),
            "urlEnv": NAME,
            "tuning": _obj({f.name: f.openapi() for f in TUNING_FIELDS}),
            "tls": tls(),
        },
        ["type"],
        **{
            "x-kubernetes-validations": [
                {"rule": "has(self.urlFrom) != has(self.urlEnv)", "message": "set exactly one of urlFrom or urlEnv"}
            ]
        },
    )


def tls() -> dict[str, Any]:
    """`source.tls`: the mode, and the CA bundle from a Secret or ConfigMap key, mounted into the Jobs that
    open the source (the operator never reads it)."""
    key_ref = _obj({"name": NAME, "key": NAME}, ["name", "key"])
    ca_from = _obj(
        {"secretKeyRef": key_ref, "configMapKeyRef": key_ref},
        None,
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.secretKeyRef) != has(self.configMapKeyRef)",
                    "message": "set exactly one of secretKeyRef or configMapKeyRef",
                }
            ]
        },
    )
    return _obj(
        {"mode": {"type": "string", "enum": [m.value for m in TlsMode]}, "caFrom": ca_from},
        ["mode"],
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "(self.mode == 'verify-ca' || self.mode == 'verify-full') == has(self.caFrom)",
                    "message": "caFrom is required for verify-ca and verify-full, and only for them",
                }
            ]
        },
    )


def export_spec() -> dict[str, Any]:
    props: dict[str, Any] = {
        "source": source(),
        "exportName": {"type": "string", "maxLength": 63, "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
    }
    props.update({f.name: f.openapi() for f in EXPORT_FIELDS})
    props.update(
        {
            "parallelism": {"type": "integer", "minimum": 1, "maximum": 256, "default": 1},
            "destination": destination(),
            "envFrom": ANY_LIST,
            "env": ANY_LIST,
            "jobTemplate": job_template(),
            "force": {
                "type": "boolean",
                "default": False,
                "description": "replace a certified prefix (withdraws _SUCCESS first)",
            },
            "suspend": {"type": "boolean", "default": False, "description": "start no new Jobs"},
            "date": {"type": "string", "format": "date"},
            "cursor": {
                **ANY_JSON,
                "description": "incremental mode: the cursor value the first run starts at (typed JSON: plain"
                " JSON or {$type, value}), e.g. from a RivetSchedule; later runs of this object start at"
                " status.cursor",
            },
            "expectedSchemaFingerprint": {
                "type": "string",
                "maxLength": 64,
                "description": "refuse to certify a run whose source schema fingerprint differs (set by a"
                " RivetSchedule with schemaChangePolicy: fail); the run fails with reason SchemaChanged after"
                " planning, before any chunk is exported",
            },
            "maxChunkRetries": {
                "type": "integer",
                "minimum": 0,
                "maximum": 20,
                "default": 3,
                "description": "new Jobs for a transiently failed chunk or step, with exponential backoff"
                " (10 s doubling, at most 5 min); 0 = one Job, no retry",
            },
        }
    )
    return _obj(
        props,
        ["source", "destination"],
        **{
            "x-kubernetes-validations": [
                {"rule": "has(self.table) != has(self.query)", "message": "set exactly one of table or query"},
                {
                    "rule": "self.mode == 'chunked' || (!has(self.chunkColumn) && !has(self.chunkSize) && !has(self.chunkCount))",
                    "message": "chunkColumn, chunkSize and chunkCount only apply to mode chunked",
                },
                {
                    "rule": "self.mode != 'chunked' || has(self.chunkColumn)",
                    "message": "mode chunked needs chunkColumn",
                },
                {
                    "rule": "!(has(self.chunkSize) && has(self.chunkCount))",
                    "message": "set chunkSize or chunkCount, not both",
                },
                {
                    "rule": "self.mode == 'incremental' || !has(self.cursorColumn)",
                    "message": "cursorColumn only applies to mode incremental",
                },
                {
                    "rule": "self.mode != 'incremental' || has(self.cursorColumn)",
                    "message": "mode incremental needs cursorColumn",
                },
                {
                    "rule": "self.mode == 'time_window' || (!has(self.timeColumn) && !has(self.daysWindow))",
                    "message": "timeColumn and daysWindow only apply to mode time_window",
                },
                {
                    "rule": "self.mode != 'time_window' || (has(self.timeColumn) && has(self.daysWindow))",
                    "message": "mode time_window needs timeColumn and daysWindow",
                },
                {
                    "rule": "self.format != 'csv' || !has(self.compression) || self.compression == 'none'",
                    "message": "compression applies to parquet only",
                },
            ]
        },
    )


def retries() -> dict[str, Any]:
    entry = _obj({"attempts": INT, "notBefore": OPT_STR, "lastError": {"type": "string", "maxLength": 512}})
    return {
        "type": "object",
        "nullable": True,
        "maxProperties": 300,
        "additionalProperties": entry,
        "description": "failed attempts of the steps still to succeed: plan, finalize or a chunk index",
    }


def export_status() -> dict[str, Any]:
    return _obj(
        {
            "observedGeneration": {"type": "integer", "default": -1},
            "phase": {"type": "string", "enum": ["Pending", "Running", "Succeeded", "Failed", "Suspended"]},
            "message": OPT_STR,
            "reason": OPT_STR,
            "stage": OPT_STR,
            "runId": OPT_STR,
            "runDate": OPT_STR,
            "runGeneration": OPT_INT,
            "runFingerprint": {**OPT_STR, "description": "fingerprint of the run-defining spec of the last run"},
            "runConfig": {
                **OPT_STR,
                "maxLength": 65536,
                "description": "the run's rivet.yaml (no secrets), rendered when it started: every Job of the run gets it",
            },
            "ledger": {
                **_obj(
                    {
                        "shards": {
                            "type": "object",
                            "maxProperties": 100,
                            "additionalProperties": _obj({"count": INT, "rows": INT, "bytes": INT}),
                            "description": "per RivetLedger shard: committed chunks, rows and bytes",
                        }
                    }
                ),
                "nullable": True,
                "description": "what the run's ledger holds, kept by the operator so full shards need no read",
            },
            "ignoredObjects": {
                "type": "array",
                "maxItems": 20,
                "items": NAME,
                "description": "objects carrying this export's labels that the operator did not write (reported once)",
            },
            "rerun": {**OPT_STR, "description": "the last rivet.dev/rerun annotation value honoured"},
            "startedAt": OPT_STR,
            "completedAt": OPT_STR,
            "resolvedPrefix": OPT_STR,
            "plan": {
                **_obj(
                    {
                        "lo": ANY_JSON,
                        "hi": ANY_JSON,
                        "chunkSize": OPT_INT,
                        "chunkCount": OPT_INT,
                        "rowEstimate": OPT_INT,
                        "fingerprint": OPT_STR,
                        "schemaFingerprint": OPT_STR,
                        "document": {**OPT_STR, "maxLength": 16384},
                    }
                ),
                "nullable": True,
            },
            "chunks": _obj(
                {
                    "total": INT,
                    "committed": INT,
                    "running": INT,
                    "failed": INT,
                    "committedRanges": {"type": "string", "maxLength": 2048},
                    "progress": TEXT,
                }
            ),
            "rowsWritten": OPT_INT,
            "bytesWritten": OPT_INT,
            "manifest": {**_obj({"fingerprint": OPT_STR, "partCount": OPT_INT, "rowCount": OPT_INT}), "nullable": True},
            "success": OPT_STR,
            "cursor": {
                **_obj(
                    {
                        "column": OPT_STR,
                        "value": {**ANY_JSON, "description": "typed JSON: plain JSON or {$type, value}"},
                        "runId": OPT_STR,
                    }
                ),
                "nullable": True,
                "description": "incremental mode: the last certified cursor value; the next run starts at it",
            },
            "retries": retries(),
            "conditions": conditions(),
        }
    )


def validation_spec() -> dict[str, Any]:
    return _obj(
        {
            "exportRef": _obj({"name": NAME}, ["name"]),
            "exportName": {"type": "string", "maxLength": 63},
            "destination": destination(),
            "date": {"type": "string", "format": "date"},
            "runId": NAME,
            "prefix": TEXT,
            "verify": next(f for f in EXPORT_FIELDS if f.name == "verify").openapi(),
            "interval": {"type": "integer", "minimum": 30, "description": "seconds between re-validations"},
            "envFrom": ANY_LIST,
            "env": ANY_LIST,
            "jobTemplate": job_template(),
        },
        None,
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.exportRef) != has(self.destination)",
                    "message": "set exactly one of exportRef or destination",
                },
            ]
        },
    )


def validation_status() -> dict[str, Any]:
    return _obj(
        {
            "observedGeneration": {"type": "integer", "default": -1},
            "phase": {"type": "string", "enum": ["Pending", "Running", "Succeeded", "Failed"]},
            "message": OPT_STR,
            "reason": OPT_STR,
            "stage": OPT_STR,
            "runId": OPT_STR,
            "runGeneration": OPT_INT,
            "rerun": OPT_STR,
            "startedAt": OPT_STR,
            "completedAt": OPT_STR,
            "passed": BOOL,
            "legacyRun": BOOL,
            "resolvedPrefix": OPT_STR,
            "manifestFound": BOOL,
            "partsVerified": INT,
            "partsMd5Verified": INT,
            "partsFailed": INT,
            "successMarkerConsistent": BOOL,
            "failureCount": INT,
            "error": OPT_STR,
            "failures": {
                "type": "array",
                "maxItems": 10,
                "items": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "conditions": conditions(),
        }
    )


def crd(
    kind: str,
    plural: str,
    short: list[str],
    spec: dict[str, Any],
    status: dict[str, Any],
    columns: list[dict[str, Any]],
    root_rules: list[dict[str, Any]],
) -> dict[str, Any]:
    schema = _obj(
        {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": {**status, "default": {"observedGeneration": -1}},
        },
        ["spec"],
    )
    if root_rules:
        schema["x-kubernetes-validations"] = root_rules
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {"app.kubernetes.io/name": "rivet"}},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short,
                "categories": ["rivet"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


def _col(name: str, path: str, type_: str = "string", priority: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        out["priority"] = priority
    return out


READY = _col("Ready", '.status.conditions[?(@.type=="Ready")].status')
AGE = _col("Age", ".metadata.creationTimestamp", "date")
REASON = _col("Reason", ".status.reason", priority=1)
MESSAGE = _col("Message", ".status.message", priority=1)


def all_crds() -> dict[str, dict[str, Any]]:
    export_cols = [
        _col("Phase", ".status.phase"),
        READY,
        _col("Chunks", ".status.chunks.progress"),
        _col("Rows", ".status.rowsWritten", "integer"),
        AGE,
        _col("Run", ".status.runId", priority=1),
        REASON,
        _col("Prefix", ".status.resolvedPrefix", priority=1),
        MESSAGE,
    ]
    validation_cols = [
        _col("Phase", ".status.phase"),
        READY,
        _col("Passed", ".status.passed", "boolean"),
        _col("Parts", ".status.partsVerified", "integer"),
        AGE,
        _col("Checked", ".status.completedAt", "date", priority=1),
        _col("Prefix", ".status.resolvedPrefix", priority=1),
        MESSAGE,
    ]
    return {
        "rivet.dev_rivetexports.yaml": crd(
            "RivetExport",
            "rivetexports",
            ["rex"],
            export_spec(),
            export_status(),
            export_cols,
            [immutable_while_running()],
        ),
        "rivet.dev_rivetvalidations.yaml": crd(
            "RivetValidation", "rivetvalidations", ["rval"], validation_spec(), validation_status(), validation_cols, []
        ),
        "rivet.dev_rivetschedules.yaml": _schedule_crd(),
        "rivet.dev_rivetledgers.yaml": ledger_crd(),
    }


def ledger_crd() -> dict[str, Any]:
    """RivetLedger: one shard of a run's chunk commit records, the operator's own state. The records live in
    the status subresource, which only the operator's role may write (the chart's user roles never get this
    kind): a record nobody but the operator wrote cannot make a chunk count as committed."""
    doc = crd(
        "RivetLedger",
        "rivetledgers",
        [],
        _obj({"export": NAME, "runId": TEXT, "shard": INT}, ["runId", "shard"]),
        _obj(
            {
                "records": {
                    "type": "object",
                    "maxProperties": LEDGER_SHARD_RECORDS,
                    "additionalProperties": {"type": "string", "maxLength": 8192},
                    "description": "chunk-NNNNNN.json -> the chunk's commit record (JSON), written by the operator",
                }
            }
        ),
        [_col("Export", ".spec.export"), _col("Run", ".spec.runId"), _col("Shard", ".spec.shard", "integer"), AGE],
        [],
    )
    version = doc["spec"]["versions"][0]
    version["schema"]["openAPIV3Schema"]["properties"]["status"].pop("default", None)
    doc["spec"]["names"].pop("categories", None)
    doc["spec"]["names"].pop("shortNames", None)
    return doc


def _schedule_crd() -> dict[str, Any]:
    from rivet_operator.schedule.crd import schedule_crd  # it builds on this module's helpers

    return schedule_crd()


def render(doc: dict[str, Any]) -> str:
    return (
        "# Generated by `python -m rivet_operator.api.crds crds/`: edit operator/rivet_operator/api/\n"
        + yaml.safe_dump(doc, sort_keys=False, width=120)
    )


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else "crds")
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in all_crds().items():
        (out / name).write_text(render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
