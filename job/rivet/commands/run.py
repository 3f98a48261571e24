"""`rivet run`: plan, export chunks with in-process workers, record each commit, certify at the end.

Crash safety comes from ordering, not from the end of the run: a part is committed at the store
before its record reaches the SQLite ledger, and the resume decision table reconciles the two.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rivet.config.model import DestinationType, ExportConfig, Mode, RivetConfig
from rivet.contract.manifest import QUARANTINE_DIR, CommitRecord, part_key
from rivet.contract.objects import ObjectInfo
from rivet.contract.plan import Chunk, plan_changes
from rivet.contract.prefix import resolve_prefix
from rivet.contract.resume import Decision, decide
from rivet.destinations.base import Destination
from rivet.destinations.factory import open_destination
from rivet.engine import rivet08
from rivet.engine.certify import (
    certify,
    check_fencing,
    refuse_unless_forced,
    schema_of,
    take_over,
    utc_now,
    withdraw,
)
from rivet.engine.chunk import ChunkOutcome, export_chunk
from rivet.engine.context import CLI_PRODUCER, RunContext
from rivet.engine.ledger import RunRow, StateStore
from rivet.engine.planning import chunk_key_kind, count_null_cursors, plan_for, read_plan
from rivet.errors import ContractError, RivetError
from rivet.log import log
from rivet.progress import Progress
from rivet.sources.base import Source
from rivet.sources.factory import open_source
from rivet.sources.sql import select_all


@dataclass
class RunOptions:
    resume: bool = False
    force: bool = False
    date: dt.date | None = None
    run_id: str | None = None


@dataclass
class ExportSummary:
    export_name: str
    run_id: str
    resolved_prefix: str
    status: str = "running"
    rows: int = 0
    parts: int = 0
    bytes: int = 0
    duration_s: float = 0.0
    chunks_total: int = 0
    chunks_exported: int = 0
    chunks_skipped: int = 0
    chunks_empty: int = 0
    null_cursor_rows: int = 0
    quarantined: list[str] = field(default_factory=list)
    manifest_fingerprint: str | None = None
    success: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["rows_per_s"] = round(self.rows / self.duration_s) if self.duration_s > 0 else 0
        return d


def new_run_id(exp: ExportConfig, now: dt.datetime) -> str:
    return f"{exp.name}-{now:%Y%m%dt%H%M%S}"


class SourcePool:
    """One source connection per worker thread (database connections are not thread-safe)."""

    def __init__(self, cfg: RivetConfig) -> None:
        self._cfg = cfg
        self._local = threading.local()
        self._all: list[Source] = []
        self._lock = threading.Lock()

    def get(self) -> Source:
        src: Source | None = getattr(self._local, "source", None)
        if src is None:
            src = open_source(self._cfg.source)
            self._local.source = src
            with self._lock:
                self._all.append(src)
        return src

    def close(self) -> None:
        for src in self._all:
            with contextlib.suppress(Exception):  # best effort: the run's outcome is already decided
                src.close()


def _resolve_run(state: StateStore, exp: ExportConfig, opts: RunOptions) -> tuple[str, dt.date, str, RunRow | None]:
    """(run_id, run_date, started_at, existing run to resume or None)."""
    existing: RunRow | None = None
    if opts.run_id:
        existing = state.get_run(opts.run_id)
        if existing is not None and existing.export != exp.name:
            raise ContractError(f"run {opts.run_id} belongs to export {existing.export!r}, not {exp.name!r}")
    elif opts.resume:
        latest = state.latest_run(exp.name)
        if latest is not None and latest.status != "success":
            existing = latest
        else:
            log("resume_nothing_to_resume", export=exp.name, note="no unfinished run; starting a new one")
    if existing is not None:
        return existing.run_id, dt.date.fromisoformat(existing.run_date), existing.started_at, existing
    now = dt.datetime.now(dt.UTC)
    run_id = opts.run_id or new_run_id(exp, now)
    suffix = 1
    while opts.run_id is None and state.get_run(run_id) is not None:
        suffix += 1
        run_id = f"{new_run_id(exp, now)}-{suffix}"
    return run_id, opts.date or now.date(), utc_now(), None


def run_export(cfg: RivetConfig, exp: ExportConfig, opts: RunOptions, state: StateStore) -> ExportSummary:
    started = time.monotonic()
    cfg = cfg.for_export(exp)  # the export's own tuning (Rivet 0.8 `tuning:` / `chunk_max_attempts`), if any
    run_id, run_date, started_at, existing = _resolve_run(state, exp, opts)
    prefix = resolve_prefix(exp.destination.template, export=exp.name, date=run_date, run_id=run_id)
    dest = open_destination(exp.destination, prefix)
    summary = ExportSummary(export_name=exp.name, run_id=run_id, resolved_prefix=dest.uri())
    log("run_start", export=exp.name, run_id=run_id, prefix=dest.uri(), resume=existing is not None)
    dest.check()
    check_fencing(dest, exp, run_id)
    certified = refuse_unless_forced(dest, opts.force)
    pool = SourcePool(cfg)
    try:
        source = pool.get()
        schema = source.describe(select_all(source.engine, exp))  # unsupported types fail here, before any byte
        cursor_start = existing.cursor_start if existing else state.cursor(exp.name)
        if existing is not None:
            kind = chunk_key_kind(schema, exp) if exp.mode is Mode.CHUNKED else None
            plan = plan_for(source.engine, exp, existing.plan.lo, existing.plan.hi, kind, existing.plan.boundaries)
            changed = plan_changes(existing.plan, plan)
            if changed:
                raise ContractError(
                    f"cannot resume run {run_id}: the plan changed ({'; '.join(changed)});"
                    " restore the definition or start a new run without --resume",
                    reason="PlanChanged",
                )
        else:
            plan = read_plan(source, exp, schema)
            state.create_run(
                RunRow(run_id, exp.name, plan, prefix, run_date.isoformat(), started_at, "running", cursor_start)
            )
        ctx = rivet08.with_meta(RunContext(cfg, exp, run_id, run_date, plan, schema, cursor_start, CLI_PRODUCER))
        rivet08.check_chunk_by_days(exp, plan.kind)
        ctx.query(plan.chunk(1))  # a definition error (e.g. a time_column of the wrong type) fails before any byte
        if existing is not None:
            schema_of(list(state.committed(run_id).values()), ctx.schema_fp, current=ctx.schema_fp)
        if exp.mode is Mode.INCREMENTAL:
            summary.null_cursor_rows = count_null_cursors(source, exp)
        summary.chunks_total = plan.chunk_count
        if certified:
            withdraw(dest, "forced run")  # planned without error: now the first byte may change
        take_over(dest, run_id)  # fencing: a prefix whose manifest is another run's becomes this run's
        records = _export_chunks(pool, ctx, dest, state, summary)
        rivet08.check_quality(ctx, source, records.values())  # before certify: a failed gate certifies nothing
    except KeyboardInterrupt:
        state.set_run_status(run_id, "interrupted")
        raise
    except Exception as exc:
        state.set_run_status(run_id, "failed")
        summary.status, summary.error = "failed", getattr(exc, "message", str(exc))
        raise
    finally:
        pool.close()
    fp, body = certify(ctx, dest, list(records.values()), started_at, cursor_start)
    if exp.mode is Mode.INCREMENTAL:
        _advance_cursor(state, exp, run_id, records)
    state.set_run_status(run_id, "success")
    summary.status = "success"
    summary.manifest_fingerprint, summary.success = fp, body
    summary.rows = sum(r.rows for r in records.values())
    summary.parts = sum(1 for r in records.values() if r.key is not None)
    summary.bytes = sum(r.size_bytes for r in records.values() if r.key is not None)
    summary.duration_s = round(time.monotonic() - started, 3)
    log("run_done", export=exp.name, run_id=run_id, rows=summary.rows, parts=summary.parts, bytes=summary.bytes)
    return summary


def _advance_cursor(state: StateStore, exp: ExportConfig, run_id: str, records: dict[int, CommitRecord]) -> None:
    """After certification only: the next run starts at this run's highest cursor value (inclusive)."""
    highs = [r.max_cursor for r in records.values() if r.max_cursor is not None]
    if highs:
        state.set_cursor(exp.name, max(highs), run_id)


def _export_chunks(
    pool: SourcePool, ctx: RunContext, dest: Destination, state: StateStore, summary: ExportSummary
) -> dict[int, CommitRecord]:
    committed = state.committed(ctx.run_id)
    listing = {o.key: o for o in dest.list()}
    taken = {k for k in listing if k.startswith(QUARANTINE_DIR + "/")}
    records: dict[int, CommitRecord] = {}
    todo: list[Chunk] = []
    for chunk in ctx.plan.chunks():
        record = committed.get(chunk.index)
        if (
            record is not None
            and decide(record, listing.get(part_key(chunk.index, ctx.exp.format.value))) is Decision.SKIP
        ):
            records[chunk.index] = record
            summary.chunks_skipped += 1
        else:
            todo.append(chunk)
    lock = threading.Lock()

    def work(chunk: Chunk, progress: Progress) -> CommitRecord:
        rivet08.enter_worker(ctx)  # throttle_ms and meta_columns for this worker thread
        outcome = _export_with_retries(
            pool, ctx, dest, state, chunk, committed.get(chunk.index), listing, taken, progress
        )
        progress.chunk_done()
        with lock:
            if outcome.quarantined:
                summary.quarantined.append(outcome.quarantined)
            if outcome.record.key is None:
                summary.chunks_empty += 1
            summary.chunks_exported += 1
        return outcome.record

    with Progress(ctx.exp.name, ctx.plan.chunk_count) as progress:
        progress.chunks_done = summary.chunks_skipped
        with _executor(ctx.exp.parallel) as pool_exec:
            futures: list[Future[CommitRecord]] = [pool_exec.submit(work, c, progress) for c in todo]
            _, not_done = wait(futures, return_when=FIRST_EXCEPTION)
            for fut in not_done:
                fut.cancel()
            wait(not_done)
            for fut in futures:
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    rec = fut.result()
                    records[rec.chunk] = rec
            for fut in futures:
                if fut.done() and not fut.cancelled() and fut.exception() is not None:
                    raise fut.exception()  # type: ignore[misc]
        progress.report()
    return records


@contextmanager
def _executor(workers: int) -> Iterator[ThreadPoolExecutor]:
    ex = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="rivet-chunk")
    try:
        yield ex
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _export_with_retries(
    pool: SourcePool,
    ctx: RunContext,
    dest: Destination,
    state: StateStore,
    chunk: Chunk,
    committed: CommitRecord | None,
    listing: dict[str, ObjectInfo],
    taken: set[str],
    progress: Progress,
) -> ChunkOutcome:
    """`export_chunk` with up to `max_retries` retries of transient failures (0: one attempt)."""
    attempts = ctx.cfg.source.tuning.max_retries + 1
    for attempt in range(1, attempts + 1):
        state.mark_chunk(ctx.run_id, chunk.index, "running")
        rows_this_attempt = [0]

        def on_rows(n: int, counter: list[int] = rows_this_attempt) -> None:
            counter[0] += n
            progress.add_rows(n)

        try:
            # the first attempt decides from the run's listing; a retry looks again (an attempt aborts its upload)
            outcome = export_chunk(
                ctx,
                pool.get(),
                dest,
                chunk,
                committed,
                listing=listing if attempt == 1 else None,
                quarantined_keys=taken,
                on_rows=on_rows,
            )
        except RivetError as exc:
            progress.add_rows(-rows_this_attempt[0])
            state.mark_chunk(ctx.run_id, chunk.index, "failed", exc.message)
            if exc.permanent or attempt == attempts:
                log("chunk_failed", level="error", chunk=chunk.index, attempt=attempt, error=exc.message)
                raise
            delay = min(30.0, 2.0 ** (attempt - 1))
            log("chunk_retry", level="warning", chunk=chunk.index, attempt=attempt, delay_s=delay, error=exc.message)
            time.sleep(delay)
            continue
        record = outcome.record
        state.commit_chunk(ctx.run_id, record)
        log("chunk_committed", chunk=chunk.index, key=record.key or "-", rows=record.rows, bytes=record.size_bytes)
        return outcome
    raise AssertionError("unreachable")


def is_streaming(exp: ExportConfig) -> bool:
    return exp.destination.type is DestinationType.STDOUT
