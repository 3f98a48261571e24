"""manifest.json and _SUCCESS: one builder, one parser, one self-consistency check (contract 2-4)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rivet.contract import values
from rivet.contract.fingerprint import fingerprint_bytes, is_fingerprint

MANIFEST_KEY = "manifest.json"
SUCCESS_KEY = "_SUCCESS"
QUARANTINE_DIR = "_quarantine"
MANIFEST_VERSION = 1


def part_key(chunk_index: int, fmt: str) -> str:
    """Deterministic per chunk, so resume and quarantine are defined per key."""
    return f"part-{chunk_index:06d}.{fmt}"


def quarantine_key(run_id: str, key: str) -> str:
    return f"{QUARANTINE_DIR}/{run_id}/{key}"


@dataclass(frozen=True)
class CommitRecord:
    """What a chunk reports once its part is stored in full (or that it was empty: key None)."""

    chunk: int
    key: str | None
    rows: int
    size_bytes: int
    content_fingerprint: str
    content_md5: str
    schema_fingerprint: str
    key_range: list[Any] | None = None  # planned [lo, hi], inclusive (ISO days for date/timestamp keys)
    max_cursor: Any = None  # incremental mode: the cursor's high-water mark in this part (typed)
    # base64 of the big-endian CRC32C of the part's bytes ("" if unknown, e.g. records of older runs): the
    # full-object checksum stores report where their ETag is no MD5 (S3 multipart or SSE-KMS), so
    # `verify: content` can be met for those parts too.
    content_crc32c: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {
            "chunk": self.chunk,
            "key": self.key,
            "rows": self.rows,
            "size_bytes": self.size_bytes,
            "content_fingerprint": self.content_fingerprint,
            "content_md5": self.content_md5,
            "schema_fingerprint": self.schema_fingerprint,
            "key_range": self.key_range,
        }
        if self.max_cursor is not None:
            d["max_cursor"] = values.encode(self.max_cursor)
        if self.content_crc32c:
            d["content_crc32c"] = self.content_crc32c
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CommitRecord:
        return cls(
            chunk=int(d["chunk"]),
            key=d.get("key"),
            rows=int(d["rows"]),
            size_bytes=int(d.get("size_bytes", 0)),
            content_fingerprint=str(d.get("content_fingerprint", "")),
            content_md5=str(d.get("content_md5", "")),
            schema_fingerprint=str(d.get("schema_fingerprint", "")),
            key_range=d.get("key_range"),
            max_cursor=values.decode(d.get("max_cursor")),
            content_crc32c=str(d.get("content_crc32c") or ""),
        )


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    export_name: str
    started_at: str
    finished_at: str
    status: str
    engine: str
    schema: str | None
    table: str | None
    destination_kind: str
    destination_uri: str
    format: str
    compression: str
    producer: str
    extra: dict[str, Any] = field(default_factory=dict)


def build_manifest(info: RunInfo, records: list[CommitRecord], schema_fp: str) -> bytes:
    """The exact manifest bytes (2-space indent, contract field order). Empty chunks are not parts."""
    parts = []
    for rec in sorted(records, key=lambda r: r.chunk):
        if rec.key is None or rec.rows == 0:
            continue
        part: dict[str, Any] = {
            "part_id": rec.chunk,
            "path": rec.key,
            "rows": rec.rows,
            "size_bytes": rec.size_bytes,
            "content_fingerprint": rec.content_fingerprint,
            "content_md5": rec.content_md5,
        }
        if rec.content_crc32c:
            part["content_crc32c"] = rec.content_crc32c
        part |= {"status": "committed", "chunk_index": rec.chunk}
        if rec.key_range is not None:
            part["key_range"] = rec.key_range
        parts.append(part)
    doc: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "run_id": info.run_id,
        "export_name": info.export_name,
        "started_at": info.started_at,
        "finished_at": info.finished_at,
        "status": info.status,
        "source": {"engine": info.engine, "schema": info.schema, "table": info.table},
        "destination": {"kind": info.destination_kind, "uri": info.destination_uri},
        "format": info.format,
        "compression": info.compression,
        "schema_fingerprint": schema_fp,
        "row_count": sum(p["rows"] for p in parts),
        "part_count": len(parts),
        "parts": parts,
        "producer": info.producer,
    }
    doc.update(info.extra)
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def success_body(manifest_bytes: bytes) -> bytes:
    return (fingerprint_bytes(manifest_bytes) + "\n").encode("ascii")


def parse_success(body: bytes) -> str | None:
    """The fingerprint in a well-formed `_SUCCESS`, else None (malformed)."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not text.endswith("\n") or text.count("\n") != 1:
        return None
    value = text[:-1]
    return value if is_fingerprint(value) else None


def self_inconsistencies(doc: dict[str, Any]) -> list[str]:
    """What makes a manifest contradict itself (counts, duplicate ids/paths, malformed fields)."""
    problems: list[str] = []
    parts = doc.get("parts")
    if not isinstance(parts, list):
        return ["parts is not a list"]
    committed = [p for p in parts if isinstance(p, dict) and p.get("status") == "committed"]
    if doc.get("part_count") != len(committed):
        problems.append(f"part_count {doc.get('part_count')} but {len(committed)} committed parts listed")
    try:
        rows = sum(int(p.get("rows", 0)) for p in committed)
    except (TypeError, ValueError):
        rows = -1
    if doc.get("row_count") != rows:
        problems.append(f"row_count {doc.get('row_count')} but committed parts sum to {rows}")
    ids = [p.get("part_id") for p in parts if isinstance(p, dict)]
    if len(ids) != len(set(map(str, ids))):
        problems.append("duplicate part_id")
    paths = [p.get("path") for p in parts if isinstance(p, dict)]
    if len(paths) != len(set(map(str, paths))):
        problems.append("duplicate path")
    for p in parts:
        if not isinstance(p, dict):
            problems.append("a part is not an object")
            continue
        if not isinstance(p.get("size_bytes"), int) or p["size_bytes"] < 0:
            problems.append(f"part {p.get('path')}: bad size_bytes")
        if not is_fingerprint(p.get("content_fingerprint")):
            problems.append(f"part {p.get('path')}: bad content_fingerprint")
    return problems
