"""A write-only file object that fingerprints bytes on their way to the destination (contract 3)."""

from __future__ import annotations

import threading

from rivet.contract.fingerprint import StreamDigest
from rivet.destinations._common import Crc32cTracker
from rivet.destinations.base import PartUpload

# Bytes a writer may hand over before it waits for the hashing thread (a single larger write is taken
# whole: the writer then waits only for it to be done before its next one).
PENDING_BYTES = 1024 * 1024


class DigestSink:
    """File-like enough for pyarrow writers; computes size, XXH3, MD5 and CRC32C while writing, never re-reading.

    The hashing and the upload's writes run on a thread of their own, in the order the bytes came, so the
    encoder goes on with the next batch meanwhile: MD5 over a CSV part was a quarter of the encoding
    thread's time. Reading a digest (`digest`, `md5_digest`, `crc32c`) first waits for every byte written
    so far to be hashed and handed to the upload, and raises the error of a write that failed; so does
    `finish`. A failed write also fails the next `write`.

    The CRC32C is what stores report for objects whose ETag is no MD5 (S3 multipart, SSE-KMS). An upload
    that would hash the same bytes again for its own checks (`hashed_by`: every store's) is told of these
    digests instead (destinations.base.WriterDigests), so each byte is hashed with MD5 once."""

    def __init__(self, upload: PartUpload, max_pending: int = PENDING_BYTES) -> None:
        self._upload = upload
        self._digest = StreamDigest()
        self._crc32c = Crc32cTracker()
        self._max = max_pending
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._accepted = 0
        self._stopping = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self.closed = False
        self._discarded = False
        hashed_by = getattr(upload, "hashed_by", None)
        if callable(hashed_by):
            hashed_by(self)
        self._thread = threading.Thread(target=self._run, name="rivet-digest", daemon=True)
        self._thread.start()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._discarded:
            return len(data)
        chunk = bytes(data)  # the caller may reuse its buffer once this returns
        with self._cond:
            while self._pending_bytes >= self._max and self._error is None and not self._stopping:
                self._cond.wait()
            self._raise_failed()
            if self._stopping:
                raise RuntimeError("DigestSink: write after its digests were read")
            self._pending.append(chunk)
            self._pending_bytes += len(chunk)
            self._accepted += len(chunk)
            self._cond.notify_all()
        return len(chunk)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    return  # stopping, and everything taken was written
                items, self._pending, self._pending_bytes = self._pending, [], 0
                self._cond.notify_all()
            try:
                for chunk in items:
                    if self._discarded:
                        return
                    self._digest.update(chunk)
                    self._crc32c.update(chunk)
                    self._upload.write(chunk)
            except BaseException as exc:  # raised to the writer by its next write or digest read
                with self._cond:
                    self._error, self._pending, self._pending_bytes = exc, [], 0
                    self._cond.notify_all()
                return

    def _raise_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def finish(self) -> None:
        """Wait until every byte written is hashed and handed to the upload; then no more writes. Raises
        the error of a write that failed. Idempotent."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("DigestSink.finish from its own thread")
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()
        self._raise_failed()

    @property
    def digest(self) -> StreamDigest:
        """Size, XXH3 and MD5 of every byte written (after `finish`)."""
        self.finish()
        return self._digest

    @property
    def md5_digest(self) -> bytes:
        """The raw MD5 of every byte written."""
        return self.digest.md5_digest

    @property
    def crc32c(self) -> str:
        """base64 of the big-endian CRC32C of every byte written."""
        self.finish()
        return self._crc32c.b64()

    def discard(self) -> None:
        """The upload is being aborted: drop the bytes not yet handed to it and wait for the one being
        handed (so `abort` never runs beside a write); ignore whatever a writer still flushes (pyarrow
        writes its footer when the abandoned writer is garbage-collected)."""
        self._discarded = True
        with self._cond:
            self._stopping = True
            self._pending, self._pending_bytes = [], 0
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def tell(self) -> int:
        return self._accepted

    def flush(self) -> None:
        pass

    def close(self) -> None:
        # pyarrow may close the sink when its writer closes; the upload is committed separately.
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False
