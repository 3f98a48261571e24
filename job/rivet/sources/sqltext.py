"""SQL text helpers shared by both engines (the dialect-specific SQL itself lives in `rivet.sql`)."""

from __future__ import annotations


def subquery(sql: str) -> str:
    """`sql` ready to sit inside `(...)` (ours, or a driver's `COPY (...)`): no trailing semicolon, and
    surrounded by newlines so a trailing `--` comment cannot swallow the closing parenthesis."""
    return "\n" + bare(sql) + "\n"


def bare(sql: str) -> str:
    """`sql` without surrounding whitespace and trailing semicolons."""
    return sql.strip().rstrip(";").rstrip()
