"""Fencing on every destination: a write never replaces what it did not decide to replace.

The resume decision is taken when a chunk starts; its part is committed minutes later. These tests put
another writer in between (a real second upload to the same key on the real store) and check that the
stale commit fails with PartConflict while the other writer's bytes stay, and that a stale chunk of an
earlier run refuses to write into a prefix a later run certified or took over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rivet.commands.plan import plan_command
from rivet.config import load_config
from rivet.contract.objects import ObjectInfo
from rivet.contract.resume import Decision
from rivet.destinations.base import Destination, PartUpload
from rivet.engine.chunk import export_chunk
from rivet.engine.context import recorded_context
from rivet.errors import ContractError
from rivet.sources.factory import open_source
from tests.fixtures.databases import DbServer, Namespace
from tests.fixtures.objectstores import StoreHandle
from tests.fixtures.payloads import MiB, payload
from tests.integration.rivet_cli import rivet, write_config

KEY = "part-000001.parquet"
PREFIX = "fenced/orders/"


def write(upload: PartUpload, data: bytes) -> None:
    for start in range(0, len(data), MiB):
        upload.write(data[start : start + MiB])


def assert_nothing_stray(store: StoreHandle, dest: Destination, prefix: str) -> None:
    """No open multipart upload (S3) and no temp file (local) is left behind by the losing writer."""
    if store.kind == "s3":
        uploads = store.server.client().list_multipart_uploads(Bucket=store.bucket).get("Uploads") or []
        assert uploads == []
    if store.kind == "local":
        assert store.root is not None
        leftovers = [p.name for p in (store.root / prefix).rglob("*") if p.name.startswith(".rivet-tmp-")]
        assert leftovers == []


# -- the destinations' conditional commits -------------------------------------------------------------


@pytest.mark.parametrize("size", [1000, 9 * MiB], ids=["single-request", "streamed"])
def test_stale_create_loses_to_the_writer_that_committed_first(store: StoreHandle, size: int) -> None:
    dest = store.open(PREFIX)
    assert dest.head(KEY) is None  # the stale writer's decision: "export", the key is empty
    stale = dest.open_part(KEY)
    write(stale, payload(size, seed=1))
    winner_bytes = payload(size + 7, seed=2)
    winner = dest.open_part(KEY)  # another writer decides on the same empty key and commits first
    write(winner, winner_bytes)
    winner.commit(hashlib.md5(winner_bytes).digest())
    with pytest.raises(ContractError) as info:
        stale.commit(hashlib.md5(payload(size, seed=1)).digest())
    assert info.value.reason == "PartConflict"
    assert info.value.permanent
    assert "another writer got there first" in str(info.value)
    assert dest.get_bytes(KEY) == winner_bytes  # nothing was overwritten
    assert [o.key for o in dest.list()] == [KEY]
    assert_nothing_stray(store, dest, PREFIX)


def test_replace_succeeds_only_while_the_object_is_the_one_decided_on(store: StoreHandle) -> None:
    dest = store.open(PREFIX)
    first = payload(2000, seed=1)
    up = dest.open_part(KEY)
    up.write(first)
    up.commit(hashlib.md5(first).digest())
    seen = dest.head(KEY)
    assert seen is not None and seen.version is not None
    listed = {o.key: o for o in dest.list()}[KEY]
    assert listed.version == seen.version  # listings carry the same version token as HEAD

    # unchanged since the decision: the replace goes through
    second = payload(3000, seed=2)
    up = dest.open_part(KEY, replace=seen)
    up.write(second)
    up.commit(hashlib.md5(second).digest())
    assert dest.get_bytes(KEY) == second

    # changed since the decision (another writer replaced it): the stale replace loses
    decided = dest.head(KEY)
    assert decided is not None
    stale = dest.open_part(KEY, replace=decided)
    stale.write(payload(4000, seed=3))
    third = payload(5000, seed=4)
    other = dest.open_part(KEY, replace=decided)
    other.write(third)
    other.commit(hashlib.md5(third).digest())
    with pytest.raises(ContractError) as info:
        stale.commit(hashlib.md5(payload(4000, seed=3)).digest())
    assert info.value.reason == "PartConflict"
    assert dest.get_bytes(KEY) == third
    assert_nothing_stray(store, dest, PREFIX)


def test_a_create_whose_bytes_are_already_there_is_not_a_conflict(store: StoreHandle) -> None:
    """A retried request whose first attempt committed finds its own object: same size and checksum."""
    if store.kind == "local":
        pytest.skip("local commits are never retried by an SDK; link(2) simply refuses an existing file")
    dest = store.open(PREFIX)
    for size in (1000, 9 * MiB):
        data = payload(size, seed=5)
        key = f"part-{size:06d}.parquet"
        for _ in range(2):
            up = dest.open_part(key)
            write(up, data)
            up.commit(hashlib.md5(data).digest())
        assert dest.get_bytes(key) == data
    assert_nothing_stray(store, dest, PREFIX)


def test_ranged_get_bytes_reads_only_the_head(store: StoreHandle) -> None:
    dest = store.open(PREFIX)
    dest.put_bytes("manifest.json", b'{\n  "manifest_version": 1,\n  "run_id": "r-1"\n}\n')
    assert dest.get_bytes("manifest.json", limit=10) == b'{\n  "manif'
    assert dest.get_bytes("manifest.json", limit=4096) == dest.get_bytes("manifest.json")
    assert dest.get_bytes("missing.json", limit=10) is None


# -- the engine: a stale chunk ------------------------------------------------------------------------


def seed(pg: DbServer, schema: Namespace, n: int) -> None:
    pg.execute(f"CREATE TABLE {schema}.orders (id bigint PRIMARY KEY, note text)")
    pg.execute(f"INSERT INTO {schema}.orders SELECT g, md5(g::text) FROM generate_series(1, {n}) g")


def setup(store: StoreHandle, pg: DbServer, schema: Namespace, tmp_path: Path, prefix: str) -> Path:
    seed(pg, schema, 3000)
    exports = [
        {
            "name": "orders",
            "table": f"{schema}.orders",
            "mode": "chunked",
            "chunk_column": "id",
            "chunk_size": 1000,
            "destination": store.destination_yaml(prefix),
        }
    ]
    return write_config(tmp_path / "rivet.yaml", pg.url, exports)


class CompetingDestination:
    """A real destination whose part uploads let `competitor` write the same key just before they commit:
    the minutes between a chunk's decision and its commit, compressed into one call."""

    def __init__(self, inner: Destination, competitor: Callable[[str], None]) -> None:
        self._inner = inner
        self._competitor = competitor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def open_part(self, key: str, replace: ObjectInfo | None = None) -> PartUpload:
        upload = self._inner.open_part(key, replace)
        competitor = self._competitor

        class Competed:
            def write(self, data: bytes) -> int:
                return upload.write(data)

            def commit(self, content_md5: bytes | None = None) -> None:
                competitor(key)
                upload.commit(content_md5)

            def abort(self) -> None:
                upload.abort()

        return Competed()


def test_stale_chunk_commit_fails_with_part_conflict_and_keeps_the_other_writers_part(
    store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg_path = setup(store, pg, pg_schema, tmp_path, "eng/{export}/")
    monkeypatch.setenv("RIVET_TEST_DB_URL", pg.url)
    for name, value in store.env.items():
        monkeypatch.setenv(name, value)
    cfg = load_config(cfg_path)
    exp = cfg.exports[0]
    date = dt.date(2026, 11, 22)
    plan_doc = plan_command(cfg, exp, "run-a", date, check_destination=True)
    dest = store.open("eng/orders/")
    other_bytes = b"another writer's part, committed while this chunk was reading"

    def competitor(key: str) -> None:
        up = dest.open_part(key)  # the other writer also saw the key empty, and commits first
        up.write(other_bytes)
        up.commit(hashlib.md5(other_bytes).digest())

    source = open_source(cfg.source)
    try:
        ctx = recorded_context(cfg, exp, "run-a", date, plan_doc, source)
        with pytest.raises(ContractError) as info:
            export_chunk(ctx, source, CompetingDestination(dest, competitor), ctx.plan.chunk(1), None)
        assert info.value.reason == "PartConflict"
        # the untouched chunk 2 goes through the same path and commits normally
        outcome = export_chunk(ctx, source, dest, ctx.plan.chunk(2), None)
        assert outcome.decision is Decision.EXPORT and outcome.record.rows == 1000
        assert outcome.record.content_crc32c  # the record carries the part's CRC32C too
    finally:
        source.close()
    assert dest.get_bytes(KEY) == other_bytes
    assert sorted(o.key for o in dest.list()) == ["part-000001.parquet", "part-000002.parquet"]
    assert_nothing_stray(store, dest, "eng/orders/")


def _chunk(cfg: Path, store: StoreHandle, pg: DbServer, run_id: str, plan: Path) -> tuple[int, dict[str, Any]]:
    res = rivet(
        "chunk",
        "-c",
        str(cfg),
        "-e",
        "orders",
        "--run-id",
        run_id,
        "--chunk",
        "1",
        "--plan",
        f"@{plan}",
        env=store.env,
        db_url=pg.url,
    )
    return res.code, json.loads(res.stdout)


def _plan(cfg: Path, store: StoreHandle, pg: DbServer, run_id: str, tmp_path: Path, *extra: str) -> Path:
    res = rivet(
        "plan",
        "-c",
        str(cfg),
        "-e",
        "orders",
        "--run-id",
        run_id,
        "--check-destination",
        *extra,
        env=store.env,
        db_url=pg.url,
    )
    assert res.code == 0, res.output
    path = tmp_path / f"plan-{run_id}.json"
    path.write_text(res.stdout)
    return path


def test_stale_chunk_of_an_earlier_run_refuses_a_prefix_another_run_certified_or_took_over(
    store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    cfg = setup(store, pg, pg_schema, tmp_path, "shared/{export}/")
    prefix = "shared/orders/"
    plan_a = _plan(cfg, store, pg, "run-a", tmp_path)  # run A is planned; its chunk Job is slow to start
    res = rivet("run", "-c", str(cfg), "--run-id", "run-b", env=store.env, db_url=pg.url)
    assert res.code == 0, res.output  # meanwhile run B exports and certifies the same prefix
    dest = store.open(prefix)
    before = {o.key: (o.size, o.version) for o in dest.list()}

    code, out = _chunk(cfg, store, pg, "run-a", plan_a)  # run A's stale chunk finally runs
    assert code == 1 and out["error"]["reason"] == "SuccessMarkerPresent"
    assert out["error"]["permanent"] is True
    assert {o.key: (o.size, o.version) for o in dest.list()} == before  # nothing moved, nothing written
    res = rivet("validate", "-c", str(cfg), "--format", "json", env=store.env)
    assert res.code == 0 and res.json["exports"][0]["verification"]["passed"], res.output

    # run C forces a new export: it withdraws B's certification and takes the prefix over
    plan_c = _plan(cfg, store, pg, "run-c", tmp_path, "--force")
    assert dest.head("_SUCCESS") is None
    assert dest.get_bytes("_quarantine/run-c/manifest.json") == dest.get_bytes("manifest.json")
    code, out = _chunk(cfg, store, pg, "run-a", plan_a)  # A is still stale: B's manifest is not A's
    assert code == 1 and out["error"]["reason"] == "PrefixOwnedByAnotherRun"
    assert dest.head("_quarantine/run-a/part-000001.parquet") is None
    code, out = _chunk(cfg, store, pg, "run-c", plan_c)  # C's own chunk may write there
    assert code == 0, out
    assert out["decision"] == "quarantine_export" and out["quarantined"] == "_quarantine/run-c/part-000001.parquet"
    if store.kind == "local":
        assert store.root is not None
        assert not [p for p in (store.root / prefix).iterdir() if p.name.startswith(".rivet-tmp-")]


def test_forced_run_over_another_runs_prefix_still_certifies(
    store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    """Fencing does not get in the way of the legitimate takeovers: --force, and a new run on a prefix
    whose earlier run never certified (its manifest is there, its `_SUCCESS` is not)."""
    cfg = setup(store, pg, pg_schema, tmp_path, "again/{export}/")
    res = rivet("run", "-c", str(cfg), "--run-id", "r1", env=store.env, db_url=pg.url)
    assert res.code == 0, res.output
    res = rivet("run", "-c", str(cfg), "--run-id", "r2", "--force", env=store.env, db_url=pg.url)
    assert res.code == 0, res.output
    dest = store.open("again/orders/")
    dest.delete("_SUCCESS")  # r2 never got to certify: its manifest stays, uncertified
    res = rivet("run", "-c", str(cfg), "--run-id", "r3", env=store.env, db_url=pg.url)
    assert res.code == 0, res.output
    assert json.loads(dest.get_bytes("manifest.json") or b"{}")["run_id"] == "r3"
    res = rivet("validate", "-c", str(cfg), "--format", "json", env=store.env)
    assert res.code == 0 and res.json["exports"][0]["verification"]["passed"], res.output
