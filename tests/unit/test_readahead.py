"""The relay that holds ConnectorX's MySQL read back (sources/readahead.py), against a fake server on loopback:
bytes pass unchanged both ways, the read stops about a window ahead while the consumer is busy and goes on
when it waits, a silent server is cut after the read timeout and reported as a stall."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from rivet.sources import readahead
from rivet.sources.readahead import Relay

pytestmark = pytest.mark.timeout(60)


class FakeServer:
    """Accepts one connection; `serve(conn)` runs on it in a thread. `sent` counts bytes sent."""

    def __init__(self, serve: Callable[[FakeServer, socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sent = 0
        self.done = threading.Event()
        self._serve = serve
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            try:
                self._serve(self, conn)
            except OSError:
                pass
            finally:
                self.done.set()

    def close(self) -> None:
        self.listener.close()


def pattern(n: int, offset: int = 0) -> bytes:
    return bytes((offset + i) % 251 for i in range(n))


@pytest.fixture
def relay_for() -> Iterator[Callable[..., tuple[Relay, socket.socket]]]:
    opened: list[tuple[Relay, socket.socket, FakeServer]] = []

    def make(server: FakeServer, read_timeout_s: float = 0) -> tuple[Relay, socket.socket]:
        upstream = socket.create_connection(("127.0.0.1", server.port))
        relay = Relay(upstream, read_timeout_s)
        client = socket.create_connection(("127.0.0.1", relay.port))
        opened.append((relay, client, server))
        return relay, client

    yield make
    for relay, client, server in opened:
        client.close()
        relay.close()
        server.close()


def read_exactly(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        data = sock.recv(n - len(out))
        if not data:
            break
        out += data
    return bytes(out)


def test_bytes_pass_unchanged_both_ways(relay_for: Callable[..., tuple[Relay, socket.socket]]) -> None:
    def serve(server: FakeServer, conn: socket.socket) -> None:
        request = read_exactly(conn, 5)
        conn.sendall(request + pattern(3_000_000))

    relay, client = relay_for(FakeServer(serve))
    client.sendall(b"hello")
    relay.waiting()
    assert read_exactly(client, 3_000_005) == b"hello" + pattern(3_000_000)
    assert client.recv(1) == b""  # the server closed: so does the relay


def test_the_read_stops_about_a_window_ahead_until_the_consumer_waits(
    relay_for: Callable[..., tuple[Relay, socket.socket]],
) -> None:
    total = 400 * 1024 * 1024

    def serve(server: FakeServer, conn: socket.socket) -> None:
        block = pattern(1 << 20)
        while server.sent < total:
            conn.sendall(block)
            server.sent += len(block)

    server = FakeServer(serve)
    relay, client = relay_for(server)
    relay.waiting()
    got = len(read_exactly(client, 1 << 20))
    relay.took()  # the consumer is busy now and asks for nothing
    client.settimeout(0.5)
    ahead = 0
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        try:
            data = client.recv(1 << 20)
        except TimeoutError:
            continue
        ahead += len(data)
    # what was in flight when the consumer stopped asking, plus at most one window
    assert ahead <= readahead.WINDOW_BYTES + 12 * 1024 * 1024, ahead
    assert server.sent < total / 4, server.sent  # the server was held back too
    relay.waiting()  # waiting again: the rest flows
    client.settimeout(10)
    more = 0
    while more < 64 * 1024 * 1024:
        data = client.recv(1 << 20)
        assert data, "the relay stopped forwarding while the consumer waited"
        more += len(data)
    assert got + ahead + more > 64 * 1024 * 1024


def test_a_server_silent_while_rows_are_wanted_is_cut_and_reported(
    relay_for: Callable[..., tuple[Relay, socket.socket]],
) -> None:
    def serve(server: FakeServer, conn: socket.socket) -> None:
        conn.sendall(b"first")
        time.sleep(30)  # then nothing, nothing closed

    relay, client = relay_for(FakeServer(serve), read_timeout_s=1.0)
    relay.waiting()
    client.settimeout(20)
    assert read_exactly(client, 5) == b"first"
    started = time.monotonic()
    assert client.recv(1) == b""  # the relay gave up on the server and closed ConnectorX's side
    assert 0.5 < time.monotonic() - started < 10
    silent = relay.stalled_s()
    assert silent is not None and silent >= 1.0


def test_closing_the_relay_ends_both_connections(relay_for: Callable[..., tuple[Relay, socket.socket]]) -> None:
    def serve(server: FakeServer, conn: socket.socket) -> None:
        conn.settimeout(20)
        server.sent = len(conn.recv(10))  # 0 when the relay closed the connection

    server = FakeServer(serve)
    relay, client = relay_for(server)
    relay.close()
    client.settimeout(10)
    assert client.recv(1) == b""
    assert server.done.wait(10) and server.sent == 0
    assert relay.stalled_s() is None


def test_no_client_ever_connecting_ends_on_close_without_waiting() -> None:
    def serve(server: FakeServer, conn: socket.socket) -> None:
        conn.settimeout(20)
        conn.recv(10)

    server = FakeServer(serve)
    upstream = socket.create_connection(("127.0.0.1", server.port))
    relay = Relay(upstream, 0)
    started = time.monotonic()
    relay.close()
    assert time.monotonic() - started < readahead.CHILD_EXIT_S
    assert server.done.wait(10)
    server.close()
