"""A RivetSchedule's spec, checked (pure), and the fields of an owned RivetExport the schedule reads.

`parse_spec` applies the same defaults as the CRD (so an object that skipped admission defaulting still
works) and raises `SpecError` naming the first bad field as a spec path, for the Stalled condition. The
API server already rejects most of this through the CRD schema; these checks are the ones it cannot make
(the cron expression and time zone) plus the fields a schedule owns in its template (`date`, `cursor`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from rivet_operator.schedule import cron

CONCURRENCY_POLICIES = ("Forbid", "Replace")
SCHEMA_POLICIES = ("warn", "fail")
HISTORY_MAX = 100
MIN_DEADLINE_S = 10
EXPORT_NAME_MAX = 63
# the fields a schedule sets itself on every export it creates
RESERVED_TEMPLATE_FIELDS = ("date", "cursor", "expectedSchemaFingerprint")

# RivetExport status.phase values that end a run
SUCCEEDED = "Succeeded"
FAILED = "Failed"
FINISHED = (SUCCEEDED, FAILED)

A_SCHEDULED_AT = "rivet.dev/scheduled-at"
A_ACK_SCHEMA = "rivet.dev/acknowledge-schema"


class SpecError(ValueError):
    """A spec error: `field` is the spec path (spec.schedule, spec.exportTemplate.spec.date, ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ScheduleSpec:
    cron: cron.Cron
    concurrency_policy: str
    starting_deadline_seconds: int | None
    suspend: bool
    successful_limit: int
    failed_limit: int
    schema_policy: str
    labels: dict[str, str]
    annotations: dict[str, str]
    export_spec: dict[str, Any]
    export_name: str  # the data's name (`{export}`, the manifest): exportName, or the schedule's name
    cursor_column: str | None  # exportTemplate.spec.cursorColumn, for mode incremental only


def _int(spec: dict[str, Any], key: str, default: int | None, lo: int, hi: int | None) -> int | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise SpecError(f"spec.{key}", f"must be an integer {bounds}, got {value!r}")
    return value


def _string_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise SpecError(field, "must be a map of strings to strings")
    return dict(value)


def parse_spec(name: str, spec: dict[str, Any]) -> ScheduleSpec:
    """Check a RivetSchedule spec; raise SpecError naming the first bad field."""
    schedule, zone = spec.get("schedule"), spec.get("timeZone") or "UTC"
    if not isinstance(schedule, str):
        raise SpecError(cron.SCHEDULE_FIELD, "is required: a cron expression such as '30 2 * * *' or @daily")
    if not isinstance(zone, str):
        raise SpecError(cron.TIME_ZONE_FIELD, f"must be an IANA time zone name, got {zone!r}")
    try:
        parsed = cron.parse(schedule, zone)
    except cron.CronError as exc:
        raise SpecError(exc.field, exc.message) from None

    policy = spec.get("concurrencyPolicy", "Forbid")
    if policy == "Allow":
        raise SpecError(
            "spec.concurrencyPolicy",
            "Allow is not offered: two runs of one export would race on its state (the incremental cursor, the "
            "prefix); use Forbid or Replace",
        )
    if policy not in CONCURRENCY_POLICIES:
        raise SpecError("spec.concurrencyPolicy", f"must be Forbid or Replace, got {policy!r}")
    deadline = _int(spec, "startingDeadlineSeconds", None, MIN_DEADLINE_S, None)
    suspend = spec.get("suspend", False)
    if not isinstance(suspend, bool):
        raise SpecError("spec.suspend", f"must be true or false, got {suspend!r}")
    successful = _int(spec, "successfulRunsHistoryLimit", 3, 0, HISTORY_MAX)
    failed = _int(spec, "failedRunsHistoryLimit", 1, 0, HISTORY_MAX)
    assert successful is not None and failed is not None
    schema_policy = spec.get("schemaChangePolicy", "warn")
    if schema_policy not in SCHEMA_POLICIES:
        raise SpecError("spec.schemaChangePolicy", f"must be warn or fail, got {schema_policy!r}")

    template = spec.get("exportTemplate")
    if not isinstance(template, dict):
        raise SpecError(
            "spec.exportTemplate", "is required: {metadata: {labels, annotations}, spec: <RivetExport spec>}"
        )
    meta = template.get("metadata") or {}
    if not isinstance(meta, dict):
        raise SpecError("spec.exportTemplate.metadata", "must be an object with labels and annotations")
    labels = _string_map(meta.get("labels"), "spec.exportTemplate.metadata.labels")
    annotations = _string_map(meta.get("annotations"), "spec.exportTemplate.metadata.annotations")
    export_spec = template.get("spec")
    if not isinstance(export_spec, dict) or not export_spec:
        raise SpecError("spec.exportTemplate.spec", "is required: the RivetExport spec each run is created with")
    for key in RESERVED_TEMPLATE_FIELDS:
        if key in export_spec:
            raise SpecError(
                f"spec.exportTemplate.spec.{key}",
                f"is set by the schedule for each run ({'the tick as a UTC date' if key == 'date' else 'the last certified cursor'}): remove it",
            )
    export_name = export_spec.get("exportName") or name
    if not isinstance(export_name, str) or len(export_name) > EXPORT_NAME_MAX:
        raise SpecError(
            "spec.exportTemplate.spec.exportName",
            f"the export name defaults to the schedule's name, which is longer than {EXPORT_NAME_MAX} characters: "
            "set exportName",
        )
    cursor_column: str | None = None
    if export_spec.get("mode") == "incremental":
        column = export_spec.get("cursorColumn")
        if not isinstance(column, str) or not column:
            raise SpecError("spec.exportTemplate.spec.cursorColumn", "mode incremental needs cursorColumn")
        cursor_column = column
    return ScheduleSpec(
        cron=parsed,
        concurrency_policy=policy,
        starting_deadline_seconds=deadline,
        suspend=suspend,
        successful_limit=successful,
        failed_limit=failed,
        schema_policy=schema_policy,
        labels=labels,
        annotations=annotations,
        export_spec=export_spec,
        export_name=export_name,
        cursor_column=cursor_column,
    )


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp from status or metadata as an aware UTC datetime (None if absent or bad)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def format_time(value: dt.datetime) -> str:
    """RFC 3339 in UTC, whole seconds, as Kubernetes writes timestamps."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ExportView:
    """What the schedule reads from one RivetExport it owns."""

    name: str
    scheduled_at: dt.datetime  # annotation rivet.dev/scheduled-at, else creationTimestamp
    phase: str  # status.phase; "Pending" until the export controller writes one
    deleting: bool  # metadata.deletionTimestamp is set
    started_at: str | None  # status.startedAt
    completed_at: str | None  # status.completedAt
    rows: int | None  # status.rowsWritten
    cursor: dict[str, Any] | None  # status.cursor: {column, value} (value: the run's high cursor, typed JSON)
    schema_fingerprint: str | None  # status.plan.schemaFingerprint
    message: str | None  # status.message
    reason: str | None  # status.reason (why a run failed: SchemaChanged when its schema was refused)

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ExportView:
        meta = obj.get("metadata") or {}
        status = obj.get("status") or {}
        annotations = meta.get("annotations") or {}
        when = parse_time(annotations.get(A_SCHEDULED_AT)) or parse_time(meta.get("creationTimestamp"))
        plan = status.get("plan") or {}
        rows = status.get("rowsWritten")
        cursor = status.get("cursor")
        return cls(
            name=str(meta.get("name", "")),
            scheduled_at=when or dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
            phase=str(status.get("phase") or "Pending"),
            deleting=bool(meta.get("deletionTimestamp")),
            started_at=status.get("startedAt") or None,
            completed_at=status.get("completedAt") or None,
            rows=rows if isinstance(rows, int) and not isinstance(rows, bool) else None,
            cursor=cursor if isinstance(cursor, dict) else None,
            schema_fingerprint=(plan.get("schemaFingerprint") or None) if isinstance(plan, dict) else None,
            message=status.get("message") or None,
            reason=status.get("reason") or None,
        )


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    """True when `obj` has a controller ownerReference to the object with this uid."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(isinstance(r, dict) and r.get("uid") == uid and r.get("controller") for r in refs)
