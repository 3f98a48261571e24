"""The DigestSink's hashing thread: bytes reach the upload whole and in order, the encoder is not held up by
a slow upload beyond the pending bound, and failures surface to the writer.

The upload here is an in-memory double whose `write` can be held or made to fail on demand: the point is
the sink's ordering and hand-off between threads, which no store's timing reproduces deterministically.
The same sink runs against the real stores in tests/integration/test_destinations.py.
"""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
import xxhash

from rivet.formats.sink import DigestSink
from tests.fixtures.payloads import crc32c_b64, payload


class HeldUpload:
    """Keeps what it is given; `gate` cleared holds every write until it is set again."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_at: int | None = None
        self.threads: set[str] = set()

    def write(self, data: bytes) -> int:
        self.entered.set()
        self.threads.add(threading.current_thread().name)
        assert self.gate.wait(10)
        if self.fail_at is not None and len(self.data) + len(data) > self.fail_at:
            raise OSError("the store went away")
        self.data += data
        return len(data)

    def commit(self, content_md5: bytes | None = None) -> None:
        pass

    def abort(self) -> None:
        pass


def test_every_byte_reaches_the_upload_in_order_and_the_digests_are_of_exactly_those_bytes() -> None:
    upload = HeldUpload()
    sink = DigestSink(upload, max_pending=64 * 1024)
    data = payload(3 * 1024 * 1024 + 17, seed=5)
    at = 0
    for size in (1, 1000, 70_000, 1, 512 * 1024, 3, 2 * 1024 * 1024):
        sink.write(memoryview(data)[at : at + size])
        at += size
    sink.write(bytearray(data[at:]))
    assert sink.tell() == len(data)
    digest = sink.digest
    assert bytes(upload.data) == data
    assert digest.size == len(data)
    assert digest.md5_digest == hashlib.md5(data).digest() == sink.md5_digest
    assert digest.fingerprint == "xxh3:" + xxhash.xxh3_64_hexdigest(data)
    assert sink.crc32c == crc32c_b64(data)
    assert upload.threads == {"rivet-digest"}  # not the encoder's thread
    with pytest.raises(RuntimeError, match="after its digests were read"):
        sink.write(b"late")


def test_a_slow_upload_holds_the_writer_only_past_the_pending_bound() -> None:
    upload = HeldUpload()
    upload.gate.clear()
    sink = DigestSink(upload, max_pending=1024)
    sink.write(b"a" * 4096)  # taken by the thread, which is now held inside the upload's write
    assert upload.entered.wait(5)
    sink.write(b"b" * 600)  # pending: below the bound, returns at once
    sink.write(b"c" * 600)  # pending 600 < 1024: taken too; pending is now over the bound
    returned = threading.Event()
    writer = threading.Thread(target=lambda: (sink.write(b"d"), returned.set()))
    writer.start()
    time.sleep(0.3)
    assert not returned.is_set()  # held: 1,200 bytes wait for an upload that does not take them
    upload.gate.set()
    assert returned.wait(5)
    writer.join()
    assert sink.digest.size == 5297  # reading it waits for the thread to hand everything over
    assert bytes(upload.data) == b"a" * 4096 + b"b" * 600 + b"c" * 600 + b"d"


def test_a_failed_upload_write_fails_the_next_write_and_every_digest_read() -> None:
    upload = HeldUpload()
    upload.fail_at = 10_000
    sink = DigestSink(upload, max_pending=1)
    sink.write(b"x" * 8_000)
    sink.write(b"y" * 8_000)  # the upload refuses this one, on the sink's thread
    with pytest.raises(OSError, match="went away"):
        for _ in range(100):  # the failure reaches the writer once the thread has met it
            sink.write(b"z")
            time.sleep(0.01)
    with pytest.raises(OSError, match="went away"):
        _ = sink.md5_digest
    with pytest.raises(OSError, match="went away"):
        _ = sink.crc32c
    assert bytes(upload.data) == b"x" * 8_000


def test_discard_waits_for_the_write_in_progress_and_drops_the_rest() -> None:
    upload = HeldUpload()
    upload.gate.clear()
    sink = DigestSink(upload, max_pending=1 << 20)
    sink.write(b"first")
    assert upload.entered.wait(5)
    sink.write(b"second")  # pending behind the held write
    threading.Timer(0.2, upload.gate.set).start()
    started = time.monotonic()
    sink.discard()  # returns only once the held write is over: abort never runs beside a write
    assert time.monotonic() - started >= 0.15
    assert bytes(upload.data) == b"first"
    assert sink.write(b"a footer flushed by an abandoned writer") > 0  # ignored
    assert bytes(upload.data) == b"first"
