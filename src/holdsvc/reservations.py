"""Reservations: read, cancel and list (no HTTP here)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from holdsvc import slots as timegrid
from holdsvc.booking_rules import BookingRules, record_slots, span_slot_ids
from holdsvc.errors import (
    Forbidden,
    NotFound,
    NotReplicated,
    ReferenceTaken,
    Stale,
    ValidationFailed,
)
from holdsvc.identifiers import (
    digest,
    is_link_token,
    new_reference,
    new_secret,
    same_secret,
    venue_of_reference,
)
from holdsvc.keys import Keys, VenueKeys
from holdsvc.models import (
    OMIT,
    STAFF_FIELDS,
    GaPlaces,
    Reservation,
    ReservationPatch,
    StaffBookingInput,
)
from holdsvc.paging import (
    Page,
    PageRequest,
    Position,
    next_cursor,
    scan_page,
    within,
    zset_window,
)
from holdsvc.scripts import AnyRedis, Booked, Changed, Scripts
from holdsvc.seatmap import ga_of
from holdsvc.sweeper import Sweeper, after_sweeping
from holdsvc.units import decode_units
from holdsvc.venues import (
    EARLIEST_DATE,
    LATEST_DATE,
    PLAIN_RULES,
    VenueKind,
    VenueProfile,
    Venues,
    check_slot_id,
    date_range,
)

STATUSES = ("confirmed", "seated", "cancelled", "no_show", "completed")
T = TypeVar("T")


class Reservations:
    """Read, cancel and list reservations."""

    def __init__(
        self, redis: AnyRedis, keys: Keys, scripts: Scripts, venues: Venues, sweeper: Sweeper
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._venues = venues
        self._sweeper = sweeper
        # The key of mailed manage links (holdsvc.mail); None: only manage tokens are accepted.
        self.link_secret: str | None = None

    def _token_ok(self, reference: str, token: str | None, stored: dict[str, str]) -> bool:
        """Whether ``token`` is the reservation's manage token, or its mailed link's token."""
        if is_link_token(self.link_secret, reference, token):
            return True
        return same_secret(token, stored.get("digest"))

    def _presented(self, reference: str, token: str | None, stored: dict[str, str]) -> str:
        """The manage digest a script compares: a mailed link's token stands for the
        reservation's own (the scripts know only the digest)."""
        if is_link_token(self.link_secret, reference, token):
            return stored.get("digest", "")
        return digest(token) if token else ""

    async def _record(self, reference: str) -> tuple[VenueProfile, dict[str, str]]:
        venue_id = venue_of_reference(reference)
        if venue_id is None:
            raise NotFound("No such reservation")
        fields: dict[str, str] = await self._redis.hgetall(
            self._keys.of(venue_id).reservation(reference.upper())
        )
        if not fields:
            raise NotFound("No such reservation")
        profile = await self._venues.profile(venue_id)
        return profile, fields

    async def get(
        self,
        reference: str,
        *,
        admin: bool,
        manage_token: str | None = None,
        skip_auth: bool = False,
    ) -> Reservation:
        """A reservation, for the bearer of its manage token or an admin."""
        profile, fields = await self._record(reference)
        if not (admin or skip_auth or self._token_ok(reference, manage_token, fields)):
            raise Forbidden("The Manage-Token does not match this reservation")
        return reservation_view(profile, fields, admin=admin)

    async def cancel(
        self,
        reference: str,
        *,
        admin: bool,
        manage_token: str | None = None,
        actor: str | None = None,
    ) -> Reservation:
        """Cancel; its cells are free at once. Cancelling again changes nothing. ``admin``:
        staff act (``actor`` names who for the feed: ``admin`` unless a staff token's id).

        Who may cancel (its manage token, or an admin) and in which status (a guest only a
        confirmed one) is decided by cancel.lua on what it reads, not on this read.
        """
        cancelled = await self._until_current(
            reference,
            lambda profile, stored: self._scripts.cancel(
                self._keys.of(profile.id),
                reference=stored["reference"],
                slot=stored["slot"],
                manage_digest=self._presented(reference, manage_token, stored),
                actor=feed_actor(admin, actor),
                record=stored,
            ),
        )
        if cancelled.replication.short:
            raise NotReplicated(reference.upper(), cancelled.replication)
        return await self.get(reference, admin=admin, skip_auth=True)

    async def _until_current(
        self,
        reference: str,
        act: Callable[[VenueProfile, dict[str, str]], Awaitable[T]],
    ) -> T:
        """Read the reservation and ``act`` (one script call) on what was read; read and act
        again while the script answers STALE (it changed nothing).

        A script answers STALE only when a key it needs was built from a slot or phone that
        another change of this reservation replaced after our read: each retry follows a
        change that committed, so contention resolves in Redis's order of the scripts. No
        bound and no 503 (which means "Redis is unreachable", never "busy"); every other
        rule is checked by the script on what it reads, so a retry never acts on our read.
        """
        while True:
            profile, stored = await self._record(reference)
            try:
                return await act(profile, stored)
            except Stale:
                # (Or the venue's booking rules changed: read them again too.)
                self._venues.forget_rules(profile.id)
                continue

    async def book(
        self, venue_id: str, data: StaffBookingInput, *, actor: str = "admin"
    ) -> Reservation:
        """A staff booking by ``actor`` (``admin`` or a staff token's id): the cell is claimed
        at once, no hold, no pause/window checks."""
        profile = await self._venues.profile(venue_id, VenueKind.RESTAURANT)
        check_slot_id(data.slot)
        fields = {
            "name": data.name,
            "phone": self._venues.phone(data.phone),
            "email": data.email or "",
            "notes": data.notes or "",
            "business_notes": data.business_notes or "",
            "tags": json.dumps(data.tags or []),
        }
        manage_token = new_secret()
        for _ in range(5):
            reference = new_reference(profile.id)

            async def claim(reference: str = reference) -> Booked:
                # The rules decide the keys; a script that finds them changed answers STALE.
                for _ in range(5):
                    try:
                        return await claim_with_rules(reference)
                    except Stale:
                        self._venues.forget_rules(profile.id)
                raise Stale()  # pragma: no cover - the rules changed five times in a row

            async def claim_with_rules(reference: str) -> Booked:
                rules = await self._venues.rules(profile.id)
                count = rules.slot_count(data.party_size, profile.slot_minutes)
                return await self._scripts.book(
                    self._keys.of(profile.id),
                    venue_id=profile.id,
                    reference=reference,
                    manage_digest=digest(manage_token),
                    slot=data.slot,
                    party_size=data.party_size,
                    units=[data.table_id] if data.table_id else [],
                    count=1,
                    fields=fields,
                    actor=actor,
                    rules=rules,
                    slot_ids=span_slot_ids(data.slot, count, profile.slot_minutes, profile.tz),
                    slot_minutes=profile.slot_minutes,
                )

            try:
                booked = await after_sweeping(self._sweeper, profile.id, claim, slot=data.slot)
                break
            except ReferenceTaken:
                continue
        else:  # pragma: no cover - five collisions in a 887-million space
            raise RuntimeError("could not find a free reference")
        if booked.replication.short:
            raise NotReplicated(booked.reference, booked.replication, manage_token)
        reservation = await self.get(booked.reference, admin=True)
        reservation.manage_token = manage_token
        return reservation

    async def authorize_change(
        self, reference: str, *, admin: bool, manage_token: str | None, fields: set[str]
    ) -> None:
        """Who may change what, checked before the body is validated: staff fields are
        for admins only (a manage token gets 403 for them, whatever their values)."""
        _, stored = await self._record(reference)
        if not (admin or self._token_ok(reference, manage_token, stored)):
            raise Forbidden("The Manage-Token does not match this reservation")
        if not admin and fields & set(STAFF_FIELDS):
            raise Forbidden(f"Only staff may set {', '.join(sorted(fields & set(STAFF_FIELDS)))}")

    async def change(
        self,
        reference: str,
        patch: ReservationPatch,
        *,
        admin: bool,
        manage_token: str | None,
        actor: str | None = None,
    ) -> Reservation:
        """Change contact fields, party size or staff fields, or move it, in one step."""
        given = {name for name in patch.__struct_fields__ if getattr(patch, name) is not OMIT}
        await self.authorize_change(reference, admin=admin, manage_token=manage_token, fields=given)
        target_slot = None if patch.slot is OMIT else str(patch.slot)
        if target_slot is not None:
            check_slot_id(target_slot)
        target_unit = None if patch.table_id is OMIT else str(patch.table_id)
        party_size = None if patch.party_size is OMIT else int(patch.party_size)
        fields = self._stored_fields(patch)

        async def act(profile: VenueProfile, stored: dict[str, str]) -> Changed:
            if profile.kind is VenueKind.EVENT and {"slot", "table_id", "party_size"} & given:
                raise ValidationFailed("An event reservation keeps its seats and party size")
            rules = (
                await self._venues.rules(profile.id)
                if profile.kind is VenueKind.RESTAURANT
                else PLAIN_RULES
            )
            target_ids = _target_slots(
                profile, rules, stored, target_slot, target_unit is not None, party_size
            )
            claim = partial(
                self._scripts.change,
                self._keys.of(profile.id),
                reference=stored["reference"],
                current_slot=stored["slot"],
                current_phone=stored["phone"],
                fields=fields,
                target_slot=target_slot,
                target_unit=target_unit,
                party_size=party_size,
                actor=feed_actor(admin, actor),
                manage_digest=self._presented(reference, manage_token, stored),
                rules=rules,
                record=stored,
                target_ids=target_ids,
                slot_minutes=profile.slot_minutes,
            )
            return await after_sweeping(
                self._sweeper, profile.id, claim, slot=target_slot or stored["slot"]
            )

        await self._until_current(reference, act)
        return await self.get(reference, admin=admin, skip_auth=True)

    def _stored_fields(self, patch: ReservationPatch) -> dict[str, str]:
        """The patch's fields as the reservation hash stores them (all text)."""
        fields: dict[str, str] = {}
        for name in ("name", "email", "notes", "business_notes", "status"):
            value = getattr(patch, name)
            if value is not OMIT:
                fields[name] = value or ""
        if patch.phone is not OMIT:
            fields["phone"] = self._venues.phone(patch.phone)
        if patch.tags is not OMIT:
            fields["tags"] = json.dumps(patch.tags)
        return fields

    async def for_venue(
        self,
        venue_id: str,
        kind: VenueKind,
        *,
        first: str | None = None,
        last: str | None = None,
        phone: str | None = None,
        status: str | None = None,
        tag: str | None = None,
        page: PageRequest | None = None,
    ) -> Page[Reservation]:
        """A venue's reservations (staff view), sorted by start; every filter optional; one
        page of them (all of them without ``page``)."""
        profile = await self._venues.profile(venue_id, kind)
        if status is not None and status not in STATUSES:
            raise ValidationFailed(f"status must be one of {', '.join(STATUSES)}")
        keys = self._keys.of(venue_id)
        low: int | str = "-inf"
        high: int | str = "+inf"
        if first is not None or last is not None:
            first_day, last_day = date_range(
                first or str(EARLIEST_DATE), last or str(LATEST_DATE), max_days=10**7
            )
            low, high = timegrid.local_day_bounds_ms(first_day, last_day, profile.tz)
        page = page or PageRequest(limit=await self._redis.zcard(keys.reservations_by_start) + 1)
        # One client's reservations are a handful: read them all, in order, once.
        mine = None if phone is None else await self._phone_entries(keys, phone, low, high)

        async def window(after: Position | None, count: int) -> list[tuple[str, int]]:
            if mine is not None:
                return [(r, s) for r, s in mine if after is None or (s, r) > after][:count]
            return await zset_window(
                self._redis,
                keys.reservations_by_start,
                count=count,
                after=after,
                low=low,
                high=high,
            )

        async def load(entries: list[tuple[str, int]]) -> list[Reservation | None]:
            rows = await self._rows(venue_id, [ref for ref, _ in entries])
            return [
                reservation_view(profile, row, admin=True)
                if row
                and (status is None or row.get("status") == status)
                and (tag is None or tag in json.loads(row.get("tags") or "[]"))
                else None
                for row in rows
            ]

        return await scan_page(window, load, page)

    async def _phone_entries(
        self, keys: VenueKeys, phone: str, low: int | str, high: int | str
    ) -> list[tuple[str, int]]:
        """(reference, start) of one phone's reservations in a venue, by start."""
        refs = list(
            await self._redis.smembers(keys.reservations_by_phone(self._venues.phone(phone)))
        )
        starts = await self._redis.zmscore(keys.reservations_by_start, refs) if refs else []
        ordered = sorted(
            (int(start), ref)
            for ref, start in zip(refs, starts, strict=True)
            if start is not None and within(int(start), low, high)
        )
        return [(ref, start) for start, ref in ordered]

    async def by_phone(self, phone: str, page: PageRequest | None = None) -> Page[Reservation]:
        """One client's reservations in every venue, sorted by start; one page of them.

        Per-venue indexes merged at read time: no key ever spans two venues (cluster safe).
        """
        e164 = self._venues.phone(phone)
        venue_ids = await self._venues.ids()
        pipe = self._redis.pipeline(transaction=False)
        for venue_id in venue_ids:
            pipe.smembers(self._keys.of(venue_id).reservations_by_phone(e164))
        found: list[tuple[int, str, Reservation]] = []
        for venue_id, refs in zip(venue_ids, await pipe.execute(), strict=True):
            if not refs:
                continue
            profile = await self._venues.profile(venue_id)
            rows = await self._rows(venue_id, sorted(refs))
            found += [
                (int(row["starts"]), row["reference"], reservation_view(profile, row, admin=True))
                for row in rows
                if row
            ]
        found.sort(key=lambda item: item[:2])
        page = page or PageRequest(limit=len(found) + 1)
        after = [item for item in found if page.after is None or item[:2] > page.after]
        more = len(after) > page.limit
        shown = after[: page.limit]
        last = shown[-1][:2] if shown else None
        return Page([view for _, _, view in shown], next_cursor(more, last))

    async def _rows(self, venue_id: str, references: list[str]) -> list[dict[str, str]]:
        keys = self._keys.of(venue_id)
        pipe = self._redis.pipeline(transaction=False)
        for ref in references:
            pipe.hgetall(keys.reservation(ref))
        return list(await pipe.execute()) if references else []


def _ms_text(profile: VenueProfile, value: str | None) -> str | None:
    return timegrid.rfc3339(int(value), profile.tz) if value else None


def _target_slots(
    profile: VenueProfile,
    rules: BookingRules,
    stored: dict[str, str],
    target_slot: str | None,
    new_table: bool,
    party_size: int | None,
) -> list[str] | None:
    """The slots a reservation will span after a change (None: the plain one-slot path, for a
    venue without booking rules and a reservation made without them). It keeps its span
    unless it moves or its party changes; then the durations decide again."""
    if not rules.rich and not (stored.get("slots") or stored.get("idx") or stored.get("combo")):
        return None
    if target_slot is None and not new_table and party_size is None:
        return record_slots(stored)
    party = party_size if party_size is not None else int(stored["party"])
    count = rules.slot_count(party, profile.slot_minutes)
    start = target_slot or stored["slot"]
    return span_slot_ids(start, count, profile.slot_minutes, profile.tz)


def feed_actor(staff: bool, actor: str | None) -> str | None:
    """Who the feed names for a change: the staff actor (``admin`` when not named), or None
    for the guest."""
    return (actor or "admin") if staff else None


def reservation_view(profile: VenueProfile, fields: dict[str, str], *, admin: bool) -> Reservation:
    """A stored reservation as the API shows it; staff fields only for admins."""
    units = decode_units(fields["units"])
    reservation = Reservation(
        reference=fields["reference"],
        status=fields["status"],
        venue_id=profile.id,
        slot=fields["slot"],
        starts_at=timegrid.rfc3339(int(fields["starts"]), profile.tz),
        ends_at=_ms_text(profile, fields.get("ends")),
        party_size=int(fields["party"]),
        name=fields["name"],
        phone=fields["phone"],
        email=fields.get("email") or None,
        notes=fields.get("notes") or None,
        created_at=timegrid.rfc3339(int(fields["created"]), profile.tz),
        cancelled_at=_ms_text(profile, fields.get("cancelled_at")),
    )
    if profile.kind is VenueKind.EVENT:
        ga = ga_of(units)
        if ga is not None:
            # General-admission places have no seat ids: the section and how many.
            reservation.ga = GaPlaces(section=ga[0], count=ga[1])
        else:
            reservation.seats = units
        reservation.party_size = len(units)
    else:
        reservation.table_id = units[0]
        reservation.table_ids = units
    if admin:
        reservation.business_notes = fields.get("business_notes") or None
        reservation.tags = json.loads(fields.get("tags") or "[]")
    return reservation
