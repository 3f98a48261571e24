"""A read timeout for the drivers that have none: a source connection that goes silent fails, retryably.

PyMySQL has read and write timeouts; libpq (psycopg, ADBC) and ConnectorX's MySQL reader have none. TCP
keepalive and TCP_USER_TIMEOUT (set on every source connection, `urls.py`) notice a peer that stopped
answering TCP, but not one that still acknowledges and sends nothing: a stalled proxy, load balancer or
server. A read blocked on such a connection would wait forever, holding a worker, a Job and a slot.

The guard is one daemon thread per process that needs no hook inside the drivers. Every 0.1 s it lists
this process's sockets (/proc/self/fd) and picks out the TCP connections to the endpoint of an open source:

1. *Arm.* A new connection that is not a registered metadata connection (see below) gets SO_RCVTIMEO and
   SO_SNDTIMEO of `timeout_s`. A driver that reads with blocking calls (ConnectorX: the Rust mysql crate)
   then gets EAGAIN from any read that waits longer, and fails on its own. That matters because
   ConnectorX holds the GIL while it waits for rows: no Python thread, this one included, runs until it
   returns, so arming must happen while rows still flow, within a tick of the connection opening.
2. *Cut.* Every `timeout_s / 5` (0.2 to 5 s) it reads each connection's kernel counters (TCP_INFO: ms
   since data was last sent and received; FIONREAD: bytes the driver has not read yet):
   - a rows connection is stalled when no data moved either way for `timeout_s` and nothing waits to be
     read (a full receive buffer means the reader is slow, not that the server is gone);
   - a metadata connection (request, answer, idle in between; registered by its source with `metadata`)
     is stalled when a request has waited `timeout_s` without a byte of answer. Idle, it is never touched.
   A stalled socket is shut down in both directions, so a driver waiting in poll() (libpq, which releases
   the GIL) returns at once with a connection error.

`failures.py` reports either outcome as a retryable stall that names `source.tuning.read_timeout_s`.
Like any read timeout, it also ends a statement whose first row takes longer than the timeout, which is why
the default sits above the statement timeout. Not covered: a ConnectorX connection that stalls inside
`read_sql` or in the first tick of its life (bounded only by keepalives and the pool's connect timeout).
Linux only (TCP_INFO, /proc); elsewhere the guard stays off and keepalives remain.
"""

from __future__ import annotations

import array
import collections
import contextlib
import fcntl
import os
import socket
import struct
import sys
import termios
import threading
import time
from dataclasses import dataclass, field

from rivet.log import log

_TCP_ESTABLISHED = 1
_TCP_INFO_LEN = 104
_LAST_DATA_SENT_AT = 44  # struct tcp_info: 8 bytes of u8 fields, then u32s (rto, ato, ..., fackets)
_LAST_DATA_RECV_AT = 52
ARM_TICK_S = 0.1  # how soon a new connection gets its socket timeouts
STALL_MEMORY_S = 120.0  # how long a cut connection explains the driver errors that follow it
SUPPORTED = sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd")


@dataclass
class _Endpoint:
    host: str
    port: int
    addresses: set[tuple[str, int]]
    timeouts: dict[int, float] = field(default_factory=dict)  # one per open source (watch id)

    @property
    def timeout_s(self) -> float:
        return min(self.timeouts.values())


@dataclass(frozen=True)
class Stall:
    """A connection the guard cut: when, after how long a silence, and the timeout in force."""

    at: float
    silent_s: float
    timeout_s: float


@dataclass(frozen=True)
class Counters:
    established: bool
    last_sent_ms: int
    last_recv_ms: int
    unread: int


def stalled(c: Counters, metadata: bool, timeout_s: float) -> bool:
    """The rule above, on one socket's counters."""
    limit = timeout_s * 1000
    if not c.established or c.unread:
        return False
    if metadata:  # waiting for an answer: data went out after the last that came in
        return c.last_sent_ms < c.last_recv_ms and c.last_sent_ms > limit
    return min(c.last_sent_ms, c.last_recv_ms) > limit


def counters(sock: socket.socket) -> Counters:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    (sent,) = struct.unpack_from("I", info, _LAST_DATA_SENT_AT)
    (recv,) = struct.unpack_from("I", info, _LAST_DATA_RECV_AT)
    unread = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, unread)
    return Counters(info[0] == _TCP_ESTABLISHED, sent, recv, unread[0])


class _Guard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # unwatch runs from weakref finalizers, which the garbage collector may call in any thread while
        # it holds the lock (this thread's scan included): it only queues, and holders of the lock drain
        self._unwatched: collections.deque[int] = collections.deque()
        self._endpoints: dict[tuple[str, int], _Endpoint] = {}
        self._metadata: set[int] = set()  # socket inodes of request/answer connections
        self._seen: dict[int, tuple[str, int] | None] = {}  # inode -> endpoint key, None: not a source's
        self._cut: set[int] = set()
        self._armed: set[int] = set()
        self._stalls: dict[tuple[str, int], Stall] = {}
        self._next_id = 0
        self._thread: threading.Thread | None = None

    def watch(self, host: str, port: int, timeout_s: float, extra: tuple[str, int] | None = None) -> int:
        """Guard every connection this process opens to host:port; returns an id for `unwatch`."""
        addresses = resolve(host, port)
        if extra:
            addresses.add(extra)
        with self._lock:
            self._next_id += 1
            key = (host, port)
            endpoint = self._live().setdefault(key, _Endpoint(host, port, set()))
            endpoint.addresses |= addresses
            endpoint.timeouts[self._next_id] = timeout_s
            self._seen = {ino: k for ino, k in self._seen.items() if k is not None}  # look again at the rest
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rivet-liveness", daemon=True)
                self._thread.start()
            return self._next_id

    def unwatch(self, watch_id: int) -> None:
        """Lock-free (a deque append): safe from a finalizer, whoever holds the lock."""
        self._unwatched.append(watch_id)

    def _live(self) -> dict[tuple[str, int], _Endpoint]:
        """The endpoints, after applying queued unwatches; call with the lock held."""
        while self._unwatched:
            watch_id = self._unwatched.popleft()
            for key, endpoint in list(self._endpoints.items()):
                if endpoint.timeouts.pop(watch_id, None) is not None and not endpoint.timeouts:
                    del self._endpoints[key]
        return self._endpoints

    def metadata(self, fd: int) -> None:
        with contextlib.suppress(OSError):
            ino = os.fstat(fd).st_ino
            with self._lock:
                self._metadata.add(ino)

    def recent_stall(self, host: str, port: int) -> Stall | None:
        with self._lock:
            stall = self._stalls.get((host, port))
        if stall is None or time.monotonic() - stall.at > STALL_MEMORY_S:
            return None
        return stall

    def timeout_for(self, host: str, port: int) -> float | None:
        with self._lock:
            endpoint = self._live().get((host, port))
            return endpoint.timeout_s if endpoint else None

    def _run(self) -> None:
        next_check = 0.0
        while True:
            time.sleep(ARM_TICK_S)
            with self._lock:
                timeouts = [e.timeout_s for e in self._live().values() if e.timeouts]
            now = time.monotonic()
            check = now >= next_check
            if check:
                next_check = now + max(0.2, min(5.0, min(timeouts, default=5.0) / 5))
            try:
                self.scan(check)
            except Exception as exc:  # the guard must never take the process down
                log("liveness_guard_error", level="warning", error=f"{type(exc).__name__}: {exc}")

    def scan(self, check: bool = True) -> None:
        """One look at every socket of the process: arm new source connections, and with `check`, cut the
        stalled ones (see the module docstring)."""
        with self._lock:  # a snapshot: watch/unwatch may change the live ones meanwhile
            endpoints = {
                k: _Endpoint(e.host, e.port, set(e.addresses), dict(e.timeouts)) for k, e in self._live().items()
            }
        if not endpoints:
            return
        with self._lock:
            seen = dict(self._seen)
            settled = self._armed | self._metadata
        present: set[int] = set()
        for name in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{name}")
            except OSError:
                continue
            if not target.startswith("socket:["):
                continue
            ino = int(target[8:-1])
            present.add(ino)
            key = seen.get(ino)
            if (ino in seen and key is None) or (ino in settled and not check):
                continue
            self._look(int(name), ino, key, endpoints, check)
        with self._lock:
            self._seen = {i: k for i, k in self._seen.items() if i in present}
            self._metadata &= present
            self._armed &= present
            self._cut &= present

    def _look(
        self, fd: int, ino: int, key: tuple[str, int] | None, endpoints: dict[tuple[str, int], _Endpoint], check: bool
    ) -> None:
        try:
            dup = os.dup(fd)
        except OSError:
            return
        try:
            sock = socket.socket(fileno=dup)
        except OSError:
            os.close(dup)
            return
        with sock:
            try:
                if os.fstat(sock.fileno()).st_ino != ino:  # the fd was closed and reused meanwhile
                    return
                if key is None:
                    key = self._identify(sock, ino, endpoints)
                    if key is None:
                        return
                endpoint = endpoints.get(key)
                with self._lock:
                    metadata = ino in self._metadata
                    done = ino in self._cut
                if endpoint is None or done:
                    return
                if not metadata:
                    self._arm(sock, ino, endpoint.timeout_s)
                if not check:
                    return
                c = counters(sock)
                if not stalled(c, metadata, endpoint.timeout_s):
                    return
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                return
        silent_s = round((c.last_sent_ms if metadata else min(c.last_sent_ms, c.last_recv_ms)) / 1000, 1)
        with self._lock:
            self._cut.add(ino)
            self._stalls[key] = Stall(time.monotonic(), silent_s, endpoint.timeout_s)
        log(
            "source_stalled",
            level="warning",
            endpoint=f"{endpoint.host}:{endpoint.port}",
            connection="metadata" if metadata else "rows",
            silent_s=silent_s,
            read_timeout_s=endpoint.timeout_s,
            action="connection closed; the read fails with a retryable error",
        )

    def _arm(self, sock: socket.socket, ino: int, timeout_s: float) -> None:
        """SO_RCVTIMEO/SO_SNDTIMEO: a driver that blocks in recv() while holding the GIL (ConnectorX) cannot be
        helped by this thread once it is stuck, but its next blocking call times out by itself."""
        with self._lock:
            if ino in self._armed:
                return
            self._armed.add(ino)
        whole = int(timeout_s)
        value = struct.pack("ll", whole, int((timeout_s - whole) * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)

    def _identify(
        self, sock: socket.socket, ino: int, endpoints: dict[tuple[str, int], _Endpoint]
    ) -> tuple[str, int] | None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
            with self._lock:
                self._seen[ino] = None
            return None
        try:
            peer = sock.getpeername()
        except OSError:  # not connected yet: look again next time
            return None
        address = (_plain(str(peer[0])), int(peer[1]))
        key = next((k for k, e in endpoints.items() if address in e.addresses), None)
        with self._lock:
            self._seen[ino] = key
        return key


def _plain(ip: str) -> str:
    return ip[7:] if ip.startswith("::ffff:") else ip


def resolve(host: str, port: int) -> set[tuple[str, int]]:
    """Every address `host` resolves to now (the drivers resolve it again when they connect)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return set()
    return {(_plain(str(info[4][0])), port) for info in infos}


_guard = _Guard()


def watch(host: str, port: int, timeout_s: float, peer: tuple[str, int] | None = None) -> int | None:
    """Guard this process's connections to host:port (and `peer`, the address a driver actually reached)
    with `timeout_s`; None when there is nothing to do (0 = no read timeout, Unix sockets, not Linux)."""
    if not SUPPORTED or timeout_s <= 0 or host.startswith("/"):
        return None
    return _guard.watch(host, port, timeout_s, peer)


def unwatch(watch_id: int | None) -> None:
    if watch_id is not None:
        _guard.unwatch(watch_id)


def metadata(fd: int) -> None:
    """Mark the socket behind `fd` as a request/answer connection: it is idle, not stalled, between queries."""
    if SUPPORTED:
        _guard.metadata(fd)


def recent_stall(host: str, port: int) -> Stall | None:
    """The stall the guard cut on host:port in the last two minutes, if any (to explain a driver's error)."""
    return _guard.recent_stall(host, port)


def timeout_for(host: str, port: int) -> float | None:
    return _guard.timeout_for(host, port)


def peer_of(fd: int) -> tuple[str, int] | None:
    """The address the socket behind `fd` is connected to (what the driver resolved and reached)."""
    try:
        dup = os.dup(fd)
    except OSError:
        return None
    try:
        sock = socket.socket(fileno=dup)
    except OSError:
        os.close(dup)
        return None
    with sock:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        try:
            peer = sock.getpeername()
        except OSError:
            return None
    return (_plain(str(peer[0])), int(peer[1]))
