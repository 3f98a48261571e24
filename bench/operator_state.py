"""Bounded operator state (issue #21 item 6), side by side with the previous behaviour in one run.

1. A 100,000-chunk run, 60,500 chunks committed, 8 chunk Jobs running: one reconcile of the pure controller
   when it reads every ledger shard (what every reconcile did before) against reading only the shards that
   can change (`export.ledger_reads`): wall time of decide, peak Python memory (tracemalloc), record bytes
   read. With `--cluster`, the same shards as real RivetLedger objects on the test cluster: one observe's
   ledger read through the operator's own client (a LIST of every shard against a GET of the open one).
2. 20,000 RivetExports that finish and are deleted (a schedule's churn): per-export metric series left and
   process RSS, without and with their removal (`metrics.forget_export`).

    python -m bench.operator_state [--cluster]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import os
import time
import tracemalloc
from typing import Any

from bench import procstat
from rivet_operator.controller.export import decide_export, ledger_reads
from rivet_operator.controller.model import LedgerView, Observed, Settings
from rivet_operator.controller.outcomes import RUNNING, JobView
from rivet_operator.runtime import metrics
from rivet_operator.specs import configmaps, names
from rivet_operator.specs.names import Owner

CHUNKS = 100_000
COMMITTED = 60_500  # 60 full shards and half of the 61st, which the 8 running chunks write to
PARALLELISM = 8
OWNER = Owner("rivet.dev/v1alpha1", "RivetExport", "scale", "0b9c6a3e-1111-4222-8333-444455556666", "bench")
RUN_ID = "scale-20261207t000000"
NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def record(idx: int) -> str:
    """A commit record of the size real ones have (~300 bytes)."""
    return configmaps.record_text(
        {
            "chunk": idx,
            "key": f"part-{idx:06d}.parquet",
            "rows": 100_000,
            "size_bytes": 12_345_678,
            "content_fingerprint": "xxh3:0123456789abcdef",
            "content_md5": "AAAAAAAAAAAAAAAAAAAAAA==",
            "schema_fingerprint": "xxh3:0123456789abcdef",
            "key_range": [idx * 100_000 - 99_999, idx * 100_000],
        }
    )


def shards() -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for idx in range(1, COMMITTED + 1):
        out.setdefault(configmaps.shard_of(idx), {})[configmaps.record_key(idx)] = record(idx)
    return out


def status(all_shards: dict[int, dict[str, str]]) -> dict[str, Any]:
    summary = {
        str(n): {"count": len(r), "rows": 100_000 * len(r), "bytes": 12_345_678 * len(r)} for n, r in all_shards.items()
    }
    return {
        "stage": "exporting",
        "runId": RUN_ID,
        "runDate": "2026-12-07",
        "runFingerprint": None,
        "plan": {"chunkCount": CHUNKS, "document": "{}"},
        "ledger": {"shards": summary},
    }


def jobs() -> tuple[JobView, ...]:
    run = names.run_key(RUN_ID)
    return tuple(
        JobView(
            name=names.chunk_job(OWNER, RUN_ID, i, 1), run=run, component="chunk", chunk=i, attempt=1, state=RUNNING
        )
        for i in range(COMMITTED + 1, COMMITTED + 1 + PARALLELISM)
    )


def reconcile(all_shards: dict[int, dict[str, str]], incremental: bool) -> dict[str, float]:
    st = status(all_shards)
    running = jobs()
    reads = ledger_reads(st, [j.chunk for j in running if j.chunk]) if incremental else None
    picked = all_shards if reads is None else {n: all_shards.get(n, {}) for n in reads}
    views = tuple(LedgerView(names.ledger_shard(OWNER, RUN_ID, n), names.run_key(RUN_ID), r) for n, r in picked.items())
    spec = {"mode": "chunked", "parallelism": PARALLELISM, "table": "t", "source": {}, "destination": {}}
    obs = Observed(OWNER, 1, spec, st, NOW, jobs=running, ledgers=views, ledger_complete=reads is None)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        decision = decide_export(obs, Settings())
        times.append(time.perf_counter() - t0)
    tracemalloc.start()  # a separate, traced pass: tracing slows decide several times over
    decide_export(obs, Settings())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    patch = next((a.patch for a in decision.actions if hasattr(a, "patch")), {})
    assert (patch.get("chunks") or {}).get("committed") == COMMITTED, patch.get("chunks")
    return {
        "shards_read": len(views),
        "record_bytes_read": sum(len(v) for r in picked.values() for v in r.values()),
        "decide_ms": round(sorted(times)[1] * 1000, 1),
        "decide_peak_mb": round(peak / 2**20, 1),
    }


async def cluster_reads(all_shards: dict[int, dict[str, str]]) -> dict[str, dict[str, float]]:
    """The same ledger as real RivetLedger objects: the observe's read, LIST (before) against GET (after)."""
    from kubernetes_asyncio import config

    from rivet_operator.runtime.client import Kube

    kubeconfig = "/var/lib/rivet-testbed/admin.kubeconfig"
    await config.load_kube_config(config_file=kubeconfig)
    from kubernetes_asyncio import client as k8s

    kube = Kube(k8s.ApiClient())
    ns = "bench-ledger"
    with contextlib.suppress(Exception):
        await kube.core.create_namespace({"metadata": {"name": ns}})
    owner = Owner(OWNER.api_version, OWNER.kind, OWNER.name, OWNER.uid, ns)
    for n, recs in all_shards.items():
        body = configmaps.ledger(owner, RUN_ID, n * configmaps.SHARD_SIZE + 1, "scale")
        body["metadata"].pop("ownerReferences", None)  # no owner object in the bench namespace
        with contextlib.suppress(Exception):
            await kube.create(ns, body)
        await kube.patch_status("rivetledgers", ns, body["metadata"]["name"], {"records": recs})
    selector = names.owned_selector(owner)
    out: dict[str, dict[str, float]] = {}
    for label, read in (
        ("list_all", lambda: kube.list_custom("rivetledgers", ns, selector)),
        ("get_open", lambda: kube.get_custom("rivetledgers", ns, names.ledger_shard(owner, RUN_ID, COMMITTED // 1000))),
    ):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            got = await read()
            times.append(time.perf_counter() - t0)
        size = len(json.dumps(got)) if got else 0
        out[label] = {"median_ms": round(sorted(times)[2] * 1000, 1), "bytes": size}
    await kube.core.delete_namespace(ns)
    await kube.close()
    return out


def churn(remove: bool, objects: int = 20_000) -> dict[str, float]:
    gc.collect()
    before_rss = procstat.rss_mb(os.getpid())
    base = metrics.series_count()
    ns = f"churn-{'after' if remove else 'before'}"
    for i in range(objects):
        name = f"nightly-{i:05d}"
        metrics.observe_export(
            ns, name, {"chunks": {"committed": 4, "total": 4}, "rowsWritten": 10, "bytesWritten": 99}
        )
        metrics.RUNS.labels(ns, name, "succeeded").inc()
        metrics.DURATION.labels(ns, name).set(12.5)
        if remove:
            metrics.forget_export(ns, name)  # the DELETED event of a pruned run
    gc.collect()
    return {
        "series_left": metrics.series_count() - base,
        "rss_growth_mb": round(procstat.rss_mb(os.getpid()) - before_rss, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster", action="store_true", help="also time the reads against the test cluster")
    args = parser.parse_args()
    # the churn first, in a process that holds nothing else yet
    result: dict[str, Any] = {"churn_20000_exports": {"after_removed": churn(True), "before_kept": churn(False)}}
    all_shards = shards()
    result["ledger_100k_chunks"] = {
        "before_read_all": reconcile(all_shards, False),
        "after_read_open": reconcile(all_shards, True),
    }
    if args.cluster:
        result["ledger_on_the_api_server"] = asyncio.run(cluster_reads(all_shards))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
