"""The one interface every source implements. SQL comes from `rivet.sources.sql` as a `Query` whose
values each source binds (or renders with its dialect's literal function, for readers that cannot bind)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pyarrow as pa

from rivet.config.model import SourceType
from rivet.sources.query import Query


class Source(Protocol):
    engine: SourceType

    def describe(self, query: Query) -> pa.Schema:
        """The exact output schema of `query` under the spec's type mapping, without reading rows.

        Raises UnsupportedTypeError naming the column and the cast to use, before any byte is written.
        """

    def scalar(self, query: Query) -> Any:
        """First column of the first row (bounds, counts), through the light metadata driver."""

    def column(self, query: Query) -> list[Any]:
        """First column of every row (keyset boundaries, a few hundred at most), through the metadata driver."""

    def stream(self, query: Query, schema: pa.Schema, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Rows of `query` as batches of exactly `schema` (cast as needed), never empty, memory bounded."""

    def close(self) -> None: ...
