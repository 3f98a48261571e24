"""Split a source URL into the parts each driver wants; refuse, without quoting it, a URL that drivers
would cut in different places (an unencoded `/`, `#`, `?` or `@` in the password)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

from rivet.errors import SourceError
from rivet.redact import password_pieces, password_spellings, secret_values

POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})
MYSQL_SCHEMES = frozenset({"mysql", "mariadb"})
_DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306}


@dataclass(frozen=True)
class DbUrl:
    """Decoded URL parts. `password` is only ever handed to drivers and to redaction, never printed."""

    scheme: str
    host: str
    port: int
    user: str
    password: str
    database: str
    raw: str

    def __repr__(self) -> str:  # keep the password out of tracebacks and logs
        return f"DbUrl({self.scheme}://{self.user}@{self.host}:{self.port}/{self.database})"

    @property
    def spellings(self) -> tuple[str, ...]:
        """Values to mask wherever a driver message holds them (drivers may echo the URI): the URL and
        the password in every spelling."""
        extra = password_spellings(self.password) if self.password else ()
        return tuple(sorted({*secret_values(self.raw), *extra}))

    @property
    def pieces(self) -> tuple[str, ...]:
        """The password's pieces between URL delimiters: masked only where they stand as credentials
        (`rivet.redact.mask_pieces`), never as bare words, which may be part of a key or a date."""
        return password_pieces(self.password) if self.password else ()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Everything redaction knows of this URL: `spellings` and `pieces`."""
        return tuple(sorted({*self.spellings, *self.pieces}))

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def params(self) -> dict[str, str]:
        """The URL's query parameters (the last one wins, as in libpq). Never printed: they may hold secrets."""
        return dict(parse_qsl(urlsplit(self.raw).query, keep_blank_values=True))


# Never quote the URL, nor any part of it, in these: a malformed URL is malformed because the parser
# cut it in the wrong place, so any "host", "port" or "path" it reports may be a piece of the password.
ENCODE_HINT = (
    "percent-encode the user name and password, e.g. "
    "python3 -c 'import urllib.parse,sys;print(urllib.parse.quote(sys.argv[1], safe=\"\"))' 'p@ss' "
    "prints p%40ss"
)


def malformed(engine: str, problem: str) -> SourceError:
    return SourceError(f"{engine}: the source URL is malformed: {problem}; {ENCODE_HINT}", permanent=True)


def _authority_end(rest: str) -> int:
    """Where the authority of `rest` (a URL after `scheme://`) ends: its first `/`, `?` or `#`."""
    return min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))


def check_delimiters(url: str, engine: str) -> None:
    """Refuse URLs whose user info holds an unencoded `/`, `#`, `?`, `@` or a stray `%`.

    URL parsers disagree on such URLs (Python and libpq cut the user info at different places) and
    their messages then quote a piece of the password as a host, port or database. One `@` may
    appear, inside the authority; `#` nowhere (a fragment means nothing to a database URL)."""
    rest = url.split("://", 1)[1] if "://" in url else url
    end = _authority_end(rest)
    if "#" in rest:
        raise malformed(engine, "it holds an unencoded '#' (write it as %23)")
    if rest.count("@") > 1 or "@" in rest[end:]:
        raise malformed(
            engine,
            "an unencoded '/', '?', '#' or '@' in the user name or password (or an '@' after the host) "
            "splits it in the wrong place",
        )
    userinfo = rest[: rest.find("@")] if "@" in rest else ""
    if re.search(r"%(?![0-9A-Fa-f]{2})", userinfo):
        raise malformed(engine, "the user name or password holds a '%' that is not a %XX escape (write it as %25)")


def parse_url(url: str, schemes: frozenset[str], engine: str) -> DbUrl:
    """Parse `scheme://user:password@host:port/database`; reject other schemes with the accepted ones.

    No message quotes any part of the URL but its scheme: see `check_delimiters`."""
    accepted = " or ".join(f"{s}://" for s in sorted(schemes))
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in schemes:
        given = f", got {scheme}://" if re.fullmatch(r"[a-z][a-z0-9+.-]{0,19}", scheme) else ""
        raise SourceError(f"{engine}: source URL must start with {accepted}{given}")
    check_delimiters(url, engine)
    try:
        parts = urlsplit(url)
        port = parts.port
        hostname = parts.hostname
    except ValueError:
        raise malformed(
            engine,
            "the part after the '@' is not host[:port] (the port must be a number up to 65535, "
            "an IPv6 address needs [brackets]); if there is no '@', the URL has no user:password@",
        ) from None
    return DbUrl(
        scheme=scheme,
        host=hostname or "localhost",
        port=port or _DEFAULT_PORTS[scheme],
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=unquote(parts.path.lstrip("/")),
        raw=url,
    )


# libpq settings that turn a silent network into an error instead of a hang: keepalives notice a peer
# that stopped answering while we wait for rows, tcp_user_timeout bounds how long sent bytes may stay
# unacknowledged, connect_timeout bounds the handshake. A read that fails is retried (the chunk is
# transient); a read that hangs holds a Job, and an operator slot, until someone notices.
PG_LIVENESS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "6",
    "tcp_user_timeout": "120000",
}


# The same for ConnectorX's MySQL reader (the Rust mysql crate's URL parameters; it has no read timeout,
# see `rivet.sources.liveness`). prefer_socket=false: on a loopback host the crate would otherwise switch to
# the server's Unix socket, around any proxy, TLS and the liveness guard.
MYSQL_CX_LIVENESS = {
    "tcp_connect_timeout_ms": "10000",
    "tcp_keepalive_time_ms": "30000",
    "tcp_keepalive_probe_interval_secs": "10",
    "tcp_keepalive_probe_count": "6",
    "tcp_user_timeout_ms": "120000",
    "prefer_socket": "false",
}


def with_params(
    url: str, defaults: dict[str, str], forced: dict[str, str] | None = None, drop: tuple[str, ...] = ()
) -> str:
    """`url` with `defaults` added where the URL does not set them, `forced` set whatever the URL says
    (callers check conflicts first), and the keys in `drop` removed. Everything else, the user info, host
    and the URL's own parameters included, is kept byte for byte."""
    forced = forced or {}
    parts = urlsplit(url)
    kept = [p for p in parts.query.split("&") if p and _key(p) not in forced and _key(p) not in drop]
    given = {_key(p) for p in kept}
    added = [(k, v) for k, v in defaults.items() if k not in given and k not in forced] + list(forced.items())
    # %20 for spaces: libpq decodes %XX in URIs but not `+`
    query = "&".join(kept + [f"{quote(k, safe='')}={quote(v, safe='/')}" for k, v in added])
    return urlunsplit(parts._replace(query=query))


def with_endpoint(url: str, host: str, port: int) -> str:
    """`url` pointing at host:port instead; user info, path and parameters kept byte for byte."""
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}:{port}"))


def _key(piece: str) -> str:
    return unquote(piece.split("=", 1)[0])


def with_pg_liveness(url: str) -> str:
    """`url` with PG_LIVENESS added as query parameters; any the URL already sets are kept as given."""
    return with_params(url, PG_LIVENESS)


def pg_url(url: DbUrl, tls_params: dict[str, str]) -> str:
    """The libpq URI for both PostgreSQL connections (psycopg and ADBC): liveness settings, then TLS."""
    return with_params(url.raw, PG_LIVENESS, tls_params)


def cx_mysql_url(url: DbUrl, tls_params: dict[str, str], drop: tuple[str, ...] = ()) -> str:
    """ConnectorX's URL: scheme mysql:// (it knows no mariadb://), liveness settings, then TLS (`drop`: the
    URL's own TLS keys, replaced by the effective ones)."""
    return with_params("mysql" + url.raw[len(url.scheme) :], MYSQL_CX_LIVENESS, tls_params, drop)
