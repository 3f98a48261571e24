"""One function per `rivet` verb: arguments in through `args`, results out through `output`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rivet.cli.args import Target, cursor_arg, json_arg, load, one, plan_arg, selected
from rivet.cli.output import emit, print_validation, resources, write_termination
from rivet.config import ExportConfig, RivetConfig
from rivet.config.model import DestinationType
from rivet.contract.manifest import CommitRecord
from rivet.errors import (
    EXIT_INTEGRITY,
    EXIT_OK,
    RivetError,
    UsageError,
    combine,
)
from rivet.log import log, scrub, scrub_obj


def cmd_run(args: argparse.Namespace) -> int:
    from rivet.commands.run import RunOptions, run_export
    from rivet.commands.stream import stream_to_stdout
    from rivet.engine.ledger import StateStore

    cfg = load(args)
    exports = selected(cfg, args)
    opts = RunOptions(resume=args.resume, force=args.force, date=args.date, run_id=args.run_id)
    streaming = [e for e in exports if e.destination.type is DestinationType.STDOUT]
    if streaming and len(exports) > 1:
        raise UsageError("a stdout export must run alone: select it with -e")
    if streaming:
        summary = stream_to_stdout(cfg, streaming[0], opts)
        emit({"exports": [summary], **resources()}, args, stream=sys.stderr)
        return 0
    state = StateStore(args.state or cfg.state_path)
    summaries: list[dict[str, Any]] = []
    codes: list[int] = []
    try:
        for exp in exports:
            try:
                summaries.append(run_export(cfg, exp, opts, state).to_dict())
            except RivetError as exc:
                log("export_failed", level="error", export=exp.name, error=exc.message, exit=exc.exit_code)
                summaries.append({"export_name": exp.name, "status": "failed", "error": exc.message})
                codes.append(exc.exit_code)
    finally:
        state.close()
    result: dict[str, Any] = {"exports": summaries, **resources()}
    done = [e for e in exports if any(s["export_name"] == e.name and s["status"] == "success" for s in summaries)]
    if args.validate and done:
        checks = []
        for exp in done:
            summary = next(s for s in summaries if s["export_name"] == exp.name)
            checks.append(validate_exports(cfg, [exp], Target(prefix=summary["resolved_prefix"]), codes))
        result["validation"] = {
            "exports": [e for c in checks for e in c["exports"]],
            "errors": [e for c in checks for e in c["errors"]],
        }
        codes.append(_validate_code(result["validation"]))
    if args.reconcile and done:
        reports = []
        for exp in done:
            summary = next(s for s in summaries if s["export_name"] == exp.name)
            reports.append(_reconcile_one(cfg, exp, Target(prefix=summary["resolved_prefix"])))
        result["reconcile"] = reports
        codes.extend(_reconcile_code(r) for r in reports)
    emit(result, args)
    for s in summaries:
        if s.get("status") == "success":
            print(
                f"rivet: {s['export_name']}: {s['rows']:,} rows, {s['parts']} parts, {s['bytes']:,} bytes in"
                f" {s['duration_s']:.1f}s ({s['rows_per_s']:,} rows/s), peak RSS {result['peak_rss_mb']} MB"
                f" -> {s['resolved_prefix']}",
                file=sys.stderr,
            )
        else:
            print(f"rivet: error: {s['export_name']}: {s.get('error')}", file=sys.stderr)
    return combine(codes)


def cmd_plan(args: argparse.Namespace) -> int:
    from rivet.commands.plan import plan_command

    cfg = load(args)
    run_date = args.date or dt.datetime.now(dt.UTC).date()
    out = plan_command(cfg, one(cfg, args), args.run_id, run_date, args.check_destination, args.force)
    if args.format == "pretty":
        for k, v in out.items():
            print(f"{k:>26}: {scrub(str(v))}")
        if args.termination_log:
            write_termination(args.termination_log, json.dumps(scrub_obj(out), default=str))
    else:
        emit(out, args)
    return 0


def cmd_chunk(args: argparse.Namespace) -> int:
    from rivet.commands.chunk import chunk_command

    cfg = load(args)
    committed = CommitRecord.from_dict(json_arg(args.committed, "--committed")) if args.committed else None
    out = chunk_command(
        cfg,
        one(cfg, args),
        args.run_id,
        args.date or dt.datetime.now(dt.UTC).date(),
        args.chunk,
        plan_arg(args.plan),
        committed,
        cursor_arg(args.cursor),
    )
    emit(out, args)
    return 0


def cmd_finalize(args: argparse.Namespace) -> int:
    from rivet.commands.finalize import finalize_command, read_ledger

    cfg = load(args)
    plan_doc = plan_arg(args.plan)
    if args.expect_chunks is not None and plan_doc.get("chunk_count") not in (None, args.expect_chunks):
        raise UsageError(f"--expect-chunks {args.expect_chunks} disagrees with the plan's {plan_doc['chunk_count']}")
    out = finalize_command(
        cfg,
        one(cfg, args),
        args.run_id,
        args.date or dt.datetime.now(dt.UTC).date(),
        read_ledger(args.ledger, args.ledger_digest),
        args.started_at,
        plan_doc,
        args.force,
        cursor_arg(args.cursor),
    )
    emit(out, args)
    return 0


def validate_exports(
    cfg: RivetConfig, exports: list[ExportConfig], target: Target, codes: list[int] | None = None
) -> dict[str, Any]:
    """Verify each export's prefix. An export that could not be checked lands in `errors`, and its exit
    code (e.g. 2 for a template that needs --run-id, 3 for a store that is unreachable) in `codes`."""
    from rivet.commands.locate import locate
    from rivet.commands.validate import verify_prefix

    if target.prefix and len(exports) > 1:
        raise UsageError("--prefix names one exact prefix: select a single export with -e")
    result: dict[str, Any] = {"exports": [], "errors": []}
    for exp in exports:
        try:
            dest = locate(exp, target.date, target.run_id, target.prefix)
            verification = verify_prefix(dest, exp.verify)
        except RivetError as exc:
            result["errors"].append({"export_name": exp.name, "message": exc.message})
            if codes is not None:
                codes.append(exc.exit_code)
            continue
        result["exports"].append(
            {"export_name": exp.name, "resolved_prefix": dest.uri(), "verification": verification.to_dict()}
        )
    return result


def _validate_ok(result: dict[str, Any]) -> bool:
    return not result["errors"] and all(
        e["verification"]["passed"] or e["verification"]["legacy_run"] for e in result["exports"]
    )


def _validate_code(result: dict[str, Any]) -> int:
    """4 when a prefix does not verify; `errors` (prefixes that could not be checked) carry their own codes."""
    failed = any(not (e["verification"]["passed"] or e["verification"]["legacy_run"]) for e in result["exports"])
    return EXIT_INTEGRITY if failed else EXIT_OK


def _reconcile_code(report: dict[str, Any]) -> int:
    return EXIT_INTEGRITY if report["mismatch"] else EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    cfg = load(args, need_source=False)
    codes: list[int] = []
    result = validate_exports(cfg, selected(cfg, args), Target.of(args), codes)
    if args.format == "json":
        emit(result, args)
    else:
        print_validation(result)
    return combine([*codes, _validate_code(result)])


def _reconcile_one(cfg: RivetConfig, exp: ExportConfig, target: Target) -> dict[str, Any]:
    from rivet.commands.locate import locate
    from rivet.commands.reconcile import reconcile
    from rivet.sources.factory import open_source

    dest = locate(exp, target.date, target.run_id, target.prefix)
    source = open_source(cfg.source)
    try:
        return reconcile(cfg, source, exp, dest)
    finally:
        source.close()


def cmd_reconcile(args: argparse.Namespace) -> int:
    cfg = load(args)
    report = _reconcile_one(cfg, one(cfg, args), Target.of(args))
    if args.format == "json":
        emit(report, args)
    else:
        print(
            f"{report['export_name']}: {report['match']} match, {report['mismatch']} mismatch, "
            f"{report['unknown']} unknown  {report['resolved_prefix']}"
        )
        for c in report["chunks"]:
            if c["status"] != "match":
                print(
                    f"  chunk {c['chunk']} {c['key_range']}: {c['status']} recorded {c['recorded_rows']}"
                    f" source {c['source_rows']}"
                )
        total = report.get("total")
        if total and total["status"] != "match":
            print(f"  whole source: {total['status']} recorded {total['recorded_rows']} source {total['source_rows']}")
        if report.get("note"):
            print(f"  note: {report['note']}")
    return _reconcile_code(report)


def cmd_repair(args: argparse.Namespace) -> int:
    from rivet.commands.locate import locate
    from rivet.commands.repair import execute_repair, repair_plan
    from rivet.sources.factory import open_source

    cfg = load(args)
    exp = one(cfg, args)
    if args.report:
        report = json_arg(Path(args.report).read_text(encoding="utf-8"), "--report")
        if report.get("export_name") not in (None, exp.name):
            raise UsageError(f"--report is for export {report.get('export_name')!r}, not {exp.name!r}")
    else:
        report = _reconcile_one(cfg, exp, Target.of(args))
    actions = repair_plan(report, exp)
    out: dict[str, Any] = {"export_name": exp.name, "execute": bool(args.execute), "actions": actions}
    if args.execute and actions:
        dest = locate(exp, args.date, args.run_id, args.prefix)
        source = open_source(cfg.source)
        try:
            out.update(execute_repair(cfg, source, exp, dest, actions))
        finally:
            source.close()
    if args.format == "json":
        emit(out, args)
    else:
        verb = "re-exported" if args.execute else "would re-export (dry run; add --execute)"
        print(f"{exp.name}: {verb} {len(actions)} chunk(s)")
        for a in actions:
            print(f"  chunk {a['chunk']} {a['key_range']} -> {a['key']}")
        if out.get("success"):
            print(f"  certified again: _SUCCESS {out['success']}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "plan": cmd_plan,
    "chunk": cmd_chunk,
    "finalize": cmd_finalize,
    "validate": cmd_validate,
    "reconcile": cmd_reconcile,
    "repair": cmd_repair,
}
