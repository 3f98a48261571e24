"""Nothing hangs forever: a source connection that goes silent mid-export fails retryably, in bounded time.

A proxy on 127.0.0.1 sits between `rivet` and the database. Once rows have flowed through it for a while
(1 MiB, over at least a second), it stops forwarding without closing anything (no FIN, no RST): TCP stays
healthy, keepalives are answered, and only a read timeout can notice. (The second matters for ConnectorX,
which holds the GIL while it waits: the guard arms a new connection within a tick, see liveness.py.) The export must fail within seconds of `source.tuning.read_timeout_s`
with a retryable error (exit 3), instead of waiting for rows that never come.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from rivet.sources.liveness import Counters, stalled
from tests.fixtures.databases import DbServer, Namespace
from tests.integration.rivet_cli import rivet, write_config

READ_TIMEOUT_S = 2
ROWS = 300_000
STALL_AFTER_BYTES = 1 << 20  # stall once one connection has carried 1 MiB of rows
STALL_AFTER_S = 1.0  # ... and has been carrying them for a second


class StallingProxy:
    """Forwards 127.0.0.1:<port> to the server until one connection has sent `stall_after` bytes to its
    client over at least `stall_after_s` seconds; from then on it forwards nothing in either direction,
    yet keeps every socket open."""

    def __init__(self, target_port: int, stall_after: int, stall_after_s: float = STALL_AFTER_S) -> None:
        self.target_port = target_port
        self.stall_after = stall_after
        self.stall_after_s = stall_after_s
        self.stalled = threading.Event()
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self.connections = 0
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, upstream]
                self.connections += 1
            for src, dst, count in ((client, upstream, False), (upstream, client, True)):
                thread = threading.Thread(target=self._pump, args=(src, dst, count), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        sent, first = 0, 0.0
        src.settimeout(0.2)
        while not self._closing.is_set():
            if self.stalled.is_set():
                time.sleep(0.1)  # silent: read nothing, send nothing, close nothing
                continue
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return  # a real close before the stall: nothing to hold open
            if self.stalled.is_set():
                continue  # swallowed: the stall starts mid-flight
            try:
                dst.sendall(data)
            except OSError:
                return
            if not count:
                continue
            first = first or time.monotonic()
            sent += len(data)
            if sent >= self.stall_after:
                if time.monotonic() - first >= self.stall_after_s:
                    self.stalled.set()
                else:
                    time.sleep(0.05)  # enough bytes: trickle for the rest of the second

    def close(self) -> None:
        self._closing.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)
        with self._lock:
            for sock in self._sockets:
                sock.close()


def _fill(engine: str, server: DbServer, ns: Namespace) -> str:
    if engine == "postgres":
        server.execute(f"CREATE TABLE {ns}.big (id int PRIMARY KEY, v text)")
        server.execute(f"INSERT INTO {ns}.big SELECT g, repeat('x', 40) FROM generate_series(1, {ROWS}) g")
        return f"{ns}.big"
    server.execute("CREATE TABLE big (id int PRIMARY KEY, v varchar(64))", database=str(ns))
    server.execute(f"INSERT INTO big SELECT seq, REPEAT('x', 40) FROM seq_1_to_{ROWS}", database=str(ns))
    return "big"


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_a_source_that_goes_silent_mid_export_fails_retryably_in_bounded_time(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    server: DbServer = request.getfixturevalue("pg" if engine == "postgres" else "mysql")
    ns: Namespace = request.getfixturevalue("pg_schema" if engine == "postgres" else "mysql_db")
    table = _fill(engine, server, ns)
    proxy = StallingProxy(server.port, STALL_AFTER_BYTES)
    try:
        url = ns.url.replace(f":{server.port}/", f":{proxy.port}/", 1)
        exports = [{"name": "big", "table": table, "destination": {"type": "local", "path": str(tmp_path / "out")}}]
        tuning = {"read_timeout_s": READ_TIMEOUT_S, "max_retries": 0, "batch_size": 1000}
        cfg = write_config(tmp_path / "rivet.yaml", url, exports, engine=engine, tuning=tuning)
        started = time.monotonic()
        res = rivet("run", "-c", str(cfg), db_url=url, timeout=90)
        elapsed = time.monotonic() - started
    finally:
        proxy.close()  # before the namespace is dropped: the server's side of the stalled read lets go
    assert proxy.stalled.is_set(), f"the proxy never stalled (rows did not flow?):\n{res.output[-3000:]}"
    assert res.code == 3, f"expected the retryable exit code 3, got {res.code}:\n{res.output[-3000:]}"
    assert elapsed < 45, f"took {elapsed:.0f}s to notice a {READ_TIMEOUT_S}s silence"
    error = next(line for line in res.stderr.splitlines() if line.startswith("rivet: error:"))
    assert "stalled" in error and "read_timeout_s" in error, error
    if engine == "postgres":  # libpq waits in poll(): the guard cut the connection (ConnectorX timed out itself)
        assert "event=source_stalled" in res.stderr
    assert server.password not in res.output
    assert not (tmp_path / "out" / "_SUCCESS").exists()


# --- the rule the guard applies, on a socket's counters ----------------------------------------------------


def test_a_bulk_connection_is_stalled_only_when_silent_both_ways_with_nothing_unread() -> None:
    silent = Counters(established=True, last_sent_ms=5000, last_recv_ms=4000, unread=0)
    assert stalled(silent, metadata=False, timeout_s=3)
    assert not stalled(silent, metadata=False, timeout_s=5)  # 4 s since the last row: under the limit
    assert not stalled(Counters(True, 5000, 4000, unread=65536), metadata=False, timeout_s=3)  # we are slow
    assert not stalled(Counters(False, 5000, 4000, 0), metadata=False, timeout_s=3)  # closing, not silent


def test_a_metadata_connection_is_stalled_only_while_a_request_waits() -> None:
    waiting = Counters(established=True, last_sent_ms=4000, last_recv_ms=9000, unread=0)
    idle = Counters(established=True, last_sent_ms=9000, last_recv_ms=8999, unread=0)
    assert stalled(waiting, metadata=True, timeout_s=3)
    assert not stalled(waiting, metadata=True, timeout_s=5)
    assert not stalled(idle, metadata=True, timeout_s=3)  # answered, then idle for minutes: fine
