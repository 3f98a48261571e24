"""The `rivet` command line: JSON for scripts on stdout, progress and logs on stderr.

Exit codes have meanings (the table is in `rivet.errors`): 0 success, 1 permanent failure, 2 usage error,
3 retryable failure, 4 integrity failure (validate, reconcile), 5 schema drift.

The package: `parser` (arguments), `args` (arguments to engine inputs), `verbs` (one function per verb),
`output` (JSON, termination message, reports).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Sequence

from rivet.cli.output import emit_error
from rivet.cli.parser import build_parser
from rivet.cli.verbs import COMMANDS
from rivet.engine import signals
from rivet.errors import EXIT_RETRYABLE, RivetError, exit_code_for
from rivet.log import log, scrub


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
        emit_error(args, exc.kind, exc.permanent, message, exc.exit_code, reason)
        return exc.exit_code
    except signals.Terminated as exc:  # SIGTERM: uploads aborted; running the command again continues
        print(f"rivet: {exc}", file=sys.stderr)
        emit_error(args, "terminated", False, str(exc), EXIT_RETRYABLE)
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
        emit_error(args, "internal", False, message, code)
        return code


__all__ = ["main"]
