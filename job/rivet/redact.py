"""Keep credentials out of every message: URLs lose their user info, known secret values are masked.

Two layers: patterns (user info in URLs, `password=`-style pairs) catch what nobody registered, and
known values (`secret_values`) catch a secret wherever it turns up, including the pieces a URL parser
makes of a password that holds `/`, `#`, `?`, `@` or `:` unencoded. Structured output is
redacted field by field (`redact_obj`) before it is serialised: masking serialised JSON would also
rewrite values that merely look like a secret pair (a base64 MD5 holding `/sig=`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

# Database URLs: the user info runs to the LAST `@` of the token, so a password holding `/`, `?`, `#`
# or `@` unencoded is masked whole. Other schemes (s3://, https://): the user info is what precedes
# the first `@` of the authority.
_DB_URL_RE = re.compile(r"(?i)\b((?:postgres(?:ql)?|mysql|mariadb)://)(\S*)@")
_URL_RE = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^/@\s]+)@")
# `password=...` pairs in query strings and libpq/ODBC connection strings. Not after `/`, `+` or `=`:
# those belong to base64 and paths (an MD5 like `ab/sig=cd==`, a prefix like `out/key=1/`).
_QUERY_SECRET_RE = re.compile(r"(?i)(?<![/+=])\b(password|passwd|pwd|sig|secret|token|key)=([^&\s]+)")
# Where URL parsers cut an unencoded password; each piece of 3+ characters is masked on its own.
_URL_DELIMS = re.compile(r"[/#?@:]")
MIN_SECRET_LEN = 3
MASK = "***"


def redact_url(url: str) -> str:
    """`postgresql://u:p@h/db` -> `postgresql://***@h/db`; query secrets such as `password=` masked."""
    if not _looks_well_formed(url):
        return redact_text(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = _QUERY_SECRET_RE.sub(lambda m: f"{m.group(1)}={MASK}", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _looks_well_formed(url: str) -> bool:
    """At most one `@`, inside the authority, and no fragment: urlsplit then sees the user info we see."""
    rest = url.split("://", 1)[-1]
    authority_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    return "#" not in rest and rest.count("@") == rest[:authority_end].count("@") <= 1


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask user info in any URL inside `text`, `key=value` secrets, and each known secret value."""
    text = _DB_URL_RE.sub(lambda m: m.group(1) + MASK + "@", text)
    text = _URL_RE.sub(lambda m: m.group(1) + MASK + "@", text)
    text = _QUERY_SECRET_RE.sub(lambda m: f"{m.group(1)}={MASK}", text)
    return mask_values(text, secrets)


def mask_values(text: str, secrets: Iterable[str]) -> str:
    """Replace each known secret value (3+ characters), longest first so a piece never splits a whole."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def redact_obj(obj: Any, secrets: Iterable[str] = ()) -> Any:
    """`obj` with every string in it redacted on its own (dict keys kept): redact, then serialise."""
    known = tuple(secrets)
    if isinstance(obj, str):
        return redact_text(obj, known)
    if isinstance(obj, dict):
        return {key: redact_obj(value, known) for key, value in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [redact_obj(value, known) for value in obj]
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    return redact_text(str(obj), known)  # what json.dumps(default=str) would print, redacted


def url_password(url: str) -> str | None:
    """The password of a database URL as written (not decoded), even when unencoded `/`, `#`, `?` or
    `@` make URL parsers cut it: everything between the first `:` of the user info and the last `@`
    that precedes a plausible host. None when the URL has no password."""
    if "://" not in url:
        return None
    rest = url.split("://", 1)[1]
    at = _userinfo_end(rest)
    if at < 0:
        return None
    userinfo = rest[:at]
    if ":" not in userinfo:
        return None
    return userinfo.split(":", 1)[1] or None


def _userinfo_end(rest: str) -> int:
    """Index of the `@` ending the user info of `rest` (a URL after `scheme://`), or -1.

    The last `@` before the first whitespace wins: over-reaching into a query that holds an `@` only
    masks more."""
    token = rest.split(None, 1)[0] if rest.strip() else ""
    return token.rfind("@")


def secret_values(value: str) -> tuple[str, ...]:
    """What to mask for a registered secret: the value itself and, when it is a URL with a password,
    everything `password_pieces` gives for that password."""
    password = url_password(value)
    return (value, *password_pieces(password)) if password else (value,)


def password_pieces(password: str) -> tuple[str, ...]:
    """A URL password as written, decoded and percent-encoded, plus the pieces of 3+ characters
    between URL delimiters (`/ # ? @ :`): what a parser that cut the URL there would quote back."""
    decoded = unquote(password)
    out = {password, decoded, quote(decoded, safe="")}
    for form in (password, decoded):
        out.update(p for p in _URL_DELIMS.split(form) if len(p) >= MIN_SECRET_LEN)
    return tuple(sorted(s for s in out if s))
