"""What kind of column a chunk key, cursor or time window is, judged by its type, never by its values.

Chunk arithmetic is integer arithmetic in the key's unit: the key itself for integer columns, whole UTC
days for date and timestamp columns (as the Rivet CLI chunks by days). `value_at` turns a unit number
back into a typed value of the column's kind, to be bound into the chunk's predicate.

Keyset chunking (`contract.plan`, `Plan.keyset`) needs no arithmetic, only an order the database owns: uuid,
text and binary keys (`keyset_kind_of`), and integer, date and timestamp keys when `chunk_by_key` asks for it.
"""

from __future__ import annotations

import datetime as dt
import decimal
from enum import StrEnum
from typing import Any

import pyarrow as pa

EPOCH = dt.date(1970, 1, 1)


class KeyKind(StrEnum):
    INT = "int"
    DATE = "date"
    TIMESTAMP = "timestamp"  # naive: compared as the data's own wall clock
    TIMESTAMPTZ = "timestamptz"  # an instant: compared in UTC
    # keyset only: ordered and compared by the database (its collation), never by Python
    UUID = "uuid"
    TEXT = "text"
    BINARY = "binary"


RANGE_KINDS = frozenset({KeyKind.INT, KeyKind.DATE, KeyKind.TIMESTAMP, KeyKind.TIMESTAMPTZ})


def kind_of(arrow_type: pa.DataType) -> KeyKind | None:
    """The key kind of a column of `arrow_type`, or None when it cannot key chunks exactly."""
    if pa.types.is_integer(arrow_type):
        return KeyKind.INT
    if pa.types.is_decimal(arrow_type) and arrow_type.scale == 0:
        return KeyKind.INT
    if pa.types.is_date(arrow_type):
        return KeyKind.DATE
    if pa.types.is_timestamp(arrow_type):
        return KeyKind.TIMESTAMP if arrow_type.tz is None else KeyKind.TIMESTAMPTZ
    return None


def keyset_kind_of(arrow_type: pa.DataType) -> KeyKind | None:
    """The kind of a key that only keyset chunking can split: uuid, text (not JSON) and binary columns."""
    if isinstance(arrow_type, pa.UuidType):
        return KeyKind.UUID
    if isinstance(arrow_type, pa.ExtensionType):
        return None  # JSON and other logical types: no meaningful order
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return KeyKind.TEXT
    if (
        pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
        or pa.types.is_fixed_size_binary(arrow_type)
    ):
        return KeyKind.BINARY
    return None


def unit_of(kind: KeyKind, value: Any) -> int:
    """The unit number of a bound read from the source (an integer, or the UTC day it falls on)."""
    if kind is KeyKind.INT:
        if isinstance(value, bool) or not isinstance(value, int | decimal.Decimal):
            raise TypeError(f"expected an integer key, got {type(value).__name__}")
        if isinstance(value, decimal.Decimal) and value != value.to_integral_value():
            raise TypeError(f"expected an integer key, got {value}")
        return int(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return int((value.date() - EPOCH).days)
    if isinstance(value, dt.date):
        return (value - EPOCH).days
    raise TypeError(f"expected a date or timestamp key, got {type(value).__name__}")


def value_at(kind: KeyKind, unit: int) -> Any:
    """The typed value that starts unit number `unit` (an int, a date, or midnight of that UTC day)."""
    if kind is KeyKind.INT:
        return unit
    day = EPOCH + dt.timedelta(days=unit)
    if kind is KeyKind.DATE:
        return day
    midnight = dt.datetime(day.year, day.month, day.day)
    return midnight.replace(tzinfo=dt.UTC) if kind is KeyKind.TIMESTAMPTZ else midnight


def show(kind: KeyKind | None, unit: int) -> int | str:
    """A unit number as a manifest shows it: the integer key, or the ISO date of the day."""
    if kind is None or kind is KeyKind.INT:
        return unit
    return (EPOCH + dt.timedelta(days=unit)).isoformat()


def window_edge(kind: KeyKind, day: dt.date) -> Any:
    """The start of UTC calendar day `day` as a value comparable with a time column of `kind`."""
    return value_at(kind, (day - EPOCH).days)
