"""RivetSchedule on the controller's rails, without a cluster: the adapter from the schedule's pure decide
to the controller's Decision, and the two pure cores driven together, so the contract between them (the
run's spec.cursor and spec.date, the export's status.cursor, phase and schema fingerprint) is exercised
through whole nightly runs in memory. The real-cluster test is tests/e2e/test_schedule.py."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from rivet_operator.controller.model import Create, Delete, Emit, Observed, PatchStatus, Settings
from rivet_operator.controller.schedule import MAX_REQUEUE_S, decide_schedule, needs_visit, rejected
from rivet_operator.specs import names
from rivet_operator.specs.names import Owner
from tests.unit.operator_sim import SPEC, Sim, apply_merge_patch, chunk_result, finalize_result, plan_result

UID = "5c2f8a10-aaaa-4bbb-8ccc-000011112222"
T0 = dt.datetime(2026, 11, 22, 2, 0, 5, tzinfo=dt.UTC)  # 5 s after the 02:00 tick


def template() -> dict[str, Any]:
    spec = json.loads(json.dumps(SPEC))
    for key in ("chunkColumn", "chunkSize", "parallelism"):
        del spec[key]
    spec.update(mode="incremental", cursorColumn="updated_at")
    spec["destination"]["prefix"] = "orders/{date}/"
    return spec


class World:
    """A schedule and the RivetExports it created, each run by the export controller's pure decide."""

    def __init__(self, **spec: Any) -> None:
        self.schedule: dict[str, Any] = {
            "apiVersion": "rivet.dev/v1alpha1",
            "kind": "RivetSchedule",
            "metadata": {
                "name": "orders-nightly",
                "namespace": "analytics",
                "uid": UID,
                "generation": 1,
                "creationTimestamp": "2026-11-21T12:00:00Z",
            },
            "spec": {"schedule": "0 2 * * *", "exportTemplate": {"spec": template()}, **spec},
        }
        self.exports: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, Sim] = {}
        self.events: list[Emit] = []
        self.now = T0

    def observed(self) -> Observed:
        meta = self.schedule["metadata"]
        return Observed(
            owner=Owner("rivet.dev/v1alpha1", "RivetSchedule", meta["name"], UID, "analytics"),
            generation=meta["generation"],
            spec=self.schedule["spec"],
            status=self.schedule.get("status") or {},
            now=self.now,
            body=self.schedule,
            children=tuple(self.export_bodies()),
        )

    def export_bodies(self) -> list[dict[str, Any]]:
        return [{**body, "status": self.runs[name].status} for name, body in self.exports.items()]

    def reconcile(self) -> Any:
        decision = decide_schedule(self.observed(), Settings())
        self.carry_out(decision)
        return decision

    def carry_out(self, decision: Any) -> None:
        for action in decision.ordered():
            if isinstance(action, Create):
                body = json.loads(json.dumps(action.body))
                name = body["metadata"]["name"]
                if name not in self.exports:
                    self.exports[name] = body
                    self.runs[name] = Sim(spec=body["spec"], name=name, uid=f"uid-{name}", now=self.now)
            elif isinstance(action, Delete):
                assert action.plural == "rivetexports"
                self.exports.pop(action.name, None)
                self.runs.pop(action.name, None)
            elif isinstance(action, PatchStatus):
                self.schedule["status"] = apply_merge_patch(self.schedule.get("status") or {}, action.patch)
            elif isinstance(action, Emit):
                self.events.append(action)

    def planned(self, name: str, schema: str = "xxh3:00000000000000bb") -> Sim:
        """Start one created export and let its plan Job succeed with a one-chunk plan of this schema."""
        run = self.runs[name]
        run.now = self.now
        run.step()
        plan = plan_result(1)
        plan["schema_fingerprint"] = schema
        run.succeed(run.jobs_of("plan")[0], plan)
        run.step()
        return run

    def certify(self, name: str, rows: int, max_cursor: Any, schema: str = "xxh3:00000000000000bb") -> Sim:
        """Run one created export to Succeeded through the export controller's own decide."""
        run = self.planned(name, schema)
        (chunk,) = run.jobs_of("chunk")
        run.succeed(chunk, chunk_result(1, rows, max_cursor))
        run.step()
        (fin,) = run.jobs_of("finalize")
        run.succeed(fin, finalize_result(rows, 1))
        run.step()
        assert run.status["phase"] == "Succeeded", run.status
        return run

    def status(self) -> dict[str, Any]:
        return dict(self.schedule.get("status") or {})

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]


def cursor(value: str) -> dict[str, str]:
    return {"$type": "datetime", "value": value}


def test_nightly_incremental_runs_carry_the_certified_cursor_from_one_export_to_the_next() -> None:
    world = World(successfulRunsHistoryLimit=1)
    decision = world.reconcile()
    (first,) = world.exports
    assert isinstance(decision.actions[0], Create) and decision.in_order
    body = world.exports[first]
    assert body["spec"]["date"] == "2026-11-22" and "cursor" not in body["spec"]
    assert body["metadata"]["labels"]["rivet.dev/schedule"] == "orders-nightly"
    assert body["metadata"]["ownerReferences"][0]["uid"] == UID
    assert decision.requeue_after == MAX_REQUEUE_S  # next tick is a day away: look again within the hour
    assert world.status()["active"] == [first]

    # the first run starts from scratch and certifies rows up to 01:00
    run = world.certify(first, 5, cursor("2026-11-22T01:00:00+00:00"))
    chunk_args = next(iter(run.jobs.values()), None)
    assert chunk_args is None  # a finished run leaves no Job behind
    world.now += dt.timedelta(minutes=3)
    world.reconcile()
    st = world.status()
    assert st["cursor"] == {"column": "updated_at", "value": cursor("2026-11-22T01:00:00+00:00"), "run": first}
    assert st["lastSuccessfulRun"] == first and st["active"] == []
    assert "RunSucceeded" in world.reasons()

    # the next night's run starts at that cursor: its chunk Job is given it
    world.now = T0 + dt.timedelta(days=1)
    world.reconcile()
    second = next(n for n in world.exports if n != first)
    assert world.exports[second]["spec"]["cursor"] == cursor("2026-11-22T01:00:00+00:00")
    assert world.exports[second]["spec"]["date"] == "2026-11-23"
    run2 = world.runs[second]
    run2.now = world.now
    run2.step()
    run2.succeed(run2.jobs_of("plan")[0], plan_result(1))
    run2.step()
    (chunk,) = run2.jobs_of("chunk")
    args = " ".join(run2.jobs[chunk].body["spec"]["template"]["spec"]["containers"][0]["args"])
    assert "2026-11-22T01:00:00+00:00" in args
    run2.succeed(chunk, chunk_result(1, 3, cursor("2026-11-23T01:30:00+00:00")))
    run2.step()
    (fin,) = run2.jobs_of("finalize")
    run2.succeed(fin, finalize_result(3, 1))
    run2.step()
    assert run2.status["cursor"]["value"] == cursor("2026-11-23T01:30:00+00:00")

    world.now += dt.timedelta(minutes=3)
    world.reconcile()
    st = world.status()
    assert st["cursor"]["value"] == cursor("2026-11-23T01:30:00+00:00") and st["cursor"]["run"] == second
    # successfulRunsHistoryLimit 1: the first run is pruned, after the status took the second's cursor
    assert list(world.exports) == [second]
    assert [h["name"] for h in st["history"]] == [second]


def test_a_failed_run_keeps_the_cursor_and_the_next_tick_retries_from_it() -> None:
    world = World()
    world.reconcile()
    (first,) = world.exports
    world.certify(first, 5, cursor("2026-11-22T01:00:00+00:00"))
    world.now += dt.timedelta(minutes=1)
    world.reconcile()
    world.now = T0 + dt.timedelta(days=1)
    world.reconcile()
    second = next(n for n in world.exports if n != first)
    run = world.runs[second]
    run.now = world.now
    run.step()
    run.fail(run.jobs_of("plan")[0], {"ok": False, "error": {"kind": "config", "message": "bad", "permanent": True}})
    for _ in range(3):
        run.step()
    assert run.status["phase"] == "Failed", run.status
    world.now += dt.timedelta(minutes=1)
    world.reconcile()
    assert world.status()["cursor"]["run"] == first
    assert "RunFailed" in world.reasons()
    world.now = T0 + dt.timedelta(days=2)
    world.reconcile()
    third = next(n for n in world.exports if n not in (first, second))
    assert world.exports[third]["spec"]["cursor"] == cursor("2026-11-22T01:00:00+00:00")


def test_forbid_skips_a_tick_while_the_run_is_active_and_replace_deletes_it_first() -> None:
    world = World(schedule="*/5 * * * *")
    world.schedule["metadata"]["creationTimestamp"] = "2026-11-22T01:58:00Z"
    world.now = dt.datetime(2026, 11, 22, 2, 0, 1, tzinfo=dt.UTC)
    world.reconcile()
    (first,) = world.exports
    world.runs[first].step()  # the run is Running: its plan Job exists
    world.now += dt.timedelta(minutes=5)
    world.reconcile()
    assert list(world.exports) == [first] and "RunSkipped" in world.reasons()

    replace = World(schedule="*/5 * * * *", concurrencyPolicy="Replace")
    replace.schedule["metadata"]["creationTimestamp"] = "2026-11-22T01:58:00Z"
    replace.now = dt.datetime(2026, 11, 22, 2, 0, 1, tzinfo=dt.UTC)
    replace.reconcile()
    (old,) = replace.exports
    replace.runs[old].step()
    replace.now += dt.timedelta(minutes=5)
    decision = replace.reconcile()
    kinds = [type(a).__name__ for a in decision.ordered()]
    assert kinds[:2] == ["Delete", "Create"]  # the active run goes before its replacement is created
    assert old not in replace.exports and len(replace.exports) == 1


def test_a_run_the_api_server_rejects_stalls_the_schedule_naming_the_template() -> None:
    world = World()
    decision = rejected(world.observed(), "HTTP 422: spec.destination.bucket: Required value")
    world.carry_out(decision)
    st = world.status()
    stalled = next(c for c in st["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and "spec.exportTemplate" in stalled["message"]
    assert st["createError"]["generation"] == 1
    assert [e.reason for e in world.events] == ["InvalidSpec"] and world.events[0].warning
    # the same generation does not try again; a spec edit does
    world.reconcile()
    assert world.exports == {}
    world.schedule["metadata"]["generation"] = 2
    world.reconcile()
    assert len(world.exports) == 1 and "createError" not in world.status()


def test_an_invalid_template_stalls_before_any_run_naming_the_template_field() -> None:
    world = World()
    del world.schedule["spec"]["exportTemplate"]["spec"]["cursorColumn"]
    world.reconcile()
    assert world.exports == {}
    stalled = next(c for c in world.status()["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and "spec.exportTemplate.spec" in stalled["message"]


def test_needs_visit_skips_only_a_schedule_being_deleted() -> None:
    assert needs_visit({"metadata": {"name": "a"}})
    assert not needs_visit({"metadata": {"name": "a", "deletionTimestamp": "2026-11-22T00:00:00Z"}})


def test_run_names_stay_valid_labels_for_the_export_controller() -> None:
    world = World()
    world.schedule["metadata"]["name"] = "warehouse-replication-daily-export-orders-eu-central-1-nightly"
    world.reconcile()
    (name,) = world.exports
    assert len(name) <= 63 and not name.endswith("-")
    run = world.runs[name]
    run.step()
    (plan,) = run.jobs_of("plan")
    assert len(plan) <= 63 and run.jobs[plan].labels[names.L_RUN]


def test_schema_policy_fail_refuses_the_changed_run_before_any_chunk_and_resumes_once_acknowledged() -> None:
    world = World(schemaChangePolicy="fail")
    world.reconcile()
    (first,) = world.exports
    assert "expectedSchemaFingerprint" not in world.exports[first]["spec"]  # nothing known yet
    world.certify(first, 5, cursor("2026-11-22T01:00:00+00:00"), schema="xxh3:000000000000000a")
    world.now += dt.timedelta(minutes=1)
    world.reconcile()
    assert world.status()["schemaFingerprint"] == "xxh3:000000000000000a"

    world.now = T0 + dt.timedelta(days=1)
    world.reconcile()
    second = next(n for n in world.exports if n != first)
    assert world.exports[second]["spec"]["expectedSchemaFingerprint"] == "xxh3:000000000000000a"
    run = world.planned(second, "xxh3:000000000000000b")
    assert run.status["phase"] == "Failed" and run.status["reason"] == "SchemaChanged", run.status
    assert run.jobs_of("chunk") == [] and run.jobs_of("finalize") == []  # nothing exported, nothing certified
    assert run.status["plan"]["schemaFingerprint"] == "xxh3:000000000000000b"

    world.now += dt.timedelta(minutes=1)
    world.reconcile()
    st = world.status()
    stalled = next(c for c in st["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "SchemaChanged"
    assert st["schemaChange"]["current"] == "xxh3:000000000000000b" and not st["schemaChange"]["acknowledged"]
    assert st["cursor"]["run"] == first  # the refused run moved nothing
    assert {"RunFailed", "SchemaChanged"} <= set(world.reasons())

    world.now = T0 + dt.timedelta(days=2)
    world.reconcile()
    assert set(world.exports) == {first, second}  # stalled: no run until acknowledged

    world.schedule["metadata"]["annotations"] = {"rivet.dev/acknowledge-schema": "xxh3:000000000000000b"}
    world.now = T0 + dt.timedelta(days=3)
    world.reconcile()
    third = next(n for n in world.exports if n not in (first, second))
    assert world.exports[third]["spec"]["expectedSchemaFingerprint"] == "xxh3:000000000000000b"
    assert world.exports[third]["spec"]["cursor"] == cursor("2026-11-22T01:00:00+00:00")
    world.certify(third, 4, cursor("2026-11-25T01:00:00+00:00"), schema="xxh3:000000000000000b")
    world.now += dt.timedelta(minutes=1)
    world.reconcile()
    st = world.status()
    assert st["cursor"]["run"] == third
    assert next(c for c in st["conditions"] if c["type"] == "Ready")["status"] == "True"


def test_schema_policy_warn_certifies_the_changed_run_and_reports_it() -> None:
    world = World()
    world.reconcile()
    (first,) = world.exports
    world.certify(first, 5, cursor("2026-11-22T01:00:00+00:00"), schema="xxh3:000000000000000a")
    world.now += dt.timedelta(minutes=1)
    world.reconcile()
    world.now = T0 + dt.timedelta(days=1)
    world.reconcile()
    second = next(n for n in world.exports if n != first)
    assert "expectedSchemaFingerprint" not in world.exports[second]["spec"]
    world.certify(second, 2, cursor("2026-11-23T01:00:00+00:00"), schema="xxh3:000000000000000b")
    world.now += dt.timedelta(minutes=1)
    world.reconcile()
    st = world.status()
    assert st["cursor"]["run"] == second and st["schemaFingerprint"] == "xxh3:000000000000000b"
    assert "SchemaChanged" in world.reasons()
    assert next(c for c in st["conditions"] if c["type"] == "Ready")["status"] == "True"
