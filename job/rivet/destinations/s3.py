"""S3 (and S3-compatible) destination: multipart streaming with bounded memory, single PUT when small."""

from __future__ import annotations

import contextlib
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rivet.contract.objects import ObjectInfo
from rivet.destinations._common import Md5Tracker, b64, check_key, md5_from_etag
from rivet.destinations.s3_errors import S3Errors
from rivet.errors import DestinationError

PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000
MAX_COPY_OBJECT = 5 * 1024**3  # CopyObject's limit; larger objects copy part by part
COPY_PART = 512 * 1024 * 1024
_ERRORS = (ClientError, BotoCoreError)


def part_size_for(part_number: int) -> int:
    """8 MiB, growing by 8 MiB every 1000 parts: 10,000 parts then reach ~440 GiB with small early buffers."""
    return PART_SIZE * (1 + (part_number - 1) // 1000)


class S3PartUpload:
    """Buffers one part at a time; the multipart upload starts only once a full part is buffered."""

    def __init__(self, dest: S3Destination, key: str) -> None:
        self._dest = dest
        self._key = key
        self._full = dest.full_key(key)
        self._buf = bytearray()
        self._md5 = Md5Tracker()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._done = False

    def write(self, data: bytes) -> int:
        if self._done:
            raise DestinationError(f"s3 write s3://{self._dest.bucket}/{self._full}: upload already finished")
        self._buf += data
        self._md5.update(data)
        while len(self._buf) >= part_size_for(len(self._parts) + 1):
            size = part_size_for(len(self._parts) + 1)
            chunk = bytes(self._buf[:size])
            del self._buf[:size]
            self._send_part(chunk)
        return len(data)

    def _send_part(self, chunk: bytes) -> None:
        client, bucket = self._dest.client, self._dest.bucket
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            self.abort()
            raise DestinationError(f"s3 upload s3://{bucket}/{self._full}: more than {MAX_PARTS} parts")
        try:
            if self._upload_id is None:
                resp = client.create_multipart_upload(Bucket=bucket, Key=self._full)
                self._upload_id = str(resp["UploadId"])
            md5 = Md5Tracker()
            md5.update(chunk)
            resp = client.upload_part(
                Bucket=bucket,
                Key=self._full,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=chunk,
                ContentMD5=b64(md5.digest()),
            )
        except _ERRORS as exc:
            self._abort_quietly()
            raise self._dest.errors.wrap("upload part of", self._full, exc) from exc
        self._parts.append({"PartNumber": number, "ETag": resp["ETag"]})

    def commit(self, content_md5: bytes | None = None) -> None:
        if self._done:
            raise DestinationError(f"s3 commit s3://{self._dest.bucket}/{self._full}: upload already finished")
        client, bucket = self._dest.client, self._dest.bucket
        try:
            digest = self._md5.verify(content_md5, f"s3 commit s3://{bucket}/{self._full}")
        except DestinationError:
            self._abort_quietly()
            raise
        if self._upload_id is None:
            self._done = True
            try:
                client.put_object(Bucket=bucket, Key=self._full, Body=bytes(self._buf), ContentMD5=b64(digest))
            except _ERRORS as exc:
                raise self._dest.errors.wrap("put", self._full, exc) from exc
            finally:
                self._buf = bytearray()
            return
        if self._buf:
            self._send_part(bytes(self._buf))
            self._buf = bytearray()
        try:
            client.complete_multipart_upload(
                Bucket=bucket,
                Key=self._full,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        except _ERRORS as exc:
            self._abort_quietly()
            raise self._dest.errors.wrap("complete multipart upload of", self._full, exc) from exc
        self._done = True

    def _abort_quietly(self) -> None:
        """On a failure path the original error matters more than a failed cleanup."""
        with contextlib.suppress(DestinationError):
            self.abort()

    def abort(self) -> None:
        """Idempotent; a failed AbortMultipartUpload is reported, since it leaves a billed stray upload."""
        self._done = True
        self._buf = bytearray()
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

    def __init__(self, client: Any, bucket: str, prefix: str, errors: S3Errors) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.errors = errors

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

    def open_part(self, key: str) -> S3PartUpload:
        return S3PartUpload(self, key)

    def put_bytes(self, key: str, data: bytes) -> None:
        md5 = Md5Tracker()
        md5.update(data)
        full = self.full_key(key)
        try:
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data, ContentMD5=b64(md5.digest()))
        except _ERRORS as exc:
            raise self.errors.wrap("put", full, exc) from exc

    def get_bytes(self, key: str) -> bytes | None:
        full = self.full_key(key)
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=full)
            return bytes(resp["Body"].read())
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) == "NoSuchKey":
                return None
            raise self.errors.wrap("get", full, exc) from exc
        except BotoCoreError as exc:
            raise self.errors.wrap("get", full, exc) from exc

    def head(self, key: str) -> ObjectInfo | None:
        full = self.full_key(key)
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if S3Errors.is_missing(exc):
                return None
            raise self.errors.wrap("head", full, exc) from exc
        except BotoCoreError as exc:
            raise self.errors.wrap("head", full, exc) from exc
        # With SSE-KMS or SSE-C the ETag is not the MD5 of the bytes, whatever it looks like.
        encrypted = str(resp.get("ServerSideEncryption", "")).startswith("aws:kms") or resp.get("SSECustomerAlgorithm")
        md5 = None if encrypted else md5_from_etag(resp.get("ETag"))
        return ObjectInfo(key=key, size=int(resp["ContentLength"]), md5=md5)

    def list(self) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    rel = str(obj["Key"])[len(self.prefix) :]
                    if rel and not rel.endswith("/"):
                        out.append(ObjectInfo(key=rel, size=int(obj["Size"]), md5=md5_from_etag(obj.get("ETag"))))
        except _ERRORS as exc:
            raise self.errors.wrap("list", self.prefix, exc) from exc
        return out

    def copy(self, src_key: str, dst_key: str) -> None:
        src, dst = self.full_key(src_key), self.full_key(dst_key)
        source = {"Bucket": self.bucket, "Key": src}
        try:
            size = int(self.client.head_object(Bucket=self.bucket, Key=src)["ContentLength"])
            if size <= MAX_COPY_OBJECT:
                self.client.copy_object(Bucket=self.bucket, Key=dst, CopySource=source)
            else:
                self._copy_multipart(source, dst, size)
        except _ERRORS as exc:
            raise self.errors.wrap("copy", f"{src} -> {dst}", exc) from exc

    def _copy_multipart(self, source: dict[str, str], dst: str, size: int) -> None:
        upload_id = str(self.client.create_multipart_upload(Bucket=self.bucket, Key=dst)["UploadId"])
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
