"""The operator's pure core: spec rendering and checks, builders, conditions, ledger shards, CRDs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rivet_operator import builders, conditions, crds, ledger, names
from rivet_operator.export_reconciler import commit_record, progress
from rivet_operator.jobs import job_state, termination
from rivet_operator.spec import SpecError, check_spec, render_config, spec_path

SPEC: dict[str, Any] = {
    "source": {"type": "postgres", "urlFrom": {"secretKeyRef": {"name": "orders-db", "key": "url"}}},
    "table": "public.orders",
    "mode": "chunked",
    "chunkColumn": "id",
    "chunkSize": 1000,
    "parallelism": 4,
    "format": "parquet",
    "destination": {
        "type": "s3",
        "bucket": "lake",
        "prefix": "exports/{date}/{export}/",
        "accessKeyEnv": "AWS_ACCESS_KEY_ID",
        "secretKeyEnv": "AWS_SECRET_ACCESS_KEY",
    },
    "envFrom": [{"secretRef": {"name": "lake-credentials"}}],
}
OWNER = builders.Owner("rivet.dev/v1alpha1", "RivetExport", "orders", "uid-1", "analytics")


def test_rendered_config_maps_camel_case_and_names_no_secret() -> None:
    doc = render_config("orders", SPEC)
    exp = doc["exports"][0]
    assert doc["source"] == {"type": "postgres", "url_env": "RIVET_SOURCE_URL"}
    assert exp["chunk_column"] == "id" and exp["chunk_size"] == 1000 and exp["parallel"] == 1
    assert exp["destination"]["access_key_env"] == "AWS_ACCESS_KEY_ID"
    assert check_spec("orders", SPEC).exports[0].name == "orders"


def test_semantic_errors_name_the_spec_field() -> None:
    bad = {**SPEC, "destination": {**SPEC["destination"], "bucket": None, "buckt": "x"}}
    with pytest.raises(SpecError) as info:
        check_spec("orders", bad)
    assert info.value.field.startswith("spec.destination")
    with pytest.raises(SpecError, match=r"spec\.source\.urlFrom"):
        check_spec("orders", {**SPEC, "source": {"type": "postgres"}})
    with pytest.raises(SpecError, match="unknown placeholder"):
        check_spec("orders", {**SPEC, "destination": {**SPEC["destination"], "prefix": "{nope}/"}})


def test_spec_paths_map_back_to_camel_case() -> None:
    assert spec_path("exports[0].destination.access_key_env") == "spec.destination.accessKeyEnv"
    assert spec_path("exports[0].chunk_size") == "spec.chunkSize"


def test_chunk_job_is_restricted_owned_labelled_and_secret_free() -> None:
    run_id = "orders-20261122t020004"
    js = builders.JobSpec(
        name=names.chunk_job("orders", run_id, 7, 1),
        labels=names.labels(names.L_EXPORT, "orders", run_id, "chunk", 7),
        args=builders.chunk_args("orders", run_id, "2026-11-22", 7, '{"plan":{}}'),
        config_map=names.config_map("orders", run_id),
        source_secret={"name": "orders-db", "key": "url"},
    )
    job = builders.job(OWNER, js, SPEC, "rivet:dev")
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert job["spec"]["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert job["metadata"]["labels"][names.L_CHUNK] == "7"
    assert c["args"][:3] == ["chunk", "-e", "orders"] and "--termination-log" in c["args"]
    assert c["args"][c["args"].index("--plan") : c["args"].index("--plan") + 2] == ["--plan", '{"plan":{}}']
    assert "--lo" not in c["args"]  # the engine computes the chunk's range from the plan
    assert {"name": "RIVET_SOURCE_URL", "valueFrom": {"secretKeyRef": {"name": "orders-db", "key": "url"}}} in c["env"]
    assert c["envFrom"] == [{"secretRef": {"name": "lake-credentials"}}]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert len(job["metadata"]["name"]) <= 63


def test_job_template_overrides_defaults() -> None:
    spec = {**SPEC, "jobTemplate": {"nodeSelector": {"pool": "batch"}, "resources": {"limits": {"memory": "512Mi"}}}}
    js = builders.JobSpec("j", {}, ["plan"], "cm")
    job = builders.job(
        OWNER, js, spec, "img", defaults={"nodeSelector": {"pool": "default"}, "serviceAccountName": "sa"}
    )
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "batch"} and pod["serviceAccountName"] == "sa"
    assert pod["containers"][0]["resources"] == {"limits": {"memory": "512Mi"}}


def test_finalize_job_projects_every_ledger_shard() -> None:
    js = builders.JobSpec(
        "fin",
        {},
        builders.finalize_args("o", "r", "2026-01-01", "t", 2500, "{}", False),
        "cm",
        ledger_shards=("s0", "s1", "s2"),
    )
    pod = builders.job(OWNER, js, SPEC, "img")["spec"]["template"]["spec"]
    vol = next(v for v in pod["volumes"] if v["name"] == "ledger")
    assert [s["configMap"]["name"] for s in vol["projected"]["sources"]] == ["s0", "s1", "s2"]
    empty = builders.JobSpec("fin", {}, builders.finalize_args("o", "r", "d", "t", 0, "{}", False), "cm")
    pod = builders.job(OWNER, empty, SPEC, "img")["spec"]["template"]["spec"]
    assert {"name": "ledger", "emptyDir": {}} in pod["volumes"]


def test_condition_transition_time_moves_only_on_flip() -> None:
    conds = conditions.for_phase([], "Running", "Exporting", "1/4", 3, "t1")
    assert [c["type"] for c in conds] == ["Ready", "Reconciling", "Stalled"]
    assert conditions.get(conds, "Reconciling")["status"] == "True"  # type: ignore[index]
    again = conditions.for_phase(conds, "Running", "Exporting", "2/4", 3, "t2")
    assert conditions.get(again, "Reconciling")["lastTransitionTime"] == "t1"  # type: ignore[index]
    done = conditions.for_phase(again, "Succeeded", "Succeeded", "ok", 3, "t3")
    ready = conditions.get(done, "Ready")
    assert ready is not None and ready["status"] == "True" and ready["lastTransitionTime"] == "t3"
    assert all(c["observedGeneration"] == 3 for c in done)
    failed = conditions.for_phase(done, "Failed", "ChunkFailed", "bad", 3, "t4")
    assert conditions.get(failed, "Stalled")["status"] == "True"  # type: ignore[index]
    assert conditions.get(failed, "Ready")["status"] == "False"  # type: ignore[index]


def test_ledger_shards_stay_far_below_object_limits_at_10000_chunks() -> None:
    assert ledger.shard_count(10_000) == 10 and ledger.shard_of(1000) == 0 and ledger.shard_of(1001) == 1
    record = {
        "chunk": 10_000,
        "key": "part-010000.parquet",
        "rows": 100_000,
        "size_bytes": 12_345_678,
        "content_fingerprint": "xxh3:0123456789abcdef",
        "content_md5": "AAAAAAAAAAAAAAAAAAAAAA==",
        "schema_fingerprint": "xxh3:0123456789abcdef",
        "key_range": [999_900_001, 1_000_000_000],
    }
    shard = {ledger.record_key(i): json.dumps(record, separators=(",", ":")) for i in range(1, 1001)}
    assert len(json.dumps(shard)) < 400 * 1024
    assert ledger.parse([{"data": {ledger.record_key(5): json.dumps({"rows": 1})}}]) == {5: {"rows": 1}}


def test_progress_is_bounded_at_10000_chunks() -> None:
    records = {i: {} for i in range(1, 10_001, 2)}  # worst case: every other chunk committed
    out = progress(records, 10_000, 8, 0)
    assert out["committed"] == 5000 and len(out["committedRanges"]) <= 1024 and out["progress"] == "5000/10000"
    assert len(json.dumps(out)) < 2048


def test_commit_records_are_stored_verbatim_without_the_jobs_remarks() -> None:
    printed = {"chunk": 3, "key": "part-000003.csv", "rows": 7, "max_cursor": {"$type": "date", "value": "2026-01-02"}}
    out = commit_record({**printed, "decision": "export", "resolved_prefix": "s3://b/p/", "quarantined": "q"})
    assert out == printed


def test_job_outcome_reads_the_newest_termination_message() -> None:
    job = {"status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}}
    assert job_state(job) == "failed" and job_state({"status": {"active": 1}}) == "running"
    pods = [
        {
            "status": {
                "containerStatuses": [
                    {
                        "state": {
                            "terminated": {
                                "finishedAt": "2026-01-01T00:00:02Z",
                                "exitCode": 1,
                                "reason": "Error",
                                "message": json.dumps(
                                    {"ok": False, "error": {"permanent": True, "message": "bad SQL"}}
                                ),
                            }
                        }
                    }
                ]
            }
        }
    ]
    result, detail = termination(pods)
    assert result is not None and result["error"]["permanent"] is True and "exit 1" in detail
    assert termination([])[0] is None


def test_generated_crds_are_in_sync_with_the_code() -> None:
    root = Path(__file__).resolve().parents[2] / "crds"
    for name, doc in crds.all_crds().items():
        assert (root / name).read_text() == crds.render(doc), f"run: python -m rivet_operator.crds crds/ ({name})"
        assert yaml.safe_load((root / name).read_text())["spec"]["versions"][0]["subresources"] == {"status": {}}
