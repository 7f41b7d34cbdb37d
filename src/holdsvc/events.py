"""Events: the venue face with one slot and seats ``S1``..``SN`` (no HTTP here)."""

from __future__ import annotations

from typing import Any

from holdsvc import slots as timegrid
from holdsvc.clock import redis_now_ms
from holdsvc.errors import ValidationFailed
from holdsvc.keys import Keys, VenueKeys
from holdsvc.models import Event, EventInput, EventPatch, SeatStatus
from holdsvc.paging import Page, PageRequest, numbered_window, scan_page
from holdsvc.scripts import AnyRedis, Scripts
from holdsvc.venues import FIT_SCALE, Venue, VenueKind, Venues, instant_ms, read_cell

KIND = VenueKind.EVENT

SEAT_STATUSES = ("available", "held", "reserved")


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
        fields = {
            "kind": KIND,
            "name": data.name,
            "starts": str(start_ms),
            "slot": slot,
            "total_seats": str(data.total_seats),
            **rules,
            "bookings_open": "1",
            "next_unit": str(data.total_seats),
            "max_waitlist": str(data.max_waitlist),
            "offer_seconds": str(data.offer_seconds),
            "created": str(await redis_now_ms(self._redis)),
        }
        if zone is not None:
            fields["timezone"] = str(data.timezone)
        else:
            fields["utc_offset_minutes"] = str(int(offset.total_seconds() // 60) if offset else 0)
        seats = seat_ids(data.total_seats)

        def add_seats(pipe: Any, keys: VenueKeys) -> None:
            pipe.zadd(keys.slots, {slot: start_ms})
            pipe.hset(keys.units, mapping=dict.fromkeys(seats, 1))
            pipe.zadd(keys.units_by_fit, {seat: FIT_SCALE + n for n, seat in enumerate(seats, 1)})

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

        window = numbered_window(venue.number("total_seats"), lambda n: f"S{n}")
        return await scan_page(window, load, request)

    async def _view(self, venue: Venue) -> Event:
        free, _ = await self._scripts.available(self._keys.of(venue.id), slot=venue.fields["slot"])
        return Event(
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
            max_waitlist=venue.number("max_waitlist", 100),
            offer_seconds=venue.number("offer_seconds", 900),
        )
