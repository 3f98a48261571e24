"""No piece of a source password in any output of the real CLI, against real PostgreSQL and MariaDB:
not when the password holds unencoded `/ # ? @` (the URL parsers cut it and quote the pieces), not
when it is wrong, not when it works. And `0` in source.tuning means what it says."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.fixtures.databases import DbServer
from tests.integration.rivet_cli import Result, rivet, write_config

# Letters that appear in no message, so any 3-character piece found in the output is a leak.
SPECIAL_PASSWORDS = [
    "Qz7/KxVwJm",
    "Qz7#KxVwJm",
    "Qz7?KxVwJm",
    "Qz7@KxVwJm",
    "Qz7/Kx#Vw?Jm@Yq",
    "Yq@Qz7@Kx/Vw/Jm",
    "Kx?Qz7=Vw&Jm=Yq",
]


def pieces(secret: str) -> set[str]:
    return {secret[i : i + n] for n in range(3, len(secret) + 1) for i in range(len(secret) - n + 1)}


def assert_no_piece(res: Result, *secrets: str) -> None:
    for secret in secrets:
        leaked = sorted(p for p in pieces(secret) if p in res.output)
        assert not leaked, f"pieces {leaked} of a password in the output:\n{res.output}"


def one_error(res: Result) -> str:
    lines = [line for line in res.stderr.splitlines() if line.startswith("rivet: error:")]
    assert len(lines) == 1, res.output
    return lines[0]


def server_url(server: DbServer, user: str, password: str, database: str | None = None) -> str:
    scheme = "postgresql" if server.engine == "postgres" else "mysql"
    return f"{scheme}://{user}:{password}@{server.host}:{server.port}/{database or server.database}"


def config(tmp_path: Path, server: DbServer, url: str, name: str, **tuning: Any) -> Path:
    exp = {"name": "t", "table": "rivet_secret_t", "destination": {"type": "local", "path": str(tmp_path / name)}}
    return write_config(tmp_path / f"{name}.yaml", url, [exp], engine=server.engine, tuning=tuning or None)


@pytest.fixture(params=["pg", "mysql"])
def server(request: pytest.FixtureRequest) -> DbServer:
    db: DbServer = request.getfixturevalue(request.param)
    db.execute("DROP TABLE IF EXISTS rivet_secret_t")
    db.execute("CREATE TABLE rivet_secret_t (id int PRIMARY KEY)")
    db.execute("INSERT INTO rivet_secret_t (id) VALUES (1), (2), (3)")
    return db


@pytest.mark.parametrize("password", SPECIAL_PASSWORDS)
def test_unencoded_special_characters_are_refused_and_never_echoed(
    server: DbServer, password: str, tmp_path: Path
) -> None:
    url = server_url(server, server.user, password)
    cfg = config(tmp_path, server, url, "out")
    for argv in (("run", "-c", str(cfg)), ("plan", "-c", str(cfg), "-e", "t", "--run-id", "r1")):
        res = rivet(*argv, db_url=url, timeout=120)
        assert res.code == 1, res.output
        error = one_error(res)
        assert "source URL is malformed" in error and "percent-encode" in error, error
        assert "urllib.parse.quote" in error, error
        assert_no_piece(res, password)
        if argv[0] == "plan":  # the JSON error document on stdout (what a Job's termination message holds)
            assert res.json["ok"] is False and "percent-encode" in res.json["error"]["message"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("password", ["Qz7/Kx#Vw?Jm@Yq", "WqzKxVwJmYpQ"])
def test_a_wrong_password_says_authentication_failed_and_quotes_no_piece(
    server: DbServer, password: str, tmp_path: Path
) -> None:
    url = server_url(server, server.user, quote(password, safe=""))
    res = rivet("run", "-c", str(config(tmp_path, server, url, "out")), db_url=url, timeout=120)
    assert res.code == 1, res.output
    assert f"authentication failed for user '{server.user}'" in one_error(res)
    assert_no_piece(res, password, quote(password, safe=""))
    assert server.password not in res.output  # random hex: its 3-character pieces may occur by chance


def create_user(server: DbServer, user: str, password: str) -> None:
    """A login with this password (and every right the exports need), made afresh."""
    if server.engine == "postgres":
        server.execute(f"DROP ROLE IF EXISTS {user}")
        server.execute(f"CREATE ROLE {user} LOGIN SUPERUSER PASSWORD '{password}'")
    else:
        for host in ("%", "localhost"):
            server.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
            server.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")
            server.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'{host}'")


def test_the_fix_the_message_gives_works(server: DbServer, tmp_path: Path) -> None:
    """A user whose password holds every special character logs in once it is percent-encoded."""
    user, password = "rivet_special", "Qz7/Kx#Vw?Jm@Yq:Zp%Lr"
    create_user(server, user, password)
    url = server_url(server, user, quote(password, safe=""))
    res = rivet("run", "-c", str(config(tmp_path, server, url, "out")), db_url=url, timeout=120)
    assert res.code == 0, res.output
    assert (tmp_path / "out" / "_SUCCESS").exists()
    assert_no_piece(res, password, quote(password, safe=""))


# --- passwords that share words with part keys (issue #21, item 2) ---------------------------------


def chunked_config(tmp_path: Path, server: DbServer, url: str, name: str) -> Path:
    exp = {
        "name": "t",
        "table": "rivet_secret_t",
        "mode": "chunked",
        "chunk_column": "id",
        "chunk_size": 1,
        "destination": {"type": "local", "path": str(tmp_path / name)},
    }
    return write_config(tmp_path / f"{name}.yaml", url, [exp], engine=server.engine)


def manifest_paths(folder: Path) -> list[str]:
    return sorted(p["path"] for p in json.loads((folder / "manifest.json").read_text())["parts"])


PARTS = ["part-000001.parquet", "part-000002.parquet", "part-000003.parquet"]


@pytest.mark.parametrize("password", ["Qz:000001", "part:000001"])
def test_a_password_made_of_part_key_words_leaves_keys_and_commit_records_intact(
    server: DbServer, password: str, tmp_path: Path
) -> None:
    """The password's pieces (`part`, `000001`) are in every part key: neither `rivet run` nor the chunk
    Jobs' termination messages (the commit records the operator hands to finalize) may mask them."""
    user = "rivet_partword"
    create_user(server, user, password)
    url = server_url(server, user, password)  # `:` may stand unencoded in a password

    # rivet run: exports, certifies, validates
    cfg = chunked_config(tmp_path, server, url, "run")
    res = rivet("run", "-c", str(cfg), "--run-id", "r1", db_url=url, timeout=120)
    assert res.code == 0, res.output
    assert res.json["exports"][0]["status"] == "success" and res.json["exports"][0]["parts"] == 3, res.output
    assert manifest_paths(tmp_path / "run") == PARTS
    res = rivet("validate", "-c", str(cfg), "--format", "json")
    assert res.code == 0 and res.json["exports"][0]["verification"]["passed"], res.output

    # the operator's way: plan, one chunk Job each (termination message = commit record), finalize
    cfg = chunked_config(tmp_path, server, url, "jobs")
    res = rivet("plan", "-c", str(cfg), "-e", "t", "--run-id", "j1", "--check-destination", db_url=url, timeout=120)
    assert res.code == 0, res.output
    plan = tmp_path / "plan.json"
    plan.write_text(res.stdout)
    records = []
    for chunk in (1, 2, 3):
        termination = tmp_path / f"termination-{chunk}"
        res = rivet(
            "chunk",
            "-c",
            str(cfg),
            "-e",
            "t",
            "--run-id",
            "j1",
            "--chunk",
            str(chunk),
            "--plan",
            f"@{plan}",
            "--termination-log",
            str(termination),
            db_url=url,
            timeout=120,
        )
        assert res.code == 0, res.output
        record = json.loads(termination.read_text())
        assert record == res.json and record["key"] == PARTS[chunk - 1], termination.read_text()
        assert "***" not in termination.read_text(), termination.read_text()
        records.append(termination.read_text())
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text("\n".join(records) + "\n")
    res = rivet(
        "finalize",
        "-c",
        str(cfg),
        "-e",
        "t",
        "--run-id",
        "j1",
        "--ledger",
        str(ledger),
        "--plan",
        f"@{plan}",
        "--termination-log",
        str(tmp_path / "termination-finalize"),
        db_url=url,
        timeout=120,
    )
    assert res.code == 0, res.output
    assert res.json["part_count"] == 3 and res.json["row_count"] == 3, res.output
    assert manifest_paths(tmp_path / "jobs") == PARTS
    res = rivet("validate", "-c", str(cfg), "--format", "json")
    assert res.code == 0 and res.json["exports"][0]["verification"]["passed"], res.output

    # a failing run still quotes no password, whole or percent-encoded
    bad = server_url(server, user, password, database="rivet_no_such_db")
    res = rivet("run", "-c", str(chunked_config(tmp_path, server, bad, "bad")), db_url=bad, timeout=120)
    assert res.code == 1, res.output
    assert "rivet_no_such_db' does not exist" in one_error(res), res.output
    assert password not in res.output and quote(password, safe="") not in res.output, res.output
    res = rivet("plan", "-c", str(tmp_path / "bad.yaml"), "-e", "t", "--run-id", "b1", db_url=bad, timeout=120)
    assert res.code == 1 and "does not exist" in res.json["error"]["message"], res.output
    assert password not in res.output and quote(password, safe="") not in res.output, res.output


# --- tuning zeros ------------------------------------------------------------------------------


def sleepy_query(server: DbServer, seconds: float) -> str:
    """One row that takes `seconds` to produce (at stream time: describe reads zero rows)."""
    if server.engine == "postgres":
        return f"SELECT id, length(pg_sleep({seconds})::text) AS n FROM rivet_secret_t WHERE id = 1"
    return f"SELECT id, SLEEP({seconds}) AS n FROM rivet_secret_t WHERE id = 1"


def sleepy_config(tmp_path: Path, server: DbServer, name: str, seconds: float, **tuning: Any) -> Path:
    exp = {
        "name": "t",
        "query": sleepy_query(server, seconds),
        "destination": {"type": "local", "path": str(tmp_path / name)},
    }
    return write_config(tmp_path / f"{name}.yaml", server.url, [exp], engine=server.engine, tuning=tuning)


def events(res: Result, event: str) -> list[str]:
    return [line for line in res.stderr.splitlines() if re.search(rf"\bevent={event}\b", line)]


def test_statement_timeout_zero_means_no_timeout(server: DbServer, tmp_path: Path) -> None:
    cfg = sleepy_config(tmp_path, server, "out", 2, statement_timeout_s=0, max_retries=0)
    res = rivet("run", "-c", str(cfg), db_url=server.url, timeout=120)
    assert res.code == 0, res.output
    assert (tmp_path / "out" / "_SUCCESS").exists()


def test_max_retries_zero_makes_exactly_one_attempt(server: DbServer, tmp_path: Path) -> None:
    # A statement timeout is transient (retryable): with max_retries 1 it is retried once...
    once = rivet(
        "run",
        "-c",
        str(sleepy_config(tmp_path, server, "once", 3, statement_timeout_s=1, max_retries=1)),
        db_url=server.url,
        timeout=120,
    )
    assert once.code == 3, once.output  # a statement timeout is retryable: exit 3
    assert len(events(once, "chunk_retry")) == 1, once.output
    assert [("attempt=2" in line) for line in events(once, "chunk_failed")] == [True], once.output
    # ... and with max_retries 0 it is not retried at all.
    none = rivet(
        "run",
        "-c",
        str(sleepy_config(tmp_path, server, "none", 3, statement_timeout_s=1, max_retries=0)),
        db_url=server.url,
        timeout=120,
    )
    assert none.code == 3, none.output
    assert "statement_timeout_s=1" in one_error(none)
    assert events(none, "chunk_retry") == [], none.output
    assert [("attempt=1" in line) for line in events(none, "chunk_failed")] == [True], none.output
