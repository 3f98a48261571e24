"""Helpers shared by the destinations: key handling, MD5 bookkeeping, one-line error messages."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import google_crc32c

from rivet.contract.objects import ObjectInfo
from rivet.destinations.base import WriterDigests
from rivet.errors import ContractError, DestinationError
from rivet.redact import redact_text


def normalise_prefix(prefix: str) -> str:
    """Object-store prefixes never start with `/` and end with `/` unless empty, so keys join cleanly."""
    prefix = prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return prefix


def check_key(key: str) -> str:
    """Refuse keys that could escape the prefix (`..`, absolute) or address the prefix itself."""
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in parts):
        raise DestinationError(f"invalid object key {key!r}: keys are relative paths such as 'part-000001.parquet'")
    return key


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def md5_from_etag(etag: str | None) -> str | None:
    """An S3 ETag is the object's MD5 only for single-part, non-KMS uploads: hex without a `-`."""
    if not etag:
        return None
    etag = etag.strip('"')
    if "-" in etag or len(etag) != 32:
        return None
    try:
        return b64(bytes.fromhex(etag))
    except ValueError:
        return None


_CRC32C: Any = google_crc32c  # C-accelerated CRC32C (a google-cloud-storage dependency), untyped


def crc32c_b64(data: bytes | bytearray | memoryview) -> str:
    """base64 of the big-endian CRC32C of `data`, as S3 (x-amz-checksum-crc32c) and GCS spell it."""
    return b64(_CRC32C.Checksum(bytes(data)).digest())


class Crc32cTracker:
    """The running CRC32C of a byte stream, base64 of its big-endian value when asked."""

    def __init__(self) -> None:
        self._crc = _CRC32C.Checksum()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._crc.update(bytes(data))

    def b64(self) -> str:
        return b64(self._crc.digest())


class Md5Tracker:
    """Hashes bytes as they are written so commit can refuse a caller MD5 that disagrees, before publishing.

    With `crc32c=True` it also keeps the CRC32C of the whole stream (S3 full-object checksum). When the
    writer hashes every byte with MD5 itself (`hashed_by`, the DigestSink), only a CRC32C is kept here
    (hardware-assisted, about 20x cheaper than MD5) and `verify` checks the writer's CRC32C against it:
    each byte is hashed with MD5 once, and bytes their writer never hashed are still refused."""

    def __init__(self, crc32c: bool = False) -> None:
        self._md5: Any = hashlib.md5(usedforsecurity=False)
        self._crc = Crc32cTracker() if crc32c else None
        self._writer: WriterDigests | None = None
        self.size = 0

    def hashed_by(self, writer: WriterDigests, where: str) -> None:
        """Take the writer's MD5 instead of computing one. Before the first byte."""
        if self.size:
            raise DestinationError(f"{where}: hashed_by after a write")
        self._writer = writer
        self._md5 = None
        if self._crc is None:
            self._crc = Crc32cTracker()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._md5 is not None:
            self._md5.update(data)
        if self._crc is not None:
            self._crc.update(data)
        self.size += len(data)

    def digest(self) -> bytes:
        if self._writer is not None:
            return self._writer.md5_digest
        return bytes(self._md5.digest())

    def crc32c(self) -> str:
        """base64 of the big-endian CRC32C of everything written (crc32c=True or hashed_by only)."""
        assert self._crc is not None, "Md5Tracker(crc32c=True) keeps the CRC32C"
        return self._crc.b64()

    def verify(self, expected: bytes | None, where: str) -> bytes:
        """Return the digest; raise if the caller's MD5 is not the MD5 of the bytes we were given."""
        if self._writer is not None:
            # The writer's first: reading it waits until the writer has handed over every byte it took
            # (the DigestSink writes from a thread of its own), so this upload's own CRC32C is complete.
            theirs = self._writer.crc32c
            own = self.crc32c()
            if own != theirs:
                raise DestinationError(
                    f"{where}: the {self.size} bytes written (CRC32C {own}) are not the bytes their writer "
                    f"hashed (CRC32C {theirs}); nothing was published"
                )
        actual = self.digest()
        if expected is not None and expected != actual:
            raise DestinationError(
                f"{where}: content MD5 given at commit ({b64(expected)}) does not match the "
                f"{self.size} bytes written ({b64(actual)}); nothing was published"
            )
        return actual


def one_line(text: str, secrets: tuple[str, ...]) -> str:
    """Collapse SDK multi-line messages and mask credentials: messages end up in logs and statuses."""
    text = " ".join(text.split())
    if len(text) > 400:
        text = text[:400] + "..."
    return redact_text(text, secrets)


class BucketErrors:
    """Shared by the S3 and GCS error mappers: names the bucket, endpoint and credential fields
    (never their values) in every message."""

    store = ""  # "s3" | "gcs"

    def __init__(self, bucket: str, endpoint: str | None, auth_hint: str, secrets: tuple[str, ...]) -> None:
        self.bucket = bucket
        self.endpoint = endpoint
        self.auth_hint = auth_hint
        self.secrets = secrets

    def _where(self) -> str:
        at = f" at endpoint {self.endpoint}" if self.endpoint else ""
        return f"{self.store} bucket '{self.bucket}'{at}"

    def _missing(self) -> str:
        at = f" at endpoint {self.endpoint}" if self.endpoint else ""
        return f"{self.store} bucket '{self.bucket}' does not exist{at} (create it or fix destination.bucket)"


def part_conflict(where: str, replace: ObjectInfo | None) -> ContractError:
    """A conditional commit lost: another writer created or changed the object at the key after this chunk
    decided what to do with it. Nothing was overwritten; permanent, since a retry would decide again."""
    if replace is None:
        what = "an object appeared at the key after this chunk saw it empty"
    else:
        what = "the object at the key changed after this chunk decided to replace it"
    return ContractError(
        f"{where}: another writer got there first ({what}); nothing was overwritten."
        " Resume the run to quarantine that object and export the chunk again",
        reason="PartConflict",
    )


def is_own_commit(found: ObjectInfo | None, size: int, md5: bytes, crc32c: str | None = None) -> bool:
    """After a lost precondition: is the object at the key exactly the bytes this upload wrote? A retried
    request whose first attempt did commit fails its own create-only condition; same size and the same
    store-reported checksum means nothing else is there."""
    if found is None or found.size != size:
        return False
    if found.md5 is not None:
        return found.md5 == b64(md5)
    return crc32c is not None and found.crc32c == crc32c
