"""The `rivet` argument parser: one sub-command per verb; usage errors exit 2."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import NoReturn

from rivet import __version__
from rivet.errors import (
    UsageError,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: {message}")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}: use YYYY-MM-DD") from None


def _param(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"invalid --param {text!r}: use key=value")
    k, v = text.split("=", 1)
    return k, v


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rivet", description="Export PostgreSQL/MySQL tables to Parquet/CSV under a verifiable contract.")
    p.add_argument("--version", action="version", version=f"rivet {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sp: argparse.ArgumentParser, export_required: bool = False) -> None:
        sp.add_argument(
            "-c", "--config", required=True, help="path to rivet.yaml, or env:NAME to read it from a variable"
        )
        sp.add_argument("-e", "--export", action="append", required=export_required, help="export name (repeatable)")
        sp.add_argument("--param", action="append", type=_param, default=[], help="fill ${key} in the config")
        sp.add_argument("--date", type=_date, help="the run date for {date} (YYYY-MM-DD, default today UTC)")
        sp.add_argument("--termination-log", help="also write the final JSON here (Kubernetes termination message)")

    run = sub.add_parser("run", help="run exports locally (parallel chunks in-process)")
    common(run)
    run.add_argument("--resume", action="store_true", help="resume the export's last unfinished run")
    run.add_argument("--force", action="store_true", help="replace a certified prefix (withdraws _SUCCESS first)")
    run.add_argument("--run-id", help="run id to create or resume")
    run.add_argument("--state", help="SQLite state file (default: state.path in the config)")
    run.add_argument("--validate", action="store_true", help="validate each export's prefix after the run")
    run.add_argument("--reconcile", action="store_true", help="recount the source per chunk after the run")

    def target(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--run-id", help="fills {run_id} in the prefix template")
        sp.add_argument("--prefix", help="exact prefix (key prefix, path or URI), bypassing placeholders")
        sp.add_argument("--format", choices=["json", "pretty"], default="pretty")

    val = sub.add_parser("validate", help="verify manifest, _SUCCESS and every part (no source access)")
    common(val)
    target(val)

    rec = sub.add_parser("reconcile", help="COUNT(*) per chunk key range vs recorded rows (never writes)")
    common(rec, export_required=True)
    target(rec)

    rep = sub.add_parser("repair", help="plan (dry run) or --execute re-exports of mismatched chunks")
    common(rep, export_required=True)
    target(rep)
    rep.add_argument("--report", help="a reconcile JSON report (default: reconcile now)")
    rep.add_argument("--execute", action="store_true", help="re-export, then write a new manifest and _SUCCESS")

    plan = sub.add_parser("plan", help="key bounds, row estimate, chunk plan and its fingerprint (JSON)")
    common(plan, export_required=True)
    plan.add_argument("--run-id", required=True)
    plan.add_argument("--format", choices=["json", "pretty"], default="json")
    plan.add_argument("--check-destination", action="store_true", help="check the destination and the M8 gate")
    plan.add_argument("--force", action="store_true", help="with --check-destination: withdraw _SUCCESS")

    chunk = sub.add_parser("chunk", help="export one chunk to its part key and print its commit record")
    common(chunk, export_required=True)
    chunk.add_argument("--run-id", required=True)
    chunk.add_argument("--chunk", type=int, required=True, help="1-based chunk index")
    chunk.add_argument("--plan", required=True, help="the JSON printed by `rivet plan` (inline, or @file)")
    chunk.add_argument("--committed", help="the ledger's commit record for this chunk (JSON), if any")
    chunk.add_argument("--cursor", help="incremental mode: the last certified cursor value to start at (JSON)")

    fin = sub.add_parser("finalize", help="verify the ledger's parts, write manifest.json then _SUCCESS")
    common(fin, export_required=True)
    fin.add_argument("--run-id", required=True)
    fin.add_argument("--ledger", required=True, help="commit records (JSON lines or a JSON list)")
    fin.add_argument("--ledger-digest", help="the operator's sha256 of the ledger directory: refuse any other")
    fin.add_argument("--started-at", help="RFC 3339 start time of the run")
    fin.add_argument("--expect-chunks", type=int, help="the plan's chunk count (checked against --plan)")
    fin.add_argument("--force", action="store_true", help="replace a certified prefix")
    fin.add_argument("--plan", required=True, help="the JSON printed by `rivet plan` (inline, or @file)")
    fin.add_argument("--cursor", help="incremental mode: the cursor value the run started at (JSON)")
    return p
