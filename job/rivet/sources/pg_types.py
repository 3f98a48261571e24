"""PostgreSQL column (type OID, typmod, pg_type row) -> Arrow type. Pure: the catalog is passed in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa

from rivet.config.model import SourceType
from rivet.sources import sql
from rivet.sources.types import (
    JSON,
    TIME_US,
    TIMESTAMP_US,
    TIMESTAMP_US_UTC,
    UUID,
    InexactValue,
    decimal_type,
    unsupported,
)

NUMERIC_OID = 1700

# Built-in OIDs are fixed across PostgreSQL versions (src/include/catalog/pg_type.dat).
SCALAR_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),  # bool
    17: pa.binary(),  # bytea
    19: pa.string(),  # name
    20: pa.int64(),  # int8
    21: pa.int16(),  # int2
    23: pa.int32(),  # int4
    25: pa.string(),  # text
    114: JSON,  # json
    700: pa.float32(),  # float4
    701: pa.float64(),  # float8
    1042: pa.string(),  # bpchar (char(n))
    1043: pa.string(),  # varchar
    1082: pa.date32(),  # date
    1083: TIME_US,  # time
    1114: TIMESTAMP_US,  # timestamp
    1184: TIMESTAMP_US_UTC,  # timestamptz
    2950: UUID,  # uuid
    3802: JSON,  # jsonb
}

# Extension types without a fixed OID that are plain text on the wire.
TEXT_TYPE_NAMES = frozenset({"citext"})

# The cast to suggest per unsupported type; anything unlisted is suggested `::text`.
CAST_HINTS: dict[str, str] = {
    "money": "numeric(20,2)",
    "oid": "int8",
    "xid": "text",
    "char": "text",
}


@dataclass(frozen=True)
class PgTypeInfo:
    """The pg_type facts the mapping needs: name, kind (`e` enum, `b` base ...), array element OID."""

    oid: int
    name: str
    typtype: str
    elem: int = 0
    category: str = ""


@dataclass(frozen=True)
class PgColumn:
    """One column of a result description: name, type OID and raw typmod (-1 when absent)."""

    name: str
    oid: int
    typmod: int = -1


def numeric_typmod(typmod: int) -> tuple[int, int] | None:
    """(precision, scale) of numeric(p,s); None for unbounded numeric. Scale is 11-bit signed (PG 15)."""
    if typmod < 4:
        return None
    packed = typmod - 4
    precision = (packed >> 16) & 0xFFFF
    scale = ((packed & 0x7FF) ^ 1024) - 1024
    return precision, scale


def quote_ident(name: str) -> str:
    """A column name quoted by the one quoting function (`rivet.sources.sql`)."""
    return sql.quote_ident(SourceType.POSTGRES, name)


def arrow_type(column: PgColumn, catalog: Mapping[int, PgTypeInfo]) -> pa.DataType:
    """The spec's Arrow type for `column`, or UnsupportedTypeError naming it and the cast to use."""
    return _map(column.name, column.oid, column.typmod, catalog, in_array=False)


def catalog_oids_needed(columns: list[PgColumn]) -> list[int]:
    """OIDs the mapping must look up in pg_type (everything not built in)."""
    return sorted({c.oid for c in columns if c.oid not in SCALAR_TYPES and c.oid != NUMERIC_OID})


def _map(name: str, oid: int, typmod: int, catalog: Mapping[int, PgTypeInfo], *, in_array: bool) -> pa.DataType:
    suffix = "[]" if in_array else ""
    if oid in SCALAR_TYPES:
        return SCALAR_TYPES[oid]
    if oid == NUMERIC_OID:
        return _numeric(name, typmod, suffix)
    info = catalog.get(oid)
    if info is None:
        raise unsupported(name, f"with OID {oid}{suffix}", f"{quote_ident(name)}::text")
    if info.typtype == "e" or info.name in TEXT_TYPE_NAMES:
        return pa.string()
    if info.category == "A" and info.elem and not in_array:
        return pa.list_(_map(name, info.elem, typmod, catalog, in_array=True))
    type_name = info.name.lstrip("_") + "[]" if info.category == "A" else info.name + suffix
    hint = CAST_HINTS.get(info.name, "text")
    raise unsupported(name, type_name, f"{quote_ident(name)}::{hint}{suffix}")


def _numeric(name: str, typmod: int, suffix: str) -> pa.DataType:
    ident = quote_ident(name)
    ps = numeric_typmod(typmod)
    if ps is None:
        raise unsupported(
            name,
            f"numeric{suffix}",
            f"{ident}::numeric(38,9){suffix}",
            "without precision and scale, which has no exact Arrow mapping",
        )
    precision, scale = ps
    target = decimal_type(precision, scale)
    if target is not None:
        return target
    if scale < 0:
        hint = f"numeric({precision - scale},0)"
    elif scale > precision:
        hint = f"numeric({scale},{scale})"
    else:
        hint = "text"
    raise unsupported(
        name,
        f"numeric({precision},{scale}){suffix}",
        f"{ident}::{hint}{suffix}",
        "with no exact Arrow decimal (at most 76 digits, scale 0..precision)",
    )


def inexact_hint(name: str, target: pa.DataType, exc: InexactValue) -> str:
    """The query expression that exports column `name` exactly when a value of it has no `target` value."""
    ident = quote_ident(name)
    if exc.kind == InexactValue.NON_FINITE and pa.types.is_decimal(target):
        numeric = f"numeric({target.precision},{target.scale})"
        if exc.value == "NaN":
            return f"NULLIF({ident}, 'NaN')::{numeric} to export NaN as NULL, or {ident}::text"
        return f"CASE WHEN {ident} IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE {ident} END::{numeric}"
    return f"{ident}::text[]" if pa.types.is_list(target) else f"{ident}::text"
