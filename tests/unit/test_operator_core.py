"""The operator's pure core: spec rendering and checks, names, Job and ConfigMap builders, conditions,
ledger shards, Job outcomes, CRDs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rivet_operator.api import crds
from rivet_operator.api import status as conditions
from rivet_operator.api.spec import SpecError, check_spec, render_config, run_fingerprint, spec_path
from rivet_operator.api.status import merge_patch, progress
from rivet_operator.controller.export import commit_record
from rivet_operator.controller.outcomes import job_state, termination
from rivet_operator.specs import configmaps as ledger
from rivet_operator.specs import jobs as builders
from rivet_operator.specs import names
from rivet_operator.specs.names import Owner

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
OWNER = Owner("rivet.dev/v1alpha1", "RivetExport", "orders", "uid-1", "analytics")
RT = builders.Runtime(image="rivet:dev")


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
        name=names.chunk_job(OWNER, run_id, 7, 1),
        labels=names.labels(OWNER, run_id, "chunk", 7, 1),
        args=builders.chunk_args("orders", run_id, "2026-11-22", 7, '{"plan":{}}'),
        config="exports: [{query: \"SELECT '$(HOME)', '$$'\"}]\n",
        source_secret={"name": "orders-db", "key": "url"},
    )
    job = builders.job(OWNER, js, SPEC, RT)
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert job["spec"]["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert job["metadata"]["labels"][names.L_CHUNK] == "7" and job["metadata"]["labels"][names.L_OWNER_UID] == "uid-1"
    assert job["spec"]["template"]["metadata"]["labels"][names.L_OWNER_UID] == "uid-1"  # pods are found by owner too
    assert c["args"][:3] == ["chunk", "-e", "orders"] and "--termination-log" in c["args"]
    assert c["args"][c["args"].index("--plan") : c["args"].index("--plan") + 2] == ["--plan", '{"plan":{}}']
    assert "--lo" not in c["args"] and "--cursor" not in c["args"]  # the engine computes the chunk's range
    assert {"name": "RIVET_SOURCE_URL", "valueFrom": {"secretKeyRef": {"name": "orders-db", "key": "url"}}} in c["env"]
    assert c["envFrom"] == [{"secretRef": {"name": "lake-credentials"}}]
    # the config rides last in env (no spec env entry can replace it), `$` doubled against the kubelet's
    # $(VAR) expansion, and is read with -c env:...; no ConfigMap volume anyone could edit mid-run
    pinned = [e["name"] for e in c["env"]][-5:]
    assert pinned == ["RIVET_JOB_CONFIG", "PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT"]
    assert c["env"][-5] == {"name": "RIVET_JOB_CONFIG", "value": "exports: [{query: \"SELECT '$$(HOME)', '$$$$'\"}]\n"}
    # no key of an envFrom Secret/ConfigMap changes which code runs: absolute, isolated interpreter
    assert c["command"] == ["/opt/rivet/bin/python", "-I", "-m", "rivet"]
    assert c["args"][c["args"].index("-c") + 1] == "env:RIVET_JOB_CONFIG"
    assert not [v for v in pod["volumes"] if "configMap" in v]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert len(job["metadata"]["name"]) <= 63 and "activeDeadlineSeconds" not in job["spec"]


@pytest.mark.parametrize(
    ("ca_from", "volume_source"),
    [
        ({"secretKeyRef": {"name": "db-ca", "key": "root.pem"}}, {"secret": {"secretName": "db-ca"}}),
        ({"configMapKeyRef": {"name": "db-ca", "key": "root.pem"}}, {"configMap": {"name": "db-ca"}}),
    ],
)
def test_source_tls_renders_the_mode_and_mounts_the_ca_into_source_jobs(
    ca_from: dict[str, Any], volume_source: dict[str, Any]
) -> None:
    spec = {**SPEC, "source": {**SPEC["source"], "tls": {"mode": "verify-full", "caFrom": ca_from}}}
    cfg = check_spec("orders", spec)  # the engine's loader accepts what the operator renders
    assert cfg.source.tls.mode is not None and cfg.source.tls.mode.value == "verify-full"
    assert render_config("orders", spec)["source"]["tls"] == {
        "mode": "verify-full",
        "ca_file": "/etc/rivet-source-ca/ca.crt",
    }
    js = builders.JobSpec("c", {}, ["chunk"], "cm", source_secret={"name": "db", "key": "url"}, source_ca=ca_from)
    pod = builders.job(OWNER, js, spec, RT)["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "source-ca")
    kind = next(iter(volume_source))
    assert {k: v for k, v in volume[kind].items() if k != "items"} == volume_source[kind]
    assert volume[kind]["items"] == [{"key": "root.pem", "path": "ca.crt"}]
    mount = {"name": "source-ca", "mountPath": "/etc/rivet-source-ca", "readOnly": True}
    assert mount in pod["containers"][0]["volumeMounts"]
    require = {**SPEC, "source": {**SPEC["source"], "tls": {"mode": "require"}}}
    assert render_config("orders", require)["source"]["tls"] == {"mode": "require"}  # no CA, no ca_file


def test_the_crd_ties_the_ca_to_the_verifying_modes() -> None:
    tls = crds.export_spec()["properties"]["source"]["properties"]["tls"]
    assert tls["properties"]["mode"]["enum"] == ["disable", "require", "verify-ca", "verify-full"]
    rules = [r["rule"] for r in tls["x-kubernetes-validations"]]
    assert any("has(self.caFrom)" in r for r in rules)


def test_cursor_reaches_chunk_and_finalize_args_as_typed_json() -> None:
    cursor = '{"$type":"datetime","value":"2026-01-01T00:00:00+00:00"}'
    args = builders.chunk_args("o", "r", "2026-01-01", 1, "{}", cursor)
    assert args[args.index("--cursor") + 1] == cursor
    fin = builders.finalize_args("o", "r", "2026-01-01", "t", 1, "{}", False, cursor)
    assert fin[fin.index("--cursor") + 1] == cursor


def test_job_template_overrides_defaults_and_the_deadline() -> None:
    spec = {**SPEC, "jobTemplate": {"nodeSelector": {"pool": "batch"}, "resources": {"limits": {"memory": "512Mi"}}}}
    js = builders.JobSpec("j", {}, ["plan"], "cm")
    rt = builders.Runtime(
        "img", defaults={"nodeSelector": {"pool": "default"}, "serviceAccountName": "sa"}, active_deadline_s=21600
    )
    job = builders.job(OWNER, js, spec, rt)
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "batch"} and pod["serviceAccountName"] == "sa"
    assert pod["containers"][0]["resources"] == {"limits": {"memory": "512Mi"}}
    assert job["spec"]["activeDeadlineSeconds"] == 21600  # the chart's default
    mine = builders.job(OWNER, js, {**SPEC, "jobTemplate": {"activeDeadlineSeconds": 600}}, rt)
    assert mine["spec"]["activeDeadlineSeconds"] == 600  # one export's own


def test_finalize_job_projects_every_ledger_shard() -> None:
    js = builders.JobSpec(
        "fin",
        {},
        builders.finalize_args("o", "r", "2026-01-01", "t", 2500, "{}", False),
        "config",
        ledger_shards=("s0", "s1", "s2"),
    )
    pod = builders.job(OWNER, js, SPEC, RT)["spec"]["template"]["spec"]
    vol = next(v for v in pod["volumes"] if v["name"] == "ledger")
    assert [s["configMap"]["name"] for s in vol["projected"]["sources"]] == ["s0", "s1", "s2"]
    empty = builders.JobSpec(
        "fin", {}, builders.finalize_args("o", "r", "d", "t", 0, "{}", False), "config", empty_ledger=True
    )
    pod = builders.job(OWNER, empty, SPEC, RT)["spec"]["template"]["spec"]
    assert {"name": "ledger", "emptyDir": {}} in pod["volumes"]


# -- names (uid-derived, within every limit) ---------------------------------------------------------

LONG_EU = Owner(
    "rivet.dev/v1alpha1",
    "RivetExport",
    "warehouse-replication-daily-export-orders-eu",
    "3f1c2a9e-0000-4000-8000-00000000000e",
    "ns",
)
LONG_US = Owner(
    "rivet.dev/v1alpha1",
    "RivetExport",
    "warehouse-replication-daily-export-orders-us",
    "8a7d6c5b-0000-4000-8000-00000000000f",
    "ns",
)


def test_two_long_names_sharing_a_prefix_never_share_a_run_id_or_object_name() -> None:
    stamp = "20261122t020000"
    eu, us = names.run_id(LONG_EU, stamp), names.run_id(LONG_US, stamp)
    assert eu != us
    for make in (
        lambda o, r: names.plan_job(o, r, 1),
        lambda o, r: names.chunk_job(o, r, 7, 1),
        lambda o, r: names.finalize_job(o, r, 1),
        lambda o, r: names.ledger_shard(o, r, 0),
        lambda o, r: names.validate_job(o, r, 1),
    ):
        assert make(LONG_EU, eu) != make(LONG_US, us)
    assert (
        names.labels(LONG_EU, eu, "chunk")[names.L_OWNER_UID] != names.labels(LONG_US, us, "chunk")[names.L_OWNER_UID]
    )
    assert names.run_id(OWNER, stamp) == "orders-20261122t020000"  # short names keep the readable form


DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "orders",
        "x" * 253,
        "a." * 126 + "b",
        "warehouse-replication-daily-export-orders-eu",
        "a-" * 40 + "z",
        "9-.-9",
    ],
)
def test_every_derived_name_and_label_is_valid_at_the_limits(name: str) -> None:
    owner = Owner("rivet.dev/v1alpha1", "RivetExport", name, "3f1c2a9e-0000-4000-8000-00000000000e", "ns")
    run = names.run_id(owner, "20261122t020000")
    derived = [
        names.plan_job(owner, run, 21),
        names.chunk_job(owner, run, 100_000, 21),
        names.finalize_job(owner, run, 21),
        names.ledger_shard(owner, run, 99),
        names.validate_job(owner, run, 1),
    ]
    for n in derived:
        assert len(n) <= 63 and DNS_LABEL.match(n), n
    for value in names.labels(owner, run, "chunk", 100_000, 21).values():
        assert len(value) <= 63 and LABEL_VALUE.match(value), value


def test_run_fingerprint_follows_only_run_defining_fields() -> None:
    base = run_fingerprint("orders", SPEC)
    assert run_fingerprint("orders", {**SPEC, "parallelism": 9, "jobTemplate": {"labels": {"a": "b"}}}) == base
    assert run_fingerprint("orders", {**SPEC, "verify": "content", "suspend": True, "maxChunkRetries": 0}) == base
    tuned = {**SPEC, "source": {**SPEC["source"], "tuning": {"batchSize": 5}}}
    assert run_fingerprint("orders", tuned) == base
    assert run_fingerprint("orders", {**SPEC, "table": "public.other"}) != base
    assert run_fingerprint("orders", {**SPEC, "chunkSize": 5}) != base
    assert run_fingerprint("orders", {**SPEC, "date": "2026-01-01"}) != base
    assert run_fingerprint("other", SPEC) != base  # the export name is in every prefix template


def test_merge_patch_removes_keys_gone_from_maps_and_replaces_lists() -> None:
    old = {"retries": {"1": {"attempts": 1}, "2": {"attempts": 2}}, "conditions": [1, 2], "phase": "Running", "x": 1}
    new = {"retries": {"2": {"attempts": 3}}, "conditions": [1], "phase": "Running"}
    assert merge_patch(old, new) == {"retries": {"1": None, "2": {"attempts": 3}}, "conditions": [1]}
    assert merge_patch(old, {"retries": None}) == {"retries": None}
    assert merge_patch(old, old) == {}


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
    text = json.dumps({"rows": 1})
    assert ledger.parse_records([{ledger.record_key(5): text, "junk": "x"}]) == (
        {5: {"rows": 1}},
        {"chunk-000005.json": text},
    )


def test_progress_is_bounded_at_10000_chunks() -> None:
    records = list(range(1, 10_001, 2))  # worst case: every other chunk committed
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
    result, detail, code = termination(pods)
    assert result is not None and result["error"]["permanent"] is True and "exit 1" in detail and code == 1
    assert termination([])[0] is None


def test_generated_crds_are_in_sync_with_the_code() -> None:
    root = Path(__file__).resolve().parents[2] / "crds"
    for name, doc in crds.all_crds().items():
        assert (root / name).read_text() == crds.render(doc), f"run: python -m rivet_operator.api.crds crds/ ({name})"
        assert yaml.safe_load((root / name).read_text())["spec"]["versions"][0]["subresources"] == {"status": {}}
