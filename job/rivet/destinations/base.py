"""The one interface every destination implements; the contract code only ever talks to this.

Keys are relative to the resolved prefix (`part-000001.parquet`, `manifest.json`,
`_quarantine/<run_id>/part-000001.parquet`) and always use `/`.
"""

from __future__ import annotations

from typing import Protocol

from rivet.contract.objects import ObjectInfo

__all__ = ["Destination", "ObjectInfo", "PartUpload", "WriterDigests"]


class WriterDigests(Protocol):
    """Digests a PartUpload's writer (`formats.sink.DigestSink`) keeps of exactly the bytes it hands to the
    upload's `write`, in order. An upload told of them (`hashed_by`) need not hash those bytes again for
    the same digest: it then keeps only a CRC32C of its own (`_common.Md5Tracker`), which commit checks
    against `crc32c`, instead of a second MD5 pass. Reading either digest first waits until the writer
    has handed every byte it took to the upload (and ends its writing)."""

    @property
    def md5_digest(self) -> bytes:
        """The raw MD5 of every byte written."""

    @property
    def crc32c(self) -> str:
        """base64 of the big-endian CRC32C of every byte written."""


class PartUpload(Protocol):
    """A streaming write of one object that appears only on `commit` (M1, M7).

    Memory stays bounded by the upload's buffer (multipart part / block / resumable chunk size).
    """

    def write(self, data: bytes) -> int: ...

    def commit(self, content_md5: bytes | None = None) -> None:
        """Make the object visible at its key with exactly the bytes written.

        `content_md5` is the raw MD5 digest the caller computed while writing: stores that keep
        or verify an MD5 (S3 single PUT, GCS, Azure Content-MD5) get it, so no one re-reads bytes.
        """

    def abort(self) -> None:
        """Discard everything written; nothing is left at the key or as a stray upload."""


class Destination(Protocol):
    kind: str  # "local" | "s3" | "gcs" | "azure" | "stdout"

    def uri(self) -> str:
        """The resolved prefix as a URI (`file:///...`, `s3://b/p/`, `gs://b/p/`, `az://c/p/`), no secrets."""

    def check(self) -> None:
        """Fail fast with a DestinationError naming the bucket/container/path if it is unusable."""

    def open_part(self, key: str, replace: ObjectInfo | None = None) -> PartUpload:
        """Start a streaming upload to `key` whose commit is conditional (fencing): with `replace` None it
        creates the object only if nothing is at the key (S3 If-None-Match, GCS ifGenerationMatch=0, Azure
        If-None-Match, local link); with `replace` it succeeds only while the object there is still that
        version (If-Match). A lost condition raises ContractError(reason="PartConflict") and overwrites
        nothing. A `replace` without a version (a store that gave none) replaces unconditionally."""

    def put_bytes(self, key: str, data: bytes) -> None:
        """Atomic single write (manifest.json, _SUCCESS): readers see the old or the whole new object."""

    def get_bytes(self, key: str, limit: int | None = None) -> bytes | None:
        """The object's bytes (only its first `limit` bytes if given), or None if it does not exist."""

    def head(self, key: str) -> ObjectInfo | None:
        """Size and checksum of one object, or None if it does not exist."""

    def list(self) -> list[ObjectInfo]:
        """Every object under the prefix (recursively), keys relative to it."""

    def copy(self, src_key: str, dst_key: str) -> None:
        """Server-side copy, byte for byte (quarantine is copy then delete)."""

    def delete(self, key: str) -> None:
        """Remove one object; deleting a missing object is not an error."""
