"""A write-only file object that fingerprints bytes on their way to the destination (contract 3)."""

from __future__ import annotations

from rivet.contract.fingerprint import StreamDigest
from rivet.destinations.base import PartUpload


class DigestSink:
    """File-like enough for pyarrow writers; computes size, XXH3 and MD5 while writing, never re-reading."""

    def __init__(self, upload: PartUpload) -> None:
        self._upload = upload
        self.digest = StreamDigest()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        chunk = bytes(data)
        self.digest.update(chunk)
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
