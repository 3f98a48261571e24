"""A tiny in-memory cluster for the operator's pure decide functions: it applies their actions to Jobs,
ConfigMaps and a status the way the API server would, so a test can drive a whole run step by step."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from rivet_operator.controller.export import decide_export, ledger_reads
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
from rivet_operator.controller.outcomes import FAILED, RUNNING, SUCCEEDED, JobView
from rivet_operator.controller.validation import decide_validation
from rivet_operator.specs import names
from rivet_operator.specs.names import Owner

T0 = dt.datetime(2026, 11, 22, 2, 0, 0, tzinfo=dt.UTC)
SPEC: dict[str, Any] = {
    "source": {"type": "postgres", "urlFrom": {"secretKeyRef": {"name": "orders-db", "key": "url"}}},
    "table": "public.orders",
    "mode": "chunked",
    "chunkColumn": "id",
    "chunkSize": 1000,
    "parallelism": 2,
    "format": "parquet",
    "destination": {"type": "s3", "bucket": "lake", "prefix": "exports/{date}/{export}/"},
    "envFrom": [{"secretRef": {"name": "lake-credentials"}}],
}


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge_patch(out.get(key), value)
    return out


def plan_result(chunks: int, prefix: str = "s3://lake/exports/2026-11-22/orders/") -> dict[str, Any]:
    return {
        "export": "orders",
        "resolved_prefix": prefix,
        "mode": "chunked",
        "lo": 1,
        "hi": chunks * 1000,
        "chunk_size": 1000,
        "chunk_count": chunks,
        "row_estimate": chunks * 1000,
        "plan_fingerprint": "xxh3:00000000000000aa",
        "schema_fingerprint": "xxh3:00000000000000bb",
        "plan": {"mode": "chunked"},
    }


def chunk_result(idx: int, rows: int = 1000, max_cursor: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "chunk": idx,
        "key": f"part-{idx:06d}.parquet",
        "rows": rows,
        "size_bytes": 100 * rows,
        "content_fingerprint": "xxh3:0000000000000001",
        "content_md5": "AAAAAAAAAAAAAAAAAAAAAA==",
        "schema_fingerprint": "xxh3:00000000000000bb",
        "decision": "export",
        "resolved_prefix": "s3://lake/x/",
    }
    if max_cursor is not None:
        out["max_cursor"] = max_cursor
    return out


def finalize_result(rows: int, parts: int) -> dict[str, Any]:
    return {
        "run_id": "r",
        "resolved_prefix": "s3://lake/exports/2026-11-22/orders/",
        "manifest_fingerprint": "xxh3:00000000000000cc",
        "success": "xxh3:00000000000000cc",
        "part_count": parts,
        "row_count": rows,
        "bytes": rows * 100,
    }


def error(message: str, exit_code: int | None = None, permanent: bool | None = None, **kw: Any) -> dict[str, Any]:
    err: dict[str, Any] = {"kind": "source", "message": message, **kw}
    if exit_code is not None:
        err["exit_code"] = exit_code
    if permanent is not None:
        err["permanent"] = permanent
    return {"ok": False, "error": err}


@dataclass
class SimJob:
    body: dict[str, Any]
    state: str = RUNNING
    result: dict[str, Any] | None = None
    detail: str = ""
    exit_code: int | None = None
    deleting: bool = False
    pod_active: bool = True

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.body["metadata"]["labels"])


@dataclass
class Sim:
    spec: dict[str, Any] = field(default_factory=lambda: json.loads(json.dumps(SPEC)))
    kind: str = "RivetExport"
    name: str = "orders"
    uid: str = "0b9c6a3e-1111-4222-8333-444455556666"
    settings: Settings = field(default_factory=Settings)
    status: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    generation: int = 1
    now: dt.datetime = T0
    jobs: dict[str, SimJob] = field(default_factory=dict)
    lingering_pods: dict[str, tuple[str, str]] = field(default_factory=dict)  # deleted Jobs' pods: (run, component)
    configmaps: dict[str, dict[str, Any]] = field(default_factory=dict)
    ledgers: dict[str, dict[str, Any]] = field(default_factory=dict)  # RivetLedger objects (records in status)
    events: list[Emit] = field(default_factory=list)
    export: dict[str, Any] | None = None
    last: Decision | None = None
    reads: list[int | None] = field(default_factory=list)  # shards read per reconcile (None: all listed)

    @property
    def owner(self) -> Owner:
        return Owner("rivet.dev/v1alpha1", self.kind, self.name, self.uid, "analytics")

    def observed(self) -> Observed:
        jobs = tuple(
            JobView(
                name=name,
                run=j.labels[names.L_RUN],
                component=j.labels[names.L_COMPONENT],
                chunk=int(j.labels[names.L_CHUNK]) if names.L_CHUNK in j.labels else None,
                attempt=int(j.labels.get(names.L_ATTEMPT, "1")),
                state=j.state,
                result=j.result,
                detail=j.detail,
                exit_code=j.exit_code,
                deleting=j.deleting,
            )
            for name, j in self.jobs.items()
        )
        pods = tuple(
            PodView(f"{n}-pod", j.labels[names.L_RUN], j.pod_active, j.labels[names.L_COMPONENT])
            for n, j in self.jobs.items()
        )
        pods += tuple(PodView(n, run, True, component) for n, (run, component) in self.lingering_pods.items())
        cms = tuple(
            ConfigMapView(
                n, cm["metadata"]["labels"][names.L_RUN], cm["metadata"]["labels"][names.L_COMPONENT], cm["data"]
            )
            for n, cm in self.configmaps.items()
        )
        reads = self.ledger_reads(jobs)
        return Observed(
            owner=self.owner,
            generation=self.generation,
            spec=self.spec,
            status=self.status,
            now=self.now,
            annotations=self.annotations,
            jobs=jobs,
            pods=pods,
            configmaps=cms,
            ledgers=tuple(
                LedgerView(n, lg["metadata"]["labels"][names.L_RUN], dict(lg["status"]["records"]))
                for n, lg in self.ledgers.items()
                if reads is None or n in reads
            ),
            ledger_complete=reads is None,
            export=self.export,
        )

    def ledger_reads(self, jobs: tuple[JobView, ...]) -> set[str] | None:
        """The shard names the shell would read (export.ledger_reads), None: all."""
        run_id = str(self.status.get("runId"))
        chunks = [j.chunk for j in jobs if j.chunk is not None and j.run == names.run_key(run_id)]
        reads = ledger_reads(self.status, chunks) if self.kind == "RivetExport" else None
        self.reads.append(None if reads is None else len(reads))
        return None if reads is None else {names.ledger_shard(self.owner, run_id, n) for n in reads}

    def step(self) -> Decision:
        decide = decide_export if self.kind == "RivetExport" else decide_validation
        decision = decide(self.observed(), self.settings)
        for action in decision.ordered():
            if isinstance(action, Create):
                name = action.body["metadata"]["name"]
                if action.body["kind"] == "Job":
                    self.jobs.setdefault(name, SimJob(action.body))
                else:
                    self.configmaps.setdefault(name, json.loads(json.dumps(action.body)))
            elif isinstance(action, Put):  # create or replace, as the API server's PUT does
                self.configmaps[action.body["metadata"]["name"]] = json.loads(json.dumps(action.body))
            elif isinstance(action, WriteLedger):  # a create never carries status; the record goes to status
                name = action.body["metadata"]["name"]
                ledger = self.ledgers.setdefault(name, {**action.body, "status": {"records": {}}})
                ledger["status"]["records"][action.key] = action.record
            elif isinstance(action, Delete):
                if action.plural == "jobs" and action.name in self.jobs:
                    job = self.jobs.pop(action.name)
                    if job.state == RUNNING and job.pod_active:
                        self.lingering_pods[f"{action.name}-pod"] = (
                            job.labels[names.L_RUN],
                            job.labels[names.L_COMPONENT],
                        )
                elif action.plural == "rivetledgers":
                    self.ledgers.pop(action.name, None)
                else:
                    self.configmaps.pop(action.name, None)
            elif isinstance(action, PatchStatus):
                self.status = apply_merge_patch(self.status, action.patch)
            elif isinstance(action, Emit):
                self.events.append(action)
        self.last = decision
        return decision

    # -- the world moves ----------------------------------------------------------------------------
    def jobs_of(self, component: str) -> list[str]:
        return sorted(
            (n for n, j in self.jobs.items() if j.labels[names.L_COMPONENT] == component),
            key=lambda n: (int(self.jobs[n].labels.get(names.L_CHUNK, 0)), n),
        )

    def succeed(self, name: str, result: dict[str, Any]) -> None:
        job = self.jobs[name]
        job.state, job.result, job.pod_active = SUCCEEDED, result, False

    def fail(
        self, name: str, result: dict[str, Any] | None = None, detail: str = "", exit_code: int | None = 1
    ) -> None:
        job = self.jobs[name]
        job.state, job.result, job.detail, job.exit_code, job.pod_active = FAILED, result, detail, exit_code, False

    def pods_gone(self) -> None:
        self.lingering_pods.clear()

    def later(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]

    def condition(self, type_: str) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == type_)

    def run_to_success(self, chunks: int = 4, rows: int = 1000) -> None:
        """Plan, export every chunk, finalize: the happy path."""
        self.step()
        self.succeed(self.jobs_of("plan")[0], plan_result(chunks))
        for _ in range(chunks + 2):
            self.step()
            for name in self.jobs_of("chunk"):
                if self.jobs[name].state == RUNNING:
                    idx = int(self.jobs[name].labels[names.L_CHUNK])
                    self.succeed(name, chunk_result(idx, rows))
        self.step()
        (fin,) = self.jobs_of("finalize")
        self.succeed(fin, finalize_result(chunks * rows, chunks))
        self.step()
