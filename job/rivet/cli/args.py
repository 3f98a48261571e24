"""Parsed arguments to the engine's inputs: the config (secrets registered for redaction), the selected
exports, the plan and cursor JSON, and the prefix a post-run command works on."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rivet.config import ExportConfig, RivetConfig, load_config
from rivet.errors import (
    UsageError,
)
from rivet.log import add_secret


def load(args: argparse.Namespace, need_source: bool = True) -> RivetConfig:
    cfg = load_config(args.config, params=dict(args.param), need_source=need_source)
    add_secret(cfg.source.url.reveal())
    for _, value in args.param:
        add_secret(value)
    return cfg


def selected(cfg: RivetConfig, args: argparse.Namespace) -> list[ExportConfig]:
    return [cfg.export(n) for n in args.export] if args.export else list(cfg.exports)


def one(cfg: RivetConfig, args: argparse.Namespace) -> ExportConfig:
    if len(args.export) != 1:
        raise UsageError(f"rivet {args.command} takes exactly one -e/--export")
    return cfg.export(args.export[0])


def plan_arg(text: str) -> dict[str, Any]:
    """`--plan`: the JSON `rivet plan` printed, inline or as @path."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--plan {text}: {exc.strerror}") from None
    plan = json_arg(text, "--plan")
    if not isinstance(plan, dict):
        raise UsageError("--plan must be the JSON object printed by `rivet plan`")
    return plan


def cursor_arg(text: str | None) -> Any:
    from rivet.contract import values

    if not text:
        return None
    try:
        return values.decode(json_arg(text, "--cursor"))
    except ValueError as exc:
        raise UsageError(f"--cursor: {exc}") from None


def json_arg(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise UsageError(f"{name} must be JSON") from None


@dataclass(frozen=True)
class Target:
    """Which prefix a post-run command works on (the flags of validate, reconcile and repair)."""

    date: dt.date | None = None
    run_id: str | None = None
    prefix: str | None = None

    @classmethod
    def of(cls, args: argparse.Namespace) -> Target:
        return cls(args.date, args.run_id, args.prefix)
