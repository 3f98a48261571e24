"""One reconcile of a RivetSchedule as a pure function: (schedule, owned exports, now) -> actions.

A RivetSchedule creates one RivetExport per cron tick, as a CronJob creates Jobs, so each RivetExport
stays exactly one run with its own readiness. `decide` reads the schedule (spec, status, metadata), the
RivetExports it owns and the time, and returns plain actions for the runtime to carry out IN ORDER,
stopping at the first that fails (the next reconcile recomputes everything):

    DeleteExport (a run replaced by concurrencyPolicy Replace)
    CreateExport (this tick's run; 409 AlreadyExists means done: the name is deterministic)
    PatchStatus  (a JSON merge patch of /status; None values remove keys)
    DeleteExport (finished runs beyond the history limits)
    Event ...    (for the schedule)
    RequeueAt    (reconcile again at the next fire time)

Creating before patching means a lost patch re-finds the run by name instead of losing the tick;
patching before pruning means a run's cursor is recorded before the run can be deleted.

What it reads of each RivetExport passed in: metadata.name, ownerReferences (only exports whose
controller reference has the schedule's uid count; others are ignored), the `rivet.dev/scheduled-at`
annotation (else creationTimestamp), deletionTimestamp, and status.phase, startedAt, completedAt,
rowsWritten, message, plan.schemaFingerprint and cursor (`{column, value}`: the run's high cursor as
typed JSON, null when it exported no rows). Pass a fresh list (LIST with the label selector
`builders.schedule_selector(name)`; at most the history limits plus one), not a lagging cache: a run
missing from the list looks like no run.

Rules (CronJob's, with these decisions):
- Due ticks are those in (lastScheduleTime, now]; lastScheduleTime defaults to the schedule's
  creationTimestamp, and with startingDeadlineSeconds the window starts no earlier than
  now - startingDeadlineSeconds. Only the most recent due tick can run; when more than one was due, a
  MissedSchedule event counts the others. More than 100 due ticks: nothing is created
  (TooManyMissedTimes, Warning) and lastScheduleTime moves to the latest tick, so the schedule resumes at
  its next time instead of staying stuck as the old CronJob controller did.
- status.lastScheduleTime is the latest tick the schedule has dealt with: run, skipped by Forbid, or given
  up on (more than 100 missed). Suspended or stalled ticks are not dealt with: on resuming, the most
  recent one runs if it is still within startingDeadlineSeconds (as a CronJob does).
- Forbid: a tick that comes while a run is active is skipped for good (RunSkipped, Warning). Replace: the
  active run is deleted, then the new one created. Allow is not offered: two runs of one export would
  race on its cursor and prefix. A run is active until its status.phase is Succeeded or Failed; a run
  being deleted counts as gone.
- suspend: no new runs; the active run goes on, its result is still recorded, history is still pruned.
- History: finished runs beyond successfulRunsHistoryLimit / failedRunsHistoryLimit are deleted, oldest
  (by scheduled time) first, Succeeded and Failed counted separately. status.history lists the runs
  that remain, newest first.
- Results are taken once per phase change (a run whose phase differs from the one status.history has
  for it). "The last successful run" is the Succeeded run with the latest scheduled time: a run of an
  older tick that succeeds later (re-run by hand) gets its event but moves nothing back.
- Incremental cursor: the next run is created with `spec.cursor` = status.cursor.value. The cursor
  advances only from a Succeeded run, to that run's status.cursor.value (its high cursor), and only when
  the run's status.cursor.column is the template's current cursorColumn; a null value (no rows) keeps
  the cursor. A failed run never moves it. When exportTemplate.spec.cursorColumn differs from
  status.cursor.column, the cursor restarts from scratch (no value: the next run exports every row) and
  a CursorReset event (Warning) says so.
- Schema change: a newly finished run whose status.plan.schemaFingerprint differs from
  status.schemaFingerprint is reported (SchemaChanged event, Warning; status.schemaChange =
  {previous, current, run, detectedAt, generation, acknowledged}); status.schemaFingerprint becomes the
  new one. The policy decides whether the changed run certifies:
  - `warn` (default): the run certifies, and its cursor is taken;
  - `fail`: each run is created with `spec.expectedSchemaFingerprint` = status.schemaFingerprint, so the
    export fails the changed run after planning, before any chunk (status.reason SchemaChanged, nothing
    certified, the cursor stays), and the schedule stalls (Stalled=True, reason SchemaChanged): no further
    runs until the user acknowledges, either by changing the spec (metadata.generation above the one
    recorded at detection) or by annotating the schedule with `rivet.dev/acknowledge-schema: <the new
    fingerprint>`. The next run then expects the new schema and certifies.
- An invalid spec (cron expression, time zone, template fields the schedule owns, or what the optional
  `check_template` finds in the export spec) sets Stalled=True, reason InvalidSpec, naming the field,
  and freezes the schedule: no runs, no results taken, no pruning, until the spec is fixed. So does a
  RivetExport the API server refuses to create (the runtime calls `rejected()`): status.createError
  keeps the schedule stalled for that generation instead of retrying the same create at every reconcile.
- Conditions: Ready=True while the schedule is valid and running or suspended (a failed run is that
  export's failure, not the schedule's: it shows in status.history and an event); Stalled=True for
  InvalidSpec and SchemaChanged (Ready=False then); Reconciling=False once this generation is observed,
  since a reconcile finishes in one pass. All carry observedGeneration, and lastTransitionTime moves only
  when a condition's status flips.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rivet.contract.prefix import template_tokens
from rivet_operator.api.status import set_condition
from rivet_operator.schedule.builders import export_body, run_name
from rivet_operator.schedule.cron import Cron
from rivet_operator.schedule.spec import (
    A_ACK_SCHEMA,
    FAILED,
    SUCCEEDED,
    ExportView,
    ScheduleSpec,
    SpecError,
    format_time,
    owned_by,
    parse_spec,
    parse_time,
)

MAX_MISSED = 100
SCHEMA_REFUSED = "SchemaChanged"  # the export's status.reason when expectedSchemaFingerprint refused its run
CONDITION_TYPES = ("Ready", "Reconciling", "Stalled")
NORMAL = "Normal"
WARNING = "Warning"


@dataclass(frozen=True)
class CreateExport:
    body: dict[str, Any]


@dataclass(frozen=True)
class DeleteExport:
    name: str


@dataclass(frozen=True)
class PatchStatus:
    patch: dict[str, Any]


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    type: str = NORMAL


@dataclass(frozen=True)
class RequeueAt:
    when: dt.datetime


Action = CreateExport | DeleteExport | PatchStatus | Event | RequeueAt


# ------------------------------------------------------------------------------------------- helpers


def _strip_none(value: Any) -> Any:
    """A status value as stored after a merge patch: None removes a key."""
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def _conditions(
    old: list[dict[str, Any]],
    generation: int,
    now: str,
    *,
    ready: bool,
    stalled: bool,
    reason: str,
    message: str,
) -> list[dict[str, Any]]:
    conds = [c for c in old if isinstance(c, dict)]
    conds = set_condition(conds, "Ready", ready, reason, message, generation, now)
    conds = set_condition(conds, "Reconciling", False, reason, "", generation, now)
    conds = set_condition(
        conds, "Stalled", stalled, reason if stalled else "NotStalled", message if stalled else "", generation, now
    )
    return [c for t in CONDITION_TYPES for c in conds if c["type"] == t]


def _show(value: Any) -> str:
    if isinstance(value, dict) and "$type" in value:
        return str(value.get("value"))
    return json.dumps(value, sort_keys=True, default=str)


def _history_entry(view: ExportView) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": view.name,
        "phase": view.phase,
        "scheduledAt": format_time(view.scheduled_at),
        "startedAt": view.started_at,
        "completedAt": view.completed_at,
        "rows": view.rows,
    }
    return {k: v for k, v in entry.items() if v is not None}


def fires_more_than_once_a_utc_day(cron: Cron, now: dt.datetime, sample: int = 64) -> bool:
    """True when two of the next `sample` ticks share a UTC date (they would share a `{date}` prefix)."""
    ticks = cron.ticks(now, now + dt.timedelta(days=800), sample)
    return any(a.date() == b.date() for a, b in itertools.pairwise(ticks))


def prefix_warning(spec: ScheduleSpec, now: dt.datetime) -> str | None:
    """Why runs of this schedule would collide on one certified prefix (M8 refuses the later ones), if so."""
    if spec.export_spec.get("force"):
        return None
    dest = spec.export_spec.get("destination") or {}
    if not isinstance(dest, dict):
        return None
    key = "path" if dest.get("type") == "local" else "prefix"
    template = dest.get(key) or ""
    if not isinstance(template, str):
        return None
    tokens = template_tokens(template)
    if "run_id" in tokens:
        return None
    field = f"spec.exportTemplate.spec.destination.{key}"
    if "date" not in tokens:
        return (
            f"{field} has neither {{date}} nor {{run_id}}: every run after the first finds a certified prefix and "
            "is refused; add {run_id}"
        )
    if fires_more_than_once_a_utc_day(spec.cron, now):
        return (
            f"{field} has {{date}} but not {{run_id}}, and the schedule fires more than once on some UTC days: "
            "the later runs of a day find a certified prefix and are refused; add {run_id}"
        )
    return None


def _schema_seen(
    view: ExportView,
    spec: ScheduleSpec,
    known: str | None,
    change: dict[str, Any] | None,
    events: list[Event],
    now_s: str,
    generation: int,
) -> tuple[str | None, dict[str, Any] | None]:
    """A finished run's schema fingerprint: (the fingerprint now known, the schema change to record)."""
    fp = view.schema_fingerprint
    if not fp:
        return known, change
    if known and fp != known:
        change = {"previous": known, "current": fp, "run": view.name, "detectedAt": now_s, "generation": generation}
        stop = "; schemaChangePolicy is fail: no new runs until acknowledged" if spec.schema_policy == "fail" else ""
        events.append(
            Event("SchemaChanged", f"the source schema changed in run {view.name}: {known} -> {fp}{stop}", WARNING)
        )
    return fp, change


def _changed(patch: dict[str, Any], status: dict[str, Any]) -> bool:
    return any(_strip_none(v) != _strip_none(status.get(k)) for k, v in patch.items())


TemplateCheck = Callable[[str, dict[str, Any]], object]


def _check_template(check: TemplateCheck, spec: ScheduleSpec) -> None:
    try:
        check(spec.export_name, {**spec.export_spec, "exportName": spec.export_name})
    except Exception as exc:
        field = getattr(exc, "field", None)
        if not isinstance(field, str):
            raise
        inner = field.removeprefix("spec.").removeprefix("spec")
        path = "spec.exportTemplate.spec" + (f".{inner}" if inner else "")
        text = str(exc)
        message = text.split(": ", 1)[1] if text.startswith(f"{field}: ") else text
        raise SpecError(path, message) from None


def _stall(status: dict[str, Any], generation: int, now_s: str, message: str) -> list[Action]:
    """Stalled=True, reason InvalidSpec, and nothing else: no runs, no results taken, no pruning."""
    old = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    patch = {
        "observedGeneration": generation,
        "nextScheduleTime": None,
        "message": message,
        "conditions": _conditions(
            old, generation, now_s, ready=False, stalled=True, reason="InvalidSpec", message=message
        ),
    }
    stalled = next((c for c in old if c.get("type") == "Stalled"), {})
    actions: list[Action] = [PatchStatus(patch)] if _changed(patch, status) else []
    if stalled.get("status") != "True" or stalled.get("message") != message[:1024]:
        actions.append(Event("InvalidSpec", message, WARNING))
    return actions


def rejected(schedule: dict[str, Any], message: str, now: dt.datetime) -> list[Action]:
    """What to do when the API server refuses a CreateExport (422 Invalid, 403 Forbidden by a policy).

    The schedule stalls (InvalidSpec, the server's message) and stays stalled for this generation, instead
    of retrying the same create at every reconcile; changing the spec clears it. Carry out the actions in
    order, as for decide().
    """
    meta = schedule.get("metadata") or {}
    generation = int(meta.get("generation") or 0)
    status: dict[str, Any] = schedule.get("status") or {}
    text = f"spec.exportTemplate: the RivetExport was rejected: {message}"
    now_s = format_time(now.astimezone(dt.UTC).replace(microsecond=0))
    actions = _stall(status, generation, now_s, text)
    patch = {"createError": {"generation": generation, "message": text}}
    for action in actions:
        if isinstance(action, PatchStatus):
            patch = {**action.patch, **patch}
    return [PatchStatus(patch), *(a for a in actions if isinstance(a, Event))]


# -------------------------------------------------------------------------------------------- decide


def decide(
    schedule: dict[str, Any],
    exports_owned: list[dict[str, Any]],
    now: dt.datetime,
    check_template: TemplateCheck | None = None,
) -> list[Action]:
    """The actions one reconcile of `schedule` takes, in the order to carry them out (see the module doc).

    `check_template(export_name, spec)`, if given, is a pure semantic check of the export spec (such as
    `rivet_operator.api.spec.check_spec`): an exception with a `field` attribute (`spec.destination.prefix`)
    stalls the schedule naming `spec.exportTemplate.<field without spec.>`, at once rather than at the
    first tick.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(dt.UTC).replace(microsecond=0)
    now_s = format_time(now)
    meta = schedule.get("metadata") or {}
    name = str(meta.get("name", ""))
    uid = str(meta.get("uid", ""))
    generation = int(meta.get("generation") or 0)
    annotations = meta.get("annotations") or {}
    status: dict[str, Any] = schedule.get("status") or {}
    old_conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]

    try:
        spec = parse_spec(name, schedule.get("spec") or {})
        if check_template is not None:
            _check_template(check_template, spec)
    except SpecError as exc:
        return _stall(status, generation, now_s, str(exc))
    rejection = status.get("createError")
    if isinstance(rejection, dict) and rejection.get("generation") == generation:
        return _stall(status, generation, now_s, str(rejection.get("message") or "the RivetExport was rejected"))

    events: list[Event] = []
    views = [ExportView.of(e) for e in exports_owned if owned_by(e, uid)]
    every_name = {v.name for v in views}
    live = sorted((v for v in views if not v.deleting), key=lambda v: (v.scheduled_at, v.name))

    if status.get("observedGeneration") != generation:
        warning = prefix_warning(spec, now)
        if warning:
            events.append(Event("PrefixCollision", warning, WARNING))

    # 1. the cursor restarts when the cursor column changed
    old_cursor = status.get("cursor")
    cursor: dict[str, Any] | None = dict(old_cursor) if isinstance(old_cursor, dict) else None
    if spec.cursor_column is not None and cursor is not None and cursor.get("column") != spec.cursor_column:
        events.append(
            Event(
                "CursorReset",
                f"cursorColumn changed from {cursor.get('column')!r} to {spec.cursor_column!r}: the cursor restarts "
                f"from scratch, and the next run exports every row with a non-NULL {spec.cursor_column}",
                WARNING,
            )
        )
        cursor = {"column": spec.cursor_column, "value": None, "run": None}

    # 2. results of runs that finished since the last reconcile
    seen_phase = {h.get("name"): h.get("phase") for h in status.get("history") or [] if isinstance(h, dict)}
    watermark = parse_time(status.get("lastSuccessfulScheduleTime"))
    last_success_time = status.get("lastSuccessfulTime")
    last_success_run = status.get("lastSuccessfulRun")
    schema_fp = status.get("schemaFingerprint")
    change: dict[str, Any] | None = status.get("schemaChange") if isinstance(status.get("schemaChange"), dict) else None
    for view in live:
        if not view.finished or seen_phase.get(view.name) == view.phase:
            continue
        when = format_time(view.scheduled_at)
        if view.phase == FAILED:
            detail = f": {view.message}" if view.message else ""
            events.append(Event("RunFailed", f"run {view.name} (scheduled {when}) failed{detail}", WARNING))
            if view.reason == SCHEMA_REFUSED:  # refused by expectedSchemaFingerprint (policy fail): nothing certified
                schema_fp, change = _schema_seen(view, spec, schema_fp, change, events, now_s, generation)
            continue
        rows = f"{view.rows} rows" if view.rows is not None else "rows unknown"
        if watermark is not None and view.scheduled_at < watermark:
            events.append(
                Event(
                    "RunSucceeded",
                    f"run {view.name} (scheduled {when}) succeeded: {rows}; an earlier tick, so "
                    "the cursor and the last successful run stay",
                )
            )
            continue
        watermark = view.scheduled_at
        last_success_time = view.completed_at or now_s
        last_success_run = view.name
        note = ""
        schema_fp, change = _schema_seen(view, spec, schema_fp, change, events, now_s, generation)
        if spec.cursor_column is not None and view.cursor is not None:
            if view.cursor.get("column") == spec.cursor_column:
                value = view.cursor.get("value")
                if value is not None:
                    cursor = {"column": spec.cursor_column, "value": value, "run": view.name}
                    note = f"; cursor {spec.cursor_column} -> {_show(value)}"
                else:
                    note = "; no rows, the cursor stays"
            else:
                note = f"; its cursor column {view.cursor.get('column')!r} is no longer the template's: not taken"
        events.append(Event("RunSucceeded", f"run {view.name} (scheduled {when}) succeeded: {rows}{note}"))

    acknowledged = change is None or (
        generation > int(change.get("generation") or 0) or annotations.get(A_ACK_SCHEMA) == change.get("current")
    )
    if change is not None:
        change = {**change, "acknowledged": acknowledged}
    schema_stalled = spec.schema_policy == "fail" and not acknowledged

    # 3. history limits
    succeeded = [v for v in reversed(live) if v.phase == SUCCEEDED]
    failed = [v for v in reversed(live) if v.phase == FAILED]
    pruned = {v.name for v in succeeded[spec.successful_limit :] + failed[spec.failed_limit :]}
    remaining = [v for v in live if v.name not in pruned]

    # 4. the tick
    active = [v for v in remaining if not v.finished]
    replaced: list[str] = []
    created: dict[str, Any] | None = None
    created_tick: dt.datetime | None = None
    last_schedule = parse_time(status.get("lastScheduleTime"))
    next_time: dt.datetime | None = None
    if not spec.suspend and not schema_stalled:
        earliest = last_schedule or parse_time(meta.get("creationTimestamp")) or now
        if spec.starting_deadline_seconds is not None:
            earliest = max(earliest, now - dt.timedelta(seconds=spec.starting_deadline_seconds))
        due = spec.cron.ticks(earliest, now, MAX_MISSED + 1)
        if len(due) > MAX_MISSED:
            latest = spec.cron.latest_at_or_before(now) or due[-1]
            events.append(
                Event(
                    "TooManyMissedTimes",
                    f"more than {MAX_MISSED} scheduled times were missed since {format_time(earliest)}: no run was "
                    f"started, and the schedule resumes at its next time. Set or lower spec.startingDeadlineSeconds "
                    "to run the most recent missed time instead",
                    WARNING,
                )
            )
            last_schedule = latest
        elif due:
            tick = due[-1]
            tick_s = format_time(tick)
            if len(due) > 1:
                events.append(
                    Event(
                        "MissedSchedule",
                        f"{len(due) - 1} scheduled time(s) from {format_time(due[0])} were missed; only the most "
                        f"recent, {tick_s}, runs",
                        WARNING,
                    )
                )
            run = run_name(name, uid, tick)
            if run in every_name:
                pass  # created by an earlier reconcile whose status patch did not land
            elif active and spec.concurrency_policy == "Forbid":
                events.append(
                    Event(
                        "RunSkipped",
                        f"the run for {tick_s} was skipped: {', '.join(v.name for v in active)} is still active "
                        "(concurrencyPolicy Forbid)",
                        WARNING,
                    )
                )
            else:
                for view in active:
                    replaced.append(view.name)
                    events.append(
                        Event("RunReplaced", f"deleted active run {view.name} for the run of {tick_s} (Replace)")
                    )
                value = cursor.get("value") if cursor and cursor.get("column") == spec.cursor_column else None
                expected = schema_fp if spec.schema_policy == "fail" else None
                created = export_body(schedule, spec, tick, value, expected)
                created_tick = tick
                start = f"; from cursor {_show(value)}" if spec.cursor_column and value is not None else ""
                events.append(
                    Event(
                        "SuccessfulCreate",
                        f"created run {created['metadata']['name']} for {tick_s} (date {created['spec']['date']}{start})",
                    )
                )
            last_schedule = tick
        next_time = spec.cron.next_after(now)

    # 5. status
    history = [v for v in remaining if v.name not in replaced]
    entries = [_history_entry(v) for v in reversed(history)]
    active_names = [v.name for v in active if v.name not in replaced]
    if created is not None and created_tick is not None:
        new_name = created["metadata"]["name"]
        entries.insert(0, {"name": new_name, "phase": "Pending", "scheduledAt": format_time(created_tick)})
        active_names.append(new_name)

    if schema_stalled:
        assert change is not None
        reason = "SchemaChanged"
        message = (
            f"the source schema changed in run {change.get('run')} ({change.get('previous')} -> "
            f"{change.get('current')}) and schemaChangePolicy is fail: no new runs until acknowledged: "
            f"kubectl annotate rivetschedule/{name} {A_ACK_SCHEMA}={change.get('current')} (or change the spec)"
        )
    elif spec.suspend:
        reason, message = "Suspended", "suspended: no new runs are started"
    else:
        reason = "Scheduled"
        message = f"next run at {format_time(next_time)}" if next_time else "the schedule has no further fire time"
    if active_names and not schema_stalled:
        message += f"; active: {', '.join(active_names)}"

    patch: dict[str, Any] = {
        "observedGeneration": generation,
        "lastScheduleTime": format_time(last_schedule) if last_schedule else None,
        "nextScheduleTime": format_time(next_time) if next_time else None,
        "lastSuccessfulTime": last_success_time,
        "lastSuccessfulRun": last_success_run,
        "lastSuccessfulScheduleTime": format_time(watermark) if watermark else None,
        "active": active_names,
        "history": entries,
        "cursor": cursor,
        "schemaFingerprint": schema_fp,
        "schemaChange": change,
        "createError": None,
        "message": message,
        "conditions": _conditions(
            old_conditions,
            generation,
            now_s,
            ready=not schema_stalled,
            stalled=schema_stalled,
            reason=reason,
            message=message,
        ),
    }

    actions: list[Action] = [DeleteExport(n) for n in replaced]
    if created is not None:
        actions.append(CreateExport(created))
    if _changed(patch, status):
        actions.append(PatchStatus(patch))
    actions.extend(DeleteExport(v.name) for v in live if v.name in pruned)
    actions.extend(events)
    if next_time is not None:
        actions.append(RequeueAt(next_time))
    return actions
