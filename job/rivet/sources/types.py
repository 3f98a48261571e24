"""Arrow types and error wording shared by the PostgreSQL and MySQL type mappings (spec section 4)."""

from __future__ import annotations

import pyarrow as pa

from rivet.errors import UnsupportedTypeError

# Canonical Arrow extension types: Parquet writes the JSON and UUID logical types for them (pyarrow 26,
# no writer flag needed), and the storage types (Utf8, FixedSizeBinary(16)) are what the spec names.
JSON = pa.json_(pa.string())
UUID = pa.uuid()
TIME_US = pa.time64("us")
TIMESTAMP_US = pa.timestamp("us")
TIMESTAMP_US_UTC = pa.timestamp("us", tz="UTC")

MAX_DECIMAL128_PRECISION = 38
MAX_DECIMAL256_PRECISION = 76


def decimal_type(precision: int, scale: int) -> pa.DataType | None:
    """Decimal128 up to 38 digits, Decimal256 up to 76; None when Arrow cannot hold it exactly."""
    if precision < 1 or scale < 0 or scale > precision:
        return None
    if precision <= MAX_DECIMAL128_PRECISION:
        return pa.decimal128(precision, scale)
    if precision <= MAX_DECIMAL256_PRECISION:
        return pa.decimal256(precision, scale)
    return None


class InexactValue(ValueError):
    """A source value the target type cannot hold exactly; `kind` selects the query fix to suggest."""

    BOOLEAN = "boolean"  # an integer other than 0/1 bound for Boolean (MySQL tinyint(1))
    NON_FINITE = "non_finite"  # NaN or an infinity bound for a decimal (PostgreSQL numeric)

    def __init__(self, kind: str, value: str, why: str) -> None:
        super().__init__(f"{value} {why}")
        self.kind = kind
        self.value = value
        self.why = why


def unsupported(
    column: str, type_name: str, cast_example: str, why: str = "", text_override: bool = False
) -> UnsupportedTypeError:
    """The one wording for unmappable columns: which column, which type, which cast fixes it (and, where
    the source reads any type as its text, the `columns:` override that does)."""
    why = why or "with no exact Arrow mapping"
    also = f"set columns: {{{column}: string}} on the export (its exact text), or " if text_override else ""
    return UnsupportedTypeError(
        f'column "{column}" has type {type_name} {why}: {also}cast it in a query, e.g. {cast_example}'
    )
