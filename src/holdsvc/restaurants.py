"""Restaurants: the venue face with tables and a slot grid (no HTTP here)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

import msgspec
from redis.exceptions import WatchError

from holdsvc import slots as timegrid
from holdsvc.booking_rules import BookingRules, span_slot_ids
from holdsvc.clock import redis_now_ms
from holdsvc.errors import NotFound, Stale, ValidationFailed
from holdsvc.grid import Grid, read_closure, read_schedule, stored_schedule
from holdsvc.keys import Keys, VenueKeys
from holdsvc.models import (
    OMIT,
    AvailableSlot,
    Combination,
    CombinationInput,
    DurationRule,
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
from holdsvc.scripts import AnyRedis, Scripts
from holdsvc.venues import (
    FIT_SCALE,
    CellState,
    Venue,
    VenueKind,
    Venues,
    check_slot_id,
    date_range,
    details_view,
    read_cell,
    stored_details,
)

KIND = VenueKind.RESTAURANT
# next_available reads the grid forward this many slots at a time, and at most this many in
# all: a venue booked solid for months answers null rather than scanning without end.
NEXT_AVAILABLE_BATCH = 200
NEXT_AVAILABLE_SLOTS = 4000
# How long an add-tables Idempotency-Key is remembered: long enough for any retry of a form.
TABLE_REQUEST_SECONDS = 86_400
T = TypeVar("T")


class Restaurants:
    """Create and read restaurants, their tables and slot grids; answer availability."""

    def __init__(
        self, redis: AnyRedis, keys: Keys, venues: Venues, grid: Grid, scripts: Scripts
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._venues = venues
        self._grid = grid
        self._scripts = scripts

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
            **stored_details(data.address, data.description, data.locale, data.reminder_hours),
            "max_waitlist": str(data.max_waitlist),
            "offer_seconds": str(data.offer_seconds),
            "created": str(await redis_now_ms(self._redis)),
        }
        if data.schedule is not None:
            fields["schedule"] = stored_schedule(data.schedule)
        if data.durations is not None:
            fields["durations"] = stored_durations(data.durations, data.slot_minutes)
        fields["max_covers_per_slot"] = str(data.max_covers_per_slot)
        fields["one_booking_per_guest"] = "1" if data.one_booking_per_guest else "0"
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
        writes: list[Callable[[Any, VenueKeys], None]] = []
        if patch.schedule is not OMIT:
            writes.append(_schedule_writes(patch.schedule))
        if patch.durations is not OMIT:
            venue = await self._venues.load(venue_id, KIND)
            stored = (
                None
                if patch.durations is None
                else stored_durations(patch.durations, venue.slot_minutes)
            )
            writes.append(_durations_write(stored))
        rules_change = (
            patch.durations is not OMIT
            or patch.max_covers_per_slot is not OMIT
            or patch.one_booking_per_guest is not OMIT
        )
        if rules_change:
            # A new rules version: every claim built from the old rules is refused (STALE)
            # and made again from the new ones, on every worker.
            writes.append(lambda pipe, keys: pipe.hincrby(keys.venue, "rules_version", 1))
        plain = msgspec.structs.replace(patch, schedule=OMIT, durations=OMIT)

        def also(pipe: Any, keys: VenueKeys) -> None:
            for write in writes:
                write(pipe, keys)

        await self._venues.update(venue_id, KIND, plain, also=also if writes else None)
        if rules_change:
            self._venues.forget_rules(venue_id)
        if (patch.max_covers_per_slot is not OMIT and patch.max_covers_per_slot > 0) or (
            patch.one_booking_per_guest is True
        ):
            await self._index_bookings(venue_id)
        if rules_change:
            # Rules relaxed (shorter durations, a higher cap) may let waiting parties in.
            await self._scripts.offer_waiting(self._keys.of(venue_id))
        return await self.get(venue_id)

    async def _index_bookings(self, venue_id: str) -> None:
        """A pacing or guest rule switched on: put the live holds and the reservations not
        yet ended into its indexes (each checked again by index_booking.lua), so they count
        from now on like bookings made under the rule. Claims made since the rule changed
        index themselves."""
        keys = self._keys.of(venue_id)
        now = await redis_now_ms(self._redis)
        holds = await self._redis.zrangebyscore(keys.holds, now, "+inf")
        # A booking lasts at most a day of slots: older starts have ended.
        refs = await self._redis.zrangebyscore(keys.reservations_by_start, now - 86_400_000, "+inf")
        for kind, ids in (("h", holds), ("r", refs)):
            for record_id in ids:
                await self._index_one(keys, kind, record_id)

    async def _index_one(self, keys: VenueKeys, kind: str, record_id: str) -> None:
        record = keys.hold(record_id) if kind == "h" else keys.reservation(record_id)
        while True:
            values = await self._redis.hmget(record, ["slot", "user", "phone"])
            fields = dict(zip(("slot", "user", "phone"), values, strict=True))
            if fields["slot"] is None:
                return
            try:
                await self._scripts.index_booking(
                    keys,
                    kind=kind,
                    record_id=record_id,
                    fields={k: v for k, v in fields.items() if v is not None},
                )
                return
            except Stale:
                continue  # it moved since the read: read it again

    # -- combinations -------------------------------------------------------------------

    async def add_combination(self, venue_id: str, data: CombinationInput) -> Combination:
        """Tables pushed together: ids ``C<n>`` in creation order; each table must be one of
        the venue's (else 404), named once (else 400)."""
        if len(set(data.tables)) != len(data.tables):
            raise ValidationFailed("A combination names each table once")
        keys = self._keys.of(venue_id)
        await self._venues.load(venue_id, KIND)
        limit = self._venues.settings.max_tables_per_venue
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    # WATCH: the tables checked and the sequence taken are those we extend.
                    await pipe.watch(keys.venue, keys.units, keys.combinations)
                    known = await self._redis.hmget(keys.units, data.tables)
                    missing = [t for t, c in zip(data.tables, known, strict=True) if c is None]
                    if missing:
                        raise NotFound(f"No such table: {missing[0]}")
                    if int(await self._redis.hlen(keys.combinations)) >= limit:
                        raise ValidationFailed(f"A restaurant has at most {limit} combinations")
                    seq = int(await self._redis.hget(keys.venue, "next_combination") or 0) + 1
                    combo = Combination(id=f"C{seq}", tables=data.tables, capacity=data.capacity)
                    pipe.multi()
                    pipe.hset(keys.venue, "next_combination", seq)
                    pipe.hset(
                        keys.combinations,
                        combo.id,
                        msgspec.json.encode(
                            {"tables": combo.tables, "capacity": combo.capacity, "seq": seq}
                        ).decode(),
                    )
                    pipe.zadd(
                        keys.combinations_by_fit, {combo.id: combo.capacity * FIT_SCALE + seq}
                    )
                    # Hold scripts read the combinations only when the venue says it has some.
                    pipe.hincrby(keys.venue, "combinations", 1)
                    pipe.hincrby(keys.venue, "rules_version", 1)
                    await pipe.execute()
                    self._venues.forget_rules(venue_id)
                    # A combination may seat a party on the waitlist: offered now.
                    await self._scripts.offer_waiting(keys)
                    return combo
                except WatchError:
                    continue

    async def combinations(self, venue_id: str) -> list[Combination]:
        """A restaurant's combinations, in creation order."""
        await self._venues.load(venue_id, KIND)
        stored = await self._redis.hgetall(self._keys.of(venue_id).combinations)
        return combinations_of(stored)

    async def remove_combination(self, venue_id: str, combo_id: str) -> None:
        """Remove a combination (bookings that hold its tables keep them); 404 when unknown."""
        keys = self._keys.of(venue_id)
        await self._venues.load(venue_id, KIND)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(keys.combinations)
                    if not await self._redis.hexists(keys.combinations, combo_id):
                        raise NotFound("No such combination")
                    pipe.multi()
                    pipe.hdel(keys.combinations, combo_id)
                    pipe.zrem(keys.combinations_by_fit, combo_id)
                    pipe.hincrby(keys.venue, "combinations", -1)
                    pipe.hincrby(keys.venue, "rules_version", 1)
                    await pipe.execute()
                    self._venues.forget_rules(venue_id)
                    return
                except WatchError:
                    continue

    # -- tables -------------------------------------------------------------------------

    async def add_tables(self, venue_id: str, tables: list[TableInput]) -> list[Table]:
        """Add tables; ids are ``T<n>`` in creation order; ValidationFailed (nothing added)
        beyond the venue's table limit."""
        created, _ = await self.add_tables_once(venue_id, tables, None)
        return created

    async def add_tables_once(
        self, venue_id: str, tables: list[TableInput], idempotency_key: str | None
    ) -> tuple[list[Table], bool]:
        """``add_tables``; with ``idempotency_key`` the same key and body
        answer the tables the first request made (replayed: True) instead of adding more:
        a form sent twice adds its tables once."""
        keys = self._keys.of(venue_id)
        await self._venues.load(venue_id, KIND)
        limit = self._venues.settings.max_tables_per_venue
        request_key = keys.table_request(idempotency_key) if idempotency_key else None
        fingerprint = hashlib.sha256(msgspec.json.encode(tables)).hexdigest()
        watched = [keys.venue, keys.units, *([request_key] if request_key else [])]
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    # WATCH: the count checked and the ids taken are those the write extends;
                    # the request key: a twin request that committed first is answered here.
                    await pipe.watch(*watched)
                    if request_key is not None:
                        earlier = await self._redis.get(request_key)
                        if earlier is not None:
                            await pipe.reset()
                            return _replayed_tables(earlier, fingerprint), True
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
                    if request_key is not None:
                        answer = msgspec.json.encode(created).decode()
                        pipe.set(request_key, f"{fingerprint}|{answer}", ex=TABLE_REQUEST_SECONDS)
                    await pipe.execute()
                    # New tables may seat parties on the waitlist: offered now (invariant 9).
                    await self._scripts.offer_waiting(keys)
                    return created, False
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
        return tables_of(fit, labels)

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
        rules = await self._venues.rules(venue_id)
        if rules.rich:
            return await self._rich_availability(
                venue_id, first_text, last_text, party_size, rules, request
            )
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

    async def next_available(self, venue_id: str, last_text: str, party_size: int) -> str | None:
        """The first date after ``last_text`` (while its slots may still be booked: within
        ``max_days_ahead``) with a slot that fits the party, else None.

        Bounded work: the grid is read forward in batches of NEXT_AVAILABLE_BATCH slots, at
        most NEXT_AVAILABLE_SLOTS slots in all, stopping at the first bookable one.
        """
        venue = await self._venues.load(venue_id, KIND)
        _, last = date_range(last_text, last_text)
        keys = self._keys.of(venue_id)
        fitting = [t.id for t in await self._tables(keys) if t.capacity >= party_size]
        if not fitting:
            return None
        now = await redis_now_ms(self._redis)
        _, low = timegrid.local_day_bounds_ms(last, last, venue.tz)
        high = now + venue.number("max_days_ahead", 90) * 86_400_000
        after: Position | None = None
        for _ in range(NEXT_AVAILABLE_SLOTS // NEXT_AVAILABLE_BATCH):
            grid = await zset_window(
                self._redis, keys.slots, count=NEXT_AVAILABLE_BATCH, after=after, low=low, high=high
            )
            if not grid:
                return None
            closed = await self._grid.closed_dates(
                venue_id,
                timegrid.parse_date(grid[0][0][:10]),
                timegrid.parse_date(grid[-1][0][:10]),
            )
            # Only the fitting tables' cells, read raw: no per-table objects for full slots.
            pipe = self._redis.pipeline(transaction=False)
            for slot, _ in grid:
                pipe.hmget(keys.cells(slot), fitting)
            rows: list[list[str | None]] = await pipe.execute()
            for (slot, start), states in zip(grid, rows, strict=True):
                free = any(read_cell(state, now).status == "available" for state in states)
                if free and slot[:10] not in closed and _bookable(venue, start, now):
                    return slot[:10]
            after = (grid[-1][1], grid[-1][0])
        return None

    async def last_grid_day(self, venue_id: str) -> str | None:
        """The date of the grid's last slot (None: no slot yet)."""
        last: list[str] = await self._redis.zrange(self._keys.of(venue_id).slots, -1, -1)
        return last[0][:10] if last else None

    async def max_party_size(self, venue_id: str) -> int:
        """The largest party one table or combination of the venue seats (0 without tables)."""
        keys = self._keys.of(venue_id)
        tables = await self._tables(keys)
        combos = combinations_of(await self._redis.hgetall(keys.combinations))
        capacities = [t.capacity for t in tables] + [c.capacity for c in combos]
        return max(capacities, default=0)

    async def _rich_availability(
        self,
        venue_id: str,
        first_text: str,
        last_text: str,
        party_size: int,
        rules: BookingRules,
        request: PageRequest | None,
    ) -> Page[AvailableSlot]:
        """Availability under durations, combinations and pacing: a slot is listed when a
        table (or combination) that fits is free in every slot of the party's duration and
        the party fits under the covers cap. One round trip for the venue, then two per
        window of slots (the window, then its cells), and Redis TIME."""
        settings = self._venues.settings
        first, last = date_range(first_text, last_text, max_days=settings.max_query_days)
        keys = self._keys.of(venue_id)
        # One round trip: the venue, its tables, its closures (TIME has no key: a cluster
        # pipeline could not route it, so Redis's clock is one more).
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(keys.venue)
        pipe.zrange(keys.units_by_fit, 0, -1, withscores=True)
        pipe.hgetall(keys.unit_labels)
        pipe.hgetall(keys.closures)
        fields, fit, labels, closures = await pipe.execute()
        if fields.get("kind") != KIND:
            raise NotFound(f"No such {KIND}")
        venue = Venue(venue_id, KIND, fields, timegrid.venue_zone(fields))
        now = await redis_now_ms(self._redis)
        # Slots kept on a closed date (for the bookings they have) take no new guests.
        closed = closed_dates_of(closures, first, last)
        start_ms, end_ms = timegrid.local_day_bounds_ms(first, last, venue.tz)
        tables = tables_of(fit, labels)
        fitting = sorted((t for t in tables if t.capacity >= party_size), key=lambda t: t.capacity)
        most = max(1, settings.max_cells_per_page // max(1, len(tables)))
        request = request or PageRequest(limit=most)
        count = rules.slot_count(party_size, venue.slot_minutes)
        step = venue.slot_minutes * 60_000

        async def window(after: Position | None, size: int) -> list[tuple[str, int]]:
            return await zset_window(
                self._redis, keys.slots, count=size, after=after, low=start_ms, high=end_ms
            )

        async def load(grid: list[tuple[str, int]]) -> list[AvailableSlot | None]:
            if not grid:
                return []
            spans = {
                slot: span_slot_ids(slot, count, venue.slot_minutes, venue.tz) for slot, _ in grid
            }
            busy, starts, covers, stored_combos = await self._span_reads(
                keys, grid, spans, rules.covers_cap > 0, now
            )
            combos = [c for c in combinations_of(stored_combos) if c.capacity >= party_size]
            combos.sort(key=lambda c: c.capacity)
            out: list[AvailableSlot | None] = []
            for slot, start in grid:
                ids = spans[slot]
                whole = len(ids) == count and all(
                    starts.get(s) is not None and int(starts[s] or 0) == start + i * step
                    for i, s in enumerate(ids)
                )
                if (
                    slot[:10] in closed
                    or not whole
                    or not _bookable(venue, start, now)
                    or covers.get(slot, 0) + party_size > rules.covers_cap > 0
                ):
                    out.append(None)
                    continue

                taken = set().union(*(busy[s] for s in ids))

                def free(table_ids: list[str], taken: set[str] = taken) -> bool:
                    return taken.isdisjoint(table_ids)

                listed = [t for t in fitting if free([t.id])]
                listed += [
                    Table(id=c.id, label="+".join(c.tables), capacity=c.capacity)
                    for c in combos
                    if free(c.tables)
                ]
                out.append(
                    AvailableSlot(
                        slot=slot,
                        tables=listed,
                        starts_at=venue.time(start),
                        ends_at=venue.time(start + count * step),
                    )
                    if listed
                    else None
                )
            return out

        return await scan_page(
            window, load, PageRequest(limit=min(request.limit, most), after=request.after)
        )

    async def _span_reads(
        self,
        keys: VenueKeys,
        grid: list[tuple[str, int]],
        spans: dict[str, list[str]],
        with_covers: bool,
        now: int,
    ) -> tuple[dict[str, set[str]], dict[str, Any], dict[str, int], dict[str, str]]:
        """One round trip for a window of slots: the tables taken in every slot its spans
        touch (a lapsed hold is free: invariant 7), those slots' grid starts, the covers
        starting in each slot of the window, the combinations."""
        wanted = sorted({s for ids in spans.values() for s in ids})
        pipe = self._redis.pipeline(transaction=False)
        for slot in wanted:
            pipe.hgetall(keys.cells(slot))
        pipe.zmscore(keys.slots, wanted)
        if with_covers:
            for slot, _ in grid:
                pipe.hgetall(keys.covers(slot))
        pipe.hgetall(keys.combinations)
        replies = await pipe.execute()
        busy = {
            slot: {t for t, state in row.items() if read_cell(state, now).status != "available"}
            for slot, row in zip(wanted, replies[: len(wanted)], strict=True)
        }
        starts = dict(zip(wanted, replies[len(wanted)], strict=True))
        covers_rows = replies[len(wanted) + 1 : -1]
        covers = {
            slot: _live_covers(row, now) for (slot, _), row in zip(grid, covers_rows, strict=False)
        }
        return busy, starts, covers, replies[-1]

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


def _replayed_tables(stored: str, fingerprint: str) -> list[Table]:
    """The tables an earlier request with the same Idempotency-Key added; ValidationFailed
    when that request had another body."""
    earlier, _, answer = stored.partition("|")
    if earlier != fingerprint:
        raise ValidationFailed("This Idempotency-Key was used with a different request body")
    return msgspec.json.decode(answer, type=list[Table])


def tables_of(fit: list[tuple[str, float]], labels: dict[str, str]) -> list[Table]:
    """Tables in creation order, from the best-fit zset (with scores) and the labels."""
    tables = [
        (
            int(score) % FIT_SCALE,
            Table(id=uid, label=labels.get(uid), capacity=int(score) // FIT_SCALE),
        )
        for uid, score in fit
    ]
    return [table for _, table in sorted(tables, key=lambda pair: pair[0])]


def closed_dates_of(closures: dict[str, str], first: date, last: date) -> set[str]:
    """The dates from ``first`` to ``last`` a closure covers, from the closures hash."""
    found: set[str] = set()
    for start_text, stored in closures.items():
        closure = read_closure(start_text, stored)
        start = max(first, date.fromisoformat(closure.first))
        end = min(last, date.fromisoformat(closure.last))
        for offset in range((end - start).days + 1):
            found.add(date.fromordinal(start.toordinal() + offset).isoformat())
    return found


def _live_covers(row: dict[str, str], now: int) -> int:
    """The covers a slot's covers hash counts (lua/include/covers.lua), lapsed holds left out."""
    total = 0
    for value in row.values():
        party, _, expires = value.partition("|")
        if not expires or int(expires) > now:
            total += int(party)
    return total


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


def stored_durations(durations: list[DurationRule], slot_minutes: int) -> str:
    """Durations as the venue hash stores them (JSON pairs); ValidationFailed unless
    ``max_party`` ascends and every ``minutes`` is a multiple of ``slot_minutes``."""
    last = 0
    for rule in durations:
        if rule.max_party <= last:
            raise ValidationFailed("durations must have ascending max_party")
        if rule.minutes % slot_minutes:
            raise ValidationFailed(
                f"durations: {rule.minutes} minutes is not a multiple of slot_minutes "
                f"({slot_minutes})"
            )
        last = rule.max_party
    return msgspec.json.encode([[r.max_party, r.minutes] for r in durations]).decode()


def read_durations(fields: dict[str, str]) -> list[DurationRule] | None:
    """The durations a venue hash stores, as the API shows them (None: not set)."""
    if not fields.get("durations"):
        return None
    pairs = msgspec.json.decode(fields["durations"], type=list[tuple[int, int]])
    return [DurationRule(max_party=p, minutes=m) for p, m in pairs]


def combinations_of(stored: dict[str, str]) -> list[Combination]:
    """Combinations from the combinations hash, in creation order."""
    rows = []
    for combo_id, text in stored.items():
        row = msgspec.json.decode(text)
        rows.append(
            (
                int(row["seq"]),
                Combination(id=combo_id, tables=row["tables"], capacity=row["capacity"]),
            )
        )
    return [combo for _, combo in sorted(rows, key=lambda pair: pair[0])]


def _durations_write(stored: str | None) -> Callable[[Any, VenueKeys], None]:
    """The write of new durations (None: removed), for the MULTI of the update."""

    def write(pipe: Any, keys: VenueKeys) -> None:
        if stored is None:
            pipe.hdel(keys.venue, "durations")
        else:
            pipe.hset(keys.venue, "durations", stored)

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
        **details_view(venue),
        durations=read_durations(f),
        max_covers_per_slot=venue.number("max_covers_per_slot"),
        one_booking_per_guest=f.get("one_booking_per_guest") == "1",
        max_waitlist=venue.number("max_waitlist", 100),
        offer_seconds=venue.number("offer_seconds", 900),
    )
