"""The one chunk path: `rivet run`'s workers, the operator's chunk Jobs and repair all export through
`export_chunk`: the resume decision for the chunk's key, quarantine of what is there, the chunk's rows
through the pipeline, and the commit record.

Fencing: the decision is taken when the chunk starts, the part is committed minutes later. So the commit
is conditional (create-only when the decision saw the key empty or emptied it, if-match when it replaces
the object it saw), and a chunk first checks that the prefix is still its run's to write
(`certify.check_prefix_owner`): never a certified prefix, never one another run has taken over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rivet.config.model import Mode
from rivet.contract.manifest import QUARANTINE_DIR, CommitRecord, part_key, quarantine_key
from rivet.contract.objects import ObjectInfo
from rivet.contract.plan import Chunk
from rivet.contract.resume import Decision, decide
from rivet.destinations.base import Destination
from rivet.engine import signals
from rivet.engine.certify import check_prefix_owner
from rivet.engine.context import RunContext
from rivet.engine.pipeline import PartResult, export_part
from rivet.formats.writer import ROW_GROUP_ROWS, row_group_bytes
from rivet.log import log
from rivet.sources.base import Source

MIN_ROW_GROUP_ROWS = 65_536
MIN_ROW_GROUP_BYTES = 16 * 1024 * 1024


def row_group_budget(parallel: int) -> tuple[int, int]:
    """(rows, bytes) per writer: parallel workers share one row budget and one byte budget."""
    workers = max(1, parallel)
    budget = row_group_bytes()
    per_worker_bytes = max(min(budget, MIN_ROW_GROUP_BYTES), budget // workers)
    return max(MIN_ROW_GROUP_ROWS, ROW_GROUP_ROWS // workers), per_worker_bytes


@dataclass(frozen=True)
class ChunkOutcome:
    record: CommitRecord
    decision: Decision
    quarantined: str | None = None


def export_chunk(
    ctx: RunContext,
    source: Source,
    dest: Destination,
    chunk: Chunk,
    committed: CommitRecord | None,
    *,
    listing: Mapping[str, ObjectInfo] | None = None,
    quarantined_keys: set[str] | None = None,
    on_rows: Callable[[int], None] = lambda n: None,
) -> ChunkOutcome:
    """Export `chunk` to its part key unless the ledger's record is intact there.

    `committed` is the ledger's record for the chunk (None: untracked, so anything at the key is moved
    aside, which is also how repair forces a re-export). `listing` is the prefix as a listing already showed
    it (None: look the key up now). `quarantined_keys` are the keys under `_quarantine/` already taken.
    """
    signals.check()
    key = part_key(chunk.index, ctx.exp.format.value)
    obj = listing.get(key) if listing is not None else dest.head(key)
    decision = decide(committed, obj)
    if decision is Decision.SKIP and committed is not None:
        return ChunkOutcome(committed, decision)
    check_prefix_owner(dest, ctx.run_id)  # before anything at the prefix changes
    moved = None
    replace: ObjectInfo | None = None  # None: the commit creates the key only if it is empty
    if decision is Decision.QUARANTINE_EXPORT:
        taken = quarantined_keys if quarantined_keys is not None else _quarantined(dest)
        moved, deleted = move_aside(dest, ctx.run_id, key, taken)
        if not deleted:
            replace = obj  # the delete failed: replace exactly the object this chunk saw and copied aside
    rows_budget, bytes_budget = row_group_budget(ctx.exp.parallel)
    result = export_part(
        source,
        ctx.query(chunk),
        ctx.schema,
        dest,
        key,
        ctx.exp.format,
        ctx.exp.effective_compression,
        ctx.batch_size,
        on_rows,
        ctx.exp.cursor_column if ctx.exp.mode is Mode.INCREMENTAL else None,
        rows_budget,
        replace=replace,
        row_group_max_bytes=bytes_budget,
    )
    return ChunkOutcome(record_for(ctx, chunk, key, result), decision, moved)


def record_for(ctx: RunContext, chunk: Chunk, key: str, result: PartResult | None) -> CommitRecord:
    """The commit record of a finished chunk; an empty chunk (no result) records no part."""
    if result is None:
        return CommitRecord(chunk.index, None, 0, 0, "", "", ctx.schema_fp, chunk.key_range)
    return CommitRecord(
        chunk.index,
        key,
        result.rows,
        result.size_bytes,
        result.content_fingerprint,
        result.content_md5,
        ctx.schema_fp,
        chunk.key_range,
        result.max_cursor,
        result.content_crc32c,
    )


def _quarantined(dest: Destination) -> set[str]:
    return {o.key for o in dest.list() if o.key.startswith(QUARANTINE_DIR + "/")}


def quarantine(dest: Destination, run_id: str, key: str, taken: set[str]) -> str:
    """Move the object at `key` to `_quarantine/<run_id>/<key>` (copy, then delete): never lose evidence (M9).

    A second quarantine of the same key in one run gets a numeric suffix instead of overwriting.
    A failed delete leaves both copies; the next resume moves it again.
    """
    return move_aside(dest, run_id, key, taken)[0]


def move_aside(dest: Destination, run_id: str, key: str, taken: set[str]) -> tuple[str, bool]:
    """`quarantine`, also saying whether the original was deleted (False: it is still at `key`)."""
    target = quarantine_key(run_id, key)
    n = 1
    while target in taken:
        target = f"{quarantine_key(run_id, key)}.{n}"
        n += 1
    dest.copy(key, target)
    taken.add(target)
    deleted = True
    try:
        dest.delete(key)
    except Exception as exc:
        deleted = False
        log("quarantine_delete_failed", level="warning", key=key, quarantined_to=target, error=str(exc))
    log("quarantined", key=key, to=target)
    return target, deleted
