"""How the pages write dates, times, tables and error codes for people (no HTTP, no Redis)."""

from __future__ import annotations

from datetime import date, time
from functools import lru_cache

import phonenumbers
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton, format_time
from babel.numbers import format_decimal
from jinja2 import pass_context
from jinja2.runtime import Context
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
    "seated": "Seated",
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


DEFAULT_LOCALE = "en-US"


@lru_cache(maxsize=64)
def babel_locale(tag: str | None) -> Locale:
    """The Babel locale of a venue's BCP 47 tag (en-US when missing or unknown)."""
    try:
        return Locale.parse(tag or DEFAULT_LOCALE, sep="-")
    except (ValueError, TypeError, UnknownLocaleError):
        return Locale.parse(DEFAULT_LOCALE, sep="-")


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value[:10])


def local_day(value: date | str, locale: str | None) -> str:
    """A date as the venue's locale writes it in full (``Tuesday, December 1, 2026``)."""
    return format_date(_day(value), format="full", locale=babel_locale(locale))


def local_short_day(value: date | str, locale: str | None) -> str:
    """A short date in the venue's locale (``Tue, Dec 1``)."""
    return format_skeleton("MMMEd", _day(value), locale=babel_locale(locale))


def local_clock(value: str | None, locale: str | None) -> str:
    """The wall-clock time of a slot id or RFC 3339 time, as the locale writes it
    (``7:00 PM`` in en-US, ``19:00`` in de-DE); no zone conversion, no zone name."""
    if not value or len(value) < 16:
        return ""
    wall = time(int(value[11:13]), int(value[14:16]))
    return format_time(wall, format="short", locale=babel_locale(locale))


def local_phone(value: str | None) -> str:
    """A stored E.164 number in its country's national format (``(212) 555-0100``)."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))


def local_number(value: int | float, locale: str | None) -> str:
    """A number as the locale writes it (``1,234`` or ``1.234``)."""
    return str(format_decimal(value, locale=babel_locale(locale)))


def _locale_of(context: Context) -> str | None:
    value = context.get("locale")
    return value if isinstance(value, str) else None


@pass_context
def _day_filter(context: Context, value: date | str, locale: str | None = None) -> str:
    return local_day(value, locale or _locale_of(context))


@pass_context
def _short_day_filter(context: Context, value: date | str, locale: str | None = None) -> str:
    return local_short_day(value, locale or _locale_of(context))


@pass_context
def _clock_filter(context: Context, value: str | None, locale: str | None = None) -> str:
    return local_clock(value, locale or _locale_of(context))


@pass_context
def _number_filter(context: Context, value: int | float, locale: str | None = None) -> str:
    return local_number(value, locale or _locale_of(context))


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


def week_hours(schedule: Schedule, locale: str | None = None) -> list[str]:
    """A schedule as one line per weekday: ``Wednesday 12:00-14:30, 18:00-22:00`` (with en
    dashes, times as ``locale`` writes them), ``Monday closed``."""
    lines = []
    for weekday, name in enumerate(DAYS):
        services = week_day(schedule, weekday)
        hours = (
            ", ".join(f"{hh_mm(s.opens, locale)}\u2013{hh_mm(s.closes, locale)}" for s in services)
            or "closed"
        )
        lines.append(f"{name} {hours}")
    return lines


def hh_mm(value: str, locale: str | None) -> str:
    """An ``HH:MM`` wall-clock time as the locale writes it."""
    return local_clock(f"2000-01-01T{value}", locale)


@pass_context
def _week_hours_filter(context: Context, schedule: Schedule) -> list[str]:
    return week_hours(schedule, _locale_of(context))


@pass_context
def _hh_mm_filter(context: Context, value: str) -> str:
    return hh_mm(value, _locale_of(context))


def register_filters(engine: JinjaTemplateEngine) -> None:
    """Make the formatting helpers available to every template."""
    # Dates, times and numbers follow the ``locale`` of the page's context (the venue's).
    engine.engine.filters.update(
        day_label=_day_filter,
        short_day=_short_day_filter,
        clock=_clock_filter,
        number=_number_filter,
        phone=local_phone,
        table_name=table_name,
        status_word=status_word,
        week_hours=_week_hours_filter,
        clock_hhmm=_hh_mm_filter,
    )
