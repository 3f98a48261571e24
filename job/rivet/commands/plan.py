"""`rivet plan`: the operator's plan Job. Key bounds, row estimate, the plan and its fingerprint, and
(with --check-destination) the M8 gate. Its JSON output is the opaque plan later Jobs are given."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from rivet.config.model import ExportConfig, Mode, RivetConfig
from rivet.contract.fingerprint import schema_fingerprint
from rivet.contract.plan import PLAN_DOCUMENT_LIMIT
from rivet.contract.prefix import resolve_prefix
from rivet.destinations.factory import open_destination
from rivet.engine.certify import check_fencing, refuse_unless_forced, take_over, withdraw
from rivet.engine.planning import count_null_cursors, read_plan, row_estimate
from rivet.errors import ConfigError
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
        check_fencing(dest, exp, run_id)
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
    first, last = plan.chunk(1), plan.chunk(plan.chunk_count)
    doc = {
        "export": exp.name,
        "run_id": run_id,
        "resolved_prefix": dest.uri() if dest is not None else prefix,
        "mode": plan.mode,
        "chunk_column": plan.chunk_column,
        "lo": plan.lo,
        "hi": plan.hi,
        "key_range": None
        if plan.keyset or not (first.key_range and last.key_range)
        else [first.key_range[0], last.key_range[1]],
        "chunk_size": plan.chunk_size,
        "chunk_count": plan.chunk_count,
        "row_estimate": estimate,
        "plan_fingerprint": plan.fingerprint,
        "schema_fingerprint": schema_fingerprint(schema),
        "plan": plan.recorded(),
    }
    size = len(json.dumps(doc, default=str, separators=(",", ":")).encode("utf-8"))
    if size > PLAN_DOCUMENT_LIMIT:  # before anything changes at the prefix
        raise ConfigError(
            f"{exp.path}.chunk_size",
            f"the plan takes {size:,} bytes, more than the {PLAN_DOCUMENT_LIMIT:,} the operator's plan Job can"
            " report (a 4 KiB termination message)",
            "set a smaller chunk_count or a larger chunk_size (fewer keyset boundaries), or a shorter prefix",
        )
    if dest is not None and certified:
        withdraw(dest, "forced run")  # planned without error: the chunk Jobs may now change bytes
    if dest is not None:
        take_over(dest, run_id)  # fencing: the chunk Jobs of this run may write under another run's manifest
    return doc
