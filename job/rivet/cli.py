"""The `rivet` command line: JSON for scripts on stdout, progress and logs on stderr.

Exit codes have meanings (the table is in `rivet.errors`): 0 success, 1 permanent failure, 2 usage error,
3 retryable failure, 4 integrity failure (validate, reconcile), 5 schema drift.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from rivet import __version__
from rivet.config import ExportConfig, RivetConfig, load_config
from rivet.config.model import DestinationType
from rivet.contract.manifest import CommitRecord
from rivet.engine import signals
from rivet.errors import (
    EXIT_INTEGRITY,
    EXIT_OK,
    EXIT_RETRYABLE,
    RivetError,
    UsageError,
    combine,
    exit_code_for,
)
from rivet.log import add_secret, log, scrub, scrub_obj

TERMINATION_LIMIT = 4096


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
        sp.add_argument("-c", "--config", required=True, help="path to rivet.yaml")
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
    fin.add_argument("--started-at", help="RFC 3339 start time of the run")
    fin.add_argument("--expect-chunks", type=int, help="the plan's chunk count (checked against --plan)")
    fin.add_argument("--force", action="store_true", help="replace a certified prefix")
    fin.add_argument("--plan", required=True, help="the JSON printed by `rivet plan` (inline, or @file)")
    fin.add_argument("--cursor", help="incremental mode: the cursor value the run started at (JSON)")
    return p


def _load(args: argparse.Namespace, need_source: bool = True) -> RivetConfig:
    cfg = load_config(args.config, params=dict(args.param), need_source=need_source)
    add_secret(cfg.source.url.reveal())
    for _, value in args.param:
        add_secret(value)
    return cfg


def _selected(cfg: RivetConfig, args: argparse.Namespace) -> list[ExportConfig]:
    return [cfg.export(n) for n in args.export] if args.export else list(cfg.exports)


def _one(cfg: RivetConfig, args: argparse.Namespace) -> ExportConfig:
    if len(args.export) != 1:
        raise UsageError(f"rivet {args.command} takes exactly one -e/--export")
    return cfg.export(args.export[0])


def _emit(obj: dict[str, Any], args: argparse.Namespace, stream: Any = None) -> None:
    """JSON for scripts; secrets are redacted value by value before serialising (never in the JSON text,
    which would mangle values such as a base64 MD5 that happens to contain `/sig=`)."""
    text = json.dumps(scrub_obj(obj), default=str, separators=(",", ":"))
    print(text, file=stream or sys.stdout, flush=True)
    if getattr(args, "termination_log", None):
        _write_termination(
            args.termination_log, json.dumps(scrub_obj(_compact(obj)), default=str, separators=(",", ":"))
        )


def _compact(obj: dict[str, Any], keep: int = 5) -> dict[str, Any]:
    """Validation reports can list thousands of failures: the termination message keeps the first few."""
    if "exports" not in obj or not any("verification" in e for e in obj.get("exports", [])):
        return obj
    out = dict(obj)
    out["exports"] = []
    for e in obj["exports"]:
        v = dict(e.get("verification", {}))
        failures = v.get("failures", [])
        v["failure_count"] = len(failures)
        v["failures"] = failures[:keep]
        out["exports"].append({**e, "verification": v})
    return out


def _write_termination(path: str, text: str) -> None:
    """Kubernetes keeps at most 4 KiB of the termination message: trim rather than lose the record."""
    if len(text.encode()) > TERMINATION_LIMIT:
        obj = json.loads(text)
        for key in ("quarantined", "key_range", "error"):
            if key in obj and len(text.encode()) > TERMINATION_LIMIT:
                obj[key] = str(obj[key])[:512]
                text = json.dumps(obj, separators=(",", ":"))
        text = text[: TERMINATION_LIMIT - 1]
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        log("termination_log_failed", level="warning", path=path, error=exc.strerror)


def cmd_run(args: argparse.Namespace) -> int:
    from rivet.commands.run import RunOptions, run_export
    from rivet.commands.stream import stream_to_stdout
    from rivet.engine.ledger import StateStore

    cfg = _load(args)
    exports = _selected(cfg, args)
    opts = RunOptions(resume=args.resume, force=args.force, date=args.date, run_id=args.run_id)
    streaming = [e for e in exports if e.destination.type is DestinationType.STDOUT]
    if streaming and len(exports) > 1:
        raise UsageError("a stdout export must run alone: select it with -e")
    if streaming:
        summary = stream_to_stdout(cfg, streaming[0], opts)
        _emit({"exports": [summary], **_resources()}, args, stream=sys.stderr)
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
    result: dict[str, Any] = {"exports": summaries, **_resources()}
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
    _emit(result, args)
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


def _resources() -> dict[str, Any]:
    return {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def cmd_plan(args: argparse.Namespace) -> int:
    from rivet.commands.plan import plan_command

    cfg = _load(args)
    run_date = args.date or dt.datetime.now(dt.UTC).date()
    out = plan_command(cfg, _one(cfg, args), args.run_id, run_date, args.check_destination, args.force)
    if args.format == "pretty":
        for k, v in out.items():
            print(f"{k:>26}: {scrub(str(v))}")
        if args.termination_log:
            _write_termination(args.termination_log, json.dumps(scrub_obj(out), default=str))
    else:
        _emit(out, args)
    return 0


def cmd_chunk(args: argparse.Namespace) -> int:
    from rivet.commands.chunk import chunk_command

    cfg = _load(args)
    committed = CommitRecord.from_dict(_json_arg(args.committed, "--committed")) if args.committed else None
    out = chunk_command(
        cfg,
        _one(cfg, args),
        args.run_id,
        args.date or dt.datetime.now(dt.UTC).date(),
        args.chunk,
        _plan_arg(args.plan),
        committed,
        _cursor_arg(args.cursor),
    )
    _emit(out, args)
    return 0


def cmd_finalize(args: argparse.Namespace) -> int:
    from rivet.commands.finalize import finalize_command, read_ledger

    cfg = _load(args)
    plan_doc = _plan_arg(args.plan)
    if args.expect_chunks is not None and plan_doc.get("chunk_count") not in (None, args.expect_chunks):
        raise UsageError(f"--expect-chunks {args.expect_chunks} disagrees with the plan's {plan_doc['chunk_count']}")
    out = finalize_command(
        cfg,
        _one(cfg, args),
        args.run_id,
        args.date or dt.datetime.now(dt.UTC).date(),
        read_ledger(args.ledger),
        args.started_at,
        plan_doc,
        args.force,
        _cursor_arg(args.cursor),
    )
    _emit(out, args)
    return 0


def _plan_arg(text: str) -> dict[str, Any]:
    """`--plan`: the JSON `rivet plan` printed, inline or as @path."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--plan {text}: {exc.strerror}") from None
    plan = _json_arg(text, "--plan")
    if not isinstance(plan, dict):
        raise UsageError("--plan must be the JSON object printed by `rivet plan`")
    return plan


def _cursor_arg(text: str | None) -> Any:
    from rivet.contract import values

    if not text:
        return None
    try:
        return values.decode(_json_arg(text, "--cursor"))
    except ValueError as exc:
        raise UsageError(f"--cursor: {exc}") from None


def _json_arg(text: str, name: str) -> Any:
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


def _print_validation(result: dict[str, Any]) -> None:
    for e in result["exports"]:
        v = e["verification"]
        verdict = "LEGACY (no manifest, not certified)" if v["legacy_run"] else ("PASSED" if v["passed"] else "FAILED")
        print(f"{e['export_name']}: {verdict}  {e['resolved_prefix']}")
        if v["manifest_found"]:
            print(
                f"  parts verified {v['parts_verified']} (md5 {v['parts_md5_verified']}), failed {v['parts_failed']};"
                f" _SUCCESS consistent: {v['success_marker_consistent']};"
                f" manifest self-consistent: {v['manifest_self_consistent']}"
            )
        for f in v["failures"]:
            detail = ", ".join(f"{k}={val}" for k, val in f.items() if k != "kind")
            print(f"  - {f['kind']}: {detail}")
    for err in result["errors"]:
        print(f"{err['export_name']}: ERROR {err['message']}")


def cmd_validate(args: argparse.Namespace) -> int:
    cfg = _load(args, need_source=False)
    codes: list[int] = []
    result = validate_exports(cfg, _selected(cfg, args), Target.of(args), codes)
    if args.format == "json":
        _emit(result, args)
    else:
        _print_validation(result)
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
    cfg = _load(args)
    report = _reconcile_one(cfg, _one(cfg, args), Target.of(args))
    if args.format == "json":
        _emit(report, args)
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

    cfg = _load(args)
    exp = _one(cfg, args)
    if args.report:
        report = _json_arg(Path(args.report).read_text(encoding="utf-8"), "--report")
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
        _emit(out, args)
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


def main(argv: Sequence[str] | None = None) -> int:
    args: argparse.Namespace | None = None
    try:
        signals.install()  # SIGTERM aborts uploads and exits retryably instead of killing mid-upload
        args = build_parser().parse_args(argv)
        started = time.monotonic()
        code = COMMANDS[args.command](args)
        log("command_done", command=args.command, exit=code, seconds=round(time.monotonic() - started, 3))
        return code
    except RivetError as exc:
        message = scrub(exc.message)
        print(f"rivet: error: {message}", file=sys.stderr)
        reason = getattr(exc, "reason", None)
        _emit_error(args, exc.kind, exc.permanent, message, exc.exit_code, reason)
        return exc.exit_code
    except signals.Terminated as exc:  # SIGTERM: uploads aborted; running the command again continues
        print(f"rivet: {exc}", file=sys.stderr)
        _emit_error(args, "terminated", False, str(exc), EXIT_RETRYABLE)
        return EXIT_RETRYABLE
    except KeyboardInterrupt:
        print("rivet: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: one line (traceback with RIVET_DEBUG=1), never secrets
        if os.environ.get("RIVET_DEBUG"):
            traceback.print_exc()
        message = scrub(f"internal error: {type(exc).__name__}: {exc}")
        print(f"rivet: error: {message} (rerun with RIVET_DEBUG=1 for a traceback)", file=sys.stderr)
        code = exit_code_for(exc)
        _emit_error(args, "internal", False, message, code)
        return code


def _emit_error(
    args: argparse.Namespace | None, kind: str, permanent: bool, message: str, code: int, reason: str | None = None
) -> None:
    """The JSON error document (stdout and the termination message) for the commands whose output scripts and
    the operator read: plan, chunk, finalize, and any command run with --format json."""
    if args is None or not (args.command in ("plan", "chunk", "finalize") or getattr(args, "format", "") == "json"):
        return
    error: dict[str, Any] = {"kind": kind, "permanent": permanent, "message": message, "exit_code": code}
    if kind != "internal" and kind != "terminated":
        error["reason"] = reason
    try:
        _emit({"ok": False, "error": error}, args)
    except Exception as exc:  # reporting must not turn a failure into a crash (e.g. stdout closed)
        log("error_report_failed", level="warning", error=f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
