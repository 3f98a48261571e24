"""Source URLs: malformed ones are refused without quoting any part of the user info, and liveness
settings are added to PostgreSQL URLs (defaults filled in, the user's own values kept)."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from rivet.errors import SourceError
from rivet.sources.urls import (
    MYSQL_SCHEMES,
    PG_LIVENESS,
    POSTGRES_SCHEMES,
    parse_url,
    with_endpoint,
    with_pg_liveness,
)


def params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_defaults_are_added_and_the_rest_of_the_url_is_untouched() -> None:
    url = "postgresql://app:p%40ss@db.example:5433/shop"
    out = with_pg_liveness(url)
    assert out.startswith("postgresql://app:p%40ss@db.example:5433/shop?")
    assert params(out) == PG_LIVENESS
    assert int(PG_LIVENESS["tcp_user_timeout"]) > 0 and PG_LIVENESS["keepalives"] == "1"


def test_the_users_own_settings_win() -> None:
    out = with_pg_liveness("postgres://u@h/db?sslmode=require&keepalives_idle=5&tcp_user_timeout=0")
    got = params(out)
    assert got["sslmode"] == "require" and got["keepalives_idle"] == "5" and got["tcp_user_timeout"] == "0"
    assert got["keepalives_count"] == PG_LIVENESS["keepalives_count"]
    assert out.count("keepalives_idle=") == 1


def test_spaces_stay_percent_encoded_for_libpq() -> None:
    # libpq decodes %XX in URIs but not `+`, so `options` with spaces must not become `+`
    out = with_pg_liveness("postgresql://u@h/db?options=-c%20search_path%3Dshop")
    assert "options=-c%20search_path%3Dshop" in out and "+" not in out


# --- malformed URLs: the message names the fix and quotes no part of the user info ---------------

ENGINES = [
    ("postgresql", POSTGRES_SCHEMES, "postgres"),
    ("mysql", MYSQL_SCHEMES, "mysql"),
]
# Each URL-special character alone, at the start, the end, and all of them together.
BAD_PASSWORDS = [
    "S3cr/tKey",
    "S3cr#tKey",
    "S3cr?tKey",
    "S3cr@tKey",
    "/S3crtKey",
    "S3crtKey#",
    "S3crtKey?",
    "@S3crtKey",
    "S3cr/t#x?y@z",
    "Zq@Wv/Xk#Jy?Hb",
    "Qm??Rt//Lp##Nw@@",
    "Kd/Kd/Kd@10.0.0.1:5432",
    "Wf?Qx=Zk&Vj=Yb",
    "Tg@10.9.8.7:1/Xq",
    "100%sure",
]


def substrings(secret: str, length: int = 3) -> set[str]:
    return {secret[i : i + n] for n in range(length, len(secret) + 1) for i in range(len(secret) - n + 1)}


def assert_quotes_no_piece(message: str, secret: str) -> None:
    leaked = sorted(s for s in substrings(secret) if s in message)
    assert not leaked, f"{leaked} of the password in: {message}"


@pytest.mark.parametrize(("scheme", "schemes", "engine"), ENGINES)
@pytest.mark.parametrize("password", BAD_PASSWORDS)
def test_a_password_with_unencoded_url_delimiters_is_refused_without_quoting_it(
    scheme: str, schemes: frozenset[str], engine: str, password: str
) -> None:
    url = f"{scheme}://rivet:{password}@127.0.0.1:5432/rivet"
    with pytest.raises(SourceError) as info:
        parse_url(url, schemes, engine)
    message = str(info.value)
    assert info.value.permanent
    assert message.startswith(f"{engine}: the source URL is malformed")
    assert "percent-encode" in message and "urllib.parse.quote" in message
    assert "\n" not in message
    assert_quotes_no_piece(message, password)


@pytest.mark.parametrize("password", BAD_PASSWORDS)
def test_the_same_password_percent_encoded_parses_back_exactly(password: str) -> None:
    url = f"postgresql://rivet:{quote(password, safe='')}@db.example:6543/shop"
    parsed = parse_url(url, POSTGRES_SCHEMES, "postgres")
    assert (parsed.user, parsed.password, parsed.host, parsed.port, parsed.database) == (
        "rivet",
        password,
        "db.example",
        6543,
        "shop",
    )
    assert password not in repr(parsed)


def test_the_user_name_is_checked_too() -> None:
    with pytest.raises(SourceError, match="percent-encode") as info:
        parse_url("postgresql://app@Srv9:Pw0rdX@127.0.0.1/db", POSTGRES_SCHEMES, "postgres")
    assert "Srv9" not in str(info.value) and "Pw0rdX" not in str(info.value)
    ok = parse_url("postgresql://app%40Srv9:Pw0rdX@127.0.0.1/db", POSTGRES_SCHEMES, "postgres")
    assert ok.user == "app@Srv9"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:Hq7xyz@127.0.0.1:notaport/db",  # the parser's own message would quote 'notaport'
        "postgresql://u:Hq7xyz@127.0.0.1:99999/db",
        "postgresql://u:Hq7xyz@[::1/db",
        "postgresql://u:Hq7xyz/db",  # the '@' forgotten: the password reads as a port
    ],
)
def test_a_bad_host_or_port_names_the_fix_and_quotes_nothing(url: str) -> None:
    with pytest.raises(SourceError) as info:
        parse_url(url, POSTGRES_SCHEMES, "postgres")
    message = str(info.value)
    assert "malformed" in message and "percent-encode" in message
    assert_quotes_no_piece(message, "Hq7xyz")
    assert "notaport" not in message and "99999" not in message


def test_a_wrong_scheme_names_the_accepted_ones_only() -> None:
    with pytest.raises(SourceError, match=r"must start with postgres:// or postgresql://, got mysql://"):
        parse_url("mysql://u:p@h/d", POSTGRES_SCHEMES, "postgres")
    with pytest.raises(SourceError) as info:  # no `://`: what precedes a `:` may be a password
        parse_url("Hq7xyz:Kb9wvu@h/d", POSTGRES_SCHEMES, "postgres")
    assert "Hq7xyz" not in str(info.value).lower() and "Kb9wvu" not in str(info.value)


def test_well_formed_urls_still_parse() -> None:
    cases = {
        "postgresql://u:p%2Fw%23x%3Fy%40z@h:5433/db?sslmode=require": ("u", "p/w#x?y@z", "h", 5433, "db"),
        "postgres://u:pa:ss@h/db": ("u", "pa:ss", "h", 5432, "db"),
        "mariadb://u@h/db": ("u", "", "h", 3306, "db"),
        "mysql://u:p@[::1]:3307/db": ("u", "p", "::1", 3307, "db"),
        "postgresql:///db?host=/run/postgresql": ("", "", "localhost", 5432, "db"),
    }
    for url, want in cases.items():
        schemes = MYSQL_SCHEMES if url.startswith(("mysql", "mariadb")) else POSTGRES_SCHEMES
        got = parse_url(url, schemes, "x")
        assert (got.user, got.password, got.host, got.port, got.database) == want, url


def test_driver_secrets_include_the_password_in_every_spelling_and_its_pieces() -> None:
    parsed = parse_url("postgresql://u:Abc%2FDef%40Ghi@h/db", POSTGRES_SCHEMES, "postgres")
    assert {"Abc/Def@Ghi", "Abc%2FDef%40Ghi", "Abc", "Def", "Ghi"} <= set(parsed.secrets)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "mysql://u%40x:p%2Fw%3A@db.example:3307/shop?ssl-mode=required&prefer_socket=false",
            "mysql://u%40x:p%2Fw%3A@127.0.0.1:4444/shop?ssl-mode=required&prefer_socket=false",
        ),
        ("mysql://u:p@[2001:db8::1]:3306/d", "mysql://u:p@127.0.0.1:4444/d"),
        ("mysql://db.example/d", "mysql://127.0.0.1:4444/d"),
    ],
)
def test_the_relay_endpoint_replaces_only_host_and_port(url: str, expected: str) -> None:
    """The MySQL relay (sources/readahead.py): user info, database and parameters kept byte for byte."""
    assert with_endpoint(url, "127.0.0.1", 4444) == expected
