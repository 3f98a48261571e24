"""Behaviour behind the Rivet 0.8 keys that need some (the loader maps or refuses the rest,
config/rivet08.py; the table is docs/rivet-0.8-keys.md):

- `tuning.throttle_ms`: a pause after each batch (pipeline.THROTTLE_MS, set per worker thread);
- `meta_columns`: `_rivet_exported_at` and `_rivet_row_hash` appended to every part (pipeline.BATCH_TRANSFORM);
- `chunk_by_days`: the chunk key must be a date or timestamp (its chunk_size counts UTC days);
- `quality`: gates checked after every chunk is committed and before certify writes manifest.json and
  `_SUCCESS`; a failed gate fails the run (ContractError reason `QualityGate`, exit 1) and certifies nothing.

`rivet run` (commands/run.py) calls these; the operator's chunk and finalize Jobs do not (their configs are
rendered from RivetExport fields, which do not carry these keys).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from rivet.config.model import ExportConfig, Mode
from rivet.contract.fingerprint import schema_fingerprint
from rivet.contract.keys import KeyKind
from rivet.contract.manifest import CommitRecord
from rivet.engine import pipeline
from rivet.engine.context import RunContext
from rivet.errors import ConfigError, ContractError
from rivet.log import log
from rivet.sources.base import Source
from rivet.sources.sql import quote_ident, select_all

EXPORTED_AT = "_rivet_exported_at"
ROW_HASH = "_rivet_row_hash"
QUALITY_REASON = "QualityGate"

# -- per worker thread -----------------------------------------------------------------------------


def enter_worker(ctx: RunContext) -> None:
    """Set this worker thread's throttle and meta-column transform for `ctx`'s export."""
    pipeline.THROTTLE_MS.set(ctx.cfg.source.tuning.throttle_ms)
    meta = ctx.exp.meta_columns
    pipeline.BATCH_TRANSFORM.set(meta_transform(*meta) if meta else None)


# -- meta columns ----------------------------------------------------------------------------------


def output_schema(schema: pa.Schema, exported_at: bool, row_hash: bool) -> pa.Schema:
    """The parts' schema: the relation's columns, then `_rivet_exported_at`, then `_rivet_row_hash`."""
    for name in (EXPORTED_AT, ROW_HASH):
        if name in schema.names:
            raise ConfigError("meta_columns", f"the relation already has a column named {name}", "rename it")
    out = schema
    if exported_at:
        out = out.append(pa.field(EXPORTED_AT, pa.timestamp("us", tz="UTC"), nullable=False))
    if row_hash:
        out = out.append(pa.field(ROW_HASH, pa.int64(), nullable=False))
    return out


def meta_transform(exported_at: bool, row_hash: bool) -> pipeline.BatchTransform:
    """pipeline.BATCH_TRANSFORM for `meta_columns`. `_rivet_exported_at` is the UTC time the part's export
    began (one value for every row of a part); `_rivet_row_hash` is `row_hash()` of the row."""

    def make(schema: pa.Schema) -> tuple[pa.Schema, Callable[[pa.RecordBatch], pa.RecordBatch]]:
        out = output_schema(schema, exported_at, row_hash)
        if row_hash:
            for f in schema:
                _encoded(pa.nulls(0, f.type), f.name)  # a type we cannot encode fails before any byte
        now = pa.scalar(dt.datetime.now(dt.UTC), pa.timestamp("us", tz="UTC"))

        def apply(batch: pa.RecordBatch) -> pa.RecordBatch:
            columns = list(batch.columns)
            if exported_at:
                columns.append(pa.repeat(now, batch.num_rows))
            if row_hash:
                columns.append(row_hashes(batch))
            return pa.RecordBatch.from_arrays(columns, schema=out)

        return out, apply

    return make


def row_hashes(batch: pa.RecordBatch | pa.Table) -> pa.Array:
    """`_rivet_row_hash` of every row: XXH3-64 (seed 0) of the row's canonical encoding, as int64 (the
    unsigned digest's two's-complement reinterpretation). The encoding, column by column in schema order, is
    `-` for NULL, else `<n>:<bytes>` with n the byte length of the value's canonical bytes in decimal:

    - text and JSON: UTF-8; binary, uuid: the raw bytes;
    - booleans: `true` / `false`; integers: decimal text; decimals: plain text with exactly `scale` digits
      after the point (`-12.30`);
    - float32 / float64: decimal text of the signed int32 / int64 with the same IEEE-754 bits;
    - date: decimal days since 1970-01-01; time and timestamp: decimal count of the column's unit (rivet
      writes microseconds) since midnight / since 1970-01-01 00:00 UTC (timestamps without zone: the wall
      clock read as UTC).

    So a reader recomputes it from the Parquet or CSV values alone (docs/rivet-0.8-keys.md has an example)."""
    if batch.num_rows == 0:
        return pa.array([], pa.int64())
    parts = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        text = _encoded(column, name)
        length = pc.cast(pc.cast(pc.binary_length(text), pa.string()), pa.large_binary())
        framed = pc.binary_join_element_wise(length, text, pa.scalar(b":", pa.large_binary()))
        parts.append(pc.fill_null(framed, pa.scalar(b"-", pa.large_binary())))
    rows = pc.binary_join_element_wise(*parts, pa.scalar(b"", pa.large_binary()))
    digests = [xxhash.xxh3_64_intdigest(b) for b in rows.to_pylist()]
    return pa.array(digests, pa.uint64()).view(pa.int64())


def _encoded(column: pa.Array, name: str) -> pa.Array:
    """The canonical bytes of each value of `column` (nulls stay null), as large_binary."""
    if isinstance(column.type, pa.BaseExtensionType):
        column = column.storage
    t = column.type
    if pa.types.is_floating(t):
        bits = pa.int32() if t.bit_width == 32 else pa.int64()
        if t.bit_width not in (32, 64):
            raise ConfigError("meta_columns.row_hash", f"column {name} has type {t}, which row_hash cannot encode")
        column = column.view(bits)
    elif pa.types.is_date32(t):
        column = column.view(pa.int32())
    elif pa.types.is_timestamp(t) or pa.types.is_time64(t) or pa.types.is_time32(t):
        column = column.view(pa.int64() if t.bit_width == 64 else pa.int32())
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return pc.cast(column, pa.large_binary())
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        return pc.cast(column, pa.large_binary())
    if pa.types.is_fixed_size_binary(column.type):
        return pc.cast(pc.cast(column, pa.binary()), pa.large_binary())
    if (
        pa.types.is_integer(column.type)
        or pa.types.is_boolean(column.type)
        or pa.types.is_decimal(column.type)
        or pa.types.is_null(column.type)
    ):
        return pc.cast(pc.cast(column, pa.string()), pa.large_binary())
    raise ConfigError(
        "meta_columns.row_hash", f"column {name} has type {t}, which row_hash cannot encode", "remove row_hash"
    )


class MetaRunContext(RunContext):
    """A run whose parts carry meta columns: its schema fingerprint is the parts' (meta columns included)."""

    @property
    def schema_fp(self) -> str:
        meta = self.exp.meta_columns or (False, False)
        return schema_fingerprint(output_schema(self.schema, *meta))


def with_meta(ctx: RunContext) -> RunContext:
    """`ctx`, as a MetaRunContext when its export adds meta columns."""
    if not ctx.exp.meta_columns:
        return ctx
    return MetaRunContext(ctx.cfg, ctx.exp, ctx.run_id, ctx.run_date, ctx.plan, ctx.schema, ctx.cursor, ctx.producer)


# -- chunk_by_days ---------------------------------------------------------------------------------


def check_chunk_by_days(exp: ExportConfig, kind: KeyKind | None) -> None:
    """`chunk_by_days` counts UTC days: the chunk key must be a date or timestamp column."""
    if exp.chunk_by_days is None or kind in (KeyKind.DATE, KeyKind.TIMESTAMP, KeyKind.TIMESTAMPTZ):
        return
    raise ConfigError(
        f"{exp.path}.chunk_by_days",
        f"needs a date or timestamp chunk column; {exp.chunk_column} is {kind.value if kind else 'not one'}",
        "use chunk_size (keys per chunk) for integer keys",
    )


# -- quality gates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    rows: int
    failures: tuple[str, ...]


def check_quality(ctx: RunContext, source: Source, records: Iterable[CommitRecord]) -> Verdict | None:
    """The export's quality gates, before certify; ContractError(reason QualityGate) naming every failed one.

    row_count_min / row_count_max compare the rows the run's parts hold (the ledger's counts, exact).
    null_ratio_max and unique_columns are counted by the database over the rows the export selects (the
    whole relation for full and chunked runs, the window or cursor range otherwise), just before certify:
    a later snapshot than the parts', so rows written meanwhile count too (as with `rivet reconcile`).
    NULLs are neither duplicates nor distinct values for unique_columns."""
    q = ctx.exp.quality
    if q is None:
        return None
    rows = sum(r.rows for r in records)
    failures: list[str] = []
    if q.row_count_min is not None and rows < q.row_count_min:
        failures.append(f"row_count_min: {rows} rows < {q.row_count_min}")
    if q.row_count_max is not None and rows > q.row_count_max:
        failures.append(f"row_count_max: {rows} rows > {q.row_count_max}")
    names = set(ctx.schema.names)
    for col in [c for c, _ in q.null_ratio_max] + list(q.unique_columns):
        if col not in names:
            raise ConfigError(f"{ctx.exp.path}.quality", f"names column {col!r}, which the export does not have")
    if q.null_ratio_max or q.unique_columns:
        base = _selected(ctx)
        engine = source.engine
        total = int(source.scalar(base.wrap("SELECT COUNT(*) FROM (\n", "\n) AS rivet_q")))
        for col, limit in q.null_ratio_max:
            c = quote_ident(engine, col)
            nulls = int(source.scalar(base.wrap(f"SELECT COUNT(*) - COUNT({c}) FROM (\n", "\n) AS rivet_q")))
            ratio = nulls / total if total else 0.0
            if ratio > limit:
                failures.append(f"null_ratio_max.{col}: {nulls}/{total} = {ratio:.4f} > {limit:g}")
        for col in q.unique_columns:
            c = quote_ident(engine, col)
            dupes = int(
                source.scalar(
                    base.wrap(
                        f"SELECT COUNT(*) FROM (SELECT {c} FROM (\n",
                        f"\n) AS rivet_q WHERE {c} IS NOT NULL GROUP BY {c} HAVING COUNT(*) > 1) AS rivet_d",
                    )
                )
            )
            if dupes:
                failures.append(f"unique_columns.{col}: {dupes} values appear more than once")
    log("quality_checked", export=ctx.exp.name, run_id=ctx.run_id, rows=rows, failures=len(failures))
    if failures:
        raise ContractError(
            f"{ctx.exp.path}.quality: {'; '.join(failures)}; nothing certified (the parts stay, uncertified:"
            " fix the data or the gates, then rivet run --resume)",
            reason=QUALITY_REASON,
        )
    return Verdict(rows, ())


def _selected(ctx: RunContext) -> Any:
    """The rows the export selects, as one query."""
    if ctx.exp.mode in (Mode.FULL, Mode.CHUNKED):
        return select_all(ctx.cfg.source.type, ctx.exp)
    return ctx.query(ctx.plan.chunk(1))
