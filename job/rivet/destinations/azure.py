"""Azure Blob destination: staged blocks committed in one block list, so the blob appears whole on commit."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

from azure.core import MatchConditions
from azure.storage.blob import BlobBlock, BlobProperties, ContainerClient, ContentSettings

from rivet.contract.objects import ObjectInfo
from rivet.destinations._common import Md5Tracker, b64, check_key, is_own_commit, part_conflict
from rivet.destinations.azure_errors import AZURE_ERRORS, AzureErrors, is_blob_missing, is_condition_lost
from rivet.destinations.base import WriterDigests
from rivet.errors import DestinationError

BLOCK_SIZE = 8 * 1024 * 1024
MAX_BLOCKS = 50_000
COPY_WAIT_S = 600.0


class AzurePartUpload:
    """Stages one block at a time; uncommitted blocks are invisible and Azure drops them after 7 days."""

    def __init__(self, dest: AzureDestination, key: str, replace: ObjectInfo | None = None) -> None:
        self._dest = dest
        self._key = key
        self._replace = replace
        self._full = dest.full_key(key)
        self._blob = dest.container.get_blob_client(self._full)
        self._buf = bytearray()
        self._md5 = Md5Tracker()
        self._blocks: list[BlobBlock] = []
        self._done = False

    def hashed_by(self, digests: WriterDigests) -> None:
        """The writer hashes every byte with MD5 (the DigestSink): no second MD5 pass here. Before the first write."""
        self._md5.hashed_by(digests, f"azure upload az://{self._dest.name}/{self._full}")

    def write(self, data: bytes) -> int:
        if self._done:
            raise DestinationError(f"azure write az://{self._dest.name}/{self._full}: upload already finished")
        self._buf += data
        self._md5.update(data)
        while len(self._buf) >= BLOCK_SIZE:
            chunk = bytes(self._buf[:BLOCK_SIZE])
            del self._buf[:BLOCK_SIZE]
            self._stage(chunk)
        return len(data)

    def _stage(self, chunk: bytes) -> None:
        if len(self._blocks) >= MAX_BLOCKS:
            self.abort()
            raise DestinationError(f"azure upload az://{self._dest.name}/{self._full}: more than {MAX_BLOCKS} blocks")
        # Random ids: a concurrent or earlier writer's uncommitted blocks can never be picked up by mistake.
        block_id = base64.b64encode(uuid.uuid4().bytes).decode("ascii")
        try:
            self._blob.stage_block(block_id, chunk, length=len(chunk), validate_content=True)
        except AZURE_ERRORS as exc:
            self.abort()
            raise self._dest.errors.wrap("stage block of", self._full, exc) from exc
        self._blocks.append(BlobBlock(block_id=block_id))

    def commit(self, content_md5: bytes | None = None) -> None:
        if self._done:
            raise DestinationError(f"azure commit az://{self._dest.name}/{self._full}: upload already finished")
        try:
            digest = self._md5.verify(content_md5, f"azure commit az://{self._dest.name}/{self._full}")
        except DestinationError:
            self.abort()
            raise
        condition = _condition(self._replace)
        if not self._blocks:
            self._done = True
            try:
                self._dest.upload(self._full, bytes(self._buf), digest, **condition)
            except AZURE_ERRORS as exc:
                self._lost_or_raise("put", exc, digest)
            finally:
                self._buf = bytearray()
            return
        if self._buf:
            self._stage(bytes(self._buf))
            self._buf = bytearray()
        self._done = True
        try:
            self._blob.commit_block_list(self._blocks, content_settings=_settings(digest), **condition)
        except AZURE_ERRORS as exc:
            self._lost_or_raise("commit block list of", exc, digest)

    def _lost_or_raise(self, action: str, exc: Exception, digest: bytes) -> None:
        """A lost condition is a PartConflict unless the blob there is exactly ours (a retried request)."""
        if not is_condition_lost(exc):
            raise self._dest.errors.wrap(action, self._full, exc) from exc
        if not is_own_commit(self._dest.head(self._key), self._md5.size, digest):
            raise part_conflict(f"azure {action} az://{self._dest.name}/{self._full}", self._replace) from exc

    def abort(self) -> None:
        """Nothing to call: Azure has no API to drop uncommitted blocks; they never become a blob."""
        self._done = True
        self._buf = bytearray()
        self._blocks = []


class AzureDestination:
    kind = "azure"

    def __init__(self, container: ContainerClient, prefix: str, errors: AzureErrors) -> None:
        self.container = container
        self.name = str(container.container_name)
        self.prefix = prefix
        self.errors = errors

    def full_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def uri(self) -> str:
        return f"az://{self.name}/{self.prefix}"

    def upload(self, full: str, data: bytes, digest: bytes, **condition: Any) -> None:
        """One Put Blob (atomic) that stores the Content-MD5 and has the service check it in transit.

        With a `condition` (a part's fencing) the caller maps a lost condition; otherwise it overwrites."""
        try:
            self.container.upload_blob(
                full, data, overwrite=True, content_settings=_settings(digest), validate_content=True, **condition
            )
        except AZURE_ERRORS as exc:
            if condition and is_condition_lost(exc):
                raise
            raise self.errors.wrap("put", full, exc) from exc

    def check(self) -> None:
        """A one-item listing works for key, container SAS and public-container access alike."""
        try:
            pages = self.container.list_blobs(
                name_starts_with=self.prefix or None, results_per_page=1, retry_total=0
            ).by_page()  # fail fast: the caller decides whether to retry a permanent=False error
            next(iter(pages), None)
        except AZURE_ERRORS as exc:
            raise self.errors.wrap("list", self.prefix, exc) from exc

    def open_part(self, key: str, replace: ObjectInfo | None = None) -> AzurePartUpload:
        return AzurePartUpload(self, key, replace)

    def put_bytes(self, key: str, data: bytes) -> None:
        md5 = Md5Tracker()
        md5.update(data)
        self.upload(self.full_key(key), data, md5.digest())

    def get_bytes(self, key: str, limit: int | None = None) -> bytes | None:
        full = self.full_key(key)
        try:
            if limit is not None:
                size = self.container.get_blob_client(full).get_blob_properties().size
                if not size or limit <= 0:
                    return b""
                return bytes(self.container.download_blob(full, offset=0, length=min(limit, size)).readall())
            return bytes(self.container.download_blob(full).readall())
        except AZURE_ERRORS as exc:
            if is_blob_missing(exc):
                return None
            raise self.errors.wrap("get", full, exc) from exc

    def head(self, key: str) -> ObjectInfo | None:
        full = self.full_key(key)
        try:
            props = self.container.get_blob_client(full).get_blob_properties()
        except AZURE_ERRORS as exc:
            if is_blob_missing(exc):
                return None
            raise self.errors.wrap("head", full, exc) from exc
        return _info(key, props)

    def list(self) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        try:
            for props in self.container.list_blobs(name_starts_with=self.prefix or None):
                rel = str(props.name)[len(self.prefix) :]
                if rel and not rel.endswith("/"):
                    out.append(_info(rel, props))
        except AZURE_ERRORS as exc:
            raise self.errors.wrap("list", self.prefix, exc) from exc
        return out

    def copy(self, src_key: str, dst_key: str) -> None:
        """Same-account server-side copy; the source URL carries the SAS when that is the credential."""
        src, dst = self.full_key(src_key), self.full_key(dst_key)
        try:
            target = self.container.get_blob_client(dst)
            resp = target.start_copy_from_url(self.container.get_blob_client(src).url)
            status = resp.get("copy_status")
            deadline = time.monotonic() + COPY_WAIT_S
            while status == "pending" and time.monotonic() < deadline:
                time.sleep(0.5)
                status = target.get_blob_properties().copy.status
        except AZURE_ERRORS as exc:
            raise self.errors.wrap("copy", f"{src} -> {dst}", exc) from exc
        if status != "success":
            raise DestinationError(
                f"azure copy az://{self.name}/{src} -> {dst} ended with copy status {status!r}; retry",
                permanent=False,
            )

    def delete(self, key: str) -> None:
        full = self.full_key(key)
        try:
            self.container.delete_blob(full)
        except AZURE_ERRORS as exc:
            if is_blob_missing(exc):
                return
            raise self.errors.wrap("delete", full, exc) from exc


def _settings(digest: bytes) -> ContentSettings:
    return ContentSettings(content_type="application/octet-stream", content_md5=bytearray(digest))


def _condition(replace: ObjectInfo | None) -> dict[str, Any]:
    """If-None-Match: * to create a part; If-Match: <etag> to replace the blob the chunk decided to replace."""
    if replace is None:
        return {"match_condition": MatchConditions.IfMissing}
    if replace.version:
        return {"etag": replace.version, "match_condition": MatchConditions.IfNotModified}
    return {}


def _info(key: str, props: BlobProperties) -> ObjectInfo:
    md5 = props.content_settings.content_md5 if props.content_settings else None
    etag = props.etag
    return ObjectInfo(
        key=key,
        size=int(props.size or 0),
        md5=b64(bytes(md5)) if md5 else None,
        version=f'"{str(etag).strip(chr(34))}"' if etag else None,  # listings give it unquoted, HEAD quoted
    )
