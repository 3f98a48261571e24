"""S3 server-side encryption against SeaweedFS: SSE-S3 (AES256) and SSE-KMS (its local KMS provider).

With SSE-KMS (and SSE-C) an S3 ETag is not the MD5 of the bytes, and a multipart upload's ETag never is.
Rivet therefore sends a full-object CRC32C with every part (verified by the store on upload) and reads it
back with HeadObject, and takes an ETag as an MD5 only for single-part objects without SSE-KMS.

SeaweedFS is started here with a `-s3.config` that enables its local KMS provider (the session's shared
SeaweedFS has none), so PutObject, CreateMultipartUpload and CopyObject really run with SSE-KMS headers.
What SeaweedFS cannot show: its SSE-KMS ETag of a single-part object still equals the MD5, where AWS's is
opaque. That one AWS behaviour is replayed with botocore's Stubber in the last test (recorded responses,
no server), and only that.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rivet.config.model import DestinationConfig, DestinationType
from rivet.destinations.base import Destination
from rivet.destinations.factory import open_destination
from tests.fixtures.databases import DbServer, Namespace
from tests.fixtures.objectstores import S3Server, _spawn, _weed_binary, free_port, unique_name
from tests.fixtures.payloads import MiB, payload
from tests.fixtures.payloads import crc32c_b64 as crc32c
from tests.fixtures.payloads import md5_b64 as md5
from tests.integration.rivet_cli import rivet, write_config

PREFIX = "sse/orders/"
KMS_KEY = "alias/seaweedfs-default"  # the key SeaweedFS's local KMS provider creates at start-up
KEY_ENV, SECRET_ENV = "RIVET_TEST_SSE_KEY", "RIVET_TEST_SSE_SECRET"


@pytest.fixture(scope="module")
def kms_s3() -> Iterator[S3Server]:
    """SeaweedFS with SigV4 credentials and SSE-KMS enabled through its local KMS provider."""
    try:
        weed = _weed_binary()
    except Exception as exc:  # ServerUnavailable
        pytest.skip(str(exc))
    host = "127.0.0.1"
    access_key, secret_key = "rivetkms", "s3secret" + secrets.token_hex(12)
    ports = {
        f"{s}.port{g}": free_port(host) for s in ("master", "volume", "filer", "s3", "admin") for g in ("", ".grpc")
    }
    workdir = Path(tempfile.mkdtemp(prefix="rivet-weed-kms-"))
    (workdir / "logs").mkdir()
    (workdir / "data").mkdir()
    config = {
        "identities": [
            {
                "name": "rivet",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ],
        "kms": {"default_provider": "local", "providers": {"local": {"type": "local"}}},
    }
    (workdir / "s3.json").write_text(json.dumps(config))
    argv = [
        weed,
        f"-logdir={workdir / 'logs'}",
        "mini",
        f"-dir={workdir / 'data'}",
        f"-ip={host}",
        f"-ip.bind={host}",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.autoCreateBucket=false",
        f"-s3.config={workdir / 's3.json'}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    proc = _spawn("weed-kms", argv, workdir)
    server = S3Server(f"http://{host}:{ports['s3.port']}", access_key, secret_key, process=proc)
    try:
        probe = server.client()
        proc.wait_until(lambda: bool(probe.list_buckets() is not None))
        yield server
    finally:
        proc.stop()  # by its own PID


def sse_yaml(server: S3Server, bucket: str, sse: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "type": "s3",
        "bucket": bucket,
        "endpoint": server.endpoint,
        "region": server.region,
        "access_key_env": KEY_ENV,
        "secret_key_env": SECRET_ENV,
        "sse": sse,
    }
    if sse == "aws:kms":
        fields["sse_kms_key_id"] = KMS_KEY  # SeaweedFS needs a key id; on AWS it may be left out
    return fields


def env_for(server: S3Server) -> dict[str, str]:
    return {KEY_ENV: server.access_key, SECRET_ENV: server.secret_key}


def open_sse(server: S3Server, bucket: str, sse: str) -> Destination:
    fields = sse_yaml(server, bucket, sse)
    cfg = DestinationConfig(type=DestinationType(fields.pop("type")), prefix=PREFIX, **fields)
    return open_destination(cfg, PREFIX, env=env_for(server))


@pytest.fixture
def bucket(kms_s3: S3Server) -> str:
    name = unique_name()
    kms_s3.client().create_bucket(Bucket=name)
    return name


@pytest.mark.parametrize("sse", ["AES256", "aws:kms"])
def test_every_write_is_encrypted_and_every_part_reports_a_full_object_crc32c(
    kms_s3: S3Server, bucket: str, sse: str
) -> None:
    dest = open_sse(kms_s3, bucket, sse)
    small, large = payload(MiB + 3, seed=1), payload(20 * MiB + 5, seed=2)  # single PUT, 3-part multipart
    for key, data in (("part-000001.parquet", small), ("part-000002.parquet", large)):
        up = dest.open_part(key)
        for start in range(0, len(data), MiB):
            up.write(data[start : start + MiB])
        up.commit(hashlib.md5(data).digest())
    dest.put_bytes("manifest.json", b"{}")
    dest.copy("part-000002.parquet", "_quarantine/r/part-000002.parquet")  # quarantine copies encrypt too
    raw = kms_s3.client()
    for key in ("part-000001.parquet", "part-000002.parquet", "manifest.json", "_quarantine/r/part-000002.parquet"):
        head = raw.head_object(Bucket=bucket, Key=PREFIX + key)
        assert head["ServerSideEncryption"] == sse, key
    etag = raw.head_object(Bucket=bucket, Key=PREFIX + "part-000002.parquet")["ETag"]
    assert etag.strip('"').endswith("-3")
    listing = {o.key: o for o in dest.list()}
    for info in (dest.head("part-000001.parquet"), listing["part-000001.parquet"]):
        assert info is not None
        if sse == "AES256":
            assert info.md5 == md5(small)  # SSE-S3 keeps the single-part ETag an MD5
            # SeaweedFS drops the stored x-amz-checksum of SSE-S3 objects past its inline size; AWS keeps it
            assert info.crc32c in (crc32c(small), None)
        else:
            # an SSE-KMS ETag is never taken as an MD5 (even where, as on SeaweedFS, it happens to be one)
            assert info.md5 is None and info.crc32c == crc32c(small)
    for info in (dest.head("part-000002.parquet"), listing["part-000002.parquet"]):
        assert info is not None and info.md5 is None  # multipart: the ETag is no MD5
        assert info.crc32c == crc32c(large)  # but the store's full-object CRC32C is the real thing
    assert dest.get_bytes("part-000002.parquet") == large
    assert not raw.list_multipart_uploads(Bucket=bucket).get("Uploads")


def seed(pg: DbServer, schema: Namespace, n: int) -> None:
    # 64 hex characters per row, uncompressed: chunk 1 (200,000 rows) is a ~13 MB part (multipart),
    # chunk 2 (1,000 rows) a small one (single PUT)
    pg.execute(f"CREATE TABLE {schema}.orders (id bigint PRIMARY KEY, note text)")
    pg.execute(
        f"INSERT INTO {schema}.orders SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, {n}) g"
    )


@pytest.mark.parametrize("sse", ["AES256", "aws:kms"])
def test_encrypted_export_validates_with_verify_content_and_resume_skips_intact_parts(
    kms_s3: S3Server, bucket: str, sse: str, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    seed(pg, pg_schema, 201_000)
    exports = [
        {
            "name": "orders",
            "table": f"{pg_schema}.orders",
            "mode": "chunked",
            "chunk_column": "id",
            "chunk_size": 200_000,
            "compression": "none",
            "verify": "content",
            "destination": {**sse_yaml(kms_s3, bucket, sse), "prefix": "lake/{export}/{run_id}/"},
        }
    ]
    cfg = write_config(tmp_path / "rivet.yaml", pg.url, exports)
    env = env_for(kms_s3)
    res = rivet("run", "-c", str(cfg), "--run-id", "r1", env=env, db_url=pg.url)
    assert res.code == 0, res.output
    prefix = "lake/orders/r1/"
    raw = kms_s3.client()
    etags = {k: raw.head_object(Bucket=bucket, Key=prefix + k)["ETag"] for k in ("part-000001.parquet",)}
    assert etags["part-000001.parquet"].strip('"').endswith("-2")  # really multipart
    manifest = json.loads(raw.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    assert all(p["content_crc32c"] for p in manifest["parts"])

    def validate() -> dict[str, Any]:
        out = rivet("validate", "-c", str(cfg), "--run-id", "r1", "--format", "json", env=env)
        assert out.code == 0, out.output
        v: dict[str, Any] = out.json["exports"][0]["verification"]
        assert v["passed"] and v["parts_verified"] == 2 and v["parts_failed"] == 0, v
        assert v["failures"] == []  # no content_verification_unmet, no checksum mismatch
        return v

    v = validate()
    # the multipart part is verified by its CRC32C; the single-part one by its MD5 (SSE-S3) or CRC32C (SSE-KMS)
    assert v["parts_md5_verified"] == (1 if sse == "AES256" else 0)
    assert v["parts_crc32c_verified"] == (1 if sse == "AES256" else 2)

    # a crash after both parts committed: the resume must carry both forward, quarantining nothing
    raw.delete_object(Bucket=bucket, Key=prefix + "_SUCCESS")
    raw.delete_object(Bucket=bucket, Key=prefix + "manifest.json")
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute("UPDATE runs SET status = 'running' WHERE run_id = 'r1'")
    db.commit()
    db.close()
    res = rivet("run", "-c", str(cfg), "--resume", env=env, db_url=pg.url)
    assert res.code == 0, res.output
    summary = res.json["exports"][0]
    assert summary["chunks_skipped"] == 2 and summary["chunks_exported"] == 0 and summary["quarantined"] == []
    assert raw.head_object(Bucket=bucket, Key=prefix + "part-000001.parquet")["ETag"] == etags["part-000001.parquet"]
    validate()


def test_sse_config_is_checked_when_loaded(tmp_path: Path) -> None:
    from rivet.config import load_config
    from rivet.errors import ConfigError

    def load(dest: dict[str, Any]) -> None:
        write_config(
            tmp_path / "r.yaml", "postgresql://u@127.0.0.1/db", [{"name": "e", "table": "t", "destination": dest}]
        )
        load_config(tmp_path / "r.yaml", env={"RIVET_TEST_DB_URL": "postgresql://u@127.0.0.1/db"})

    base = {"type": "s3", "bucket": "b", "prefix": "p/"}
    load({**base, "sse": "aws:kms", "sse_kms_key_id": "alias/k"})
    load({**base, "sse": "AES256"})
    with pytest.raises(ConfigError, match=r"destination\.sse: 'aws:kms:dsse' is not"):
        load({**base, "sse": "aws:kms:dsse"})
    with pytest.raises(ConfigError, match=r"destination\.sse_kms_key_id: needs sse: aws:kms"):
        load({**base, "sse": "AES256", "sse_kms_key_id": "alias/k"})
    with pytest.raises(ConfigError, match=r"sse"):
        load({"type": "gcs", "bucket": "b", "sse": "AES256"})


# -- AWS behaviour SeaweedFS does not reproduce (recorded responses, no server) -----------------------


def test_an_sse_kms_etag_is_never_compared_as_an_md5_even_when_the_bucket_encrypts_by_default() -> None:
    """On AWS an SSE-KMS object's ETag is 32 hex digits that are not its MD5. Here the bucket encrypts by
    default (no `sse` configured): the first HEAD shows aws:kms, after which every listed object's
    checksum comes from HEAD (its CRC32C), never from the ETag."""
    import boto3
    from botocore.stub import Stubber

    from rivet.destinations.s3 import S3Destination
    from rivet.destinations.s3_errors import S3Errors

    client = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        endpoint_url="http://127.0.0.1:9",
    )
    dest = S3Destination(client, "lake", "p/", S3Errors("lake", None, "hint", ()))
    data = b"parquet bytes"
    opaque = '"' + hashlib.md5(b"not the content").hexdigest() + '"'  # looks like an MD5, is not one
    now = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    listed = {"Key": "p/part-000001.parquet", "Size": len(data), "ETag": opaque, "LastModified": now}
    head = {
        "ContentLength": len(data),
        "ETag": opaque,
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "arn:aws:kms:us-east-1:111122223333:key/k",
        "ChecksumCRC32C": crc32c(data),
        "ChecksumType": "FULL_OBJECT",
    }
    head_params = {"Bucket": "lake", "Key": "p/part-000001.parquet", "ChecksumMode": "ENABLED"}
    with Stubber(client) as stub:
        stub.add_response("list_objects_v2", {"Contents": [listed], "KeyCount": 1, "IsTruncated": False})
        stub.add_response("head_object", head, head_params)  # the one probe: this bucket encrypts with KMS
        stub.add_response("head_object", head, head_params)  # then the object's own HEAD for its CRC32C
        (info,) = dest.list()
        stub.assert_no_pending_responses()
    assert info.md5 is None and info.crc32c == crc32c(data) and info.version == opaque
    assert dest.etag_is_md5 is False
    with Stubber(client) as stub:
        stub.add_response("head_object", head, head_params)
        one = dest.head("part-000001.parquet")
    assert one is not None and one.md5 is None and one.crc32c == crc32c(data)
