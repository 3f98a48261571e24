"""Keep credentials out of every message: URLs lose their user info, known secret values are masked.

Only free text is ever rewritten: messages, errors, hints, log lines. Machine data (part keys, paths,
commit records, plans, prefixes, run ids, digests) passes through verbatim, whatever it happens to
contain: a password such as `Qz:000001` or `parquet` shares characters with part keys, and a masked
key is a lost part (the operator would record `part-***.parquet` and finalize would find it missing).

Three layers act on free text:

- patterns (user info in URLs, `password=`-style pairs) catch what nobody registered;
- known secret values (`secret_values`: a registered value and, for a URL, its password as written,
  decoded and percent-encoded) are masked wherever they occur, always whole;
- the pieces a URL parser makes of a password cut at `/ # ? @ :` (`secret_pieces`) are masked only
  where they stand as credentials: right before the `@` that ends a user info (`Tv@127.0.0.1`) or as
  the value of a `password=` / `password:` pair. A bare piece (`part`, `000001`) in arbitrary text is
  left alone: ordinary words and numbers are no secret.

Structured output is redacted field by field (`redact_obj`): only the `FREE_TEXT_FIELDS` of a document
are rewritten, everything else is kept byte for byte.
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
# Where URL parsers cut an unencoded password.
_URL_DELIMS = re.compile(r"[/#?@:]")
# What may stand right before a piece that ends a user info: the start of a token (text start, blank,
# quote, bracket, `,` `;` `=`) or a URL delimiter (`//user:piece@`, `piece@piece@host`).
_PIECE_BEFORE = r"(?:^|(?<=[\s'\"(\[<{,;=/#?@:]))"
# A `password=`, `password: ` or `password='` pair (libpq conninfo, ODBC, driver messages).
_PASSWORD_PAIR = r"(?i:\b(?:password|passwd|pwd)\s*[=:]\s*['\"]?)"
MIN_SECRET_LEN = 3
MASK = "***"

# The fields of an output document (JSON on stdout, the termination message) that hold prose and may
# quote a driver, an SDK or a URL: these are redacted. Every other field is machine data that the
# operator, finalize or a script reads back (commit records with their key, rows, size_bytes,
# fingerprints, md5, key_range and max_cursor; plans; resolved prefixes; run ids; digests): it is
# produced by rivet itself, never holds a credential, and must survive byte for byte.
FREE_TEXT_FIELDS = frozenset({"message", "error", "hint", "note", "detail"})


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


def redact_text(text: str, secrets: Iterable[str] = (), pieces: Iterable[str] = ()) -> str:
    """Free text with user info in any URL, `key=value` secrets and each known secret value masked, and
    each piece of a password masked where it stands as a credential (see `mask_pieces`)."""
    text = _DB_URL_RE.sub(lambda m: m.group(1) + MASK + "@", text)
    text = _URL_RE.sub(lambda m: m.group(1) + MASK + "@", text)
    text = _QUERY_SECRET_RE.sub(lambda m: f"{m.group(1)}={MASK}", text)
    return mask_pieces(mask_values(text, secrets), pieces)


def mask_values(text: str, secrets: Iterable[str]) -> str:
    """Replace each known secret value (3+ characters) wherever it occurs, longest first."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def mask_pieces(text: str, pieces: Iterable[str]) -> str:
    """Mask each piece (3+ characters) of a password only where it stands as a credential: right before
    the `@` that ends a user info, after the start of a token or a URL delimiter (`"Tv@127.0.0.1"`,
    `rivet:Kq7@host`), or as the value of a `password=` / `password:` pair. Never a bare substring:
    `part` in `part-000001.parquet` or `000001` in a date is left as it is."""
    for piece in sorted({p for p in pieces if p and len(p) >= MIN_SECRET_LEN}, key=len, reverse=True):
        p = re.escape(piece)
        text = re.sub(rf"{_PIECE_BEFORE}{p}(?=@)", MASK, text)
        text = re.sub(rf"({_PASSWORD_PAIR}){p}(?![^\s'\"&;,)\]}}])", lambda m: m.group(1) + MASK, text)
    return text


def redact_obj(obj: Any, secrets: Iterable[str] = (), pieces: Iterable[str] = ()) -> Any:
    """A copy of the document `obj` (dicts, lists, scalars) in which only free text is redacted.

    A string is redacted when the nearest dict key above it is one of `FREE_TEXT_FIELDS` (`message`,
    `error`, ...; a dict under such a key is walked by the same rule, so `error.message` is redacted
    and `error.kind` is not), or when `obj` itself is a bare string. Everything else is returned as it
    is: redacting machine data would rewrite the part keys, fingerprints and digests that the operator
    and finalize read back, whenever a secret shares characters with them. Redact before serialising,
    never the serialised text (that would also rewrite a base64 MD5 that looks like `/sig=`).
    Containers come back as dicts and lists; other values (a Path) are stringified, as json.dumps(
    default=str) would print them."""
    return _redact(obj, tuple(secrets), tuple(pieces), free_text=True)


def _redact(obj: Any, secrets: tuple[str, ...], pieces: tuple[str, ...], free_text: bool) -> Any:
    if isinstance(obj, dict):
        return {key: _redact(value, secrets, pieces, key in FREE_TEXT_FIELDS) for key, value in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_redact(value, secrets, pieces, free_text) for value in obj]
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    text = obj if isinstance(obj, str) else str(obj)
    return redact_text(text, secrets, pieces) if free_text else text


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
    """What to mask wherever it occurs for a registered secret: the value itself and, when it is a URL
    with a password, that password in every spelling (`password_spellings`)."""
    password = url_password(value)
    return (value, *password_spellings(password)) if password else (value,)


def secret_pieces(value: str) -> tuple[str, ...]:
    """For a URL with a password: the pieces of it to mask where they stand as credentials."""
    password = url_password(value)
    return password_pieces(password) if password else ()


def password_spellings(password: str) -> tuple[str, ...]:
    """A URL password as written, decoded, and percent-encoded: masked whole, wherever it occurs."""
    decoded = unquote(password)
    return tuple(sorted(s for s in {password, decoded, quote(decoded, safe="")} if s))


def password_pieces(password: str) -> tuple[str, ...]:
    """The pieces of 3+ characters between URL delimiters (`/ # ? @ :`) of a password as written and
    decoded: what a parser that cut the URL there could quote back. Not the whole spellings (see
    `password_spellings`), and masked only in a credential context (see `mask_pieces`)."""
    whole = set(password_spellings(password))
    out: set[str] = set()
    for form in (password, unquote(password)):
        out.update(p for p in _URL_DELIMS.split(form) if len(p) >= MIN_SECRET_LEN and p not in whole)
    return tuple(sorted(out))
