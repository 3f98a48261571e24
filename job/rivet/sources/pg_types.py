"""PostgreSQL column (type OID, typmod, pg_type row) -> Arrow type. Pure: the catalog is passed in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa

from rivet.config.model import SourceType
from rivet.errors import UnsupportedTypeError
from rivet.sources import columns, sql
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
        raise unsupported(name, f"with OID {oid}{suffix}", f"{quote_ident(name)}::text", text_override=True)
    if info.typtype == "e" or info.name in TEXT_TYPE_NAMES:
        return pa.string()
    if info.category == "A" and info.elem and not in_array:
        return pa.list_(_map(name, info.elem, typmod, catalog, in_array=True))
    type_name = info.name.lstrip("_") + "[]" if info.category == "A" else info.name + suffix
    hint = CAST_HINTS.get(info.name, "text")
    raise unsupported(name, type_name, f"{quote_ident(name)}::{hint}{suffix}", text_override=True)


def column_field(column: PgColumn, catalog: Mapping[int, PgTypeInfo], override: str | None, csv: bool) -> pa.Field:
    """The described field of `column`: its `columns:` override if any (read as the database's text:
    `::text` gives the exact text of any type, and a decimal is cast from it exactly or refused), else, in
    CSV, an unconstrained numeric as its exact text, else the spec's mapping."""
    if override is not None:
        target = columns.override_type(override)
        if pa.types.is_decimal(target) and column.oid != NUMERIC_OID:
            raise UnsupportedTypeError(
                f'column "{column.name}" has type {type_name(column, catalog)}: a decimal override applies to'
                f" numeric columns only; use {columns.string_hint(column.name)}"
            )
        return columns.text_field(column.name, target, type_name(column, catalog))
    if csv and column.oid == NUMERIC_OID and numeric_typmod(column.typmod) is None:
        return columns.text_field(column.name, pa.string(), "numeric")
    return pa.field(column.name, arrow_type(column, catalog))


def type_name(column: PgColumn, catalog: Mapping[int, PgTypeInfo]) -> str:
    """The database's name of the column's type, for messages."""
    if column.oid == NUMERIC_OID:
        ps = numeric_typmod(column.typmod)
        return "numeric" if ps is None else f"numeric({ps[0]},{ps[1]})"
    info = catalog.get(column.oid)
    if info is not None:
        return info.name.lstrip("_") + "[]" if info.category == "A" else info.name
    return _BUILTIN_NAMES.get(column.oid, f"OID {column.oid}")


_BUILTIN_NAMES = {
    16: "boolean",
    17: "bytea",
    19: "name",
    20: "bigint",
    21: "smallint",
    23: "integer",
    25: "text",
    114: "json",
    700: "real",
    701: "double precision",
    1042: "character",
    1043: "character varying",
    1082: "date",
    1083: "time without time zone",
    1114: "timestamp without time zone",
    1184: "timestamp with time zone",
    2950: "uuid",
    3802: "jsonb",
}


def arrow_type_name(t: pa.DataType) -> str:
    """PostgreSQL's name for the type a column of Arrow type `t` was mapped from (refusals of values)."""
    if isinstance(t, pa.BaseExtensionType):
        return {"arrow.uuid": "uuid", "arrow.json": "json"}.get(t.extension_name, str(t))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return arrow_type_name(t.value_type) + "[]"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "timestamp with time zone" if t.tz else "timestamp without time zone"
    simple = {
        pa.bool_(): "boolean",
        pa.int16(): "smallint",
        pa.int32(): "integer",
        pa.int64(): "bigint",
        pa.float32(): "real",
        pa.float64(): "double precision",
        pa.string(): "text",
        pa.binary(): "bytea",
        pa.date32(): "date",
        TIME_US: "time without time zone",
    }
    return simple.get(t, str(t))


def _numeric(name: str, typmod: int, suffix: str) -> pa.DataType:
    ident = quote_ident(name)
    ps = numeric_typmod(typmod)
    if ps is None:
        raise UnsupportedTypeError(
            f'column "{name}" has type numeric{suffix} without precision and scale, which has no exact Parquet'
            f" decimal type: set {columns.override_hint(name)} on the export (a value that does not fit is"
            f" refused), or, rounding, cast it in a query, e.g. {ident}::numeric(38,9){suffix}"
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
        text_override=True,
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
