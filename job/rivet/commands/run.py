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

import pyarrow as pa

from rivet.config.model import DestinationType, ExportConfig, Mode, RivetConfig
from rivet.contract.fingerprint import schema_fingerprint
from rivet.contract.manifest import SUCCESS_KEY, CommitRecord, part_key
from rivet.contract.plan import Chunk, Plan, plan_changes
from rivet.contract.prefix import resolve_prefix
from rivet.contract.resume import Decision, decide
from rivet.destinations.base import Destination
from rivet.destinations.factory import open_destination
from rivet.errors import ContractError, RivetError
from rivet.exporter import export_for, quarantine, record_for
from rivet.finalize import run_info, schema_of, utc_now, write_manifest
from rivet.log import log
from rivet.planning import plan_for, read_bounds
from rivet.progress import Progress
from rivet.sources.base import Source
from rivet.sources.factory import open_source
from rivet.sql import chunk_sql, export_sql
from rivet.state import RunRow, StateStore


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


def withdraw_or_refuse(dest: Destination, force: bool, prefix_uri: str) -> None:
    """M8: a certified prefix is refused unless forced; a forced run removes `_SUCCESS` before any byte changes."""
    if dest.head(SUCCESS_KEY) is None:
        return
    if not force:
        raise ContractError(
            f"{prefix_uri} already holds _SUCCESS (a certified export); rerun with --force to replace it,"
            " or change the prefix (e.g. add {run_id} or {date})",
            reason="SuccessMarkerPresent",
        )
    dest.delete(SUCCESS_KEY)
    log("success_marker_withdrawn", prefix=prefix_uri)


def run_export(cfg: RivetConfig, exp: ExportConfig, opts: RunOptions, state: StateStore) -> ExportSummary:
    started = time.monotonic()
    run_id, run_date, started_at, existing = _resolve_run(state, exp, opts)
    prefix = resolve_prefix(exp.destination.template, export=exp.name, date=run_date, run_id=run_id)
    dest = open_destination(exp.destination, prefix)
    summary = ExportSummary(export_name=exp.name, run_id=run_id, resolved_prefix=dest.uri())
    log("run_start", export=exp.name, run_id=run_id, prefix=dest.uri(), resume=existing is not None)
    dest.check()
    withdraw_or_refuse(dest, opts.force, dest.uri())
    pool = SourcePool(cfg)
    try:
        source = pool.get()
        cursor_start = existing.cursor_start if existing else state.cursor(exp.name)
        if existing is not None:
            plan = plan_for(source.engine, exp, existing.plan.lo, existing.plan.hi)
            changed = plan_changes(existing.plan, plan)
            if changed:
                raise ContractError(
                    f"cannot resume run {run_id}: the plan changed ({'; '.join(changed)});"
                    " restore the definition or start a new run without --resume",
                    reason="PlanChanged",
                )
        else:
            lo, hi = read_bounds(source, exp) if exp.mode is Mode.CHUNKED else (None, None)
            plan = plan_for(source.engine, exp, lo, hi)
            state.create_run(
                RunRow(run_id, exp.name, plan, prefix, run_date.isoformat(), started_at, "running", cursor_start)
            )
        base_sql = export_sql(source.engine, exp, run_date=run_date, cursor=cursor_start)
        schema = source.describe(base_sql)  # unsupported types fail here, before any byte is written
        summary.chunks_total = plan.chunk_count
        records = _export_chunks(pool, cfg, exp, plan, dest, state, run_id, schema, base_sql, summary)
        status = "success"
    except KeyboardInterrupt:
        state.set_run_status(run_id, "interrupted")
        raise
    except Exception as exc:
        state.set_run_status(run_id, "failed")
        summary.status, summary.error = "failed", getattr(exc, "message", str(exc))
        raise
    finally:
        pool.close()
    info = run_info(exp, source.engine, dest, run_id, started_at, status, plan, run_date)
    fp, body = write_manifest(
        dest, info, list(records.values()), schema_of(list(records.values()), schema_fingerprint(schema)), True
    )
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
    rec = records.get(1)
    value = rec.max_cursor if rec else None
    if value is not None:
        state.set_cursor(exp.name, value, run_id)


def _export_chunks(
    pool: SourcePool,
    cfg: RivetConfig,
    exp: ExportConfig,
    plan: Plan,
    dest: Destination,
    state: StateStore,
    run_id: str,
    schema: pa.Schema,
    base_sql: str,
    summary: ExportSummary,
) -> dict[int, CommitRecord]:
    committed = state.committed(run_id)
    listing = {o.key: o for o in dest.list()}
    existing_keys = set(listing)
    schema_fp = schema_fingerprint(schema)
    records: dict[int, CommitRecord] = {}
    todo: list[tuple[Chunk, Decision]] = []
    for chunk in plan.chunks():
        key = part_key(chunk.index, exp.format.value)
        record = committed.get(chunk.index)
        decision = decide(record, listing.get(key))
        if decision is Decision.SKIP and record is not None:
            records[chunk.index] = record
            summary.chunks_skipped += 1
        else:
            todo.append((chunk, decision))
    lock = threading.Lock()

    def work(chunk: Chunk, decision: Decision, progress: Progress) -> CommitRecord:
        key = part_key(chunk.index, exp.format.value)
        if decision is Decision.QUARANTINE_EXPORT:
            with lock:
                summary.quarantined.append(quarantine(dest, run_id, key, existing_keys))
        sql = base_sql if chunk.lo is None else chunk_sql(pool.get().engine, exp, chunk.lo, chunk.hi or chunk.lo)
        record = _export_with_retries(pool, cfg, exp, dest, state, run_id, chunk, key, sql, schema, schema_fp, progress)
        progress.chunk_done()
        with lock:
            if record.key is None:
                summary.chunks_empty += 1
            summary.chunks_exported += 1
        return record

    with Progress(exp.name, plan.chunk_count) as progress:
        progress.chunks_done = summary.chunks_skipped
        with _executor(exp.parallel) as pool_exec:
            futures: list[Future[CommitRecord]] = [pool_exec.submit(work, c, d, progress) for c, d in todo]
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
    cfg: RivetConfig,
    exp: ExportConfig,
    dest: Destination,
    state: StateStore,
    run_id: str,
    chunk: Chunk,
    key: str,
    sql: str,
    schema: pa.Schema,
    schema_fp: str,
    progress: Progress,
) -> CommitRecord:
    attempts = cfg.source.tuning.max_retries + 1
    for attempt in range(1, attempts + 1):
        state.mark_chunk(run_id, chunk.index, "running")
        rows_this_attempt = [0]

        def on_rows(n: int, counter: list[int] = rows_this_attempt) -> None:
            counter[0] += n
            progress.add_rows(n)

        try:
            batch = cfg.source.tuning.batch_size
            result = export_for(exp, batch, pool.get(), sql, schema, dest, key, on_rows)
        except RivetError as exc:
            progress.add_rows(-rows_this_attempt[0])
            state.mark_chunk(run_id, chunk.index, "failed", exc.message)
            if exc.permanent or attempt == attempts:
                log("chunk_failed", level="error", chunk=chunk.index, attempt=attempt, error=exc.message)
                raise
            delay = min(30.0, 2.0 ** (attempt - 1))
            log("chunk_retry", level="warning", chunk=chunk.index, attempt=attempt, delay_s=delay, error=exc.message)
            time.sleep(delay)
            continue
        record = record_for(chunk.index, key, result, schema_fp, chunk.key_range)
        state.commit_chunk(run_id, record)
        log("chunk_committed", chunk=chunk.index, key=record.key or "-", rows=record.rows, bytes=record.size_bytes)
        return record
    raise AssertionError("unreachable")


def is_streaming(exp: ExportConfig) -> bool:
    return exp.destination.type is DestinationType.STDOUT
