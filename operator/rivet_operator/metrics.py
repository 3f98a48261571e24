"""Prometheus metrics (runs, chunks, rows, bytes, failures, durations) on an optional HTTP port."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, start_http_server

if TYPE_CHECKING:
    from rivet_operator.export_reconciler import Context

EVENTS = Counter("rivet_events_total", "Transitions announced as Kubernetes Events", ["kind", "reason"])
CHUNKS_COMMITTED = Gauge(
    "rivet_export_chunks_committed", "Committed chunks of the current run", ["namespace", "export"]
)
CHUNKS_TOTAL = Gauge("rivet_export_chunks_total", "Planned chunks of the current run", ["namespace", "export"])
ROWS = Gauge("rivet_export_rows_written", "Rows written by the current run", ["namespace", "export"])
BYTES = Gauge("rivet_export_bytes_written", "Bytes written by the current run", ["namespace", "export"])
RUNS = Counter("rivet_export_runs_total", "Finished runs by outcome", ["namespace", "export", "outcome"])
DURATION = Gauge("rivet_export_last_run_seconds", "Duration of the last finished run", ["namespace", "export"])


def start(port: int) -> None:
    if port:
        start_http_server(port)


def event(kind: str, reason: str) -> None:
    EVENTS.labels(kind, reason).inc()


def observe_export(ctx: Context) -> None:
    labels = (ctx.owner.namespace, ctx.owner.name)
    chunks = ctx.get("chunks") or {}
    CHUNKS_COMMITTED.labels(*labels).set(chunks.get("committed") or 0)
    CHUNKS_TOTAL.labels(*labels).set(chunks.get("total") or 0)
    ROWS.labels(*labels).set(ctx.get("rowsWritten") or 0)
    BYTES.labels(*labels).set(ctx.get("bytesWritten") or 0)
    stage = ctx.patch.get("stage")
    if stage in ("done", "failed"):
        RUNS.labels(*labels, "succeeded" if stage == "done" else "failed").inc()
        started = ctx.get("startedAt")
        if started:
            import datetime as dt

            t0 = dt.datetime.strptime(str(started), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
            DURATION.labels(*labels).set((ctx.now - t0).total_seconds())
