"""A restaurant's slot grid: its week, its closures, adding and removing slots (no HTTP here).

The week is the restaurant's ``schedule`` (0..4 services per weekday), or its ``opens``/``closes``
every day when it has none. Slots are added by add_slots.lua, which leaves out the slots of
closed dates in the same step, and removed one slot at a time by remove_slot.lua, which keeps a
slot that has a live hold or a reservation. A slot's date is its local start date (its id's).
Every change of the week (a new schedule, a closure lifted) bumps the venue's ``grid_version``:
slots computed from an older week are refused (STALE) and computed again, and the rolling
grid's marker (``grid_filled``, see rolling_grid.py) no longer counts.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator, Sequence
from datetime import date
from typing import TypeVar

import msgspec

from holdsvc import slots as timegrid
from holdsvc.errors import NotFound, Stale, Unavailable, ValidationFailed
from holdsvc.keys import Keys, VenueKeys
from holdsvc.models import OMIT, Closure, ClosureInput, Schedule, SlotRemoval
from holdsvc.scripts import AnyRedis, Scripts
from holdsvc.sweeper import Sweeper, after_sweeping
from holdsvc.venues import Venue, VenueKind, Venues, date_range

KIND = VenueKind.RESTAURANT
DAY_MS = 86_400_000
# Slots per add_slots.lua call: a year of 15-minute slots is ~35 000.
ADD_CHUNK = 1000
# remove_slot.lua calls in flight at once (a cluster client opens a connection per call).
REMOVE_BATCH = 64
STALE_RETRIES = 5
T = TypeVar("T")


def schedule_week(schedule: Schedule) -> timegrid.Week:
    """A schedule as seven days of services (Monday first); ValidationFailed when a day has
    a time that is not real, a service that closes when it opens, or services that overlap."""
    week: list[list[timegrid.Service]] = []
    for name in timegrid.WEEKDAYS:
        services = getattr(schedule, name)
        hours = [] if services is OMIT else [(s.opens, s.closes) for s in services]
        try:
            week.append(timegrid.check_day(hours))
        except ValueError as error:
            raise ValidationFailed(f"schedule.{name}: {error}") from None
    return week


def stored_schedule(schedule: Schedule) -> str:
    """A valid schedule as the venue hash keeps it (JSON); ValidationFailed otherwise."""
    schedule_week(schedule)
    return msgspec.json.encode(schedule).decode()


def read_schedule(fields: dict[str, str]) -> Schedule | None:
    """A venue's schedule, or None when it has none."""
    raw = fields.get("schedule")
    return None if raw is None else msgspec.json.decode(raw, type=Schedule)


def week_of(venue: Venue) -> timegrid.Week:
    """The services of each weekday: the schedule, else ``opens``/``closes`` every day."""
    schedule = read_schedule(venue.fields)
    if schedule is not None:
        return schedule_week(schedule)
    return timegrid.every_day(
        timegrid.parse_hh_mm(venue.fields["opens"]), timegrid.parse_hh_mm(venue.fields["closes"])
    )


def stored_closure(last: str, reason: str | None) -> str:
    """A closure's value in the closures hash (its key is the first closed date):
    ``<last>`` or ``<last>|<reason>``."""
    return last if reason is None else f"{last}|{reason}"


def read_closure(first: str, stored: str) -> Closure:
    """A closure from its closures hash field and value (see `stored_closure`)."""
    last, separator, reason = stored.partition("|")
    return Closure(first=first, last=last, reason=reason if separator else None)


def _chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class Grid:
    """Lay out, close and clear a restaurant's slot grid."""

    def __init__(
        self, redis: AnyRedis, keys: Keys, scripts: Scripts, venues: Venues, sweeper: Sweeper
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._venues = venues
        self._sweeper = sweeper

    # -- adding slots ---------------------------------------------------------------------

    async def fill(
        self, venue_id: str, first: date, last: date, *, filled_through: str = ""
    ) -> tuple[int, int]:
        """Add the slots the week has from ``first`` to ``last`` (inclusive), except on closed
        dates; idempotent. (created, total). ``filled_through`` moves the rolling grid's
        marker once every slot is in."""
        keys = self._keys.of(venue_id)
        created = 0
        for _ in range(STALE_RETRIES):
            venue = await self._venues.load(venue_id, KIND)
            version = venue.fields.get("grid_version", "0")
            grid = timegrid.weekly_grid(venue.tz, first, last, week_of(venue), venue.slot_minutes)
            # Always one call at least: it answers the total and moves the marker.
            chunks = list(_chunks(grid, ADD_CHUNK)) or [[]]
            try:
                for index, chunk in enumerate(chunks):
                    added = await self._scripts.add_slots(
                        keys,
                        grid_version=version,
                        slots=chunk,
                        filled_through=filled_through if index == len(chunks) - 1 else "",
                    )
                    created += added.created
            except Stale:
                continue  # the week changed meanwhile: compute the slots again
            return created, added.total
        raise Unavailable("The schedule kept changing while the slots were laid out; try again")

    # -- closures -------------------------------------------------------------------------

    async def close(self, venue_id: str, data: ClosureInput) -> SlotRemoval:
        """Close a date range: record it, then remove every slot of it that has no live hold
        and no reservation (those are kept and listed)."""
        venue = await self._venues.load(venue_id, KIND)
        first, last = date_range(data.first, data.last)
        keys = self._keys.of(venue_id)
        stored = stored_closure(last.isoformat(), data.reason)
        # Recorded before any slot goes: from here on add_slots.lua creates none on these dates,
        # so no grid step can put a slot back behind the removal.
        await self._redis.hset(keys.closures, first.isoformat(), stored)
        return await self._remove(venue, keys, first, last)

    async def closures(self, venue_id: str) -> list[Closure]:
        """A restaurant's closures, earliest first."""
        await self._venues.load(venue_id, KIND)
        return await self._closures(self._keys.of(venue_id))

    async def _closures(self, keys: VenueKeys) -> list[Closure]:
        stored: dict[str, str] = await self._redis.hgetall(keys.closures)
        return [read_closure(first, stored[first]) for first in sorted(stored)]

    async def closed_dates(self, venue_id: str, first: date, last: date) -> dict[str, Closure]:
        """The dates from ``first`` to ``last`` that a closure covers, with that closure."""
        found: dict[str, Closure] = {}
        for closure in await self._closures(self._keys.of(venue_id)):
            start = max(first, date.fromisoformat(closure.first))
            end = min(last, date.fromisoformat(closure.last))
            for offset in range((end - start).days + 1):
                found.setdefault(date.fromordinal(start.toordinal() + offset).isoformat(), closure)
        return found

    async def reopen(self, venue_id: str, first_text: str) -> None:
        """Lift the closure that starts on ``first_text``; its dates fill again with the next
        grid request or the rolling grid. NotFound when no closure starts then."""
        await self._venues.load(venue_id, KIND)
        first, _ = date_range(first_text, first_text)
        keys = self._keys.of(venue_id)
        if not await self._redis.hexists(keys.closures, first.isoformat()):
            raise NotFound("No closure starts on that date")
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(keys.closures, first.isoformat())
        # A new grid version: the rolling grid fills its horizon again, reopened dates included.
        pipe.hincrby(keys.venue, "grid_version", 1)
        await pipe.execute()

    # -- removing slots -------------------------------------------------------------------

    async def remove(self, venue_id: str, first_text: str, last_text: str) -> SlotRemoval:
        """Remove every slot of a date range that has no live hold and no reservation,
        without closing it."""
        venue = await self._venues.load(venue_id, KIND)
        first, last = date_range(first_text, last_text)
        return await self._remove(venue, self._keys.of(venue_id), first, last)

    async def _remove(self, venue: Venue, keys: VenueKeys, first: date, last: date) -> SlotRemoval:
        start_ms, end_ms = timegrid.local_day_bounds_ms(first, last, venue.tz)
        # A day of margin either side, then the exact rule: a slot's date is its id's.
        nearby: list[str] = await self._redis.zrangebyscore(
            keys.slots, start_ms - DAY_MS, f"({end_ms + DAY_MS}"
        )
        low, high = first.isoformat(), last.isoformat()
        slots = [slot for slot in nearby if low <= slot[:10] <= high]
        removed, kept = 0, []
        for batch in _chunks(slots, REMOVE_BATCH):
            outcomes = await asyncio.gather(*(self._remove_one(venue.id, keys, s) for s in batch))
            for slot, outcome in zip(batch, outcomes, strict=True):
                if outcome is True:
                    removed += 1
                elif outcome is False:
                    kept.append(slot)
        return SlotRemoval(removed=removed, kept=kept)

    async def _remove_one(self, venue_id: str, keys: VenueKeys, slot: str) -> bool | None:
        """One slot: removed (True), kept (False) or already gone (None); lapsed holds on it
        are expired first (their own 'expired' entries)."""
        remove = functools.partial(self._scripts.remove_slot, keys, slot=slot)
        return await after_sweeping(self._sweeper, venue_id, remove)
