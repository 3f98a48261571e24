"""kopf wiring: watch events feed a per-key work queue; workers reconcile one object at a time.

Choices (see ../shared/kopf-notes.md):
- only `@kopf.on.event` handlers: kopf then keeps no finalizer and no annotation on our objects or Jobs,
  so `helm uninstall` and namespace deletion never wait for the operator;
- events on our kinds and on our labelled Jobs (a server-side label selector; a Job maps to its owner
  through its controller owner reference) put the owner's key on the queue; a finished, unchanged
  object is filtered out at the event (`needs_visit`) and costs nothing until it changes;
- the reconcile is `observe -> decide (pure) -> apply` (controller/), with a constant number of API calls
  per object; requeues are asked for only by objects with work in flight;
- our own annotation prefix (`rivet.dev`) for anything kopf might store, standalone peering (one replica,
  Deployment strategy Recreate: kopf peering is not a lease).

More kinds: `register(Kind(...))` below adds a watch on the kind and routes the objects it owns (Jobs, or a
RivetSchedule's RivetExports) to it; nothing else here changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

import kopf

from rivet_operator import GROUP, VERSION
from rivet_operator.controller import export, schedule, validation
from rivet_operator.controller.apply import Kind, apply, observe, observe_schedule
from rivet_operator.runtime import metrics
from rivet_operator.runtime.client import Kube
from rivet_operator.runtime.login import api_client, login  # noqa: F401 - registers the login handler
from rivet_operator.runtime.queue import WorkQueue
from rivet_operator.runtime.settings import OperatorConfig, from_env
from rivet_operator.specs import names

log = logging.getLogger("rivet_operator")
Key = tuple[str, str, str]  # (plural, namespace, name)
KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Serve a kind: watch it and reconcile it with its pure decide function (call at import time)."""
    KINDS[kind.plural] = kind

    @kopf.on.event(GROUP, VERSION, kind.plural, id=f"{kind.plural}-events")
    async def on_object(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
        controller: Controller | None = memo.get("controller")
        if controller is not None:
            controller.object_event(kind, type, dict(body))

    return kind


register(Kind("rivetexports", "RivetExport", export.decide_export, export.needs_visit, ledger=export.ledger_reads))
register(Kind("rivetvalidations", "RivetValidation", validation.decide_validation, validation.needs_visit, True))
register(
    Kind(
        "rivetschedules",
        "RivetSchedule",
        schedule.decide_schedule,
        schedule.needs_visit,
        observe=observe_schedule,
        rejected=schedule.rejected,
    )
)


class Controller:
    """The queue, its workers and what they share; one per operator process (kept in kopf's memo)."""

    def __init__(self, kube: Kube, config: OperatorConfig) -> None:
        self.kube = kube
        self.config = config
        self.queue: WorkQueue[Key] = WorkQueue()
        self.phases = metrics.PhaseBook()
        self.own_writes: dict[Key, str] = {}  # the resourceVersion our last status patch produced
        self.tasks: list[asyncio.Task[None]] = []
        self.last_done = time.monotonic()

    def start(self) -> None:
        self.tasks.append(asyncio.create_task(self.queue.run_timer()))
        for _ in range(self.config.workers):
            self.tasks.append(asyncio.create_task(self.queue.run_worker(self.reconcile)))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.kube.close()

    def object_event(self, kind: Kind, type_: str | None, body: dict[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key: Key = (kind.plural, meta.get("namespace", ""), meta.get("name", ""))
        if type_ == "DELETED":
            self.queue.forget(key)
            self.own_writes.pop(key, None)
            self.phases.forget(kind.kind, key[1], key[2])
            if kind.kind == "RivetExport":
                metrics.forget_export(key[1], key[2])
            return
        self.phases.set(kind.kind, key[1], key[2], (body.get("status") or {}).get("phase"))
        # a RivetExport created by a kind we serve (a schedule) wakes its owner on every change, our own
        # status patches included: the owner decides on the run's phase
        self.route_to_owner(meta)
        if self.own_writes.get(key) == meta.get("resourceVersion"):
            return  # the echo of our own status patch: already decided on
        if kind.needs_visit(body):
            self.queue.add(key)

    def job_event(self, body: dict[str, Any]) -> None:
        self.route_to_owner(body.get("metadata") or {})

    def route_to_owner(self, meta: dict[str, Any]) -> None:
        """Put the key of the object's controller on the queue, when it is one of the kinds we serve."""
        for ref in meta.get("ownerReferences") or []:
            plural = next((k.plural for k in KINDS.values() if k.kind == ref.get("kind")), None)
            if ref.get("controller") and plural and str(ref.get("apiVersion", "")).startswith(GROUP + "/"):
                self.queue.add((plural, meta.get("namespace", ""), str(ref.get("name"))))
        metrics.QUEUE_DEPTH.set(len(self.queue))

    async def reconcile(self, key: Key) -> float | None:
        plural, namespace, name = key
        kind = KINDS[plural]
        started = time.monotonic()
        result = "error"
        try:
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            obs = await (kind.observe or observe)(self.kube, kind, namespace, name, now)
            if obs is None:
                self.queue.forget(key)
                result = "gone"
                return None
            decision = kind.decide(obs, self.config.settings)
            status = await apply(self.kube, kind, obs, decision)
            version = status.pop("__resourceVersion", None)
            if version:
                self.own_writes[key] = str(version)
            self.phases.set(kind.kind, namespace, name, status.get("phase"))
            if kind.kind == "RivetExport":
                metrics.observe_export(namespace, name, status)
            result = "ok"
            return decision.requeue_after
        finally:
            metrics.RECONCILES.labels(kind.kind, result).inc()
            metrics.RECONCILE_SECONDS.labels(kind.kind).observe(time.monotonic() - started)
            metrics.QUEUE_DEPTH.set(len(self.queue))
            self.last_done = time.monotonic()


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="rivet.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="rivet.dev")
    settings.persistence.finalizer = "rivet.dev/finalizer"
    settings.peering.standalone = True
    settings.posting.level = logging.WARNING  # user-facing Events are posted explicitly on transitions
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # only our Jobs come down the Job watch (server-side filter)
    settings.watching.label_selectors["batch", "jobs"] = f"{names.L_MANAGED}={names.MANAGED_BY}"
    # one line per watch event ("Handler ... succeeded") would drown the transitions we log ourselves
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    config = from_env()
    controller = Controller(Kube(await api_client()), config)
    memo.controller = controller
    metrics.start(config.metrics_port)
    controller.start()
    log.info(
        "operator_started image=%s namespaces=%s workers=%d",
        config.settings.runtime.image,
        ",".join(config.namespaces) or "*",
        config.workers,
    )


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        await controller.stop()


@kopf.on.probe(id="workqueue")
def queue_probe(memo: kopf.Memo, **_: Any) -> dict[str, float]:
    controller: Controller | None = memo.get("controller")
    if controller is None:
        return {}
    return {
        "depth": len(controller.queue),
        "processing": controller.queue.processing,
        "idle_s": round(time.monotonic() - controller.last_done, 1),
    }


@kopf.on.event("batch", "v1", "jobs", labels={names.L_MANAGED: names.MANAGED_BY}, id="jobs-events")
async def on_job(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        controller.job_event(dict(body))
