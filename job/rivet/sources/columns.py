"""An export's `columns:` overrides and the columns read as the database's own text.

A column is read as text (`::text` in PostgreSQL, `CAST(... AS CHAR)` in MySQL) when its override is
`string`, when its override is `decimal(p,s)` (the text is then cast to the decimal by Arrow's safe cast,
which refuses rather than rounds), or, in CSV, when it is an unconstrained PostgreSQL `numeric`. Such a
field carries `TEXT_KEY` in its metadata, with the database's type name as the value, so every reader
(ADBC, the CSV passthrough, ConnectorX) and every refusal knows it from the described schema alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa

from rivet.errors import ConfigError
from rivet.sources.query import ColumnTyping

TEXT_KEY = b"rivet.source_text"
STRING = "string"
_DECIMAL_RE = re.compile(r"decimal\((\d+),(\d+)\)")


def override_type(spec: str) -> pa.DataType:
    """The Arrow type of a normalized override (`string`, `decimal(p,s)`; the loader checked the range)."""
    if spec == STRING:
        return pa.string()
    match = _DECIMAL_RE.fullmatch(spec)
    assert match is not None, spec
    return pa.decimal128(int(match[1]), int(match[2]))


def text_field(name: str, target: pa.DataType, db_type: str) -> pa.Field:
    """A field whose values are read as the database's text of a `db_type` column, then made `target`."""
    return pa.field(name, target, metadata={TEXT_KEY: db_type.encode("utf-8")})


def is_text(field: pa.Field) -> bool:
    return bool(field.metadata) and TEXT_KEY in field.metadata


def db_type_of(field: pa.Field) -> str | None:
    """The database's type name recorded on a text-read field."""
    return field.metadata[TEXT_KEY].decode("utf-8") if is_text(field) else None


def overrides(typing: ColumnTyping | None, names: Sequence[str]) -> dict[str, str]:
    """The overrides by column name; one naming a column the result does not have is a ConfigError."""
    if typing is None or not typing.overrides:
        return {}
    for name, _ in typing.overrides:
        if name not in names:
            shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            raise ConfigError(
                f"{typing.path}.columns.{name}",
                f"the export's result has no column {name!r} (columns: {shown})",
                "name a column of the table or query exactly as the database spells it, or remove the entry",
            )
    for field, column in typing.keys:
        if column in dict(typing.overrides):
            raise ConfigError(
                f"{typing.path}.columns.{column}",
                f"{column!r} is the export's {field}, which plans and resumes the run in the database's own"
                " order and type",
                f"remove the override, or export the column a second time under another name in a query"
                f" (e.g. SELECT *, {column}::text AS {column}_text)",
            )
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(
            f"{typing.path}.columns",
            f"the result has more than one column named {', '.join(map(repr, dup))}",
            "give every column of the query its own name (AS ...) to use columns:",
        )
    return dict(typing.overrides)


def key_columns(typing: ColumnTyping | None) -> set[str]:
    """The columns the export plans or resumes by: they keep the database's type (never read as text)."""
    return {column for _, column in typing.keys} if typing is not None else set()


def override_hint(name: str) -> str:
    """How to write the `columns:` override for column `name` (YAML flow mapping)."""
    return f'columns: {{{name}: string}} (its exact text) or columns: {{{name}: "decimal(38,10)"}}'


def string_hint(name: str) -> str:
    return f"columns: {{{name}: string}} on the export (its exact text)"
