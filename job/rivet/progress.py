"""Progress for long runs: a bar on a terminal, periodic `progress` log lines otherwise (stderr only)."""

from __future__ import annotations

import sys
import threading
import time

from rivet.log import log


class Progress:
    def __init__(self, export: str, total_chunks: int, interval_s: float | None = None) -> None:
        self.export = export
        self.total_chunks = total_chunks
        self.rows = 0
        self.chunks_done = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._tty = sys.stderr.isatty()
        self._interval = interval_s if interval_s is not None else (0.5 if self._tty else 10.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._tty:
            sys.stderr.write("\n")

    def add_rows(self, n: int) -> None:
        with self._lock:
            self.rows += n

    def chunk_done(self) -> None:
        with self._lock:
            self.chunks_done += 1

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.report()

    def report(self) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.rows / elapsed
        if self._tty:
            width = 30
            done = int(width * self.chunks_done / self.total_chunks) if self.total_chunks else width
            bar = "#" * done + "-" * (width - done)
            sys.stderr.write(
                f"\r{self.export} [{bar}] {self.chunks_done}/{self.total_chunks} chunks"
                f" {self.rows:,} rows {rate:,.0f} rows/s"
            )
            sys.stderr.flush()
        else:
            log(
                "progress",
                export=self.export,
                chunks=f"{self.chunks_done}/{self.total_chunks}",
                rows=self.rows,
                rows_per_s=round(rate),
            )
