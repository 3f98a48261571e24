"""Chunk planning: pure arithmetic over inclusive integer unit ranges, plus the plan fingerprint.

A plan is fully described by (lo, hi, chunk_size) in the key's unit (the integer key, or UTC days for
date and timestamp keys, see `keys`): chunk i (1-based) covers [lo + (i-1)*size, min(hi, lo + i*size - 1)].
The first chunk also holds rows whose key is NULL or below lo, the last one rows above hi, so every row
of the source falls in exactly one chunk whatever happened between planning and reading. A source with
no non-NULL key is one chunk holding everything. A 10,000-chunk plan is still a few integers, which keeps
`rivet plan` output and the operator's status tiny.

A keyset plan (`keyset: true`: uuid, text and binary keys, or any key with `chunk_by_key`) has no unit
arithmetic: the database picked its `boundaries` b_2..b_n (distinct under the column's own collation, in
its own order, as JSON values of `contract.values`), and chunk i holds `b_i <= key < b_(i+1)`, the first
chunk also NULL keys and keys below b_2, the last everything from b_n on. The database compares, never
Python, so every row lands in exactly one chunk. The boundaries travel inside the plan document, which the
operator receives through a 4 KiB termination message: `MAX_BOUNDARY_BYTES` caps them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from rivet.contract import values
from rivet.contract.fingerprint import fingerprint_bytes
from rivet.contract.keys import KeyKind, show

DEFAULT_CHUNK_SIZE = 100_000
MAX_CHUNKS = 100_000  # beyond this a plan is a mistake (sparse or huge keys): refuse, suggest chunk_count
# A keyset plan's boundaries as compact JSON (what `rivet plan` prints) may take at most this many bytes: the
# whole plan document must fit the 4 KiB termination message the operator reads it from (about 65 uuids).
MAX_BOUNDARY_BYTES = 2560
PLAN_DOCUMENT_LIMIT = 4000  # `rivet plan` output, with room to spare under Kubernetes' 4096-byte message


def boundary_bytes(boundaries: tuple[Any, ...] | list[Any]) -> int:
    """The size of encoded boundaries as `rivet plan` prints them (compact JSON, ASCII escapes)."""
    return len(json.dumps(list(boundaries), separators=(",", ":")).encode("utf-8"))


@dataclass(frozen=True)
class Chunk:
    index: int  # 1-based; names the part key
    lo: int | None  # inclusive unit range; None for single-part modes and a plan without bounds
    hi: int | None
    first: bool = True  # also holds NULL keys and keys below lo
    last: bool = True  # also holds keys above hi
    key_kind: KeyKind | None = None
    keyset: bool = False  # keyset chunk: lower <= key < upper, compared by the database
    lower: Any = None  # keyset: inclusive typed lower boundary; None for the first chunk (open, and NULL keys)
    upper: Any = None  # keyset: exclusive typed upper boundary; None for the last chunk (open)

    @property
    def key_range(self) -> list[Any] | None:
        """The planned range as the manifest shows it: inclusive [lo, hi] (ISO days for date/timestamp keys);
        for a keyset chunk the half-open [lower, upper) boundary values, null where the chunk is open."""
        if self.keyset:
            return [values.show(self.lower), values.show(self.upper)]
        if self.lo is None or self.hi is None:
            return None
        return [show(self.key_kind, self.lo), show(self.key_kind, self.hi)]


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
    key_kind: str | None = None  # None: integer keys (or no chunking); "date", "timestamp", "timestamptz"
    keyset: bool = False  # boundaries planned by the database (recorded only when true)
    boundaries: tuple[Any, ...] | None = None  # keyset: b_2..b_n as JSON values (contract.values.encode)

    def __post_init__(self) -> None:
        if self.boundaries is not None and not isinstance(self.boundaries, tuple):
            object.__setattr__(self, "boundaries", tuple(self.boundaries))  # a JSON list from a document

    @property
    def kind(self) -> KeyKind | None:
        if self.mode != "chunked":
            return None
        return KeyKind(self.key_kind) if self.key_kind else KeyKind.INT

    @property
    def chunk_count(self) -> int:
        if self.keyset and self.mode == "chunked":
            return len(self.boundaries or ()) + 1
        if self.mode != "chunked" or self.lo is None or self.hi is None or self.chunk_size is None:
            return 1  # single part, or no non-NULL key: one chunk holds every row
        return math.ceil((self.hi - self.lo + 1) / self.chunk_size)

    def chunk(self, index: int) -> Chunk:
        count = self.chunk_count
        if not 1 <= index <= count:
            raise IndexError(f"chunk {index} is outside 1..{count}")
        if self.keyset and self.mode == "chunked":
            bounds = self.boundaries or ()
            lower = values.decode(bounds[index - 2]) if index > 1 else None
            upper = values.decode(bounds[index - 1]) if index < count else None
            return Chunk(index, None, None, index == 1, index == count, self.kind, True, lower, upper)
        if self.mode != "chunked" or self.lo is None or self.hi is None or self.chunk_size is None:
            return Chunk(index, None, None, key_kind=self.kind)
        lo = self.lo + (index - 1) * self.chunk_size
        return Chunk(index, lo, min(self.hi, lo + self.chunk_size - 1), index == 1, index == count, self.kind)

    def chunks(self) -> Iterator[Chunk]:
        for i in range(1, self.chunk_count + 1):
            yield self.chunk(i)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        if d["key_kind"] is None:
            del d["key_kind"]  # integer plans keep the fingerprints earlier versions recorded
        if not d["keyset"]:
            del d["keyset"], d["boundaries"]  # range plans too
        else:
            d["boundaries"] = list(d["boundaries"] or [])
        return d

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return fingerprint_bytes(canonical.encode("utf-8"))

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Plan:
        return cls(**data)  # type: ignore[arg-type]

    def recorded(self) -> dict[str, object]:
        """What manifests and `rivet plan` record: the definition-independent part (no query text, which
        can be long); `from_recorded` rebuilds the plan with today's definition, and the fingerprint
        recorded beside it tells whether that definition is still the run's."""
        return {k: v for k, v in self.to_dict().items() if k not in ("engine", "relation")}

    @classmethod
    def from_recorded(cls, engine: str, relation: str, recorded: dict[str, object]) -> Plan:
        return cls(engine=engine, relation=relation, **recorded)  # type: ignore[arg-type]


def chunk_size_for(lo: int | None, hi: int | None, chunk_size: int | None, chunk_count: int | None) -> int:
    """Effective chunk size: given, or derived from a requested count (at least 1)."""
    if chunk_count:
        if lo is None or hi is None:
            return 1
        return max(1, math.ceil((hi - lo + 1) / chunk_count))
    return chunk_size or DEFAULT_CHUNK_SIZE


def plan_changes(old: Plan, new: Plan) -> list[str]:
    """Names of definition fields that differ (bounds and keyset boundaries excluded: a resume keeps its own)."""
    old_d, new_d = old.to_dict(), new.to_dict()
    keys = list(old_d) + [k for k in new_d if k not in old_d]
    return [
        f"{k}: {old_d.get(k)!r} -> {new_d.get(k)!r}"
        for k in keys
        if k not in {"lo", "hi", "boundaries"} and old_d.get(k) != new_d.get(k)
    ]


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
