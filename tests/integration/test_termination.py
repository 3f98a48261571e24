"""Graceful termination: SIGTERM in the middle of an upload aborts it and exits retryably within seconds.

Kubernetes stops a chunk Job's pod with SIGTERM (then SIGKILL after the grace period). Without a handler
Python dies on the spot: S3 multipart uploads stay open (and billed), local temp files stay. With it the
pipeline's abort path runs: no upload, no temp file and no part object is left, and the run resumes.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from rivet.errors import EXIT_RETRYABLE
from tests.fixtures.databases import DbServer, Namespace
from tests.fixtures.objectstores import StoreHandle
from tests.integration.rivet_cli import popen, rivet, write_config

ROWS = 1_000_000  # ~130 MB of uncompressed text in one part: an upload that lasts several seconds
PREFIX = "term/{export}/"


def mid_upload(store: StoreHandle) -> bool:
    """True once the part upload is under way: an open multipart upload (S3), a growing temp file (local)."""
    if store.kind == "s3":
        return bool(store.server.client().list_multipart_uploads(Bucket=store.bucket).get("Uploads"))
    assert store.root is not None
    folder = store.root / "term" / "big"
    temps = [p for p in folder.glob(".rivet-tmp-*")] if folder.is_dir() else []
    return any(p.stat().st_size > 8 * 1024 * 1024 for p in temps)


def leftovers(store: StoreHandle) -> list[str]:
    """Everything at the prefix, plus open multipart uploads (S3) and temp files (local)."""
    if store.kind == "s3":
        client = store.server.client()
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=store.bucket).get("Contents", [])]
        uploads = [u["Key"] for u in client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])]
        return keys + [f"upload:{k}" for k in uploads]
    assert store.root is not None
    return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file())


@pytest.mark.parametrize("store", ["local", "s3"], indirect=True)
def test_sigterm_mid_upload_aborts_it_and_exits_retryably_within_seconds(
    store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    pg.execute(f"CREATE TABLE {pg_schema}.big (id bigint PRIMARY KEY, note text)")
    pg.execute(f"INSERT INTO {pg_schema}.big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, {ROWS}) g")
    exports = [
        {
            "name": "big",
            "table": f"{pg_schema}.big",
            "mode": "full",
            "compression": "none",
            "destination": store.destination_yaml(PREFIX),
        }
    ]
    cfg = write_config(tmp_path / "rivet.yaml", pg.url, exports)
    proc = popen("run", "-c", str(cfg), "--run-id", "r1", env=store.env, db_url=pg.url)
    try:
        deadline = time.monotonic() + 120
        while not mid_upload(store):
            assert proc.poll() is None, "the export ended before the test could interrupt it"
            assert time.monotonic() < deadline, "the upload never started"
            time.sleep(0.05)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
        elapsed = time.monotonic() - sent
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    assert elapsed < 10, f"took {elapsed:.1f}s to stop after SIGTERM"
    assert proc.returncode == EXIT_RETRYABLE, err  # a failure, never a permanent one
    assert "event=terminating" in err and "signal=SIGTERM" in err
    assert "Traceback" not in err and "Exception ignored" not in err  # the abandoned writer stays quiet
    print(f"{store.kind}: stopped {elapsed:.2f}s after SIGTERM")
    assert leftovers(store) == []  # no part, no open multipart upload, no temp file
    db = sqlite3.connect(tmp_path / "state.db")
    (status,) = db.execute("SELECT status FROM runs WHERE run_id = 'r1'").fetchone()
    db.close()
    assert status == "interrupted"

    res = rivet("run", "-c", str(cfg), "--resume", env=store.env, db_url=pg.url)  # and it resumes cleanly
    assert res.code == 0, res.output
    summary = json.loads(res.stdout)["exports"][0]
    assert summary["run_id"] == "r1" and summary["rows"] == ROWS
