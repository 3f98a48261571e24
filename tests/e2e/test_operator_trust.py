"""The two silent-data defects reproduced on the cluster (issue #21), now refused: a forged ledger ConfigMap
made an export certify 2,000 of 3,000 rows, and a mid-run edit certified one prefix with two databases' rows.
Every test compares the certified parts with the source, row for row."""

from __future__ import annotations

import io
import json
import subprocess
import time
from typing import Any

import pyarrow.parquet as pq
import pytest

from rivet_operator.specs import configmaps, names
from rivet_operator.specs.names import Owner
from tests.e2e.conftest import Cluster
from tests.e2e.operator_env import Operator, status
from tests.e2e.test_operator import bucket_objects, events, ids_from, s3_export, secrets_for, seed_pg
from tests.e2e.test_operator_runs import ready
from tests.fixtures.databases import DbServer
from tests.fixtures.objectstores import S3Server, unique_name

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def lake(cluster: Cluster, ns: str, pg: DbServer, s3: S3Server) -> str:
    """A fresh bucket, and the source and store Secrets every export here reads: the bucket's name."""
    bucket = unique_name()
    s3.client().create_bucket(Bucket=bucket)
    secrets_for(cluster, ns, pg.url, s3)
    return bucket


def wait_status(cluster: Cluster, ns: str, name: str, what: str, test: Any, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    st: dict[str, Any] = {}
    while time.monotonic() < deadline:
        st = status(cluster, ns, "rivetexport", name)
        if test(st):
            return st
        time.sleep(0.3)
    raise AssertionError(f"rivetexport/{name} never reached {what}; last status: {st}\n{cluster.describe(ns)}")


def test_a_forged_ledger_configmap_cannot_make_an_export_skip_a_chunk(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server
) -> None:
    ns = namespace
    seed_pg(pod_pg, "public.forged_e2e", 3_000)
    bucket = lake(cluster, ns, pod_pg, pod_s3)
    cluster.apply([s3_export("forged", "public.forged_e2e", pod_s3, bucket, "{export}/", parallelism=1)], ns)
    st = wait_status(cluster, ns, "forged", "a run id", lambda st: bool(st.get("runId")))
    uid = cluster.get_json("rivetexport", "forged", namespace=ns)["metadata"]["uid"]
    owner = Owner("rivet.dev/v1alpha1", "RivetExport", "forged", uid, ns)
    run = st["runId"]
    # what any user with ConfigMap rights in the namespace could write: our name, labels and owner
    # reference, and a record claiming chunk 3 committed with nothing in it
    forged = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.ledger_shard(owner, run, 0),
            "labels": names.labels(owner, run, "ledger"),
            "ownerReferences": [owner.reference()],
        },
        "data": {
            configmaps.record_key(3): json.dumps(
                {
                    "chunk": 3,
                    "key": None,
                    "rows": 0,
                    "size_bytes": 0,
                    "content_fingerprint": None,
                    "content_md5": None,
                    "schema_fingerprint": None,
                }
            )
        },
    }
    cluster.create(forged, ns)
    st = ready(cluster, ns, "forged")
    assert st["rowsWritten"] == 3_000 and st["chunks"]["committed"] == 3 and st["manifest"]["rowCount"] == 3_000
    assert ids_from(bucket_objects(pod_s3, bucket, "forged/")) == list(range(1, 3_001))
    reasons = [e.get("reason") for e in events(cluster, ns)]
    assert "ForeignObjectIgnored" in reasons
    ledgers = cluster.get_json("rivetledgers", "-l", f"rivet.dev/owner-uid={uid}", namespace=ns)["items"]
    (shard,) = ledgers
    assert sorted(shard["status"]["records"]) == [configmaps.record_key(i) for i in (1, 2, 3)]


def kubectl_patch(cluster: Cluster, ns: str, patch: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "patch", "rivetexport", "held", "--type=merge", "-p", json.dumps(patch), namespace=ns, check=False
    )


def test_a_held_run_refuses_a_new_source_and_certifies_one_database(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server
) -> None:
    """The reproduced case: a refused jobTemplate holds the run (phase Failed, its stage still exporting);
    pointing the source at another database was then accepted and the rest of the run read it. Now the API
    server refuses the edit, and fixing the template finishes the run from the one database."""
    ns = namespace
    seed_pg(pod_pg, "public.held_e2e", 5_000)
    bucket = lake(cluster, ns, pod_pg, pod_s3)
    cluster.create(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "src2"}, "stringData": {"url": pod_pg.url}}, ns
    )
    cluster.apply([s3_export("held", "public.held_e2e", pod_s3, bucket, "{export}/", parallelism=1)], ns)
    wait_status(cluster, ns, "held", "stage exporting", lambda st: st.get("stage") == "exporting")
    refused = kubectl_patch(cluster, ns, {"spec": {"jobTemplate": {"securityContext": {"runAsUser": 0}}}})
    assert refused.returncode == 0, refused.stderr
    st = wait_status(cluster, ns, "held", "held (Failed while exporting)", lambda st: st.get("phase") == "Failed")
    assert st["stage"] == "exporting" and st["reason"] == "JobTemplateRefused"
    edit = kubectl_patch(cluster, ns, {"spec": {"source": {"urlFrom": {"secretKeyRef": {"name": "src2"}}}}})
    assert edit.returncode != 0 and "immutable while a run is active" in edit.stderr
    fixed = kubectl_patch(cluster, ns, {"spec": {"jobTemplate": None}})
    assert fixed.returncode == 0, fixed.stderr
    st = ready(cluster, ns, "held")
    assert st["rowsWritten"] == 5_000 and st["chunks"]["committed"] == 5
    assert ids_from(bucket_objects(pod_s3, bucket, "held/")) == list(range(1, 5_001))
    spec = cluster.get_json("rivetexport", "held", namespace=ns)["spec"]
    assert spec["source"]["urlFrom"]["secretKeyRef"]["name"] == "src"


def test_keys_of_an_envfrom_configmap_cannot_change_which_code_a_job_runs(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server
) -> None:
    """Admission sees the names in a spec, not the keys inside the ConfigMaps it pulls in with envFrom. One
    such ConfigMap sets PYTHONPATH to a mounted directory holding a sitecustomize.py that would make every
    Job fail (and could do anything else), plus LD_PRELOAD: the Jobs run an isolated interpreter by
    absolute path with the loader's variables pinned, so the export is exact and Ready."""
    ns = namespace
    seed_pg(pod_pg, "public.isolated_e2e", 2_000)
    bucket = lake(cluster, ns, pod_pg, pod_s3)
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "hooks"},
            "data": {"sitecustomize.py": "import sys\nprint('hijacked', file=sys.stderr)\nsys.exit(97)\n"},
        },
        ns,
    )
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "loader-env"},
            "data": {"PYTHONPATH": "/var/hooks", "LD_PRELOAD": "/var/hooks/nothing.so", "PATH": "/var/hooks"},
        },
        ns,
    )
    spec = s3_export("isolated", "public.isolated_e2e", pod_s3, bucket, "{export}/", parallelism=2)
    spec["spec"]["envFrom"].append({"configMapRef": {"name": "loader-env"}})
    spec["spec"]["jobTemplate"] = {
        "volumes": [{"name": "hooks", "configMap": {"name": "hooks"}}],
        "volumeMounts": [{"name": "hooks", "mountPath": "/var/hooks"}],
    }
    cluster.apply([spec], ns)
    st = ready(cluster, ns, "isolated")
    assert st["rowsWritten"] == 2_000
    assert ids_from(bucket_objects(pod_s3, bucket, "isolated/")) == list(range(1, 2_001))


def test_a_chunk_failing_again_and_again_is_one_event_with_a_count(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server
) -> None:
    """Retry Events are aggregated on the real API server: one ChunkRetry Event per chunk, its count
    patched, not one more Event per attempt. Chunk 1's reads lose their connection (the backend is
    terminated, a retryable fault); the run ends RetriesExhausted with nothing certified."""
    ns = namespace
    seed_pg(pod_pg, "public.retry_e2e", 2_000)
    pod_pg.execute(
        "CREATE OR REPLACE FUNCTION public.retry_fail(k bigint) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$"
        " BEGIN IF current_query() ILIKE '%copy%' AND k <= 1000 THEN"
        " PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN true; END $$"
    )
    bucket = lake(cluster, ns, pod_pg, pod_s3)
    spec = s3_export("retry", "unused", pod_s3, bucket, "{export}/", parallelism=1, maxChunkRetries=3)
    del spec["spec"]["table"]
    spec["spec"]["query"] = "SELECT t.* FROM public.retry_e2e t WHERE public.retry_fail(t.id)"
    cluster.apply([spec], ns)
    st = wait_status(cluster, ns, "retry", "Failed", lambda st: st.get("stage") == "failed", timeout=600)
    assert st["reason"] == "RetriesExhausted" and not st.get("success")
    retried = [e for e in events(cluster, ns) if e.get("reason") == "ChunkRetry"]
    assert len(retried) == 1 and retried[0]["count"] == 3, retried
    assert "attempt 4" in retried[0]["message"]


def test_a_uuid_keyed_table_exports_in_keyset_chunks_each_row_once(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server
) -> None:
    """Issue #20 on the cluster: a uuid chunk key (with NULLs and duplicated values) is split at boundaries
    the database picks; the plan stays opaque to the operator, every row lands in exactly one part."""
    ns = namespace
    pod_pg.execute("DROP TABLE IF EXISTS public.uuid_e2e")
    pod_pg.execute("CREATE TABLE public.uuid_e2e (n bigint PRIMARY KEY, k uuid, note text)")
    pod_pg.execute(
        "INSERT INTO public.uuid_e2e SELECT g,"
        " CASE WHEN g % 97 = 0 THEN NULL WHEN g % 13 = 0 THEN '00000000-0000-0000-0000-00000000000d'::uuid"
        " ELSE md5(g::text)::uuid END, 'row ' || g FROM generate_series(1, 3000) g"
    )
    bucket = lake(cluster, ns, pod_pg, pod_s3)
    spec = s3_export("uuids", "public.uuid_e2e", pod_s3, bucket, "{export}/", parallelism=3, chunkSize=500)
    spec["spec"]["chunkColumn"] = "k"
    cluster.apply([spec], ns)
    st = ready(cluster, ns, "uuids")
    assert st["plan"]["chunkCount"] >= 5 and st["rowsWritten"] == 3_000
    objects = bucket_objects(pod_s3, bucket, "uuids/")
    doc = json.loads(objects["manifest.json"])
    assert doc["part_count"] == st["plan"]["chunkCount"]
    ns_seen: list[int] = []
    for part in doc["parts"]:
        ns_seen.extend(pq.read_table(io.BytesIO(objects[part["path"]])).column("n").to_pylist())
    assert sorted(ns_seen) == list(range(1, 3_001))  # each row exactly once
    planned = [e.get("message", "") for e in events(cluster, ns) if e.get("reason") == "Planned"]
    assert planned and "keyset boundaries of k" in planned[0]
