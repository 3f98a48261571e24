"""RivetSchedule's pure core: cron across DST, run names, the export body, decide() rules, the CRD."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import re
from typing import Any

import pytest

from rivet_operator.schedule import builders, cron
from rivet_operator.schedule.crd import schedule_crd
from rivet_operator.schedule.decide import (
    MAX_MISSED,
    Action,
    CreateExport,
    DeleteExport,
    Event,
    PatchStatus,
    RequeueAt,
    decide,
    rejected,
)
from rivet_operator.schedule.spec import A_ACK_SCHEMA, A_SCHEDULED_AT, SpecError, parse_spec

UTC = dt.UTC
NY = "America/New_York"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def t(text: str) -> dt.datetime:
    """An aware datetime from ISO text (`Z` or an offset)."""
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def local(value: dt.datetime, zone: str) -> str:
    return value.astimezone(cron.load_zone(zone)).strftime("%Y-%m-%d %H:%M %Z")


# ------------------------------------------------------------------------------------------------ cron


def test_daily_utc_next_is_strictly_after_latest_is_at_or_before() -> None:
    c = cron.parse("30 2 * * *")
    assert c.next_after(t("2026-11-23T02:30:00Z")) == t("2026-11-24T02:30:00Z")
    assert c.next_after(t("2026-11-23T02:29:59.500000Z")) == t("2026-11-23T02:30:00Z")
    assert c.latest_at_or_before(t("2026-11-23T02:30:00Z")) == t("2026-11-23T02:30:00Z")
    assert c.latest_at_or_before(t("2026-11-23T02:29:59Z")) == t("2026-11-22T02:30:00Z")
    got = c.ticks(t("2026-11-20T00:00:00Z"), t("2026-11-23T03:00:00Z"), 10)
    assert got == [t(f"2026-11-{d}T02:30:00Z") for d in (20, 21, 22, 23)]
    assert c.ticks(t("2026-11-20T00:00:00Z"), t("2026-11-23T03:00:00Z"), 2) == got[:2]
    assert all(x.tzinfo == UTC for x in got)


def test_spring_forward_0230_in_new_york_fires_once_at_0300() -> None:
    c = cron.parse("30 2 * * *", NY)
    got = c.ticks(t("2026-03-07T00:00:00Z"), t("2026-03-10T00:00:00Z"), 10)
    assert [local(x, NY) for x in got] == [
        "2026-03-07 02:30 EST",
        "2026-03-08 03:00 EDT",  # 02:30 does not exist that day: first minute after the gap
        "2026-03-09 02:30 EDT",
    ]
    assert c.latest_at_or_before(t("2026-03-08T12:00:00Z")) == t("2026-03-08T07:00:00Z")


def test_fall_back_day_does_not_fire_a_repeated_time_twice() -> None:
    c = cron.parse("30 1 * * *", NY)
    got = c.ticks(t("2026-10-31T00:00:00Z"), t("2026-11-03T00:00:00Z"), 10)
    assert [local(x, NY) for x in got] == ["2026-10-31 01:30 EDT", "2026-11-01 01:30 EDT", "2026-11-02 01:30 EST"]
    # asked during the second pass of the repeated hour (01:15 EST): the 01:30 EDT tick is already past
    second_pass = t("2026-11-01T06:15:00Z")
    assert c.next_after(second_pass) == t("2026-11-02T06:30:00Z")
    assert c.latest_at_or_before(second_pass) == t("2026-11-01T05:30:00Z")


def test_interval_schedules_follow_real_time_across_both_transitions() -> None:
    hourly = cron.parse("@hourly", NY)
    fall = hourly.ticks(t("2026-11-01T04:30:00Z"), t("2026-11-01T08:00:00Z"), 10)
    assert fall == [
        t("2026-11-01T05:00:00Z"),
        t("2026-11-01T06:00:00Z"),
        t("2026-11-01T07:00:00Z"),
        t("2026-11-01T08:00:00Z"),
    ]
    assert [local(x, NY) for x in fall[:2]] == ["2026-11-01 01:00 EDT", "2026-11-01 01:00 EST"]
    spring = hourly.ticks(t("2026-03-08T05:30:00Z"), t("2026-03-08T08:00:00Z"), 10)
    assert [local(x, NY) for x in spring] == ["2026-03-08 01:00 EST", "2026-03-08 03:00 EDT", "2026-03-08 04:00 EDT"]
    quarter = cron.parse("*/15 * * * *", NY)
    got = quarter.ticks(t("2026-11-01T05:00:00Z"), t("2026-11-01T07:00:00Z"), 100)
    assert len(got) == 8 and all(b - a == dt.timedelta(minutes=15) for a, b in itertools.pairwise(got))


@pytest.mark.parametrize(
    "zone", ["UTC", NY, "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata", "Pacific/Chatham", "America/Sao_Paulo"]
)
def test_a_year_of_daily_ticks_is_one_per_local_day(zone: str) -> None:
    c = cron.parse("30 2 * * *", zone)
    got = c.ticks(t("2026-01-01T00:00:00Z") - dt.timedelta(days=1), t("2027-01-01T00:00:00Z"), 1000)
    tz = cron.load_zone(zone)
    days = [x.astimezone(tz).date() for x in got]
    assert days == sorted(set(days)) and len(days) >= 365
    assert all((b - a).days == 1 for a, b in itertools.pairwise(days)), "a local day skipped or repeated"
    assert all(a < b for a, b in itertools.pairwise(got))
    for x in got[::7]:
        assert c.latest_at_or_before(x) == x
        assert c.next_after(x - dt.timedelta(seconds=1)) == x


def test_macros_and_question_mark() -> None:
    assert cron.normalize("@daily") == cron.normalize("@midnight") == "0 0 * * *"
    assert cron.normalize(" @Hourly ") == "0 * * * *"
    assert cron.normalize("0 0 ? * ?") == "0 0 * * *"
    start = t("2026-11-23T12:00:00Z")  # a Monday
    nxt = cron.parse("@weekly").next_after(start)
    assert nxt is not None and nxt.weekday() == 6 and nxt.hour == 0  # Sunday midnight
    assert cron.parse("@monthly").next_after(start) == t("2026-12-01T00:00:00Z")
    assert cron.parse("@yearly").next_after(start) == t("2027-01-01T00:00:00Z")
    assert cron.parse("@annually", "Europe/Berlin").next_after(start) == t("2026-12-31T23:00:00Z")


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("", "empty"),
        ("* * * *", "4 fields"),
        ("0 30 2 * * *", "seconds field"),
        ("61 * * * *", "bad minute"),
        ("0 24 * * *", "bad hour"),
        ("0 0 31 2 *", "bad day-of-month"),
        ("0 0 * * 9", "bad day-of-week"),
        ("*/0 * * * *", "bad minute"),
        ("@reboot", "not a supported macro"),
        ("@every 5m", "not a supported macro"),
        ("TZ=Europe/Berlin 0 2 * * *", "spec.timeZone"),
        ("CRON_TZ=UTC 0 2 * * *", "spec.timeZone"),
    ],
)
def test_invalid_schedules_name_spec_schedule(expression: str, words: str) -> None:
    with pytest.raises(cron.CronError) as info:
        cron.parse(expression)
    assert info.value.field == "spec.schedule"
    assert str(info.value).startswith("spec.schedule: ") and words in str(info.value)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "localtime", "Local", "../../etc/passwd", "Europe/", "EST5EDT "])
def test_invalid_time_zones_name_spec_time_zone(zone: str) -> None:
    with pytest.raises(cron.CronError) as info:
        cron.parse("0 2 * * *", zone)
    assert info.value.field == "spec.timeZone" and str(info.value).startswith("spec.timeZone: ")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cron.parse("@daily").next_after(dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(schedule(), [], dt.datetime(2026, 1, 1))


# -------------------------------------------------------------------------------------- test helpers

INCREMENTAL: dict[str, Any] = {
    "source": {"type": "postgres", "urlFrom": {"secretKeyRef": {"name": "orders-db", "key": "url"}}},
    "table": "public.orders",
    "mode": "incremental",
    "cursorColumn": "updated_at",
    "format": "parquet",
    "destination": {"type": "s3", "bucket": "lake", "prefix": "exports/{date}/{export}/{run_id}/"},
    "envFrom": [{"secretRef": {"name": "lake-credentials"}}],
}


def schedule(
    name: str = "nightly-orders",
    uid: str = "uid-1",
    generation: int = 1,
    created: str = "2026-11-01T10:00:00Z",
    template_spec: dict[str, Any] | None = None,
    template_meta: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"schedule": "0 2 * * *", **spec}
    body.setdefault(
        "exportTemplate",
        {"metadata": template_meta or {}, "spec": copy.deepcopy(template_spec or INCREMENTAL)},
    )
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "analytics",
        "uid": uid,
        "generation": generation,
        "creationTimestamp": created,
    }
    if annotations:
        meta["annotations"] = annotations
    obj: dict[str, Any] = {"apiVersion": "rivet.dev/v1alpha1", "kind": "RivetSchedule", "metadata": meta, "spec": body}
    if status is not None:
        obj["status"] = status
    return obj


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies a status merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def of(actions: list[Action], kind: type) -> list[Any]:
    found: list[Any] = [a for a in actions if isinstance(a, kind)]
    return found


def reasons(actions: list[Action]) -> list[str]:
    return [a.reason for a in actions if isinstance(a, Event)]


class World:
    """A schedule and its exports, changed by decide()'s actions as the runtime would apply them."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.schedule = obj
        self.exports: dict[str, dict[str, Any]] = {}

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.schedule.setdefault("status", {})
        return status

    def reconcile(self, now: str, *, patch: bool = True) -> list[Action]:
        actions = decide(copy.deepcopy(self.schedule), copy.deepcopy(list(self.exports.values())), t(now))
        for action in actions:
            if isinstance(action, CreateExport):
                body = copy.deepcopy(action.body)
                body["metadata"]["creationTimestamp"] = now
                self.exports.setdefault(body["metadata"]["name"], body)
            elif isinstance(action, DeleteExport):
                self.exports.pop(action.name)
            elif isinstance(action, PatchStatus) and patch:
                self.schedule["status"] = merge(self.schedule.get("status"), action.patch)
        return actions

    def only_export(self) -> dict[str, Any]:
        (body,) = self.exports.values()
        return body

    def set_phase(
        self,
        name: str,
        phase: str,
        *,
        rows: int | None = 10,
        cursor: Any = None,
        column: str = "updated_at",
        fingerprint: str | None = "xxh3:1111",
        completed: str = "2026-11-02T02:10:00Z",
        message: str | None = None,
    ) -> None:
        status: dict[str, Any] = {"phase": phase, "startedAt": "2026-11-02T02:00:01Z"}
        if phase in ("Succeeded", "Failed"):
            status["completedAt"] = completed
            status["rowsWritten"] = rows
        if fingerprint:
            status["plan"] = {"schemaFingerprint": fingerprint}
        if cursor is not None or phase == "Succeeded":
            status["cursor"] = {"column": column, "value": cursor}
        if message:
            status["message"] = message
        self.exports[name]["status"] = status


def day(n: int, hour: int = 2, minute: int = 0, second: int = 5) -> str:
    return f"2026-11-{n:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"


def created_names(actions: list[Action]) -> list[str]:
    return [a.body["metadata"]["name"] for a in of(actions, CreateExport)]


# ----------------------------------------------------------------------------------- names and body


@pytest.mark.parametrize(
    "name",
    [
        "nightly-orders",
        "a" * 253,
        "db.orders.nightly",
        "x" * 51 + "-" + "y" * 30,  # the cut lands right after a '-'
        "x" * 52 + ".y",
        "0-starts-with-a-digit",
    ],
)
def test_run_names_are_dns_labels_deterministic_and_unique(name: str) -> None:
    ticks = cron.parse("*/7 * * * *").ticks(t("2026-11-01T00:00:00Z"), t("2026-11-08T00:00:00Z"), 2000)
    names = [builders.run_name(name, "uid-1", x) for x in ticks]
    assert all(len(n) <= 63 and DNS_LABEL.match(n) for n in names), names[:3]
    assert len(set(names)) == len(names) == 9 * 24 * 7  # */7: minutes 0, 7, ..., 56
    assert builders.run_name(name, "uid-1", ticks[0]) == names[0]
    assert builders.run_name(name, "uid-2", ticks[0]) != names[0], "a re-created schedule gets new names"
    assert names[0].startswith(name[:10].replace(".", "-"))
    label = builders.label_value(name)
    assert len(label) <= 63 and LABEL_VALUE.match(label)
    if len(name) <= 63:
        assert label == name


def test_export_body_from_the_template() -> None:
    obj = schedule(
        template_meta={
            "labels": {"team": "data", builders.L_SCHEDULE: "spoofed"},
            "annotations": {"owner": "ana", A_SCHEDULED_AT: "spoofed"},
        },
        timeZone=NY,
        schedule="0 22 * * *",
    )
    spec = parse_spec("nightly-orders", obj["spec"])
    before = copy.deepcopy(spec.export_spec)
    tick = t("2026-11-23T22:00:00-05:00")
    cursor = {"$type": "datetime", "value": "2026-11-23T21:59:58.123456"}
    body = builders.export_body(obj, spec, tick, cursor)
    meta = body["metadata"]
    assert body["apiVersion"] == "rivet.dev/v1alpha1" and body["kind"] == "RivetExport"
    assert meta["name"] == builders.run_name("nightly-orders", "uid-1", tick) and meta["namespace"] == "analytics"
    assert meta["labels"] == {"team": "data", "rivet.dev/schedule": "nightly-orders"}
    assert meta["annotations"] == {"owner": "ana", A_SCHEDULED_AT: "2026-11-24T03:00:00Z"}
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "rivet.dev/v1alpha1",
            "kind": "RivetSchedule",
            "name": "nightly-orders",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": False,
        }
    ]
    # 22:00 in New York is 03:00 UTC the next day: {date} is the tick's UTC date
    assert body["spec"]["date"] == "2026-11-24"
    assert body["spec"]["exportName"] == "nightly-orders"
    assert body["spec"]["cursor"] == cursor and body["spec"]["cursor"] is not cursor
    assert {k: v for k, v in body["spec"].items() if k not in ("date", "exportName", "cursor")} == before
    assert spec.export_spec == before, "the template is not mutated"
    # no cursor on a first run; never one for a non-incremental export; an explicit exportName is kept
    assert "cursor" not in builders.export_body(obj, spec, tick, None)["spec"]
    full = schedule(template_spec={**INCREMENTAL, "mode": "full", "exportName": "orders"})
    full_spec = parse_spec("nightly-orders", full["spec"])
    full_body = builders.export_body(full, full_spec, tick, cursor)
    assert "cursor" not in full_body["spec"] and full_body["spec"]["exportName"] == "orders"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"schedule": "0 25 * * *"}, "spec.schedule"),
        ({"schedule": None}, "spec.schedule"),
        ({"timeZone": "Atlantis/Capital"}, "spec.timeZone"),
        ({"concurrencyPolicy": "Allow"}, "spec.concurrencyPolicy"),
        ({"concurrencyPolicy": "Sometimes"}, "spec.concurrencyPolicy"),
        ({"startingDeadlineSeconds": 3}, "spec.startingDeadlineSeconds"),
        ({"successfulRunsHistoryLimit": -1}, "spec.successfulRunsHistoryLimit"),
        ({"failedRunsHistoryLimit": 101}, "spec.failedRunsHistoryLimit"),
        ({"schemaChangePolicy": "ignore"}, "spec.schemaChangePolicy"),
        ({"suspend": "yes"}, "spec.suspend"),
        ({"exportTemplate": None}, "spec.exportTemplate"),
        ({"exportTemplate": {"spec": {}}}, "spec.exportTemplate.spec"),
        ({"exportTemplate": {"spec": {**INCREMENTAL, "date": "2026-11-01"}}}, "spec.exportTemplate.spec.date"),
        ({"exportTemplate": {"spec": {**INCREMENTAL, "cursor": 5}}}, "spec.exportTemplate.spec.cursor"),
        ({"exportTemplate": {"spec": {**INCREMENTAL, "cursorColumn": None}}}, "spec.exportTemplate.spec.cursorColumn"),
        (
            {"exportTemplate": {"metadata": {"labels": {"a": 1}}, "spec": INCREMENTAL}},
            "spec.exportTemplate.metadata.labels",
        ),
    ],
)
def test_invalid_specs_name_the_field(change: dict[str, Any], field: str) -> None:
    obj = schedule()
    obj["spec"].update(change)
    obj["spec"] = {k: v for k, v in obj["spec"].items() if v is not None}
    with pytest.raises(SpecError) as info:
        parse_spec("nightly-orders", obj["spec"])
    assert info.value.field == field


def test_a_long_schedule_name_needs_an_explicit_export_name() -> None:
    long = "n" * 64
    with pytest.raises(SpecError) as info:
        parse_spec(long, schedule()["spec"])
    assert info.value.field == "spec.exportTemplate.spec.exportName"
    ok = parse_spec(long, schedule(template_spec={**INCREMENTAL, "exportName": "orders"})["spec"])
    assert ok.export_name == "orders"


def test_spec_defaults_match_the_crd() -> None:
    spec = parse_spec("s", {"schedule": "@daily", "exportTemplate": {"spec": INCREMENTAL}})
    assert (spec.concurrency_policy, spec.suspend, spec.successful_limit, spec.failed_limit) == ("Forbid", False, 3, 1)
    assert (spec.schema_policy, spec.starting_deadline_seconds, spec.cron.zone_name) == ("warn", None, "UTC")
    props = schedule_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert props["concurrencyPolicy"]["default"] == "Forbid" and props["timeZone"]["default"] == "UTC"
    assert props["successfulRunsHistoryLimit"]["default"] == 3 and props["failedRunsHistoryLimit"]["default"] == 1
    assert props["schemaChangePolicy"]["default"] == "warn" and props["suspend"]["default"] is False


# ------------------------------------------------------------------------------------------- ticks


def test_nothing_is_due_before_the_first_tick_after_creation() -> None:
    w = World(schedule(created="2026-11-01T10:00:00Z"))
    actions = w.reconcile("2026-11-01T10:00:01Z")
    assert not of(actions, CreateExport) and not of(actions, DeleteExport)
    assert of(actions, RequeueAt) == [RequeueAt(t("2026-11-02T02:00:00Z"))]
    assert w.status["nextScheduleTime"] == "2026-11-02T02:00:00Z" and "lastScheduleTime" not in w.status
    assert w.status["observedGeneration"] == 1 and w.status["active"] == [] and w.status["history"] == []


def test_a_tick_creates_one_export_and_a_second_pass_creates_nothing() -> None:
    w = World(schedule(created="2026-11-01T10:00:00Z"))
    actions = w.reconcile(day(2))
    assert [type(a) for a in actions] == [CreateExport, PatchStatus, Event, RequeueAt]
    body = w.only_export()
    name = body["metadata"]["name"]
    assert name == builders.run_name("nightly-orders", "uid-1", t("2026-11-02T02:00:00Z"))
    assert body["metadata"]["labels"]["rivet.dev/schedule"] == "nightly-orders"
    assert body["spec"]["date"] == "2026-11-02" and "cursor" not in body["spec"]
    assert reasons(actions) == ["SuccessfulCreate"]
    assert w.status["lastScheduleTime"] == "2026-11-02T02:00:00Z" and w.status["active"] == [name]
    assert w.status["history"] == [{"name": name, "phase": "Pending", "scheduledAt": "2026-11-02T02:00:00Z"}]
    assert of(actions, RequeueAt) == [RequeueAt(t("2026-11-03T02:00:00Z"))]
    again = w.reconcile(day(2, second=30))
    assert not of(again, CreateExport) and not of(again, PatchStatus) and not reasons(again)
    assert len(w.exports) == 1


def test_a_lost_status_patch_does_not_create_the_run_twice() -> None:
    w = World(schedule())
    w.reconcile(day(2), patch=False)
    name = w.only_export()["metadata"]["name"]
    actions = w.reconcile(day(2, second=40))
    assert not of(actions, CreateExport) and not reasons(actions)
    assert w.status["lastScheduleTime"] == "2026-11-02T02:00:00Z" and w.status["active"] == [name]


def test_missed_ticks_run_only_the_most_recent() -> None:
    w = World(schedule())
    actions = w.reconcile(day(5, hour=9))  # the operator was down from the 1st: the 2nd..5th were missed
    assert created_names(actions) == [builders.run_name("nightly-orders", "uid-1", t("2026-11-05T02:00:00Z"))]
    assert reasons(actions) == ["MissedSchedule", "SuccessfulCreate"]
    (missed,) = [a for a in of(actions, Event) if a.reason == "MissedSchedule"]
    assert missed.type == "Warning" and missed.message.startswith("3 scheduled time(s) from 2026-11-02T02:00:00Z")
    assert w.only_export()["spec"]["date"] == "2026-11-05"


def test_more_than_100_missed_ticks_start_nothing_and_the_schedule_moves_on() -> None:
    w = World(schedule(schedule="*/5 * * * *", created="2026-11-01T00:00:00Z"))
    now = "2026-11-01T09:02:00Z"  # 108 ticks missed
    actions = w.reconcile(now)
    assert not of(actions, CreateExport) and reasons(actions) == ["TooManyMissedTimes"]
    assert of(actions, Event)[0].type == "Warning" and "startingDeadlineSeconds" in of(actions, Event)[0].message
    assert w.status["lastScheduleTime"] == "2026-11-01T09:00:00Z"
    assert of(actions, RequeueAt) == [RequeueAt(t("2026-11-01T09:05:00Z"))]
    # exactly 100 missed still runs the most recent one
    w2 = World(schedule(schedule="*/5 * * * *", created="2026-11-01T00:00:00Z"))
    assert len(created_names(w2.reconcile("2026-11-01T08:20:00Z"))) == 1
    assert MAX_MISSED == 100
    # then the next tick runs normally
    assert len(created_names(w.reconcile("2026-11-01T09:05:01Z"))) == 1


def test_starting_deadline_bounds_the_catch_up() -> None:
    late = World(schedule(startingDeadlineSeconds=600))
    assert not of(late.reconcile(day(2, minute=11)), CreateExport), "11 minutes late is past a 10-minute deadline"
    assert "lastScheduleTime" not in late.status
    in_time = World(schedule(startingDeadlineSeconds=600))
    assert len(created_names(in_time.reconcile(day(2, minute=9)))) == 1
    # a deadline also bounds the count of missed ticks: 5 hours down, every minute, 5-minute deadline
    busy = World(schedule(schedule="* * * * *", startingDeadlineSeconds=300, created="2026-11-01T00:00:00Z"))
    actions = busy.reconcile("2026-11-01T05:00:30Z")
    assert created_names(actions) == [builders.run_name("nightly-orders", "uid-1", t("2026-11-01T05:00:00Z"))]
    assert "TooManyMissedTimes" not in reasons(actions)


def test_forbid_skips_a_tick_while_a_run_is_active() -> None:
    w = World(schedule())
    w.reconcile(day(2))
    first = w.only_export()["metadata"]["name"]
    w.set_phase(first, "Running")
    actions = w.reconcile(day(3))
    assert not of(actions, CreateExport) and not of(actions, DeleteExport)
    assert reasons(actions) == ["RunSkipped"] and first in of(actions, Event)[0].message
    assert w.status["lastScheduleTime"] == "2026-11-03T02:00:00Z" and w.status["active"] == [first]
    # the skipped tick is not run later when the active run finishes
    w.set_phase(first, "Succeeded", cursor=5)
    assert not of(w.reconcile(day(3, hour=5)), CreateExport)
    assert len(created_names(w.reconcile(day(4)))) == 1


def test_replace_deletes_the_active_run_then_creates_the_new_one() -> None:
    w = World(schedule(concurrencyPolicy="Replace"))
    w.reconcile(day(2))
    first = w.only_export()["metadata"]["name"]
    w.set_phase(first, "Running")
    actions = w.reconcile(day(3))
    assert [type(a) for a in actions][:3] == [DeleteExport, CreateExport, PatchStatus]
    assert of(actions, DeleteExport) == [DeleteExport(first)]
    second = created_names(actions)[0]
    assert list(w.exports) == [second] and w.status["active"] == [second]
    assert [h["name"] for h in w.status["history"]] == [second]
    assert reasons(actions) == ["RunReplaced", "SuccessfulCreate"]


def test_suspend_creates_nothing_but_records_results_and_resumes_with_the_latest_tick() -> None:
    w = World(schedule())
    w.reconcile(day(2))
    first = w.only_export()["metadata"]["name"]
    w.schedule["spec"]["suspend"] = True
    w.schedule["metadata"]["generation"] = 2
    w.set_phase(first, "Succeeded", cursor=41)
    actions = w.reconcile(day(3))
    assert not of(actions, CreateExport) and not of(actions, RequeueAt)
    assert reasons(actions) == ["RunSucceeded"] and w.status["cursor"]["value"] == 41
    ready = {c["type"]: c for c in w.status["conditions"]}["Ready"]
    assert ready["status"] == "True" and ready["reason"] == "Suspended" and ready["observedGeneration"] == 2
    assert "nextScheduleTime" not in w.status and w.status["lastScheduleTime"] == "2026-11-02T02:00:00Z"
    w.reconcile(day(5, hour=12))
    assert len(w.exports) == 1
    w.schedule["spec"]["suspend"] = False
    w.schedule["metadata"]["generation"] = 3
    actions = w.reconcile(day(5, hour=13))
    assert created_names(actions) == [builders.run_name("nightly-orders", "uid-1", t("2026-11-05T02:00:00Z"))]
    assert w.exports[created_names(actions)[0]]["spec"]["cursor"] == 41


def test_history_limits_delete_the_oldest_finished_runs_separately() -> None:
    w = World(schedule(successfulRunsHistoryLimit=2, failedRunsHistoryLimit=1))
    outcomes = ["Succeeded", "Failed", "Succeeded", "Failed", "Succeeded", "Succeeded"]
    names: list[str] = []
    for n, phase in enumerate(outcomes, start=2):
        (name,) = created_names(w.reconcile(day(n)))
        names.append(name)
        w.set_phase(name, phase, cursor=n, completed=day(n, hour=3))
    actions = w.reconcile(day(8))
    deleted = [a.name for a in of(actions, DeleteExport)]
    assert deleted == [names[2]], "the older succeeded runs beyond 2 (and failed beyond 1) are gone, oldest first"
    kept = {x: w.exports[x]["status"]["phase"] for x in names if x in w.exports}
    assert kept == {names[3]: "Failed", names[4]: "Succeeded", names[5]: "Succeeded"}
    history = w.status["history"]
    assert [h["name"] for h in history[1:]] == [names[5], names[4], names[3]], "newest first"
    assert history[0]["phase"] == "Pending" and history[1]["rows"] == 10 and "completedAt" in history[1]
    # a run that is still active is never pruned, with limits of zero
    z = World(schedule(successfulRunsHistoryLimit=0, failedRunsHistoryLimit=0))
    z.reconcile(day(2))
    only = z.only_export()["metadata"]["name"]
    z.set_phase(only, "Running")
    assert not of(z.reconcile(day(2, hour=3)), DeleteExport)
    z.set_phase(only, "Succeeded", cursor=7)
    actions = z.reconcile(day(2, hour=4))
    assert [type(a) for a in actions][:2] == [PatchStatus, DeleteExport], "the cursor is recorded before the delete"
    assert z.exports == {} and z.status["cursor"]["value"] == 7 and z.status["history"] == []


def test_exports_not_owned_by_this_schedule_are_ignored() -> None:
    w = World(schedule())
    stranger = builders.export_body(
        schedule(uid="uid-old"), parse_spec("nightly-orders", schedule()["spec"]), t("2026-11-01T02:00:00Z"), None
    )
    stranger["status"] = {"phase": "Running"}
    w.exports[stranger["metadata"]["name"]] = stranger
    actions = w.reconcile(day(2))
    assert len(created_names(actions)) == 1 and "RunSkipped" not in reasons(actions)
    assert stranger["metadata"]["name"] not in w.status["active"]


def test_a_run_being_deleted_is_not_active() -> None:
    w = World(schedule())
    w.reconcile(day(2))
    first = w.only_export()["metadata"]["name"]
    w.set_phase(first, "Running")
    w.exports[first]["metadata"]["deletionTimestamp"] = day(2, hour=5)
    assert len(created_names(w.reconcile(day(3)))) == 1
    assert first not in w.status["active"]


# ------------------------------------------------------------------------------------------ cursor


def test_the_cursor_is_carried_from_each_succeeded_run_into_the_next() -> None:
    w = World(schedule())
    w.reconcile(day(2))
    first = w.only_export()["metadata"]["name"]
    assert "cursor" not in w.exports[first]["spec"]
    high = {"$type": "datetime", "value": "2026-11-02T01:59:59.999999"}
    w.set_phase(first, "Succeeded", cursor=high, rows=200)
    actions = w.reconcile(day(3))
    assert w.status["cursor"] == {"column": "updated_at", "value": high, "run": first}
    assert w.status["lastSuccessfulRun"] == first and w.status["lastSuccessfulTime"] == "2026-11-02T02:10:00Z"
    second = created_names(actions)[0]
    assert w.exports[second]["spec"]["cursor"] == high
    (done,) = [a for a in of(actions, Event) if a.reason == "RunSucceeded"]
    assert "200 rows" in done.message and "2026-11-02T01:59:59.999999" in done.message
    # a typed value replaces a typed value whole under a merge patch, and a plain one replaces it too
    w.set_phase(second, "Succeeded", cursor=12345, completed=day(3, hour=3))
    third = created_names(w.reconcile(day(4)))[0]
    assert w.status["cursor"] == {"column": "updated_at", "value": 12345, "run": second}
    assert w.exports[third]["spec"]["cursor"] == 12345


def test_a_failed_run_never_moves_the_cursor() -> None:
    w = World(schedule())
    w.reconcile(day(2))
    first = w.only_export()["metadata"]["name"]
    w.set_phase(first, "Succeeded", cursor=100)
    w.reconcile(day(3))
    second = next(x for x in w.exports if x != first)
    w.set_phase(second, "Failed", cursor=999, message="chunk 3: permission denied")
    actions = w.reconcile(day(4))
    assert w.status["cursor"]["value"] == 100 and w.status["lastSuccessfulRun"] == first
    (failed,) = [a for a in of(actions, Event) if a.reason == "RunFailed"]
    assert failed.type == "Warning" and "permission denied" in failed.message
    assert w.exports[created_names(actions)[0]]["spec"]["cursor"] == 100


def test_a_run_with_no_rows_keeps_the_cursor() -> None:
    w = World(schedule(status={"cursor": {"column": "updated_at", "value": 50, "run": "earlier"}}))
    w.reconcile(day(2))
    first = w.only_export()["metadata"]["name"]
    assert w.exports[first]["spec"]["cursor"] == 50
    w.set_phase(first, "Succeeded", cursor=None, rows=0)
    w.reconcile(day(3))
    assert w.status["cursor"] == {"column": "updated_at", "value": 50, "run": "earlier"}


def test_a_changed_cursor_column_restarts_the_cursor_from_scratch() -> None:
    w = World(schedule(status={"cursor": {"column": "updated_at", "value": 50, "run": "earlier"}}))
    w.reconcile(day(2))
    first = w.only_export()["metadata"]["name"]
    w.schedule["spec"]["exportTemplate"]["spec"]["cursorColumn"] = "id"
    w.schedule["metadata"]["generation"] = 2
    # the run created under the old column reports an updated_at cursor: not taken for the id column
    w.set_phase(first, "Succeeded", cursor=77, column="updated_at")
    actions = w.reconcile(day(3))
    assert reasons(actions) == ["CursorReset", "RunSucceeded", "SuccessfulCreate"]
    reset = of(actions, Event)[0]
    assert reset.type == "Warning" and "'updated_at' to 'id'" in reset.message
    assert w.status["cursor"] == {"column": "id"}
    second = created_names(actions)[0]
    assert "cursor" not in w.exports[second]["spec"]
    assert w.exports[second]["spec"]["cursorColumn"] == "id"
    # no second reset event; the next success under the new column sets the cursor
    w.set_phase(second, "Succeeded", cursor=9, column="id", completed=day(3, hour=3))
    actions = w.reconcile(day(4))
    assert "CursorReset" not in reasons(actions)
    assert w.status["cursor"] == {"column": "id", "value": 9, "run": second}


def test_an_older_run_that_succeeds_late_does_not_move_the_cursor_back() -> None:
    w = World(schedule())
    w.reconcile(day(2))
    old = w.only_export()["metadata"]["name"]
    w.set_phase(old, "Failed")
    w.reconcile(day(3))
    new = next(x for x in w.exports if x != old)
    w.set_phase(new, "Succeeded", cursor=300, completed=day(3, hour=3))
    w.reconcile(day(3, hour=4))
    # the user re-runs the old (failed) export by hand and it succeeds
    w.set_phase(old, "Succeeded", cursor=100, completed=day(3, hour=6))
    actions = w.reconcile(day(3, hour=7))
    assert reasons(actions) == ["RunSucceeded"] and "earlier tick" in of(actions, Event)[0].message
    assert w.status["cursor"]["value"] == 300 and w.status["lastSuccessfulRun"] == new


# ------------------------------------------------------------------------------------------ schema


def test_a_schema_change_with_policy_warn_is_reported_and_scheduling_goes_on() -> None:
    w = World(schedule())
    w.reconcile(day(2))
    first = w.only_export()["metadata"]["name"]
    w.set_phase(first, "Succeeded", cursor=1, fingerprint="xxh3:aaaa")
    w.reconcile(day(3))
    assert w.status["schemaFingerprint"] == "xxh3:aaaa" and "schemaChange" not in w.status
    second = next(x for x in w.exports if x != first)
    w.set_phase(second, "Succeeded", cursor=2, fingerprint="xxh3:bbbb", completed=day(3, hour=3))
    actions = w.reconcile(day(4))
    assert "SchemaChanged" in reasons(actions) and len(created_names(actions)) == 1
    assert w.status["schemaFingerprint"] == "xxh3:bbbb"
    change = w.status["schemaChange"]
    assert (change["previous"], change["current"], change["run"]) == ("xxh3:aaaa", "xxh3:bbbb", second)
    assert w.status["cursor"]["value"] == 2, "the changed run was certified: its cursor is taken"
    ready = {c["type"]: c["status"] for c in w.status["conditions"]}
    assert ready == {"Ready": "True", "Reconciling": "False", "Stalled": "False"}


def test_a_schema_change_with_policy_fail_stalls_until_acknowledged() -> None:
    w = World(schedule(schemaChangePolicy="fail", status={"schemaFingerprint": "xxh3:aaaa"}))
    w.reconcile(day(2))
    first = w.only_export()["metadata"]["name"]
    w.set_phase(first, "Succeeded", cursor=5, fingerprint="xxh3:bbbb")
    actions = w.reconcile(day(3))
    assert not of(actions, CreateExport) and not of(actions, RequeueAt)
    (changed,) = [a for a in of(actions, Event) if a.reason == "SchemaChanged"]
    assert (
        changed.type == "Warning"
        and "xxh3:aaaa -> xxh3:bbbb" in changed.message
        and "schemaChangePolicy is fail" in changed.message
    )
    conds = {c["type"]: c for c in w.status["conditions"]}
    assert conds["Stalled"]["status"] == "True" and conds["Stalled"]["reason"] == "SchemaChanged"
    assert conds["Ready"]["status"] == "False" and A_ACK_SCHEMA in w.status["message"]
    assert w.status["cursor"]["value"] == 5 and w.status["schemaChange"]["acknowledged"] is False
    # still stalled at the next tick, and nothing new is reported
    actions = w.reconcile(day(4))
    assert not of(actions, CreateExport) and not reasons(actions)
    # acknowledged by annotation: the most recent tick runs again
    w.schedule["metadata"]["annotations"] = {A_ACK_SCHEMA: "xxh3:bbbb"}
    actions = w.reconcile(day(4, hour=3))
    assert created_names(actions) and w.status["schemaChange"]["acknowledged"] is True
    assert {c["type"]: c["status"] for c in w.status["conditions"]}["Stalled"] == "False"


def test_a_spec_change_acknowledges_a_schema_change_but_a_wrong_annotation_does_not() -> None:
    w = World(schedule(schemaChangePolicy="fail", status={"schemaFingerprint": "xxh3:aaaa"}))
    w.reconcile(day(2))
    w.set_phase(w.only_export()["metadata"]["name"], "Succeeded", cursor=5, fingerprint="xxh3:bbbb")
    w.reconcile(day(3))
    w.schedule["metadata"]["annotations"] = {A_ACK_SCHEMA: "xxh3:aaaa"}
    assert not of(w.reconcile(day(4)), CreateExport)
    w.schedule["spec"]["successfulRunsHistoryLimit"] = 5
    w.schedule["metadata"]["generation"] = 2
    assert created_names(w.reconcile(day(4, hour=3)))


# ------------------------------------------------------------------------------- spec and conditions


def test_an_invalid_spec_stalls_naming_the_field_and_freezes_the_schedule() -> None:
    w = World(schedule())
    w.reconcile(day(2))
    first = w.only_export()["metadata"]["name"]
    w.set_phase(first, "Succeeded", cursor=3)
    w.schedule["spec"]["timeZone"] = "Europe/Atlantis"
    w.schedule["metadata"]["generation"] = 2
    actions = w.reconcile(day(3))
    assert [type(a) for a in actions] == [PatchStatus, Event]
    assert of(actions, Event)[0].reason == "InvalidSpec" and of(actions, Event)[0].type == "Warning"
    conds = {c["type"]: c for c in w.status["conditions"]}
    assert conds["Stalled"]["status"] == "True" and conds["Stalled"]["reason"] == "InvalidSpec"
    assert conds["Stalled"]["message"].startswith("spec.timeZone: ") and conds["Ready"]["status"] == "False"
    assert w.status["observedGeneration"] == 2 and "nextScheduleTime" not in w.status
    assert "cursor" not in w.status and first in w.exports, "frozen: no result taken, nothing pruned"
    assert w.reconcile(day(3, hour=4)) == [], "no repeated event or patch"
    w.schedule["spec"]["timeZone"] = "Europe/Berlin"
    w.schedule["metadata"]["generation"] = 3
    actions = w.reconcile(day(3, hour=5))
    assert w.status["cursor"]["value"] == 3 and {c["type"]: c["status"] for c in w.status["conditions"]} == {
        "Ready": "True",
        "Reconciling": "False",
        "Stalled": "False",
    }


class FieldError(Exception):
    """Shaped like rivet_operator.spec.SpecError: a spec path in `field`, "field: message" as text."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def test_a_template_check_stalls_at_once_naming_the_template_field() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def check(export_name: str, spec: dict[str, Any]) -> None:
        seen.append((export_name, spec))
        if "{foo}" in spec["destination"]["prefix"]:
            raise FieldError("spec.destination.prefix", "unknown placeholder {foo}")

    bad = {**INCREMENTAL, "destination": {"type": "s3", "bucket": "lake", "prefix": "x/{foo}/"}}
    actions = decide(schedule(template_spec=bad), [], t(day(2)), check)
    assert not of(actions, CreateExport)
    (event,) = of(actions, Event)
    assert event.reason == "InvalidSpec"
    assert event.message == "spec.exportTemplate.spec.destination.prefix: unknown placeholder {foo}"
    assert seen[0][0] == "nightly-orders" and seen[0][1]["exportName"] == "nightly-orders"
    assert created_names(decide(schedule(), [], t(day(2)), check))

    def broken(export_name: str, spec: dict[str, Any]) -> None:
        raise RuntimeError("a bug, not a spec error")

    with pytest.raises(RuntimeError):
        decide(schedule(), [], t(day(2)), broken)


def test_a_rejected_create_stalls_until_the_spec_changes() -> None:
    w = World(schedule())
    (body,) = of(w.reconcile(day(2), patch=False), CreateExport)
    w.exports.clear()  # the API server answered 422: nothing was created, and the status patch never ran
    message = 'RivetExport.rivet.dev "x" is invalid: spec.mode: Unsupported value: "weekly"'
    for action in rejected(w.schedule, message, t(day(2))):
        if isinstance(action, PatchStatus):
            w.schedule["status"] = merge(w.schedule.get("status"), action.patch)
    conds = {c["type"]: c for c in w.status["conditions"]}
    assert conds["Stalled"]["status"] == "True" and "Unsupported value" in conds["Stalled"]["message"]
    assert w.status["createError"]["generation"] == 1
    assert w.reconcile(day(2, minute=1)) == [], "no retry of the same create, no repeated event"
    w.schedule["metadata"]["generation"] = 2
    actions = w.reconcile(day(2, minute=2))
    assert created_names(actions) == [body.body["metadata"]["name"]]
    assert "createError" not in w.status
    assert {c["type"]: c["status"] for c in w.status["conditions"]}["Stalled"] == "False"


def test_conditions_carry_observed_generation_and_move_transition_time_only_on_flips() -> None:
    w = World(schedule(created="2026-11-01T10:00:00Z"))
    w.reconcile("2026-11-01T10:00:01Z")
    first = {c["type"]: c for c in w.status["conditions"]}
    assert [c["type"] for c in w.status["conditions"]] == ["Ready", "Reconciling", "Stalled"]
    assert all(
        c["observedGeneration"] == 1 and c["lastTransitionTime"] == "2026-11-01T10:00:01Z" for c in first.values()
    )
    w.reconcile(day(2))
    second = {c["type"]: c for c in w.status["conditions"]}
    assert second["Ready"]["lastTransitionTime"] == "2026-11-01T10:00:01Z"
    assert "active: " in second["Ready"]["message"]
    w.schedule["spec"]["schedule"] = "nonsense"
    w.schedule["metadata"]["generation"] = 2
    w.reconcile(day(2, hour=3))
    third = {c["type"]: c for c in w.status["conditions"]}
    assert third["Ready"]["lastTransitionTime"] == day(2, hour=3) and third["Ready"]["observedGeneration"] == 2
    assert third["Reconciling"]["lastTransitionTime"] == "2026-11-01T10:00:01Z"


def test_a_prefix_without_run_id_warns_when_runs_would_share_it() -> None:
    dated = {**INCREMENTAL, "destination": {"type": "s3", "bucket": "lake", "prefix": "exports/{date}/{export}/"}}
    daily = World(schedule(template_spec=dated))
    assert "PrefixCollision" not in reasons(daily.reconcile(day(1, hour=5)))
    hourly = World(schedule(template_spec=dated, schedule="@hourly"))
    actions = hourly.reconcile(day(1, hour=5))
    (warning,) = [a for a in of(actions, Event) if a.reason == "PrefixCollision"]
    assert "spec.exportTemplate.spec.destination.prefix" in warning.message and "{run_id}" in warning.message
    assert "PrefixCollision" not in reasons(hourly.reconcile(day(1, hour=6))), "once per generation"
    # 23:00 and 01:00 in New York are 04:00 and 06:00 UTC of one date
    twice = World(schedule(template_spec=dated, schedule="0 1,23 * * *", timeZone=NY))
    assert "PrefixCollision" in reasons(twice.reconcile(day(1, hour=5)))
    undated = {**INCREMENTAL, "destination": {"type": "local", "path": "/data/{export}"}}
    assert "PrefixCollision" in reasons(World(schedule(template_spec=undated)).reconcile(day(1, hour=5)))
    forced = {**undated, "force": True}
    assert "PrefixCollision" not in reasons(World(schedule(template_spec=forced)).reconcile(day(1, hour=5)))


def test_dst_days_end_to_end_in_new_york() -> None:
    w = World(
        schedule(schedule="30 2 * * *", timeZone=NY, created="2026-03-06T00:00:00Z", successfulRunsHistoryLimit=10)
    )
    dates: list[str] = []
    now = t("2026-03-06T12:00:00Z")
    for _ in range(6):
        actions = w.reconcile(now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        for body in of(actions, CreateExport):
            dates.append(body.body["metadata"]["annotations"][A_SCHEDULED_AT])
            w.set_phase(body.body["metadata"]["name"], "Succeeded", cursor=len(dates))
        (requeue,) = of(actions, RequeueAt)
        now = requeue.when + dt.timedelta(seconds=2)
    assert dates == [
        "2026-03-06T07:30:00Z",
        "2026-03-07T07:30:00Z",
        "2026-03-08T07:00:00Z",  # 03:00 EDT: the 02:30 of the spring-forward day
        "2026-03-09T06:30:00Z",
        "2026-03-10T06:30:00Z",
        "2026-03-11T06:30:00Z",
    ]
    fall = World(schedule(schedule="30 1 * * *", timeZone=NY, created="2026-10-31T12:00:00Z"))
    made = 0
    for minute in range(0, 24 * 60, 5):  # every 5 minutes across the fall-back day
        now_s = (t("2026-11-01T04:00:00Z") + dt.timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
        made += len(created_names(fall.reconcile(now_s)))
        for name, body in fall.exports.items():
            if "status" not in body:
                fall.set_phase(name, "Succeeded", cursor=1)
    assert made == 1


# --------------------------------------------------------------------------------------------- CRD


def openapi_to_jsonschema(schema: Any) -> Any:
    if isinstance(schema, list):
        return [openapi_to_jsonschema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key == "properties":
            out[key] = {k: openapi_to_jsonschema(v) for k, v in value.items()}
        elif isinstance(value, dict | list) and key not in ("enum", "required", "default"):
            out[key] = openapi_to_jsonschema(value)
        else:
            out[key] = value
    return out


def schema_validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    (version,) = schedule_crd()["spec"]["versions"]
    schema = openapi_to_jsonschema(version["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_crd_shape_columns_and_status_default() -> None:
    crd = schedule_crd()
    assert crd["metadata"]["name"] == "rivetschedules.rivet.dev"
    assert crd["spec"]["names"]["kind"] == "RivetSchedule" and crd["spec"]["scope"] == "Namespaced"
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = [c["name"].upper() for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["SCHEDULE", "TIME ZONE", "SUSPEND", "READY", "ACTIVE", "LAST SCHEDULE", "LAST SUCCESS", "AGE"]
    root = version["schema"]["openAPIV3Schema"]
    assert root["properties"]["status"]["default"] == {"observedGeneration": -1}
    assert root["properties"]["status"]["properties"]["observedGeneration"]["default"] == -1
    spec = root["properties"]["spec"]["properties"]
    assert spec["concurrencyPolicy"]["enum"] == ["Forbid", "Replace"]
    assert spec["schemaChangePolicy"]["enum"] == ["warn", "fail"]
    assert spec["exportTemplate"]["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"] is True


def test_samples_and_statuses_decide_writes_validate_against_the_crd() -> None:
    validator = schema_validator()
    obj = schedule(template_meta={"labels": {"team": "data"}}, timeZone=NY, startingDeadlineSeconds=600)
    assert [e.message for e in validator.iter_errors(obj)] == []
    for bad in ({"concurrencyPolicy": "Allow"}, {"successfulRunsHistoryLimit": -1}, {"startingDeadlineSeconds": 1}):
        assert list(validator.iter_errors(schedule(**bad))), bad
    assert list(validator.iter_errors({**obj, "spec": {"schedule": "@daily"}})), "exportTemplate is required"
    # every status decide() writes fits the status schema (a strict schema would prune the rest silently)
    w = World(schedule(schemaChangePolicy="fail", status={"schemaFingerprint": "xxh3:aaaa"}))
    w.reconcile(day(2))
    name = w.only_export()["metadata"]["name"]
    w.set_phase(name, "Succeeded", cursor={"$type": "decimal", "value": "1.50"}, fingerprint="xxh3:bbbb")
    w.reconcile(day(3))
    assert w.status["schemaChange"] and w.status["cursor"]["value"]["$type"] == "decimal"
    assert [e.message for e in validator.iter_errors(w.schedule)] == []


def test_the_crd_is_a_valid_kubernetes_object() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    kv.validate(schedule_crd(), "1.33.0", strict=True)  # the test bed's minor, as in test_chart.py
    broken = schedule_crd()
    broken["spec"]["versions"][0]["additionalPrinterColumns"][0]["colour"] = "red"
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, "1.33.0", strict=True)
