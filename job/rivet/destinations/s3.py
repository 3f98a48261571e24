"""S3 (and S3-compatible) destination: multipart streaming with bounded memory, single PUT when small.

Every request that carries bytes carries a checksum of them that the store verifies (BadDigest otherwise):
a PutObject its Content-MD5 and CRC32C, an UploadPart the part's CRC32C (x-amz-checksum-crc32c), and the
completion the full-object CRC32C (ChecksumType FULL_OBJECT), which HeadObject reports back. botocore adds
no checksum of its own (`s3_auth.CLIENT_CONFIG`), and hashes the payload for SigV4 only over plain http.
An ETag is taken as the object's MD5 only for a single-part upload that is not SSE-KMS encrypted;
multipart and SSE-KMS objects are compared by that CRC32C instead (read by one HEAD each), or by size alone.

Part commits are conditional (If-None-Match: * to create, If-Match: <etag> to replace), so a stale
writer never overwrites what another writer committed (contract: fencing).
"""

from __future__ import annotations

import contextlib
import dataclasses
import mmap
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rivet.contract.manifest import QUARANTINE_DIR
from rivet.contract.objects import ObjectInfo
from rivet.destinations._common import (
    Crc32cTracker,
    Md5Tracker,
    b64,
    check_key,
    crc32c_b64,
    is_own_commit,
    md5_from_etag,
    part_conflict,
)
from rivet.destinations.base import WriterDigests
from rivet.destinations.s3_errors import S3Errors
from rivet.errors import DestinationError

PART_SIZE = 8 * 1024 * 1024
UPLOAD_CONCURRENCY = 2  # parts of one object uploading at once; also the bound on parts held in memory
MAX_PARTS = 10_000
MAX_COPY_OBJECT = 5 * 1024**3  # CopyObject's limit; larger objects copy part by part
COPY_PART = 512 * 1024 * 1024
HEAD_WORKERS = 8  # listing: parallel HEADs for the objects whose ETag is no MD5
_ERRORS = (ClientError, BotoCoreError)
_LOST_CONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _lost_condition(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return _code(exc) in _LOST_CONDITION or status in (409, 412)


def _kms_or_customer_key(resp: dict[str, Any]) -> bool:
    """SSE-KMS (incl. DSSE) or SSE-C: the ETag is then not the MD5 of the bytes, whatever it looks like."""
    return str(resp.get("ServerSideEncryption") or "").startswith("aws:kms") or bool(resp.get("SSECustomerAlgorithm"))


def _full_crc32c(resp: dict[str, Any]) -> str | None:
    """The object's full-object CRC32C from a HEAD with ChecksumMode=ENABLED (never a composite one)."""
    value = resp.get("ChecksumCRC32C")
    if not value or "-" in str(value) or str(resp.get("ChecksumType") or "FULL_OBJECT") != "FULL_OBJECT":
        return None
    return str(value)


def part_size_for(part_number: int) -> int:
    """8 MiB, growing by 8 MiB every 1000 parts: 10,000 parts then reach ~440 GiB with small early buffers."""
    return PART_SIZE * (1 + (part_number - 1) // 1000)


class PartBuffer:
    """One part's bytes in an anonymous mapping of its own, outside the malloc heap: 8 MiB parts then neither
    churn the allocator nor raise glibc's mmap threshold (which leaves the heap holding freed memory).
    Reused through a small pool. To botocore it is a file of its first `used` bytes (it seeks back to sign
    the payload over plain http, and to retry)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self.crc = Crc32cTracker()
        self._pos = 0
        self._map = mmap.mmap(-1, size)

    def fill(self, data: bytes, start: int) -> int:
        """Copy as much of `data[start:]` as fits; the part's CRC32C follows what is copied."""
        n = min(len(data) - start, self.size - self.used)
        piece = data if start == 0 and n == len(data) else data[start : start + n]
        self._map[self.used : self.used + n] = piece
        self.crc.update(piece)
        self.used += n
        return n

    def full(self) -> bool:
        return self.used == self.size

    def __len__(self) -> int:
        return self.used

    def read(self, n: int = -1) -> bytes:
        end = self.used if n is None or n < 0 else min(self.used, self._pos + n)
        data = self._map[self._pos : end] if end > self._pos else b""
        self._pos = max(self._pos, end)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self.used}[whence]
        self._pos = min(max(0, base + offset), self.used)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def reset(self) -> None:
        self.used = self._pos = 0
        self.crc = Crc32cTracker()

    def close(self) -> None:
        self._map.close()


_POOL_LOCK = threading.Lock()
_POOL: dict[int, list[PartBuffer]] = {}
POOL_KEEP = 2 * (UPLOAD_CONCURRENCY + 1)  # free part buffers kept per size (two uploads' worth)


def _take_buffer(size: int) -> PartBuffer:
    with _POOL_LOCK:
        free = _POOL.get(size)
        buf = free.pop() if free else None
    return buf if buf is not None else PartBuffer(size)


def _give_back(buf: PartBuffer) -> None:
    buf.reset()
    with _POOL_LOCK:
        free = _POOL.setdefault(buf.size, [])
        if len(free) < POOL_KEEP:
            free.append(buf)
            return
    buf.close()


class S3PartUpload:
    """A streaming multipart upload: parts go up on threads of their own while the writer goes on, at most
    UPLOAD_CONCURRENCY at once; `write` blocks while that many are on their way, so the upload holds at most
    the part being filled plus UPLOAD_CONCURRENCY parts ((1 + UPLOAD_CONCURRENCY) x 8 MiB). The multipart
    upload starts only once a full part is buffered; anything smaller is one PutObject at commit.

    `write` hashes every byte with CRC32C twice (the object's, and its part's as the byte is copied into the
    part buffer). The whole-object MD5 is kept here too unless the writer keeps it (`hashed_by`, the
    DigestSink): commit then checks the writer's CRC32C against this one instead of hashing with MD5 again."""

    def __init__(self, dest: S3Destination, key: str, replace: ObjectInfo | None = None) -> None:
        self._dest = dest
        self._key = key
        self._full = dest.full_key(key)
        self._part: PartBuffer | None = None  # the part being filled
        self._md5 = Md5Tracker(crc32c=True)  # also counts the bytes written (`size`)
        self._upload_id: str | None = None
        self._next = 1
        self._slots = threading.BoundedSemaphore(UPLOAD_CONCURRENCY)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._senders: list[threading.Thread] = []
        self._sent: dict[int, dict[str, Any]] = {}
        self._error: BaseException | None = None
        self._done = False
        self._replace = replace

    @property
    def buffered_bytes(self) -> int:
        """Bytes written and not yet acknowledged by the store (the buffer plus the parts on their way)."""
        with self._lock:
            return (self._part.used if self._part is not None else 0) + self._in_flight

    def hashed_by(self, digests: WriterDigests) -> None:
        """The writer hashes every byte it writes (MD5 and CRC32C): no second MD5 pass here. Before the first write."""
        self._md5.hashed_by(digests, f"s3 upload s3://{self._dest.bucket}/{self._full}")

    def _condition(self) -> dict[str, str]:
        """Create-only unless replacing a known version; a replace without an ETag is unconditional."""
        if self._replace is None:
            return {"IfNoneMatch": "*"}
        return {"IfMatch": self._replace.version} if self._replace.version else {}

    def write(self, data: bytes) -> int:
        if self._done:
            raise DestinationError(f"s3 write s3://{self._dest.bucket}/{self._full}: upload already finished")
        self._raise_failed_part()
        if not isinstance(data, bytes):
            data = bytes(data)
        if not data:
            return 0
        self._md5.update(data)
        start = 0
        while start < len(data):
            if self._part is None:
                self._part = _take_buffer(part_size_for(self._next))
            start += self._part.fill(data, start)
            if self._part.full():
                part, self._part = self._part, None
                self._hand_off(part)
        return len(data)

    def _hand_off(self, part: PartBuffer) -> None:
        """Start uploading the next part on a thread of its own, once fewer than UPLOAD_CONCURRENCY are."""
        client, bucket = self._dest.client, self._dest.bucket
        number = self._next
        if number > MAX_PARTS:
            _give_back(part)
            self.abort()
            raise DestinationError(f"s3 upload s3://{bucket}/{self._full}: more than {MAX_PARTS} parts")
        if self._upload_id is None:
            try:
                resp = client.create_multipart_upload(
                    Bucket=bucket,
                    Key=self._full,
                    ChecksumAlgorithm="CRC32C",
                    ChecksumType="FULL_OBJECT",
                    **self._dest.sse_args(),
                )
            except _ERRORS as exc:
                _give_back(part)
                self._abort_quietly()
                raise self._dest.errors.wrap("upload part of", self._full, exc) from exc
            self._upload_id = str(resp["UploadId"])
        self._slots.acquire()  # the bound on buffered bytes: wait while UPLOAD_CONCURRENCY parts are on their way
        try:
            self._raise_failed_part()
        except BaseException:
            self._slots.release()
            _give_back(part)
            raise
        self._next += 1
        with self._lock:
            self._in_flight += part.used
        sender = threading.Thread(
            target=self._send_part, args=(number, part), name=f"rivet-s3-part-{number}", daemon=True
        )
        self._senders.append(sender)
        sender.start()

    def _send_part(self, number: int, part: PartBuffer) -> None:
        """One UploadPart, checked by the store against the part's CRC32C (BadDigest otherwise)."""
        size = part.used
        try:
            crc = part.crc.b64()
            resp = self._dest.client.upload_part(
                Bucket=self._dest.bucket,
                Key=self._full,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=part,
                ChecksumCRC32C=crc,
            )
            self._sent[number] = {"PartNumber": number, "ETag": resp["ETag"], "ChecksumCRC32C": crc}
        except BaseException as exc:  # handed to the writer's next write or commit
            error: BaseException = exc
            if isinstance(exc, _ERRORS):
                error = self._dest.errors.wrap("upload part of", self._full, exc)
                error.__cause__ = exc
            with self._lock:
                if self._error is None:
                    self._error = error
        finally:
            _give_back(part)
            with self._lock:
                self._in_flight -= size
            self._slots.release()

    def _raise_failed_part(self) -> None:
        if self._error is not None:
            error = self._error
            self._abort_quietly()
            raise error

    def _wait_for_parts(self) -> None:
        senders, self._senders = self._senders, []
        for sender in senders:
            sender.join()

    def commit(self, content_md5: bytes | None = None) -> None:
        if self._done:
            raise DestinationError(f"s3 commit s3://{self._dest.bucket}/{self._full}: upload already finished")
        client, bucket = self._dest.client, self._dest.bucket
        try:
            digest = self._md5.verify(content_md5, f"s3 commit s3://{bucket}/{self._full}")
        except DestinationError:
            self._abort_quietly()
            raise
        crc = self._md5.crc32c()
        if self._upload_id is None:
            self._done = True
            body, self._part = self._part, None
            try:
                resp = client.put_object(
                    Bucket=bucket,
                    Key=self._full,
                    Body=body if body is not None else b"",
                    ContentMD5=b64(digest),
                    ChecksumCRC32C=crc,
                    **self._condition(),
                    **self._dest.sse_args(),
                )
            except _ERRORS as exc:
                self._lost_or_raise("put", exc, digest, crc)
                return
            finally:
                if body is not None:
                    _give_back(body)
            self._dest.saw_write(resp)
            return
        if self._part is not None:
            part, self._part = self._part, None
            self._hand_off(part)
        self._wait_for_parts()
        self._raise_failed_part()
        parts = [self._sent[n] for n in sorted(self._sent)]
        try:
            resp = client.complete_multipart_upload(
                Bucket=bucket,
                Key=self._full,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
                ChecksumCRC32C=crc,
                ChecksumType="FULL_OBJECT",
                **self._condition(),
            )
        except _ERRORS as exc:
            self._abort_quietly()  # a refused completion leaves the upload open (and billed) otherwise
            self._lost_or_raise("complete multipart upload of", exc, digest, crc)
            return
        finally:
            self._done = True
        self._dest.saw_write(resp)

    def _lost_or_raise(self, action: str, exc: ClientError | BotoCoreError, digest: bytes, crc: str) -> None:
        """A lost condition is a PartConflict, unless the object there is exactly ours (a retried request
        whose first attempt committed). Any other failure is the store's error."""
        if not _lost_condition(exc):
            raise self._dest.errors.wrap(action, self._full, exc) from exc
        try:
            found = self._dest.head(self._key)
        except DestinationError:
            found = None
        if is_own_commit(found, self._md5.size, digest, crc):
            return
        raise part_conflict(f"s3 {action} s3://{self._dest.bucket}/{self._full}", self._replace) from exc

    def _abort_quietly(self) -> None:
        """On a failure path the original error matters more than a failed cleanup."""
        with contextlib.suppress(DestinationError):
            self.abort()

    def abort(self) -> None:
        """Idempotent; waits for the parts on their way (so none lands after the abort). A failed
        AbortMultipartUpload is reported, since it leaves a billed stray upload."""
        self._done = True
        part, self._part = self._part, None
        if part is not None:
            _give_back(part)
        self._wait_for_parts()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            self._dest.client.abort_multipart_upload(Bucket=self._dest.bucket, Key=self._full, UploadId=upload_id)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) == "NoSuchUpload":
                return
            raise self._dest.errors.wrap("abort multipart upload of", self._full, exc) from exc
        except BotoCoreError as exc:
            raise self._dest.errors.wrap("abort multipart upload of", self._full, exc) from exc


class S3Destination:
    kind = "s3"

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str,
        errors: S3Errors,
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.errors = errors
        self.sse = sse
        self.sse_kms_key_id = sse_kms_key_id
        # Whether a single-part ETag here is the object's MD5: False under SSE-KMS (configured, or seen on
        # a write or HEAD: a bucket's default encryption), None until a write or HEAD has told us.
        self.etag_is_md5: bool | None = False if sse == "aws:kms" else None

    def sse_args(self) -> dict[str, str]:
        """Server-side encryption headers for every write (PutObject, CreateMultipartUpload, CopyObject)."""
        args: dict[str, str] = {}
        if self.sse:
            args["ServerSideEncryption"] = self.sse
        if self.sse_kms_key_id:
            args["SSEKMSKeyId"] = self.sse_kms_key_id
        return args

    def saw_write(self, resp: dict[str, Any]) -> None:
        """A write's response says how the bucket encrypts: SSE-KMS makes ETags useless as MD5s."""
        if _kms_or_customer_key(resp):
            self.etag_is_md5 = False
        elif self.etag_is_md5 is None and resp.get("ETag") and "-" not in str(resp.get("ETag")):
            self.etag_is_md5 = True

    def full_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def check(self) -> None:
        """One ListObjectsV2: proves the bucket exists and the credentials may list, which resume needs."""
        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        except _ERRORS as exc:
            raise self.errors.wrap("list", self.prefix, exc) from exc

    def open_part(self, key: str, replace: ObjectInfo | None = None) -> S3PartUpload:
        return S3PartUpload(self, key, replace)

    def put_bytes(self, key: str, data: bytes) -> None:
        md5 = Md5Tracker()
        md5.update(data)
        full = self.full_key(key)
        try:
            resp = self.client.put_object(
                Bucket=self.bucket,
                Key=full,
                Body=data,
                ContentMD5=b64(md5.digest()),
                ChecksumCRC32C=crc32c_b64(data),
                **self.sse_args(),
            )
        except _ERRORS as exc:
            raise self.errors.wrap("put", full, exc) from exc
        self.saw_write(resp)

    def get_bytes(self, key: str, limit: int | None = None) -> bytes | None:
        full = self.full_key(key)
        extra = {"Range": f"bytes=0-{limit - 1}"} if limit is not None and limit > 0 else {}
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=full, **extra)
            return bytes(resp["Body"].read())
        except ClientError as exc:
            if _code(exc) == "NoSuchKey":
                return None
            if _code(exc) == "InvalidRange":  # a range of an empty object
                return b""
            raise self.errors.wrap("get", full, exc) from exc
        except BotoCoreError as exc:
            raise self.errors.wrap("get", full, exc) from exc

    def _head_raw(self, full: str) -> dict[str, Any] | None:
        try:
            resp: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
        except ClientError as exc:
            if S3Errors.is_missing(exc):
                return None
            raise self.errors.wrap("head", full, exc) from exc
        except BotoCoreError as exc:
            raise self.errors.wrap("head", full, exc) from exc
        return resp

    def _info(self, key: str, resp: dict[str, Any]) -> ObjectInfo:
        """One HEAD's view: the ETag is an MD5 only for a single-part object without SSE-KMS/SSE-C."""
        if _kms_or_customer_key(resp):
            self.etag_is_md5 = False
            md5 = None
        else:
            md5 = md5_from_etag(resp.get("ETag"))
        etag = resp.get("ETag")
        return ObjectInfo(
            key=key,
            size=int(resp["ContentLength"]),
            md5=md5,
            crc32c=_full_crc32c(resp),
            version=str(etag) if etag else None,
        )

    def head(self, key: str) -> ObjectInfo | None:
        resp = self._head_raw(self.full_key(key))
        return None if resp is None else self._info(key, resp)

    def list(self) -> list[ObjectInfo]:
        """One listing; then one HEAD for each object whose ETag cannot be its MD5 (multipart, SSE-KMS), to
        read its full-object CRC32C. Objects under `_quarantine/` are never compared, so never HEADed."""
        out: list[ObjectInfo] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    rel = str(obj["Key"])[len(self.prefix) :]
                    if rel and not rel.endswith("/"):
                        etag = obj.get("ETag")
                        version = str(etag) if etag else None
                        out.append(ObjectInfo(key=rel, size=int(obj["Size"]), md5=None, version=version))
        except _ERRORS as exc:
            raise self.errors.wrap("list", self.prefix, exc) from exc
        compared = [o for o in out if not o.key.startswith(QUARANTINE_DIR + "/")]
        single = [o for o in compared if md5_from_etag(o.version) is not None]
        if single and self.etag_is_md5 is None:
            self.head(single[0].key)  # learns whether this bucket encrypts with SSE-KMS by default
            if self.etag_is_md5 is None:
                self.etag_is_md5 = True
        need_head = {o.key for o in compared if self.etag_is_md5 is False or md5_from_etag(o.version) is None}
        headed: dict[str, ObjectInfo | None] = {}
        if need_head:
            with ThreadPoolExecutor(max_workers=min(HEAD_WORKERS, len(need_head))) as pool:
                headed = dict(zip(need_head, pool.map(self.head, need_head), strict=True))
        result = []
        for o in out:
            info = headed.get(o.key)
            if info is not None and info.version == o.version:
                result.append(info)  # (gone or replaced since the listing: keep the listing's view instead)
            else:
                md5 = md5_from_etag(o.version) if self.etag_is_md5 and o.key not in headed else None
                result.append(dataclasses.replace(o, md5=md5))
        return result

    def copy(self, src_key: str, dst_key: str) -> None:
        src, dst = self.full_key(src_key), self.full_key(dst_key)
        source = {"Bucket": self.bucket, "Key": src}
        try:
            size = int(self.client.head_object(Bucket=self.bucket, Key=src)["ContentLength"])
            if size <= MAX_COPY_OBJECT:
                self.client.copy_object(Bucket=self.bucket, Key=dst, CopySource=source, **self.sse_args())
            else:
                self._copy_multipart(source, dst, size)
        except _ERRORS as exc:
            raise self.errors.wrap("copy", f"{src} -> {dst}", exc) from exc

    def _copy_multipart(self, source: dict[str, str], dst: str, size: int) -> None:
        upload_id = str(self.client.create_multipart_upload(Bucket=self.bucket, Key=dst, **self.sse_args())["UploadId"])
        try:
            parts = []
            for number, start in enumerate(range(0, size, COPY_PART), start=1):
                end = min(start + COPY_PART, size) - 1
                resp = self.client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=dst,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]})
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=dst, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except _ERRORS:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=dst, UploadId=upload_id)
            raise

    def delete(self, key: str) -> None:
        full = self.full_key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=full)
        except _ERRORS as exc:
            raise self.errors.wrap("delete", full, exc) from exc
