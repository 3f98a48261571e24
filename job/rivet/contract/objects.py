"""What the contract needs to know about a stored object (listings, HEAD): plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or HEAD says about one stored object."""

    key: str
    size: int
    # base64 of the raw MD5 of the object's bytes, only when the store gives a true one (S3 ETag of a
    # single-part object that is not SSE-KMS/SSE-C encrypted, GCS md5Hash, Azure Content-MD5, local: None).
    md5: str | None = None
    # base64 of the big-endian CRC32C of the whole object when the store verified and reports it (an S3
    # full-object checksum, GCS crc32c); comparable with a commit record's content_crc32c.
    crc32c: str | None = None
    # the store's version token for conditional writes (S3/Azure ETag, GCS generation, local inode+mtime):
    # a commit that replaces this object succeeds only if it is still this version (fencing).
    version: str | None = None
