"""Slot ids, slot grids and time formatting in a venue's time zone.

A slot id is the slot's local start, ``YYYY-MM-DDTHH:MM``. Grids are laid out in local wall
clock time; a local start that does not exist (the hour skipped when clocks go forward) is
left out, and an ambiguous one (the hour repeated when clocks go back) means its first
occurrence, so a slot id always names exactly one instant.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

SLOT_ID = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")
HH_MM = re.compile(r"^\d{2}:\d{2}$")
MAX_GRID_DAYS = 366


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


def local_to_epoch_ms(local: datetime, tz: tzinfo) -> int | None:
    """Epoch ms of a naive local time, first occurrence; None when it does not exist there."""
    aware = local.replace(tzinfo=tz, fold=0)
    utc = aware.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != local:
        return None
    return int(utc.timestamp() * 1000)


def slot_start_ms(slot_id: str, tz: tzinfo) -> int | None:
    """Epoch ms of a slot id's start, or None when that local time does not exist."""
    return local_to_epoch_ms(parse_slot_id(slot_id), tz)


def grid(
    tz: tzinfo, first: date, last: date, opens: time, closes: time, slot_minutes: int
) -> list[tuple[str, int]]:
    """Every slot from ``first`` to ``last`` inclusive: (slot id, start epoch ms).

    Slots start at ``opens`` every ``slot_minutes`` while the slot ends by ``closes``; a
    ``closes`` at or before ``opens`` means the next day (open past midnight).
    """
    open_minutes = opens.hour * 60 + opens.minute
    close_minutes = closes.hour * 60 + closes.minute
    if close_minutes <= open_minutes:
        close_minutes += 24 * 60
    step = timedelta(minutes=slot_minutes)
    slots: list[tuple[str, int]] = []
    day = first
    while day <= last:
        start = datetime.combine(day, time()) + timedelta(minutes=open_minutes)
        end_of_service = datetime.combine(day, time()) + timedelta(minutes=close_minutes)
        while start + step <= end_of_service:
            epoch_ms = local_to_epoch_ms(start, tz)
            if epoch_ms is not None:
                slots.append((format_slot_id(start), epoch_ms))
            start += step
        day += timedelta(days=1)
    return slots


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
