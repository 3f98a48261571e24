"""Chunk planning: pure arithmetic over inclusive integer key ranges, plus the plan fingerprint.

A plan is fully described by (lo, hi, chunk_size): chunk i (1-based) covers
[lo + (i-1)*size, min(hi, lo + i*size - 1)]. So a 10,000-chunk plan is a few integers, which keeps
`rivet plan` output and the operator's status tiny.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from rivet.contract.fingerprint import fingerprint_bytes

DEFAULT_CHUNK_SIZE = 100_000


@dataclass(frozen=True)
class Chunk:
    index: int  # 1-based; names the part key
    lo: int | None  # inclusive key range; None for single-part modes
    hi: int | None

    @property
    def key_range(self) -> list[int] | None:
        return None if self.lo is None or self.hi is None else [self.lo, self.hi]


@dataclass(frozen=True)
class Plan:
    """What a run exports. Fields other than the bounds come from the export definition."""

    engine: str
    relation: str  # table name or query text: a changed query is a changed plan
    mode: str
    format: str
    compression: str
    chunk_column: str | None = None
    lo: int | None = None
    hi: int | None = None
    chunk_size: int | None = None
    chunk_count_requested: int | None = None

    @property
    def chunk_count(self) -> int:
        if self.mode != "chunked":
            return 1
        if self.lo is None or self.hi is None or self.chunk_size is None:
            return 0  # empty source: nothing to export
        return math.ceil((self.hi - self.lo + 1) / self.chunk_size)

    def chunk(self, index: int) -> Chunk:
        if not 1 <= index <= self.chunk_count:
            raise IndexError(f"chunk {index} is outside 1..{self.chunk_count}")
        if self.mode != "chunked":
            return Chunk(index, None, None)
        assert self.lo is not None and self.hi is not None and self.chunk_size is not None
        lo = self.lo + (index - 1) * self.chunk_size
        return Chunk(index, lo, min(self.hi, lo + self.chunk_size - 1))

    def chunks(self) -> Iterator[Chunk]:
        for i in range(1, self.chunk_count + 1):
            yield self.chunk(i)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return fingerprint_bytes(canonical.encode("utf-8"))

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Plan:
        return cls(**data)  # type: ignore[arg-type]


def chunk_size_for(lo: int | None, hi: int | None, chunk_size: int | None, chunk_count: int | None) -> int:
    """Effective chunk size: given, or derived from a requested count (at least 1)."""
    if chunk_count:
        if lo is None or hi is None:
            return 1
        return max(1, math.ceil((hi - lo + 1) / chunk_count))
    return chunk_size or DEFAULT_CHUNK_SIZE


def plan_changes(old: Plan, new: Plan) -> list[str]:
    """Names of definition fields that differ (bounds excluded: a resume keeps its original bounds)."""
    old_d, new_d = old.to_dict(), new.to_dict()
    return [f"{k}: {old_d[k]!r} -> {new_d[k]!r}" for k in old_d if k not in {"lo", "hi"} and old_d[k] != new_d[k]]


def format_ranges(indexes: list[int]) -> str:
    """[1,2,3,5,7,8] -> "1-3,5,7-8": bounded progress strings for status and logs."""
    out: list[str] = []
    items = sorted(set(indexes))
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return ",".join(out)


def parse_ranges(text: str) -> list[int]:
    """Inverse of format_ranges."""
    result: list[int] = []
    for part in filter(None, text.split(",")):
        if "-" in part:
            a, b = part.split("-", 1)
            result.extend(range(int(a), int(b) + 1))
        else:
            result.append(int(part))
    return result
