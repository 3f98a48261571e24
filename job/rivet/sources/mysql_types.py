"""MySQL/MariaDB result field (type code, flags, length, decimals, charset) -> Arrow type. Pure.

MariaDB stores JSON as LONGTEXT with a json_valid() check and reports it as text, so it maps to Utf8
(without the JSON logical type); MySQL 8 reports a real JSON type (245), which maps to the JSON type.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from rivet.sources.types import JSON, TIME_US, TIMESTAMP_US, TIMESTAMP_US_UTC, decimal_type, unsupported

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
    return "`" + name.replace("`", "``") + "`"


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
