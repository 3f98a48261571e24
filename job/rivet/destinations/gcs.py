"""Google Cloud Storage destination: single upload when small, resumable upload (finalized on commit) when large."""

from __future__ import annotations

import contextlib
from typing import Any

from google.cloud.storage import Blob, Bucket, Client
from google.cloud.storage.retry import DEFAULT_RETRY

from rivet.contract.objects import ObjectInfo
from rivet.destinations._common import Md5Tracker, b64, check_key, is_own_commit, part_conflict
from rivet.destinations.base import WriterDigests
from rivet.destinations.gcs_errors import GCS_ERRORS, GcsErrors, is_not_found, is_precondition_failed
from rivet.errors import DestinationError

CHUNK_SIZE = 8 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require
CHECK_RETRY_S = 10.0  # check() fails fast; data operations keep the library's longer retry budget


class GcsPartUpload:
    """Holds up to one chunk in memory; past that it streams a resumable session, which GCS publishes only
    when the last chunk finalizes it (abort cancels the session)."""

    def __init__(self, dest: GcsDestination, key: str, replace: ObjectInfo | None = None) -> None:
        self._dest = dest
        self._key = key
        self._full = dest.full_key(key)
        self._buf = bytearray()
        self._md5 = Md5Tracker()
        self._writer: Any = None
        self._done = False
        self._replace = replace
        # ifGenerationMatch: 0 creates only if absent; a generation replaces only that generation
        self._generation: int | None = 0 if replace is None else (int(replace.version) if replace.version else None)

    def hashed_by(self, digests: WriterDigests) -> None:
        """The writer hashes every byte with MD5 (the DigestSink): no second MD5 pass here. Before the first write."""
        self._md5.hashed_by(digests, f"gcs upload gs://{self._dest.bucket.name}/{self._full}")

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
                # The library checks the stored object against its own checksum of the bytes sent: CRC32C
                # (hardware-assisted), as MD5 is the DigestSink's and checked against this upload's CRC32C.
                self._writer = blob.open("wb", ignore_flush=True, checksum="crc32c", **self._condition())
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
        if self._writer is not None and self._generation is not None and self._precheck(digest):
            return
        try:
            if self._writer is None:
                self._dest.upload(self._full, bytes(self._buf), digest, **self._condition())
            else:
                self._writer.close()
        except GCS_ERRORS as exc:
            self._cancel()
            if not is_precondition_failed(exc):
                raise self._dest.errors.wrap("upload", self._full, exc) from exc
            if not is_own_commit(self._dest.head(self._key), self._md5.size, digest):
                raise part_conflict(f"gcs commit gs://{self._dest.bucket.name}/{self._full}", self._replace) from exc
        finally:
            self._buf = bytearray()

    def _precheck(self, digest: bytes) -> bool:
        """GCS evaluates a resumable session's ifGenerationMatch when the last chunk creates the object;
        fake-gcs-server (the test emulator) does not. One metadata GET before finalizing refuses a lost
        condition on either, so the stale session is cancelled instead of finalized. True: the exact
        bytes are already there (nothing to finalize)."""
        found = self._dest.head(self._key)
        current = int(found.version) if found is not None and found.version else 0
        if found is not None and current == 0:
            current = -1  # an object without a generation cannot match any condition
        if current == self._generation:
            return False
        self._cancel()
        if is_own_commit(found, self._md5.size, digest):
            return True
        raise part_conflict(f"gcs commit gs://{self._dest.bucket.name}/{self._full}", self._replace)

    def _condition(self) -> dict[str, Any]:
        return {} if self._generation is None else {"if_generation_match": self._generation}

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

    def upload(self, full: str, data: bytes, digest: bytes, **condition: Any) -> None:
        """Single-request upload carrying the MD5, which GCS verifies before creating the object."""
        blob = self.bucket.blob(full)
        blob.md5_hash = b64(digest)
        blob.upload_from_string(data, content_type="application/octet-stream", checksum="md5", **condition)

    def check(self) -> None:
        try:
            list(
                self.client.list_blobs(
                    self.bucket, prefix=self.prefix, max_results=1, retry=DEFAULT_RETRY.with_timeout(CHECK_RETRY_S)
                )
            )
        except GCS_ERRORS as exc:
            raise self.errors.wrap("list", self.prefix, exc, bucket_level=True) from exc

    def open_part(self, key: str, replace: ObjectInfo | None = None) -> GcsPartUpload:
        return GcsPartUpload(self, key, replace)

    def put_bytes(self, key: str, data: bytes) -> None:
        full = self.full_key(key)
        md5 = Md5Tracker()
        md5.update(data)
        try:
            self.upload(full, data, md5.digest())
        except GCS_ERRORS as exc:
            raise self.errors.wrap("put", full, exc) from exc

    def get_bytes(self, key: str, limit: int | None = None) -> bytes | None:
        full = self.full_key(key)
        try:
            if limit is not None:  # a range: nothing to check a checksum against
                return bytes(self.bucket.blob(full).download_as_bytes(start=0, end=max(0, limit - 1), checksum=None))
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
    generation = blob.generation
    return ObjectInfo(
        key=key,
        size=int(blob.size or 0),
        md5=blob.md5_hash or None,
        crc32c=blob.crc32c or None,
        version=str(generation) if generation is not None else None,
    )
