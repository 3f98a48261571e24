"""Keep credentials out of every message: URLs lose their user info, known secret values are masked."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_URL_RE = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^/@\s]+)@")
_QUERY_SECRET_RE = re.compile(r"(?i)\b(password|passwd|pwd|sig|secret|token|key)=([^&\s]+)")


def redact_url(url: str) -> str:
    """`postgresql://u:p@h/db` -> `postgresql://***@h/db`; query secrets such as `password=` masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = _QUERY_SECRET_RE.sub(lambda m: f"{m.group(1)}=***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask user info in any URL inside `text`, `key=value` secrets, and each known secret value."""
    text = _URL_RE.sub(lambda m: m.group(1) + "***@", text)
    text = _QUERY_SECRET_RE.sub(lambda m: f"{m.group(1)}=***", text)
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text
