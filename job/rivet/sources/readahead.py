"""Keep ConnectorX's MySQL read a bounded distance ahead of the batches taken from it.

ConnectorX decodes rows on a thread of its own into an unbounded channel: whenever the writer is slower
than the server (a CSV part to a busy disk, a row group being encoded, an upload, a busy CPU), the rows
read meanwhile wait in memory, so peak RSS grew with the table. The only place such a reader can be held
back is its socket. So ConnectorX connects to a relay on loopback, which forwards the server's bytes
freely while the consumer waits for a batch, and otherwise at most WINDOW_BYTES after each batch taken.
A batch of READ_BATCH_ROWS rows (mysql.py) of 32 bytes a row or more on the wire needs more than the
window, so the read cannot pile up: it stays about one batch ahead, whatever the table's size, while the
server keeps filling the kernel's socket buffers. (Narrower rows can still gain up to the window per
batch, as they could without the relay.) Measured, MariaDB, 5M rows x 12 columns, under load: peak RSS
Parquet 247-258 MB with the relay, 337-449 MB without; CSV 230-248 MB, 463-624 MB without. A window that
adapted to the waits (up to 16 MiB) was no faster and let the read run ahead again when a busy CPU made
ready batches look late (396-545 MB for the same CSV).

The relay is a small child process, not a thread: ConnectorX holds the GIL while it waits for a batch,
so a relay thread waiting to be told to forward more would never run again (deadlock). The parent opens
the server connection itself (keepalives, TCP_USER_TIMEOUT; the liveness guard sees it as the source's
connection) and hands it over with the listening socket, then tells the relay over a pipe: `w` before
each blocking read, `t` after it. The relay closes a server connection that sent nothing for
`read_timeout_s` while rows were wanted (the guard cannot while the GIL is held), and says so on its
status pipe, so the read fails as a stall, retryably.

Bytes pass through unchanged (TLS included), so results are identical. Not used when ConnectorX must check
the server's host name (tls verify-full): it would see the relay's address.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading

WINDOW_BYTES = 512 * 1024
ACCEPT_TIMEOUT_S = 30.0
CHILD_EXIT_S = 2.0

# The relay's own code: stdlib only, run with `python -I -S` (about 10 MB RSS). argv: listener fd, server
# fd, control pipe (read end), status pipe (write end), window (bytes), read timeout (s, 0: none), accept
# timeout (s).
_RELAY = r"""
import os, select, socket, sys, time
lfd, ufd, cfd, sfd, window = (int(a) for a in sys.argv[1:6])
timeout, accept_s = float(sys.argv[6]), float(sys.argv[7])
listener, up = socket.socket(fileno=lfd), socket.socket(fileno=ufd)
if listener not in select.select([listener, cfd], [], [], accept_s)[0]:
    sys.exit(0)  # closed by the parent (ConnectorX never came), or never connected
down = listener.accept()[0]
listener.close()
down.setblocking(True)
up.setblocking(True)
down.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
up.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 131072)  # wake for 128 KiB, not for each segment
free, since = True, 0
last = time.monotonic()
try:
    while True:
        reading = free or since < window
        r = select.select([cfd, down, up] if reading else [cfd, down], [], [], 0.002 if reading else 1.0)[0]
        now = time.monotonic()
        if cfd in r:
            data = os.read(cfd, 4096)
            if not data:
                break  # the parent is done, or gone
            for c in data:  # w: the consumer waits for a batch; t: it took one
                free, since = (True, since) if c == 119 else (False, 0)
        if down in r:
            data = down.recv(65536)
            if not data:
                break
            up.sendall(data)
            last = now
        if reading and (up in r or not r):  # not r: a tail under the low-water mark may be waiting
            try:
                data = up.recv(262144 if free else window - since, socket.MSG_DONTWAIT)
            except BlockingIOError:
                data = None
            if data == b"":
                break
            if data:
                down.sendall(data)
                since += len(data)
                last = now
        if not reading:
            last = now  # held back on purpose: not the server's silence
        elif timeout and now - last > timeout:
            os.write(sfd, b"stall %.1f\n" % (now - last))
            break
finally:
    for s in (up, down):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
"""


class Relay:
    """One relay child for one ConnectorX read; `port` is where ConnectorX connects (127.0.0.1).

    Owns `server` (closed by `close`): this process keeps it open too, so the liveness guard sees the
    source's connection as it would see ConnectorX's own."""

    def __init__(self, server: socket.socket, read_timeout_s: float) -> None:
        self._server = server
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ctl_r, self._ctl = os.pipe()
        self._status, status_w = os.pipe()
        try:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            self.port = int(listener.getsockname()[1])
            fds = (listener.fileno(), server.fileno(), ctl_r, status_w)
            args = [*map(str, fds), str(WINDOW_BYTES), str(read_timeout_s), str(ACCEPT_TIMEOUT_S)]
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _RELAY, *args],
                pass_fds=fds,
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        except BaseException:
            os.close(self._ctl)
            os.close(self._status)
            raise
        finally:
            os.close(ctl_r)  # the child has its own copies now
            os.close(status_w)
            listener.close()
        self._lock = threading.Lock()
        self._closed = False
        self._stall: float | None = None

    def waiting(self) -> None:
        """The consumer is about to block for the next batch: forward freely."""
        self._say(b"w")

    def took(self) -> None:
        """The consumer took a batch: forward at most a window until it waits again."""
        self._say(b"t")

    def _say(self, what: bytes) -> None:
        with self._lock:
            if not self._closed:
                with contextlib.suppress(OSError):  # the relay ended: the read fails on its own
                    os.write(self._ctl, what)

    def stalled_s(self) -> float | None:
        """Seconds of server silence after which the relay closed the connection, or None."""
        with self._lock:
            if self._stall is None and not self._closed:
                self._stall = self._read_status()
            return self._stall

    def _read_status(self) -> float | None:
        os.set_blocking(self._status, False)
        try:
            words = os.read(self._status, 256).split()
        except OSError:
            return None
        if len(words) >= 2 and words[0] == b"stall":
            return float(words[1])
        return None

    def close(self) -> None:
        """End the relay (closing the control pipe ends it; it is killed if it does not end by itself)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self._ctl)
        try:
            self._proc.wait(timeout=CHILD_EXIT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        with self._lock:
            if self._stall is None:
                self._stall = self._read_status()
        os.close(self._status)
        self._server.close()
