"""RivetSchedule on the real cluster: a fast cron (every minute) creates one RivetExport per tick, each run
certifies, the incremental cursor is carried from one run to the next through the schedule's status,
history limits prune finished runs, and `kubectl get` / `kubectl wait` read the schedule at a glance."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from tests.e2e.conftest import Cluster
from tests.e2e.operator_env import Operator, status
from tests.e2e.test_gitops import snippets
from tests.e2e.test_operator import bucket_objects, s3_export, secrets_for
from tests.e2e.test_operator_runs import add_ten_rows, seed_incremental
from tests.fixtures.databases import DbServer
from tests.fixtures.objectstores import S3Server, unique_name

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def runs_of(cluster: Cluster, ns: str, schedule: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.get_json(
        "rivetexports", "-l", f"rivet.dev/schedule={schedule}", namespace=ns
    )["items"]
    return sorted(items, key=lambda e: e["metadata"]["annotations"]["rivet.dev/scheduled-at"])


def ids_of_run(s3: S3Server, bucket: str, run: dict[str, Any]) -> list[int]:
    prefix = run["status"]["resolvedPrefix"].split(f"s3://{bucket}/", 1)[1]
    objects = bucket_objects(s3, bucket, prefix)
    manifest = json.loads(objects["manifest.json"])
    return sorted(
        i
        for part in manifest["parts"]
        for i in pq.read_table(io.BytesIO(objects[part["path"]])).column("id").to_pylist()
    )


def apply_documented_schedule(cluster: Cluster, ns: str, pg: DbServer, s3: S3Server, table: str, **spec: Any) -> str:
    """Seed `table` and apply the schedule of docs/gitops.md, verbatim but for the test's connection,
    table, bucket, a one-minute cron, a 50 s deadline and `spec`; return the bucket."""
    seed_incremental(pg, table)
    bucket = unique_name()
    s3.client().create_bucket(Bucket=bucket)
    secrets_for(cluster, ns, pg.url, s3)
    doc = yaml.safe_load(snippets()["schedule"])
    del doc["metadata"]["namespace"]
    test_spec = s3_export("unused", table, s3, bucket, "unused")["spec"]
    template = doc["spec"]["exportTemplate"]["spec"]
    assert template["mode"] == "incremental" and template["cursorColumn"] == "updated_at"
    template.update(table=table, source=test_spec["source"], envFrom=test_spec["envFrom"])
    template["destination"].update(bucket=bucket, endpoint=s3.endpoint, region="us-east-1")
    doc["spec"].update(schedule="* * * * *", startingDeadlineSeconds=50, **spec)
    cluster.apply(doc, ns)
    return bucket


def test_a_minutely_incremental_schedule_carries_its_cursor_from_run_to_run_and_prunes_history(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server
) -> None:
    ns = namespace
    bucket = apply_documented_schedule(cluster, ns, pod_pg, pod_s3, "public.sched_e2e", successfulRunsHistoryLimit=1)
    cluster.kubectl("wait", "--for=condition=Ready", "rivetschedule/orders-nightly", "--timeout=60s", namespace=ns)

    def succeeded_run(after: str | None) -> dict[str, Any] | None:
        st = status(cluster, ns, "rivetschedule", "orders-nightly")
        last = st.get("lastSuccessfulRun")
        return st if last and last != after else None

    first_st = cluster.wait_for(
        "the first scheduled run certified", lambda: succeeded_run(None), timeout=300, interval=2
    )
    first_name = first_st["lastSuccessfulRun"]
    first = cluster.get_json("rivetexport", first_name, namespace=ns)
    assert first["status"]["phase"] == "Succeeded" and first["status"]["rowsWritten"] == 100
    assert "cursor" not in first["spec"]  # the first run starts from scratch
    assert first["metadata"]["labels"]["team"] == "data"
    assert first["metadata"]["ownerReferences"][0]["kind"] == "RivetSchedule"
    assert first["spec"]["exportName"] == "orders-nightly"
    assert first["status"]["resolvedPrefix"].startswith(f"s3://{bucket}/exports/orders-nightly/")
    assert ids_of_run(pod_s3, bucket, first) == list(range(1, 101))
    cursor = first_st["cursor"]
    assert cursor["column"] == "updated_at" and cursor["run"] == first_name
    assert cursor["value"]["$type"] == "datetime" and cursor["value"]["value"].startswith("2026-01-01T01:40:00")

    # ten new rows; the next tick's run starts at the certified cursor
    add_ten_rows(pod_pg, "public.sched_e2e")
    second_st = cluster.wait_for(
        "the next scheduled run certified", lambda: succeeded_run(first_name), timeout=300, interval=2
    )
    second_name = second_st["lastSuccessfulRun"]
    second = cluster.get_json("rivetexport", second_name, namespace=ns)
    assert second["spec"]["cursor"] == cursor["value"]
    assert second["status"]["rowsWritten"] == 11  # 10 new rows + the boundary row (inclusive cursor)
    assert ids_of_run(pod_s3, bucket, second) == [100, *range(101, 111)]
    assert second_st["cursor"]["run"] == second_name
    assert second_st["cursor"]["value"]["value"].startswith("2026-01-02T01:50:00")

    # successfulRunsHistoryLimit 1: the first run is pruned once the second's cursor is in the status
    def pruned() -> bool:
        names = [
            r["metadata"]["name"]
            for r in runs_of(cluster, ns, "orders-nightly")
            if r.get("status", {}).get("phase") == "Succeeded"
        ]
        return names == [second_name] or (len(names) == 1 and names[0] != first_name)

    cluster.wait_for("the first run pruned", pruned, timeout=120, interval=2)
    assert cluster.kubectl("get", "rivetexport", first_name, namespace=ns, check=False).returncode != 0

    table = cluster.kubectl("get", "rivetschedule", "orders-nightly", namespace=ns).stdout
    header = table.splitlines()[0].split()
    assert header[:6] == ["NAME", "SCHEDULE", "TIME", "ZONE", "SUSPEND", "READY"], table
    reasons = {e["reason"] for e in cluster.get_json("events", namespace=ns)["items"]}
    assert {"SuccessfulCreate", "RunSucceeded"} <= reasons, reasons

    # suspend: no new run after the next tick; the schedule stays Ready
    cluster.kubectl(
        "patch", "rivetschedule", "orders-nightly", "--type=merge", "-p", '{"spec":{"suspend":true}}', namespace=ns
    )
    cluster.wait_for(
        "the suspension observed",
        lambda: status(cluster, ns, "rivetschedule", "orders-nightly").get("message", "").startswith("suspended"),
        timeout=60,
    )
    before = {r["metadata"]["name"] for r in runs_of(cluster, ns, "orders-nightly")}
    time.sleep(70 - time.time() % 60)  # past the next minute's tick (with 10 s for the reconcile)
    after = {r["metadata"]["name"] for r in runs_of(cluster, ns, "orders-nightly")}
    assert after <= before, after - before


def test_schema_policy_fail_refuses_a_run_whose_source_schema_changed_and_stalls_the_schedule(
    cluster: Cluster, namespace: str, operator: Operator, pod_pg: DbServer, pod_s3: S3Server
) -> None:
    ns = namespace
    bucket = apply_documented_schedule(
        cluster, ns, pod_pg, pod_s3, "public.sched_schema_e2e", schemaChangePolicy="fail"
    )

    def schedule_status() -> dict[str, Any]:
        return status(cluster, ns, "rivetschedule", "orders-nightly")

    first = cluster.wait_for(
        "the first run certified", lambda: schedule_status().get("lastSuccessfulRun"), timeout=300, interval=2
    )
    fingerprint = schedule_status()["schemaFingerprint"]
    pod_pg.execute("ALTER TABLE public.sched_schema_e2e ADD COLUMN note text")
    add_ten_rows(pod_pg, "public.sched_schema_e2e")

    def refused() -> dict[str, Any] | None:
        for run in runs_of(cluster, ns, "orders-nightly"):
            st = run.get("status") or {}
            if run["metadata"]["name"] != first and st.get("phase") == "Failed":
                return run
        return None

    run = cluster.wait_for("the changed run refused", refused, timeout=300, interval=2)
    assert run["spec"]["expectedSchemaFingerprint"] == fingerprint
    assert run["status"]["reason"] == "SchemaChanged" and not run["status"].get("rowsWritten")
    prefix = run["status"]["resolvedPrefix"].split(f"s3://{bucket}/", 1)[1]
    assert bucket_objects(pod_s3, bucket, prefix) == {}  # nothing exported, nothing certified

    def stalled() -> dict[str, Any] | None:
        st = schedule_status()
        cond = next((c for c in st.get("conditions") or [] if c["type"] == "Stalled"), {})
        return st if cond.get("status") == "True" and cond.get("reason") == "SchemaChanged" else None

    st = cluster.wait_for("the schedule stalled", stalled, timeout=120, interval=2)
    assert st["schemaChange"]["previous"] == fingerprint and st["cursor"]["run"] == first
    reasons = {e["reason"] for e in cluster.get_json("events", namespace=ns)["items"]}
    assert {"SchemaChanged", "RunFailed"} <= reasons, reasons
