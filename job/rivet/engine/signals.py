"""SIGTERM becomes an exception, so a `rivet run` or `rivet chunk` that is told to stop aborts its uploads.

Kubernetes (a deleted or preempted chunk Job) and process supervisors stop a process with SIGTERM, then
SIGKILL after a grace period. Left to Python's default, SIGTERM kills the process on the spot: open S3
multipart uploads stay (billed) and local temp files stay. `install()` (called once by the CLI) makes the
first SIGTERM raise `Terminated` in the main thread and sets a flag that worker threads poll between
batches (`check()`), so every pipeline takes its abort path: the upload is aborted, the temp file removed.

`Terminated` is a KeyboardInterrupt, so it unwinds like Ctrl-C: no `except Exception` or `except
RivetError` swallows it, `rivet run` marks the run `interrupted` (resumable), and the CLI exits with
EXIT_RETRYABLE and a non-permanent error, which the operator retries. A watchdog ends the process (same
exit code) after `RIVET_TERMINATION_GRACE_S` (default 20 s, under Kubernetes' default 30 s grace) if the
cleanup hangs.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType

from rivet.errors import EXIT_RETRYABLE
from rivet.log import log

GRACE_ENV = "RIVET_TERMINATION_GRACE_S"
DEFAULT_GRACE_S = 20.0

_stop = threading.Event()


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop now, abort uploads, exit with a retryable (not permanent) failure."""

    def __init__(self) -> None:
        super().__init__("terminated by SIGTERM: uploads aborted; resume the run to continue")


def install() -> None:
    """Route SIGTERM to `Terminated`; only the main thread can install a handler (no-op elsewhere)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _handler)


def terminating() -> bool:
    return _stop.is_set()


def check() -> None:
    """Raise `Terminated` in the calling thread once SIGTERM has arrived (worker threads poll this)."""
    if _stop.is_set():
        raise Terminated()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _stop.is_set():
        return  # a second SIGTERM must not interrupt the cleanup the first one started
    _stop.set()
    threading.Thread(target=_watchdog, name="rivet-sigterm", daemon=True).start()
    raise Terminated()


def _watchdog() -> None:
    """Logs from its own thread (the handler must not take the log lock the main thread may hold), then
    ends the process if aborting the uploads takes longer than the grace period."""
    try:
        grace = float(os.environ.get(GRACE_ENV) or DEFAULT_GRACE_S)
    except ValueError:
        grace = DEFAULT_GRACE_S
    log("terminating", level="warning", signal="SIGTERM", grace_s=grace, note="aborting uploads")
    time.sleep(grace)
    log("terminate_grace_exceeded", level="error", grace_s=grace)
    os._exit(EXIT_RETRYABLE)
