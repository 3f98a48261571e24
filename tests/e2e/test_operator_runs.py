"""The operator as a controller, on the real cluster: uid-derived names, fenced runs after a failure,
incremental re-runs that start at the last certified cursor.

Sources and object stores run on the host, bound to the bridge address the pods reach; the operator runs
as a `kopf run` subprocess (see operator_env.py).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.e2e.conftest import Cluster
from tests.e2e.operator_env import REPO, Operator, status, wait_phase
from tests.e2e.test_gitops import run_snippet, snippets
from tests.e2e.test_operator import bucket_objects, ids_from, s3_export, secrets_for, seed_pg
from tests.fixtures.databases import DbServer
from tests.fixtures.objectstores import S3Server, unique_name

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def ready(cluster: Cluster, ns: str, name: str, timeout: int = 600) -> dict[str, Any]:
    cluster.kubectl(
        "wait",
        "--for=condition=Ready",
        f"rivetexport/{name}",
        f"--timeout={timeout}s",
        namespace=ns,
        timeout=timeout + 60,
    )
    return status(cluster, ns, "rivetexport", name)


def test_two_long_names_sharing_a_prefix_run_side_by_side(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server
) -> None:
    ns = namespace
    seed_pg(pod_pg, "public.names_e2e", 3_000)
    bucket = unique_name()
    pod_s3.client().create_bucket(Bucket=bucket)
    secrets_for(cluster, ns, pod_pg.url, pod_s3)
    long = ("warehouse-replication-daily-export-orders-eu", "warehouse-replication-daily-export-orders-us")
    cluster.apply(
        [s3_export(n, "public.names_e2e", pod_s3, bucket, "{export}/{run_id}/", parallelism=2) for n in long], ns
    )
    seen: set[str] = set()

    def both_ready() -> bool:
        seen.update(j["metadata"]["name"] for j in cluster.get_json("jobs", namespace=ns)["items"])
        sts = [status(cluster, ns, "rivetexport", n) for n in long]
        return all(st.get("phase") == "Succeeded" for st in sts)

    cluster.wait_for("both exports Succeeded", both_ready, timeout=600, interval=0.5)
    eu, us = (status(cluster, ns, "rivetexport", n) for n in long)
    assert eu["runId"] != us["runId"] and eu["resolvedPrefix"] != us["resolvedPrefix"]
    for st, name in ((eu, long[0]), (us, long[1])):
        assert st["rowsWritten"] == 3_000 and st["chunks"]["committed"] == 3
        prefix = st["resolvedPrefix"].split(f"s3://{bucket}/", 1)[1]
        assert prefix.startswith(name + "/")
        assert ids_from(bucket_objects(pod_s3, bucket, prefix)) == list(range(1, 3_001))
    assert seen and all(len(n) <= 63 for n in seen)
    uids = {cluster.get_json("rivetexport", n, namespace=ns)["metadata"]["uid"] for n in long}
    owners = {
        c["metadata"]["labels"]["rivet.dev/owner-uid"]
        for c in cluster.get_json("rivetledgers", "-l", "rivet.dev/component=ledger", namespace=ns)["items"]
    }
    assert owners == uids


FENCE_FUNCTION = """
CREATE OR REPLACE FUNCTION public.fence_check(k bigint) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  -- only the chunk Jobs' COPY statements fail or crawl; the plan Job's bounds query does neither
  IF current_query() ILIKE '%copy%' THEN
    IF k <= 1000 THEN
      RAISE EXCEPTION 'fence_check refuses key %', k USING ERRCODE = 'data_exception';
    END IF;
    PERFORM pg_sleep(0.02);
  END IF;
  RETURN true;
END $$
"""


def rivet_validate(s3: S3Server, bucket: str, prefix: str, tmp: Path) -> dict[str, Any]:
    cfg = tmp / "rivet.yaml"
    cfg.write_text(
        "source: {type: postgres, url_env: UNUSED_URL}\n"
        "exports:\n- name: fence\n  table: public.fence_e2e\n"
        f"  destination: {{type: s3, bucket: {bucket}, prefix: '{prefix}', endpoint: '{s3.endpoint}',"
        " region: us-east-1, access_key_env: AWS_ACCESS_KEY_ID, secret_key_env: AWS_SECRET_ACCESS_KEY}\n"
    )
    env = {**os.environ, "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    proc = subprocess.run(
        [sys.executable, "-m", "rivet", "validate", "-c", str(cfg), "--format", "json"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(json.loads(proc.stdout))


def test_a_fixed_spec_reruns_only_after_the_failed_runs_jobs_are_gone_and_the_prefix_validates(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server, tmp_path: Path
) -> None:
    ns = namespace
    seed_pg(pod_pg, "public.fence_e2e", 4_000)
    pod_pg.execute(FENCE_FUNCTION)
    bucket = unique_name()
    pod_s3.client().create_bucket(Bucket=bucket)
    secrets_for(cluster, ns, pod_pg.url, pod_s3)
    # chunk 1 fails permanently (bad data for the query), chunks 2-4 are slow (20 s each)
    broken = s3_export("fence", "unused", pod_s3, bucket, "fence/", parallelism=4)
    del broken["spec"]["table"]
    broken["spec"]["query"] = "SELECT t.* FROM public.fence_e2e t WHERE public.fence_check(t.id)"
    cluster.apply(broken, ns)

    def slow_chunks_running() -> bool:
        pods = cluster.get_json("pods", "-l", "rivet.dev/component=chunk", namespace=ns)["items"]
        return sum(1 for p in pods if p["status"].get("phase") == "Running") >= 2

    def phase() -> str | None:
        return status(cluster, ns, "rivetexport", "fence").get("phase")

    cluster.wait_for(
        "slow chunk pods running", lambda: slow_chunks_running() or phase() == "Failed", timeout=300, interval=0.3
    )
    failed = wait_phase(cluster, ns, "rivetexport", "fence", ("Failed",), timeout=300)
    assert "chunk 1 failed" in failed["message"] and "fence_check refuses key" in failed["message"]
    first_run = failed["runId"]
    # fix the spec at once, while the cancelled run's pods may still be going
    fixed = json.loads(json.dumps(broken))
    fixed["spec"]["query"] = "SELECT t.* FROM public.fence_e2e t"
    cluster.apply(fixed, ns)
    st = ready(cluster, ns, "fence")
    assert st["runId"] != first_run and st["rowsWritten"] == 4_000
    reasons = [e["reason"] for e in cluster.get_json("events", namespace=ns)["items"]]
    assert "SpecChanged" in reasons
    # after everything ended (no pod of ours left), the certified prefix still validates
    cluster.wait_for(
        "no rivet pod left",
        lambda: not [
            p for p in cluster.get_json("pods", "-l", "app.kubernetes.io/managed-by=rivet-operator", namespace=ns)["items"]
            if p["status"].get("phase") in ("Pending", "Running")
        ],
        timeout=120,
    )  # fmt: skip
    time.sleep(3)
    report = rivet_validate(pod_s3, bucket, "fence/", tmp_path)
    verification = report["exports"][0]["verification"]
    assert verification["passed"] is True and verification["parts_verified"] == 4, verification
    objects = bucket_objects(pod_s3, bucket, "fence/")
    assert ids_from(objects) == list(range(1, 4_001))
    manifest = json.loads(objects["manifest.json"])
    assert manifest["run_id"] == st["runId"]
    # no Job of the failed run is left, and the finished run's Jobs are cleaned
    assert cluster.get_json("jobs", namespace=ns)["items"] == []


def seed_incremental(pg: DbServer, table: str) -> None:
    """ids 1..100, updated_at 2026-01-01 00:01 .. 01:40 UTC (one minute apart)."""
    pg.execute(f"DROP TABLE IF EXISTS {table}")
    pg.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL)")
    pg.execute(
        f"INSERT INTO {table} SELECT g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'"
        " FROM generate_series(1, 100) g"
    )


def add_ten_rows(pg: DbServer, table: str) -> None:
    """ids 101..110, updated_at 2026-01-02 01:41 .. 01:50 UTC: after every seeded row."""
    pg.execute(
        f"INSERT INTO {table} SELECT g, timestamptz '2026-01-02 00:00:00+00' + g * interval '1 minute'"
        " FROM generate_series(101, 110) g"
    )


def test_an_incremental_rerun_exports_only_rows_from_the_last_certified_cursor(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server
) -> None:
    ns = namespace
    seed_incremental(pod_pg, "public.inc_e2e")
    bucket = unique_name()
    pod_s3.client().create_bucket(Bucket=bucket)
    secrets_for(cluster, ns, pod_pg.url, pod_s3)
    spec = s3_export("inc", "public.inc_e2e", pod_s3, bucket, "inc/{run_id}/")
    for key in ("chunkColumn", "chunkSize", "parallelism"):
        del spec["spec"][key]
    spec["spec"].update(mode="incremental", cursorColumn="updated_at")
    cluster.apply(spec, ns)
    first = ready(cluster, ns, "inc")
    assert first["rowsWritten"] == 100
    assert first["cursor"]["column"] == "updated_at" and first["cursor"]["runId"] == first["runId"]
    assert first["cursor"]["value"]["$type"] == "datetime" and first["cursor"]["value"]["value"].startswith(
        "2026-01-01T01:40:00"
    )
    generation = cluster.get_json("rivetexport", "inc", namespace=ns)["metadata"]["generation"]
    # 10 new rows, then "run again" (a documented annotation: no spec change, no new generation)
    add_ten_rows(pod_pg, "public.inc_e2e")
    proc = run_snippet(cluster, snippets()["rerun"], ns, "inc")  # docs/gitops.md, verbatim
    assert proc.returncode == 0, proc.stderr
    token = cluster.get_json("rivetexport", "inc", namespace=ns)["metadata"]["annotations"]["rivet.dev/rerun"]

    def second_done() -> dict[str, Any] | None:
        st = status(cluster, ns, "rivetexport", "inc")
        return st if st.get("runId") != first["runId"] and st.get("phase") == "Succeeded" else None

    second = cluster.wait_for("the second run certified", second_done, timeout=600, interval=1)
    assert cluster.get_json("rivetexport", "inc", namespace=ns)["metadata"]["generation"] == generation
    assert second["rowsWritten"] == 11 and second["rerun"] == token  # 10 new rows + the boundary row
    prefix = second["resolvedPrefix"].split(f"s3://{bucket}/", 1)[1]
    objects = bucket_objects(pod_s3, bucket, prefix)
    manifest = json.loads(objects["manifest.json"])
    ids = sorted(
        i
        for part in manifest["parts"]
        for i in pq.read_table(io.BytesIO(objects[part["path"]])).column("id").to_pylist()
    )
    assert ids == [100, *range(101, 111)]
    assert manifest["cursor"]["column"] == "updated_at" and manifest["cursor"]["low"].startswith("2026-01-01T01:40:00")
    assert (
        second["cursor"]["value"]["value"].startswith("2026-01-02T01:50:00")
        and second["cursor"]["runId"] == second["runId"]
    )
    reasons = [e["reason"] for e in cluster.get_json("events", namespace=ns)["items"]]
    assert "RerunRequested" in reasons
