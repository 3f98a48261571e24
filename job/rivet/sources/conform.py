"""Bring driver batches to the exact target schema and to at most `batch_size` rows.

Drivers disagree with the spec in small ways (ADBC: numeric as an opaque string, citext as opaque bytes;
ConnectorX: tinyint(1) as int8, timestamp naive, blobs as large_binary, decimals as decimal(38,10)).
Every cast here is Arrow's safe cast, so a value that does not fit exactly raises instead of rounding;
the few casts Arrow would make lossy without raising (integer to Boolean) are checked first. A value
with no exact target value is refused with UnsupportedTypeError naming the column and the query fix.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from rivet.errors import SourceError, UnsupportedTypeError
from rivet.sources import mysql_types, pg_types
from rivet.sources.columns import db_type_of, is_text, string_hint
from rivet.sources.types import InexactValue

# How ADBC spells PostgreSQL's non-finite numerics, and how PostgreSQL spells them.
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity", "infinity": "Infinity", "-infinity": "-Infinity"}


# engine -> (column, target type, InexactValue) -> the query expression that exports the column exactly.
_HINTS: dict[str, Callable[[str, pa.DataType, InexactValue], str]] = {
    "postgres": pg_types.inexact_hint,
    "mysql": mysql_types.inexact_hint,
}


def conform_array(arr: pa.Array, target: pa.DataType) -> pa.Array:
    """`arr` as `target`: unwrap driver extension types, rebuild lists, wrap JSON/UUID, cast exactly."""
    if arr.type == target:
        return arr
    if isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
        if arr.type == target:
            return arr
    if isinstance(target, pa.BaseExtensionType):
        storage = conform_array(arr, target.storage_type)
        return pa.ExtensionArray.from_storage(target, storage)
    if pa.types.is_list(target) and (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        return _conform_list(arr, target)
    if pa.types.is_boolean(target) and pa.types.is_integer(arr.type):
        _refuse_non_boolean(arr)  # Arrow casts any non-zero integer to true
    try:
        return pc.cast(arr, target, safe=True)
    except pa.ArrowInvalid:
        if pa.types.is_decimal(target) and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            _refuse_non_finite(arr)  # only on failure: the common path pays nothing
        raise


def _refuse_non_boolean(arr: pa.Array) -> None:
    bounds = pc.min_max(arr)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    bad = low if low is not None and low < 0 else high if high is not None and high > 1 else None
    if bad is not None:
        raise InexactValue(InexactValue.BOOLEAN, str(bad), "(only 0 and 1 map to a boolean exactly)")


def _refuse_non_finite(arr: pa.Array) -> None:
    lowered = pc.utf8_lower(arr)
    hits = pc.filter(lowered, pc.is_in(lowered, value_set=pa.array(list(_NON_FINITE))))
    if len(hits):
        value = _NON_FINITE[hits[0].as_py()]
        raise InexactValue(InexactValue.NON_FINITE, value, "(Arrow decimals have no NaN or infinity)")


def _conform_list(arr: pa.Array, target: pa.DataType) -> pa.Array:
    offsets = arr.offsets
    values = arr.values
    if arr.offset:  # a slice: rebase offsets and values so the null mask lines up (Arrow requires it)
        start, end = offsets[0].as_py(), offsets[-1].as_py()
        values = values.slice(start, end - start)
        offsets = pc.subtract(offsets, pa.scalar(start, offsets.type))
    mask = arr.is_null() if arr.null_count else None
    return pa.ListArray.from_arrays(offsets, conform_array(values, target.value_type), type=target, mask=mask)


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema, engine: str, offset: int = 0) -> pa.RecordBatch:
    """The first len(schema) columns of `batch`, by position, as `schema`. `offset`: the rows of the part
    before this batch (to name a refused row by its position when the export names no key)."""
    if batch.schema.names[: len(schema)] != schema.names:
        raise SourceError(
            f"{engine}: the query returns columns {batch.schema.names[: len(schema)]}, not {schema.names} "
            "as described: did the table change? Re-run to describe it again"
        )
    columns = []
    for i, field in enumerate(schema):
        try:
            if is_text(field) and pa.types.is_decimal(field.type):
                columns.append(_text_to_decimal(batch, i, field, schema, offset))
                continue
            columns.append(conform_array(batch.column(i), field.type))
        except InexactValue as exc:
            hint = _HINTS[engine](field.name, field.type, exc) if engine in _HINTS else ""
            raise UnsupportedTypeError(
                f'column "{field.name}" holds {exc.value}, which has no exact value'
                f" ({type_name(engine, field)}: {exc.why.strip('()')})"
                + (f": cast it in a query, e.g. {hint}" if hint else "")
            ) from None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise SourceError(
                f'{engine}: column "{field.name}" has a value that does not fit {type_name(engine, field)} exactly: '
                f"{str(exc).splitlines()[0]}"
            ) from None
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def type_name(engine: str, field: pa.Field) -> str:
    """The database's name for the field's type, for messages (never an Arrow spelling)."""
    recorded = db_type_of(field)
    if recorded is not None:
        return recorded
    return (pg_types.arrow_type_name if engine == "postgres" else mysql_types.arrow_type_name)(field.type)


ROW_KEY = b"rivet.row_key"  # schema metadata: JSON list of the columns that name a row (primary key)


def _text_to_decimal(batch: pa.RecordBatch, i: int, field: pa.Field, schema: pa.Schema, offset: int) -> pa.Array:
    """A text-read column (a `decimal(p,s)` override) cast exactly, or refused naming the first value that
    does not fit, why, and its row (by key, else by position in the part)."""
    arr = batch.column(i)
    if isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
    try:
        return pc.cast(arr, field.type, safe=True)
    except pa.ArrowInvalid:
        pass
    target = field.type
    texts = arr.to_pylist()
    for row, text in enumerate(texts):
        why = decimal_misfit(text, target.precision, target.scale)
        if why is not None:
            raise UnsupportedTypeError(
                f'column "{field.name}" ({db_type_of(field)}) holds {text} {_row_name(batch, schema, row, offset)},'
                f" which does not fit the override decimal({target.precision},{target.scale}): {why}. Nothing is"
                f" rounded: widen the override in columns: (at most decimal(38,s)), or set"
                f" columns: {{{field.name}: string}} to export its exact text"
            )
    # Every value fits, but Arrow's parser refused one with more digits than 38 (trailing zeros, as MySQL
    # writes decimal(65,30)): quantize them to the scale in Python, exactly (no value has digits to lose).
    exact = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.InvalidOperation])
    step = decimal.Decimal(1).scaleb(-target.scale)
    values = [None if t is None else decimal.Decimal(t).quantize(step, context=exact) for t in texts]
    return pa.array(values, type=target)


def decimal_misfit(text: str | None, precision: int, scale: int) -> str | None:
    """Why the database text `text` of a number has no exact decimal(precision, scale) value; None if it has."""
    if text is None:
        return None
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return "it is not a number"
    if not value.is_finite():
        return "a decimal has no NaN or infinity"
    if value.is_zero():
        return None
    _, digits, exponent = value.as_tuple()  # not normalize(): it rounds to the context's 28 digits
    assert isinstance(exponent, int)
    while digits and digits[-1] == 0:  # trailing zeros past the point lose nothing
        digits, exponent = digits[:-1], exponent + 1
    fraction = max(0, -exponent)
    integer = max(0, len(digits) + exponent)
    if fraction > scale:
        return f"it has {fraction} digits after the point and the scale is {scale}"
    if integer > precision - scale:
        return f"it has {integer} digits before the point and decimal({precision},{scale}) holds {precision - scale}"
    return None


def _row_name(batch: pa.RecordBatch, schema: pa.Schema, row: int, offset: int) -> str:
    """`in the row with id = 7`, or `in row 12 of the part` when the export names no key."""
    raw = (schema.metadata or {}).get(ROW_KEY)
    keys = [k for k in (json.loads(raw) if raw else []) if k in schema.names]
    if keys:
        parts = [f"{k} = {_shown(batch.column(schema.get_field_index(k))[row].as_py())}" for k in keys]
        return "in the row with " + " and ".join(parts)
    return f"in row {offset + row + 1} of the part"


def _shown(value: object) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- PostgreSQL through ADBC ------------------------------------------------------------------

# ADBC 1.13 shifts PostgreSQL's 2000-based values to 1970 with wrap-around: 'infinity' and '-infinity'
# (INT64/INT32 max and min) and timestamps after 294247-01-10 (beyond int64 microseconds since 1970)
# come out as values tens of thousands of years before 4713 BC, PostgreSQL's minimum.
_PG_EPOCH_US = 946_684_800_000_000
_PG_EPOCH_DAYS = 10_957
_INT64_MIN, _INT32_MIN = -(2**63), -(2**31)
_TIMESTAMP_INFINITIES = {_INT64_MIN + _PG_EPOCH_US - 1: "infinity", _INT64_MIN + _PG_EPOCH_US: "-infinity"}
_DATE_INFINITIES = {_INT32_MIN + _PG_EPOCH_DAYS - 1: "infinity", _INT32_MIN + _PG_EPOCH_DAYS: "-infinity"}
_TIMESTAMP_FLOOR = -(10**18)  # ~31,000 BC in microseconds
_DATE_FLOOR = -(10**9)  # ~2.7 million years BC in days


def conform_pg_batch(
    batch: pa.RecordBatch, schema: pa.Schema, markers: list[tuple[int, str]], offset: int = 0
) -> pa.RecordBatch:
    """Refuse multi-dimensional arrays, arrays not based at 1 and wrapped-around temporals, drop the marker
    columns, cast."""
    for i, field in enumerate(schema):
        refuse_pg_wrapped_temporal(field.name, batch.column(i))
    for index, name in markers:
        worst = pc.max(batch.column(index)).as_py()
        if worst:
            what = (
                "a multi-dimensional array (only 1-D arrays map to a list)"
                if worst > 1
                else "an array whose subscripts do not start at 1 (e.g. '[0:1]={7,8}'), whose bounds a list would lose"
            )
            raise UnsupportedTypeError(
                f'column "{name}" holds {what}: cast it in a query, e.g. {pg_types.quote_ident(name)}::text, or'
                f" set {string_hint(name)}"
            )
    return conform_batch(batch, schema, "postgres", offset)


def refuse_pg_wrapped_temporal(name: str, column: pa.Array) -> None:
    """UnsupportedTypeError if a date/timestamp column (or array of them) holds a wrapped-around value."""
    suffix = ""
    while pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        column, suffix = column.flatten(), "[]"
    if pa.types.is_timestamp(column.type):
        floor, storage, infinities = _TIMESTAMP_FLOOR, pa.int64(), _TIMESTAMP_INFINITIES
    elif pa.types.is_date32(column.type):
        floor, storage, infinities = _DATE_FLOOR, pa.int32(), _DATE_INFINITIES
    else:
        return
    if column.null_count == len(column):
        return
    low = pc.min(column.view(storage)).as_py()
    if low is None or low >= floor:
        return
    ident = pg_types.quote_ident(name)
    if low in infinities:
        fix = f"{ident}::text[]" if suffix else f"CASE WHEN isfinite({ident}) THEN {ident} END"
        raise UnsupportedTypeError(
            f'column "{name}" holds infinity or -infinity, which has no exact value'
            f" ({pg_types.arrow_type_name(column.type)}{suffix}: Arrow dates and timestamps have no infinity): "
            f"cast it in a query, e.g. {fix}"
        )
    raise UnsupportedTypeError(  # wrapped values of timestamps after 294247 AD sort below the infinities
        f'column "{name}" holds a value after 294247-01-10, which has no exact value'
        f" ({pg_types.arrow_type_name(column.type)}{suffix}: Arrow timestamps end there): "
        f"cast it in a query, e.g. {ident}::text{suffix}"
    )


def rechunk(batches: Iterable[pa.RecordBatch], batch_size: int) -> Iterator[pa.RecordBatch]:
    """Zero-copy slices of at most `batch_size` rows; empty batches dropped (they'd be empty row groups)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    for batch in batches:
        for offset in range(0, batch.num_rows, batch_size):
            yield batch.slice(offset, batch_size)
