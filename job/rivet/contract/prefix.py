"""The one prefix resolver every command uses (contract section 1)."""

from __future__ import annotations

import datetime as dt
import re

from rivet.errors import ConfigError

TOKENS = ("date", "export", "table", "run_id")
_TOKEN_RE = re.compile(r"\{([^{}]*)\}")


def template_tokens(template: str) -> list[str]:
    return _TOKEN_RE.findall(template)


def check_template(template: str, field_path: str) -> None:
    """Refuse unknown `{tokens}` at load time instead of silently keeping them."""
    for token in template_tokens(template):
        if token not in TOKENS:
            allowed = ", ".join("{" + t + "}" for t in TOKENS)
            raise ConfigError(field_path, f"unknown placeholder {{{token}}}", f"use one of {allowed}")


def resolve_prefix(
    template: str, *, export: str, date: dt.date, run_id: str, field_path: str = "destination.prefix"
) -> str:
    """Substitute `{date}` (YYYY-MM-DD), `{export}`/`{table}` (the export name), `{run_id}`."""
    check_template(template, field_path)
    values = {"date": date.isoformat(), "export": export, "table": export, "run_id": run_id}
    return _TOKEN_RE.sub(lambda m: values[m.group(1)], template)


def uses_run_id(template: str) -> bool:
    return "run_id" in template_tokens(template)
