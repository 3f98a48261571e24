"""Destinations against real servers: SeaweedFS (S3, SigV4 enforced), fake-gcs-server, Azurite, local disk."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from rivet.config.model import DestinationConfig, DestinationType
from rivet.destinations.base import Destination
from rivet.destinations.factory import open_destination
from rivet.destinations.stdout import StdoutDestination
from rivet.errors import ConfigError, DestinationError
from rivet.formats.sink import DigestSink
from tests.fixtures.objectstores import AzuriteServer, S3Server, StoreHandle, free_port, unique_name
from tests.fixtures.payloads import MiB, md5_b64, payload

PREFIX = "exports/2026-11-22/orders/"


def stream(dest: Destination, key: str, data: bytes, piece: int = MiB, md5: bytes | None = None) -> None:
    upload = dest.open_part(key)
    for start in range(0, len(data), piece):
        upload.write(data[start : start + piece])
    upload.commit(hashlib.md5(data).digest() if md5 is None else md5)


def assert_no_secret(text: str, store: StoreHandle) -> None:
    for secret in store.secrets:
        assert secret not in text


# --- every kind ------------------------------------------------------------------------------------------


def test_streaming_write_commit_stores_exact_bytes_size_and_md5(store: StoreHandle) -> None:
    dest = store.open(PREFIX)
    dest.check()
    data = payload(3 * MiB + 17)
    stream(dest, "part-000001.parquet", data, piece=256 * 1024 + 3)
    assert dest.get_bytes("part-000001.parquet") == data
    info = dest.head("part-000001.parquet")
    assert info is not None
    assert (info.key, info.size) == ("part-000001.parquet", len(data))
    if store.kind == "local":
        assert info.md5 is None
    else:
        assert info.md5 == md5_b64(data)


def test_part_is_invisible_until_commit(store: StoreHandle) -> None:
    dest = store.open(PREFIX)
    upload = dest.open_part("part-000001.parquet")
    upload.write(payload(9 * MiB))  # past one buffer: the multipart / resumable / block upload is live
    assert dest.list() == []
    assert dest.head("part-000001.parquet") is None
    upload.commit()
    assert [o.key for o in dest.list()] == ["part-000001.parquet"]


def test_abort_leaves_no_object_and_no_multipart_upload(store: StoreHandle) -> None:
    dest = store.open(PREFIX)
    upload = dest.open_part("part-000002.parquet")
    upload.write(payload(9 * MiB))
    upload.write(payload(MiB, seed=1))
    upload.abort()
    upload.abort()  # idempotent
    assert dest.list() == []
    assert dest.get_bytes("part-000002.parquet") is None
    if store.kind == "s3":
        uploads = store.server.client().list_multipart_uploads(Bucket=store.bucket)
        assert not uploads.get("Uploads")
    if store.kind == "local":
        assert store.root is not None
        assert [p.name for p in (store.root / PREFIX).iterdir()] == []  # no stray temp file either
    with pytest.raises(DestinationError):
        upload.write(b"more")


def test_20_mib_upload_streams_in_several_parts_and_reads_back_identical(store: StoreHandle) -> None:
    dest = store.open(PREFIX)
    data = payload(20 * MiB, seed=7)
    stream(dest, "part-000003.parquet", data)
    assert dest.get_bytes("part-000003.parquet") == data
    info = dest.head("part-000003.parquet")
    assert info is not None and info.size == len(data)
    if store.kind == "s3":
        etag = store.server.client().head_object(Bucket=store.bucket, Key=PREFIX + "part-000003.parquet")["ETag"]
        assert etag.strip('"').endswith("-3")  # 8 + 8 + 4 MiB parts
        assert info.md5 is None  # a multipart ETag is not an MD5
    if store.kind == "azure":
        blob = store.server.service().get_blob_client(store.bucket, PREFIX + "part-000003.parquet")
        committed, _uncommitted = blob.get_block_list("committed")
        assert len(committed) == 3
        assert info.md5 == md5_b64(data)
    if store.kind == "gcs":
        assert info.md5 == md5_b64(data)


def test_commit_with_a_wrong_md5_publishes_nothing(store: StoreHandle) -> None:
    dest = store.open(PREFIX)
    for size in (100, 9 * MiB):  # single-request path and streaming path
        upload = dest.open_part("part-000004.parquet")
        upload.write(payload(size))
        with pytest.raises(DestinationError, match="does not match"):
            upload.commit(hashlib.md5(b"something else").digest())
        assert dest.list() == []
    if store.kind == "s3":
        assert not store.server.client().list_multipart_uploads(Bucket=store.bucket).get("Uploads")


def test_a_part_written_through_the_digest_sink_is_hashed_with_md5_once_and_checked_against_it(
    store: StoreHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's path (dest.open_part + DigestSink): the upload takes the sink's MD5 instead of
    computing its own, yet a wrong MD5, or bytes written to the upload past the sink, still publish
    nothing (its own CRC32C of what it was given must equal the sink's)."""
    md5_bytes = {"n": 0}
    real_md5 = hashlib.md5

    class CountingMd5:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._h = real_md5(*args, **kwargs)

        def update(self, data: Any) -> None:
            md5_bytes["n"] += len(data)
            self._h.update(data)

        def digest(self) -> bytes:
            return self._h.digest()

        def hexdigest(self) -> str:
            return self._h.hexdigest()

    dest = store.open(PREFIX)
    data = payload(9 * MiB)
    monkeypatch.setattr(hashlib, "md5", CountingMd5)
    upload = dest.open_part("part-000001.parquet")
    sink = DigestSink(upload)
    for start in range(0, len(data), MiB):
        sink.write(data[start : start + MiB])
    upload.commit(sink.md5_digest)
    monkeypatch.undo()
    # The sink's pass and no other; Azure also sends each block's MD5 for the store to check on arrival
    # (validate_content: the SDK's wire check, which has no CRC form).
    assert md5_bytes["n"] == len(data) * (2 if store.kind == "azure" else 1)
    assert dest.get_bytes("part-000001.parquet") == data

    for size in (100, 9 * MiB):
        upload = dest.open_part("part-000002.parquet")
        sink = DigestSink(upload)
        sink.write(payload(size))
        with pytest.raises(DestinationError, match="does not match"):
            upload.commit(hashlib.md5(b"something else").digest())

        upload = dest.open_part("part-000002.parquet")
        sink = DigestSink(upload)
        sink.write(payload(size))
        sink.finish()  # the sink's bytes are in the upload: the stray byte comes after them
        upload.write(b"a byte the sink never saw")
        with pytest.raises(DestinationError, match="not the bytes their writer hashed"):
            upload.commit(sink.md5_digest)
    assert [o.key for o in dest.list()] == ["part-000001.parquet"]
    if store.kind == "s3":  # the refused multipart uploads were aborted, not left behind
        assert not store.server.client().list_multipart_uploads(Bucket=store.bucket).get("Uploads")


def test_put_bytes_replaces_the_object_whole(store: StoreHandle) -> None:
    dest = store.open(PREFIX)
    dest.put_bytes("manifest.json", b'{"v": 1}')
    dest.put_bytes("manifest.json", b'{"v": 2, "longer": true}')
    assert dest.get_bytes("manifest.json") == b'{"v": 2, "longer": true}'
    info = dest.head("manifest.json")
    assert info is not None and info.size == len(b'{"v": 2, "longer": true}')
    if store.kind != "local":
        assert info.md5 == md5_b64(b'{"v": 2, "longer": true}')
    assert [o.key for o in dest.list()] == ["manifest.json"]


def test_head_list_copy_delete_with_relative_recursive_keys(store: StoreHandle) -> None:
    dest = store.open(PREFIX)
    part = payload(1000, seed=3)
    dest.put_bytes("part-000001.parquet", part)
    dest.put_bytes("_SUCCESS", b"xxh3:0123456789abcdef\n")
    dest.copy("part-000001.parquet", "_quarantine/run-1/part-000001.parquet")
    assert dest.get_bytes("_quarantine/run-1/part-000001.parquet") == part
    dest.delete("part-000001.parquet")
    dest.delete("part-000001.parquet")  # deleting a missing object is fine
    listing = {o.key: o for o in dest.list()}
    assert sorted(listing) == ["_SUCCESS", "_quarantine/run-1/part-000001.parquet"]
    assert listing["_quarantine/run-1/part-000001.parquet"].size == len(part)
    if store.kind != "local":
        assert listing["_quarantine/run-1/part-000001.parquet"].md5 == md5_b64(part)
    assert dest.head("part-000001.parquet") is None
    assert dest.get_bytes("part-000001.parquet") is None


def test_list_stays_inside_the_prefix_and_paginates(store: StoreHandle) -> None:
    outer = store.open("exports/a")
    sibling = store.open("exports/ab/")
    sibling.put_bytes("part-000001.parquet", b"sibling")
    keys = [f"k/{i:04d}" for i in range(1005)] if store.kind == "s3" else [f"k/{i:02d}" for i in range(30)]
    for key in keys:
        outer.put_bytes(key, b"x")
    assert sorted(o.key for o in outer.list()) == keys  # S3 pages at 1000 keys
    assert [o.key for o in sibling.list()] == ["part-000001.parquet"]


def test_uri_names_bucket_and_prefix_without_secrets(store: StoreHandle) -> None:
    # Object stores strip a leading slash and add the trailing one; local takes a path.
    dest = store.open(("" if store.kind == "local" else "/") + PREFIX.rstrip("/"))
    uri = dest.uri()
    expected = {
        "s3": f"s3://{store.bucket}/{PREFIX}",
        "gcs": f"gs://{store.bucket}/{PREFIX}",
        "azure": f"az://{store.bucket}/{PREFIX}",
    }
    if store.kind == "local":
        assert uri == (Path(str(store.root)) / PREFIX).as_uri() + "/"
    else:
        assert uri == expected[store.kind]
    assert_no_secret(uri, store)


def test_missing_bucket_fails_check_with_its_name_and_no_secret(store: StoreHandle, tmp_path: Path) -> None:
    if store.kind == "local":
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        dest = open_destination(DestinationConfig(type=DestinationType.LOCAL), str(blocker / "sub"))
        with pytest.raises(DestinationError, match="not a directory"):
            dest.check()
        return
    fields = store.destination_yaml(PREFIX)
    fields["container" if store.kind == "azure" else "bucket"] = "rivet-no-such-bucket"
    cfg = DestinationConfig(type=DestinationType(fields.pop("type")), **fields)
    dest = open_destination(cfg, PREFIX, env=store.env)
    with pytest.raises(DestinationError) as info:
        dest.check()
    message = str(info.value)
    assert "'rivet-no-such-bucket'" in message and "does not exist" in message
    assert info.value.permanent
    assert_no_secret(message, store)
    with pytest.raises(DestinationError):
        dest.put_bytes("manifest.json", b"{}")


def test_unreachable_endpoint_is_a_transient_error(store: StoreHandle) -> None:
    if store.kind == "local":
        pytest.skip("no endpoint")
    fields = store.destination_yaml(PREFIX)
    dead = f"http://127.0.0.1:{free_port()}"
    fields["endpoint"] = dead + ("/devstoreaccount1" if store.kind == "azure" else "")
    cfg = DestinationConfig(type=DestinationType(fields.pop("type")), **fields)
    with pytest.raises(DestinationError) as info:
        open_destination(cfg, PREFIX, env=store.env).check()
    assert info.value.permanent is False
    assert "unreachable" in str(info.value)
    assert "\n" not in str(info.value)


def test_keys_that_escape_the_prefix_are_refused(store: StoreHandle) -> None:
    dest = store.open(PREFIX)
    for key in ("../x", "/abs", "a//b", ""):
        with pytest.raises(DestinationError, match="invalid object key"):
            dest.put_bytes(key, b"x")


# --- S3 --------------------------------------------------------------------------------------------------


def s3_cfg(s3: S3Server, bucket: str, **extra: Any) -> DestinationConfig:
    return DestinationConfig(
        type=DestinationType.S3, bucket=bucket, endpoint=s3.endpoint, region="us-east-1", prefix=PREFIX, **extra
    )


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    name = unique_name()
    s3_server.client().create_bucket(Bucket=name)
    return name


def test_wrong_s3_secret_is_access_denied_without_leaking_it(s3_server: S3Server, s3_bucket: str) -> None:
    wrong = "wrong-secret-" + "z" * 20
    cfg = s3_cfg(s3_server, s3_bucket, access_key_env="K", secret_key_env="S")
    dest = open_destination(cfg, PREFIX, env={"K": s3_server.access_key, "S": wrong})
    for call in (dest.check, lambda: dest.put_bytes("x", b"1"), dest.list):
        with pytest.raises(DestinationError) as info:
            call()
        message = str(info.value)
        assert "access denied" in message and "destination.access_key_env/secret_key_env" in message
        assert wrong not in message and s3_server.secret_key not in message
        assert info.value.permanent


def test_s3_unset_credential_env_var_is_a_config_error_naming_the_field(s3_server: S3Server) -> None:
    cfg = s3_cfg(s3_server, "any-bucket", access_key_env="AWS_KEY_X", secret_key_env="AWS_SECRET_X")
    with pytest.raises(ConfigError) as info:
        open_destination(cfg, PREFIX, env={"AWS_SECRET_X": "s"})
    assert str(info.value).startswith("destination.access_key_env: environment variable AWS_KEY_X is not set")


def test_s3_access_key_without_secret_is_a_config_error(s3_server: S3Server) -> None:
    with pytest.raises(ConfigError, match="access_key_env and secret_key_env"):
        open_destination(s3_cfg(s3_server, "b-b-b", access_key_env="K"), PREFIX, env={"K": "k"})


def test_s3_aws_profile_from_config_files_reaches_seaweedfs(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[rivet-test]\naws_access_key_id = {s3_server.access_key}\naws_secret_access_key = {s3_server.secret_key}\n"
    )
    config = tmp_path / "config"
    config.write_text("[profile rivet-test]\nregion = us-east-1\n")
    env = {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(creds)}
    dest = open_destination(s3_cfg(s3_server, s3_bucket, aws_profile="rivet-test"), PREFIX, env=env)
    dest.check()
    dest.put_bytes("manifest.json", b"{}")
    assert dest.get_bytes("manifest.json") == b"{}"
    with pytest.raises(ConfigError, match=r"destination\.aws_profile"):
        open_destination(s3_cfg(s3_server, s3_bucket, aws_profile="nope"), PREFIX, env=env)


def test_s3_profile_with_a_wrong_secret_names_the_profile(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    creds.write_text(f"[p]\naws_access_key_id = {s3_server.access_key}\naws_secret_access_key = wrongwrongwrong\n")
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(creds), "AWS_CONFIG_FILE": str(tmp_path / "none")}
    dest = open_destination(s3_cfg(s3_server, s3_bucket, aws_profile="p"), PREFIX, env=env)
    with pytest.raises(DestinationError, match=r"access denied.*destination\.aws_profile \(p\)"):
        dest.check()


def test_s3_default_chain_takes_credentials_from_the_env_mapping(s3_server: S3Server, s3_bucket: str) -> None:
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    dest = open_destination(s3_cfg(s3_server, s3_bucket), PREFIX, env=env)
    dest.put_bytes("_SUCCESS", b"x")
    assert [o.key for o in dest.list()] == ["_SUCCESS"]


def test_s3_session_token_credentials_from_sts_reach_seaweedfs(s3_server: S3Server, s3_bucket: str) -> None:
    key, secret, token = s3_server.temporary_credentials()
    cfg = s3_cfg(s3_server, s3_bucket, access_key_env="K", secret_key_env="S", session_token_env="T")
    dest = open_destination(cfg, PREFIX, env={"K": key, "S": secret, "T": token})
    dest.check()
    stream(dest, "part-000001.parquet", payload(9 * MiB))  # multipart with temporary credentials
    dest.put_bytes("manifest.json", b"{}")
    assert sorted(o.key for o in dest.list()) == ["manifest.json", "part-000001.parquet"]
    # Without the token the temporary key is unknown: the token really is what authorizes the requests.
    no_token = open_destination(
        s3_cfg(s3_server, s3_bucket, access_key_env="K", secret_key_env="S"), PREFIX, env={"K": key, "S": secret}
    )
    with pytest.raises(DestinationError) as info:
        no_token.check()
    assert "access denied" in str(info.value) and secret not in str(info.value)
    with pytest.raises(ConfigError, match=r"destination\.session_token_env: environment variable T is not set"):
        open_destination(cfg, PREFIX, env={"K": key, "S": secret})


def test_s3_object_larger_than_one_part_copies_server_side(s3_server: S3Server, s3_bucket: str) -> None:
    env = {"K": s3_server.access_key, "S": s3_server.secret_key}
    dest = open_destination(s3_cfg(s3_server, s3_bucket, access_key_env="K", secret_key_env="S"), PREFIX, env=env)
    data = payload(17 * MiB, seed=5)
    stream(dest, "part-000001.parquet", data)
    dest.copy("part-000001.parquet", "_quarantine/r/part-000001.parquet")
    assert dest.get_bytes("_quarantine/r/part-000001.parquet") == data


# --- GCS -------------------------------------------------------------------------------------------------


def _service_account_json(path: Path) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    email = "rivet-test@rivet-test-project.iam.gserviceaccount.com"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "rivet-test-project",
                "private_key_id": "0123456789abcdef",
                "private_key": pem,
                "client_email": email,
                "client_id": "1234567890",
                "token_uri": "http://127.0.0.1:9/token",  # never called; loopback even if it were
            }
        )
    )
    return email


def test_gcs_credentials_file_builds_service_account_credentials_without_network(tmp_path: Path) -> None:
    from google.oauth2 import service_account

    email = _service_account_json(tmp_path / "sa.json")
    cfg = DestinationConfig(
        type=DestinationType.GCS,
        bucket="lake",
        credentials_file=str(tmp_path / "sa.json"),
        endpoint="http://127.0.0.1:9",
    )
    dest: Any = open_destination(cfg, PREFIX, env={})
    creds = dest.client._credentials
    assert isinstance(creds, service_account.Credentials)
    assert creds.service_account_email == email
    assert creds.token is None  # never refreshed: no token endpoint was contacted
    assert dest.client.project == "rivet-test-project"
    assert dest.uri() == f"gs://lake/{PREFIX}"


def test_gcs_google_application_credentials_from_the_env_mapping(tmp_path: Path) -> None:
    from google.oauth2 import service_account

    _service_account_json(tmp_path / "adc.json")
    cfg = DestinationConfig(type=DestinationType.GCS, bucket="lake")
    dest: Any = open_destination(cfg, PREFIX, env={"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "adc.json")})
    assert isinstance(dest.client._credentials, service_account.Credentials)


def test_gcs_unreadable_credentials_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    for path in (tmp_path / "bad.json", tmp_path / "missing.json"):
        cfg = DestinationConfig(type=DestinationType.GCS, bucket="lake", credentials_file=str(path))
        with pytest.raises(ConfigError, match=r"^destination\.credentials_file: cannot load credentials"):
            open_destination(cfg, PREFIX, env={})


# --- Azure -----------------------------------------------------------------------------------------------


@pytest.fixture
def azure_container(azurite_server: AzuriteServer) -> str:
    name = unique_name()
    azurite_server.service().create_container(name)
    return name


def azure_cfg(azurite: AzuriteServer, container: str, **extra: Any) -> DestinationConfig:
    return DestinationConfig(
        type=DestinationType.AZURE,
        account_name=azurite.account_name,
        container=container,
        endpoint=azurite.endpoint,
        prefix=PREFIX,
        **extra,
    )


@pytest.mark.parametrize("leading", ["", "?"])
def test_azure_sas_token_works_with_or_without_leading_question_mark(
    azurite_server: AzuriteServer, azure_container: str, leading: str
) -> None:
    sas = azurite_server.container_sas(azure_container)
    dest = open_destination(
        azure_cfg(azurite_server, azure_container, sas_token_env="SAS"), PREFIX, env={"SAS": leading + sas}
    )
    dest.check()
    stream(dest, "part-000001.parquet", payload(9 * MiB))
    dest.copy("part-000001.parquet", "_quarantine/r/part-000001.parquet")  # source URL carries the SAS
    assert dest.get_bytes("_quarantine/r/part-000001.parquet") == payload(9 * MiB)
    assert sorted(o.key for o in dest.list()) == ["_quarantine/r/part-000001.parquet", "part-000001.parquet"]
    assert "sig=" not in dest.uri()


def test_azure_expired_sas_is_access_denied_without_leaking_it(
    azurite_server: AzuriteServer, azure_container: str
) -> None:
    sas = azurite_server.container_sas(azure_container, hours=-1)
    dest = open_destination(azure_cfg(azurite_server, azure_container, sas_token_env="SAS"), PREFIX, env={"SAS": sas})
    with pytest.raises(DestinationError) as info:
        dest.check()
    assert "access denied" in str(info.value) and "sas_token_env" in str(info.value)
    assert sas not in str(info.value)


def test_azure_anonymous_reads_a_public_container(azurite_server: AzuriteServer) -> None:
    from azure.storage.blob import PublicAccess

    name = unique_name()
    container = azurite_server.service().create_container(name, public_access=PublicAccess.CONTAINER)
    container.upload_blob(PREFIX + "manifest.json", b'{"ok": true}')
    dest = open_destination(azure_cfg(azurite_server, name, allow_anonymous=True), PREFIX, env={})
    dest.check()
    assert [o.key for o in dest.list()] == ["manifest.json"]
    assert dest.get_bytes("manifest.json") == b'{"ok": true}'
    with pytest.raises(DestinationError, match="access denied"):
        dest.put_bytes("x", b"1")


def test_azure_key_and_sas_together_is_a_config_error_naming_both(azurite_server: AzuriteServer) -> None:
    cfg = azure_cfg(azurite_server, "c-c-c", account_key_env="KEY", sas_token_env="SAS")
    with pytest.raises(ConfigError) as info:
        open_destination(cfg, PREFIX, env={"KEY": "k", "SAS": "sig=x"})
    assert "account_key_env" in str(info.value) and "sas_token_env" in str(info.value)


def test_azure_without_any_auth_is_a_config_error(azurite_server: AzuriteServer) -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        open_destination(azure_cfg(azurite_server, "c-c-c"), PREFIX, env={})


def test_azure_accepts_the_0_8_bucket_spelling_and_derives_the_endpoint() -> None:
    cfg = DestinationConfig(
        type=DestinationType.AZURE, account_name="acct", bucket="lake", account_key_env="KEY", prefix=PREFIX
    )
    dest: Any = open_destination(cfg, PREFIX, env={"KEY": base64.b64encode(b"k" * 32).decode()})
    assert dest.uri() == f"az://lake/{PREFIX}"
    assert dest.container.url.startswith("https://acct.blob.core.windows.net/lake")


# --- stdout ----------------------------------------------------------------------------------------------


def test_stdout_streams_parts_and_refuses_everything_else() -> None:
    sink = io.BytesIO()
    dest = StdoutDestination(stream=sink)
    upload = dest.open_part("part-000001.csv")
    upload.write(b"id,name\n")
    upload.write(b"1,a\n")
    upload.commit()
    assert sink.getvalue() == b"id,name\n1,a\n"
    for call in (
        lambda: dest.put_bytes("manifest.json", b"{}"),
        lambda: dest.get_bytes("manifest.json"),
        lambda: dest.head("x"),
        dest.list,
        lambda: dest.copy("a", "b"),
        lambda: dest.delete("a"),
    ):
        with pytest.raises(DestinationError, match=r"^stdout is a streaming destination: "):
            call()
    assert open_destination(DestinationConfig(type=DestinationType.STDOUT), "").kind == "stdout"


def test_local_commit_is_durable_rename_and_hides_temp_files(tmp_path: Path) -> None:
    dest = open_destination(DestinationConfig(type=DestinationType.LOCAL), str(tmp_path / "out"))
    upload = dest.open_part("part-000001.parquet")
    upload.write(b"abc")
    (temp,) = os.listdir(tmp_path / "out")
    assert temp.startswith(".rivet-tmp-") and temp.endswith("-part-000001.parquet")
    assert dest.list() == []
    upload.commit(hashlib.md5(b"abc").digest())
    assert os.listdir(tmp_path / "out") == ["part-000001.parquet"]
    assert dest.uri() == (tmp_path / "out").as_uri() + "/"


def test_throttling_and_server_errors_are_transient_and_auth_errors_permanent() -> None:
    """Real servers cannot be made to throttle or fail on demand, so these build the SDKs' own exception
    objects (no server involved) and check the classification the operator's retry decision relies on."""
    from azure.core.exceptions import HttpResponseError
    from botocore.exceptions import ClientError
    from google.api_core import exceptions as gapi

    from rivet.destinations.azure_errors import AzureErrors
    from rivet.destinations.gcs_errors import GcsErrors
    from rivet.destinations.s3_errors import S3Errors

    def s3_error(code: str, status: int) -> ClientError:
        return ClientError(
            {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
        )

    s3 = S3Errors("lake", None, "destination.access_key_env/secret_key_env", ("sekrit-value",))
    assert s3.wrap("put", "k", s3_error("SlowDown", 503)).permanent is False
    assert s3.wrap("put", "k", s3_error("InternalError", 500)).permanent is False
    denied = s3.wrap("put", "k", s3_error("AccessDenied", 403))
    assert denied.permanent and "access denied" in str(denied)
    assert s3.wrap("put", "k", s3_error("InvalidArgument", 400)).permanent
    gcs = GcsErrors("lake", None, "destination.credentials_file", ())
    busy_gcs, slow_gcs, denied_gcs = (
        gapi.ServiceUnavailable("busy"),  # type: ignore[no-untyped-call]
        gapi.TooManyRequests("slow down"),  # type: ignore[no-untyped-call]
        gapi.Forbidden("no"),  # type: ignore[no-untyped-call]
    )
    assert gcs.wrap("put", "k", busy_gcs).permanent is False
    assert gcs.wrap("put", "k", slow_gcs).permanent is False
    assert gcs.wrap("put", "k", denied_gcs).permanent
    azure = AzureErrors("lake", "https://acct.blob.core.windows.net", "destination.account_key_env", ())
    busy = HttpResponseError(message="ServerBusy")
    busy.status_code = 503
    assert azure.wrap("put", "k", busy).permanent is False
    leaky = ClientError(
        {
            "Error": {"Code": "X", "Message": "token sekrit-value\nsecond line"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "PutObject",
    )
    assert "sekrit-value" not in str(s3.wrap("put", "k", leaky)) and "\n" not in str(s3.wrap("put", "k", leaky))
