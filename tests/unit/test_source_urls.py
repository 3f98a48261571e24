"""Liveness settings added to PostgreSQL URLs: defaults filled in, the user's own values kept."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from rivet.sources.urls import PG_LIVENESS, with_pg_liveness


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
