"""How the pages write dates, times, tables and error codes for people (no HTTP, no Redis)."""

from __future__ import annotations

from datetime import date

from litestar.plugins.jinja import JinjaTemplateEngine

from holdsvc.errors import Problem
from holdsvc.models import OMIT, Schedule, ServiceHours, Table, TableStatus
from holdsvc.slots import WEEKDAYS

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
STATUS_WORDS = {
    "confirmed": "Confirmed",
    "cancelled": "Cancelled",
    "no_show": "No-show",
    "completed": "Completed",
    "available": "Available",
    "held": "Held",
    "reserved": "Reserved",
}

# What a guest reads for each stable error code of the API, from the table of codes (the
# JavaScript modules get the same table from /static/js/codes.js, served by the app).
MESSAGES = {problem.code: problem.message for problem in Problem}


def parse_day(text: str | None) -> date | None:
    """A ``YYYY-MM-DD`` date, or None when it is missing or not a real date."""
    if not text or len(text) != 10:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def day_label(value: date | str) -> str:
    """``Tuesday 1 December 2026``."""
    day = value if isinstance(value, date) else date.fromisoformat(value[:10])
    return f"{DAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]} {day.year}"


def short_day(value: date | str) -> str:
    """``Tue 1 Dec``."""
    day = value if isinstance(value, date) else date.fromisoformat(value[:10])
    return f"{DAYS[day.weekday()][:3]} {day.day} {MONTHS[day.month - 1][:3]}"


def clock(value: str | None) -> str:
    """The local ``HH:MM`` of a slot id or an RFC 3339 time in the venue's zone."""
    return value[11:16] if value and len(value) >= 16 else ""


def table_name(table: Table | TableStatus | None, fallback: str = "") -> str:
    """A table's label, else its id."""
    if table is None:
        return f"Table {fallback}" if fallback else ""
    return table.label or f"Table {table.id}"


def status_word(status: str) -> str:
    """A status as a word."""
    return STATUS_WORDS.get(status, status.replace("_", " ").capitalize())


def message_for(code: str, detail: str | None = None) -> str:
    """The human sentence for an error code (validation errors carry their detail)."""
    text = MESSAGES.get(code, "Something went wrong. Please try again.")
    if code == "validation_error" and detail:
        return f"{text} ({detail})"
    return text


def week_day(schedule: Schedule, weekday: int) -> list[ServiceHours]:
    """The services of a weekday (0: Monday) in a schedule ([] when it is closed)."""
    services = getattr(schedule, WEEKDAYS[weekday])
    return [] if services is OMIT else list(services)


def week_hours(schedule: Schedule) -> list[str]:
    """A schedule as one line per weekday: ``Wednesday 12:00-14:30, 18:00-22:00`` (with en
    dashes), ``Monday closed``."""
    lines = []
    for weekday, name in enumerate(DAYS):
        services = week_day(schedule, weekday)
        hours = ", ".join(f"{s.opens}\u2013{s.closes}" for s in services) or "closed"
        lines.append(f"{name} {hours}")
    return lines


def register_filters(engine: JinjaTemplateEngine) -> None:
    """Make the formatting helpers available to every template."""
    engine.engine.filters.update(
        day_label=day_label,
        short_day=short_day,
        clock=clock,
        table_name=table_name,
        status_word=status_word,
        week_hours=week_hours,
    )
