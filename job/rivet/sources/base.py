"""The one interface every source implements. SQL text comes from `rivet.sql` (pure, per dialect)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pyarrow as pa

from rivet.config.model import SourceType


class Source(Protocol):
    engine: SourceType

    def describe(self, sql: str) -> pa.Schema:
        """The exact output schema of `sql` under the spec's type mapping, without reading rows.

        Raises UnsupportedTypeError naming the column and the cast to use, before any byte is written.
        """

    def scalar(self, sql: str) -> Any:
        """First column of the first row (bounds, counts), through the light metadata driver."""

    def stream(self, sql: str, schema: pa.Schema, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Rows of `sql` as batches of exactly `schema` (cast as needed), never empty, memory bounded."""

    def close(self) -> None: ...
