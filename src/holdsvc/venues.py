"""The venue core that restaurants and events share (no HTTP here).

A venue is a restaurant or an event: its kind is a ``VenueKind``. This module holds what
does not depend on the kind: loading a venue and its cached profile, storing a new one under a
fresh id, the hold rules and their defaults, updates under WATCH, reading a cell, and the date
and slot checks. ``restaurants.py`` and ``events.py`` are the two faces built on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum
from typing import Any

import msgspec
from babel import Locale, UnknownLocaleError
from redis.exceptions import WatchError

from holdsvc import slots as timegrid
from holdsvc.booking_rules import BookingRules, read_rules
from holdsvc.errors import NotFound, ValidationFailed
from holdsvc.identifiers import new_venue_id, normalize_phone
from holdsvc.keys import Keys, VenueKeys
from holdsvc.models import OMIT
from holdsvc.paging import Page, PageRequest, Position, scan_page, zset_window
from holdsvc.scripts import AnyRedis
from holdsvc.settings import Settings

FIT_SCALE = 1 << 20
RULE_FIELDS = (
    "rules_version",
    "durations",
    "max_covers_per_slot",
    "one_booking_per_guest",
    "combinations",
)
PLAIN_RULES = BookingRules()
MAX_QUERY_DAYS = 366
# A day's local bounds must be representable in every time zone (datetime spans years 1..9999).
EARLIEST_DATE = date(1, 1, 2)
LATEST_DATE = date(9999, 12, 30)


class VenueKind(StrEnum):
    """What a venue is: the one place the kinds are named."""

    RESTAURANT = "restaurant"
    EVENT = "event"


@dataclass(frozen=True, slots=True)
class Venue:
    """A venue's settings as stored, with its zone resolved."""

    id: str
    kind: VenueKind
    fields: dict[str, str]
    tz: tzinfo

    def number(self, name: str, default: int = 0) -> int:
        """An integer setting."""
        value = self.fields.get(name)
        return int(value) if value is not None else default

    @property
    def slot_minutes(self) -> int:
        """Minutes a slot lasts."""
        return self.number("slot_minutes", 60)

    def time(self, epoch_ms: int) -> str:
        """An instant as RFC 3339 in the venue's zone."""
        return timegrid.rfc3339(epoch_ms, self.tz)


@dataclass(frozen=True, slots=True)
class VenueProfile:
    """The parts of a venue that never change once created (safe to cache per process)."""

    id: str
    kind: VenueKind
    tz: tzinfo
    slot_minutes: int
    event_slot: str | None = None
    seat_map: bool = False


@dataclass(frozen=True, slots=True)
class CellState:
    """One cell as readers see it: lapsed holds read as available (invariant 7)."""

    status: str
    free_at_ms: int | None = None
    owner: str | None = None


def read_cell(state: str | None, now_ms: int) -> CellState:
    """Decode a cells-hash value (see lua/include/parse_cell.lua) as of ``now_ms``."""
    if state is None:
        return CellState("available")
    if state.startswith("r|"):
        return CellState("reserved", owner=state[2:])
    _, hold_id, expires = state.split("|", 2)
    if int(expires) <= now_ms:
        return CellState("available")
    return CellState("held", free_at_ms=int(expires), owner=hold_id)


def date_range(
    first_text: str, last_text: str, *, max_days: int = MAX_QUERY_DAYS
) -> tuple[date, date]:
    """Validated inclusive date range."""
    try:
        first, last = timegrid.parse_date(first_text), timegrid.parse_date(last_text)
    except ValueError as error:
        raise ValidationFailed(str(error)) from None
    if first < EARLIEST_DATE or last > LATEST_DATE:
        raise ValidationFailed(f"dates run from {EARLIEST_DATE} to {LATEST_DATE}")
    if last < first:
        raise ValidationFailed("'to' is before 'from'")
    if (last - first).days + 1 > max_days:
        raise ValidationFailed(f"a date range spans at most {max_days} days")
    return first, last


def instant_ms(moment: datetime) -> int:
    """Epoch ms of an aware instant that every venue zone can show: its UTC date runs from
    EARLIEST_DATE to LATEST_DATE (else ValidationFailed, before anything is stored)."""
    try:
        day = moment.astimezone(UTC).date()
    except OverflowError:  # before year 1 or after 9999 in UTC
        day = None
    if day is None or not EARLIEST_DATE <= day <= LATEST_DATE:
        raise ValidationFailed(f"times run from {EARLIEST_DATE} to {LATEST_DATE} (UTC)")
    return int(moment.timestamp() * 1000)


DETAIL_FIELDS = ("address", "description", "locale", "reminder_hours")
DEFAULT_LOCALE = "en-US"


def check_locale(tag: str) -> str:
    """A BCP 47 tag Babel knows (``de-DE``), as given; ValidationFailed otherwise."""
    try:
        Locale.parse(tag, sep="-")
    except (ValueError, TypeError, UnknownLocaleError):
        raise ValidationFailed(f"locale {tag!r} is not a known BCP 47 tag") from None
    return tag


def stored_details(
    address: str, description: str, locale: str, reminder_hours: int
) -> dict[str, str]:
    """What guests read about a venue (address, description, locale, reminder hours) as the
    venue hash stores it; the locale checked first."""
    return {
        "address": address,
        "description": description,
        "locale": check_locale(locale),
        "reminder_hours": str(reminder_hours),
    }


def details_view(venue: Venue) -> dict[str, Any]:
    """The detail fields of a venue as the API shows them (defaults for older venues)."""
    fields = venue.fields
    return {
        "address": fields.get("address", ""),
        "description": fields.get("description", ""),
        "locale": fields.get("locale") or DEFAULT_LOCALE,
        "reminder_hours": venue.number("reminder_hours"),
    }


def check_slot_id(slot: str) -> None:
    """A slot id must be ``YYYY-MM-DDTHH:MM`` and a real date and time (else 400)."""
    try:
        timegrid.parse_slot_id(slot)
    except ValueError as error:
        raise ValidationFailed(str(error)) from None


def check_hold_bounds(fields: dict[str, str]) -> None:
    """``max_hold_seconds`` may not be shorter than ``hold_seconds``."""
    if int(fields["max_hold_seconds"]) < int(fields["hold_seconds"]):
        raise ValidationFailed("max_hold_seconds must be at least hold_seconds")


class Venues:
    """Load, store, list and update venues of any kind."""

    def __init__(self, redis: AnyRedis, keys: Keys, settings: Settings) -> None:
        self._redis = redis
        self._keys = keys
        self._settings = settings
        self._profiles: dict[str, VenueProfile] = {}
        self._rules: dict[str, BookingRules] = {}

    @property
    def settings(self) -> Settings:
        """The settings the venue faces read their limits from."""
        return self._settings

    async def load(self, venue_id: str, kind: VenueKind | None = None) -> Venue:
        """A venue's settings; NotFound when missing (or of another kind)."""
        fields: dict[str, str] = await self._redis.hgetall(self._keys.of(venue_id).venue)
        return self._venue(venue_id, fields, kind)

    def _venue(self, venue_id: str, fields: dict[str, str], kind: VenueKind | None) -> Venue:
        if not fields or (kind is not None and fields.get("kind") != kind):
            raise NotFound(f"No such {kind or 'venue'}")
        return Venue(venue_id, VenueKind(fields["kind"]), fields, timegrid.venue_zone(fields))

    async def profile(self, venue_id: str, kind: VenueKind | None = None) -> VenueProfile:
        """Kind, zone and slot length of an existing venue; cached, as they never change."""
        profile = self._profiles.get(venue_id)
        if profile is None:
            venue = await self.load(venue_id)
            profile = VenueProfile(
                venue.id,
                venue.kind,
                venue.tz,
                venue.slot_minutes,
                venue.fields.get("slot"),
                venue.fields.get("seatmap") == "1",
            )
            self._profiles[venue_id] = profile
        if kind is not None and profile.kind != kind:
            raise NotFound(f"No such {kind}")
        return profile

    async def rules(self, venue_id: str) -> BookingRules:
        """A restaurant's booking rules, cached per process: the scripts that claim refuse
        (STALE) when its ``rules_version`` moved on, and the caller calls ``forget_rules``."""
        rules = self._rules.get(venue_id)
        if rules is None:
            values = await self._redis.hmget(self._keys.of(venue_id).venue, RULE_FIELDS)
            rules = read_rules(
                {name: v for name, v in zip(RULE_FIELDS, values, strict=True) if v is not None}
            )
            self._rules[venue_id] = rules
        return rules

    def forget_rules(self, venue_id: str) -> None:
        """Drop the cached rules of a venue (a script said they are stale, or they changed)."""
        self._rules.pop(venue_id, None)

    async def all_of(self, kind: VenueKind) -> list[Venue]:
        """Every venue of a kind, oldest first (one pipelined read)."""
        ids: list[str] = await self._redis.zrange(self._keys.venues(kind), 0, -1)
        pipe = self._redis.pipeline(transaction=False)
        for venue_id in ids:
            pipe.hgetall(self._keys.of(venue_id).venue)
        rows: list[dict[str, str]] = await pipe.execute() if ids else []
        return [
            self._venue(venue_id, row, kind)
            for venue_id, row in zip(ids, rows, strict=True)
            if row.get("kind") == kind
        ]

    async def page_of(self, kind: VenueKind, request: PageRequest) -> Page[Venue]:
        """One page of the venues of a kind, oldest first."""
        key = self._keys.venues(kind)

        async def window(after: Position | None, count: int) -> list[tuple[str, int]]:
            return await zset_window(self._redis, key, count=count, after=after)

        async def load(entries: list[tuple[str, int]]) -> list[Venue | None]:
            pipe = self._redis.pipeline(transaction=False)
            for venue_id, _ in entries:
                pipe.hgetall(self._keys.of(venue_id).venue)
            rows: list[dict[str, str]] = await pipe.execute() if entries else []
            return [
                self._venue(venue_id, row, kind) if row.get("kind") == kind else None
                for (venue_id, _), row in zip(entries, rows, strict=True)
            ]

        return await scan_page(window, load, request)

    async def ids(self) -> list[str]:
        """The ids of every venue of every kind."""
        found: list[str] = []
        for kind in VenueKind:
            found += await self._redis.zrange(self._keys.venues(kind), 0, -1)
        return found

    def phone(self, raw: str) -> str:
        """A phone number normalised to E.164; ValidationFailed when it is not one."""
        try:
            return normalize_phone(raw, self._settings.phone_region)
        except ValueError as error:
            raise ValidationFailed(str(error)) from None

    def hold_rules(
        self,
        hold_seconds: int | None,
        max_hold_seconds: int | None,
        max_holds_per_user: int | None,
    ) -> dict[str, str]:
        """A new venue's hold rules as stored: what was given, else the settings' defaults."""
        hold = hold_seconds or self._settings.hold_seconds
        rules = {
            "hold_seconds": str(hold),
            "max_hold_seconds": str(max_hold_seconds or max(self._settings.max_hold_seconds, hold)),
            "max_holds_per_user": str(max_holds_per_user or self._settings.max_holds_per_user),
        }
        check_hold_bounds(rules)
        return rules

    async def insert(
        self, fields: dict[str, str], also: Callable[[Any, VenueKeys], None] | None = None
    ) -> str:
        """Store a new venue under a fresh id; ``also`` adds more writes to the same MULTI."""
        for _ in range(5):
            venue_id = new_venue_id()
            keys = self._keys.of(venue_id)
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    # WATCH + EXISTS: a random id that is taken is never overwritten.
                    await pipe.watch(keys.venue)
                    # (Not pipe.exists(): a cluster pipeline splits EXISTS by slot and queues it
                    # instead of running it while watching.)
                    if await pipe.execute_command("EXISTS", keys.venue):
                        continue
                    pipe.multi()
                    pipe.hset(keys.venue, mapping=fields)
                    if also is not None:
                        also(pipe, keys)
                    await pipe.execute()
                except WatchError:
                    continue
            # The list of venues is not the venue's own key (another cluster slot): written
            # after the venue itself, so a crash in between leaves an unlisted venue, never a
            # listed one that does not exist.
            await self._redis.zadd(
                self._keys.venues(fields["kind"]), {venue_id: int(fields["created"])}
            )
            return venue_id
        raise RuntimeError("could not find a free venue id")  # pragma: no cover

    async def update(
        self,
        venue_id: str,
        kind: VenueKind,
        patch: msgspec.Struct,
        also: Callable[[Any, VenueKeys], None] | None = None,
    ) -> None:
        """Apply a PATCH body (fields left out are kept), checking the merged hold rules;
        ``also`` adds more writes to the same MULTI."""
        changes = self._stored_changes(patch)
        keys = self._keys.of(venue_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    # WATCH: the hold bounds are checked against the values we overwrite.
                    await pipe.watch(keys.venue)
                    current = await self.load(venue_id, kind)
                    check_hold_bounds({**current.fields, **changes})
                    pipe.multi()
                    if changes:
                        pipe.hset(keys.venue, mapping=changes)
                    if also is not None:
                        also(pipe, keys)
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    def _stored_changes(self, patch: msgspec.Struct) -> dict[str, str]:
        """A PATCH body's given fields as the venue hash stores them (all text)."""
        changes: dict[str, str] = {}
        for field in patch.__struct_fields__:
            value = getattr(patch, field)
            if value is OMIT:
                continue
            if isinstance(value, bool):
                changes[field] = "1" if value else "0"
            elif field == "phone":
                changes[field] = self.phone(value)
            elif field == "locale":
                changes[field] = check_locale(value)
            else:
                changes[field] = str(value)
        return changes
