"""The read-ahead thread between a source and the encoder: order, errors and early stops."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pyarrow as pa
import pytest

from rivet.engine.pipeline import prefetch


def batches(n: int, closed: list[bool], fail_at: int | None = None) -> Iterator[pa.RecordBatch]:
    try:
        for i in range(n):
            if i == fail_at:
                raise RuntimeError(f"source failed at batch {i}")
            yield pa.record_batch([pa.array([i])], names=["i"])
    finally:
        closed.append(True)


def test_batches_arrive_in_order_and_the_source_is_closed() -> None:
    closed: list[bool] = []
    got = [b.column(0)[0].as_py() for b in prefetch(batches(50, closed))]
    assert got == list(range(50)) and closed == [True]


def test_a_source_error_reaches_the_consumer() -> None:
    closed: list[bool] = []
    with pytest.raises(RuntimeError, match="batch 3"):
        list(prefetch(batches(10, closed, fail_at=3)))
    assert closed == [True]


def test_stopping_early_stops_the_reader_thread_and_closes_the_source() -> None:
    closed: list[bool] = []
    before = threading.active_count()
    with contextlib.closing(prefetch(batches(1000, closed))) as it:
        next(it)
    assert closed == [True] and threading.active_count() == before
