"""MySQL/MariaDB result field (type code, flags, length, decimals, charset) -> Arrow type. Pure.

MariaDB stores JSON as LONGTEXT with a json_valid() check and reports it as text, so it maps to Utf8
(without the JSON logical type); MySQL 8 reports a real JSON type (245), which maps to the JSON type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

from rivet.config.model import SourceType
from rivet.errors import UnsupportedTypeError
from rivet.sources import columns, sql
from rivet.sources.types import JSON, TIME_US, TIMESTAMP_US, TIMESTAMP_US_UTC, InexactValue, decimal_type, unsupported

# Protocol type codes (include/mysql_com.h; pymysql.constants.FIELD_TYPE).
DECIMAL, TINY, SHORT, LONG, FLOAT, DOUBLE, NULL, TIMESTAMP, LONGLONG, INT24 = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
DATE, TIME, DATETIME, YEAR, NEWDATE, VARCHAR, BIT = 10, 11, 12, 13, 14, 15, 16
JSON_CODE, NEWDECIMAL, ENUM, SET, TINY_BLOB, MEDIUM_BLOB, LONG_BLOB, BLOB = 245, 246, 247, 248, 249, 250, 251, 252
VAR_STRING, STRING, GEOMETRY = 253, 254, 255

UNSIGNED_FLAG = 32
BINARY_CHARSET = 63  # charset 63 is "binary": a blob, not text (the BINARY flag also marks *_bin collations)

_STRINGS = frozenset({VARCHAR, ENUM, SET, TINY_BLOB, MEDIUM_BLOB, LONG_BLOB, BLOB, VAR_STRING, STRING})
_SIMPLE: dict[int, pa.DataType] = {
    INT24: pa.int32(),
    FLOAT: pa.float32(),
    DOUBLE: pa.float64(),
    DATE: pa.date32(),
    NEWDATE: pa.date32(),
    TIME: TIME_US,
    DATETIME: TIMESTAMP_US,
    TIMESTAMP: TIMESTAMP_US_UTC,
    JSON_CODE: JSON,
}
# (signed, unsigned): unsigned widens to the next signed width so no value overflows.
_INTEGERS: dict[int, tuple[pa.DataType, pa.DataType]] = {
    TINY: (pa.int8(), pa.int16()),
    SHORT: (pa.int16(), pa.int32()),
    LONG: (pa.int32(), pa.int64()),
    LONGLONG: (pa.int64(), pa.uint64()),
}
_UNSUPPORTED: dict[int, tuple[str, str]] = {  # type code -> (type name, cast template)
    BIT: ("bit", "CAST({c} AS UNSIGNED)"),
    YEAR: ("year", "CAST({c} AS SIGNED)"),
    GEOMETRY: ("geometry", "ST_AsText({c})"),
    NULL: ("null", "CAST({c} AS CHAR)"),
}


@dataclass(frozen=True)
class MyField:
    """The field-descriptor facts the mapping needs (from the result set metadata)."""

    name: str
    type_code: int
    length: int = 0
    decimals: int = 0
    flags: int = 0
    charset: int = BINARY_CHARSET

    @property
    def unsigned(self) -> bool:
        return bool(self.flags & UNSIGNED_FLAG)


def quote_ident(name: str) -> str:
    """A column name quoted by the one quoting function (`rivet.sources.sql`)."""
    return sql.quote_ident(SourceType.MYSQL, name)


def decimal_precision(field: MyField) -> int:
    """Precision from the display length: minus the point when scale > 0, minus the sign when signed."""
    return field.length - (1 if field.decimals > 0 else 0) - (0 if field.unsigned else 1)


def arrow_type(field: MyField) -> pa.DataType:
    """The spec's Arrow type for `field`, or UnsupportedTypeError naming it and the cast to use."""
    code = field.type_code
    if code == TINY and field.length == 1:  # tinyint(1) is MySQL's boolean
        return pa.bool_()
    if code in _INTEGERS:
        signed, unsigned = _INTEGERS[code]
        return unsigned if field.unsigned else signed
    if code in _SIMPLE:
        return _SIMPLE[code]
    if code in _STRINGS:
        return pa.binary() if field.charset == BINARY_CHARSET else pa.string()
    if code in (DECIMAL, NEWDECIMAL):
        precision, scale = decimal_precision(field), field.decimals
        target = decimal_type(precision, scale)
        if target is None:
            raise unsupported(field.name, f"decimal({precision},{scale})", f"CAST({quote_ident(field.name)} AS CHAR)")
        return target
    name, cast = _UNSUPPORTED.get(code, (f"with code {code}", "CAST({c} AS CHAR)"))
    raise unsupported(field.name, name, cast.format(c=quote_ident(field.name)))


def arrow_type_name(t: pa.DataType) -> str:
    """MySQL's name for the type a column of Arrow type `t` was mapped from (refusals of values)."""
    if isinstance(t, pa.BaseExtensionType):
        return "json" if t.extension_name == "arrow.json" else str(t)
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "timestamp" if t.tz else "datetime"
    simple = {
        pa.bool_(): "tinyint(1)",
        pa.int8(): "tinyint",
        pa.int16(): "smallint",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.uint64(): "bigint unsigned",
        pa.float32(): "float",
        pa.float64(): "double",
        pa.string(): "text",
        pa.binary(): "blob",
        pa.date32(): "date",
        TIME_US: "time",
    }
    return simple.get(t, str(t))


def column_field(field: MyField, override: str | None) -> pa.Field:
    """The described field: its `columns:` override if any (read as `CAST(... AS CHAR)`, the server's text,
    a decimal cast from it exactly or refused), else the spec's mapping."""
    if override is None:
        return pa.field(field.name, arrow_type(field))
    target = columns.override_type(override)
    name = type_name(field)
    if pa.types.is_decimal(target) and field.type_code not in (DECIMAL, NEWDECIMAL):
        raise UnsupportedTypeError(
            f'column "{field.name}" has type {name}: a decimal override applies to decimal columns only;'
            f" use {columns.string_hint(field.name)}"
        )
    return columns.text_field(field.name, target, name)


def type_name(field: MyField) -> str:
    """The column's type in MySQL's words, for messages."""
    code = field.type_code
    if code in (DECIMAL, NEWDECIMAL):
        return f"decimal({decimal_precision(field)},{field.decimals})"
    if code in _UNSUPPORTED:
        return _UNSUPPORTED[code][0]
    try:
        return arrow_type_name(arrow_type(field))
    except UnsupportedTypeError:
        return f"type code {code}"


def inexact_hint(name: str, target: pa.DataType, exc: InexactValue) -> str:
    """The query expression that exports column `name` exactly when a value of it has no `target` value."""
    if exc.kind == InexactValue.BOOLEAN:  # tinyint(1) holding other integers: export it as the integer
        return f"CAST({quote_ident(name)} AS SIGNED)"
    return f"CAST({quote_ident(name)} AS CHAR)"


# ConnectorX panics on a DATE/DATETIME/TIMESTAMP that is no calendar date (MariaDB's zero date
# '0000-00-00', a zero month or day, ALLOW_INVALID_DATES): chrono cannot hold it, and neither can Arrow.
_INVALID_DATE = re.compile(r"Option<chrono::naive::(\w+)::(\w+)>`: Couldn't convert the value `Date\(\"'([^']*)'\"\)`")


def invalid_date_refusal(driver_text: str, schema: pa.Schema) -> UnsupportedTypeError | None:
    """The refusal for a ConnectorX read that failed on an invalid date, naming the candidate columns
    (ConnectorX does not say which column; its target type narrows it to dates or timestamps)."""
    match = _INVALID_DATE.search(driver_text)
    if match is None:
        return None
    rust_type, value = match.group(2), match.group(3)
    wanted = pa.types.is_date32 if rust_type == "NaiveDate" else pa.types.is_timestamp
    names = [f.name for f in schema if wanted(f.type)] or [
        f.name for f in schema if pa.types.is_date32(f.type) or pa.types.is_timestamp(f.type)
    ]
    if not names:
        return None
    column = quote_ident(names[0])
    if value.strip("0-:. ") == "":
        to_null = f"NULLIF({column}, '0000-00-00') to export zero dates as NULL"
    else:
        to_null = f"IF(MONTH({column}) = 0 OR DAYOFMONTH({column}) = 0, NULL, {column}) to export NULL instead"
    which = f'column "{names[0]}"' if len(names) == 1 else "one of the columns " + ", ".join(f'"{n}"' for n in names)
    kind = "date" if rust_type == "NaiveDate" else "timestamp"
    return UnsupportedTypeError(
        f"{which} holds '{value}', which is not a calendar date (a zero date, or a zero or invalid month or day) "
        f"and has no exact {kind} value: cast it in a query, e.g. CAST({column} AS CHAR) to keep the text, "
        f"or {to_null}"
    )
