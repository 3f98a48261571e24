"""Find the prefix a post-run command (validate, reconcile, repair) works on: one resolver for all."""

from __future__ import annotations

import datetime as dt
import re

from rivet.config.model import ExportConfig
from rivet.contract.prefix import resolve_prefix, uses_run_id
from rivet.destinations.base import Destination
from rivet.destinations.factory import open_destination
from rivet.errors import UsageError

_URI_RE = re.compile(r"^(s3|gs|az|file)://")


def prefix_for(exp: ExportConfig, date: dt.date | None, run_id: str | None, prefix: str | None) -> str:
    """`--prefix` is exact (a key prefix, a path, or a URI of this destination); else the template resolves."""
    if prefix:
        if _URI_RE.match(prefix):
            scheme, rest = prefix.split("://", 1)
            # file:///abs/path keeps its path; bucket-style URIs drop the bucket/container part
            return rest if scheme == "file" else rest.split("/", 1)[1] if "/" in rest else ""
        return prefix
    template = exp.destination.template
    if uses_run_id(template) and not run_id:
        raise UsageError(
            f"export {exp.name!r}: the prefix template {template!r} uses {{run_id}}: pass --run-id or --prefix"
        )
    return resolve_prefix(template, export=exp.name, date=date or dt.datetime.now(dt.UTC).date(), run_id=run_id or "")


def locate(exp: ExportConfig, date: dt.date | None, run_id: str | None, prefix: str | None) -> Destination:
    return open_destination(exp.destination, prefix_for(exp, date, run_id, prefix))
