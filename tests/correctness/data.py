"""Adversarial source tables, generated deterministically (seeded) for PostgreSQL and MariaDB.

Every column of the spec's type mapping, with the values exporters get wrong: quotes, backslashes, comment
markers, newlines, control characters, non-BMP text, 100 KB values, NUL bytes, year 1 and 9999, DST edges,
float specials, the widest decimals, and an adversarial chunk key `k` (NULL, negative, zero, sparse, near
2^62, duplicated).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from decimal import Decimal
from typing import Any

import pyarrow as pa

from tests.correctness.harness import JSON_T, UUID_T, Col

UTC = dt.UTC
HUGE = 2**62

# Strings that break SQL literals, CSV quoting, line-based readers and UTF-16 code.
NASTY = [
    "",
    " ",
    "plain",
    "'",
    "''",
    '"',
    '""',
    "\\",
    "\\\\",
    "\\'",
    "x\\' UNION SELECT 1 -- ",
    "#",
    "-- comment",
    "/* c */",
    "*/",
    "/*",
    ";",
    "'; DROP TABLE secrets; --",
    "a,b",
    'a"b"c',
    '"quoted"',
    "line1\nline2",
    "\r\n",
    "cr\ronly",
    "\n",
    "tab\tsep",
    "ctrl\x01\x02\x07\x1b\x1f\x7f",
    "emoji 🎉🌍🚀",
    "non-BMP \U0001d518\U0001d52b\U0001d526 \U0002070e \U0001f600",
    "RTL שלום عربى",
    "\u2028\u2029\x85",
    "zw\u200b\ufeff",
    "NULL",
    "null",
    "\\N",
    "N/A",
    "  padded  ",
    "trailing space ",
    "ß Ω ç ñ",
    "\\x00ff",
    "1e5",
    "0",
    "true",
]
ALPHABET = [*list("abcXYZ019 ,;'\"\\#-/*\n\r\t\x01\x1fé€🎉\U0001d518中"), "--", "/*", "*/", "''", "\\'"]


def rand_text(rng: random.Random, max_len: int = 40, alphabet: list[str] = ALPHABET) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_len)))[:max_len]


def long_text(rng: random.Random, tag: str, size: int = 100_000) -> str:
    body = "".join(rng.choice(ALPHABET) for _ in range(size // 4))
    return (f"long-{tag} " + body * 4)[:size]


def nasty_json(rng: random.Random) -> str:
    """Valid JSON texts: nested, escaped, unicode, odd whitespace (PostgreSQL `json` keeps the text as is)."""
    fixed = [
        "{}",
        "[]",
        "null",
        "0",
        '"str"',
        ' {"a" : 1 ,  "b":[1, 2.5, null, true]} ',
        '{"k": "quote \\" backslash \\\\ newline \\n tab \\t"}',
        '{"emoji": "🎉", "esc": "\\ud83c\\udf89", "nonbmp": "\U0001d518"}',
        '{"dup": 1, "dup": 2}',
        '{"sql": "\' OR 1=1 -- /* */ #"}',
        "[1e308, -0, 0.1, 12345678901234567890]",
    ]
    if rng.random() < 0.5:
        return rng.choice(fixed)
    doc = {rand_text(rng, 8): [rand_text(rng, 12), rng.randint(-(10**9), 10**9), None, rng.random() < 0.5]}
    return json.dumps(doc, ensure_ascii=rng.random() < 0.5)


def rand_date(rng: random.Random, lo: dt.date, hi: dt.date) -> dt.date:
    return dt.date.fromordinal(rng.randint(lo.toordinal(), hi.toordinal()))


def rand_time(rng: random.Random) -> dt.time:
    return dt.time(rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59), rng.choice([0, rng.randint(0, 999999)]))


def chunk_key(rng: random.Random, i: int) -> int | None:
    """NULL, negative, zero, duplicated, sparse and near-2^62 keys."""
    special = [None, None, -HUGE, -HUGE + 1, HUGE, HUGE + 7, -1, 0, 0, 1, -99, -100, 100, 101, 310, None]
    if i < len(special):
        return special[i]
    roll = rng.random()
    if roll < 0.08:
        return None
    if roll < 0.7:
        return rng.randint(-200, 400)
    if roll < 0.9:
        return rng.randint(-(10**12), 10**12)
    return rng.choice([-HUGE, HUGE, 0, -1])


def dec(unscaled: int, scale: int) -> Decimal:
    """An exact Decimal (Decimal.scaleb would round to the context's 28 digits)."""
    return Decimal(f"{unscaled}E-{scale}")


def maybe(rng: random.Random, value: Any, p_null: float = 0.05) -> Any:
    return None if rng.random() < p_null else value


# --- PostgreSQL ---------------------------------------------------------------------------------------

PG_COLUMNS = [
    Col("rid", "int4 PRIMARY KEY", pa.int32()),
    Col("k", "int8", pa.int64()),
    Col("i2", "int2", pa.int16()),
    Col("i4", "int4", pa.int32()),
    Col("n", "numeric(20,6)", pa.decimal128(20, 6)),
    Col("nw", "numeric(50,12)", pa.decimal256(50, 12)),
    Col("r", "real", pa.float32()),
    Col("d", "double precision", pa.float64()),
    Col("dt", "date", pa.date32()),
    Col("tm", "time", pa.time64("us")),
    Col("ts", "timestamp", pa.timestamp("us")),
    Col("tstz", "timestamptz", pa.timestamp("us", tz="UTC")),
    Col("tx", "text", pa.string()),
    Col("vc", "varchar(40)", pa.string()),
    Col("by", "bytea", pa.binary()),
    Col("j", "json", JSON_T),
    Col("jb", "jsonb", JSON_T),
    Col("u", "uuid", UUID_T),
    Col("b", "boolean", pa.bool_()),
    Col("ai", "int4[]", pa.list_(pa.int32())),
    Col("at", "text[]", pa.list_(pa.string())),
]

PG_TS_SPECIAL = [
    dt.datetime(1, 1, 1),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
    dt.datetime(2024, 3, 10, 2, 30),  # does not exist in America/New_York
    dt.datetime(2024, 11, 3, 1, 30),  # happens twice in America/New_York
    dt.datetime(1970, 1, 1),
    dt.datetime(2262, 4, 12),  # past the nanosecond range
]
PG_TSTZ_SPECIAL = [
    dt.datetime(1, 1, 1, tzinfo=UTC),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    dt.datetime(2024, 3, 10, 6, 59, 59, 999999, tzinfo=UTC),  # the NY spring-forward edge
    dt.datetime(2024, 3, 10, 7, 0, tzinfo=UTC),
    dt.datetime(2024, 11, 3, 5, 30, tzinfo=UTC),  # 01:30 EDT
    dt.datetime(2024, 11, 3, 6, 30, tzinfo=UTC),  # 01:30 EST
    dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]
F64_SPECIAL = [0.0, -0.0, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 0.1, 1 / 3, 2.0**53 + 1]
F32_SPECIAL = [0.0, -0.0, 3.4028234663852886e38, 1.401298464324817e-45, 0.1, -1.5]


def pg_row(rng: random.Random, i: int) -> tuple[Any, ...]:
    strings = [*NASTY, "x" * 255]
    if i < len(strings):
        tx: str | None = strings[i]
    elif i in (500, 501):
        tx = long_text(rng, str(i))
    else:
        tx = maybe(rng, rand_text(rng) if rng.random() < 0.7 else rng.choice(strings))
    floats8 = [*F64_SPECIAL, float("nan"), float("inf"), float("-inf")]
    floats4 = [*F32_SPECIAL, float("nan"), float("inf"), float("-inf")]
    by: bytes | None
    if i == 502:
        by = bytes(rng.getrandbits(8) for _ in range(100_000))
    else:
        by = maybe(
            rng, rng.choice([b"", b"\x00", b"\\x00", b"'", b'\x00\xff\n\r,"', rng.randbytes(rng.randint(0, 64))])
        )
    return (
        i,
        chunk_key(rng, i),
        maybe(rng, rng.choice([-32768, 32767, 0, rng.randint(-32768, 32767)])),
        maybe(rng, rng.choice([-(2**31), 2**31 - 1, 0, rng.randint(-(2**31), 2**31 - 1)])),
        maybe(
            rng,
            rng.choice(
                [
                    Decimal("99999999999999.999999"),
                    Decimal("-99999999999999.999999"),
                    Decimal("0.000001"),
                    Decimal("-0.000001"),
                    Decimal(0),
                    dec(rng.randint(-(10**20) + 1, 10**20 - 1), 6),
                ]
            ),
        ),
        maybe(rng, dec(rng.randint(-(10**50) + 1, 10**50 - 1), 12)),
        maybe(rng, rng.choice(floats4) if rng.random() < 0.3 else rng.uniform(-1e6, 1e6)),
        maybe(rng, rng.choice(floats8) if rng.random() < 0.3 else rng.random() * 10.0 ** rng.randint(-300, 300)),
        maybe(
            rng,
            rng.choice([dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(2024, 2, 29)])
            if rng.random() < 0.2
            else rand_date(rng, dt.date(1, 1, 1), dt.date(9999, 12, 31)),
        ),
        maybe(rng, rng.choice([dt.time(0), dt.time(23, 59, 59, 999999), rand_time(rng)])),
        maybe(
            rng,
            rng.choice(PG_TS_SPECIAL)
            if rng.random() < 0.2
            else dt.datetime.combine(rand_date(rng, dt.date(1, 1, 1), dt.date(9999, 12, 31)), rand_time(rng)),
        ),
        maybe(
            rng,
            rng.choice(PG_TSTZ_SPECIAL)
            if rng.random() < 0.2
            else dt.datetime.combine(rand_date(rng, dt.date(1, 1, 2), dt.date(9999, 12, 30)), rand_time(rng), UTC),
        ),
        tx,
        maybe(rng, rand_text(rng, 40)),
        by,
        maybe(rng, nasty_json(rng)),
        maybe(rng, nasty_json(rng)),
        maybe(rng, rng.choice([uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.UUID(int=rng.getrandbits(128))])),
        maybe(rng, rng.random() < 0.5),
        maybe(
            rng,
            rng.choice(
                [[], [1, None, 3], [-(2**31), 2**31 - 1], [rng.randint(-9, 9) for _ in range(rng.randint(1, 5))]]
            ),
        ),
        maybe(rng, rng.choice([[], ["x,y", None, '"q"', "{}", "NULL", "", "\\", "🎉"], [rand_text(rng, 10)]])),
    )


def pg_rows(n: int, seed: int = 20261122) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    rows = [pg_row(rng, i) for i in range(1, n + 1)]
    rows.append((n + 1, None, *([None] * (len(PG_COLUMNS) - 2))))  # a row of NULLs
    return rows


# --- MariaDB ------------------------------------------------------------------------------------------

MY_COLUMNS = [
    Col("rid", "int PRIMARY KEY", pa.int32()),
    Col("k", "bigint NULL", pa.int64()),
    Col("i1", "tinyint", pa.int8()),
    Col("u1", "tinyint unsigned", pa.int16()),
    Col("i2", "smallint", pa.int16()),
    Col("u2", "smallint unsigned", pa.int32()),
    Col("i3", "mediumint", pa.int32()),
    Col("i4", "int", pa.int32()),
    Col("u4", "int unsigned", pa.int64()),
    Col("u8", "bigint unsigned", pa.uint64()),
    Col("n", "decimal(20,6)", pa.decimal128(20, 6)),
    Col("nw", "decimal(50,12)", pa.decimal256(50, 12)),
    Col("r", "float", pa.float32()),
    Col("d", "double", pa.float64()),
    Col("dt", "date", pa.date32()),
    Col("tm", "time(6)", pa.time64("us")),
    Col("ts", "datetime(6)", pa.timestamp("us")),
    Col("tstz", "timestamp(6) NULL DEFAULT NULL", pa.timestamp("us", tz="UTC")),
    Col("tx", "longtext", pa.string()),
    Col("vc", "varchar(40)", pa.string()),
    Col("by", "longblob", pa.binary()),
    Col("vb", "varbinary(64)", pa.binary()),
    Col("j", "json", pa.string()),
    Col("b", "tinyint(1)", pa.bool_()),
]

MY_TS_SPECIAL = [
    dt.datetime(1000, 1, 1),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
    dt.datetime(2024, 3, 10, 2, 30),
    dt.datetime(2024, 11, 3, 1, 30),
    dt.datetime(1970, 1, 1),
]
# MariaDB TIMESTAMP spans 1970-01-01 00:00:01 .. 2038-01-19 03:14:07.999999 UTC.
MY_TSTZ_SPECIAL = [
    dt.datetime(1970, 1, 1, 0, 0, 1),
    dt.datetime(2038, 1, 19, 3, 14, 7, 999999),
    dt.datetime(2024, 3, 10, 6, 59, 59, 999999),
    dt.datetime(2024, 3, 10, 7, 0),
    dt.datetime(2024, 11, 3, 5, 30),
    dt.datetime(2024, 11, 3, 6, 30),
]
# FLOAT values the text protocol prints exactly (MariaDB shows at most 6 significant digits of a FLOAT).
MY_F32 = [0.0, 1.5, -2.25, 123456.0, 1e-05, 3.40282e38, -0.125, 99.5]


def my_row(rng: random.Random, i: int) -> tuple[Any, ...]:
    strings = [*NASTY, "nul\x00byte", "x" * 255]
    if i < len(strings):
        tx: str | None = strings[i]
    elif i in (500, 501):
        tx = long_text(rng, str(i))
    else:
        tx = maybe(rng, rand_text(rng) if rng.random() < 0.7 else rng.choice(strings))
    by: bytes | None
    if i == 502:
        by = bytes(rng.getrandbits(8) for _ in range(100_000))
    else:
        by = maybe(
            rng, rng.choice([b"", b"\x00", b"\\x00", b"'", b'\x00\xff\n\r,"', rng.randbytes(rng.randint(0, 64))])
        )
    ts_lo, ts_hi = dt.datetime(1970, 1, 1, 0, 0, 1), dt.datetime(2038, 1, 19, 3, 14, 7)
    tstz = ts_lo + dt.timedelta(
        seconds=rng.randint(0, int((ts_hi - ts_lo).total_seconds())), microseconds=rng.randint(0, 999999)
    )
    return (
        i,
        chunk_key(rng, i),
        maybe(rng, rng.choice([-128, 127, 0, rng.randint(-128, 127)])),
        maybe(rng, rng.choice([0, 255, rng.randint(0, 255)])),
        maybe(rng, rng.choice([-32768, 32767, rng.randint(-32768, 32767)])),
        maybe(rng, rng.choice([0, 65535, rng.randint(0, 65535)])),
        maybe(rng, rng.choice([-(2**23), 2**23 - 1, rng.randint(-(2**23), 2**23 - 1)])),
        maybe(rng, rng.choice([-(2**31), 2**31 - 1, rng.randint(-(2**31), 2**31 - 1)])),
        maybe(rng, rng.choice([0, 2**32 - 1, rng.randint(0, 2**32 - 1)])),
        maybe(rng, rng.choice([0, 2**63, 2**64 - 1, rng.randint(0, 2**64 - 1)])),
        maybe(
            rng,
            rng.choice(
                [
                    Decimal("99999999999999.999999"),
                    Decimal("-99999999999999.999999"),
                    Decimal("0.000001"),
                    Decimal(0),
                    dec(rng.randint(-(10**20) + 1, 10**20 - 1), 6),
                ]
            ),
        ),
        maybe(rng, dec(rng.randint(-(10**50) + 1, 10**50 - 1), 12)),
        maybe(rng, rng.choice(MY_F32)),
        maybe(rng, rng.choice(F64_SPECIAL) if rng.random() < 0.3 else rng.random() * 10.0 ** rng.randint(-300, 300)),
        maybe(
            rng,
            rng.choice([dt.date(1000, 1, 1), dt.date(9999, 12, 31), dt.date(2024, 2, 29)])
            if rng.random() < 0.2
            else rand_date(rng, dt.date(1000, 1, 1), dt.date(9999, 12, 31)),
        ),
        maybe(rng, rng.choice([dt.time(0), dt.time(23, 59, 59, 999999), rand_time(rng)])),
        maybe(
            rng,
            rng.choice(MY_TS_SPECIAL)
            if rng.random() < 0.2
            else dt.datetime.combine(rand_date(rng, dt.date(1000, 1, 1), dt.date(9999, 12, 31)), rand_time(rng)),
        ),
        maybe(rng, rng.choice(MY_TSTZ_SPECIAL) if rng.random() < 0.2 else tstz),
        tx,
        maybe(rng, rand_text(rng, 40)),
        by,
        maybe(rng, rng.randbytes(rng.randint(0, 64))),
        maybe(rng, nasty_json(rng)),
        maybe(rng, rng.random() < 0.5),
    )


def my_rows(n: int, seed: int = 20261123) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    rows = [my_row(rng, i) for i in range(1, n + 1)]
    rows.append((n + 1, None, *([None] * (len(MY_COLUMNS) - 2))))
    return rows


def columns_for(engine: str) -> list[Col]:
    return PG_COLUMNS if engine == "postgres" else MY_COLUMNS


def rows_for(engine: str, n: int) -> list[tuple[Any, ...]]:
    return pg_rows(n) if engine == "postgres" else my_rows(n)
