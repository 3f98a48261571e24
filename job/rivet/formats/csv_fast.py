"""Fixed-width CSV text built from digits, for the columns whose Arrow formatting is the CSV's bottleneck.

`pc.strftime` (and Arrow's cast to string) format a timestamp at about 1.6 us each: two timestamp
columns were 3.4 s of the 4.3 s it took to write a million benchmark rows as CSV. A timestamp of
year 1..9999 is always `YYYY-MM-DDTHH:MM:SS.ffffff` (+ `Z` for UTC), so the text is assembled instead:
integer kernels split each value into its day and its microsecond of the day, and the date, the time of
day and the fraction are looked up in fixed-width tables (the dates in a calendar of the days the data
spans, built once and grown as needed), then strided into one buffer (as `writer.uuid_text` does for
hex): about 20x faster. Arrays with a year outside 1..9999 (or another unit or zone) return None: the
caller formats them as before.
"""

from __future__ import annotations

import array
import datetime as dt
from typing import cast

import pyarrow as pa
import pyarrow.compute as pc

_MAX_US = 253_402_300_800_000_000  # 10000-01-01 in microseconds since 1970
_US_PER_DAY = 86_400_000_000
_YEAR1_US = 62_135_596_800_000_000  # microseconds from 0001-01-01 to 1970-01-01
_MAX_SPAN_DAYS = 150_000  # a calendar covers at most this many days (about 410 years, 1.5 MB)
_CALENDAR_STEP = 4096  # calendars grow in whole steps of days
_MAX_CACHED_OFFSETS = 1 << 18  # rows: offsets of larger arrays are built for them alone (1 MB per width cached)
_tables: dict[str, pa.Array] = {}
_calendar: list[tuple[int, pa.Array]] = []  # [(first day number, `YYYY-MM-DD` of each day from it)]
_offsets: dict[int, pa.Buffer] = {}


def _table(name: str) -> pa.Array:
    """Fixed-width text for every value of a small domain, built once: `hms` (seconds of the day as
    HH:MM:SS), `000` (0..999 as three digits)."""
    if name not in _tables:
        if name == "hms":
            text = "".join(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400))
            _tables[name] = _fixed(text.encode("ascii"), 8)
        else:
            _tables[name] = _fixed("".join(f"{i:03d}" for i in range(1000)).encode("ascii"), 3)
    return _tables[name]


def _fixed(data: bytes, width: int) -> pa.Array:
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(data) // width, [None, pa.py_buffer(data)])


def _take_bytes(table: pa.Array, indices: pa.Array, width: int) -> bytes:
    """The fixed-width values of `table` at `indices`, back to back (bytes: strided slices of bytes are
    about 4x faster than of a memoryview)."""
    taken = pc.take(table, indices)
    return memoryview(cast(pa.Array, taken).buffers()[1])[: width * len(indices)].tobytes()


def _dates(days: pa.Array, low: int, high: int) -> bytes | None:
    """`YYYY-MM-DD` for each day number (0 = 0001-01-01) in low..high, 10 bytes each, from the calendar;
    None when the span is too wide for one."""
    if high - low >= _MAX_SPAN_DAYS:
        return None
    first, table = _calendar[0] if _calendar else (0, None)
    if table is None or low < first or high >= first + len(table):
        start = low - low % _CALENDAR_STEP
        end = high - high % _CALENDAR_STEP + _CALENDAR_STEP
        if table is not None and min(start, first) + _MAX_SPAN_DAYS > max(end, first + len(table)):
            start, end = min(start, first), max(end, first + len(table))  # grow the one there is
        end = min(end, _MAX_US // _US_PER_DAY + _YEAR1_US // _US_PER_DAY)  # days up to 9999-12-31
        text = "".join(dt.date.fromordinal(d + 1).isoformat() for d in range(start, end)).encode("ascii")
        first, table = start, _fixed(text, 10)
        _calendar[:] = [(first, table)]
    return _take_bytes(table, pc.subtract(days, first), 10)


def _digit_dates(valid: pa.Array) -> bytes:
    """`YYYY-MM-DD` from Arrow's calendar kernels, digit by digit (any span of days)."""
    n = len(valid)
    out = bytearray(b"-" * (10 * n))
    for start, values, width in ((0, pc.year(valid), 4), (5, pc.month(valid), 2), (8, pc.day(valid), 2)):
        for k in range(width):
            place = 10 ** (width - 1 - k)
            digit = pc.add(pc.remainder(pc.divide(values, place), 10), 48)
            out[start + k :: 10] = cast(pa.Array, pc.cast(digit, pa.uint8())).buffers()[1].to_pybytes()[:n]
    return bytes(out)


def fixed_width_offsets(width: int, n: int) -> pa.Buffer:
    """int32 offsets 0, width, 2 * width, ... n * width: of n strings of `width` bytes each (cached)."""
    if n > _MAX_CACHED_OFFSETS:
        return pa.py_buffer(array.array("i", range(0, width * (n + 1), width)).tobytes())
    cached = _offsets.get(width)
    if cached is None or cached.size < 4 * (n + 1):
        size = min(max(n + 1, 2 * (cached.size // 4 if cached is not None else 0), 65_537), _MAX_CACHED_OFFSETS + 1)
        cached = pa.py_buffer(array.array("i", range(0, width * size, width)).tobytes())
        _offsets[width] = cached
    return cached.slice(0, 4 * (n + 1))


def fixed_width_text(out: bytearray, width: int, n: int) -> pa.StringArray:
    """`out`, n strings of `width` bytes each back to back, as a StringArray (no copy)."""
    return cast(pa.StringArray, pa.StringArray.from_buffers(n, fixed_width_offsets(width, n), pa.py_buffer(out)))


def timestamp_text(col: pa.Array) -> pa.Array | None:
    """`col` (timestamp[us] naive or UTC) as `YYYY-MM-DDTHH:MM:SS.ffffff[Z]`, or None when not applicable.

    Equal to pc.strftime(col, "%Y-%m-%dT%H:%M:%S[Z]") for every value (nulls stay null)."""
    t = col.type
    if not pa.types.is_timestamp(t) or t.unit != "us" or t.tz not in (None, "UTC"):
        return None
    n = len(col)
    if n == 0 or col.null_count == n:
        return pa.nulls(n, pa.string())
    bounds = pc.min_max(col)
    low, high = bounds["min"].value, bounds["max"].value
    if low < -_YEAR1_US or high >= _MAX_US:
        return None  # a year outside 1..9999: the caller formats it
    valid = col if col.null_count == 0 else pc.fill_null(col, bounds["min"])
    shifted = pc.add(valid.view(pa.int64()), _YEAR1_US)  # >= 0: microseconds since 0001-01-01
    days = pc.divide(shifted, _US_PER_DAY)
    of_day = pc.subtract(shifted, pc.multiply(days, _US_PER_DAY))
    seconds = pc.divide(of_day, 1_000_000)
    micros = pc.subtract(of_day, pc.multiply(seconds, 1_000_000))
    millis = pc.divide(micros, 1000)
    dates = _dates(days, (low + _YEAR1_US) // _US_PER_DAY, (high + _YEAR1_US) // _US_PER_DAY)
    if dates is None:
        dates = _digit_dates(valid)
    width = 27 if t.tz else 26
    out = bytearray(width * n)
    parts = (
        (0, dates, 10),
        (11, _take_bytes(_table("hms"), seconds, 8), 8),
        (20, _take_bytes(_table("000"), millis, 3), 3),
        (23, _take_bytes(_table("000"), pc.subtract(micros, pc.multiply(millis, 1000)), 3), 3),
    )
    for start, data, size in parts:
        for k in range(size):
            out[start + k :: width] = data[k::size]
    out[10::width] = b"T" * n
    out[19::width] = b"." * n
    if t.tz:
        out[26::width] = b"Z" * n
    text = fixed_width_text(out, width, n)
    return text if col.null_count == 0 else pc.if_else(pc.is_null(col), pa.scalar(None, pa.string()), text)
