"""stdout exports: one streamed part, no manifest, no `_SUCCESS`, no resume (contract section 1)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from rivet.config.model import ExportConfig, RivetConfig
from rivet.destinations.factory import open_destination
from rivet.exporter import export_part
from rivet.runner import RunOptions
from rivet.sources.factory import open_source
from rivet.sql import export_sql


def stream_to_stdout(cfg: RivetConfig, exp: ExportConfig, opts: RunOptions) -> dict[str, Any]:
    started = time.monotonic()
    run_date = opts.date or dt.datetime.now(dt.UTC).date()
    dest = open_destination(exp.destination, "")
    source = open_source(cfg.source)
    try:
        sql = export_sql(source.engine, exp, run_date=run_date, cursor=None)
        schema = source.describe(sql)
        result = export_part(
            source, sql, schema, dest, "stdout", exp.format, exp.effective_compression, cfg.source.tuning.batch_size
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
