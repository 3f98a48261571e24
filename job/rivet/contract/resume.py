"""The per-chunk resume decision table (contract section 5): pure, so every store decides alike."""

from __future__ import annotations

from enum import StrEnum

from rivet.contract.manifest import CommitRecord
from rivet.contract.objects import ObjectInfo


class Decision(StrEnum):
    SKIP = "skip"  # committed and intact: carry the part forward
    EXPORT = "export"  # nothing at the key: (re-)export the range
    QUARANTINE_EXPORT = "quarantine_export"  # stale/untracked bytes at the key: move aside, then export


def matches(record: CommitRecord, obj: ObjectInfo) -> bool:
    """Same size, and the same MD5 and CRC32C wherever the store gives a comparable one (M3)."""
    if obj.size != record.size_bytes:
        return False
    if obj.md5 and record.content_md5 and obj.md5 != record.content_md5:
        return False
    return not (obj.crc32c and record.content_crc32c and obj.crc32c != record.content_crc32c)


def decide(record: CommitRecord | None, obj: ObjectInfo | None) -> Decision:
    if record is not None and record.key is None:
        # committed empty chunk: nothing should be at the key
        return Decision.SKIP if obj is None else Decision.QUARANTINE_EXPORT
    if record is not None:
        if obj is None:
            return Decision.EXPORT
        return Decision.SKIP if matches(record, obj) else Decision.QUARANTINE_EXPORT
    return Decision.EXPORT if obj is None else Decision.QUARANTINE_EXPORT
