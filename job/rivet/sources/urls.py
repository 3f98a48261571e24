"""Split a source URL into the parts each driver wants, and a redacted label for messages."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from rivet.errors import SourceError

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
    def secrets(self) -> tuple[str, ...]:
        """Values to mask in any driver message (drivers may echo the URI)."""
        return tuple(s for s in (self.password, self.raw) if s)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"


def parse_url(url: str, schemes: frozenset[str], engine: str) -> DbUrl:
    """Parse `scheme://user:password@host:port/database`; reject other schemes with the accepted ones."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SourceError(f"{engine}: malformed source URL ({exc})") from None
    if parts.scheme not in schemes:
        accepted = " or ".join(f"{s}://" for s in sorted(schemes))
        raise SourceError(f"{engine}: source URL must start with {accepted}, got {parts.scheme or '(none)'}://")
    return DbUrl(
        scheme=parts.scheme,
        host=parts.hostname or "localhost",
        port=port or _DEFAULT_PORTS[parts.scheme],
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


def with_pg_liveness(url: str) -> str:
    """`url` with PG_LIVENESS added as query parameters; any the URL already sets are kept as given."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = {key for key, _ in query}
    query += [(key, value) for key, value in PG_LIVENESS.items() if key not in given]
    # %20 for spaces: libpq decodes %XX in URIs but not `+`
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))
