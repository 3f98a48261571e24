"""A PostgreSQL read that lost its backend is retryable even when the driver kept only the server's text
(ADBC's streamed COPY raises without `sqlstate`): found on the cluster, where such a chunk was failed for
good instead of retried."""

from __future__ import annotations

import pytest

from rivet.sources.failures import pg_error
from rivet.sources.urls import POSTGRES_SCHEMES, parse_url

URL = parse_url("postgresql://u:pw@db.example:5432/shop", POSTGRES_SCHEMES, "postgres")


@pytest.mark.parametrize(
    "text",
    [
        "ERROR:  terminating connection due to administrator command",
        "FATAL:  terminating connection due to conflict with recovery",
        "ERROR:  canceling statement due to conflict with recovery",
        "FATAL:  the database system is shutting down",
        "ERROR:  could not serialize access due to concurrent update",
        "ERROR:  deadlock detected",
        "[libpq] Failed to execute COPY: ... SQLSTATE: 57P01",
    ],
)
def test_lost_backends_and_conflicts_are_retryable_from_text_alone(text: str) -> None:
    err = pg_error(RuntimeError(text), URL, 300, "read")
    assert not err.permanent and err.exit_code == 3


@pytest.mark.parametrize("text", ["ERROR:  division by zero", 'ERROR:  relation "x" does not exist', "SQLSTATE: 22012"])
def test_data_and_definition_errors_stay_permanent(text: str) -> None:
    assert pg_error(RuntimeError(text), URL, 300, "read").permanent
