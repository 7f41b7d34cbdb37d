"""Holds: place, refresh, release, read and confirm (no HTTP here)."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import tzinfo

import msgspec

from holdsvc import slots as timegrid
from holdsvc.booking_rules import record_slots, span_slot_ids
from holdsvc.clock import redis_now_ms
from holdsvc.errors import (
    Forbidden,
    HoldExpired,
    NotFound,
    NotReplicated,
    ReferenceTaken,
    Stale,
    ValidationFailed,
)
from holdsvc.identifiers import (
    digest,
    hold_token,
    mac_key,
    manage_token_of,
    new_hold_id,
    new_reference,
    new_secret,
    same_secret,
)
from holdsvc.keys import Keys, VenueKeys
from holdsvc.metrics import Metrics
from holdsvc.models import ConfirmInput, GaPlaces, Hold, HoldInput, Reservation, SeatHoldInput
from holdsvc.reservations import Reservations
from holdsvc.scripts import AnyRedis, HoldPlaced, Scripts, SeatPick
from holdsvc.seatmap import ga_of
from holdsvc.settings import Settings
from holdsvc.sweeper import Sweeper, after_sweeping
from holdsvc.units import decode_units, encode_units
from holdsvc.venues import PLAIN_RULES, VenueKind, VenueProfile, Venues, check_slot_id

MAX_IDEMPOTENCY_KEY = 255
HOLD_FIELDS = (
    "user",
    "digest",
    "slot",
    "units",
    "party",
    "created",
    "expires",
    "refreshes",
    "status",
    "ref",
    "slots",
    "stops",
)
STALE_RETRIES = 5


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """What a caller asks to hold: specific units, or the best ``count`` that fit the party."""

    user_id: str
    slot: str
    party_size: int
    units: list[str]
    count: int
    idempotency_key: str | None = None
    pick: SeatPick | None = None


class Holds:
    """The hold lifecycle; every change is one script call."""

    def __init__(
        self,
        redis: AnyRedis,
        keys: Keys,
        scripts: Scripts,
        venues: Venues,
        reservations: Reservations,
        sweeper: Sweeper,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._venues = venues
        self._reservations = reservations
        self._sweeper = sweeper
        self._settings = settings
        self._metrics = metrics
        secret = settings.secret_key.get_secret_value() if settings.secret_key else new_secret()
        self._secret = mac_key(secret)

    def _token(self, venue_id: str, hold_id: str) -> str:
        return hold_token(self._secret, venue_id, hold_id)

    def token(self, venue_id: str, hold_id: str) -> str:
        """A hold's token (a MAC of its id): also the token of a waitlist offer's hold."""
        return self._token(venue_id, hold_id)

    async def place_from_body(
        self,
        venue_id: str,
        kind: VenueKind,
        body: HoldInput | SeatHoldInput,
        idempotency_key: str | None,
    ) -> tuple[Hold, bool]:
        """Place the hold a request body asks for (a table, or seats); see ``place``."""
        check_idempotency_key(idempotency_key)
        if isinstance(body, SeatHoldInput):
            request = await self._seat_request(venue_id, kind, body, idempotency_key)
        else:
            request = HoldRequest(
                user_id=body.user_id,
                slot=body.slot,
                party_size=body.party_size,
                units=[body.table_id] if body.table_id is not None else [],
                count=1,
                idempotency_key=idempotency_key,
            )
        return await self.place(venue_id, kind, request)

    async def _seat_request(
        self, venue_id: str, kind: VenueKind, body: SeatHoldInput, idempotency_key: str | None
    ) -> HoldRequest:
        """Named seats (no repeats), or the best ``count``: exactly one of them."""
        if (body.seats is None) == (body.count is None):
            raise ValidationFailed("Give either 'seats' or 'count', not both and not neither")
        if body.seats is not None and len(set(body.seats)) != len(body.seats):
            raise ValidationFailed("'seats' names a seat more than once")
        profile = await self._venues.profile(venue_id, kind)
        seats = body.seats or []
        return HoldRequest(
            user_id=body.user_id,
            slot=str(profile.event_slot),
            party_size=1,
            units=seats,
            count=body.count or len(seats),
            idempotency_key=idempotency_key,
            pick=seat_pick(profile, body),
        )

    async def place(
        self, venue_id: str, kind: VenueKind, request: HoldRequest
    ) -> tuple[Hold, bool]:
        """Place a hold; (hold with its token, True when an Idempotency-Key replayed it)."""
        venue = await self._venues.profile(venue_id, kind)
        check_slot_id(request.slot)
        if not request.user_id.isprintable():
            # Beyond control characters: line separators, zero-width and other format marks.
            raise ValidationFailed("user_id must be printable characters only")
        keys = self._keys.of(venue_id)
        # Only an Idempotency-Key needs the body's fingerprint: not worth hashing otherwise.
        fingerprint = (
            hashlib.sha256(
                msgspec.json.encode(
                    [request.slot, request.party_size, request.units, request.count]
                    + ([[request.pick.section, request.pick.together]] if request.pick else [])
                )
            ).hexdigest()
            if request.idempotency_key
            else ""
        )
        hold_id = new_hold_id()
        restaurant = kind is VenueKind.RESTAURANT
        spanned = [request.slot]

        # The new hold's token, computed once: its digest goes to the script, the token itself
        # to the caller (a replay answers another hold's token, computed then).
        token = self._token(venue_id, hold_id)
        token_digest = digest(token)

        async def claim() -> HoldPlaced:
            # The rules decide the keys; a script that finds them changed answers STALE. (One
            # coroutine, not a retry loop around another: this runs for every hold.)
            for _ in range(STALE_RETRIES):
                rules = await self._venues.rules(venue_id) if restaurant else PLAIN_RULES
                slot_ids = None
                if rules.durations:
                    count = rules.slot_count(request.party_size, venue.slot_minutes)
                    slot_ids = span_slot_ids(request.slot, count, venue.slot_minutes, venue.tz)
                    spanned[:] = slot_ids
                try:
                    return await self._scripts.hold(
                        keys,
                        hold_id=hold_id,
                        token_digest=token_digest,
                        user_id=request.user_id,
                        slot=request.slot,
                        party_size=request.party_size,
                        units=request.units,
                        count=request.count,
                        idempotency_key=request.idempotency_key,
                        fingerprint=fingerprint,
                        pick=request.pick,
                        rules=rules,
                        slot_ids=slot_ids,
                        slot_minutes=venue.slot_minutes,
                    )
                except Stale:
                    self._venues.forget_rules(venue_id)
            raise Stale()  # pragma: no cover - the rules changed five times in a row

        try:
            placed = await after_sweeping(self._sweeper, venue_id, claim, slot=request.slot)
        except Exception as error:
            self._metrics.hold_refused(kind, error)
            raise
        if placed.replayed:
            hold = await self._read(venue, keys, placed.hold_id)
        else:
            hold = hold_view(
                venue,
                placed.hold_id,
                {
                    "user": request.user_id,
                    "slot": request.slot,
                    "units": encode_units(placed.units),
                    "party": str(request.party_size),
                    "created": str(placed.created_ms),
                    "expires": str(placed.expires_ms),
                    "slots": json.dumps(spanned) if len(spanned) > 1 else "",
                },
                placed.now_ms,
            )
        hold.token = token if placed.hold_id == hold_id else self._token(venue_id, placed.hold_id)
        self._metrics.hold_placed(kind, replayed=placed.replayed)
        return hold, placed.replayed

    async def _fields(self, keys: VenueKeys, hold_id: str) -> dict[str, str]:
        values = await self._redis.hmget(keys.hold(hold_id), HOLD_FIELDS)
        if values[0] is None:
            raise NotFound("No such hold")
        return {
            name: value
            for name, value in zip(HOLD_FIELDS, values, strict=True)
            if value is not None
        }

    async def _authorized(self, venue_id: str, hold_id: str, token: str | None) -> dict[str, str]:
        fields = await self._fields(self._keys.of(venue_id), hold_id)
        if not same_secret(token, fields.get("digest")):
            raise Forbidden("The Hold-Token does not match this hold")
        return fields

    async def _read(self, venue: VenueProfile, keys: VenueKeys, hold_id: str) -> Hold:
        fields = await self._fields(keys, hold_id)
        now = await redis_now_ms(self._redis)
        return hold_view(venue, hold_id, fields, now)

    async def get(self, venue_id: str, kind: VenueKind, hold_id: str, token: str | None) -> Hold:
        """A hold, for its bearer."""
        venue = await self._venues.profile(venue_id, kind)
        fields = await self._authorized(venue_id, hold_id, token)
        return hold_view(venue, hold_id, fields, await redis_now_ms(self._redis))

    async def refresh(
        self, venue_id: str, kind: VenueKind, hold_id: str, token: str | None
    ) -> Hold:
        """Extend a live hold, for its bearer."""
        venue = await self._venues.profile(venue_id, kind)
        fields = await self._authorized(venue_id, hold_id, token)
        keys = self._keys.of(venue_id)
        await self._scripts.refresh(
            keys,
            hold_id=hold_id,
            token_digest=digest(token or ""),
            slot=fields["slot"],
            user_id=fields["user"],
            slots=record_slots(fields),
        )
        return await self._read(venue, keys, hold_id)

    async def release(
        self, venue_id: str, kind: VenueKind, hold_id: str, token: str | None
    ) -> None:
        """Release a hold, for its bearer; its cells are free at once."""
        await self._venues.profile(venue_id, kind)
        fields = await self._authorized(venue_id, hold_id, token)
        await self._scripts.release(
            self._keys.of(venue_id),
            hold_id=hold_id,
            token_digest=digest(token or ""),
            slot=fields["slot"],
            user_id=fields["user"],
            slots=record_slots(fields),
        )

    async def confirmed_reservation(
        self, venue_id: str, kind: VenueKind, hold_id: str, token: str | None
    ) -> Reservation | None:
        """The reservation this hold already became, or None (bearer only).

        Checked before the confirm body is read: a repeated confirm answers the same
        reservation whatever body it carries.
        """
        await self._venues.profile(venue_id, kind)
        fields = await self._authorized(venue_id, hold_id, token)
        if fields.get("status") == "confirmed" and fields.get("ref"):
            reservation = await self._reservations.get(fields["ref"], admin=False, skip_auth=True)
            # The bearer of the hold token may read its manage token again (derived from it).
            reservation.manage_token = manage_token_of(token or "", venue_id, hold_id)
            return reservation
        return None

    async def confirm(
        self, venue_id: str, kind: VenueKind, hold_id: str, token: str | None, data: ConfirmInput
    ) -> tuple[Reservation, bool]:
        """Consume a live hold into a reservation: (reservation, True when it already was)."""
        venue = await self._venues.profile(venue_id, kind)
        fields = await self._authorized(venue_id, hold_id, token)
        phone = self._venues.phone(data.phone)
        keys = self._keys.of(venue_id)
        # Derived from the hold's token: a replay of this confirm can answer it again.
        manage_token = manage_token_of(token or "", venue_id, hold_id)
        for _ in range(5):
            try:
                confirmed = await self._scripts.confirm(
                    keys,
                    venue_id=venue.id,
                    hold_id=hold_id,
                    token_digest=digest(token or ""),
                    slot=fields["slot"],
                    user_id=fields["user"],
                    reference=new_reference(venue.id),
                    manage_digest=digest(manage_token),
                    name=data.name,
                    phone=phone,
                    email=data.email or "",
                    notes=data.notes or "",
                    slots=record_slots(fields),
                )
                break
            except ReferenceTaken:
                continue
            except HoldExpired:
                self._metrics.confirm_refused(kind, "hold_expired")
                raise
        else:  # pragma: no cover - five collisions in a 887-million space
            raise RuntimeError("could not find a free reference")
        if confirmed.replication.short:
            # Written on the primary, not on enough replicas in time (confirm_wait_replicas).
            self._metrics.confirmed(kind)
            raise NotReplicated(
                confirmed.reference,
                confirmed.replication,
                manage_token,
            )
        reservation = await self._reservations.get(confirmed.reference, admin=False, skip_auth=True)
        reservation.manage_token = manage_token
        if not confirmed.replayed:
            self._metrics.confirmed(kind)
        return reservation, confirmed.replayed


def check_idempotency_key(key: str | None) -> None:
    """An Idempotency-Key is 1..255 printable ASCII characters."""
    if key is not None and (
        not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable() or not key.isascii()
    ):
        raise ValidationFailed("Idempotency-Key must be 1..255 printable ASCII characters")


def hold_view(venue: VenueProfile, hold_id: str, fields: dict[str, str], now_ms: int) -> Hold:
    """A stored hold as the API shows it (status 'expired' once lapsed, by Redis time)."""
    expires = int(fields["expires"])
    status = fields.get("status", "held")
    if status == "held" and expires <= now_ms:
        status = "expired"
    units = decode_units(fields["units"])
    hold = Hold(
        id=hold_id,
        venue_id=venue.id,
        user_id=fields["user"],
        slot=fields["slot"],
        party_size=int(fields.get("party", "1")),
        status=status,
        created_at=timegrid.rfc3339(int(fields["created"]), venue.tz),
        expires_at=timegrid.rfc3339(expires, venue.tz),
        expires_in=max(0.0, round((expires - now_ms) / 1000, 3)) if status == "held" else 0.0,
        refreshes=int(fields.get("refreshes", "0")),
    )
    if venue.kind is VenueKind.EVENT:
        ga = ga_of(units)
        if ga is not None:
            # General-admission places have no seat ids: the section and how many.
            hold.ga = GaPlaces(section=ga[0], count=ga[1])
        else:
            hold.seats = units
        hold.party_size = len(units)
    else:
        hold.table_id = units[0]
        hold.table_ids = units
        ends_at = _hold_ends_at(venue, fields)
        if ends_at is not None:
            hold.ends_at = ends_at
    if fields.get("ref"):
        hold.reference = fields["ref"]
    return hold


def seat_pick(profile: VenueProfile, body: SeatHoldInput) -> SeatPick | None:
    """How a seat-map event picks (None: named seats, or a ``total_seats`` event)."""
    if body.seats is not None and (body.section is not None or body.together is not None):
        raise ValidationFailed("'section' and 'together' go with 'count', not 'seats'")
    if not profile.seat_map:
        if body.section is not None:
            raise NotFound("No such section: this event has no seat map")
        if body.together is not None:
            raise ValidationFailed("'together' applies to events with a seat map")
        return None
    if body.seats is not None:
        # Named seats: general-admission places have no ids (a '~' is no UnitId), so only
        # seats can be named, and hold.lua checks them like any unit.
        return None
    return SeatPick(section=body.section or "", together=body.together is not False)


def _hold_ends_at(venue: VenueProfile, fields: dict[str, str]) -> str | None:
    """When a restaurant hold's booking ends: the end of its last slot, as local RFC 3339
    text (None when its slot's local time does not exist)."""
    stops = fields.get("stops")
    if stops:
        return _local_text(int(stops), venue.tz)
    return _span_end_text(fields["slot"], len(record_slots(fields)), venue.slot_minutes, venue.tz)


# Every placed hold's answer shows ``ends_at``: parsing the slot id and converting its local
# time (regex, datetime.replace, zoneinfo, isoformat) was about a tenth of a hold's CPU
# (bench/results/hold_ratelimit_fix.txt). The text depends only on the slot, its span and the
# venue's zone and step, which a busy service repeats endlessly: cached per process.
@functools.lru_cache(maxsize=4096)
def _span_end_text(slot: str, slots: int, slot_minutes: int, tz: tzinfo) -> str | None:
    start = timegrid.slot_start_ms(slot, tz)
    return None if start is None else _local_text(start + slots * slot_minutes * 60_000, tz)


@functools.lru_cache(maxsize=4096)
def _local_text(epoch_ms: int, tz: tzinfo) -> str:
    return timegrid.rfc3339(epoch_ms, tz)
