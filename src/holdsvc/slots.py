"""Slot ids, slot grids and time formatting in a venue's time zone.

A slot id is the slot's local start, ``YYYY-MM-DDTHH:MM``. Grids are laid out in local wall
clock time; a local start that does not exist (the hour skipped when clocks go forward) is
left out, and an ambiguous one (the hour repeated when clocks go back) means its first
occurrence, so a slot id always names exactly one instant.

A week is seven lists of services (Monday first), each an (opens, closes) pair: the restaurant's
``schedule``, or its ``opens``/``closes`` on every day when it has none.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

SLOT_ID = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")
HH_MM = re.compile(r"^\d{2}:\d{2}$")
MAX_GRID_DAYS = 366
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SERVICES = 4
DAY_MINUTES = 24 * 60

Service: TypeAlias = tuple[time, time]
Week: TypeAlias = Sequence[Sequence[Service]]


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ValueError when it is not one."""
    if not name or name not in _zone_names():
        raise ValueError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


_ZONES: frozenset[str] = frozenset()


def _zone_names() -> frozenset[str]:
    global _ZONES  # noqa: PLW0603 - computed once, on first use
    if not _ZONES:
        _ZONES = frozenset(available_timezones())
    return _ZONES


def venue_zone(fields: dict[str, str]) -> tzinfo:
    """A venue's zone: its IANA time zone, else the fixed UTC offset it was created with."""
    if "timezone" in fields:
        return ZoneInfo(fields["timezone"])
    return timezone(timedelta(minutes=int(fields.get("utc_offset_minutes", "0"))))


def parse_hh_mm(text: str) -> time:
    """``"HH:MM"`` as a time; ValueError otherwise."""
    if not HH_MM.match(text):
        raise ValueError(f"{text!r} is not HH:MM")
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a real time of day") from None


def parse_slot_id(text: str) -> datetime:
    """A slot id as a naive local datetime; ValueError when malformed or not a real time."""
    if not SLOT_ID.match(text):
        raise ValueError(f"{text!r} is not YYYY-MM-DDTHH:MM")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a real date and time") from None


def format_slot_id(local: datetime) -> str:
    """The slot id of a local start (a four-digit year even before 1000: strftime writes
    year 5 as "5", which no slot id parser takes back)."""
    return f"{local.year:04d}-{local.month:02d}-{local.day:02d}T{local.hour:02d}:{local.minute:02d}"


_EPOCH = datetime(1970, 1, 1)
_MS = timedelta(milliseconds=1)


def local_to_epoch_ms(local: datetime, tz: tzinfo) -> int | None:
    """Epoch ms of a naive local time, first occurrence; None when it does not exist there."""
    utc = local - (tz.utcoffset(local.replace(fold=0)) or timedelta())
    # A local time that does not exist comes back from UTC as another wall-clock time.
    if tz.fromutc(utc.replace(tzinfo=tz)).replace(tzinfo=None) != local:
        return None
    return (utc - _EPOCH) // _MS


def slot_start_ms(slot_id: str, tz: tzinfo) -> int | None:
    """Epoch ms of a slot id's start, or None when that local time does not exist."""
    return local_to_epoch_ms(parse_slot_id(slot_id), tz)


def service_span(service: Service) -> tuple[int, int]:
    """A service as minutes from its day's midnight, (start, end); a ``closes`` at or before
    ``opens`` means the next day (open past midnight)."""
    opens, closes = service
    start = opens.hour * 60 + opens.minute
    end = closes.hour * 60 + closes.minute
    return start, end + DAY_MINUTES if end <= start else end


def check_day(services: Sequence[tuple[str, str]]) -> list[Service]:
    """One day's ``(opens, closes)`` texts as services, earliest first; ValueError when a time
    is not HH:MM, a service opens when it closes, there are too many, or two overlap."""
    if len(services) > MAX_SERVICES:
        raise ValueError(f"a day has at most {MAX_SERVICES} services")
    parsed: list[Service] = []
    for opens, closes in services:
        service = (parse_hh_mm(opens), parse_hh_mm(closes))
        if service[0] == service[1]:
            raise ValueError(f"a service closes when it opens ({opens})")
        parsed.append(service)
    parsed.sort(key=service_span)
    for earlier, later in itertools.pairwise(parsed):
        if service_span(later)[0] < service_span(earlier)[1]:
            raise ValueError(
                f"services {earlier[0]:%H:%M}-{earlier[1]:%H:%M} and "
                f"{later[0]:%H:%M}-{later[1]:%H:%M} overlap"
            )
    return parsed


def every_day(opens: time, closes: time) -> Week:
    """The week of a restaurant without a schedule: the same one service every day."""
    return [[(opens, closes)]] * 7


def weekly_grid(
    tz: tzinfo, first: date, last: date, week: Week, slot_minutes: int
) -> list[tuple[str, int]]:
    """Every slot from ``first`` to ``last`` inclusive, chronological: (slot id, start ms).

    Each service of a day (``week[day.weekday()]``) has slots from its ``opens`` every
    ``slot_minutes`` while the slot ends by its ``closes``, in local wall-clock time; a start
    that does not exist locally is left out, and one that two services (a late service running
    into the next day's first) both make is listed once.
    """
    step = timedelta(minutes=slot_minutes)
    found: dict[str, int] = {}
    day = first
    while day <= last:
        midnight = datetime.combine(day, time())
        for service in week[day.weekday()]:
            start_minutes, end_minutes = service_span(service)
            start = midnight + timedelta(minutes=start_minutes)
            end_of_service = midnight + timedelta(minutes=end_minutes)
            while start + step <= end_of_service:
                epoch_ms = local_to_epoch_ms(start, tz)
                if epoch_ms is not None:
                    found.setdefault(format_slot_id(start), epoch_ms)
                start += step
        day += timedelta(days=1)
    return sorted(found.items(), key=lambda pair: pair[1])


def grid(
    tz: tzinfo, first: date, last: date, opens: time, closes: time, slot_minutes: int
) -> list[tuple[str, int]]:
    """Every slot from ``first`` to ``last`` inclusive with one service every day:
    (slot id, start epoch ms). See `weekly_grid`."""
    return weekly_grid(tz, first, last, every_day(opens, closes), slot_minutes)


def rfc3339(epoch_ms: int, tz: tzinfo) -> str:
    """``2026-12-01T19:00:00.000+01:00``: local time with offset, millisecond precision."""
    local = datetime.fromtimestamp(epoch_ms / 1000, tz)
    return local.isoformat(timespec="milliseconds")


def local_day_bounds_ms(first: date, last: date, tz: tzinfo) -> tuple[int, int]:
    """Epoch ms of local midnight starting ``first`` and of local midnight after ``last``."""
    start = datetime.combine(first, time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def parse_date(text: str) -> date:
    """``YYYY-MM-DD`` as a date; ValueError otherwise."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(f"{text!r} is not YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a real date") from None


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 timestamp with an offset (or Z) as an aware datetime; ValueError otherwise."""
    if not re.fullmatch(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})", text
    ):
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp with an offset")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
