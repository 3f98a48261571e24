"""The output contract, end to end through the `rivet` CLI, on every object destination.

The same assertions run on local, S3 (SeaweedFS), GCS (fake-gcs-server) and Azure (Azurite):
part keys, manifest fields and order, fingerprints recomputed from the stored bytes, `_SUCCESS`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
import xxhash

from rivet.contract.fingerprint import schema_fingerprint
from tests.fixtures.databases import DbServer, Namespace
from tests.fixtures.objectstores import StoreHandle
from tests.integration.rivet_cli import rivet, write_config

MANIFEST_ORDER = [
    "manifest_version",
    "run_id",
    "export_name",
    "started_at",
    "finished_at",
    "status",
    "source",
    "destination",
    "format",
    "compression",
    "schema_fingerprint",
    "row_count",
    "part_count",
    "parts",
]
URI_SCHEME = {"local": "file://", "s3": "s3://", "gcs": "gs://", "azure": "az://"}


def make_orders(pg: DbServer, schema: Namespace) -> list[int]:
    """ids 1..300 and 601..1000: with chunk_size 100, chunks 4-6 are empty and write no part."""
    pg.execute(
        f"CREATE TABLE {schema}.orders (id bigint PRIMARY KEY, customer text, amount numeric(12,2),"
        " placed timestamptz, note text)"
    )
    pg.execute(
        f"INSERT INTO {schema}.orders SELECT g, 'c' || (g % 17), (g * 1.25)::numeric(12,2),"
        " timestamptz '2026-11-01 00:00:00+00' + g * interval '1 minute', CASE WHEN g % 5 = 0 THEN NULL"
        " ELSE 'n' END FROM generate_series(1, 1000) g WHERE g <= 300 OR g > 600"
    )
    return [*range(1, 301), *range(601, 1001)]


def fingerprint(data: bytes) -> str:
    return "xxh3:" + xxhash.xxh3_64_hexdigest(data)


def read_object(store: StoreHandle, prefix: str, key: str) -> bytes:
    data = store.open(prefix).get_bytes(key)
    assert data is not None, f"{key} missing under {prefix}"
    return data


def check_contract(store: StoreHandle, prefix: str, manifest_raw: bytes) -> dict[str, Any]:
    """Every contract rule that can be checked from the stored bytes alone."""
    doc = json.loads(manifest_raw)
    assert list(doc)[: len(MANIFEST_ORDER)] == MANIFEST_ORDER
    assert manifest_raw.startswith(b'{\n  "manifest_version": 1,\n')  # 2-space indent
    assert read_object(store, prefix, "_SUCCESS") == (fingerprint(manifest_raw) + "\n").encode()
    assert doc["part_count"] == len(doc["parts"]) and doc["row_count"] == sum(p["rows"] for p in doc["parts"])
    keys = {o.key for o in store.open(prefix).list() if not o.key.startswith("_quarantine/")}
    assert keys == {"manifest.json", "_SUCCESS", *(p["path"] for p in doc["parts"])}
    for part in doc["parts"]:
        data = read_object(store, prefix, part["path"])
        assert part["path"] == f"part-{part['part_id']:06d}.{doc['format']}"
        assert part["size_bytes"] == len(data)
        assert part["content_fingerprint"] == fingerprint(data)
        assert part["content_md5"] == base64.b64encode(hashlib.md5(data).digest()).decode()
        assert part["status"] == "committed"
    assert doc["destination"]["kind"] == store.kind
    assert doc["destination"]["uri"].startswith(URI_SCHEME[store.kind])
    return doc


def test_chunked_parquet_export_meets_the_contract(
    store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    ids = make_orders(pg, pg_schema)
    exports = [
        {
            "name": "orders",
            "table": f"{pg_schema}.orders",
            "mode": "chunked",
            "chunk_column": "id",
            "chunk_size": 100,
            "parallel": 2,
            "destination": store.destination_yaml("exports/{date}/{export}/{run_id}/"),
        }
    ]
    cfg = write_config(tmp_path / "rivet.yaml", pg.url, exports)
    res = rivet("run", "-c", str(cfg), "--date", "2026-11-22", "--run-id", "r1", env=store.env, db_url=pg.url)
    assert res.code == 0, res.output
    summary = res.json["exports"][0]
    assert summary["status"] == "success" and summary["rows"] == len(ids) and summary["parts"] == 7
    assert summary["chunks_total"] == 10 and summary["chunks_empty"] == 3
    prefix = "exports/2026-11-22/orders/r1/"
    assert summary["resolved_prefix"].endswith(prefix)
    raw = read_object(store, prefix, "manifest.json")
    doc = check_contract(store, prefix, raw)
    assert doc["run_id"] == "r1" and doc["export_name"] == "orders" and doc["status"] == "success"
    assert doc["source"] == {"engine": "postgres", "schema": str(pg_schema), "table": "orders"}
    assert (doc["format"], doc["compression"]) == ("parquet", "zstd")
    assert [p["part_id"] for p in doc["parts"]] == [1, 2, 3, 7, 8, 9, 10]
    assert doc["parts"][3]["key_range"] == [601, 700]
    got: list[int] = []
    for part in doc["parts"]:
        table = pq.read_table(io.BytesIO(read_object(store, prefix, part["path"])))
        assert table.num_rows == part["rows"]
        assert schema_fingerprint(table.schema) == doc["schema_fingerprint"]
        got.extend(table.column("id").to_pylist())
    assert sorted(got) == ids  # every source row exactly once
    assert summary["manifest_fingerprint"] == fingerprint(raw)


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_full_csv_export_meets_the_contract(
    store: StoreHandle, engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if engine == "postgres":
        db: DbServer = request.getfixturevalue("pg")
        ns: Namespace = request.getfixturevalue("pg_schema")
    else:
        db = request.getfixturevalue("mysql")
        ns = request.getfixturevalue("mysql_db")
    db.execute(
        f"CREATE TABLE {ns}.items (id int PRIMARY KEY, name varchar(40), price decimal(10,3))",
        database=None if engine == "postgres" else str(ns),
    )
    db.executemany(
        f"INSERT INTO {ns}.items VALUES (%s, %s, %s)",
        [(1, 'a,"quoted"', "1.500"), (2, None, "-0.001"), (3, "line\nbreak", None)],
    )
    exports = [
        {
            "name": "items",
            "table": f"{ns}.items",
            "format": "csv",
            "destination": store.destination_yaml("{export}/{date}/"),
        }
    ]
    cfg = write_config(tmp_path / "rivet.yaml", ns.url, exports, engine=engine)
    res = rivet("run", "-c", str(cfg), "--date", "2026-01-02", env=store.env, db_url=ns.url)
    assert res.code == 0, res.output
    prefix = "items/2026-01-02/"
    doc = check_contract(store, prefix, read_object(store, prefix, "manifest.json"))
    assert (doc["format"], doc["compression"], doc["part_count"], doc["row_count"]) == ("csv", "none", 1, 3)
    data = read_object(store, prefix, "part-000001.csv")
    assert data.splitlines()[0] == b'"id","name","price"'
    rows = pcsv.read_csv(io.BytesIO(data)).to_pylist()
    by_id = {r["id"]: r for r in rows}
    assert by_id[1]["name"] == 'a,"quoted"' and by_id[3]["name"] == "line\nbreak"
    assert str(by_id[2]["price"]) in ("-0.001", "-0.0010") or by_id[2]["price"] == -0.001


def test_rerun_over_certified_prefix_is_refused_then_forced(
    store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    make_orders(pg, pg_schema)
    exports = [
        {
            "name": "orders",
            "table": f"{pg_schema}.orders",
            "mode": "chunked",
            "chunk_column": "id",
            "chunk_size": 400,
            "destination": store.destination_yaml("fixed/{export}/"),
        }
    ]
    cfg = write_config(tmp_path / "rivet.yaml", pg.url, exports)
    assert rivet("run", "-c", str(cfg), env=store.env, db_url=pg.url).code == 0
    first = read_object(store, "fixed/orders/", "manifest.json")
    refused = rivet("run", "-c", str(cfg), env=store.env, db_url=pg.url)
    assert refused.code == 1 and "already holds _SUCCESS" in refused.stderr and "--force" in refused.stderr
    assert read_object(store, "fixed/orders/", "manifest.json") == first  # untouched
    pg.execute(f"INSERT INTO {pg_schema}.orders VALUES (1001, 'x', 1, now(), 'late')")
    forced = rivet("run", "-c", str(cfg), "--force", env=store.env, db_url=pg.url)
    assert forced.code == 0, forced.output
    doc = check_contract(store, "fixed/orders/", read_object(store, "fixed/orders/", "manifest.json"))
    assert doc["row_count"] == 701 and doc["run_id"] != json.loads(first)["run_id"]
    # the first run's parts were untracked by the forced run: moved aside byte for byte, never deleted (M9)
    old_parts = [p["path"] for p in json.loads(first)["parts"]]
    quarantined = sorted(o.key for o in store.open("fixed/orders/").list() if o.key.startswith("_quarantine/"))
    assert quarantined == sorted(f"_quarantine/{doc['run_id']}/{p}" for p in [*old_parts, "manifest.json"])
    # and the manifest it replaced is kept too: the forced run's claim on the prefix (fencing)
    assert read_object(store, "fixed/orders/", f"_quarantine/{doc['run_id']}/manifest.json") == first
