"""The two CRDs as data (pure). `python -m rivet_operator.crds` writes crds/*.yaml; a test keeps them in sync.

Admission catches what it can: enums, defaults, bounds and CEL rules (exactly one of table/query, key and
SAS exclusive, chunk settings only with chunked mode, run-defining fields immutable while a run is active).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from rivet_operator import GROUP, VERSION
from rivet_operator.spec import EXPORT_KEYS

S = {"type": "string", "maxLength": 1024}
NAME = {"type": "string", "maxLength": 253}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
ANY_OBJ = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
ANY_LIST = {"type": "array", "maxItems": 64, "items": ANY_OBJ}


def _obj(props: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, **extra}
    if required:
        out["required"] = required
    return out


def destination() -> dict[str, Any]:
    env_name = {"type": "string", "maxLength": 253, "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}
    return _obj(
        {
            "type": {"type": "string", "enum": ["local", "s3", "gcs", "azure"]},
            "path": S,
            "bucket": NAME,
            "prefix": S,
            "region": NAME,
            "endpoint": S,
            "accessKeyEnv": env_name,
            "secretKeyEnv": env_name,
            "sessionTokenEnv": env_name,
            "awsProfile": NAME,
            "credentialsFile": S,
            "accountName": NAME,
            "container": NAME,
            "accountKeyEnv": env_name,
            "sasTokenEnv": env_name,
            "allowAnonymous": BOOL,
        },
        ["type"],
        **{
            "x-kubernetes-validations": [
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
        },
    )


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
            "activeDeadlineSeconds": {"type": "integer", "minimum": 1},
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


# what a run is defined by: the rendered export fields (except `verify`, which only affects checks)
IMMUTABLE = ["source", *(k for k in EXPORT_KEYS if k != "verify"), "destination", "date", "exportName"]


def immutable_while_running() -> dict[str, Any]:
    same = " && ".join(
        f"(has(self.spec.{f}) == has(oldSelf.spec.{f})) && (!has(self.spec.{f}) || self.spec.{f} == oldSelf.spec.{f})"
        for f in IMMUTABLE
    )
    return {
        "rule": "!has(oldSelf.status) || !has(oldSelf.status.phase) || !(oldSelf.status.phase in ['Pending', "
        f"'Running', 'Suspended']) || ({same})",
        "message": "run-defining fields (source, table/query, mode, chunking, format, destination, date) are "
        "immutable while a run is active: wait for it to finish, or delete and re-create the export",
    }


def export_spec() -> dict[str, Any]:
    return _obj(
        {
            "source": _obj(
                {
                    "type": {"type": "string", "enum": ["postgres", "mysql"]},
                    "urlFrom": _obj(
                        {"secretKeyRef": _obj({"name": NAME, "key": NAME}, ["name", "key"])}, ["secretKeyRef"]
                    ),
                    "urlEnv": NAME,
                    "tuning": _obj(
                        {
                            "batchSize": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 10_000_000,
                                "description": "rows per batch read from the source (default 50000)",
                            },
                            "statementTimeoutS": {
                                "type": "integer",
                                "minimum": 0,
                                "description": "seconds before a source statement is cancelled; 0 = no timeout"
                                " (default 300)",
                            },
                            "maxRetries": {
                                "type": "integer",
                                "minimum": 0,
                                "maximum": 20,
                                "description": "retries of a transient failure inside `rivet run`; 0 = one attempt"
                                " (default 3). Operator Jobs are retried per maxChunkRetries instead",
                            },
                        }
                    ),
                },
                ["type"],
                **{
                    "x-kubernetes-validations": [
                        {
                            "rule": "has(self.urlFrom) != has(self.urlEnv)",
                            "message": "set exactly one of urlFrom or urlEnv",
                        }
                    ]
                },
            ),
            "exportName": {"type": "string", "maxLength": 63, "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
            "table": NAME,
            "query": {"type": "string", "maxLength": 65536},
            "mode": {"type": "string", "enum": ["full", "incremental", "chunked", "time_window"], "default": "full"},
            "chunkColumn": NAME,
            "chunkSize": {"type": "integer", "minimum": 1},
            "chunkCount": {"type": "integer", "minimum": 1, "maximum": 100000},
            "parallelism": {"type": "integer", "minimum": 1, "maximum": 256, "default": 1},
            "cursorColumn": NAME,
            "timeColumn": NAME,
            "daysWindow": {"type": "integer", "minimum": 1},
            "format": {"type": "string", "enum": ["parquet", "csv"], "default": "parquet"},
            "compression": {"type": "string", "enum": ["zstd", "snappy", "gzip", "lz4", "none"]},
            "verify": {"type": "string", "enum": ["size", "content"]},
            "destination": destination(),
            "envFrom": ANY_LIST,
            "env": ANY_LIST,
            "jobTemplate": job_template(),
            "force": {"type": "boolean", "default": False},
            "suspend": {"type": "boolean", "default": False},
            "date": {"type": "string", "format": "date"},
            "maxChunkRetries": {
                "type": "integer",
                "minimum": 0,
                "maximum": 20,
                "default": 3,
                "description": "new Jobs for a transiently failed chunk or step; 0 = one Job, no retry",
            },
        },
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
                    "rule": "self.mode != 'incremental' || has(self.cursorColumn)",
                    "message": "mode incremental needs cursorColumn",
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


def export_status() -> dict[str, Any]:
    opt_int = {"type": "integer", "nullable": True}
    opt_str = {"type": "string", "nullable": True}
    return _obj(
        {
            "observedGeneration": {"type": "integer", "default": -1},
            "phase": {"type": "string", "enum": ["Pending", "Running", "Succeeded", "Failed", "Suspended"]},
            "message": opt_str,
            "reason": opt_str,
            "stage": opt_str,
            "runId": opt_str,
            "runDate": opt_str,
            "runGeneration": opt_int,
            "startedAt": opt_str,
            "completedAt": opt_str,
            "resolvedPrefix": opt_str,
            "plan": {
                **_obj(
                    {
                        "lo": opt_int,
                        "hi": opt_int,
                        "chunkSize": opt_int,
                        "chunkCount": opt_int,
                        "rowEstimate": opt_int,
                        "fingerprint": opt_str,
                        "schemaFingerprint": opt_str,
                        "document": {**opt_str, "maxLength": 16384},
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
                    "progress": S,
                }
            ),
            "rowsWritten": opt_int,
            "bytesWritten": opt_int,
            "manifest": {**_obj({"fingerprint": opt_str, "partCount": opt_int, "rowCount": opt_int}), "nullable": True},
            "success": opt_str,
            "retries": {"type": "object", "nullable": True, "additionalProperties": {"type": "integer"}},
            "attempts": {"type": "object", "nullable": True, "additionalProperties": {"type": "integer"}},
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
            "prefix": S,
            "verify": {"type": "string", "enum": ["size", "content"]},
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
    opt_str = {"type": "string", "nullable": True}
    return _obj(
        {
            "observedGeneration": {"type": "integer", "default": -1},
            "phase": {"type": "string", "enum": ["Pending", "Running", "Succeeded", "Failed"]},
            "message": opt_str,
            "stage": opt_str,
            "runId": opt_str,
            "runGeneration": INT,
            "startedAt": opt_str,
            "completedAt": opt_str,
            "passed": BOOL,
            "legacyRun": BOOL,
            "resolvedPrefix": opt_str,
            "manifestFound": BOOL,
            "partsVerified": INT,
            "partsMd5Verified": INT,
            "partsFailed": INT,
            "successMarkerConsistent": BOOL,
            "failureCount": INT,
            "error": opt_str,
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


READY: dict[str, Any] = {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'}
AGE: dict[str, Any] = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
MESSAGE: dict[str, Any] = {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1}


def all_crds() -> dict[str, dict[str, Any]]:
    export_cols: list[dict[str, Any]] = [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        READY,
        {"name": "Chunks", "type": "string", "jsonPath": ".status.chunks.progress"},
        {"name": "Rows", "type": "integer", "jsonPath": ".status.rowsWritten"},
        AGE,
        {"name": "Prefix", "type": "string", "jsonPath": ".status.resolvedPrefix", "priority": 1},
        MESSAGE,
    ]
    validation_cols: list[dict[str, Any]] = [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        READY,
        {"name": "Passed", "type": "boolean", "jsonPath": ".status.passed"},
        {"name": "Parts", "type": "integer", "jsonPath": ".status.partsVerified"},
        AGE,
        {"name": "Prefix", "type": "string", "jsonPath": ".status.resolvedPrefix", "priority": 1},
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
    }


def render(doc: dict[str, Any]) -> str:
    return (
        "# Generated by `python -m rivet_operator.crds crds/`: edit operator/rivet_operator/crds.py\n"
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
