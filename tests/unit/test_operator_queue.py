"""The operator's work queue and event routing: de-duplication, one worker per key, delayed requeues,
and finished objects filtered out at the event."""

from __future__ import annotations

import asyncio
from typing import Any

from rivet_operator.runtime.queue import WorkQueue


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_a_burst_of_events_for_one_key_is_processed_once() -> None:
    async def main() -> list[str]:
        q: WorkQueue[str] = WorkQueue()
        seen: list[str] = []

        async def process(key: str) -> None:
            seen.append(key)

        for _ in range(50):
            q.add("a")
        q.add("b")
        worker = asyncio.create_task(q.run_worker(process))
        await asyncio.sleep(0.05)
        worker.cancel()
        return seen

    assert run(main()) == ["a", "b"]


def test_a_key_is_never_processed_by_two_workers_at_once_and_an_add_meanwhile_runs_it_again() -> None:
    async def main() -> tuple[int, int]:
        q: WorkQueue[str] = WorkQueue()
        active = peak = calls = 0

        async def process(key: str) -> None:
            nonlocal active, peak, calls
            active += 1
            calls += 1
            peak = max(peak, active)
            if calls == 1:
                q.add("a")  # an event while the first pass runs
            await asyncio.sleep(0.02)
            active -= 1

        q.add("a")
        workers = [asyncio.create_task(q.run_worker(process)) for _ in range(4)]
        await asyncio.sleep(0.2)
        for w in workers:
            w.cancel()
        return peak, calls

    assert run(main()) == (1, 2)


def test_delayed_requeues_fire_after_their_delay_and_earlier_adds_win() -> None:
    async def main() -> list[tuple[str, float]]:
        clock = [0.0]
        q: WorkQueue[str] = WorkQueue(clock=lambda: clock[0])
        seen: list[tuple[str, float]] = []

        async def process(key: str) -> None:
            seen.append((key, clock[0]))

        timer = asyncio.create_task(q.run_timer())
        worker = asyncio.create_task(q.run_worker(process))
        q.add("slow", 30)
        q.add("fast", 5)
        q.add("fast", 20)  # a later delay does not postpone an earlier one
        await asyncio.sleep(0.01)
        assert seen == [] and len(q) == 2
        clock[0] = 6
        q._wake.set()
        await asyncio.sleep(0.01)
        clock[0] = 31
        q._wake.set()
        await asyncio.sleep(0.01)
        timer.cancel()
        worker.cancel()
        return seen

    assert run(main()) == [("fast", 6), ("slow", 31)]


def test_the_requeue_a_reconcile_asks_for_is_honoured_and_none_means_never() -> None:
    async def main() -> list[str]:
        q: WorkQueue[str] = WorkQueue()
        seen: list[str] = []

        async def process(key: str) -> float | None:
            seen.append(key)
            return 0.01 if key == "active" and seen.count(key) < 3 else None

        tasks = [asyncio.create_task(q.run_timer()), asyncio.create_task(q.run_worker(process))]
        q.add("active")
        q.add("finished")
        await asyncio.sleep(0.2)
        for t in tasks:
            t.cancel()
        return seen

    assert sorted(run(main())) == ["active", "active", "active", "finished"]


def test_a_failing_reconcile_is_retried_with_backoff_and_a_forgotten_key_is_dropped() -> None:
    async def main() -> int:
        q: WorkQueue[str] = WorkQueue()
        calls = 0

        async def process(key: str) -> None:
            nonlocal calls
            calls += 1
            raise RuntimeError("API down")

        tasks = [asyncio.create_task(q.run_timer()), asyncio.create_task(q.run_worker(process))]
        q.add("a")
        await asyncio.sleep(0.05)
        assert len(q) == 1  # waiting out its backoff
        q.forget("a")
        await asyncio.sleep(0.05)
        for t in tasks:
            t.cancel()
        return calls

    assert run(main()) == 1


def test_events_for_finished_objects_and_our_own_status_echoes_enqueue_nothing() -> None:
    from rivet_operator.runtime.handlers import KINDS, Controller
    from rivet_operator.runtime.settings import from_env

    async def main() -> tuple[int, int, int]:
        controller = Controller(kube=None, config=from_env({}))  # type: ignore[arg-type]
        kind = KINDS["rivetexports"]
        done = {
            "metadata": {"namespace": "ns", "name": "done", "generation": 1, "resourceVersion": "5"},
            "spec": {"source": {}, "table": "t"},
            "status": {
                "runId": "r",
                "stage": "done",
                "runGeneration": 1,
                "observedGeneration": 1,
                "phase": "Succeeded",
            },
        }
        for _ in range(100):
            controller.object_event(kind, None, done)
        after_finished = len(controller.queue)
        active = {**done, "status": {**done["status"], "stage": "exporting"}}
        controller.own_writes[("rivetexports", "ns", "done")] = "5"
        controller.object_event(kind, "MODIFIED", active)
        after_echo = len(controller.queue)
        job = {
            "metadata": {
                "namespace": "ns",
                "name": "j",
                "ownerReferences": [
                    {"apiVersion": "rivet.dev/v1alpha1", "kind": "RivetExport", "name": "active", "controller": True}
                ],
            }
        }
        controller.job_event(job)
        return after_finished, after_echo, len(controller.queue)

    assert run(main()) == (0, 0, 1)


def test_every_change_to_a_scheduled_export_wakes_its_schedule_even_our_own_status_echo() -> None:
    """A schedule decides on its runs' phases, and the export controller's own status patch is what
    makes a run Succeeded: that echo must still reach the owner schedule (the export itself is skipped)."""
    from rivet_operator.runtime.handlers import KINDS, Controller
    from rivet_operator.runtime.settings import from_env

    async def main() -> list[tuple[str, str, str]]:
        controller = Controller(kube=None, config=from_env({}))  # type: ignore[arg-type]
        run = {
            "metadata": {
                "namespace": "ns",
                "name": "nightly-0a1b2c3d4e",
                "generation": 1,
                "resourceVersion": "9",
                "ownerReferences": [
                    {"apiVersion": "rivet.dev/v1alpha1", "kind": "RivetSchedule", "name": "nightly", "controller": True}
                ],
            },
            "spec": {"source": {}, "table": "t"},
            "status": {
                "runId": "r",
                "stage": "done",
                "runGeneration": 1,
                "observedGeneration": 1,
                "phase": "Succeeded",
            },
        }
        controller.own_writes[("rivetexports", "ns", "nightly-0a1b2c3d4e")] = "9"
        controller.object_event(KINDS["rivetexports"], "MODIFIED", run)
        keys = []
        while len(controller.queue):
            keys.append(await controller.queue.get())
        return keys

    assert run(main()) == [("rivetschedules", "ns", "nightly")]
