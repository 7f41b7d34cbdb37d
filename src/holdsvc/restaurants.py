"""Restaurants: the venue face with tables and a slot grid (no HTTP here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from redis.exceptions import WatchError

from holdsvc import slots as timegrid
from holdsvc.clock import redis_now_ms
from holdsvc.errors import NotFound, ValidationFailed
from holdsvc.grid import Grid, read_schedule, stored_schedule
from holdsvc.keys import Keys, VenueKeys
from holdsvc.models import (
    OMIT,
    AvailableSlot,
    Restaurant,
    RestaurantInput,
    RestaurantPatch,
    Schedule,
    SlotView,
    Table,
    TableInput,
    TableStatus,
)
from holdsvc.paging import Page, PageRequest, Position, scan_page, zset_window
from holdsvc.scripts import AnyRedis
from holdsvc.venues import (
    FIT_SCALE,
    CellState,
    Venue,
    VenueKind,
    Venues,
    check_slot_id,
    date_range,
    read_cell,
)

KIND = VenueKind.RESTAURANT
T = TypeVar("T")


class Restaurants:
    """Create and read restaurants, their tables and slot grids; answer availability."""

    def __init__(self, redis: AnyRedis, keys: Keys, venues: Venues, grid: Grid) -> None:
        self._redis = redis
        self._keys = keys
        self._venues = venues
        self._grid = grid

    # -- restaurants --------------------------------------------------------------------

    async def create(self, data: RestaurantInput) -> Restaurant:
        """Create a restaurant (no tables, no slots yet)."""
        try:
            timegrid.zone(data.timezone)
            timegrid.parse_hh_mm(data.opens)
            timegrid.parse_hh_mm(data.closes)
        except ValueError as error:
            raise ValidationFailed(str(error)) from None
        if data.opens == data.closes:
            raise ValidationFailed("'closes' must differ from 'opens'")
        fields = {
            "kind": KIND,
            "name": data.name,
            "phone": self._venues.phone(data.phone),
            "timezone": data.timezone,
            "opens": data.opens,
            "closes": data.closes,
            "slot_minutes": str(data.slot_minutes),
            **self._venues.hold_rules(
                data.hold_seconds, data.max_hold_seconds, data.max_holds_per_user
            ),
            "min_notice_minutes": str(data.min_notice_minutes),
            "max_days_ahead": str(data.max_days_ahead),
            "bookings_open": "1",
            "horizon_days": str(data.horizon_days),
            "max_waitlist": str(data.max_waitlist),
            "offer_seconds": str(data.offer_seconds),
            "created": str(await redis_now_ms(self._redis)),
        }
        if data.schedule is not None:
            fields["schedule"] = stored_schedule(data.schedule)
        return await self.get(await self._venues.insert(fields))

    async def get(self, venue_id: str) -> Restaurant:
        """One restaurant."""
        return restaurant_view(await self._venues.load(venue_id, KIND))

    async def list_all(self) -> list[Restaurant]:
        """Every restaurant, oldest first."""
        return [restaurant_view(venue) for venue in await self._venues.all_of(KIND)]

    async def page(self, request: PageRequest) -> Page[Restaurant]:
        """One page of the restaurants, oldest first."""
        venues = await self._venues.page_of(KIND, request)
        return Page([restaurant_view(v) for v in venues.items], venues.next_cursor)

    async def update(self, venue_id: str, patch: RestaurantPatch) -> Restaurant:
        """Change a restaurant's name, phone, booking rules, schedule or horizon."""
        also = None if patch.schedule is OMIT else _schedule_writes(patch.schedule)
        plain = msgspec.structs.replace(patch, schedule=OMIT)
        await self._venues.update(venue_id, KIND, plain, also=also)
        return await self.get(venue_id)

    # -- tables -------------------------------------------------------------------------

    async def add_tables(self, venue_id: str, tables: list[TableInput]) -> list[Table]:
        """Add tables; ids are ``T<n>`` in creation order; ValidationFailed (nothing added)
        beyond the venue's table limit."""
        keys = self._keys.of(venue_id)
        await self._venues.load(venue_id, KIND)
        limit = self._venues.settings.max_tables_per_venue
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    # WATCH: the count checked and the ids taken are those the write extends.
                    await pipe.watch(keys.venue, keys.units)
                    have = int(await self._redis.hlen(keys.units))
                    if have + len(tables) > limit:
                        raise ValidationFailed(
                            f"A restaurant has at most {limit} tables: it has {have}, "
                            f"{len(tables)} more would make {have + len(tables)}"
                        )
                    first = int(await self._redis.hget(keys.venue, "next_unit") or 0) + 1
                    created = [
                        Table(id=f"T{first + i}", label=table.label, capacity=table.capacity)
                        for i, table in enumerate(tables)
                    ]
                    pipe.multi()
                    pipe.hset(keys.venue, "next_unit", first + len(tables) - 1)
                    for seq, table in enumerate(created, start=first):
                        # Units are written in one transaction: a hold never sees half a table.
                        pipe.hset(keys.units, table.id, table.capacity)
                        if table.label is not None:
                            pipe.hset(keys.unit_labels, table.id, table.label)
                        pipe.zadd(keys.units_by_fit, {table.id: table.capacity * FIT_SCALE + seq})
                    await pipe.execute()
                    return created
                except WatchError:
                    continue

    async def tables(self, venue_id: str) -> list[Table]:
        """A restaurant's tables, in creation order."""
        await self._venues.load(venue_id, KIND)
        return await self._tables(self._keys.of(venue_id))

    async def _tables(self, keys: VenueKeys) -> list[Table]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrange(keys.units_by_fit, 0, -1, withscores=True)
        pipe.hgetall(keys.unit_labels)
        fit, labels = await pipe.execute()
        tables = [
            (
                int(score) % FIT_SCALE,
                Table(id=uid, label=labels.get(uid), capacity=int(score) // FIT_SCALE),
            )
            for uid, score in fit
        ]
        return [table for _, table in sorted(tables, key=lambda pair: pair[0])]

    # -- slots --------------------------------------------------------------------------

    async def add_slots(self, venue_id: str, first_text: str, last_text: str) -> tuple[int, int]:
        """Lay out the slot grid from ``first`` to ``last`` following the week and skipping
        closed dates; idempotent. (created, total)."""
        await self._venues.load(venue_id, KIND)
        first, last = date_range(first_text, last_text)
        return await self._grid.fill(venue_id, first, last)

    async def _grid_page(
        self,
        venue_id: str,
        first_text: str,
        last_text: str,
        request: PageRequest | None,
        view: Callable[[Venue, str, int, list[TableStatus], int], T | None],
    ) -> Page[T]:
        """One page of the slots of a date range (at most ``max_query_days`` days), each
        made into ``view`` (None: left out); a page holds at most ``max_cells_per_page``
        table states."""
        settings = self._venues.settings
        venue = await self._venues.load(venue_id, KIND)
        first, last = date_range(first_text, last_text, max_days=settings.max_query_days)
        start_ms, end_ms = timegrid.local_day_bounds_ms(first, last, venue.tz)
        keys = self._keys.of(venue_id)
        tables = await self._tables(keys)
        most = max(1, settings.max_cells_per_page // max(1, len(tables)))
        request = request or PageRequest(limit=most)
        now = await redis_now_ms(self._redis)

        async def window(after: Position | None, count: int) -> list[tuple[str, int]]:
            return await zset_window(
                self._redis, keys.slots, count=count, after=after, low=start_ms, high=end_ms
            )

        async def load(grid: list[tuple[str, int]]) -> list[T | None]:
            states = await self._states(venue, keys, grid, now, tables)
            return [view(venue, slot, start, row, now) for slot, start, row in states]

        return await scan_page(
            window, load, PageRequest(limit=min(request.limit, most), after=request.after)
        )

    async def availability(
        self,
        venue_id: str,
        first_text: str,
        last_text: str,
        party_size: int,
        request: PageRequest | None = None,
    ) -> Page[AvailableSlot]:
        """Bookable slots (not started, inside the window) with the free tables that fit."""
        # Slots kept on a closed date (for the bookings they have) take no new guests.
        closed = await self._grid.closed_dates(venue_id, *date_range(first_text, last_text))

        def view(
            venue: Venue, slot: str, start: int, tables: list[TableStatus], now: int
        ) -> AvailableSlot | None:
            if slot[:10] in closed:
                return None
            free = [
                Table(id=t.id, label=t.label, capacity=t.capacity)
                for t in sorted(tables, key=lambda t: t.capacity)
                if t.capacity >= party_size and t.status == "available"
            ]
            if not free or not _bookable(venue, start, now):
                return None
            return AvailableSlot(slot=slot, tables=free, **_span(venue, start))

        return await self._grid_page(venue_id, first_text, last_text, request, view)

    async def slot_views(
        self, venue_id: str, first_text: str, last_text: str, request: PageRequest | None = None
    ) -> Page[SlotView]:
        """Every slot of a date range with each table's status."""

        def view(
            venue: Venue, slot: str, start: int, tables: list[TableStatus], _: int
        ) -> SlotView:
            return SlotView(slot=slot, tables=tables, **_span(venue, start))

        return await self._grid_page(venue_id, first_text, last_text, request, view)

    async def slot_view(self, venue_id: str, slot: str) -> SlotView:
        """One slot with each table's status."""
        venue = await self._venues.load(venue_id, KIND)
        check_slot_id(slot)
        keys = self._keys.of(venue_id)
        start = await self._redis.zscore(keys.slots, slot)
        if start is None:
            raise NotFound("No such slot in this venue's grid")
        now = await redis_now_ms(self._redis)
        [(_, _, tables)] = await self._states(venue, keys, [(slot, int(start))], now)
        return SlotView(slot=slot, tables=tables, **_span(venue, int(start)))

    async def _states(
        self,
        venue: Venue,
        keys: VenueKeys,
        grid: list[tuple[str, int]],
        now: int,
        tables: list[Table] | None = None,
    ) -> list[tuple[str, int, list[TableStatus]]]:
        tables = tables if tables is not None else await self._tables(keys)
        pipe = self._redis.pipeline(transaction=False)
        for slot, _ in grid:
            pipe.hgetall(keys.cells(slot))
        cell_maps: list[dict[str, str]] = await pipe.execute() if grid else []
        return [
            (
                slot,
                start,
                [_table_status(t, read_cell(cells.get(t.id), now), venue) for t in tables],
            )
            for (slot, start), cells in zip(grid, cell_maps, strict=True)
        ]


def _schedule_writes(schedule: Schedule | None) -> Callable[[Any, VenueKeys], None]:
    """The writes of a new schedule (None: back to opens/closes every day), for the MULTI of
    the update; ValidationFailed before anything is written when it is not valid."""
    stored = None if schedule is None else stored_schedule(schedule)

    def write(pipe: Any, keys: VenueKeys) -> None:
        if stored is None:
            pipe.hdel(keys.venue, "schedule")
        else:
            pipe.hset(keys.venue, "schedule", stored)
        # A new week, a new grid version: slots computed from the old week are refused from
        # now on, and the rolling grid fills its horizon again.
        pipe.hincrby(keys.venue, "grid_version", 1)

    return write


def _span(venue: Venue, start_ms: int) -> dict[str, str]:
    return {
        "starts_at": venue.time(start_ms),
        "ends_at": venue.time(start_ms + venue.slot_minutes * 60_000),
    }


def _bookable(venue: Venue, start_ms: int, now_ms: int) -> bool:
    """Not started, and inside the booking window (what hold.lua checks too)."""
    if start_ms <= now_ms:
        return False
    if start_ms < now_ms + venue.number("min_notice_minutes") * 60_000:
        return False
    return start_ms <= now_ms + venue.number("max_days_ahead", 90) * 86_400_000


def _table_status(table: Table, state: CellState, venue: Venue) -> TableStatus:
    free_at = venue.time(state.free_at_ms) if state.free_at_ms is not None else None
    return TableStatus(
        id=table.id,
        label=table.label,
        capacity=table.capacity,
        status=state.status,
        free_at=free_at,
    )


def restaurant_view(venue: Venue) -> Restaurant:
    """A stored restaurant as the API shows it."""
    f = venue.fields
    return Restaurant(
        id=venue.id,
        name=f["name"],
        phone=f["phone"],
        timezone=f["timezone"],
        opens=f["opens"],
        closes=f["closes"],
        slot_minutes=venue.slot_minutes,
        hold_seconds=venue.number("hold_seconds"),
        max_hold_seconds=venue.number("max_hold_seconds"),
        max_holds_per_user=venue.number("max_holds_per_user"),
        min_notice_minutes=venue.number("min_notice_minutes"),
        max_days_ahead=venue.number("max_days_ahead", 90),
        bookings_open=f.get("bookings_open") == "1",
        created_at=venue.time(venue.number("created")),
        schedule=read_schedule(f),
        horizon_days=venue.number("horizon_days"),
        max_waitlist=venue.number("max_waitlist", 100),
        offer_seconds=venue.number("offer_seconds", 900),
    )
