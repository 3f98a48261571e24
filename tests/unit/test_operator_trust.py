"""What only the operator may write decides what counts as committed, and one run has one definition:
planted ConfigMaps, an edited finalize transport and mid-run edits of the run-defining spec (issue #21), on
the unit tests' API simulator (tests/unit/operator_sim.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

from rivet.contract.fingerprint import ledger_digest
from rivet_operator.controller import export
from rivet_operator.controller.model import Create, Put, WriteLedger
from rivet_operator.controller.outcomes import RUNNING
from rivet_operator.runtime import metrics
from rivet_operator.specs import configmaps, events, names
from tests.unit.operator_sim import Sim, chunk_result, finalize_result, plan_result


def planned(sim: Sim, chunks: int) -> Sim:
    sim.step()
    sim.succeed(sim.jobs_of("plan")[0], plan_result(chunks))
    sim.step()
    return sim


def args_of(sim: Sim, name: str) -> list[str]:
    return list(sim.jobs[name].body["spec"]["template"]["spec"]["containers"][0]["args"])


def commit_running(sim: Sim) -> None:
    for name in sim.jobs_of("chunk"):
        if sim.jobs[name].state == RUNNING:
            sim.succeed(name, chunk_result(int(sim.jobs[name].labels[names.L_CHUNK])))


def forged_ledger_configmap(sim: Sim, chunk: int) -> dict[str, Any]:
    """What a namespace user with ConfigMap rights could plant: our labels, our owner reference, and a
    record that claims a chunk committed with no rows (the attack reproduced on the cluster)."""
    run = sim.status["runId"]
    owner = sim.owner
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.ledger_shard(owner, run, 0),
            "labels": names.labels(owner, run, "ledger"),
            "ownerReferences": [owner.reference()],
        },
        "data": {configmaps.record_key(chunk): json.dumps({"chunk": chunk, "key": None, "rows": 0})},
    }


def test_a_planted_ledger_configmap_never_makes_a_chunk_count_as_committed() -> None:
    sim = planned(Sim(), chunks=3)  # parallelism 2: chunks 1 and 2 running, chunk 3 waits
    forged = forged_ledger_configmap(sim, 3)
    sim.configmaps[forged["metadata"]["name"]] = forged
    sim.step()
    assert sim.status["chunks"]["committed"] == 0
    assert sim.reasons().count("ForeignObjectIgnored") == 1 and sim.status["ignoredObjects"] == [
        forged["metadata"]["name"]
    ]
    for _ in range(4):
        commit_running(sim)
        sim.step()
    chunks_run = {int(sim.jobs[n].labels[names.L_CHUNK]) for n in sim.jobs_of("chunk")}
    assert sim.status["stage"] == "finalizing" and sim.status["chunks"]["committed"] == 3
    assert sim.reasons().count("ForeignObjectIgnored") == 1  # said once, not per reconcile
    records = {k: json.loads(v) for lg in sim.ledgers.values() for k, v in lg["status"]["records"].items()}
    assert records["chunk-000003.json"]["rows"] == 1000 and not chunks_run  # chunk 3 was exported for real


def test_finalize_gets_the_recorded_ledger_and_its_digest_and_a_changed_transport_is_replaced() -> None:
    sim = planned(Sim(), chunks=3)
    while not sim.jobs_of("finalize"):
        commit_running(sim)
        decision = sim.step()
    (fin,) = sim.jobs_of("finalize")
    recorded = {k: v for lg in sim.ledgers.values() for k, v in lg["status"]["records"].items()}
    args = args_of(sim, fin)
    assert args[args.index("--ledger-digest") + 1] == ledger_digest(recorded.items())
    (cm,) = [a.body for a in decision.of(Put)]
    assert cm["data"] == recorded and cm["metadata"]["labels"][names.L_COMPONENT] == "transport"
    ordered = decision.ordered()
    assert ordered.index(next(a for a in ordered if isinstance(a, Put))) < ordered.index(
        next(a for a in ordered if isinstance(a, Create) and a.body["kind"] == "Job")
    )
    # someone edits the transport; finalize refuses it (LedgerMismatch, retryable) and the next attempt
    # gets the recorded ledger again, whatever was written there
    name = cm["metadata"]["name"]
    sim.configmaps[name]["data"]["chunk-000002.json"] = json.dumps({"chunk": 2, "key": None, "rows": 0})
    sim.configmaps[name]["data"]["chunk-000099.json"] = "{}"
    sim.fail(fin, {"ok": False, "error": {"kind": "contract", "message": "ledger changed", "exit_code": 3}})
    sim.step()
    sim.later(3600)
    sim.step()
    (fin2,) = sim.jobs_of("finalize")
    assert fin2 != fin and sim.configmaps[name]["data"] == recorded
    sim.succeed(fin2, finalize_result(3000, 3))
    sim.step()
    assert sim.status["stage"] == "done" and not sim.configmaps  # the transport is a copy: gone once certified


def test_a_mid_run_edit_of_the_source_abandons_the_run_and_never_mixes_definitions() -> None:
    sim = planned(Sim(), chunks=4)
    first_run = sim.status["runId"]
    running = sim.jobs_of("chunk")
    sim.succeed(running[0], chunk_result(1))
    sim.step()
    # admission refuses this edit; an object that predates the rule (or a bypass) must not mix sources
    sim.spec = copy.deepcopy(sim.spec)
    sim.spec["source"]["urlFrom"]["secretKeyRef"]["name"] = "other-db"
    sim.generation = 2
    sim.step()
    assert "RunAbandoned" in sim.reasons() and sim.status["runId"] != first_run
    assert sim.status["stage"] == "starting"  # fenced: the abandoned run's pods must go first
    old_run = names.run_key(first_run)
    assert not [j for j in sim.jobs.values() if j.labels[names.L_RUN] == old_run]
    assert not sim.ledgers  # the abandoned run's records are never certified
    sim.pods_gone()
    sim.step()
    (plan,) = sim.jobs_of("plan")
    env = sim.jobs[plan].body["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "RIVET_SOURCE_URL", "valueFrom": {"secretKeyRef": {"name": "other-db", "key": "url"}}} in env


def test_a_held_run_edited_in_its_source_and_template_is_abandoned_not_continued() -> None:
    """The reproduced case: a refused jobTemplate holds the run (phase Failed, stage still exporting); the
    user then points the source elsewhere and fixes the template. The held run must not go on with the new
    source into the same prefix."""
    sim = planned(Sim(), chunks=4)
    commit_running(sim)
    sim.spec = {**copy.deepcopy(sim.spec), "jobTemplate": {"securityContext": {"runAsUser": 0}}}
    sim.step()
    assert sim.status["phase"] == "Failed" and sim.status["stage"] == "exporting"
    held_run = sim.status["runId"]
    sim.spec = copy.deepcopy(sim.spec)
    sim.spec.pop("jobTemplate")
    sim.spec["source"]["urlFrom"]["secretKeyRef"]["name"] = "other-db"
    sim.step()
    assert sim.status["runId"] != held_run and "RunAbandoned" in sim.reasons()
    chunk_jobs_of_held = [
        j for j in sim.jobs.values() if j.labels[names.L_RUN] == names.run_key(held_run) and j.state == RUNNING
    ]
    assert not chunk_jobs_of_held


def test_every_job_of_a_run_gets_the_config_rendered_when_the_run_started() -> None:
    sim = planned(Sim(), chunks=4)
    config = sim.status["runConfig"]
    sim.spec = {**copy.deepcopy(sim.spec), "source": {**sim.spec["source"], "tuning": {"batchSize": 5000}}}
    commit_running(sim)
    sim.step()
    for name in sim.jobs_of("chunk"):
        env = sim.jobs[name].body["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "RIVET_JOB_CONFIG", "value": config} in env


def test_chunks_in_backoff_hold_their_slots_so_retries_stay_bounded_in_an_outage() -> None:
    """A source outage with many chunks: every chunk fails retryably. Failed chunks waiting out their
    backoff keep their parallelism slot, so no new chunk starts behind them and status.retries never holds
    more chunk entries than parallelism (its CRD map allows 300; parallelism at most 256)."""
    sim = planned(Sim(), chunks=50)  # parallelism 2
    seen_chunks: set[int] = set()
    for _ in range(40):
        for name in sim.jobs_of("chunk"):
            if sim.jobs[name].state == RUNNING:
                seen_chunks.add(int(sim.jobs[name].labels[names.L_CHUNK]))
                sim.fail(name, {"ok": False, "error": {"kind": "source", "message": "down", "exit_code": 3}})
        sim.step()
        retries = sim.status.get("retries") or {}
        assert len([k for k in retries if k.isdigit()]) <= 2
        if sim.status.get("stage") == "failed":
            break
        sim.later(400)
    assert sim.status["stage"] == "failed" and sim.status["reason"] == "RetriesExhausted"
    assert seen_chunks == {1, 2}  # nothing new started while the first two kept failing


def test_a_finalize_attempt_waits_until_the_previous_attempts_pod_is_gone() -> None:
    sim = planned(Sim(), chunks=1)
    while not sim.jobs_of("finalize"):
        commit_running(sim)
        sim.step()
    (fin,) = sim.jobs_of("finalize")
    sim.fail(fin, {"ok": False, "error": {"kind": "destination", "message": "timeout", "exit_code": 3}})
    sim.jobs[fin].pod_active = True  # the Job failed (deadline) but its pod is still terminating
    sim.step()
    sim.later(3600)
    sim.lingering_pods[f"{fin}-pod"] = (names.run_key(sim.status["runId"]), "finalize")
    decision = sim.step()
    assert not sim.jobs_of("finalize") and decision.requeue_after == sim.settings.fence_poll_s
    sim.pods_gone()
    sim.step()
    assert len(sim.jobs_of("finalize")) == 1 and sim.jobs_of("finalize")[0] != fin


def test_a_chunk_retried_again_and_again_is_one_event_whose_count_grows() -> None:
    sim = planned(Sim(), chunks=1)
    (job,) = sim.jobs_of("chunk")
    for _ in range(3):
        sim.fail(job, {"ok": False, "error": {"kind": "source", "message": "down", "exit_code": 3}})
        sim.step()
        sim.later(400)
        sim.step()
        (job,) = sim.jobs_of("chunk")
    retries = [e for e in sim.events if e.reason == "ChunkRetry"]
    assert [e.count for e in retries] == [1, 2, 3] and len({e.series for e in retries}) == 1
    bodies = [events.event(sim.owner, e.reason, e.message, "Warning", "t", e.series, e.count) for e in retries]
    assert len({b["metadata"]["name"] for b in bodies}) == 1 and bodies[-1]["count"] == 3


def test_an_exports_metric_series_go_with_it() -> None:
    metrics.observe_export("ns-gone", "nightly-1", {"chunks": {"committed": 1, "total": 2}, "rowsWritten": 5})
    metrics.RUNS.labels("ns-gone", "nightly-1", "succeeded").inc()
    metrics.DURATION.labels("ns-gone", "nightly-1").set(3)
    before = metrics.series_count()
    metrics.forget_export("ns-gone", "nightly-1")
    assert metrics.series_count() == before - 6  # four gauges of the run, its duration, its outcome
    metrics.forget_export("ns-gone", "nightly-1")  # twice (a second DELETED event) is fine


def test_a_long_run_reads_only_the_ledger_shards_that_can_change() -> None:
    """2,500 chunks (3 shards): while exporting a reconcile reads the shard its running chunks write to, not
    every finished record; the tail and finalize read everything, and the transport holds every record."""
    sim = planned(Sim(), chunks=2_500)
    steps = 0
    while not sim.jobs_of("finalize"):
        commit_running(sim)
        sim.step()
        steps += 1
        assert steps < 2_000
    exporting_reads = [r for r in sim.reads[3:-3] if r is not None]
    assert exporting_reads and max(exporting_reads) <= 2  # never the whole ledger mid-run
    assert sim.status["chunks"]["committedRanges"] == "1-2500" and sim.status["rowsWritten"] == 2_500_000
    assert sim.status["ledger"]["shards"] == {
        "0": {"count": 1000, "rows": 1_000_000, "bytes": 100_000_000},
        "1": {"count": 1000, "rows": 1_000_000, "bytes": 100_000_000},
        "2": {"count": 500, "rows": 500_000, "bytes": 50_000_000},
    }
    (fin,) = sim.jobs_of("finalize")
    recorded = {k: v for lg in sim.ledgers.values() for k, v in lg["status"]["records"].items()}
    assert len(recorded) == 2_500
    args = args_of(sim, fin)
    assert args[args.index("--ledger-digest") + 1] == ledger_digest(recorded.items())
    transport = {k: v for cm in sim.configmaps.values() for k, v in cm["data"].items()}
    assert transport == recorded


def test_a_crash_between_the_ledger_write_and_the_status_neither_loses_nor_double_counts() -> None:
    sim = planned(Sim(), chunks=2_100)
    for _ in range(600):  # well into shard 0
        commit_running(sim)
        sim.step()
    (name, *_) = sim.jobs_of("chunk")
    idx = int(sim.jobs[name].labels[names.L_CHUNK])
    sim.succeed(name, chunk_result(idx))
    decision = export.decide_export(sim.observed(), sim.settings)
    for action in decision.of(WriteLedger):  # the record lands; the operator dies before the status patch
        shard = sim.ledgers.setdefault(action.body["metadata"]["name"], {**action.body, "status": {"records": {}}})
        shard["status"]["records"][action.key] = action.record
    before = sim.status["rowsWritten"]
    sim.step()  # the restarted operator: the Job is still there, so its shard is read
    assert sim.status["rowsWritten"] == before + 1000 and name not in sim.jobs
    while not sim.jobs_of("finalize"):
        commit_running(sim)
        sim.step()
    assert sim.status["rowsWritten"] == 2_100_000 and sim.status["chunks"]["committed"] == 2_100
