"""Fixtures for the differential harness: one database per engine per module, destinations on demand.

PostgreSQL modules get a fresh database whose default TimeZone is America/New_York; MariaDB modules get a
fresh database while the server's GLOBAL time_zone is -05:00 (restored at module end). The exporter must
produce the same bytes whatever the server's zone, and the reference readers pin their own sessions to UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.correctness.harness import (
    Col,
    Dest,
    Table,
    create_table,
    insert_rows,
    local_dest,
    my_database,
    mysql_global,
    pg_database,
    s3_dest,
)
from tests.fixtures.databases import DbServer, Namespace

ENGINES = ["postgres", "mysql"]


@pytest.fixture(scope="module")
def pg_db(pg: DbServer) -> Iterator[Namespace]:
    with pg_database(pg) as ns:
        yield ns


@pytest.fixture(scope="module")
def my_db(mysql: DbServer) -> Iterator[Namespace]:
    with my_database(mysql) as ns, mysql_global(mysql, "time_zone", "-05:00"):
        yield ns


Loader = Callable[..., Table]


def loader_for(request: pytest.FixtureRequest, engine: str) -> Loader:
    """A function that creates and fills a table in this module's database for `engine`."""
    if engine == "postgres":
        server: DbServer = request.getfixturevalue("pg")
        ns: Namespace = request.getfixturevalue("pg_db")
    else:
        server = request.getfixturevalue("mysql")
        ns = request.getfixturevalue("my_db")

    def load(name: str, columns: Sequence[Col], rows: Sequence[Sequence[Any]], extra: str = "") -> Table:
        qualified = f"public.{name}" if engine == "postgres" else f"{ns.name}.{name}"
        create_table(server, ns.name, qualified, columns, extra)
        insert_rows(server, ns.name, qualified, [c.name for c in columns], rows)
        return Table(engine, server, ns.name, qualified, list(columns), ns.url)

    return load


@pytest.fixture(scope="module")
def make_dest(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Dest]:
    """make_dest("local") or make_dest("s3"): a fresh directory or bucket (SeaweedFS starts on first use)."""

    def make(kind: str) -> Dest:
        if kind == "local":
            return local_dest(Path(tmp_path_factory.mktemp("store")))
        return s3_dest(request.getfixturevalue("s3_server"))

    return make
