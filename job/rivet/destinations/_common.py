"""Helpers shared by the destinations: key handling, MD5 bookkeeping, one-line error messages."""

from __future__ import annotations

import base64
import hashlib

from rivet.errors import DestinationError
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


class Md5Tracker:
    """Hashes bytes as they are written so commit can refuse a caller MD5 that disagrees, before publishing."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._md5.update(data)
        self.size += len(data)

    def digest(self) -> bytes:
        return self._md5.digest()

    def verify(self, expected: bytes | None, where: str) -> bytes:
        """Return the digest; raise if the caller's MD5 is not the MD5 of the bytes we were given."""
        actual = self._md5.digest()
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
