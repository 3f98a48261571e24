"""Trust lifecycle on every destination: resume decisions, quarantine, force, validate, reconcile, repair."""

from __future__ import annotations

import io
import json
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.fixtures.databases import DbServer, Namespace
from tests.fixtures.objectstores import StoreHandle
from tests.integration.rivet_cli import popen, rivet, write_config

PREFIX = "lake/{export}/{run_id}/"


def seed(pg: DbServer, schema: Namespace, n: int) -> None:
    pg.execute(f"CREATE TABLE {schema}.events (id bigint PRIMARY KEY, kind text, payload jsonb, at timestamptz)")
    pg.execute(
        f"INSERT INTO {schema}.events SELECT g, 'k' || (g % 7), jsonb_build_object('g', g),"
        f" timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' FROM generate_series(1, {n}) g"
    )


def setup_export(
    store: StoreHandle,
    pg: DbServer,
    schema: Namespace,
    tmp_path: Path,
    rows: int = 500,
    chunk_size: int = 100,
    parallel: int = 2,
    **extra: Any,
) -> Path:
    seed(pg, schema, rows)
    exports = [
        {
            "name": "events",
            "table": f"{schema}.events",
            "mode": "chunked",
            "chunk_column": "id",
            "chunk_size": chunk_size,
            "parallel": parallel,
            "destination": store.destination_yaml(PREFIX),
            **extra,
        }
    ]
    return write_config(tmp_path / "rivet.yaml", pg.url, exports)


def ids_in(store: StoreHandle, prefix: str) -> list[int]:
    dest = store.open(prefix)
    doc = json.loads(dest.get_bytes("manifest.json") or b"{}")
    out: list[int] = []
    for part in doc["parts"]:
        out.extend(pq.read_table(io.BytesIO(dest.get_bytes(part["path"]) or b"")).column("id").to_pylist())
    return sorted(out)


def validate(cfg: Path, store: StoreHandle, *args: str) -> tuple[int, dict[str, Any]]:
    res = rivet("validate", "-c", str(cfg), "--format", "json", *args, env=store.env)
    return res.code, json.loads(res.stdout)


def failure_kinds(report: dict[str, Any]) -> list[str]:
    return [f["kind"] for e in report["exports"] for f in e["verification"]["failures"]]


# -- validate ---------------------------------------------------------------------------------------


def test_validate_passes_and_reports_the_resolved_prefix(
    store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    cfg = setup_export(store, pg, pg_schema, tmp_path)
    assert rivet("run", "-c", str(cfg), "--run-id", "r1", "--validate", env=store.env, db_url=pg.url).code == 0
    code, report = validate(cfg, store, "--run-id", "r1")
    assert code == 0 and report["errors"] == []
    v = report["exports"][0]["verification"]
    assert v["passed"] and v["manifest_found"] and not v["legacy_run"] and v["success_marker_consistent"]
    assert v["parts_verified"] == 5 and v["parts_failed"] == 0 and v["manifest_self_consistent"]
    assert report["exports"][0]["resolved_prefix"].endswith("lake/events/r1/")
    if store.kind in ("s3", "gcs", "azure"):
        assert v["parts_md5_verified"] == 5  # the store's own checksum agrees with the manifest
    pretty = rivet("validate", "-c", str(cfg), "--run-id", "r1", env=store.env)
    assert pretty.code == 0 and "PASSED" in pretty.stdout and "lake/events/r1/" in pretty.stdout


def _tamper(store: StoreHandle, prefix: str, case: str) -> None:
    dest = store.open(prefix)
    raw = dest.get_bytes("manifest.json") or b""
    doc = json.loads(raw)
    part = doc["parts"][1]["path"]
    data = dest.get_bytes(part) or b""
    if case == "part_deleted":
        dest.delete(part)
    elif case == "part_truncated":
        dest.put_bytes(part, data[:-10])
    elif case == "part_same_size_other_bytes":
        dest.put_bytes(part, bytes(reversed(data)))
    elif case == "manifest_edited":
        dest.put_bytes("manifest.json", raw.replace(b'"status": "success"', b'"status": "success" '))
    elif case == "success_malformed":
        dest.put_bytes("_SUCCESS", b"not-a-fingerprint\n")
    elif case == "manifest_counts_inconsistent":
        doc["row_count"] += 1
        edited = (json.dumps(doc, indent=2) + "\n").encode()
        import xxhash

        dest.put_bytes("manifest.json", edited)
        dest.put_bytes("_SUCCESS", f"xxh3:{xxhash.xxh3_64_hexdigest(edited)}\n".encode())
    elif case == "untracked_object":
        dest.put_bytes("stray.parquet", b"stray")
    elif case == "no_manifest":
        dest.delete("_SUCCESS")
        dest.delete("manifest.json")


TAMPER_EXPECTED = {
    "part_deleted": (4, "part_missing"),  # exit 4: integrity failure
    "part_truncated": (4, "part_size_mismatch"),
    "part_same_size_other_bytes": (4, "part_checksum_mismatch"),
    "manifest_edited": (4, "success_marker_stale"),
    "success_malformed": (4, "success_marker_malformed"),
    "manifest_counts_inconsistent": (4, "manifest_self_inconsistent"),
    "untracked_object": (0, "untracked_object"),
    "no_manifest": (0, None),
}


@pytest.mark.parametrize("case", list(TAMPER_EXPECTED))
def test_validate_detects_tampering(
    case: str, store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    cfg = setup_export(store, pg, pg_schema, tmp_path, rows=300)
    assert rivet("run", "-c", str(cfg), "--run-id", "r1", env=store.env, db_url=pg.url).code == 0
    _tamper(store, "lake/events/r1/", case)
    code, report = validate(cfg, store, "--run-id", "r1")
    want_code, want_kind = TAMPER_EXPECTED[case]
    if case == "part_same_size_other_bytes" and store.kind == "local":
        # local files carry no checksum: size-only evidence passes, unless `verify: content` is asked for
        assert code == 0
        cfg_content = cfg.read_text().replace("parallel: 2", "parallel: 2\n  verify: content")
        (tmp_path / "content.yaml").write_text(cfg_content)
        code, report = validate(tmp_path / "content.yaml", store, "--run-id", "r1")
        want_kind = "content_verification_unmet"
    assert code == want_code, report
    v = report["exports"][0]["verification"]
    if want_kind is None:
        assert v["legacy_run"] is True and v["manifest_found"] is False
    else:
        assert want_kind in failure_kinds(report)
        assert v["passed"] is (want_code == 0)


def test_validate_never_touches_the_source(
    store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    cfg = setup_export(store, pg, pg_schema, tmp_path, rows=200)
    assert rivet("run", "-c", str(cfg), "--run-id", "r1", env=store.env, db_url=pg.url).code == 0
    text = cfg.read_text().replace("url_env: RIVET_TEST_DB_URL", "url: postgresql://nobody:pw@127.0.0.1:1/none")
    (tmp_path / "offline.yaml").write_text(text)
    res = rivet("validate", "-c", str(tmp_path / "offline.yaml"), "--run-id", "r1", env=store.env)
    assert res.code == 0 and "PASSED" in res.stdout
    unset = cfg.read_text()  # url_env whose variable is unset: still fine for validate
    (tmp_path / "unset.yaml").write_text(unset)
    res = rivet(
        "validate", "-c", str(tmp_path / "unset.yaml"), "--run-id", "r1", env={**store.env, "RIVET_TEST_DB_URL": ""}
    )
    assert res.code == 0


def test_validate_bad_inputs_fail_clearly(
    store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    cfg = setup_export(store, pg, pg_schema, tmp_path, rows=100)
    res = rivet("validate", "-c", str(cfg), "--run-id", "never-ran", env=store.env)
    assert res.code == 1 and "nothing at" in res.stdout and "--run-id" in res.stdout
    res = rivet("validate", "-c", str(cfg), env=store.env)
    assert res.code == 2 and "uses {run_id}" in res.stdout and "--run-id" in res.stdout  # usage: exit 2
    assert rivet("run", "-c", str(cfg), "--run-id", "r1", env=store.env, db_url=pg.url).code == 0
    store.open("lake/events/r1/").put_bytes("manifest.json", b"\x00garbage")
    code, report = validate(cfg, store, "--run-id", "r1")
    assert code == 4 and "manifest_read_error" in failure_kinds(report)
    if store.secrets:
        wrong = {k: "wrong-" + v for k, v in store.env.items()}
        res = rivet("validate", "-c", str(cfg), "--run-id", "r1", "--format", "json", env=wrong)
        report = json.loads(res.stdout)
        # refused by the store: permanent (1) when it lands in `errors`, unverified (4) as a list failure
        assert report["errors"] or "list_prefix_error" in failure_kinds(report), res.output
        assert res.code == (1 if report["errors"] else 4), res.output
        assert "access denied" in res.stdout or "denied" in res.stdout.lower() or "authoriz" in res.stdout.lower()
        for secret in [*store.secrets, *wrong.values()]:
            assert secret not in res.output


# -- resume -----------------------------------------------------------------------------------------


def test_resume_applies_every_row_of_the_decision_table(
    store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    cfg = setup_export(store, pg, pg_schema, tmp_path, rows=500)
    assert rivet("run", "-c", str(cfg), "--run-id", "r1", env=store.env, db_url=pg.url).code == 0
    prefix = "lake/events/r1/"
    dest = store.open(prefix)
    # simulate a crash after every chunk committed, then disturb the store and the ledger per table row
    dest.delete("_SUCCESS")
    dest.delete("manifest.json")
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute("UPDATE runs SET status = 'running' WHERE run_id = 'r1'")
    p2 = dest.get_bytes("part-000002.parquet") or b""
    dest.put_bytes("part-000002.parquet", p2[:-5])  # ledger yes, object mismatches -> quarantine, re-export
    dest.delete("part-000003.parquet")  # ledger yes, object missing -> rewrite
    p4 = dest.get_bytes("part-000004.parquet") or b""
    db.execute("DELETE FROM chunks WHERE run_id = 'r1' AND idx IN (4, 5)")  # ledger no, object yes -> quarantine
    db.commit()
    dest.delete("part-000005.parquet")  # ledger no, no object -> export
    db.close()
    res = rivet("run", "-c", str(cfg), "--resume", env=store.env, db_url=pg.url)
    assert res.code == 0, res.output
    summary = res.json["exports"][0]
    assert summary["run_id"] == "r1"
    assert summary["chunks_skipped"] == 1 and summary["chunks_exported"] == 4  # chunk 1 carried forward
    assert sorted(summary["quarantined"]) == [
        "_quarantine/r1/part-000002.parquet",
        "_quarantine/r1/part-000004.parquet",
    ]
    assert dest.get_bytes("_quarantine/r1/part-000002.parquet") == p2[:-5]  # evidence kept byte for byte
    assert dest.get_bytes("_quarantine/r1/part-000004.parquet") == p4
    assert ids_in(store, prefix) == list(range(1, 501))
    code, report = validate(cfg, store, "--run-id", "r1")
    assert code == 0 and report["exports"][0]["verification"]["passed"]


def test_resume_with_a_changed_plan_is_refused(
    store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    if store.kind != "local":
        pytest.skip("plan comparison does not depend on the destination")
    cfg = setup_export(store, pg, pg_schema, tmp_path, rows=300)
    assert rivet("run", "-c", str(cfg), "--run-id", "r1", env=store.env, db_url=pg.url).code == 0
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute("UPDATE runs SET status = 'running'")
    db.commit()
    db.close()
    cfg.write_text(cfg.read_text().replace("chunk_size: 100", "chunk_size: 50"))
    res = rivet("run", "-c", str(cfg), "--resume", "--force", env=store.env, db_url=pg.url)
    assert res.code == 1 and "plan changed" in res.stderr and "chunk_size: 100 -> 50" in res.stderr


@pytest.mark.timeout(900)
def test_kill_9_at_random_points_then_resume_exports_every_row_once(
    store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    rows = 200_000
    cfg = setup_export(store, pg, pg_schema, tmp_path, rows=rows, chunk_size=2_000, parallel=2)
    rng = random.Random(f"{store.kind}-kill")
    kills, finished = 0, False
    for attempt in range(5):
        args = ["run", "-c", str(cfg), "--run-id", "r1"] + (["--resume"] if attempt else [])
        proc = popen(*args, env=store.env, db_url=pg.url)
        time.sleep(rng.uniform(1.0, 3.0))
        if proc.poll() is None:
            proc.kill()  # SIGKILL: no cleanup, no end-of-run manifest; mid-chunk or between chunks
            kills += 1
        _, err = proc.communicate()
        if proc.returncode == 0:
            finished = True
            break
        assert proc.returncode == -9, err
        if store.open("lake/events/r1/").head("_SUCCESS") is not None:
            # the kill landed after `_SUCCESS` was written (process exit): then the run must be whole
            code, report = validate(cfg, store, "--run-id", "r1")
            assert code == 0, report
            finished = True
            break
    if not finished:
        res = rivet("run", "-c", str(cfg), "--run-id", "r1", "--resume", env=store.env, db_url=pg.url)
        assert res.code == 0, res.output
    assert kills >= 1
    print(f"kill -9 resume on {store.kind}: {kills} kills, then a clean resume")
    assert ids_in(store, "lake/events/r1/") == list(range(1, rows + 1))
    code, report = validate(cfg, store, "--run-id", "r1")
    assert code == 0, report


def test_forced_run_keeps_m5_at_every_instant(
    store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    """While `_SUCCESS` exists, every listed part exists at its recorded size, sampled throughout a forced run."""
    seed(pg, pg_schema, 60_000)
    exports = [
        {
            "name": "events",
            "table": f"{pg_schema}.events",
            "mode": "chunked",
            "chunk_column": "id",
            "chunk_size": 2000,
            "destination": store.destination_yaml("fixed/"),
        }
    ]
    cfg = write_config(tmp_path / "rivet.yaml", pg.url, exports)
    assert rivet("run", "-c", str(cfg), env=store.env, db_url=pg.url).code == 0
    dest = store.open("fixed/")
    proc = popen("run", "-c", str(cfg), "--force", env=store.env, db_url=pg.url)
    samples, withdrawn, after = 0, False, 0
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        marker = dest.get_bytes("_SUCCESS")
        manifest = dest.get_bytes("manifest.json")
        listing = {o.key: o.size for o in dest.list()}
        if marker is not None and manifest is not None:
            for part in json.loads(manifest)["parts"]:
                assert listing.get(part["path"]) == part["size_bytes"], "M5 broken: certified part changed"
        withdrawn = withdrawn or marker is None
        samples += 1
        after += 1 if withdrawn else 0
        if after == 3:
            proc.kill()  # interrupt the forced run part-way, after it withdrew the certification
    proc.communicate()
    assert samples > 1 and withdrawn
    if proc.returncode != 0:
        assert dest.head("_SUCCESS") is None  # an interrupted forced run leaves no certification
    res = rivet("run", "-c", str(cfg), "--resume", env=store.env, db_url=pg.url)
    assert res.code == 0, res.output
    assert len(ids_in(store, "fixed/")) == 60_000


# -- reconcile and repair ---------------------------------------------------------------------------


def test_reconcile_finds_late_rows_and_repair_recertifies(
    store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    seed(pg, pg_schema, 500)
    pg.execute(f"DELETE FROM {pg_schema}.events WHERE id BETWEEN 250 AND 260")
    exports = [
        {
            "name": "events",
            "table": f"{pg_schema}.events",
            "mode": "chunked",
            "chunk_column": "id",
            "chunk_size": 100,
            "destination": store.destination_yaml(PREFIX),
        }
    ]
    cfg = write_config(tmp_path / "rivet.yaml", pg.url, exports)
    assert rivet("run", "-c", str(cfg), "--run-id", "r1", env=store.env, db_url=pg.url).code == 0
    ok = rivet(
        "reconcile", "-c", str(cfg), "-e", "events", "--run-id", "r1", "--format", "json", env=store.env, db_url=pg.url
    )
    assert ok.code == 0 and ok.json["match"] == 6 and ok.json["mismatch"] == 0  # 5 chunks and the whole source
    pg.execute(f"INSERT INTO {pg_schema}.events SELECT g, 'late', '{{}}', now() FROM generate_series(250, 255) g")
    bad = rivet(
        "reconcile", "-c", str(cfg), "-e", "events", "--run-id", "r1", "--format", "json", env=store.env, db_url=pg.url
    )
    assert bad.code == 4 and bad.json["mismatch"] == 2  # exit 4: integrity failure
    assert bad.json["total"] == {"recorded_rows": 489, "source_rows": 495, "status": "mismatch"}
    flagged = [c for c in bad.json["chunks"] if c["status"] == "mismatch"]
    assert flagged == [
        {"chunk": 3, "key_range": [201, 300], "recorded_rows": 89, "source_rows": 95, "status": "mismatch"}
    ]
    report = tmp_path / "report.json"
    report.write_text(bad.stdout)
    before = store.open("lake/events/r1/").list()
    dry = rivet(
        "repair",
        "-c",
        str(cfg),
        "-e",
        "events",
        "--run-id",
        "r1",
        "--report",
        str(report),
        "--format",
        "json",
        env=store.env,
        db_url=pg.url,
    )
    assert dry.code == 0 and [a["chunk"] for a in dry.json["actions"]] == [3]
    assert store.open("lake/events/r1/").list() == before  # a dry run writes nothing
    done = rivet(
        "repair",
        "-c",
        str(cfg),
        "-e",
        "events",
        "--run-id",
        "r1",
        "--report",
        str(report),
        "--execute",
        "--format",
        "json",
        env=store.env,
        db_url=pg.url,
    )
    assert done.code == 0, done.output
    assert done.json["quarantined"] == ["_quarantine/r1/part-000003.parquet"]
    code, _ = validate(cfg, store, "--run-id", "r1")
    assert code == 0
    again = rivet(
        "reconcile", "-c", str(cfg), "-e", "events", "--run-id", "r1", "--format", "json", env=store.env, db_url=pg.url
    )
    assert again.code == 0 and again.json["mismatch"] == 0
    assert len(ids_in(store, "lake/events/r1/")) == 495
