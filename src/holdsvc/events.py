"""Events: the venue face with one slot and seats ``S1``..``SN`` or a seat map (no HTTP here)."""

from __future__ import annotations

from typing import Any

from holdsvc import slots as timegrid
from holdsvc.clock import redis_now_ms
from holdsvc.errors import NotFound, ValidationFailed
from holdsvc.keys import Keys, VenueKeys
from holdsvc.models import Event, EventInput, EventPatch, RowView, SeatStatus, SectionView
from holdsvc.paging import Page, PageRequest, numbered_window, scan_page
from holdsvc.scripts import AnyRedis, Scripts
from holdsvc.seatmap import (
    SeatMap,
    Section,
    all_units,
    counts_from_index,
    index_fields,
    seat_map,
    seat_parts,
)
from holdsvc.venues import (
    FIT_SCALE,
    Venue,
    VenueKind,
    Venues,
    details_view,
    instant_ms,
    read_cell,
    stored_details,
)

KIND = VenueKind.EVENT

SEAT_STATUSES = ("available", "held", "reserved")
MAP_CACHE = 256


def seat_ids(total: int) -> list[str]:
    """``S1``..``SN``."""
    return [f"S{n}" for n in range(1, total + 1)]


class Events:
    """Create, read and change events; list their seats."""

    def __init__(self, redis: AnyRedis, keys: Keys, scripts: Scripts, venues: Venues) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._venues = venues
        # Maps never change once stored: read each once per process (a few, bounded).
        self._maps: dict[str, SeatMap] = {}

    async def seat_map(self, event_id: str) -> SeatMap | None:
        """The event's seat map, or None for a ``total_seats`` event."""
        if event_id in self._maps:
            return self._maps[event_id]
        text = await self._redis.hget(self._keys.of(event_id).seat_index, "map")
        if text is None:
            return None
        found = SeatMap.from_json(text if isinstance(text, str) else text.decode())
        if len(self._maps) >= MAP_CACHE:
            self._maps.pop(next(iter(self._maps)))
        self._maps[event_id] = found
        return found

    async def create(self, data: EventInput) -> Event:
        """Create an event and all its seats in one MULTI (two commands, whatever N)."""
        try:
            starts = timegrid.parse_rfc3339(data.starts_at)
            zone = timegrid.zone(data.timezone) if data.timezone else None
        except ValueError as error:
            raise ValidationFailed(str(error)) from None
        # Checked before anything is stored: an instant no zone can show would break every
        # later read of the event (the public list included).
        start_ms = instant_ms(starts)
        local = starts.astimezone(zone) if zone else starts
        offset = local.utcoffset()
        rules = self._venues.hold_rules(
            data.hold_seconds, data.max_hold_seconds, data.max_holds_per_user
        )
        slot = timegrid.format_slot_id(local.replace(tzinfo=None))
        if (data.total_seats is None) == (data.sections is None):
            raise ValidationFailed("Give either 'total_seats' or 'sections', not both")
        plan = seat_map(data.sections) if data.sections is not None else None
        total = plan.capacity if plan is not None else int(data.total_seats or 0)
        fields = {
            "kind": KIND,
            "name": data.name,
            "starts": str(start_ms),
            "slot": slot,
            "total_seats": str(total),
            **rules,
            "bookings_open": "1",
            "next_unit": str(total),
            **stored_details(data.address, data.description, data.locale, data.reminder_hours),
            "max_waitlist": str(data.max_waitlist),
            "offer_seconds": str(data.offer_seconds),
            "created": str(await redis_now_ms(self._redis)),
        }
        if zone is not None:
            fields["timezone"] = str(data.timezone)
        else:
            fields["utc_offset_minutes"] = str(int(offset.total_seconds() // 60) if offset else 0)
        if plan is not None:
            fields["seatmap"] = "1"
        seats = seat_ids(total) if plan is None else all_units(plan)

        def add_seats(pipe: Any, keys: VenueKeys) -> None:
            pipe.zadd(keys.slots, {slot: start_ms})
            pipe.hset(keys.units, mapping=dict.fromkeys(seats, 1))
            if plan is None:
                pipe.zadd(
                    keys.units_by_fit, {seat: FIT_SCALE + n for n, seat in enumerate(seats, 1)}
                )
            else:
                # A seat map's best available reads its free-run index, never a fit scan.
                pipe.hset(keys.seat_index, mapping=index_fields(plan))

        event_id = await self._venues.insert(fields, add_seats)
        return await self.get(event_id)

    async def get(self, event_id: str) -> Event:
        """One event, with its exact number of free seats."""
        return await self._view(await self._venues.load(event_id, KIND))

    async def list_all(self) -> list[Event]:
        """Every event, oldest first."""
        return [await self._view(venue) for venue in await self._venues.all_of(KIND)]

    async def page(self, request: PageRequest) -> Page[Event]:
        """One page of the events, oldest first, with their free seats."""
        venues = await self._venues.page_of(KIND, request)
        return Page([await self._view(v) for v in venues.items], venues.next_cursor)

    async def update(self, event_id: str, patch: EventPatch) -> Event:
        """Pause or resume bookings, rename, or change the hold rules."""
        await self._venues.update(event_id, KIND, patch)
        return await self.get(event_id)

    async def seats(self, event_id: str, status: str | None) -> list[SeatStatus]:
        """Every seat with its state (one HGETALL, not a key per seat), optionally filtered."""
        venue = await self._venues.load(event_id, KIND)
        return (
            await self.seat_page(event_id, status, PageRequest(venue.number("total_seats")))
        ).items

    async def seat_page(
        self, event_id: str, status: str | None, request: PageRequest
    ) -> Page[SeatStatus]:
        """One page of the seats in seat order, with their states, optionally filtered."""
        if status is not None and status not in SEAT_STATUSES:
            raise ValidationFailed(f"status must be one of {', '.join(SEAT_STATUSES)}")
        venue = await self._venues.load(event_id, KIND)
        cells_key = self._keys.of(event_id).cells(venue.fields["slot"])
        now = await redis_now_ms(self._redis)

        async def load(entries: list[tuple[str, int]]) -> list[SeatStatus | None]:
            # Only the seats of this window (HMGET), not the whole event.
            states = (
                await self._redis.hmget(cells_key, [seat for seat, _ in entries]) if entries else []
            )
            found: list[SeatStatus | None] = []
            for (seat, _), raw in zip(entries, states, strict=True):
                state = read_cell(raw, now)
                free_at = venue.time(state.free_at_ms) if state.free_at_ms is not None else None
                keep = status is None or state.status == status
                found.append(
                    SeatStatus(id=seat, status=state.status, free_at=free_at) if keep else None
                )
            return found

        plan = await self.seat_map(event_id)
        if plan is None:
            window = numbered_window(venue.number("total_seats"), lambda n: f"S{n}")
            return await scan_page(window, load, request)
        ids = plan.seat_ids()
        page = await scan_page(numbered_window(len(ids), lambda n: ids[n - 1]), load, request)
        for seat in page.items:
            parts = seat_parts(seat.id)
            if parts is not None:
                seat.section, seat.row, seat.number = parts
        return page

    async def sections(self, event_id: str, *, with_rows: bool = True) -> list[SectionView]:
        """The sections of a seat-map event in map order, with their free places now
        (and each seated row's). NotFound for an event without a map."""
        venue = await self._venues.load(event_id, KIND)
        plan = await self.seat_map(event_id)
        if plan is None:
            raise NotFound("This event has no seat map")
        return await self._sections(venue, plan, with_rows=with_rows)

    async def map_data(self, event_id: str) -> dict[str, Any]:
        """The whole map in a compact form for the page to draw: per section its places and,
        per seated row, one character per seat ('.' free, 'h' held, 'r' reserved). One
        HGETALL of the taken cells; about a byte a seat."""
        venue = await self._venues.load(event_id, KIND)
        plan = await self.seat_map(event_id)
        if plan is None:
            raise NotFound("This event has no seat map")
        cells_key = self._keys.of(event_id).cells(venue.fields["slot"])
        cells: dict[str, str] = await self._redis.hgetall(cells_key)
        now = await redis_now_ms(self._redis)
        marks = {"held": "h", "reserved": "r"}
        taken: dict[str, str] = {}
        for unit, raw in cells.items():
            status = read_cell(raw, now).status
            if status in marks:
                taken[unit] = marks[status]
        return {"id": event_id, "sections": [map_entry(s, taken) for s in plan.sections]}

    async def _sections(self, venue: Venue, plan: SeatMap, *, with_rows: bool) -> list[SectionView]:
        fields = [f"A:{s.id}" for s in plan.sections]
        if with_rows:
            fields += [f"R:{k}" for s in plan.sections if s.kind == "seated" for k in s.row_keys()]
        values, lapsed = await self._scripts.seat_counts(
            self._keys.of(venue.id), slot=venue.fields["slot"], fields=fields
        )
        counts = counts_from_index(plan, values, lapsed, with_rows)
        views = []
        for section in plan.sections:
            free, rows = counts[section.id]
            view = SectionView(
                id=section.id,
                name=section.name,
                kind="seated" if section.kind == "seated" else "ga",
                capacity=section.capacity,
                available=free,
            )
            if with_rows and section.kind == "seated":
                view.rows = [RowView(id=row, available=n) for row, n in rows]
            views.append(view)
        return views

    async def _view(self, venue: Venue) -> Event:
        free, _ = await self._scripts.available(self._keys.of(venue.id), slot=venue.fields["slot"])
        event = Event(
            id=venue.id,
            name=venue.fields["name"],
            starts_at=venue.time(venue.number("starts")),
            slot=venue.fields["slot"],
            timezone=venue.fields.get("timezone"),
            total_seats=venue.number("total_seats"),
            available_seats=free,
            hold_seconds=venue.number("hold_seconds"),
            max_hold_seconds=venue.number("max_hold_seconds"),
            max_holds_per_user=venue.number("max_holds_per_user"),
            bookings_open=venue.fields.get("bookings_open") == "1",
            created_at=venue.time(venue.number("created")),
            **details_view(venue),
            max_waitlist=venue.number("max_waitlist", 100),
            offer_seconds=venue.number("offer_seconds", 900),
        )
        if venue.fields.get("seatmap") == "1":
            plan = await self.seat_map(venue.id)
            if plan is not None:
                event.sections = await self._sections(venue, plan, with_rows=False)
        return event


def map_entry(section: Section, taken: dict[str, str]) -> dict[str, Any]:
    """One section for the page: its places, and each seated row's seat states."""
    entry: dict[str, Any] = {
        "id": section.id,
        "name": section.name,
        "kind": section.kind,
        "capacity": section.capacity,
    }
    if section.kind == "seated":
        rows = [
            [row, "".join(taken.get(f"{section.id}-{row}-{n}", ".") for n in range(1, seats + 1))]
            for row, seats in section.rows
        ]
        entry["rows"] = rows
        entry["available"] = sum(states.count(".") for _, states in rows)
    else:
        prefix = f"{section.id}~"
        entry["available"] = section.capacity - sum(1 for u in taken if u.startswith(prefix))
    return entry
