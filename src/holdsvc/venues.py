"""Venues: restaurants, their tables and slot grids, and what is free when (no HTTP here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import Any

from redis.exceptions import WatchError

from holdsvc import slots as timegrid
from holdsvc.errors import NotFound, ValidationFailed
from holdsvc.identifiers import new_venue_id, normalize_phone
from holdsvc.keys import Keys, VenueKeys
from holdsvc.models import (
    OMIT,
    AvailableSlot,
    Restaurant,
    RestaurantInput,
    RestaurantPatch,
    SlotView,
    Table,
    TableInput,
    TableStatus,
)
from holdsvc.scripts import AnyRedis
from holdsvc.settings import Settings

FIT_SCALE = 1 << 20
MAX_QUERY_DAYS = 366
# A day's local bounds must be representable in every time zone (datetime spans years 1..9999).
EARLIEST_DATE = date(1, 1, 2)
LATEST_DATE = date(9999, 12, 30)


@dataclass(frozen=True, slots=True)
class Venue:
    """A venue's settings as stored, with its zone resolved."""

    id: str
    kind: str
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


@dataclass(frozen=True, slots=True)
class VenueProfile:
    """The parts of a venue that never change once created (safe to cache per process)."""

    id: str
    kind: str
    tz: tzinfo
    slot_minutes: int
    event_slot: str | None = None


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


async def redis_now_ms(redis: AnyRedis) -> int:
    """Redis's clock, the only clock (invariant 6)."""
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


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


class Venues:
    """Create and read venues, tables and slot grids; answer availability."""

    def __init__(self, redis: AnyRedis, keys: Keys, settings: Settings) -> None:
        self._redis = redis
        self._keys = keys
        self._settings = settings
        self._profiles: dict[str, VenueProfile] = {}

    # -- venues -------------------------------------------------------------------------

    async def load(self, venue_id: str, kind: str | None = None) -> Venue:
        """A venue's settings; NotFound when missing (or of another kind)."""
        fields: dict[str, str] = await self._redis.hgetall(self._keys.of(venue_id).venue)
        if not fields or (kind is not None and fields.get("kind") != kind):
            raise NotFound(f"No such {kind or 'venue'}")
        return Venue(venue_id, fields["kind"], fields, timegrid.venue_zone(fields))

    async def profile(self, venue_id: str, kind: str | None = None) -> VenueProfile:
        """Kind, zone and slot length of an existing venue; cached, as they never change."""
        profile = self._profiles.get(venue_id)
        if profile is None:
            venue = await self.load(venue_id)
            profile = VenueProfile(
                venue.id, venue.kind, venue.tz, venue.slot_minutes, venue.fields.get("slot")
            )
            self._profiles[venue_id] = profile
        if kind is not None and profile.kind != kind:
            raise NotFound(f"No such {kind}")
        return profile

    def phone(self, raw: str) -> str:
        """A phone number normalised to E.164; ValidationFailed when it is not one."""
        try:
            return normalize_phone(raw, self._settings.phone_region)
        except ValueError as error:
            raise ValidationFailed(str(error)) from None

    async def create_restaurant(self, data: RestaurantInput) -> Restaurant:
        """Create a restaurant (no tables, no slots yet)."""
        try:
            timegrid.zone(data.timezone)
            timegrid.parse_hh_mm(data.opens)
            timegrid.parse_hh_mm(data.closes)
        except ValueError as error:
            raise ValidationFailed(str(error)) from None
        if data.opens == data.closes:
            raise ValidationFailed("'closes' must differ from 'opens'")
        hold_seconds = data.hold_seconds or self._settings.hold_seconds
        max_hold = data.max_hold_seconds or max(self._settings.max_hold_seconds, hold_seconds)
        _check_hold_bounds(hold_seconds, max_hold)
        now = await redis_now_ms(self._redis)
        fields = {
            "kind": "restaurant",
            "name": data.name,
            "phone": self.phone(data.phone),
            "timezone": data.timezone,
            "opens": data.opens,
            "closes": data.closes,
            "slot_minutes": str(data.slot_minutes),
            "hold_seconds": str(hold_seconds),
            "max_hold_seconds": str(max_hold),
            "max_holds_per_user": str(data.max_holds_per_user or self._settings.max_holds_per_user),
            "min_notice_minutes": str(data.min_notice_minutes),
            "max_days_ahead": str(data.max_days_ahead),
            "bookings_open": "1",
            "created": str(now),
        }
        venue_id = await self.insert_venue(fields)
        return await self.restaurant(venue_id)

    async def insert_venue(
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

    async def restaurant(self, venue_id: str) -> Restaurant:
        """One restaurant."""
        return restaurant_view(await self.load(venue_id, "restaurant"))

    async def restaurants(self) -> list[Restaurant]:
        """Every restaurant, oldest first."""
        ids: list[str] = await self._redis.zrange(self._keys.venues("restaurant"), 0, -1)
        pipe = self._redis.pipeline(transaction=False)
        for venue_id in ids:
            pipe.hgetall(self._keys.of(venue_id).venue)
        rows: list[dict[str, str]] = await pipe.execute()
        return [
            restaurant_view(Venue(vid, "restaurant", row, timegrid.venue_zone(row)))
            for vid, row in zip(ids, rows, strict=True)
            if row.get("kind") == "restaurant"
        ]

    async def update_restaurant(self, venue_id: str, patch: RestaurantPatch) -> Restaurant:
        """Change a restaurant's name, phone or booking rules."""
        changes: dict[str, str] = {}
        for field in RestaurantPatch.__struct_fields__:
            value = getattr(patch, field)
            if value is OMIT:
                continue
            if field == "bookings_open":
                changes[field] = "1" if value else "0"
            elif field == "phone":
                changes[field] = self.phone(value)
            else:
                changes[field] = str(value)
        keys = self._keys.of(venue_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    # WATCH: the hold bounds are checked against the values we overwrite.
                    await pipe.watch(keys.venue)
                    current = await self.load(venue_id, "restaurant")
                    merged = {**current.fields, **changes}
                    _check_hold_bounds(int(merged["hold_seconds"]), int(merged["max_hold_seconds"]))
                    pipe.multi()
                    if changes:
                        pipe.hset(keys.venue, mapping=changes)
                    await pipe.execute()
                    break
                except WatchError:
                    continue
        return await self.restaurant(venue_id)

    # -- tables -------------------------------------------------------------------------

    async def add_tables(self, venue_id: str, tables: list[TableInput]) -> list[Table]:
        """Add tables; ids are ``T<n>`` in creation order."""
        keys = self._keys.of(venue_id)
        await self.load(venue_id, "restaurant")
        last = int(await self._redis.hincrby(keys.venue, "next_unit", len(tables)))
        first = last - len(tables) + 1
        created = [
            Table(id=f"T{first + i}", label=table.label, capacity=table.capacity)
            for i, table in enumerate(tables)
        ]
        pipe = self._redis.pipeline(transaction=True)
        for seq, table in enumerate(created, start=first):
            # Units are written in one transaction: a hold never sees half a table.
            pipe.hset(keys.units, table.id, table.capacity)
            if table.label is not None:
                pipe.hset(keys.unit_labels, table.id, table.label)
            pipe.zadd(keys.units_by_fit, {table.id: table.capacity * FIT_SCALE + seq})
        await pipe.execute()
        return created

    async def tables(self, venue_id: str) -> list[Table]:
        """A restaurant's tables, in creation order."""
        await self.load(venue_id, "restaurant")
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
        """Lay out the slot grid from ``first`` to ``last``; idempotent. (created, total)."""
        venue = await self.load(venue_id, "restaurant")
        first, last = date_range(first_text, last_text)
        grid = timegrid.grid(
            venue.tz,
            first,
            last,
            timegrid.parse_hh_mm(venue.fields["opens"]),
            timegrid.parse_hh_mm(venue.fields["closes"]),
            venue.slot_minutes,
        )
        keys = self._keys.of(venue_id)
        pipe = self._redis.pipeline(transaction=True)
        if grid:
            # NX: asking again for the same days creates nothing twice.
            pipe.zadd(keys.slots, dict(grid), nx=True)
        pipe.zcard(keys.slots)
        results = await pipe.execute()
        created = int(results[0]) if grid else 0
        return created, int(results[-1])

    async def _grid(
        self, venue_id: str, first_text: str, last_text: str
    ) -> tuple[Venue, VenueKeys, list[tuple[str, int]], int]:
        venue = await self.load(venue_id, "restaurant")
        first, last = date_range(first_text, last_text)
        start_ms, end_ms = timegrid.local_day_bounds_ms(first, last, venue.tz)
        keys = self._keys.of(venue_id)
        grid: list[tuple[str, float]] = await self._redis.zrangebyscore(
            keys.slots, start_ms, f"({end_ms}", withscores=True
        )
        now = await redis_now_ms(self._redis)
        return venue, keys, [(slot, int(start)) for slot, start in grid], now

    async def availability(
        self, venue_id: str, first_text: str, last_text: str, party_size: int
    ) -> list[AvailableSlot]:
        """Bookable slots (not started, inside the window) with the free tables that fit."""
        venue, keys, grid, now = await self._grid(venue_id, first_text, last_text)
        grid = [(slot, start) for slot, start in grid if _bookable(venue, start, now)]
        found: list[AvailableSlot] = []
        for slot, start, tables in await self._states(venue, keys, grid, now):
            free = [
                Table(id=t.id, label=t.label, capacity=t.capacity)
                for t in sorted(tables, key=lambda t: t.capacity)
                if t.capacity >= party_size and t.status == "available"
            ]
            if free:
                found.append(AvailableSlot(slot=slot, tables=free, **_span(venue, start)))
        return found

    async def slot_views(self, venue_id: str, first_text: str, last_text: str) -> list[SlotView]:
        """Every slot of a date range with each table's status."""
        venue, keys, grid, now = await self._grid(venue_id, first_text, last_text)
        return [
            SlotView(slot=slot, tables=tables, **_span(venue, start))
            for slot, start, tables in await self._states(venue, keys, grid, now)
        ]

    async def slot_view(self, venue_id: str, slot: str) -> SlotView:
        """One slot with each table's status."""
        venue = await self.load(venue_id, "restaurant")
        check_slot_id(slot)
        keys = self._keys.of(venue_id)
        start = await self._redis.zscore(keys.slots, slot)
        if start is None:
            raise NotFound("No such slot in this venue's grid")
        now = await redis_now_ms(self._redis)
        [(_, _, tables)] = await self._states(venue, keys, [(slot, int(start))], now)
        return SlotView(slot=slot, tables=tables, **_span(venue, int(start)))

    async def _states(
        self, venue: Venue, keys: VenueKeys, grid: list[tuple[str, int]], now: int
    ) -> list[tuple[str, int, list[TableStatus]]]:
        tables = await self._tables(keys)
        pipe = self._redis.pipeline(transaction=False)
        for slot, _ in grid:
            pipe.hgetall(keys.cells(slot))
        cell_maps: list[dict[str, str]] = await pipe.execute() if grid else []
        return [
            (
                slot,
                start,
                [_table_status(t, read_cell(cells.get(t.id), now), venue.tz) for t in tables],
            )
            for (slot, start), cells in zip(grid, cell_maps, strict=True)
        ]


def _span(venue: Venue, start_ms: int) -> dict[str, str]:
    return {
        "starts_at": timegrid.rfc3339(start_ms, venue.tz),
        "ends_at": timegrid.rfc3339(start_ms + venue.slot_minutes * 60_000, venue.tz),
    }


def check_slot_id(slot: str) -> None:
    """A slot id must be ``YYYY-MM-DDTHH:MM`` and a real date and time (else 400)."""
    try:
        timegrid.parse_slot_id(slot)
    except ValueError as error:
        raise ValidationFailed(str(error)) from None


def _bookable(venue: Venue, start_ms: int, now_ms: int) -> bool:
    """Not started, and inside the booking window (what hold.lua checks too)."""
    if start_ms <= now_ms:
        return False
    if start_ms < now_ms + venue.number("min_notice_minutes") * 60_000:
        return False
    return start_ms <= now_ms + venue.number("max_days_ahead", 90) * 86_400_000


def _table_status(table: Table, state: CellState, tz: tzinfo) -> TableStatus:
    free_at = timegrid.rfc3339(state.free_at_ms, tz) if state.free_at_ms is not None else None
    return TableStatus(
        id=table.id,
        label=table.label,
        capacity=table.capacity,
        status=state.status,
        free_at=free_at,
    )


def _check_hold_bounds(hold_seconds: int, max_hold_seconds: int) -> None:
    if max_hold_seconds < hold_seconds:
        raise ValidationFailed("max_hold_seconds must be at least hold_seconds")


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
        created_at=timegrid.rfc3339(venue.number("created"), venue.tz),
    )
