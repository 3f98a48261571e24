"""`rivet chunk`: the operator's chunk Job. Computes chunk N's range from the run's plan itself (never
from numbers handed to it) and exports it through the engine's one chunk path."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rivet.config.model import ExportConfig, RivetConfig
from rivet.contract.manifest import CommitRecord
from rivet.destinations.factory import open_destination
from rivet.engine.chunk import export_chunk
from rivet.engine.context import recorded_context
from rivet.errors import UsageError
from rivet.sources.factory import open_source


def chunk_command(
    cfg: RivetConfig,
    exp: ExportConfig,
    run_id: str,
    run_date: dt.date,
    index: int,
    plan_doc: dict[str, Any],
    committed: CommitRecord | None = None,
    cursor: Any = None,
) -> dict[str, Any]:
    """Export chunk `index` to its part key, applying the resume decision for that key first."""
    source = open_source(cfg.source)
    try:
        ctx = recorded_context(cfg, exp, run_id, run_date, plan_doc, source, cursor=cursor)
        try:
            chunk = ctx.plan.chunk(index)
        except IndexError as exc:
            raise UsageError(f"--chunk {index}: {exc}") from None
        dest = open_destination(exp.destination, ctx.prefix)
        outcome = export_chunk(ctx, source, dest, chunk, committed)
    finally:
        source.close()
    out: dict[str, Any] = {"decision": outcome.decision.value, "resolved_prefix": dest.uri()}
    if outcome.quarantined:
        out["quarantined"] = outcome.quarantined
    return {**outcome.record.to_dict(), **out}
