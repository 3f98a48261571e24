"""The operator on the real cluster: RivetExport runs as real Jobs, readiness gates, resume, failures.

Sources and object stores run on the host, bound to the bridge address the pods reach; the operator runs
as a `kopf run` subprocess (see operator_env.py).
"""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any

import pyarrow.parquet as pq
import pytest
import xxhash

from tests.e2e.conftest import Cluster
from tests.e2e.operator_env import Operator, status, wait_phase
from tests.fixtures.databases import DbServer
from tests.fixtures.objectstores import AzuriteServer, S3Server, unique_name

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def seed_pg(pg: DbServer, table: str, rows: int) -> None:
    pg.execute(f"DROP TABLE IF EXISTS {table}")
    pg.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, customer text, amount numeric(12,2), at timestamptz)")
    pg.execute(f"INSERT INTO {table} SELECT g, 'c' || (g % 13), g * 0.5, now() FROM generate_series(1, {rows}) g")


def secrets_for(cluster: Cluster, ns: str, db_url: str, s3: S3Server | None = None) -> None:
    cluster.create(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "src"}, "stringData": {"url": db_url}}, ns
    )
    if s3 is not None:
        cluster.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "lake"},
                "stringData": {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key},
            },
            ns,
        )


def s3_export(name: str, table: str, s3: S3Server, bucket: str, prefix: str, **spec: Any) -> dict[str, Any]:
    body = {
        "source": {"type": "postgres", "urlFrom": {"secretKeyRef": {"name": "src", "key": "url"}}},
        "table": table,
        "mode": "chunked",
        "chunkColumn": "id",
        "chunkSize": 1000,
        "parallelism": 3,
        "destination": {
            "type": "s3",
            "bucket": bucket,
            "prefix": prefix,
            "endpoint": s3.endpoint,
            "region": "us-east-1",
            "accessKeyEnv": "AWS_ACCESS_KEY_ID",
            "secretKeyEnv": "AWS_SECRET_ACCESS_KEY",
        },
        "envFrom": [{"secretRef": {"name": "lake"}}],
        **spec,
    }
    return {"apiVersion": "rivet.dev/v1alpha1", "kind": "RivetExport", "metadata": {"name": name}, "spec": body}


def bucket_objects(s3: S3Server, bucket: str, prefix: str) -> dict[str, bytes]:
    client = s3.client()
    out: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix) :]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def ids_from(objects: dict[str, bytes]) -> list[int]:
    doc = json.loads(objects["manifest.json"])
    ids: list[int] = []
    for part in doc["parts"]:
        ids.extend(pq.read_table(io.BytesIO(objects[part["path"]])).column("id").to_pylist())
    return sorted(ids)


def events(cluster: Cluster, ns: str) -> list[dict[str, Any]]:
    return list(cluster.get_json("events", namespace=ns)["items"])


def assert_no_secret(texts: list[str], secrets: list[str]) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_chunked_export_reaches_ready_and_validates(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server, kstatus: Any
) -> None:
    ns = namespace
    seed_pg(pod_pg, "public.orders_e2e", 25_000)
    bucket = unique_name()
    pod_s3.client().create_bucket(Bucket=bucket)
    secrets_for(cluster, ns, pod_pg.url, pod_s3)
    cluster.apply(s3_export("orders", "public.orders_e2e", pod_s3, bucket, "exports/{export}/{run_id}/"), ns)
    assert (
        kstatus(cluster.get_json("rivetexport", "orders", namespace=ns))["status"] == "InProgress"
    )  # never ready when new
    # the three readers GitOps tools use: condition Ready, flat phase, and kstatus-style conditions
    cluster.kubectl("wait", "--for=condition=Ready", "rivetexport/orders", "--timeout=600s", namespace=ns, timeout=660)
    cluster.kubectl(
        "wait", "--for=jsonpath={.status.phase}=Succeeded", "rivetexport/orders", "--timeout=60s", namespace=ns
    )
    st = status(cluster, ns, "rivetexport", "orders")
    conds = {c["type"]: c for c in st["conditions"]}
    gen = cluster.get_json("rivetexport", "orders", namespace=ns)["metadata"]["generation"]
    assert conds["Ready"]["status"] == "True" and conds["Reconciling"]["status"] == "False"
    assert conds["Stalled"]["status"] == "False" and st["observedGeneration"] == gen
    assert kstatus(cluster.get_json("rivetexport", "orders", namespace=ns))["status"] == "Current"
    assert all(c["observedGeneration"] == gen for c in conds.values())
    assert st["chunks"]["total"] == 25 and st["chunks"]["committed"] == 25 and st["chunks"]["committedRanges"] == "1-25"
    assert st["rowsWritten"] == 25_000 and st["manifest"]["rowCount"] == 25_000 and st["manifest"]["partCount"] == 25
    prefix = f"exports/orders/{st['runId']}/"
    assert st["resolvedPrefix"] == f"s3://{bucket}/{prefix}"
    objects = bucket_objects(pod_s3, bucket, prefix)
    manifest = objects["manifest.json"]
    assert st["manifest"]["fingerprint"] == "xxh3:" + xxhash.xxh3_64_hexdigest(manifest)
    assert objects["_SUCCESS"].decode().strip() == st["success"] == st["manifest"]["fingerprint"]
    assert ids_from(objects) == list(range(1, 25_001))
    assert not [k for k in objects if k.startswith("_quarantine/")]
    assert len(json.dumps(st)) < 16 * 1024
    # finished chunk Jobs are cleaned up as they are recorded
    assert cluster.get_json("jobs", "-l", "rivet.dev/component=chunk", namespace=ns)["items"] == []
    printed = cluster.kubectl("get", "rivetexport", "orders", namespace=ns).stdout
    assert "Succeeded" in printed and "25/25" in printed and "True" in printed

    # a validation of the certified prefix is Ready; after tampering a part a new one fails with its kind
    val = {
        "apiVersion": "rivet.dev/v1alpha1",
        "kind": "RivetValidation",
        "metadata": {"name": "check"},
        "spec": {"exportRef": {"name": "orders"}, "envFrom": [{"secretRef": {"name": "lake"}}]},
    }
    cluster.apply(val, ns)
    cluster.kubectl(
        "wait", "--for=condition=Ready", "rivetvalidation/check", "--timeout=300s", namespace=ns, timeout=330
    )
    vst = status(cluster, ns, "rivetvalidation", "check")
    assert vst["passed"] is True and vst["partsVerified"] == 25 and vst["resolvedPrefix"] == st["resolvedPrefix"]
    key = json.loads(manifest)["parts"][4]["path"]
    pod_s3.client().put_object(Bucket=bucket, Key=prefix + key, Body=b"tampered")
    cluster.apply({**val, "metadata": {"name": "check2"}}, ns)
    vst2 = wait_phase(cluster, ns, "rivetvalidation", "check2", ("Failed", "Succeeded"), timeout=300)
    assert vst2["phase"] == "Failed" and vst2["passed"] is False
    assert [f["kind"] for f in vst2["failures"]] == ["part_size_mismatch"] and vst2["failures"][0]["path"] == key
    stalled = {c["type"]: c["status"] for c in vst2["conditions"]}
    assert stalled == {"Ready": "False", "Reconciling": "False", "Stalled": "True"}
    # a validation's Job goes once its verdict is read, failed or passed (intervals must not pile them up)
    cluster.wait_for(
        "the validation Jobs cleaned up",
        lambda: (
            not [
                j
                for j in cluster.get_json("jobs", namespace=ns)["items"]
                if (j["metadata"].get("labels") or {}).get("rivet.dev/component") == "validate"
            ]
        ),
        timeout=60,
    )

    # an edit that changes nothing about the data (labels, parallelism, retries) starts no new run
    cluster.kubectl(
        "patch",
        "rivetexport",
        "orders",
        "--type=merge",
        "-p",
        json.dumps({"metadata": {"labels": {"team": "data"}}, "spec": {"parallelism": 5, "maxChunkRetries": 1}}),
        namespace=ns,
    )
    gen2 = cluster.get_json("rivetexport", "orders", namespace=ns)["metadata"]["generation"]
    assert gen2 > gen
    st2 = cluster.wait_for(
        "the edit observed",
        lambda: (s2 := status(cluster, ns, "rivetexport", "orders")).get("observedGeneration") == gen2 and s2,
        timeout=60,
    )
    assert st2["runId"] == st["runId"] and st2["phase"] == "Succeeded" and st2["success"] == st["success"]
    assert cluster.get_json("jobs", namespace=ns)["items"] == []
    assert "SpecChanged" not in {e["reason"] for e in events(cluster, ns)}

    reasons = {e["reason"] for e in events(cluster, ns)}
    assert {"RunStarted", "Planned", "ChunksCommitted", "Succeeded", "Passed", "ValidationFailed"} <= reasons
    secret_values = [pod_pg.password, pod_s3.secret_key]
    ev_text = json.dumps(events(cluster, ns))
    assert_no_secret([json.dumps(st), json.dumps(vst2), ev_text, operator.logs()], secret_values)


def test_operator_killed_mid_run_resumes_without_reexporting(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server
) -> None:
    ns = namespace
    seed_pg(pod_pg, "public.resume_e2e", 24_000)
    bucket = unique_name()
    pod_s3.client().create_bucket(Bucket=bucket)
    secrets_for(cluster, ns, pod_pg.url, pod_s3)
    cluster.apply(s3_export("resume", "public.resume_e2e", pod_s3, bucket, "r/"), ns)

    def committed() -> int:
        return int((status(cluster, ns, "rivetexport", "resume").get("chunks") or {}).get("committed") or 0)

    cluster.wait_for("some chunks committed", lambda: committed() >= 4, timeout=300)
    operator.kill()  # crash mid-run: running Jobs keep going without it
    time.sleep(8)
    operator.start()
    cluster.kubectl("wait", "--for=condition=Ready", "rivetexport/resume", "--timeout=600s", namespace=ns, timeout=660)
    objects = bucket_objects(pod_s3, bucket, "r/")
    assert ids_from(objects) == list(range(1, 24_001))
    # a committed chunk exported again would have found its own part at the key and quarantined it
    assert not [k for k in objects if k.startswith("_quarantine/")]


def test_chunk_pod_killed_mid_write_is_retried(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server
) -> None:
    ns = namespace
    seed_pg(pod_pg, "public.podkill_e2e", 12_000)
    bucket = unique_name()
    pod_s3.client().create_bucket(Bucket=bucket)
    secrets_for(cluster, ns, pod_pg.url, pod_s3)
    # a slow read (4 ms per row, ~12 s per chunk) so the pod is surely mid-export when it is killed: a
    # function per row, since a LATERAL pg_sleep that names no column may run once per query, not per row;
    # only the chunk Jobs' COPY crawls, the plan Job's bounds query does not
    pod_pg.execute(
        "CREATE OR REPLACE FUNCTION public.podkill_slow(k bigint) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$"
        " BEGIN IF current_query() ILIKE '%copy%' THEN PERFORM pg_sleep(0.004); END IF; RETURN true; END $$"
    )
    slow = s3_export("podkill", "unused", pod_s3, bucket, "p/", parallelism=2, chunkSize=3000)
    del slow["spec"]["table"]
    slow["spec"]["query"] = "SELECT t.* FROM public.podkill_e2e t WHERE public.podkill_slow(t.id)"
    cluster.apply(slow, ns)

    def running_chunk_pod() -> str | None:
        pods = cluster.get_json("pods", "-l", "rivet.dev/component=chunk", namespace=ns)["items"]
        live = [p["metadata"]["name"] for p in pods if p["status"].get("phase") == "Running"]
        return live[0] if live else None

    pod = cluster.wait_for("a running chunk pod", running_chunk_pod, timeout=300, interval=0.2)
    time.sleep(2)  # let it start writing
    cluster.kubectl("delete", "pod", pod, "--grace-period=0", "--force", namespace=ns, check=False)
    cluster.kubectl("wait", "--for=condition=Ready", "rivetexport/podkill", "--timeout=600s", namespace=ns, timeout=660)
    objects = bucket_objects(pod_s3, bucket, "p/")
    assert ids_from(objects) == list(range(1, 12_001))
    # the killed pod's chunk ran again: the Job controller replaces a deleted pod (pod deletion is not a
    # failure against backoffLimit); a pod that fails outright makes the operator retry the chunk instead
    job_name = pod.rsplit("-", 1)[0]
    evs = events(cluster, ns)
    replaced = [e for e in evs if e["reason"] == "SuccessfulCreate" and e["involvedObject"]["name"] == job_name]
    retried = [e for e in evs if e["reason"] == "ChunkRetry"]
    assert len(replaced) >= 2 or len(retried) == 1, (replaced, retried)
    # a force-deleted pod's container may still finish its upload on the node: the retry then finds an
    # object the ledger does not know, and moves it aside (never deletes it). Only the killed chunk may be there.
    killed_chunk = int(job_name.rsplit("-c", 1)[1].split("-")[0])
    quarantined = [k for k in objects if k.startswith("_quarantine/")]
    assert all(k.endswith(f"/part-{killed_chunk:06d}.parquet") for k in quarantined), quarantined


def test_mariadb_export_to_azurite(
    cluster: Cluster, namespace: str, operator: Operator, pod_mysql: DbServer, pod_azurite: AzuriteServer
) -> None:
    ns = namespace
    db = unique_name().replace("-", "_")
    pod_mysql.execute(f"CREATE DATABASE {db}")
    pod_mysql.execute(f"CREATE TABLE {db}.items (id int unsigned PRIMARY KEY, name varchar(20), ok tinyint(1))")
    pod_mysql.executemany(f"INSERT INTO {db}.items VALUES (%s, %s, %s)", [(i, f"n{i}", i % 2) for i in range(1, 5001)])
    container = unique_name()
    pod_azurite.service().create_container(container)
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "src"},
            "stringData": {"url": pod_mysql.url_for(db)},
        },
        ns,
    )
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "az"},
            "stringData": {"AZURE_KEY": pod_azurite.account_key},
        },
        ns,
    )
    spec = {
        "source": {"type": "mysql", "urlFrom": {"secretKeyRef": {"name": "src", "key": "url"}}},
        "table": f"{db}.items",
        "mode": "chunked",
        "chunkColumn": "id",
        "chunkSize": 500,
        "parallelism": 3,
        "format": "csv",
        "destination": {
            "type": "azure",
            "accountName": pod_azurite.account_name,
            "container": container,
            "prefix": "items/",
            "endpoint": pod_azurite.endpoint,
            "accountKeyEnv": "AZURE_KEY",
        },
        "envFrom": [{"secretRef": {"name": "az"}}],
    }
    cluster.apply(
        {"apiVersion": "rivet.dev/v1alpha1", "kind": "RivetExport", "metadata": {"name": "items"}, "spec": spec}, ns
    )
    cluster.kubectl("wait", "--for=condition=Ready", "rivetexport/items", "--timeout=600s", namespace=ns, timeout=660)
    st = status(cluster, ns, "rivetexport", "items")
    assert st["rowsWritten"] == 5000 and st["chunks"]["committed"] == 10
    client = pod_azurite.service().get_container_client(container)
    manifest = client.download_blob("items/manifest.json").readall()
    assert client.download_blob("items/_SUCCESS").readall().decode().strip() == st["success"]
    assert st["manifest"]["fingerprint"] == "xxh3:" + xxhash.xxh3_64_hexdigest(manifest)
    assert base64.b64decode(json.loads(manifest)["parts"][0]["content_md5"])


def test_bad_specs_are_rejected_or_stall_naming_the_field(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server, kstatus: Any
) -> None:
    ns = namespace
    secrets_for(cluster, ns, pod_pg.url, pod_s3)
    bad = s3_export("both", "public.x", pod_s3, "b", "p/")
    bad["spec"]["query"] = "SELECT 1"
    rejected = cluster.kubectl("apply", "-f", "-", namespace=ns, input=json.dumps(bad), check=False)
    assert rejected.returncode != 0 and "exactly one of table or query" in rejected.stderr
    # one spelling per concept: an Azure container is `container`, `bucket` belongs to S3 and GCS
    azure = s3_export("az", "public.x", pod_s3, "b", "p/")
    azure["spec"]["destination"] = {
        "type": "azure",
        "accountName": "a",
        "container": "c",
        "bucket": "c",
        "accountKeyEnv": "K",
    }
    rejected = cluster.kubectl("apply", "-f", "-", namespace=ns, input=json.dumps(azure), check=False)
    assert rejected.returncode != 0 and "bucket applies to destination type s3 or gcs only" in rejected.stderr
    # a placeholder typo passes the schema but not the engine's loader: Stalled, naming the field
    typo = s3_export("typo", "public.x", pod_s3, "b", "x/{exprot}/")
    cluster.apply(typo, ns)
    st = wait_phase(cluster, ns, "rivetexport", "typo", ("Failed",), timeout=120)
    stalled = next(c for c in st["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "InvalidSpec"
    assert "spec.destination.prefix" in stalled["message"] and "{exprot}" in stalled["message"]
    assert kstatus(cluster.get_json("rivetexport", "typo", namespace=ns))["status"] == "Failed"  # Flux fails fast


def test_run_over_certified_prefix_stalls_with_success_marker_present(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server
) -> None:
    ns = namespace
    seed_pg(pod_pg, "public.marker_e2e", 2_000)
    bucket = unique_name()
    pod_s3.client().create_bucket(Bucket=bucket)
    secrets_for(cluster, ns, pod_pg.url, pod_s3)
    cluster.apply(s3_export("first", "public.marker_e2e", pod_s3, bucket, "fixed/"), ns)
    cluster.kubectl("wait", "--for=condition=Ready", "rivetexport/first", "--timeout=600s", namespace=ns, timeout=660)
    cluster.apply(s3_export("second", "public.marker_e2e", pod_s3, bucket, "fixed/"), ns)
    st = wait_phase(cluster, ns, "rivetexport", "second", ("Failed", "Succeeded"), timeout=300)
    assert st["phase"] == "Failed" and st["reason"] == "SuccessMarkerPresent"
    assert "spec.force" in st["message"] or "--force" in st["message"]
