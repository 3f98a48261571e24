"""Structured logs on stderr: one `key=value` line per event (or JSON with RIVET_LOG_FORMAT=json).

Every log value passes through redaction; callers register secret values with `add_secret` the moment
they read them. `scrub` masks a message, `scrub_obj` the free-text fields of a document before it is
serialised (machine data in it is kept as it is: see `rivet.redact.redact_obj`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
from typing import Any

from rivet.redact import redact_obj, redact_text, secret_pieces, secret_values

_secrets: set[str] = set()  # masked wherever they occur in free text
_pieces: set[str] = set()  # pieces of a URL password: masked only where they stand as credentials
_lock = threading.Lock()  # one line at a time on stderr
_secrets_lock = threading.Lock()


def add_secret(value: str | None) -> None:
    """Mask `value` in every message from now on; for a database URL, also its password in every
    spelling (`rivet.redact.secret_values`), and the pieces of it a URL parser could quote where they
    stand as credentials (`rivet.redact.secret_pieces`)."""
    if value:
        with _secrets_lock:
            _secrets.update(secret_values(value))
            _pieces.update(secret_pieces(value))


def secrets() -> tuple[str, ...]:
    with _secrets_lock:
        return tuple(_secrets)


def pieces() -> tuple[str, ...]:
    with _secrets_lock:
        return tuple(_pieces)


def scrub(text: str) -> str:
    """Free text (a message, a log value) with every credential masked."""
    return redact_text(text, secrets(), pieces())


def scrub_obj(obj: Any) -> Any:
    """`obj` (dicts, lists, scalars) with its free-text fields redacted and its machine data (part keys,
    commit records, prefixes, digests) kept byte for byte: see `rivet.redact.redact_obj`. Call before
    json.dumps, never redact the serialised text (that would also rewrite values such as a base64 MD5)."""
    return redact_obj(obj, secrets(), pieces())


def _fmt(value: Any) -> str:
    text = scrub(str(value))
    return json.dumps(text) if (not text or any(c in text for c in ' "=\n\t')) else text


def log(event: str, level: str = "info", **fields: Any) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    if os.environ.get("RIVET_LOG_FORMAT") == "json":
        line = json.dumps({"ts": now, "level": level, "event": event, **{k: scrub(str(v)) for k, v in fields.items()}})
    else:
        line = " ".join(
            [f"ts={now}", f"level={level}", f"event={event}"] + [f"{k}={_fmt(v)}" for k, v in fields.items()]
        )
    with _lock:
        print(line, file=sys.stderr, flush=True)
