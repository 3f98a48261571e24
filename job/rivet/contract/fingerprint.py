"""XXH3-64 fingerprints (contract section 3), streamed so bytes are never re-read."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

import pyarrow as pa
import xxhash

PREFIX = "xxh3:"


def fingerprint_bytes(data: bytes) -> str:
    """`xxh3:<16 lowercase hex>` of exactly `data` (seed 0)."""
    return PREFIX + xxhash.xxh3_64_hexdigest(data)


def is_fingerprint(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == len(PREFIX) + 16
        and value.startswith(PREFIX)
        and all(c in "0123456789abcdef" for c in value[len(PREFIX) :])
    )


class StreamDigest:
    """Size, XXH3-64 and MD5 of a byte stream, updated as it is written."""

    def __init__(self) -> None:
        self._xxh = xxhash.xxh3_64()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._xxh.update(data)
        self._md5.update(data)
        self.size += len(data)

    @property
    def fingerprint(self) -> str:
        return PREFIX + self._xxh.hexdigest()

    @property
    def md5_digest(self) -> bytes:
        return self._md5.digest()

    @property
    def md5_base64(self) -> str:
        return base64.b64encode(self._md5.digest()).decode("ascii")


_UNIT = {"s": "Second", "ms": "Millisecond", "us": "Microsecond", "ns": "Nanosecond"}


def canonical_type(t: pa.DataType) -> str:
    """The Rivet 0.8 (arrow-rs) spelling of an Arrow type, so both tools fingerprint alike."""
    if isinstance(t, pa.BaseExtensionType):
        return canonical_type(t.storage_type)
    simple = {
        pa.bool_(): "Boolean",
        pa.int8(): "Int8",
        pa.int16(): "Int16",
        pa.int32(): "Int32",
        pa.int64(): "Int64",
        pa.uint8(): "UInt8",
        pa.uint16(): "UInt16",
        pa.uint32(): "UInt32",
        pa.uint64(): "UInt64",
        pa.float32(): "Float32",
        pa.float64(): "Float64",
        pa.string(): "Utf8",
        pa.large_string(): "LargeUtf8",
        pa.binary(): "Binary",
        pa.large_binary(): "LargeBinary",
        pa.date32(): "Date32",
    }
    for arrow_type, name in simple.items():
        if t == arrow_type:
            return name
    if pa.types.is_time64(t) or pa.types.is_time32(t):
        return f"Time{t.bit_width}({_UNIT[t.unit]})"
    if pa.types.is_timestamp(t):
        tz = f'Some("{t.tz}")' if t.tz else "None"
        return f"Timestamp({_UNIT[t.unit]}, {tz})"
    if pa.types.is_decimal128(t):
        return f"Decimal128({t.precision}, {t.scale})"
    if pa.types.is_decimal256(t):
        return f"Decimal256({t.precision}, {t.scale})"
    if pa.types.is_fixed_size_binary(t):
        return f"FixedSizeBinary({t.byte_width})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"List({canonical_type(t.value_type)})"
    raise ValueError(f"no canonical spelling for Arrow type {t}")


def schema_fingerprint(schema: pa.Schema) -> str:
    """XXH3-64 over `name\\ttype\\n` for each column, sorted by name."""
    lines = "".join(f"{f.name}\t{canonical_type(f.type)}\n" for f in sorted(schema, key=lambda f: f.name))
    return fingerprint_bytes(lines.encode("utf-8"))


def ledger_digest(entries: Iterable[tuple[str, str]]) -> str:
    """`sha256:<hex>` of a ledger's (file name, record text) pairs, in name order.

    The operator computes it from the records only it can write and passes it to the finalize Job, which
    recomputes it from the ConfigMaps it was handed: a record edited, added or removed on the way (anyone
    with ConfigMap rights in the namespace could) fails finalize instead of certifying. SHA-256, not XXH3:
    the other side is an adversary, not a disk."""
    h = hashlib.sha256()
    for name, text in sorted(entries):
        h.update(name.encode())
        h.update(b"\0")
        h.update(text.encode())
        h.update(b"\n")
    return "sha256:" + h.hexdigest()
