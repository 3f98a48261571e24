"""The RivetExport a RivetSchedule creates for one tick (pure).

- Name: `<schedule name, at most 52 characters>-<10 hex>`, the hex being SHA-256 of the schedule's uid and
  the tick (RFC 3339, UTC). Deterministic, so a repeated reconcile re-creates the same name (409 = done);
  unique per schedule and tick, and distinct from the runs of an earlier schedule of the same name. It is
  a valid DNS-1123 label (at most 63 characters, `[a-z0-9-]`, no trailing `-`), because the export
  controller derives label values and Job names from it.
- Labels: the template's, plus `rivet.dev/schedule: <schedule name>` (hashed down to a valid label value
  when the name is longer than 63 characters); annotations: the template's, plus
  `rivet.dev/scheduled-at: <tick>`, which orders runs. The schedule's keys win over the template's.
- ownerReferences: the schedule, `controller: true` (garbage collection deletes the runs with the
  schedule; `blockOwnerDeletion: false`, as for the export's own Jobs, needs no finalizer RBAC).
- spec: the template's spec, plus
  - `date`: the tick's date in UTC. The contract defines `{date}` as the run's UTC date, and a manual
    export gets today's UTC date; a scheduled run gets the date of its tick (not of its late start), so a
    run that waited keeps its date. A `0 22 * * *` schedule in America/New_York therefore has the next
    day's date (22:00 EST is 03:00 UTC);
  - `exportName`: the template's, else the schedule's name, so `{export}` and the manifest's
    `export_name` stay the same from run to run (the export's own name carries the hash);
  - `cursor`: incremental exports only, the last certified cursor value (typed JSON as in
    `rivet.contract.values`: plain JSON, or `{"$type": "datetime"|"date"|"decimal"|"bytes", "value": ...}`);
    absent on a first run or after a reset, so the run starts from scratch.
  - `expectedSchemaFingerprint`: with schemaChangePolicy `fail`, the schema of the last certified run; the
    export refuses to certify a run with another schema (it fails with reason SchemaChanged after planning).
  `{run_id}` is not set here: each export is a new run, and its controller picks the run id when it starts.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import re
from typing import Any

from rivet_operator import GROUP, VERSION
from rivet_operator.schedule.spec import A_SCHEDULED_AT, ScheduleSpec, format_time

KIND = "RivetSchedule"
PLURAL = "rivetschedules"
EXPORT_KIND = "RivetExport"
L_SCHEDULE = "rivet.dev/schedule"
LABEL_MAX = 63
HASH_LEN = 10
BASE_MAX = LABEL_MAX - HASH_LEN - 1
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:HASH_LEN]


def label_value(name: str) -> str:
    """`name` when it is a valid label value, else a shortened form with a hash that keeps it unique."""
    if len(name) <= LABEL_MAX and _LABEL_VALUE.match(name):
        return name
    head = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[:BASE_MAX].strip("-_.")
    return f"{head}-{_digest(name)}" if head else _digest(name)


def run_name(schedule_name: str, uid: str, tick: dt.datetime) -> str:
    """The RivetExport name for one tick: a DNS-1123 label, deterministic per (schedule uid, tick)."""
    head = _NOT_LABEL.sub("-", schedule_name.lower())[:BASE_MAX].strip("-")
    digest = _digest(uid, format_time(tick))
    return f"{head}-{digest}" if head else digest


def schedule_selector(schedule_name: str) -> str:
    """The label selector for listing a schedule's exports (filter them by ownerReference uid too)."""
    return f"{L_SCHEDULE}={label_value(schedule_name)}"


def owner_reference(schedule: dict[str, Any]) -> dict[str, Any]:
    meta = schedule.get("metadata") or {}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": False,
    }


def export_body(
    schedule: dict[str, Any],
    spec: ScheduleSpec,
    tick: dt.datetime,
    cursor_value: Any,
    expected_schema: str | None = None,
) -> dict[str, Any]:
    """The RivetExport for `tick`: template + name, owner, labels, date, exportName, cursor and, under
    schemaChangePolicy fail, the schema fingerprint the run must have to certify."""
    meta = schedule.get("metadata") or {}
    name = str(meta.get("name", ""))
    body_spec = copy.deepcopy(spec.export_spec)
    body_spec["exportName"] = spec.export_name
    body_spec["date"] = tick.astimezone(dt.UTC).date().isoformat()
    if spec.cursor_column is not None and cursor_value is not None:
        body_spec["cursor"] = copy.deepcopy(cursor_value)
    if expected_schema:
        body_spec["expectedSchemaFingerprint"] = expected_schema
    metadata: dict[str, Any] = {
        "name": run_name(name, str(meta.get("uid", "")), tick),
        "labels": {**spec.labels, L_SCHEDULE: label_value(name)},
        "annotations": {**spec.annotations, A_SCHEDULED_AT: format_time(tick)},
        "ownerReferences": [owner_reference(schedule)],
    }
    if meta.get("namespace"):
        metadata["namespace"] = meta["namespace"]
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": EXPORT_KIND, "metadata": metadata, "spec": body_spec}
