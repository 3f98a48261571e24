"""The operator's decide functions, stage by stage and failure by failure, without a cluster: each test
drives tests/unit/operator_sim.py (which applies the decided actions as the API server would)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from rivet_operator.controller import export, validation
from rivet_operator.controller.model import Create, Delete, PatchStatus, Settings, WriteLedger
from rivet_operator.controller.outcomes import RUNNING
from rivet_operator.specs import names
from tests.unit.operator_sim import (
    SPEC,
    Sim,
    chunk_result,
    error,
    finalize_result,
    plan_result,
)


def args_of(sim: Sim, name: str) -> list[str]:
    return list(sim.jobs[name].body["spec"]["template"]["spec"]["containers"][0]["args"])


def planned(sim: Sim, chunks: int = 4) -> Sim:
    sim.step()
    sim.succeed(sim.jobs_of("plan")[0], plan_result(chunks))
    sim.step()
    return sim


# -- planning ----------------------------------------------------------------------------------------


def test_first_visit_starts_a_run_writes_its_config_and_creates_the_plan_job() -> None:
    sim = Sim()
    sim.step()
    st = sim.status
    assert st["stage"] == "planning" and st["runId"] == "orders-20261122t020000" and st["runDate"] == "2026-11-22"
    assert st["observedGeneration"] == 1 and st["phase"] == "Pending"
    assert st["runFingerprint"].startswith("sha256:")
    assert sim.condition("Reconciling")["status"] == "True" and sim.condition("Ready")["status"] == "False"
    assert not sim.configmaps  # the run's config rides in the Jobs' pod template, not in a ConfigMap
    assert "table: public.orders" in st["runConfig"]
    (plan,) = sim.jobs_of("plan")
    env = sim.jobs[plan].body["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "RIVET_JOB_CONFIG", "value": st["runConfig"]} in env
    assert args_of(sim, plan)[:2] == ["plan", "-e"] and "--check-destination" in args_of(sim, plan)
    assert sim.jobs[plan].body["metadata"]["ownerReferences"][0]["uid"] == sim.uid
    assert "RunStarted" in sim.reasons()
    assert sim.last is not None and sim.last.requeue_after == sim.settings.active_requeue_s


def test_plan_is_stored_verbatim_and_chunk_jobs_start_within_parallelism() -> None:
    sim = planned(Sim(), chunks=4)
    st = sim.status
    assert st["stage"] == "exporting" and st["plan"]["chunkCount"] == 4 and st["resolvedPrefix"].startswith("s3://")
    assert json.loads(st["plan"]["document"]) == plan_result(4)
    assert sim.jobs_of("plan") == []  # read, then deleted
    chunks = sim.jobs_of("chunk")
    assert len(chunks) == 2  # parallelism
    args = args_of(sim, chunks[0])
    assert args[args.index("--plan") + 1] == st["plan"]["document"] and args[args.index("--chunk") + 1] == "1"
    assert "Planned" in sim.reasons() and st["phase"] == "Running"


def test_a_chunk_record_reaches_the_ledger_before_its_job_is_deleted() -> None:
    sim = planned(Sim())
    first = sim.jobs_of("chunk")[0]
    sim.succeed(first, chunk_result(1))
    ordered = sim.step().ordered()
    ledger_at = next(i for i, a in enumerate(ordered) if isinstance(a, WriteLedger))
    status_at = next(i for i, a in enumerate(ordered) if isinstance(a, PatchStatus))
    delete_at = next(i for i, a in enumerate(ordered) if isinstance(a, Delete) and a.name == first)
    assert ledger_at < status_at < delete_at
    assert not sim.configmaps  # records go to the operator's own kind only
    (shard,) = sim.ledgers.values()
    assert shard["kind"] == "RivetLedger" and shard["metadata"]["ownerReferences"][0]["uid"] == sim.uid
    record = json.loads(shard["status"]["records"]["chunk-000001.json"])
    assert record["rows"] == 1000 and "decision" not in record and "resolved_prefix" not in record
    assert sim.status["chunks"]["committed"] == 1 and sim.status["rowsWritten"] == 1000


def test_happy_path_certifies_and_leaves_no_job() -> None:
    sim = Sim()
    sim.run_to_success(chunks=4)
    st = sim.status
    assert st["stage"] == "done" and st["phase"] == "Succeeded" and st["reason"] == "Succeeded"
    assert st["manifest"] == {"fingerprint": "xxh3:00000000000000cc", "partCount": 4, "rowCount": 4000}
    assert st["chunks"]["committedRanges"] == "1-4" and st["success"] == "xxh3:00000000000000cc"
    assert sim.condition("Ready")["status"] == "True" and sim.condition("Stalled")["status"] == "False"
    assert sim.jobs == {}
    assert {"RunStarted", "Planned", "ChunksCommitted", "Succeeded"} <= set(sim.reasons())
    assert sim.last is not None and sim.last.requeue_after is None  # a finished object asks for nothing
    assert len(sim.ledgers) == 1  # the ledger stays as the run's record; its finalize transport is gone
    assert not sim.configmaps


def test_finalize_gets_every_ledger_shard_and_the_plan() -> None:
    sim = Sim()
    sim.step()
    sim.succeed(sim.jobs_of("plan")[0], plan_result(0))
    sim.step()  # no chunks: straight to finalize, with an empty ledger directory
    (fin,) = sim.jobs_of("finalize")
    pod = sim.jobs[fin].body["spec"]["template"]["spec"]
    assert {"name": "ledger", "emptyDir": {}} in pod["volumes"]
    args = args_of(sim, fin)
    assert args[args.index("--expect-chunks") + 1] == "0" and "--plan" in args


# -- failures ----------------------------------------------------------------------------------------


def test_retryable_chunk_failure_backs_off_exponentially_up_to_the_cap() -> None:
    sim = planned(Sim(spec={**copy.deepcopy(SPEC), "maxChunkRetries": 8}), chunks=1)
    delays = []
    for attempt in range(1, 8):
        (job,) = [n for n in sim.jobs_of("chunk") if sim.jobs[n].labels[names.L_CHUNK] == "1"]
        assert sim.jobs[job].labels[names.L_ATTEMPT] == str(attempt)
        sim.fail(job, error("connection reset", exit_code=3))
        decision = sim.step()
        entry = sim.status["retries"]["1"]
        assert entry["attempts"] == attempt and "connection reset" in entry["lastError"]
        delays.append(decision.requeue_after)
        assert not [n for n in sim.jobs_of("chunk") if sim.jobs[n].labels[names.L_CHUNK] == "1"]
        sim.later(delays[-1] - 1)
        sim.step()
        assert not [n for n in sim.jobs_of("chunk") if sim.jobs[n].labels[names.L_CHUNK] == "1"], "retried early"
        sim.later(1)
        sim.step()
    assert delays == [10, 20, 40, 80, 160, 300, 300]
    assert sim.reasons().count("ChunkRetry") == 7 and sim.status["phase"] == "Running"


def test_backoff_function_doubles_from_the_base_and_stops_at_the_cap() -> None:
    s = Settings(retry_base_s=10, retry_cap_s=300)
    assert [s.backoff(n) for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]


def test_permanent_chunk_failure_stalls_at_once_and_cancels_the_runs_other_jobs() -> None:
    sim = planned(Sim())
    first, second = sim.jobs_of("chunk")
    sim.fail(first, error("division by zero", exit_code=1, reason="QueryFailed"))
    sim.step()
    st = sim.status
    assert st["stage"] == "failed" and st["phase"] == "Failed" and st["reason"] == "QueryFailed"
    assert sim.condition("Stalled")["status"] == "True" and "chunk 1 failed: division by zero" in st["message"]
    assert first in sim.jobs and second not in sim.jobs  # evidence kept, the running one cancelled
    assert sim.last is not None and sim.last.requeue_after is None
    assert "QueryFailed" in sim.reasons()


@pytest.mark.parametrize(
    ("err", "exit_code", "permanent"),
    [
        (error("x", exit_code=3), 3, False),
        (error("x", exit_code=1), 1, True),
        (error("x", exit_code=4), 4, True),
        (error("x", exit_code=5), 5, True),
        (error("x", permanent=False), 1, False),  # an engine without exit codes in the JSON
        (error("x", permanent=True), 1, True),
        (None, 137, False),  # OOMKilled, no message: infrastructure
        (None, 2, True),  # usage error without a message
    ],
)
def test_failures_are_classified_by_the_engines_exit_codes(err: Any, exit_code: int, permanent: bool) -> None:
    sim = planned(Sim())
    first = sim.jobs_of("chunk")[0]
    sim.fail(first, err, detail="OOMKilled (exit 137)", exit_code=exit_code)
    sim.step()
    assert (sim.status["stage"] == "failed") is permanent


def test_schema_drift_stalls_with_its_reason() -> None:
    sim = planned(Sim())
    sim.fail(sim.jobs_of("chunk")[0], error("the source schema changed", exit_code=5))
    sim.step()
    assert sim.status["reason"] == "SchemaDrift"


def test_retries_run_out_after_max_chunk_retries() -> None:
    sim = planned(Sim(spec={**copy.deepcopy(SPEC), "maxChunkRetries": 1}), chunks=1)
    for _ in range(2):
        job = next(n for n in sim.jobs_of("chunk") if sim.jobs[n].labels[names.L_CHUNK] == "1")
        sim.fail(job, error("timeout", exit_code=3))
        sim.step()
        sim.later(60)
        sim.step()
    assert sim.status["stage"] == "failed" and sim.status["reason"] == "RetriesExhausted"
    assert "after 2 attempts" in sim.status["message"]


def test_a_failure_is_counted_once_however_often_it_is_seen() -> None:
    sim = planned(Sim())
    first = sim.jobs_of("chunk")[0]
    sim.fail(first, error("reset", exit_code=3))
    failed = copy.deepcopy(sim.jobs[first])
    sim.step()
    sim.jobs[first] = failed  # the deletion is not visible yet: the next reconcile sees the Job again
    sim.step()
    assert sim.status["retries"]["1"]["attempts"] == 1
    assert first not in sim.jobs and sim.reasons().count("ChunkRetry") == 1


def test_plan_failure_is_retried_then_a_permanent_one_stalls() -> None:
    sim = Sim()
    sim.step()
    sim.fail(sim.jobs_of("plan")[0], error("unreachable", exit_code=3))
    sim.step()
    assert sim.status["retries"]["plan"]["attempts"] == 1 and sim.jobs_of("plan") == []
    assert sim.condition("Reconciling")["reason"] == "Retrying"
    sim.later(10)
    sim.step()
    (plan,) = sim.jobs_of("plan")
    assert plan.endswith("-plan-2")
    sim.fail(plan, error("_SUCCESS exists", exit_code=1, reason="SuccessMarkerPresent"))
    sim.step()
    assert sim.status["reason"] == "SuccessMarkerPresent" and sim.status["phase"] == "Failed"


def test_finalize_failure_is_retried_and_then_certifies() -> None:
    sim = Sim()
    sim.step()
    sim.succeed(sim.jobs_of("plan")[0], plan_result(1))
    sim.step()
    sim.succeed(sim.jobs_of("chunk")[0], chunk_result(1))
    sim.step()
    (fin,) = sim.jobs_of("finalize")
    sim.fail(fin, error("store unavailable", exit_code=3))
    sim.step()
    sim.later(10)
    sim.step()
    (fin2,) = sim.jobs_of("finalize")
    assert fin2.endswith("-fin-2")
    sim.succeed(fin2, finalize_result(1000, 1))
    sim.step()
    assert sim.status["phase"] == "Succeeded" and sim.status.get("retries") is None


# -- edits, suspend, restart -----------------------------------------------------------------------


def test_parallelism_edit_applies_to_the_run_in_flight() -> None:
    sim = planned(Sim(), chunks=6)
    run = sim.status["runId"]
    sim.spec["parallelism"] = 4
    sim.generation = 2
    sim.step()
    assert len(sim.jobs_of("chunk")) == 4 and sim.status["runId"] == run
    assert sim.status["observedGeneration"] == 2
    assert all(c["observedGeneration"] == 2 for c in sim.status["conditions"])


@pytest.mark.parametrize(
    "edit",
    [
        {"parallelism": 8},
        {"maxChunkRetries": 5},
        {"suspend": True},
        {"jobTemplate": {"resources": {"limits": {"memory": "2Gi"}}, "labels": {"team": "a"}}},
        {"env": [{"name": "TZ", "value": "UTC"}]},
        {"envFrom": []},
        {"verify": "content"},
        {"force": True},
        {"source": {**SPEC["source"], "tuning": {"batchSize": 10}}},
    ],
    ids=lambda e: next(iter(e)),
)
def test_an_edit_that_changes_nothing_about_the_data_starts_no_run(edit: dict[str, Any]) -> None:
    sim = Sim()
    sim.run_to_success(chunks=2)
    run = sim.status["runId"]
    sim.spec.update(edit)
    sim.generation = 2
    decision = sim.step()
    assert sim.status["runId"] == run and sim.status["phase"] == "Succeeded" and sim.jobs == {}
    assert sim.status["observedGeneration"] == 2 and sim.condition("Ready")["observedGeneration"] == 2
    assert not decision.of(Create) and decision.requeue_after is None
    assert not export.needs_visit(
        {"metadata": {"name": "orders", "generation": 2}, "spec": sim.spec, "status": sim.status}
    )


def test_a_run_defining_edit_starts_a_new_run_and_says_so() -> None:
    sim = Sim()
    sim.run_to_success(chunks=2)
    old = sim.status["runId"]
    sim.later(3600)
    sim.spec["table"] = "public.orders_v2"
    sim.generation = 2
    sim.step()
    assert sim.status["runId"] != old and sim.status["stage"] == "planning"
    assert "SpecChanged" in sim.reasons() and sim.status["runGeneration"] == 2
    assert "public.orders_v2" in sim.status["runConfig"] and not sim.ledgers  # the earlier run's ledger went


def test_a_new_run_waits_until_the_earlier_runs_jobs_and_pods_are_gone() -> None:
    sim = planned(Sim())
    first, _second = sim.jobs_of("chunk")
    sim.fail(first, error("division by zero", exit_code=1))
    sim.step()  # stalled: chunk 2 cancelled, but its pod is still terminating
    assert sim.lingering_pods
    sim.spec["query"] = "SELECT * FROM public.orders"
    del sim.spec["table"]
    sim.generation = 2
    sim.later(60)
    decision = sim.step()
    assert first not in sim.jobs  # the earlier run's failed Job: deleted (propagation Background)
    assert sim.status["stage"] == "starting" and sim.condition("Reconciling")["reason"] == "Fencing"
    assert sim.jobs_of("plan") == [] and decision.requeue_after == sim.settings.fence_poll_s
    assert not [
        cm
        for cm in sim.configmaps.values()
        if cm["metadata"]["labels"][names.L_RUN] != names.run_key(sim.status["runId"])
    ]
    sim.step()
    assert sim.jobs_of("plan") == []  # still a pod of the earlier run
    sim.pods_gone()
    sim.step()
    assert len(sim.jobs_of("plan")) == 1 and sim.status["stage"] == "planning"


def test_suspend_starts_no_new_chunk_job_and_resume_continues() -> None:
    sim = planned(Sim(), chunks=4)
    sim.spec["suspend"] = True
    for name in sim.jobs_of("chunk"):
        sim.succeed(name, chunk_result(int(sim.jobs[name].labels[names.L_CHUNK])))
    sim.step()
    assert sim.jobs_of("chunk") == [] and sim.status["phase"] == "Suspended"
    assert sim.status["chunks"]["committed"] == 2
    sim.spec["suspend"] = False
    sim.step()
    assert len(sim.jobs_of("chunk")) == 2 and sim.status["phase"] == "Running"


def test_a_suspended_new_export_starts_no_run() -> None:
    sim = Sim(spec={**copy.deepcopy(SPEC), "suspend": True})
    sim.step()
    assert sim.status["phase"] == "Suspended" and not sim.jobs and "runId" not in sim.status


def test_an_operator_restart_mid_run_continues_without_repeating_work() -> None:
    sim = planned(Sim(), chunks=5)
    a, _b = sim.jobs_of("chunk")
    sim.succeed(a, chunk_result(1))
    sim.step()  # chunk 1 recorded; chunks 2 and 3 running
    # a restarted operator has nothing but the cluster: the same status, ledger and Jobs
    restarted = Sim(
        status=copy.deepcopy(sim.status),
        jobs=copy.deepcopy(sim.jobs),
        configmaps=copy.deepcopy(sim.configmaps),
        ledgers=copy.deepcopy(sim.ledgers),
        now=sim.now,
    )
    decision = restarted.step()
    assert not decision.of(Create) and not decision.of(WriteLedger)
    assert restarted.status.get("chunks") == sim.status["chunks"]
    for name in restarted.jobs_of("chunk"):
        restarted.succeed(name, chunk_result(int(restarted.jobs[name].labels[names.L_CHUNK])))
    restarted.step()
    assert restarted.status["chunks"]["committed"] == 3 and len(restarted.jobs_of("chunk")) == 2


def test_rerun_annotation_starts_one_new_run_per_value() -> None:
    sim = Sim()
    sim.run_to_success(chunks=1)
    first = sim.status["runId"]
    sim.later(60)
    sim.annotations["rivet.dev/rerun"] = "2026-11-23"
    sim.step()
    assert sim.status["runId"] != first and sim.status["rerun"] == "2026-11-23" and "RerunRequested" in sim.reasons()
    sim.jobs.clear()
    sim.status["stage"] = "done"
    assert export.wants_new_run("orders", 1, sim.spec, sim.status, sim.annotations) is None


def test_force_lets_a_run_refused_by_success_marker_replace_it() -> None:
    sim = Sim()
    sim.step()
    sim.fail(sim.jobs_of("plan")[0], error("_SUCCESS present", exit_code=1, reason="SuccessMarkerPresent"))
    sim.step()
    assert sim.status["reason"] == "SuccessMarkerPresent"
    sim.spec["force"] = True
    sim.generation = 2
    sim.later(5)
    sim.step()
    assert sim.status["stage"] == "planning" and "ForcedRun" in sim.reasons()
    assert "--force" in args_of(sim, sim.jobs_of("plan")[0])


def test_a_status_from_before_fingerprints_does_not_rerun_a_finished_export() -> None:
    status = {"runId": "orders-1", "runGeneration": 3, "stage": "done", "phase": "Succeeded", "observedGeneration": 3}
    assert export.wants_new_run("orders", 3, SPEC, status, {}) is None
    assert export.wants_new_run("orders", 4, SPEC, status, {}) == "spec"


# -- incremental cursors ---------------------------------------------------------------------------

INCREMENTAL: dict[str, Any] = {
    **{k: v for k, v in SPEC.items() if k not in ("chunkColumn", "chunkSize", "parallelism")},
    "mode": "incremental",
    "cursorColumn": "updated_at",
}


def run_incremental(sim: Sim, max_cursor: Any, rows: int = 10) -> None:
    sim.step()
    sim.succeed(sim.jobs_of("plan")[0], plan_result(1))
    sim.step()
    (chunk,) = sim.jobs_of("chunk")
    sim.succeed(chunk, chunk_result(1, rows, max_cursor))
    sim.step()
    (fin,) = sim.jobs_of("finalize")
    sim.succeed(fin, finalize_result(rows, 1 if rows else 0))
    sim.step()


def test_incremental_runs_pass_the_last_certified_cursor_and_advance_it_after_certification() -> None:
    sim = Sim(spec=copy.deepcopy(INCREMENTAL))
    first_max = {"$type": "datetime", "value": "2026-11-22T01:00:00+00:00"}
    run_incremental(sim, first_max)
    first = sim.status["runId"]
    assert sim.status["cursor"] == {"column": "updated_at", "value": first_max, "runId": first}
    sim.later(86400)
    sim.annotations["rivet.dev/rerun"] = "next"
    sim.step()
    sim.succeed(sim.jobs_of("plan")[0], plan_result(1))
    sim.step()
    (chunk,) = sim.jobs_of("chunk")
    args = args_of(sim, chunk)
    assert json.loads(args[args.index("--cursor") + 1]) == first_max
    # before certification the cursor has not moved, whatever the chunk saw
    sim.succeed(chunk, chunk_result(1, 11, {"$type": "datetime", "value": "2026-11-23T01:00:00+00:00"}))
    sim.step()
    assert sim.status["cursor"]["value"] == first_max
    (fin,) = sim.jobs_of("finalize")
    assert json.loads(args_of(sim, fin)[args_of(sim, fin).index("--cursor") + 1]) == first_max
    sim.succeed(fin, finalize_result(11, 1))
    sim.step()
    assert sim.status["cursor"]["value"] == {"$type": "datetime", "value": "2026-11-23T01:00:00+00:00"}
    assert sim.status["cursor"]["runId"] != first


def test_a_run_without_rows_keeps_the_cursor() -> None:
    sim = Sim(spec=copy.deepcopy(INCREMENTAL))
    run_incremental(sim, 41)
    kept = copy.deepcopy(sim.status["cursor"])
    sim.annotations["rivet.dev/rerun"] = "again"
    sim.later(60)
    run_incremental(sim, None, rows=0)
    assert sim.status["cursor"] == kept


def test_cursor_values_compare_by_type_not_as_text() -> None:
    records = [{"max_cursor": 9}, {"max_cursor": 10}, {"max_cursor": None}]
    assert export.advance_cursor({"column": "id", "value": 2}, records, "r")["value"] == 10  # type: ignore[index]
    dates = [
        {"max_cursor": {"$type": "date", "value": "2026-01-09"}},
        {"max_cursor": {"$type": "date", "value": "2026-01-10"}},
    ]
    assert export.advance_cursor(None, dates, "r")["value"]["value"] == "2026-01-10"  # type: ignore[index]


def test_a_changed_cursor_column_starts_from_scratch_with_an_event() -> None:
    sim = Sim(spec=copy.deepcopy(INCREMENTAL))
    run_incremental(sim, 41)
    sim.spec["cursorColumn"] = "id"
    sim.generation = 2
    sim.later(60)
    sim.step()
    assert sim.status["cursor"] == {"column": "id"}  # value and runId null: dropped by the merge patch
    assert "CursorReset" in sim.reasons()
    sim.succeed(sim.jobs_of("plan")[0], plan_result(1))
    sim.step()
    assert "--cursor" not in args_of(sim, sim.jobs_of("chunk")[0])


# -- refusals ------------------------------------------------------------------------------------


def test_an_invalid_spec_stalls_naming_the_field_and_starts_nothing() -> None:
    sim = Sim(spec={**copy.deepcopy(SPEC), "destination": {**SPEC["destination"], "prefix": "x/{exprot}/"}})
    sim.step()
    assert sim.status["phase"] == "Failed" and sim.status["reason"] == "InvalidSpec"
    assert "spec.destination.prefix" in sim.status["message"] and not sim.jobs and not sim.configmaps
    sim.step()
    assert sim.reasons().count("InvalidSpec") == 1  # announced once
    sim.spec["destination"]["prefix"] = "x/{export}/"
    sim.generation = 2
    sim.step()
    assert sim.status["stage"] == "planning" and sim.condition("Stalled")["status"] == "False"


def test_a_host_path_job_template_is_refused_naming_the_field() -> None:
    spec = {**copy.deepcopy(SPEC), "jobTemplate": {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}}
    sim = Sim(spec=spec)
    sim.step()
    assert sim.status["reason"] == "JobTemplateRefused" and not sim.jobs
    assert sim.condition("Stalled")["message"].startswith("spec.jobTemplate.volumes[0].hostPath:")


def test_a_template_refused_mid_run_holds_the_run_until_it_is_fixed() -> None:
    sim = planned(Sim(), chunks=4)
    run = sim.status["runId"]
    for name in sim.jobs_of("chunk"):
        sim.succeed(name, chunk_result(int(sim.jobs[name].labels[names.L_CHUNK])))
    sim.spec["jobTemplate"] = {"securityContext": {"runAsUser": 0}}
    sim.generation = 2
    sim.step()
    assert sim.jobs_of("chunk") == [] and sim.status["phase"] == "Failed"
    assert sim.status["reason"] == "JobTemplateRefused" and sim.status["chunks"]["committed"] == 2
    sim.spec["jobTemplate"] = {}
    sim.generation = 3
    sim.step()
    assert len(sim.jobs_of("chunk")) == 2 and sim.status["runId"] == run and sim.status["phase"] == "Running"


# -- the event filter ------------------------------------------------------------------------------


def test_finished_unchanged_objects_are_not_worth_a_reconcile() -> None:
    sim = Sim()
    sim.run_to_success(chunks=1)
    body = {"metadata": {"name": "orders", "generation": 1}, "spec": sim.spec, "status": sim.status}
    assert not export.needs_visit(body)
    assert export.needs_visit({**body, "metadata": {"name": "orders", "generation": 2}})
    assert export.needs_visit(
        {**body, "metadata": {"name": "orders", "generation": 1, "annotations": {"rivet.dev/rerun": "x"}}}
    )
    assert export.needs_visit({"metadata": {"name": "orders", "generation": 1}, "spec": SPEC, "status": {}})
    deleting = {**body, "metadata": {"name": "orders", "generation": 2, "deletionTimestamp": "now"}}
    assert not export.needs_visit(deleting)


def test_jobs_left_by_a_finished_run_are_cleaned() -> None:
    sim = Sim()
    sim.run_to_success(chunks=1)
    leftover = copy.deepcopy(next(iter(sim.ledgers.values())))  # any body with our labels will do
    leftover["kind"], leftover["metadata"]["name"] = "Job", "orders-leftover-c1-1"
    from tests.unit.operator_sim import SimJob

    sim.jobs["orders-leftover-c1-1"] = SimJob(leftover, state="succeeded")
    sim.step()
    assert sim.jobs == {}


# -- RivetValidation -------------------------------------------------------------------------------

VALIDATION: dict[str, Any] = {"exportRef": {"name": "orders"}, "envFrom": [{"secretRef": {"name": "lake"}}]}
VERDICT = {
    "exports": [
        {
            "export_name": "orders",
            "resolved_prefix": "s3://lake/p/",
            "verification": {"manifest_found": True, "passed": True, "parts_verified": 4, "parts_md5_verified": 4},
        }
    ],
    "errors": [],
}


def validation_sim(**spec: Any) -> Sim:
    export_body = {"spec": copy.deepcopy(SPEC), "status": {"resolvedPrefix": "s3://lake/p/"}}
    return Sim(kind="RivetValidation", name="check", spec={**VALIDATION, **spec}, export=export_body)


def test_validation_reads_its_verdict_and_deletes_the_job_pass_or_fail() -> None:
    sim = validation_sim()
    sim.step()
    (job,) = sim.jobs_of("validate")
    args = args_of(sim, job)
    assert args[:2] == ["validate", "-e"] and args[args.index("--prefix") + 1] == "s3://lake/p/"
    container = sim.jobs[job].body["spec"]["template"]["spec"]["containers"][0]
    assert not [e for e in container["env"] if e["name"] == "RIVET_SOURCE_URL"]  # destination credentials only
    sim.succeed(job, VERDICT)
    sim.step()
    assert sim.status["phase"] == "Succeeded" and sim.status["passed"] is True and sim.jobs == {}
    failed = validation_sim()
    failed.step()
    failed.fail(failed.jobs_of("validate")[0], None, detail="OOMKilled", exit_code=137)
    failed.step()
    assert failed.status["phase"] == "Failed" and failed.status["reason"] == "ValidationError" and failed.jobs == {}


def test_an_interval_validation_runs_again_without_piling_up_jobs() -> None:
    sim = validation_sim(interval=300)
    runs = set()
    for _ in range(3):
        sim.step()
        (job,) = sim.jobs_of("validate")
        runs.add(sim.status["runId"])
        sim.fail(job, None, detail="pod failed", exit_code=1)
        decision = sim.step()
        assert sim.jobs == {} and decision.requeue_after == 300
        sim.later(299)
        assert sim.step().requeue_after == pytest.approx(1)
        sim.later(1)
    assert len(runs) == 3 and not sim.configmaps and len(sim.jobs) == 0


def test_a_validation_of_a_missing_export_fails_naming_it() -> None:
    sim = validation_sim()
    sim.export = None
    sim.step()
    assert sim.status["reason"] == "ExportNotFound" and "spec.exportRef.name" in sim.status["message"]
    assert validation.needs_visit({"metadata": {"generation": 1}, "spec": VALIDATION, "status": sim.status})


def test_running_jobs_are_never_deleted_by_a_healthy_run() -> None:
    sim = planned(Sim(), chunks=4)
    decision = sim.step()
    running = {n for n, j in sim.jobs.items() if j.state == RUNNING}
    assert not [a for a in decision.of(Delete) if a.name in running]


def test_spec_cursor_starts_the_first_run_and_status_cursor_the_later_ones() -> None:
    start = {"$type": "datetime", "value": "2026-11-21T00:00:00+00:00"}
    sim = Sim(spec={**copy.deepcopy(INCREMENTAL), "cursor": start})
    sim.step()
    assert sim.status["cursor"] == {"column": "updated_at", "value": start}
    sim.succeed(sim.jobs_of("plan")[0], plan_result(1))
    sim.step()
    args = args_of(sim, sim.jobs_of("chunk")[0])
    assert json.loads(args[args.index("--cursor") + 1]) == start
    sim.jobs.clear()
    sim.status.update(stage="done", cursor={"column": "updated_at", "value": 7, "runId": "r1"})
    sim.annotations["rivet.dev/rerun"] = "again"
    sim.later(60)
    sim.step()
    assert sim.status["cursor"]["value"] == 7  # the object's own certified cursor wins over spec.cursor
