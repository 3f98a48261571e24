"""What `rivet` prints: JSON for scripts on stdout, the Kubernetes termination message (under 4 KiB), the
human validation report, and the JSON error document.

JSON documents are machine data with a few free-text fields: only those (`rivet.redact.FREE_TEXT_FIELDS`:
`message`, `error`, `hint`, `note`, `detail`) are redacted. Commit records (chunk, key, rows, size_bytes,
fingerprints, content_md5, key_range, max_cursor), plans, resolved prefixes, run ids and digests are
printed verbatim: the operator records a chunk Job's termination message as its commit and finalize
looks for the part at that key, so a key masked because a password shares `part` or `000001` with it
would fail the run."""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path
from typing import Any

from rivet.log import log, scrub_obj

TERMINATION_LIMIT = 4096


def emit(obj: dict[str, Any], args: argparse.Namespace, stream: Any = None) -> None:
    """JSON for scripts (and the termination message): the free-text fields are redacted before serialising
    and everything else is kept byte for byte (see the module docstring; never redact the JSON text,
    which would mangle values such as a base64 MD5 that happens to contain `/sig=`)."""
    text = json.dumps(scrub_obj(obj), default=str, separators=(",", ":"))
    print(text, file=stream or sys.stdout, flush=True)
    if getattr(args, "termination_log", None):
        write_termination(args.termination_log, json.dumps(scrub_obj(compact(obj)), default=str, separators=(",", ":")))


def compact(obj: dict[str, Any], keep: int = 5) -> dict[str, Any]:
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


def write_termination(path: str, text: str) -> None:
    """Kubernetes keeps at most 4 KiB of the termination message: trim rather than lose the record. A
    commit record's `key_range` is dropped, never shortened (finalize takes it from the plan, and a shortened
    one would reach the manifest as text); the Job's own remarks are shortened."""
    if len(text.encode()) > TERMINATION_LIMIT:
        obj = json.loads(text)
        for key in ("quarantined", "key_range", "error"):
            if key in obj and len(text.encode()) > TERMINATION_LIMIT:
                obj[key] = None if key == "key_range" else str(obj[key])[:512]
                text = json.dumps(obj, separators=(",", ":"))
        text = text[: TERMINATION_LIMIT - 1]
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        log("termination_log_failed", level="warning", path=path, error=exc.strerror)


def resources() -> dict[str, Any]:
    return {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def print_validation(result: dict[str, Any]) -> None:
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


def emit_error(
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
        emit({"ok": False, "error": error}, args)
    except Exception as exc:  # reporting must not turn a failure into a crash (e.g. stdout closed)
        log("error_report_failed", level="warning", error=f"{type(exc).__name__}: {exc}")
