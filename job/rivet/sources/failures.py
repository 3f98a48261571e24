"""Turn driver exceptions into one-line SourceErrors: retryable or not, and never with credentials.

Drivers rarely give a SQLSTATE for connection failures, and ADBC/ConnectorX messages may echo the URI,
so classification reads the text and every message is redacted: the password in every spelling wherever
it occurs (`DbUrl.spellings`), the pieces a URL parser could cut it into only where they stand as
credentials (`DbUrl.pieces`; a bare `part` or `000001` may be a key or a date). URLs that parsers
would cut in different places never reach a driver: `parse_url` refuses them first.
"""

from __future__ import annotations

import re

from rivet.errors import SourceError
from rivet.redact import redact_text
from rivet.sources import liveness
from rivet.sources.urls import DbUrl

_UNREACHABLE = (
    "connection refused",
    "could not connect",
    "can't connect",
    "timeout expired",
    "timed out waiting",
    "no route to host",
    "network is unreachable",
    "could not translate host name",
    "name or service not known",
    "server closed the connection",
    "connection reset",
    "connection timed out",
    "lost connection",
    "server has gone away",
    "broken pipe",
    "temporary failure in name resolution",
    "could not receive data",
)
_AUTH = (
    "password authentication failed",
    "access denied for user",
    "no password supplied",
    "authentication failed",
    "no pg_hba.conf entry",
)
_TIMEOUT = ("statement timeout", "max_statement_time", "maximum statement execution time")
# TLS refused: the certificate or host name did not verify, or one side will not speak TLS. Permanent:
# a retry meets the same certificate. Checked before _UNREACHABLE, whose phrases some of these contain.
_TLS = (
    "certificate verify failed",
    "does not match host name",
    "hostname mismatch",
    "ip address mismatch",
    "root certificate file",
    "server does not support ssl",
    "requires secure connection but server does not have",
    "ssl is required but the server doesn't support it",
    "tlserror",
    "wrong version number",
    "unsupported ssl-mode",
)
# What a blocking read says when its socket timeout (armed by `liveness`) expires.
_TIMED_OUT_READ = ("resource temporarily unavailable", "os error 11", "would block")
# What a driver says when the guard (`liveness`) cut its connection under it.
_DROPPED = (
    "server closed the connection",
    "connection reset",
    "lost connection",
    "broken pipe",
    "eof",
    "connection closed",
    "connectionclosed",
    "ssl syscall",
    "failed to fill whole buffer",
    "no connection to the server",
    "server has gone away",
    "could not receive data",
    "io error",
)
# SQLSTATE classes/codes worth a retry: connection, shutdown/cancel, serialization, deadlock, resources.
_RETRYABLE_SQLSTATE = ("08", "57P", "40001", "40P01", "53")
_MYSQL_RETRYABLE = {1040, 1205, 1213, 2002, 2003, 2006, 2013, 1927}
_MYSQL_AUTH = {1045, 1698}
_MYSQL_NO_DB = {1049}
_MYSQL_TIMEOUT = {1969, 3024}
_CX_ERROR = re.compile(r"ERROR (\d+) \(([0-9A-Z]{5})\): (.*?)(?: \}|$)")
_PG_NO_DB = re.compile(r'fatal:\s+database ".*" does not exist')
# The SQLSTATE where a driver only kept the text (ADBC's streamed COPY reads raise without `sqlstate`).
_SQLSTATE_IN_TEXT = re.compile(r"SQLSTATE[\s:=\[]*([0-9A-Z]{5})")
# What the server says for the retryable states when no SQLSTATE came with it: an administrator or a
# failover ended the backend (57P01-57P03), a hot standby cancelled the read (40001), serialization and
# deadlock failures (40001, 40P01).
_PG_RETRYABLE_TEXT = (
    "terminating connection due to administrator command",
    "terminating connection due to conflict with recovery",
    "canceling statement due to conflict with recovery",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "could not serialize access",
    "deadlock detected",
)
_PG_ERROR = re.compile(r"(?:ERROR|FATAL):\s+(.*)")


def one_line(text: str, url: DbUrl) -> str:
    """Redacted, whitespace-collapsed, so logs and termination messages stay one line and secret-free."""
    return redact_text(" ".join(text.split()), url.spellings, url.pieces)


def unreachable(engine: str, url: DbUrl, detail: str) -> SourceError:
    return SourceError(
        f"{engine} at {url.endpoint} is unreachable ({one_line(detail, url)}): "
        "check that the server is running and reachable",
        permanent=False,
    )


def auth_failed(engine: str, url: DbUrl) -> SourceError:
    # MariaDB refuses a plaintext login to a server with require_secure_transport as "access denied"
    tls = "; a server that requires TLS refuses plaintext logins the same way: set source.tls.mode"
    return SourceError(
        f"{engine} at {url.endpoint}: authentication failed for user '{url.user}' "
        "(check the password in source.url_env / password_env; inside a URL, a password holding "
        f"/ # ? @ : or % must be percent-encoded{tls if engine == 'mysql' else ''})",
        permanent=True,
    )


def tls_failed(engine: str, url: DbUrl, detail: str) -> SourceError:
    return SourceError(
        f"{engine} at {url.endpoint}: TLS failed ({one_line(detail, url)}): check source.tls.ca_file (the CA"
        " that signed the server's certificate), that the URL's host is a name the certificate holds"
        " (verify-full), and that the server has TLS enabled",
        permanent=True,
    )


def stalled(engine: str, url: DbUrl, silent_s: float | None, timeout_s: float | None) -> SourceError:
    silence = f"no data for {silent_s:g}s" if silent_s is not None else "no answer"
    limit = f"source.tuning.read_timeout_s={timeout_s:g}s" if timeout_s is not None else "source.tuning.read_timeout_s"
    return SourceError(
        f"{engine} at {url.endpoint}: the connection stalled ({silence}, past {limit}), so it was closed:"
        " the network, a proxy or the server stopped forwarding rows; the read can be retried"
        " (raise read_timeout_s if statements take longer than that to return their first row)",
        permanent=False,
    )


def _stall(engine: str, url: DbUrl, low: str) -> SourceError | None:
    """The guard cut this endpoint's connection moments ago and the driver reports a dropped connection, or
    a blocking read on an armed connection timed out (EAGAIN)."""
    stall = liveness.recent_stall(url.host, url.port)
    if stall is not None and any(s in low for s in _DROPPED):
        return stalled(engine, url, stall.silent_s, stall.timeout_s)
    timeout = liveness.timeout_for(url.host, url.port)
    if timeout is not None and any(s in low for s in _TIMED_OUT_READ):
        return stalled(engine, url, timeout, timeout)
    return None


def timed_out(engine: str, url: DbUrl, timeout_s: int, detail: str) -> SourceError:
    return SourceError(
        f"{engine}: statement cancelled after tuning.statement_timeout_s={timeout_s}s ({one_line(detail, url)})",
        permanent=False,
    )


def pg_error(exc: BaseException, url: DbUrl, timeout_s: int, doing: str) -> SourceError:
    """Classify a psycopg or ADBC PostgreSQL error."""
    text = str(exc)
    low = text.lower()
    sqlstate = str(getattr(exc, "sqlstate", None) or "")
    if sqlstate in ("28P01", "28000") or any(s in low for s in _AUTH):
        return auth_failed("postgres", url)
    if sqlstate == "3D000" or _PG_NO_DB.search(low):
        return SourceError(f"postgres at {url.endpoint}: database '{url.database}' does not exist")
    if sqlstate == "57014" or any(s in low for s in _TIMEOUT):
        return timed_out("postgres", url, timeout_s, _pg_primary(text))
    if any(s in low for s in _TLS):
        return tls_failed("postgres", url, _connect_detail(text))
    stall = _stall("postgres", url, low)
    if stall is not None:
        return stall
    if any(s in low for s in _UNREACHABLE):
        return unreachable("postgres", url, _connect_detail(text))
    if not sqlstate:
        found = _SQLSTATE_IN_TEXT.search(text)
        sqlstate = found.group(1) if found else ""
    retry = (bool(sqlstate) and sqlstate.startswith(_RETRYABLE_SQLSTATE)) or any(s in low for s in _PG_RETRYABLE_TEXT)
    return SourceError(f"postgres: {doing} failed: {one_line(_pg_primary(text), url)}", permanent=not retry)


def mysql_error(exc: BaseException, url: DbUrl, timeout_s: int, doing: str) -> SourceError:
    """Classify a PyMySQL or ConnectorX MySQL error (ConnectorX wraps the server's in its own text)."""
    code, message = _mysql_code(exc)
    low = message.lower()
    if code in _MYSQL_AUTH or (code is None and "access denied for user" in low):
        return auth_failed("mysql", url)
    if code in _MYSQL_NO_DB:
        return SourceError(f"mysql at {url.endpoint}: database '{url.database}' does not exist")
    if code in _MYSQL_TIMEOUT or any(s in low for s in _TIMEOUT):
        return timed_out("mysql", url, timeout_s, message)
    if code == 2026 or any(s in low for s in _TLS):
        return tls_failed("mysql", url, message)
    if code == 2013 and "timed out" in low:  # PyMySQL's own read_timeout
        return stalled("mysql", url, None, liveness.timeout_for(url.host, url.port))
    stall = _stall("mysql", url, low)
    if stall is not None:
        return stall
    if code in (2002, 2003) or (code is None and any(s in low for s in _UNREACHABLE)):
        return unreachable("mysql", url, message)
    retry = code in _MYSQL_RETRYABLE
    return SourceError(f"mysql: {doing} failed: {one_line(message, url)}", permanent=not retry)


def _mysql_code(exc: BaseException) -> tuple[int | None, str]:
    args = exc.args
    if len(args) >= 2 and isinstance(args[0], int):  # PyMySQL: (code, message)
        return args[0], str(args[1])
    text = str(exc)
    match = _CX_ERROR.search(text)
    if match:
        return int(match.group(1)), match.group(3)
    return None, text


def _pg_primary(text: str) -> str:
    """The server's primary message (`ERROR:  ...` line) without LINE/caret/`Query was:` noise."""
    match = _PG_ERROR.search(text)
    return match.group(1) if match else text.splitlines()[0] if text else "unknown error"


def _connect_detail(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else text
    return first.rsplit("failed: ", 1)[-1]
