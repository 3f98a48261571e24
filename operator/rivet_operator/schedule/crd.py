"""The RivetSchedule CustomResourceDefinition as data (pure), in the style of `rivet_operator.crds`.

Admission checks what a schema can: enums, defaults, bounds, and that the time zone is not written into
the schedule. The cron expression and the zone name are checked by the operator (`schedule.cron`), which
stalls the schedule naming spec.schedule or spec.timeZone. `exportTemplate.spec` is kept as
`x-kubernetes-preserve-unknown-fields`: the API server checks it against the RivetExport schema when the
operator creates each export, so the two schemas cannot drift apart. `all_crds()` (`api/crds.py`)
ships it with the other CRDs (crds/ and the chart's copy).
"""

from __future__ import annotations

from typing import Any

from rivet_operator.api.crds import _obj, conditions, crd
from rivet_operator.schedule.builders import KIND, PLURAL
from rivet_operator.schedule.spec import (
    CONCURRENCY_POLICIES,
    HISTORY_MAX,
    MIN_DEADLINE_S,
    SCHEMA_POLICIES,
)

STR = {"type": "string", "maxLength": 1024}
NAME = {"type": "string", "maxLength": 253}
TIME = {"type": "string", "format": "date-time"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
ANY_VALUE = {"x-kubernetes-preserve-unknown-fields": True}
SHORT_NAMES = ["rsched"]


def schedule_spec() -> dict[str, Any]:
    limit = {"type": "integer", "minimum": 0, "maximum": HISTORY_MAX}
    return _obj(
        {
            "schedule": {
                "type": "string",
                "minLength": 1,
                "maxLength": 256,
                "description": "cron expression, 5 fields (minute hour day-of-month month day-of-week), or "
                "@hourly, @daily, @weekly, @monthly, @yearly",
            },
            "timeZone": {
                "type": "string",
                "maxLength": 64,
                "pattern": "^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$",
                "default": "UTC",
                "description": "IANA time zone the schedule is read in (default UTC); each run's {date} is the "
                "tick's UTC date",
            },
            "concurrencyPolicy": {
                "type": "string",
                "enum": list(CONCURRENCY_POLICIES),
                "default": "Forbid",
                "description": "Forbid: skip a tick while a run is active; Replace: delete the active run and "
                "start the new one",
            },
            "startingDeadlineSeconds": {
                "type": "integer",
                "minimum": MIN_DEADLINE_S,
                "description": "a missed tick older than this is not run; unset: the most recent missed tick "
                "always runs",
            },
            "suspend": {**BOOL, "default": False, "description": "start no new runs (the active one goes on)"},
            "successfulRunsHistoryLimit": {**limit, "default": 3},
            "failedRunsHistoryLimit": {**limit, "default": 1},
            "schemaChangePolicy": {
                "type": "string",
                "enum": list(SCHEMA_POLICIES),
                "default": "warn",
                "description": "when a run's source schema differs from the last successful run's: warn "
                "(event and status) or fail (also stop scheduling until acknowledged)",
            },
            "exportTemplate": _obj(
                {
                    "metadata": _obj({"labels": STRING_MAP, "annotations": STRING_MAP}),
                    "spec": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                        "description": "a RivetExport spec without date and cursor, which the schedule sets",
                    },
                },
                ["spec"],
            ),
        },
        ["schedule", "exportTemplate"],
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "!self.schedule.startsWith('TZ=') && !self.schedule.startsWith('CRON_TZ=')",
                    "message": "set the time zone in spec.timeZone, not in the schedule",
                    "fieldPath": ".schedule",
                }
            ]
        },
    )


def schedule_status() -> dict[str, Any]:
    run = _obj(
        {
            "name": NAME,
            "phase": {"type": "string", "maxLength": 64},
            "scheduledAt": TIME,
            "startedAt": STR,
            "completedAt": STR,
            "rows": INT,
        },
        ["name"],
    )
    return _obj(
        {
            "observedGeneration": {"type": "integer", "default": -1},
            "lastScheduleTime": TIME,
            "nextScheduleTime": TIME,
            "lastSuccessfulTime": STR,
            "lastSuccessfulRun": NAME,
            "lastSuccessfulScheduleTime": TIME,
            "active": {"type": "array", "maxItems": 8, "items": NAME},
            "history": {"type": "array", "maxItems": 2 * HISTORY_MAX + 8, "items": run},
            "cursor": _obj(
                {
                    "column": NAME,
                    "value": {**ANY_VALUE, "description": "typed JSON: plain JSON or {$type, value}"},
                    "run": NAME,
                }
            ),
            "schemaFingerprint": NAME,
            "schemaChange": _obj(
                {
                    "previous": NAME,
                    "current": NAME,
                    "run": NAME,
                    "detectedAt": TIME,
                    "generation": INT,
                    "acknowledged": BOOL,
                }
            ),
            "createError": _obj({"generation": INT, "message": {"type": "string", "maxLength": 4096}}),
            "message": {"type": "string", "maxLength": 4096},
            "conditions": conditions(),
        }
    )


def printer_columns() -> list[dict[str, Any]]:
    return [
        {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"},
        {"name": "Time Zone", "type": "string", "jsonPath": ".spec.timeZone"},
        {"name": "Suspend", "type": "boolean", "jsonPath": ".spec.suspend"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Active", "type": "string", "jsonPath": ".status.active[0]"},
        {"name": "Last Schedule", "type": "date", "jsonPath": ".status.lastScheduleTime"},
        {"name": "Last Success", "type": "date", "jsonPath": ".status.lastSuccessfulTime"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Last Run", "type": "string", "jsonPath": ".status.lastSuccessfulRun", "priority": 1},
        {"name": "Next", "type": "date", "jsonPath": ".status.nextScheduleTime", "priority": 1},
        {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
    ]


def schedule_crd() -> dict[str, Any]:
    """The RivetSchedule CRD, wrapped like the project's other kinds (`api.crds.crd`)."""
    return crd(KIND, PLURAL, list(SHORT_NAMES), schedule_spec(), schedule_status(), printer_columns(), [])
