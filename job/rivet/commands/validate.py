"""`rivet validate`: check a prefix against its manifest and `_SUCCESS`, reading only the destination.

One listing of the prefix gives sizes (and MD5s where the store has comparable ones); no part is
downloaded and no source connection is ever opened (contract section 6).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rivet.config.model import Verify
from rivet.contract.fingerprint import fingerprint_bytes
from rivet.contract.manifest import MANIFEST_KEY, QUARANTINE_DIR, SUCCESS_KEY, parse_success, self_inconsistencies
from rivet.contract.objects import ObjectInfo
from rivet.destinations.base import Destination
from rivet.errors import RivetError

ADVISORY = {"untracked_object"}


@dataclass
class Verification:
    manifest_found: bool = False
    legacy_run: bool = False
    parts_verified: int = 0
    parts_md5_verified: int = 0
    parts_crc32c_verified: int = 0  # content checked by the store's full-object CRC32C instead of an MD5
    parts_failed: int = 0
    success_marker_consistent: bool = False
    manifest_self_consistent: bool = False
    passed: bool = False
    failures: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, kind: str, **detail: Any) -> None:
        self.failures.append({"kind": kind, **detail})

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class NothingToValidate(RivetError):
    """The prefix holds no objects at all: almost always a wrong date, run id or prefix."""


def verify_prefix(dest: Destination, verify: Verify = Verify.SIZE) -> Verification:
    v = Verification()
    try:
        listing = {o.key: o for o in dest.list()}
    except RivetError as exc:
        v.fail("list_prefix_error", message=exc.message)
        return v
    try:
        raw = dest.get_bytes(MANIFEST_KEY)
    except RivetError as exc:
        v.fail("manifest_read_error", message=exc.message)
        return v
    if raw is None:
        if not listing:
            raise NothingToValidate(
                f"nothing at {dest.uri()}: no manifest and no objects (check --date, --run-id or --prefix)"
            )
        v.legacy_run = True  # M6: reported, passes, but is not certified
        v.passed = True
        return v
    v.manifest_found = True
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        v.fail("manifest_read_error", message=f"manifest.json is not valid JSON: {exc}")
        return v
    problems = self_inconsistencies(doc)
    v.manifest_self_consistent = not problems
    for problem in problems:
        v.fail("manifest_self_inconsistent", message=problem)
    _check_success(dest, raw, v)
    _check_parts(doc, listing, verify, v)
    v.passed = not [f for f in v.failures if f["kind"] not in ADVISORY]
    return v


def _check_success(dest: Destination, manifest_raw: bytes, v: Verification) -> None:
    try:
        body = dest.get_bytes(SUCCESS_KEY)
    except RivetError as exc:
        v.fail("success_marker_read_error", message=exc.message)
        return
    if body is None:
        v.fail("success_marker_missing", message="_SUCCESS is absent: the run is not certified (resume or re-run it)")
        return
    recorded = parse_success(body)
    if recorded is None:
        v.fail("success_marker_malformed", message="_SUCCESS must be exactly `xxh3:<16 hex>` and a newline")
        return
    actual = fingerprint_bytes(manifest_raw)
    if recorded != actual:
        v.fail("success_marker_stale", expected=recorded, actual=actual)
        return
    v.success_marker_consistent = True


def _check_parts(doc: dict[str, Any], listing: dict[str, ObjectInfo], verify: Verify, v: Verification) -> None:
    parts = [p for p in doc.get("parts", []) if isinstance(p, dict)]
    listed = {str(p.get("path")) for p in parts}
    for part in parts:
        if part.get("status") != "committed":
            continue
        path = str(part.get("path"))
        obj = listing.get(path)
        before = len(v.failures)
        if obj is None:
            v.fail("part_missing", path=path)
        elif obj.size != part.get("size_bytes"):
            v.fail("part_size_mismatch", path=path, expected=part.get("size_bytes"), actual=obj.size)
        elif obj.md5 and part.get("content_md5"):
            if obj.md5 != part["content_md5"]:
                v.fail("part_checksum_mismatch", path=path, expected=part["content_md5"], actual=obj.md5)
            else:
                v.parts_md5_verified += 1
        elif obj.crc32c and part.get("content_crc32c"):
            # The store's full-object CRC32C (S3 multipart or SSE-KMS parts, whose ETag is no MD5).
            if obj.crc32c != part["content_crc32c"]:
                v.fail(
                    "part_checksum_mismatch",
                    path=path,
                    checksum="crc32c",
                    expected=part["content_crc32c"],
                    actual=obj.crc32c,
                )
            else:
                v.parts_crc32c_verified += 1
        elif verify is Verify.CONTENT:
            v.fail("content_verification_unmet", path=path, message="the store gave no comparable checksum")
        if len(v.failures) == before:
            v.parts_verified += 1
        else:
            v.parts_failed += 1
    for key in sorted(listing):
        if key in listed or key in (MANIFEST_KEY, SUCCESS_KEY) or key.startswith(QUARANTINE_DIR + "/"):
            continue
        v.fail("untracked_object", path=key)
