"""Operator load benchmark: what finished RivetExports cost the operator (not a timed test).

For each count N (default 0, 400, 2000): with the operator stopped, apply N RivetExports and patch their
status straight to a certified run (Succeeded, the fingerprint of their spec recorded), then start the
operator (a `kopf run` on the host, as the e2e suite runs it) and measure for `--seconds` (default 60):
its CPU from /proc/<pid>/stat, its RSS, and the API requests its controller made (counted in its client,
read from its metrics endpoint). Then the time to Ready of a small export (2 chunks) applied next to the
N finished ones. Prints the figures side by side and writes bench/operator_load.json.

    .venv/bin/python -m bench.operator_load [--counts 0,400,2000] [--seconds 60]

Needs the test bed up (`make cluster-up image`); PostgreSQL and SeaweedFS run on the bridge address.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from bench import cluster_bed, procstat
from rivet_operator.api.spec import run_fingerprint
from rivet_operator.api.status import for_phase
from rivet_operator.runtime.client import Kube
from rivet_operator.runtime.login import api_client
from tests.e2e.conftest import Cluster
from tests.e2e.operator_env import Operator

REPO = Path(__file__).resolve().parents[1]
NOW = "2026-11-22T02:00:00Z"


def api_requests(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    return sum(float(m) for m in re.findall(r"^rivet_api_requests_total\{[^}]*\} (\S+)$", text, re.M))


def finished_status(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    message = f"run {name}-20261122t020000: 2000 rows in 2 parts certified"
    return {
        "observedGeneration": 1,
        "phase": "Succeeded",
        "reason": "Succeeded",
        "message": message,
        "stage": "done",
        "runId": f"{name}-20261122t020000",
        "runDate": "2026-11-22",
        "runGeneration": 1,
        "runFingerprint": run_fingerprint(name, spec),
        "startedAt": NOW,
        "completedAt": NOW,
        "rowsWritten": 2000,
        "chunks": {"total": 2, "committed": 2, "running": 0, "failed": 0, "committedRanges": "1-2", "progress": "2/2"},
        "manifest": {"fingerprint": "xxh3:0000000000000000", "partCount": 2, "rowCount": 2000},
        "success": "xxh3:0000000000000000",
        "conditions": for_phase([], "Succeeded", "Succeeded", message, 1, NOW),
    }


async def make_finished(kubeconfig: str, ns: str, count: int, spec: dict[str, Any]) -> float:
    """Create `count` RivetExports and patch each one's status to a certified run; return seconds taken."""
    t0 = time.monotonic()
    kube = Kube(await api_client(kubeconfig))
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        name = f"done-{i:05d}"
        body = {"apiVersion": "rivet.dev/v1alpha1", "kind": "RivetExport", "metadata": {"name": name}, "spec": spec}
        async with gate:
            await kube._call(
                "create", kube.custom.create_namespaced_custom_object, "rivet.dev", "v1alpha1", ns, "rivetexports", body
            )
            await kube.patch_status("rivetexports", ns, name, finished_status(name, spec))

    try:
        await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        await kube.close()
    return time.monotonic() - t0


def measure(
    cluster: Cluster, ns: str, count: int, seconds: int, spec: dict[str, Any], port: int, args: argparse.Namespace
) -> dict[str, Any]:
    made = asyncio.run(make_finished(cluster.kubeconfig, ns, count, spec)) if count else 0.0
    env = {"RIVET_METRICS_PORT": str(port)}
    if args.operator_src:  # another operator's source tree first on the path (e.g. the one before this change)
        env["PYTHONPATH"] = os.pathsep.join([args.operator_src, os.environ.get("PYTHONPATH", "")])
    log = Path(tempfile.mkdtemp()) / "operator.log"
    op = Operator(cluster, ns, log, extra_env=env, module=args.module)
    op.start()
    assert op.proc is not None
    pid = op.proc.pid
    try:
        t0 = time.monotonic()
        cpu0 = procstat.cpu_seconds(pid)
        half: tuple[float, float, float] | None = None
        peak = 0.0
        while (elapsed := time.monotonic() - t0) < seconds:
            time.sleep(1)
            peak = max(peak, procstat.rss_mb(pid))
            if half is None and elapsed >= seconds / 2:
                half = (time.monotonic(), procstat.cpu_seconds(pid), api_requests(port))
        t1, cpu1, req1 = time.monotonic(), procstat.cpu_seconds(pid), api_requests(port)
        assert half is not None
        # time to Ready of a small export applied beside the finished ones
        ready_t0 = time.monotonic()
        cluster.apply(
            {"apiVersion": "rivet.dev/v1alpha1", "kind": "RivetExport", "metadata": {"name": "small"}, "spec": spec}, ns
        )
        cluster.kubectl(
            "wait", "--for=condition=Ready", "rivetexport/small", "--timeout=600s", namespace=ns, timeout=660
        )
        to_ready = time.monotonic() - ready_t0
        req2 = api_requests(port)
        return {
            "finished_exports": count,
            "setup_s": round(made, 1),
            "cpu_pct_first_window": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
            "cpu_pct_second_half": round(100 * (cpu1 - half[1]) / (t1 - half[0]), 1),
            "api_requests_per_s": round(req1 / (t1 - t0), 3),
            "api_requests_total": int(req1),
            "api_requests_per_s_second_half": round((req1 - half[2]) / (t1 - half[0]), 3),
            "rss_mb_end": round(procstat.rss_mb(pid), 1),
            "rss_mb_peak": round(max(peak, procstat.rss_mb(pid)), 1),
            "small_export_to_ready_s": round(to_ready, 1),
            "api_requests_for_small_export": int(req2 - req1),
        }
    finally:
        op.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="0,400,2000")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--metrics-port", type=int, default=19090)
    ap.add_argument("--module", default="rivet_operator.runtime.handlers", help="the kopf module to run")
    ap.add_argument("--operator-src", help="a directory put first on PYTHONPATH (another rivet_operator)")
    ap.add_argument("--out", default="operator_load.json", help="file name under bench/ for the results")
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    _, cluster, pg, s3 = cluster_bed.bed()
    results: list[dict[str, Any]] = []
    try:
        pg.execute("CREATE TABLE public.load (id bigint PRIMARY KEY, v text)")
        pg.execute("INSERT INTO public.load SELECT g, 'v' || g FROM generate_series(1, 2000) g")
        s3.client().create_bucket(Bucket="load")
        for count in counts:
            ns = f"bench-load-{count}-{uuid.uuid4().hex[:6]}"
            cluster.kubectl("create", "namespace", ns)
            try:
                cluster.wait_default_serviceaccount(ns)
                cluster_bed.create_secrets(cluster, ns, pg, s3)
                spec = cluster_bed.export_spec(
                    s3, "load", "public.load", "{export}/{run_id}/", chunkSize=1000, parallelism=2, format="parquet"
                )
                result = measure(cluster, ns, count, args.seconds, spec, args.metrics_port, args)
                results.append(result)
                print(json.dumps(result), flush=True)
            finally:
                cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    finally:
        cluster_bed.stop(pg, s3)
    keys = [k for k in results[0] if k != "finished_exports"] if results else []
    print(f"\n{'finished RivetExports':<34}" + "".join(f"{r['finished_exports']:>12}" for r in results))
    for key in keys:
        print(f"{key:<34}" + "".join(f"{r[key]:>12}" for r in results))
    (REPO / "bench" / args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
