"""Operator scale benchmark: an N-chunk export (default 2,000, parallelism 8) on the local cluster.

Reports, side by side: wall time; the same number of chunk Jobs run by the cluster alone (a baseline of
bare Jobs running the same `rivet chunk` command, no operator) so the difference is the operator's own
overhead per chunk; status size; ledger size; operator peak RSS.

    .venv/bin/python -m bench.operator_scale [--chunks 2000] [--parallelism 8]

Needs the test bed up (`make cluster-up image`). Uses PostgreSQL and SeaweedFS bound to the bridge address.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import cluster_bed, procstat
from rivet.config.loader import load_config_text
from rivet.engine.planning import plan_for
from tests.e2e.conftest import Cluster
from tests.e2e.operator_env import Operator
from tests.fixtures.objectstores import S3Server

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=2000)
    ap.add_argument("--parallelism", type=int, default=8)
    ap.add_argument("--baseline-jobs", type=int, default=96, help="bare Jobs timed to estimate per-chunk Job cost")
    ap.add_argument("--baseline-only", action="store_true", help="time the bare Jobs alone (re-measure on a quiet bed)")
    args = ap.parse_args()
    info, cluster, pg, s3 = cluster_bed.bed()
    ns = f"bench-scale-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    op = Operator(cluster, ns, Path(tempfile.mkdtemp()) / "operator.log")
    try:
        pg.execute("CREATE TABLE public.scale (id bigint PRIMARY KEY, v text)")
        pg.execute(f"INSERT INTO public.scale SELECT g, 'v' || g FROM generate_series(1, {args.chunks * 5}) g")
        s3.client().create_bucket(Bucket="scale")
        cluster_bed.create_secrets(cluster, ns, pg, s3)
        spec = cluster_bed.export_spec(
            s3, "scale", "public.scale", "s/", chunkSize=5, parallelism=args.parallelism, format="csv"
        )
        # baseline: bare Jobs running the same command, `parallelism` at a time, no operator involved
        base_t = baseline(cluster, ns, info, args, pg.url, s3)
        if args.baseline_only:
            print(json.dumps({"baseline_jobs": args.baseline_jobs, "s_per_job": round(base_t / args.baseline_jobs, 3)}))
            return 0
        op.start()
        peak = 0.0
        t0 = time.monotonic()
        cluster.apply(
            {"apiVersion": "rivet.dev/v1alpha1", "kind": "RivetExport", "metadata": {"name": "scale"}, "spec": spec}, ns
        )
        st: dict[str, Any] = {}
        while True:
            peak = max(peak, procstat.rss_mb(op.proc.pid) if op.proc else 0.0)
            st = cluster.get_json("rivetexport", "scale", namespace=ns).get("status") or {}
            if st.get("phase") in ("Succeeded", "Failed"):
                break
            time.sleep(2)
        wall = time.monotonic() - t0
        ledgers = cluster.get_json("rivetledgers", "-l", "rivet.dev/component=ledger", namespace=ns)["items"]
        ledger_bytes = sum(len(json.dumps((lg.get("status") or {}).get("records") or {})) for lg in ledgers)
        per_job = base_t / args.baseline_jobs
        ideal = per_job * args.chunks
        result = {
            "chunks": args.chunks,
            "parallelism": args.parallelism,
            "phase": st.get("phase"),
            "wall_s": round(wall, 1),
            "baseline_bare_job_s_per_chunk": round(per_job, 3),
            "baseline_wall_s_for_all_chunks": round(ideal, 1),
            "operator_overhead_s_per_chunk": round((wall - ideal) / args.chunks, 3),
            "status_bytes": len(json.dumps(st)),
            "ledger_objects": len(ledgers),
            "ledger_bytes": ledger_bytes,
            "operator_peak_rss_mb": round(peak, 1),
        }
        print(json.dumps(result, indent=2))
        (REPO / "bench" / "operator_scale.json").write_text(json.dumps(result, indent=2) + "\n")
        print(
            f"targets: status < 16384 B ({result['status_bytes']}), operator RSS < 200 MB "
            f"({result['operator_peak_rss_mb']}), overhead <= 0.3 s/chunk ({result['operator_overhead_s_per_chunk']})"
        )
        return 0 if st.get("phase") == "Succeeded" else 1
    finally:
        op.stop()
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        cluster_bed.stop(pg, s3)


def baseline(
    cluster: Cluster, ns: str, info: dict[str, Any], args: argparse.Namespace, url: str, s3: S3Server
) -> float:
    """Run `baseline_jobs` bare chunk Jobs, `parallelism` at a time; return the wall time."""
    # the same source, format and destination (S3) as the operator's chunks, another prefix
    config = (
        "source: {type: postgres, url_env: U}\nexports:\n- name: b\n  table: public.scale\n"
        "  mode: chunked\n  chunk_column: id\n  chunk_size: 5\n  format: csv\n"
        f"  destination: {{type: s3, bucket: scale, prefix: bare/, endpoint: '{s3.endpoint}', region: us-east-1,"
        " access_key_env: AWS_ACCESS_KEY_ID, secret_key_env: AWS_SECRET_ACCESS_KEY}\n"
    )
    cfg = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bcfg"}, "data": {"rivet.yaml": config}}
    cluster.create(cfg, ns)
    # the plan a plan Job would print for keys 1..5n in chunks of 5 (the bare Jobs skip planning)
    exp = load_config_text(config, need_source=False).exports[0]
    plan = plan_for("postgres", exp, 1, args.baseline_jobs * 5)
    plan_doc = json.dumps({"plan": plan.recorded(), "plan_fingerprint": plan.fingerprint})
    pending = list(range(1, args.baseline_jobs + 1))
    running: set[str] = set()
    t0 = time.monotonic()
    while pending or running:
        while pending and len(running) < args.parallelism:
            i = pending.pop(0)
            name = f"bare-{i}"
            job = cluster.job_manifest(
                name,
                [
                    "rivet",
                    "chunk",
                    "-c",
                    "/etc/rivet/rivet.yaml",
                    "-e",
                    "b",
                    "--run-id",
                    "b",
                    "--chunk",
                    str(i),
                    "--plan",
                    plan_doc,
                ],
                env={"U": url, "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key},
                volumes=[{"name": "c", "configMap": {"name": "bcfg"}}, {"name": "t", "emptyDir": {}}],
            )
            c = job["spec"]["template"]["spec"]["containers"][0]
            c["volumeMounts"] = [{"name": "c", "mountPath": "/etc/rivet"}, {"name": "t", "mountPath": "/tmp"}]
            cluster.create(job, ns)
            running.add(name)
        time.sleep(0.5)
        jobs = cluster.get_json("jobs", "-l", "!rivet.dev/component", namespace=ns)["items"]
        for j in jobs:
            n = j["metadata"]["name"]
            if n in running and ((j.get("status") or {}).get("succeeded") or (j.get("status") or {}).get("failed")):
                running.discard(n)
    return time.monotonic() - t0


if __name__ == "__main__":
    sys.exit(main())
