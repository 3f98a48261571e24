"""Typed values (incremental cursors) as JSON and back, so a cursor keeps its type across runs and pods.

A timestamp cursor stored as a bare string would come back as text and be compared as text; tagging
the types JSON lacks keeps `datetime`, `date`, `Decimal` and `bytes` exact. Plain JSON is read as is.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from typing import Any

TAG = "$type"


def encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {TAG: "datetime", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {TAG: "date", "value": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {TAG: "decimal", "value": str(value)}
    if isinstance(value, bytes):
        return {TAG: "bytes", "value": base64.b64encode(value).decode("ascii")}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot record a {type(value).__name__} cursor value")


def decode(data: Any) -> Any:
    if not isinstance(data, dict) or TAG not in data:
        return data
    kind, text = data[TAG], str(data.get("value"))
    if kind == "datetime":
        return dt.datetime.fromisoformat(text)
    if kind == "date":
        return dt.date.fromisoformat(text)
    if kind == "decimal":
        return decimal.Decimal(text)
    if kind == "bytes":
        return base64.b64decode(text)
    raise ValueError(f"unknown cursor value type {kind!r}")


def show(value: Any) -> Any:
    """A JSON-able rendering for manifests and summaries (ISO text for temporals)."""
    encoded = encode(value)
    return encoded["value"] if isinstance(encoded, dict) else encoded
