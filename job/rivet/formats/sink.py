"""A write-only file object that fingerprints bytes on their way to the destination (contract 3)."""

from __future__ import annotations

from rivet.contract.fingerprint import StreamDigest
from rivet.destinations._common import Crc32cTracker
from rivet.destinations.base import PartUpload


class DigestSink:
    """File-like enough for pyarrow writers; computes size, XXH3, MD5 and CRC32C while writing, never re-reading.

    The CRC32C is what stores report for objects whose ETag is no MD5 (S3 multipart, SSE-KMS). An upload
    that would hash the same bytes again for its own checks (`hashed_by`: every store's) is told of these
    digests instead (destinations.base.WriterDigests), so each byte is hashed with MD5 once."""

    def __init__(self, upload: PartUpload) -> None:
        self._upload = upload
        self.digest = StreamDigest()
        self._crc32c = Crc32cTracker()
        self.closed = False
        self._discarded = False
        hashed_by = getattr(upload, "hashed_by", None)
        if callable(hashed_by):
            hashed_by(self)

    @property
    def md5_digest(self) -> bytes:
        """The raw MD5 of every byte written."""
        return self.digest.md5_digest

    def discard(self) -> None:
        """The upload was aborted: drop whatever a writer still flushes (pyarrow writes its footer when the
        abandoned writer is garbage-collected), instead of failing on an upload that no longer exists."""
        self._discarded = True

    @property
    def crc32c(self) -> str:
        """base64 of the big-endian CRC32C of every byte written."""
        return self._crc32c.b64()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._discarded:
            return len(data)
        chunk = bytes(data)
        self.digest.update(chunk)
        self._crc32c.update(chunk)
        self._upload.write(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.digest.size

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
