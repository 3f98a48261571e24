"""The S3 upload path against SeaweedFS (SigV4 enforced): every request that carries bytes carries a checksum
of them that the server checks, each byte is hashed with MD5 once, and the bytes an upload holds are bounded.

The part uploads run the way the pipeline runs them: `dest.open_part` then a `DigestSink` on top, so the
upload takes its MD5 from the sink (`hashed_by`) and checks the sink's CRC32C against its own.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rivet.config.model import DestinationConfig, DestinationType
from rivet.destinations import s3 as s3_module
from rivet.destinations.base import Destination
from rivet.destinations.factory import open_destination
from rivet.destinations.s3 import S3Destination, S3PartUpload
from rivet.errors import DestinationError
from rivet.formats.sink import DigestSink
from tests.fixtures.objectstores import S3Server, unique_name
from tests.fixtures.payloads import MiB, payload
from tests.fixtures.payloads import crc32c_b64 as crc32c
from tests.fixtures.payloads import md5_b64 as md5

PREFIX = "exports/orders/"


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    name = unique_name()
    s3_server.client().create_bucket(Bucket=name)
    return name


def open_dest(server: S3Server, bucket: str, endpoint: str | None = None) -> S3Destination:
    cfg = DestinationConfig(
        type=DestinationType.S3,
        bucket=bucket,
        endpoint=endpoint or server.endpoint,
        region=server.region,
        access_key_env="K",
        secret_key_env="S",
    )
    dest = open_destination(cfg, PREFIX, env={"K": server.access_key, "S": server.secret_key})
    assert isinstance(dest, S3Destination)
    return dest


def export(dest: Destination, key: str, data: bytes, piece: int = MiB) -> DigestSink:
    """What `pipeline.export_part` does with a part's encoded bytes."""
    upload = dest.open_part(key)
    sink = DigestSink(upload)
    for start in range(0, len(data), piece):
        sink.write(data[start : start + piece])
    upload.commit(sink.digest.md5_digest)
    return sink


def read_body(body: Any) -> bytes:
    """A request body as bytes (botocore hands PutObject and UploadPart bodies on as file objects)."""
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    at = body.tell()
    data = body.read()
    body.seek(at)
    return bytes(data)


class Requests:
    """Every S3 request as sent (after signing), from botocore's before-send event."""

    def __init__(self, dest: S3Destination) -> None:
        self.sent: list[tuple[str, dict[str, str], bytes]] = []
        dest.client.meta.events.register("before-send.s3", self._record)

    def _record(self, request: Any, event_name: str, **_: Any) -> None:
        self.sent.append((event_name.rsplit(".", 1)[-1], dict(request.headers), read_body(request.body)))

    def of(self, op: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for name, h, b in self.sent if name == op]


def header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def no_stray_upload(server: S3Server, bucket: str) -> bool:
    return not server.client().list_multipart_uploads(Bucket=bucket).get("Uploads")


# --- a checksum the server checks, on every request that carries bytes ------------------------------------


def test_every_part_and_object_carries_a_checksum_of_its_bytes(s3_server: S3Server, bucket: str) -> None:
    dest = open_dest(s3_server, bucket)
    requests = Requests(dest)
    large, small = payload(21 * MiB + 5, seed=1), payload(MiB + 3, seed=2)
    sink = export(dest, "part-000001.csv", large, piece=300_001)
    export(dest, "part-000002.csv", small)

    parts = requests.of("UploadPart")
    assert [len(body) for _, body in parts] == [8 * MiB, 8 * MiB, 5 * MiB + 5]
    for headers, body in parts:
        assert header(headers, "x-amz-checksum-crc32c") == crc32c(body)
        assert header(headers, "X-Amz-Content-SHA256") not in (None, "UNSIGNED-PAYLOAD")  # plain http: signed
    (complete,) = requests.of("CompleteMultipartUpload")
    assert header(complete[0], "x-amz-checksum-crc32c") == crc32c(large) == sink.crc32c
    (put,) = requests.of("PutObject")
    assert header(put[0], "Content-MD5") == md5(small) and header(put[0], "x-amz-checksum-crc32c") == crc32c(small)

    raw = s3_server.client()
    head = raw.head_object(Bucket=bucket, Key=PREFIX + "part-000001.csv", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32C"], head.get("ChecksumType", "FULL_OBJECT")) == (crc32c(large), "FULL_OBJECT")
    assert sink.digest.md5_base64 == md5(large)  # the manifest's MD5: the sink's, of every byte
    assert dest.get_bytes("part-000001.csv") == large and dest.get_bytes("part-000002.csv") == small


def corrupt_parts(dest: S3Destination) -> None:
    """Flip one byte of every UploadPart body after its checksum was taken and before it is signed: the
    corruption in transit (or a digest computed from other bytes) that no real server can be made to
    produce. The request stays validly signed, so only the checksum can catch it."""

    def flip(request: Any, **_: Any) -> None:
        data = bytearray(read_body(request.data))
        data[len(data) // 2] ^= 0xFF
        request.data = io.BytesIO(bytes(data))

    dest.client.meta.events.register("before-sign.s3.UploadPart", flip)


def test_a_part_whose_bytes_do_not_match_its_checksum_is_refused_and_nothing_is_published(
    s3_server: S3Server, bucket: str
) -> None:
    dest = open_dest(s3_server, bucket)
    corrupt_parts(dest)
    with pytest.raises(DestinationError, match=r"BadDigest|checksum|digest"):
        export(dest, "part-000001.csv", payload(20 * MiB))
    assert dest.list() == []
    assert no_stray_upload(s3_server, bucket)


def test_https_endpoints_sign_with_unsigned_payload_plain_http_signs_it(s3_server: S3Server, bucket: str) -> None:
    """Over TLS botocore would hash every part with SHA-256 once more (it skips that only with Content-MD5)."""
    tls = open_dest(s3_server, bucket, endpoint="https://127.0.0.1:9")  # never connected to
    assert tls.client.meta.config.s3["payload_signing_enabled"] is False
    plain = open_dest(s3_server, bucket)
    assert "payload_signing_enabled" not in (plain.client.meta.config.s3 or {})


# --- bounded memory ---------------------------------------------------------------------------------------


class SlowParts:
    """Holds every UploadPart back before it is sent, as a slow link would (a local server is never slow
    enough to show the bound), and counts how many are on their way at once."""

    def __init__(self, dest: S3Destination, delay_s: float) -> None:
        self.delay_s = delay_s
        self.on_the_way = 0
        self.most = 0
        self._lock = threading.Lock()
        events = dest.client.meta.events
        events.register("before-send.s3.UploadPart", self._sending)
        events.register("after-call.s3.UploadPart", self._done)
        events.register("after-call-error.s3.UploadPart", self._done)

    def _sending(self, **_: Any) -> None:
        with self._lock:
            self.on_the_way += 1
            self.most = max(self.most, self.on_the_way)
        time.sleep(self.delay_s)

    def _done(self, **_: Any) -> None:
        with self._lock:
            self.on_the_way -= 1


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


@pytest.fixture
def peak_rss() -> Iterator[Callable[[], int]]:
    """Bytes the process's peak RSS rose above its RSS at the start (Linux: clear_refs 5 resets the peak)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("cannot reset the peak RSS here (/proc/self/clear_refs)")
    start = status_kib("VmRSS")
    yield lambda: (status_kib("VmHWM") - start) * 1024


def test_a_writer_faster_than_the_store_is_held_to_a_few_parts_in_memory(
    s3_server: S3Server, bucket: str, peak_rss: Callable[[], int]
) -> None:
    dest = open_dest(s3_server, bucket)
    slow = SlowParts(dest, delay_s=0.3)
    upload = dest.open_part("part-000001.csv")
    assert isinstance(upload, S3PartUpload)  # S3 uploads send parts on threads of their own
    sink = DigestSink(upload)
    bound = (s3_module.UPLOAD_CONCURRENCY + 1) * s3_module.PART_SIZE
    size = 12 * s3_module.PART_SIZE  # 96 MiB, written as fast as memory allows
    most_buffered = 0
    started = time.monotonic()
    for _ in range(size // MiB):
        sink.write(os.urandom(MiB))
        most_buffered = max(most_buffered, upload.buffered_bytes)
    written_s = time.monotonic() - started
    upload.commit(sink.digest.md5_digest)
    peak = peak_rss()

    assert slow.most == s3_module.UPLOAD_CONCURRENCY  # parts did go up side by side, and no more of them
    assert most_buffered <= bound
    # the part being filled and the parts on their way (plus the SDK's and the test's own): not the 96 MiB
    assert peak < bound + 16 * MiB, f"peak RSS rose by {peak / MiB:.0f} MiB"
    # the writer was held back: 12 parts, 2 at a time, 0.3 s each
    assert written_s >= (12 // s3_module.UPLOAD_CONCURRENCY - 2) * slow.delay_s
    head = s3_server.client().head_object(Bucket=bucket, Key=PREFIX + "part-000001.csv", ChecksumMode="ENABLED")
    assert head["ContentLength"] == size and head["ChecksumCRC32C"] == sink.crc32c


def test_a_part_the_store_refuses_fails_the_upload_and_leaves_nothing(s3_server: S3Server, bucket: str) -> None:
    """A real failure mid-way: the multipart upload is aborted behind the writer's back (NoSuchUpload)."""
    dest = open_dest(s3_server, bucket)
    upload = dest.open_part("part-000001.csv")
    sink = DigestSink(upload)
    sink.write(payload(9 * MiB))  # one part handed off: the multipart upload exists
    raw = s3_server.client()
    deadline = time.monotonic() + 10
    while not (uploads := raw.list_multipart_uploads(Bucket=bucket).get("Uploads")) and time.monotonic() < deadline:
        time.sleep(0.05)
    (live,) = uploads
    raw.abort_multipart_upload(Bucket=bucket, Key=live["Key"], UploadId=live["UploadId"])
    with pytest.raises(DestinationError):
        for _ in range(4):
            sink.write(payload(8 * MiB, seed=3))
        upload.commit(sink.digest.md5_digest)
    upload.abort()
    assert dest.list() == []
    assert no_stray_upload(s3_server, bucket)
