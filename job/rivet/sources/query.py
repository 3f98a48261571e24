"""A query as SQL text fragments with bound values between them: values never become SQL text by hand.

Builders (`rivet.sources.sql`) produce a `Query`; each source renders it for its driver:
- drivers that bind (psycopg, PyMySQL) get `%s` placeholders and the values as parameters;
- bulk readers that cannot bind (ADBC's COPY path, ConnectorX) get each value rendered by the one
  function of that dialect below, whose output cannot leave the literal whatever the value holds and
  whatever the session's settings (`NO_BACKSLASH_ESCAPES`, `standard_conforming_strings`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Untyped:
    """Text the server types from the column it is compared with (a keyset boundary): PostgreSQL takes it
    as uuid, char(n), citext or an enum, and the column's collation decides, never the literal's."""

    text: str


@dataclass(frozen=True)
class ColumnTyping:
    """How an export's rows are typed beyond the database's own types, carried by its row queries to
    `describe`: the `columns:` overrides (name -> "string" or "decimal(p,s)"), whether the export is CSV
    (unconstrained numeric is then the database's exact text), and where the export sits in its file."""

    overrides: tuple[tuple[str, str], ...] = ()
    csv: bool = False
    path: str = "exports[0]"
    keys: tuple[tuple[str, str], ...] = ()  # (field, column): chunk_column, cursor_column, time_column
    table: str | None = None  # the export's `table:` as written (None for a query export)


@dataclass(frozen=True)
class Query:
    """`fragments[0] params[0] fragments[1] ... params[-1] fragments[-1]`; len(fragments) == len(params) + 1."""

    fragments: tuple[str, ...]
    params: tuple[Any, ...] = ()
    typing: ColumnTyping | None = None  # set on an export's row queries (sql.select_all), kept by + and wrap

    @staticmethod
    def text(sql: str) -> Query:
        return Query((sql,))

    def __add__(self, other: Query | str) -> Query:
        if isinstance(other, str):
            other = Query.text(other)
        joined = (*self.fragments[:-1], self.fragments[-1] + other.fragments[0], *other.fragments[1:])
        return Query(joined, self.params + other.params, self.typing or other.typing)

    def __radd__(self, other: str) -> Query:
        return Query.text(other) + self

    def bind(self, value: Any) -> Query:
        """This query followed by a placeholder for `value`."""
        return Query((*self.fragments, ""), (*self.params, value), self.typing)

    def wrap(self, before: str, after: str) -> Query:
        """`before` + this query without trailing semicolons + `after` (for derived tables and COUNT)."""
        last = self.fragments[-1].rstrip().rstrip(";").rstrip()
        return before + Query((*self.fragments[:-1], last), self.params, self.typing) + after

    def pyformat(self) -> tuple[str, tuple[Any, ...]]:
        """(text with %s placeholders, params) for psycopg and PyMySQL; literal % in the SQL is doubled."""
        if not self.params:
            return self.fragments[0], ()
        # psycopg sends a str with the unknown type, so the server types it from its context: as Untyped wants
        params = tuple(p.text if isinstance(p, Untyped) else p for p in self.params)
        return "%s".join(f.replace("%", "%%") for f in self.fragments), params

    def inline(self, render: Callable[[Any], str]) -> str:
        """The SQL text with each value rendered by `render` (a dialect's literal function below)."""
        out = [self.fragments[0]]
        for value, fragment in zip(self.params, self.fragments[1:], strict=True):
            out.append(render(value))
            out.append(fragment)
        return "".join(out)

    def __str__(self) -> str:  # for logs: values shown as placeholders, never spliced
        return "?".join(self.fragments)


def q(sql: str) -> Query:
    return Query.text(sql)


def _number(value: Any) -> str | None:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot use the non-finite decimal {value} as a query value")
        return format(value, "f")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot use the non-finite float {value} as a query value")
        return repr(value)
    return None


def mysql_literal(value: Any) -> str:
    """A MySQL/MariaDB literal that means `value` under any sql_mode: numbers as digits, temporals from
    their own ISO form (digits and separators only), text and bytes as hex (`_utf8mb4 X'..'`)."""
    if value is None:
        return "NULL"
    number = _number(value)
    if number is not None:
        return number
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:  # sessions run at time_zone '+00:00'
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return f"TIMESTAMP'{value.isoformat(sep=' ', timespec='microseconds')}'"
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, Untyped):  # a hex literal is coercible: the column's collation decides the comparison
        value = value.text
    if isinstance(value, str):
        return f"_utf8mb4 X'{value.encode('utf-8').hex()}'" if value else "''"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"X'{bytes(value).hex()}'"
    raise TypeError(f"no MySQL literal for a {type(value).__name__} query value")


def postgres_literal(value: Any) -> str:
    """A PostgreSQL literal for `value`: typed constants whose text has no quote or backslash, and text
    through `convert_from(decode('<hex>', 'hex'), 'UTF8')`, independent of standard_conforming_strings."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    number = _number(value)
    if number is not None:
        return f"{number}::numeric" if isinstance(value, decimal.Decimal) else number
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            utc = value.astimezone(dt.UTC).replace(tzinfo=None)
            return f"'{utc.isoformat(sep=' ', timespec='microseconds')}+00'::timestamptz"
        return f"'{value.isoformat(sep=' ', timespec='microseconds')}'::timestamp"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'::date"
    if isinstance(value, Untyped):
        return dollar_quoted(value.text)
    if isinstance(value, str):
        return f"convert_from(decode('{value.encode('utf-8').hex()}', 'hex'), 'UTF8')"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"decode('{bytes(value).hex()}', 'hex')"
    raise TypeError(f"no PostgreSQL literal for a {type(value).__name__} query value")


def dollar_quoted(text: str) -> str:
    """A PostgreSQL string constant of unknown type (`$rivet$...$rivet$`): nothing inside a dollar-quoted
    string is an escape, whatever standard_conforming_strings says, and the tag is lengthened until the text
    does not contain it, so the value cannot end its literal. PostgreSQL text cannot hold NUL."""
    if "\x00" in text:
        raise ValueError("PostgreSQL text cannot contain NUL")
    tag = "rivet"
    while (text + f"${tag}$").find(f"${tag}$") != len(text):
        tag += "_x"
    return f"${tag}${text}${tag}$"
