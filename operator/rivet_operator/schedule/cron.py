"""Cron fire times in an IANA time zone (pure): validation, next, latest, and the ticks in a window.

The library is cronsim 2.8 (pinned in the `operator` extra), not croniter 7.0.0. Both were tried here on
the 2026 US transitions in America/New_York: both fire a `30 2 * * *` job at 03:00 EDT on the
spring-forward day, but croniter fires `30 1 * * *` twice on the fall-back day (01:30 EDT and 01:30 EST,
an hour apart) where cronsim fires once. cronsim also has no dependencies, ships type hints, and
documents the Debian cron rules it follows:

- An expression with a fixed minute and hour (neither field starts with `*`: `30 2 * * *`, `@daily`,
  `@weekly`, `@monthly`, `@yearly`) names a wall-clock time. On the spring-forward day a time in the gap
  fires at the first minute after it (02:30 -> 03:00 EDT), so no day is lost; on the fall-back day a
  repeated time fires once, at its first occurrence (01:30 EDT, not again at 01:30 EST).
- Any other expression (`*/15 * * * *`, `0 * * * *`, `@hourly`) is a rhythm in real time: it fires in
  both passes of a repeated hour and not in a skipped one, so its runs stay evenly spaced.

Accepted syntax: five fields (minute hour day-of-month month day-of-week) with numbers, names (JAN, MON),
`*`, `,`, `-`, `/`, `?` (the same as `*`, as in a Kubernetes CronJob) and cronsim's extensions (`L`, `LW`,
`#`), or one of the CronJob macros @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly. A
seconds field, `@reboot` and a `TZ=`/`CRON_TZ=` prefix are refused: the zone is `spec.timeZone`.

Every datetime taken must be timezone-aware; every datetime returned is an aware UTC datetime.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

UTC = dt.UTC
SCHEDULE_FIELD = "spec.schedule"
TIME_ZONE_FIELD = "spec.timeZone"
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")
_NOT_ZONES = {"localtime", "local", "posixrules", "posix", "right"}
_SYNTAX = "use 5 fields (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly"
# cronsim resolves a wall-clock time that falls in a fold to its first pass; the next call can then give
# an instant at or before the one asked about. A few more steps always get past it.
_MAX_STEPS = 8


class CronError(ValueError):
    """An invalid schedule or time zone; `field` is the spec path to name in the Stalled condition."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _aware(value: dt.datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")


def load_zone(name: str | None) -> dt.tzinfo:
    """The tzinfo for an IANA name (None or "" means UTC); CronError naming spec.timeZone otherwise."""
    if name is None or name == "":
        return UTC
    if not isinstance(name, str) or len(name) > 64 or not _ZONE_NAME.match(name):
        raise CronError(TIME_ZONE_FIELD, f"{name!r} is not an IANA time zone name (like UTC or Europe/Berlin)")
    if name.lower() in _NOT_ZONES:
        raise CronError(TIME_ZONE_FIELD, f"{name!r} is not allowed: name the zone, like UTC or America/New_York")
    if name in ("UTC", "Etc/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(
            TIME_ZONE_FIELD, f"unknown time zone {name!r}: use an IANA name like UTC or Europe/Berlin"
        ) from None


def normalize(expression: str) -> str:
    """The 5-field form of an expression (macros expanded, `?` as `*`); CronError naming spec.schedule."""
    if not isinstance(expression, str) or not expression.strip():
        raise CronError(SCHEDULE_FIELD, f"the schedule is empty: {_SYNTAX}")
    text = " ".join(expression.split())
    if text.upper().startswith(("TZ=", "CRON_TZ=")):
        raise CronError(SCHEDULE_FIELD, f"{expression!r}: set the time zone in {TIME_ZONE_FIELD}, not in the schedule")
    if text.startswith("@"):
        macro = MACROS.get(text.lower())
        if macro is None:
            raise CronError(SCHEDULE_FIELD, f"{expression!r} is not a supported macro: {_SYNTAX}")
        return macro
    parts = text.split(" ")
    if len(parts) != 5:
        extra = " (a seconds field is not supported)" if len(parts) == 6 else ""
        raise CronError(SCHEDULE_FIELD, f"{expression!r} has {len(parts)} fields, not 5{extra}: {_SYNTAX}")
    parts = [("*" if p == "?" else p) if i in (2, 4) else p for i, p in enumerate(parts)]
    return " ".join(parts)


@dataclass(frozen=True)
class Cron:
    """A validated expression in a zone. Build it with `parse`."""

    expression: str
    fields: str
    zone: dt.tzinfo
    zone_name: str

    def _iter(self, start: dt.datetime, reverse: bool = False) -> CronSim:
        return CronSim(self.fields, start.astimezone(self.zone), reverse=reverse)

    def next_after(self, after: dt.datetime) -> dt.datetime | None:
        """The first fire time strictly after `after` (None if it never fires again within 50 years)."""
        _aware(after, "after")
        it = self._iter(after)
        for _ in range(_MAX_STEPS):
            try:
                candidate = next(it).astimezone(UTC)
            except StopIteration:
                return None
            if candidate > after:
                return candidate
        return None

    def latest_at_or_before(self, at: dt.datetime) -> dt.datetime | None:
        """The last fire time at or before `at` (None if there is none within 50 years)."""
        _aware(at, "at")
        start = at.replace(microsecond=0) + dt.timedelta(seconds=1)
        it = self._iter(start, reverse=True)
        found: dt.datetime | None = None
        for _ in range(_MAX_STEPS):
            try:
                candidate = next(it).astimezone(UTC)
            except StopIteration:
                break
            if candidate <= at:
                found = candidate
                break
        if found is None:
            return None
        # walking back through a fold can skip its first pass: walk forward to the true latest
        for _ in range(_MAX_STEPS):
            later = self.next_after(found)
            if later is None or later > at:
                break
            found = later
        return found

    def ticks(self, after: dt.datetime, until: dt.datetime, limit: int) -> list[dt.datetime]:
        """Fire times in (after, until], oldest first, at most `limit` of them."""
        _aware(after, "after")
        _aware(until, "until")
        out: list[dt.datetime] = []
        last = after
        while len(out) < limit:
            nxt = self.next_after(last)
            if nxt is None or nxt > until:
                break
            out.append(nxt)
            last = nxt
        return out


def parse(expression: str, time_zone: str | None = None) -> Cron:
    """Validate a schedule and its zone; CronError names spec.schedule or spec.timeZone."""
    zone = load_zone(time_zone)
    fields = normalize(expression)
    try:
        CronSim(fields, dt.datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        reason = str(exc).lower() or "invalid"
        raise CronError(
            SCHEDULE_FIELD, f"{expression!r} is not a valid cron expression ({reason}): {_SYNTAX}"
        ) from None
    except (ValueError, IndexError) as exc:  # cronsim rejects some malformed terms with plain errors
        raise CronError(SCHEDULE_FIELD, f"{expression!r} is not a valid cron expression ({exc}): {_SYNTAX}") from None
    return Cron(expression=expression, fields=fields, zone=zone, zone_name=time_zone or "UTC")
