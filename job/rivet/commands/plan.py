"""`rivet plan`: the operator's plan Job. Key bounds, row estimate, the plan and its fingerprint, and
(with --check-destination) the M8 gate. Its JSON output is the opaque plan later Jobs are given."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rivet.config.model import ExportConfig, Mode, RivetConfig
from rivet.contract.fingerprint import schema_fingerprint
from rivet.contract.prefix import resolve_prefix
from rivet.destinations.factory import open_destination
from rivet.engine.certify import refuse_unless_forced, take_over, withdraw
from rivet.engine.planning import count_null_cursors, read_plan, row_estimate
from rivet.sources.factory import open_source
from rivet.sources.sql import select_all


def plan_command(
    cfg: RivetConfig,
    exp: ExportConfig,
    run_id: str,
    run_date: dt.date,
    check_destination: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    prefix = resolve_prefix(exp.destination.template, export=exp.name, date=run_date, run_id=run_id)
    dest = open_destination(exp.destination, prefix) if check_destination else None
    certified = False
    if dest is not None:
        dest.check()
        certified = refuse_unless_forced(dest, force)
    source = open_source(cfg.source)
    try:
        schema = source.describe(select_all(source.engine, exp))
        plan = read_plan(source, exp, schema)
        estimate = row_estimate(source, exp)
        if exp.mode is Mode.INCREMENTAL:
            count_null_cursors(source, exp)
    finally:
        source.close()
    if dest is not None and certified:
        withdraw(dest, "forced run")  # planned without error: the chunk Jobs may now change bytes
    if dest is not None:
        take_over(dest, run_id)  # fencing: the chunk Jobs of this run may write under another run's manifest
    first, last = plan.chunk(1), plan.chunk(plan.chunk_count)
    return {
        "export": exp.name,
        "run_id": run_id,
        "resolved_prefix": dest.uri() if dest is not None else prefix,
        "mode": plan.mode,
        "chunk_column": plan.chunk_column,
        "lo": plan.lo,
        "hi": plan.hi,
        "key_range": [first.key_range[0], last.key_range[1]] if first.key_range and last.key_range else None,
        "chunk_size": plan.chunk_size,
        "chunk_count": plan.chunk_count,
        "row_estimate": estimate,
        "plan_fingerprint": plan.fingerprint,
        "schema_fingerprint": schema_fingerprint(schema),
        "plan": plan.recorded(),
    }
