"""A per-key work queue (the client-go shape, on asyncio): de-duplication, one worker per key at a time,
and delayed requeues.

- `add(key)`: the key is processed once soon, however many events arrive before a worker takes it;
- a key being processed is never given to a second worker: an `add` meanwhile marks it dirty, and it is
  processed again once the first pass ends;
- `add(key, delay)`: processed after `delay` seconds, unless an earlier add or delay comes first. Only
  objects with work in flight ask for one; a finished object leaves the queue for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
ERROR_BACKOFF_S = 2.0
ERROR_BACKOFF_CAP_S = 300.0
log = logging.getLogger("rivet_operator.queue")


class WorkQueue(Generic[K]):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()  # in _ready, not yet taken
        self._processing: set[K] = set()
        self._dirty: set[K] = set()  # added while processing: run again after
        self._due: dict[K, float] = {}  # delayed: the earliest time each key is due
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._failures: dict[K, int] = {}  # consecutive errors per key: exponential backoff

    def __len__(self) -> int:
        return len(self._queued) + len(self._due)

    @property
    def processing(self) -> int:
        return len(self._processing)

    def add(self, key: K, delay: float = 0.0) -> None:
        if delay > 0:
            due = self._clock() + delay
            if key in self._queued or (key in self._due and self._due[key] <= due):
                return
            self._due[key] = due
            heapq.heappush(self._heap, (due, next(self._seq), key))
            self._wake.set()
            return
        self._due.pop(key, None)
        if key in self._processing:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.put_nowait(key)

    def forget(self, key: K) -> None:
        """The object is gone: drop its delayed requeue."""
        self._due.pop(key, None)
        self._failures.pop(key, None)

    async def get(self) -> K:
        while True:
            key = await self._ready.get()
            if key in self._queued:
                self._queued.discard(key)
                self._processing.add(key)
                return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    async def run_timer(self) -> None:
        """Move delayed keys to the ready queue when they fall due."""
        while True:
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                due, _, key = heapq.heappop(self._heap)
                if self._due.get(key) == due:
                    del self._due[key]
                    self.add(key)
            timeout = (self._heap[0][0] - now) if self._heap else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def run_worker(self, process: Callable[[K], Awaitable[float | None]]) -> None:
        """Take keys one at a time; `process` returns seconds until it wants the key again (None: never)."""
        while True:
            key = await self.get()
            try:
                again = await process(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception:
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                again = min(ERROR_BACKOFF_CAP_S, ERROR_BACKOFF_S * 2 ** (failures - 1))
                log.exception("reconcile_failed key=%s failures=%d retry_in_s=%.0f", key, failures, again)
            finally:
                self.done(key)
            if again is not None:
                self.add(key, again)
