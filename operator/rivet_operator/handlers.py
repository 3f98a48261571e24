"""kopf wiring: settings chosen deliberately, thin handlers, one reconcile loop.

Choices (see ../shared/kopf-notes.md):
- our own annotation prefix (`rivet.dev`) for anything kopf stores, set on day one;
- standalone peering: one replica, Deployment strategy Recreate (kopf peering is not a lease);
- no kopf timers or daemons on our resources: kopf puts a finalizer on every object that has them,
  which blocks deletion once the operator is gone (helm uninstall, namespace deletion). Instead one
  loop reconciles every RivetExport and RivetValidation each tick, and stateless `on.event` handlers
  on our resources and our Jobs only wake it early. One loop also means no two steps for the same
  object ever run at once;
- no per-chunk handler state and no handler return values: status is patched explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import time
from typing import Any

import kopf

from rivet_operator import GROUP, VERSION, builders, export_reconciler, metrics, validation_reconciler
from rivet_operator.export_reconciler import Context
from rivet_operator.kube import Kube, ns_path
from rivet_operator.login import connection_info, login  # noqa: F401 - registers the login handler

TICK_S = float(os.environ.get("RIVET_TICK_SECONDS", "2"))
NAMESPACES = [n for n in os.environ.get("RIVET_NAMESPACES", "").split(",") if n]
log = logging.getLogger("rivet_operator")
KINDS = (
    ("rivetexports", "RivetExport", export_reconciler.reconcile),
    ("rivetvalidations", "RivetValidation", validation_reconciler.reconcile),
)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="rivet.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="rivet.dev")
    settings.persistence.finalizer = "rivet.dev/finalizer"
    settings.peering.standalone = True
    settings.posting.level = logging.WARNING  # user-facing Events are posted explicitly on transitions
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    if connection_info(settings) is None:
        raise kopf.PermanentError("no Kubernetes credentials: neither a service account nor a kubeconfig")
    memo.kube = Kube(lambda: connection_info(settings))
    memo.image = os.environ.get("RIVET_IMAGE", "rivet:dev")
    memo.pull_policy = os.environ.get("RIVET_IMAGE_PULL_POLICY", "IfNotPresent")
    memo.job_defaults = _job_defaults()
    memo.wake = asyncio.Event()
    memo.last_tick = time.monotonic()
    metrics.start(int(os.environ.get("RIVET_METRICS_PORT", "0")))
    memo.loop_task = asyncio.create_task(_loop(memo))
    log.info("operator_started image=%s namespaces=%s tick_s=%s", memo.image, NAMESPACES or "*", TICK_S)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    task: asyncio.Task[None] | None = memo.get("loop_task")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    kube: Kube | None = memo.get("kube")
    if kube is not None:
        await kube.close()


@kopf.on.probe(id="reconcile_loop_age_s")
def loop_age(memo: kopf.Memo, **_: Any) -> float:
    return round(time.monotonic() - float(memo.get("last_tick", time.monotonic())), 1)


@kopf.on.event(GROUP, VERSION, "rivetexports")
@kopf.on.event(GROUP, VERSION, "rivetvalidations")
@kopf.on.event("batch", "v1", "jobs", labels={"app.kubernetes.io/managed-by": "rivet-operator"})
def wake(memo: kopf.Memo, **_: Any) -> None:
    """Something we care about changed: reconcile now rather than at the next tick."""
    event: asyncio.Event | None = memo.get("wake")
    if event is not None:
        event.set()


def _job_defaults() -> dict[str, Any]:
    """Chart-level defaults for Job pods (JSON in RIVET_JOB_DEFAULTS); each CR's jobTemplate overrides them."""
    raw = os.environ.get("RIVET_JOB_DEFAULTS", "")
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        log.warning("RIVET_JOB_DEFAULTS is not JSON; ignored")
        value = {}
    return value if isinstance(value, dict) else {}


async def _loop(memo: kopf.Memo) -> None:
    while True:
        started = time.monotonic()
        try:
            await reconcile_all(memo)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconcile_loop_error")
        memo.last_tick = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(memo.wake.wait(), timeout=max(0.0, TICK_S - (time.monotonic() - started)))
        memo.wake.clear()
        await asyncio.sleep(0.2)  # let bursts of watch events coalesce


async def reconcile_all(memo: kopf.Memo) -> None:
    kube: Kube = memo.kube
    for plural, kind, step in KINDS:
        for body in await _list(kube, plural):
            if body["metadata"].get("deletionTimestamp"):
                continue
            ctx = _context(body, memo, kind)
            try:
                await step(ctx)
            except Exception as exc:
                log.exception("reconcile_error kind=%s name=%s/%s", kind, ctx.owner.namespace, ctx.owner.name)
                ctx.patch["message"] = f"operator error (will retry): {type(exc).__name__}: {str(exc)[:300]}"
            if plural == "rivetexports":
                metrics.observe_export(ctx)
            await _finish(ctx, plural)


async def _list(kube: Kube, plural: str) -> list[dict[str, Any]]:
    if not NAMESPACES:
        return await kube.list(f"apis/{GROUP}/{VERSION}/{plural}", "")
    items: list[dict[str, Any]] = []
    for ns in NAMESPACES:
        items.extend(await kube.list(ns_path(ns, plural, group=GROUP, version=VERSION), ""))
    return items


def _context(body: dict[str, Any], memo: kopf.Memo, kind: str) -> Context:
    meta = body["metadata"]
    owner = builders.Owner(f"{GROUP}/{VERSION}", kind, meta["name"], meta["uid"], meta["namespace"])
    return Context(
        kube=memo.kube,
        owner=owner,
        spec=dict(body.get("spec") or {}),
        status=dict(body.get("status") or {}),
        generation=int(meta.get("generation") or 1),
        image=memo.image,
        pull_policy=memo.pull_policy,
        job_defaults=memo.job_defaults,
        now=dt.datetime.now(dt.UTC).replace(microsecond=0),
    )


async def _finish(ctx: Context, plural: str) -> None:
    for reason, message, type_ in ctx.events:
        try:
            await ctx.kube.create(
                ns_path(ctx.owner.namespace, "events"), builders.event(ctx.owner, reason, message, type_, ctx.now_s)
            )
        except Exception as exc:  # an Event is best effort; status carries the same message
            log.warning("event_failed reason=%s error=%s", reason, exc)
        metrics.event(plural, reason)
        log.info(
            "transition kind=%s name=%s/%s reason=%s message=%s",
            ctx.owner.kind,
            ctx.owner.namespace,
            ctx.owner.name,
            reason,
            message,
        )
    changed = {k: v for k, v in ctx.patch.items() if ctx.status.get(k) != v}
    if changed:
        path = ns_path(ctx.owner.namespace, plural, ctx.owner.name, group=GROUP, version=VERSION) + "/status"
        await ctx.kube.merge_patch(path, {"status": changed})
