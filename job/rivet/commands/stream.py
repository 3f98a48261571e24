"""stdout exports: one streamed part, no manifest, no `_SUCCESS`, no resume (contract section 1)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from rivet.commands.run import RunOptions
from rivet.config.model import ExportConfig, RivetConfig
from rivet.destinations.factory import open_destination
from rivet.engine.pipeline import export_part
from rivet.sources.factory import open_source
from rivet.sources.sql import export_query, select_all


def stream_to_stdout(cfg: RivetConfig, exp: ExportConfig, opts: RunOptions) -> dict[str, Any]:
    started = time.monotonic()
    run_date = opts.date or dt.datetime.now(dt.UTC).date()
    dest = open_destination(exp.destination, "")
    source = open_source(cfg.source)
    try:
        schema = source.describe(select_all(source.engine, exp))
        query = export_query(source.engine, exp, schema, run_date=run_date, cursor=None)
        result = export_part(
            source, query, schema, dest, "stdout", exp.format, exp.effective_compression, cfg.source.tuning.batch_size
        )
    finally:
        source.close()
    duration = time.monotonic() - started
    rows = result.rows if result else 0
    return {
        "export_name": exp.name,
        "status": "success",
        "resolved_prefix": "stdout",
        "rows": rows,
        "bytes": result.size_bytes if result else 0,
        "content_fingerprint": result.content_fingerprint if result else None,
        "duration_s": round(duration, 3),
        "rows_per_s": round(rows / duration) if duration > 0 else 0,
    }
