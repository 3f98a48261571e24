"""Prometheus metrics on an optional HTTP port (RIVET_METRICS_PORT). The chart's Grafana dashboard
(helm/rivet-operator/files/grafana-dashboard.json) queries these names; a unit test keeps the two in step."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram, start_http_server

EVENTS = Counter("rivet_events_total", "Transitions announced as Kubernetes Events", ["kind", "reason"])
OBJECTS = Gauge("rivet_objects", "Resources by phase, as last seen by the operator", ["kind", "phase"])
CHUNKS_COMMITTED_TOTAL = Counter(
    "rivet_chunks_committed_total", "Chunks whose commit record reached the ledger", ["namespace"]
)
ROWS_TOTAL = Counter("rivet_rows_written_total", "Rows in committed chunks", ["namespace"])
BYTES_TOTAL = Counter("rivet_bytes_written_total", "Bytes in committed parts", ["namespace"])
RETRIES = Counter("rivet_retries_total", "Failed Jobs given another attempt, by step", ["namespace", "step"])
RUNS = Counter("rivet_export_runs_total", "Finished runs by outcome", ["namespace", "export", "outcome"])
RUN_DURATION = Histogram(
    "rivet_export_run_duration_seconds",
    "Wall time of finished runs, from start to certified (or failed)",
    ["outcome"],
    buckets=(10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)
DURATION = Gauge("rivet_export_last_run_seconds", "Duration of the last finished run", ["namespace", "export"])
CHUNKS_COMMITTED = Gauge(
    "rivet_export_chunks_committed", "Committed chunks of the current run", ["namespace", "export"]
)
CHUNKS_TOTAL = Gauge("rivet_export_chunks_total", "Planned chunks of the current run", ["namespace", "export"])
ROWS = Gauge("rivet_export_rows_written", "Rows written by the current run", ["namespace", "export"])
BYTES = Gauge("rivet_export_bytes_written", "Bytes written by the current run", ["namespace", "export"])
RECONCILES = Counter("rivet_reconcile_total", "Reconciles by kind and result", ["kind", "result"])
RECONCILE_SECONDS = Histogram(
    "rivet_reconcile_duration_seconds",
    "Wall time of one reconcile (observe, decide, apply)",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_DEPTH = Gauge("rivet_workqueue_depth", "Keys waiting in the work queue (ready and delayed)")
API_REQUESTS = Counter("rivet_api_requests_total", "Kubernetes API requests made by the controller", ["verb"])


def start(port: int) -> None:
    if port:
        start_http_server(port)


class PhaseBook:
    """The phase of every resource seen, for `rivet_objects{kind,phase}` (finished ones included)."""

    def __init__(self) -> None:
        self._phase: dict[tuple[str, str, str], str] = {}

    def set(self, kind: str, namespace: str, name: str, phase: str | None) -> None:
        key = (kind, namespace, name)
        old = self._phase.get(key)
        new = phase or "Pending"
        if old == new:
            return
        if old is not None:
            OBJECTS.labels(kind, old).dec()
        self._phase[key] = new
        OBJECTS.labels(kind, new).inc()

    def forget(self, kind: str, namespace: str, name: str) -> None:
        old = self._phase.pop((kind, namespace, name), None)
        if old is not None:
            OBJECTS.labels(kind, old).dec()


PER_EXPORT = (DURATION, CHUNKS_COMMITTED, CHUNKS_TOTAL, ROWS, BYTES)
OUTCOMES = ("succeeded", "failed")


def forget_export(namespace: str, name: str) -> None:
    """Remove an export's series once the object is gone: a schedule that creates a RivetExport a minute
    would otherwise grow the operator's memory and every scrape without end."""
    for gauge in PER_EXPORT:
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name)
    for outcome in OUTCOMES:
        with contextlib.suppress(KeyError):
            RUNS.remove(namespace, name, outcome)


def series_count() -> int:
    """How many per-export series exist now (the bench and tests read it)."""
    return sum(
        len({tuple(sorted(sample.labels.items())) for family in m.collect() for sample in family.samples})
        for m in (*PER_EXPORT, RUNS)
    )


def observe_export(namespace: str, name: str, status: dict[str, object]) -> None:
    labels = (namespace, name)
    chunks = status.get("chunks") if isinstance(status.get("chunks"), dict) else {}
    assert isinstance(chunks, dict)
    CHUNKS_COMMITTED.labels(*labels).set(float(chunks.get("committed") or 0))
    CHUNKS_TOTAL.labels(*labels).set(float(chunks.get("total") or 0))
    ROWS.labels(*labels).set(float(status.get("rowsWritten") or 0))  # type: ignore[arg-type]
    BYTES.labels(*labels).set(float(status.get("bytesWritten") or 0))  # type: ignore[arg-type]
