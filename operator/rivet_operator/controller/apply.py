"""The thin shell around the pure decide functions: observe one object (a constant number of API calls,
whatever else exists in the cluster), decide, apply the actions in order."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rivet_operator import GROUP, VERSION
from rivet_operator.controller.model import (
    ConfigMapView,
    Create,
    Decision,
    Delete,
    Emit,
    LedgerView,
    Observed,
    PatchStatus,
    PodView,
    Put,
    Settings,
    WriteLedger,
)
from rivet_operator.controller.outcomes import pod_active, pod_job_name, view
from rivet_operator.runtime import metrics
from rivet_operator.runtime.client import ApiError, Kube
from rivet_operator.schedule.builders import schedule_selector
from rivet_operator.specs import names
from rivet_operator.specs.events import event
from rivet_operator.specs.names import Owner

log = logging.getLogger("rivet_operator.apply")


class Conflict(Exception):
    """An object holds one of our deterministic names but is not ours (its owner reference differs)."""


@dataclass(frozen=True)
class Kind:
    """A kind the controller serves: its plural, kind, pure decide function and event filter."""

    plural: str
    kind: str
    decide: Callable[[Observed, Settings], Decision]
    needs_visit: Callable[[dict[str, Any]], bool]
    references_export: bool = False  # RivetValidation: read the RivetExport named by spec.exportRef
    # RivetExport: which RivetLedger shards to read, from the status and the chunks with Jobs (None: all)
    ledger: Callable[[dict[str, Any], list[int]], list[int] | None] | None = None
    # what a kind observes when it is not its Jobs, pods and ConfigMaps (a schedule observes its exports)
    observe: Callable[[Kube, Kind, str, str, dt.datetime], Awaitable[Observed | None]] | None = None
    # what to do when the API server refuses (422/403) an object the decision creates; None: raise
    rejected: Callable[[Observed, str], Decision] | None = None


REJECTED = (403, 422)


def _owner(kind: Kind, body: dict[str, Any], namespace: str) -> Owner:
    meta = body["metadata"]
    return Owner(f"{GROUP}/{VERSION}", kind.kind, meta["name"], meta["uid"], namespace)


async def _get_live(kube: Kube, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
    """The object, or None when it is gone or being deleted (nothing to reconcile)."""
    body = await kube.get_custom(kind.plural, namespace, name)
    if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
        return None
    return body


def _observed(kind: Kind, body: dict[str, Any], namespace: str, now: dt.datetime, **children: Any) -> Observed:
    """The fields every kind's Observed takes from the object itself; `children` adds what was listed."""
    meta = body["metadata"]
    return Observed(
        owner=_owner(kind, body, namespace),
        generation=int(meta.get("generation") or 1),
        spec=dict(body.get("spec") or {}),
        status=dict(body.get("status") or {}),
        now=now,
        annotations=dict(meta.get("annotations") or {}),
        body=body,
        **children,
    )


async def observe(kube: Kube, kind: Kind, namespace: str, name: str, now: dt.datetime) -> Observed | None:
    body = await _get_live(kube, kind, namespace, name)
    if body is None:
        return None
    selector = names.owned_selector(_owner(kind, body, namespace))
    jobs = await kube.list_jobs(namespace, selector)
    pods = await kube.list_pods(namespace, selector)
    cms = await kube.list_configmaps(namespace, selector)
    by_job: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        by_job.setdefault(pod_job_name(pod), []).append(pod)
    ledgers, complete = await _read_ledgers(kube, kind, body, namespace, selector, jobs)
    export = None
    ref = ((body.get("spec") or {}).get("exportRef") or {}).get("name")
    if kind.references_export and ref:
        export = await kube.get_custom("rivetexports", namespace, ref)
    return _observed(
        kind,
        body,
        namespace,
        now,
        jobs=tuple(view(j, by_job.get(j["metadata"]["name"], [])) for j in jobs),
        pods=tuple(
            PodView(
                p["metadata"]["name"],
                (p["metadata"].get("labels") or {}).get(names.L_RUN, ""),
                pod_active(p),
                (p["metadata"].get("labels") or {}).get(names.L_COMPONENT, ""),
            )
            for p in pods
        ),
        configmaps=tuple(
            ConfigMapView(
                cm["metadata"]["name"],
                (cm["metadata"].get("labels") or {}).get(names.L_RUN, ""),
                (cm["metadata"].get("labels") or {}).get(names.L_COMPONENT, ""),
                dict(cm.get("data") or {}),
            )
            for cm in cms
        ),
        ledgers=tuple(
            LedgerView(
                lg["metadata"]["name"],
                (lg["metadata"].get("labels") or {}).get(names.L_RUN, ""),
                {str(k): str(v) for k, v in ((lg.get("status") or {}).get("records") or {}).items()},
            )
            for lg in ledgers
        ),
        ledger_complete=complete,
        export=export,
    )


async def _read_ledgers(
    kube: Kube, kind: Kind, body: dict[str, Any], namespace: str, selector: str, jobs: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], bool]:
    """The RivetLedger shards the decision needs: every one (a list), or while exporting only those that can
    change (a GET each): a 100,000-chunk run does not re-read 30 MB of finished records per reconcile."""
    if kind.ledger is None:
        return [], True
    status = body.get("status") or {}
    run = names.run_key(str(status.get("runId")))
    chunks = [
        int(labels[names.L_CHUNK])
        for labels in ((j["metadata"].get("labels") or {}) for j in jobs)
        if labels.get(names.L_RUN) == run and labels.get(names.L_CHUNK, "").isdigit()
    ]
    reads = kind.ledger(status, chunks)
    if reads is None:
        return await kube.list_custom("rivetledgers", namespace, selector), True
    owner = _owner(kind, body, namespace)
    found = [
        await kube.get_custom("rivetledgers", namespace, names.ledger_shard(owner, str(status.get("runId")), n))
        for n in reads
    ]
    return [lg for lg in found if lg is not None and ours(lg, owner)], False


async def observe_schedule(kube: Kube, kind: Kind, namespace: str, name: str, now: dt.datetime) -> Observed | None:
    """A RivetSchedule and the RivetExports carrying its label: two calls, however many objects exist."""
    body = await _get_live(kube, kind, namespace, name)
    if body is None:
        return None
    runs = await kube.list_custom("rivetexports", namespace, schedule_selector(name))
    return _observed(kind, body, namespace, now, children=tuple(runs))


def ours(obj: dict[str, Any] | None, owner: Owner) -> bool:
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("uid") == owner.uid for r in refs)


async def create(kube: Kube, owner: Owner, body: dict[str, Any]) -> bool:
    """Create; True if created, False if it already existed *and is ours* (a repeated decision)."""
    try:
        await kube.create(owner.namespace, body)
        return True
    except ApiError as exc:
        if exc.status != 409:
            raise
    existing = await kube.get(body["kind"], owner.namespace, body["metadata"]["name"])
    if existing is not None and not ours(existing, owner):
        raise Conflict(
            f"{body['kind']} {owner.namespace}/{body['metadata']['name']} exists and is not owned by "
            f"{owner.kind} {owner.name} (uid {owner.uid})"
        )
    if existing is not None and body["kind"] == "Job" and _containers(existing) != _containers(body):
        # An owner reference is anyone's to write: a Job we did not create could report any commit record.
        raise Conflict(
            f"Job {owner.namespace}/{body['metadata']['name']} exists with our owner reference but does not run"
            " what the operator would run (image, command, arguments or environment differ): it is not ours"
        )
    return False


def _containers(job: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What a Job's containers run, as the API server keeps it (fieldRef's defaulted apiVersion aside)."""
    containers = (((job.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    out = []
    for c in containers:
        env = []
        for e in c.get("env") or []:
            e = dict(e)
            ref = (e.get("valueFrom") or {}).get("fieldRef")
            if ref:
                e["valueFrom"] = {**e["valueFrom"], "fieldRef": {"fieldPath": ref.get("fieldPath")}}
            env.append(e)
        out.append((c.get("image"), c.get("command"), c.get("args"), env, c.get("envFrom") or []))
    return out


async def put(kube: Kube, owner: Owner, body: dict[str, Any]) -> None:
    """Create a ConfigMap, or replace what holds its name: its content must be exactly ours."""
    if not await create(kube, owner, body):
        await kube.replace_configmap(owner.namespace, body)


async def write_ledger(kube: Kube, owner: Owner, action: WriteLedger) -> None:
    """Merge one record into its RivetLedger shard's status; create the shard first when it is missing (a
    create never carries status, so a record only ever arrives through the status subresource)."""
    name = action.body["metadata"]["name"]
    patch = {"records": {action.key: action.record}}
    try:
        await kube.patch_status("rivetledgers", owner.namespace, name, patch)
        return
    except ApiError as exc:
        if exc.status != 404:
            raise
    await create(kube, owner, action.body)
    await kube.patch_status("rivetledgers", owner.namespace, name, patch)


async def apply(kube: Kube, kind: Kind, obs: Observed, decision: Decision) -> dict[str, Any]:
    """Apply the actions in order; return the status after them (for metrics and the event filter)."""
    owner = obs.owner
    status = dict(obs.status)
    for action in decision.ordered():
        if isinstance(action, Create):
            try:
                await create(kube, owner, action.body)
            except Conflict as exc:  # surfaced to the user; the queue retries with backoff (it may be deleted)
                await _emit(kube, kind, obs, Emit("NameConflict", str(exc), warning=True))
                raise
            except ApiError as exc:
                if kind.rejected is None or exc.status not in REJECTED:
                    raise
                log.warning(
                    "create_rejected kind=%s name=%s/%s status=%d", owner.kind, owner.namespace, owner.name, exc.status
                )
                return await apply(kube, kind, obs, kind.rejected(obs, str(exc)))
        elif isinstance(action, Put):
            await put(kube, owner, action.body)
        elif isinstance(action, WriteLedger):
            await write_ledger(kube, owner, action)
            metrics.CHUNKS_COMMITTED_TOTAL.labels(owner.namespace).inc()
            metrics.ROWS_TOTAL.labels(owner.namespace).inc(action.rows)
            metrics.BYTES_TOTAL.labels(owner.namespace).inc(action.size_bytes)
        elif isinstance(action, Delete):
            await kube.delete(action.plural, owner.namespace, action.name)
        elif isinstance(action, PatchStatus):
            new = await kube.patch_status(kind.plural, owner.namespace, owner.name, action.patch)
            status = dict(new.get("status") or {})
            status["__resourceVersion"] = (new.get("metadata") or {}).get("resourceVersion")
            _observe_finish(kind, obs, action.patch)
        elif isinstance(action, Emit):
            await _emit(kube, kind, obs, action)
    return status


async def _emit(kube: Kube, kind: Kind, obs: Observed, action: Emit) -> None:
    owner = obs.owner
    body = event(
        owner,
        action.reason,
        action.message,
        "Warning" if action.warning else "Normal",
        obs.now_s,
        action.series,
        action.count,
    )
    try:
        try:
            await kube.create(owner.namespace, body)
        except ApiError as exc:
            if exc.status != 409 or not action.series:
                raise
            update = {"count": action.count, "lastTimestamp": obs.now_s, "message": body["message"]}
            await kube.patch_event(owner.namespace, body["metadata"]["name"], update)
    except Exception as exc:  # an Event is best effort; status carries the same message
        log.warning("event_failed reason=%s error=%s", action.reason, exc)
    metrics.EVENTS.labels(kind.plural, action.reason).inc()
    if action.reason in ("ChunkRetry", "Retrying"):
        step = "chunk" if action.reason == "ChunkRetry" else action.message.split(" ", 1)[0]
        metrics.RETRIES.labels(owner.namespace, step).inc()
    log.info(
        "transition kind=%s name=%s/%s reason=%s message=%s",
        owner.kind,
        owner.namespace,
        owner.name,
        action.reason,
        action.message,
    )


def _observe_finish(kind: Kind, obs: Observed, patch: dict[str, Any]) -> None:
    if kind.kind != "RivetExport" or patch.get("stage") not in ("done", "failed"):
        return
    outcome = "succeeded" if patch["stage"] == "done" else "failed"
    metrics.RUNS.labels(obs.owner.namespace, obs.owner.name, outcome).inc()
    started = obs.status.get("startedAt") or patch.get("startedAt")
    try:
        t0 = dt.datetime.strptime(str(started), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return
    seconds = (obs.now - t0).total_seconds()
    metrics.RUN_DURATION.labels(outcome).observe(seconds)
    metrics.DURATION.labels(obs.owner.namespace, obs.owner.name).set(seconds)
