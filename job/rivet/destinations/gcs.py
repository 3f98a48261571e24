"""Google Cloud Storage destination: single upload when small, resumable upload (finalized on commit) when large."""

from __future__ import annotations

import contextlib
from typing import Any

from google.cloud.storage import Blob, Bucket, Client
from google.cloud.storage.retry import DEFAULT_RETRY

from rivet.contract.objects import ObjectInfo
from rivet.destinations._common import Md5Tracker, b64, check_key
from rivet.destinations.gcs_errors import GCS_ERRORS, GcsErrors, is_not_found
from rivet.errors import DestinationError

CHUNK_SIZE = 8 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require
CHECK_RETRY_S = 10.0  # check() fails fast; data operations keep the library's longer retry budget


class GcsPartUpload:
    """Holds up to one chunk in memory; past that it streams a resumable session, which GCS publishes only
    when the last chunk finalizes it (abort cancels the session)."""

    def __init__(self, dest: GcsDestination, key: str) -> None:
        self._dest = dest
        self._full = dest.full_key(key)
        self._buf = bytearray()
        self._md5 = Md5Tracker()
        self._writer: Any = None
        self._done = False

    def write(self, data: bytes) -> int:
        if self._done:
            raise DestinationError(f"gcs write gs://{self._dest.bucket.name}/{self._full}: upload already finished")
        self._md5.update(data)
        try:
            if self._writer is not None:
                self._writer.write(data)
                return len(data)
            self._buf += data
            if len(self._buf) >= CHUNK_SIZE:
                blob = self._dest.bucket.blob(self._full, chunk_size=CHUNK_SIZE)
                self._writer = blob.open("wb", ignore_flush=True, checksum="md5")
                self._writer.write(bytes(self._buf))
                self._buf = bytearray()
        except GCS_ERRORS as exc:
            self.abort()
            raise self._dest.errors.wrap("upload", self._full, exc) from exc
        return len(data)

    def commit(self, content_md5: bytes | None = None) -> None:
        if self._done:
            raise DestinationError(f"gcs commit gs://{self._dest.bucket.name}/{self._full}: upload already finished")
        try:
            digest = self._md5.verify(content_md5, f"gcs commit gs://{self._dest.bucket.name}/{self._full}")
        except DestinationError:
            self.abort()
            raise
        self._done = True
        try:
            if self._writer is None:
                self._dest.upload(self._full, bytes(self._buf), digest)
            else:
                self._writer.close()
        except GCS_ERRORS as exc:
            self._cancel()
            raise self._dest.errors.wrap("upload", self._full, exc) from exc
        finally:
            self._buf = bytearray()

    def abort(self) -> None:
        self._done = True
        self._buf = bytearray()
        self._cancel()

    def _cancel(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        # DELETE on the session URI; if that fails, an unfinalized session publishes nothing and expires.
        with contextlib.suppress(*GCS_ERRORS):
            writer.terminate()


class GcsDestination:
    kind = "gcs"

    def __init__(self, client: Client, bucket: str, prefix: str, errors: GcsErrors) -> None:
        self.client = client
        self.bucket: Bucket = client.bucket(bucket)
        self.prefix = prefix
        self.errors = errors

    def full_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def uri(self) -> str:
        return f"gs://{self.bucket.name}/{self.prefix}"

    def upload(self, full: str, data: bytes, digest: bytes) -> None:
        """Single-request upload carrying the MD5, which GCS verifies before creating the object."""
        blob = self.bucket.blob(full)
        blob.md5_hash = b64(digest)
        blob.upload_from_string(data, content_type="application/octet-stream", checksum="md5")

    def check(self) -> None:
        try:
            list(
                self.client.list_blobs(
                    self.bucket, prefix=self.prefix, max_results=1, retry=DEFAULT_RETRY.with_timeout(CHECK_RETRY_S)
                )
            )
        except GCS_ERRORS as exc:
            raise self.errors.wrap("list", self.prefix, exc, bucket_level=True) from exc

    def open_part(self, key: str) -> GcsPartUpload:
        return GcsPartUpload(self, key)

    def put_bytes(self, key: str, data: bytes) -> None:
        full = self.full_key(key)
        md5 = Md5Tracker()
        md5.update(data)
        try:
            self.upload(full, data, md5.digest())
        except GCS_ERRORS as exc:
            raise self.errors.wrap("put", full, exc) from exc

    def get_bytes(self, key: str) -> bytes | None:
        full = self.full_key(key)
        try:
            return bytes(self.bucket.blob(full).download_as_bytes(checksum="md5"))
        except GCS_ERRORS as exc:
            if is_not_found(exc):
                return None
            raise self.errors.wrap("get", full, exc) from exc

    def head(self, key: str) -> ObjectInfo | None:
        full = self.full_key(key)
        try:
            blob = self.bucket.get_blob(full)
        except GCS_ERRORS as exc:
            raise self.errors.wrap("head", full, exc) from exc
        return None if blob is None else _info(key, blob)

    def list(self) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        try:
            for blob in self.client.list_blobs(self.bucket, prefix=self.prefix):
                rel = str(blob.name)[len(self.prefix) :]
                if rel and not rel.endswith("/"):
                    out.append(_info(rel, blob))
        except GCS_ERRORS as exc:
            raise self.errors.wrap("list", self.prefix, exc, bucket_level=True) from exc
        return out

    def copy(self, src_key: str, dst_key: str) -> None:
        """Rewrite, not copyTo: rewrite resumes with a token, so large objects copy server-side too."""
        src, dst = self.full_key(src_key), self.full_key(dst_key)
        try:
            target = self.bucket.blob(dst)
            token, _done, _total = target.rewrite(self.bucket.blob(src))
            while token is not None:
                token, _done, _total = target.rewrite(self.bucket.blob(src), token=token)
        except GCS_ERRORS as exc:
            raise self.errors.wrap("copy", f"{src} -> {dst}", exc) from exc

    def delete(self, key: str) -> None:
        full = self.full_key(key)
        try:
            self.bucket.blob(full).delete()
        except GCS_ERRORS as exc:
            if is_not_found(exc):
                return
            raise self.errors.wrap("delete", full, exc) from exc


def _info(key: str, blob: Blob) -> ObjectInfo:
    return ObjectInfo(key=key, size=int(blob.size or 0), md5=blob.md5_hash or None)
