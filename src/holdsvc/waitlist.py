"""The waitlist: join, read, leave, and the staff list (no HTTP here).

Every change is one script: join.lua (offered at once when what was asked is free), leave.lua,
and the freeing scripts (release, expire, cancel, change) whose shared helper
``lua/include/waitlist_offer.lua`` hands freed cells to the oldest fitting entry in the same
step (DESIGN.md invariant 9). An entry's token is stored only as a digest.
"""

from __future__ import annotations

import json
from typing import Any

from holdsvc import slots as timegrid
from holdsvc.clock import redis_now_ms
from holdsvc.errors import Forbidden, NotFound, Stale, ValidationFailed
from holdsvc.events import Events
from holdsvc.holds import HOLD_FIELDS, Holds, hold_view
from holdsvc.identifiers import digest, new_hold_id, new_secret, same_secret
from holdsvc.keys import Keys, VenueKeys
from holdsvc.models import EventWaitlistInput, WaitlistEntry, WaitlistInput
from holdsvc.scripts import AnyRedis, Scripts
from holdsvc.venues import VenueKind, VenueProfile, Venues, check_slot_id

LIVE = ("waiting", "offered")
# An event entry's group: its section's place in the map times this, plus its count (at most
# 1000), so that one group is one count in one section (0: any seated section).
GROUP_SECTION = 1024


class Waitlist:
    """Waitlist entries of restaurant slots and events."""

    def __init__(
        self,
        redis: AnyRedis,
        keys: Keys,
        scripts: Scripts,
        venues: Venues,
        holds: Holds,
        events: Events,
    ) -> None:
        self._redis = redis
        self._events = events
        self._keys = keys
        self._scripts = scripts
        self._venues = venues
        self._holds = holds

    async def join(
        self, venue_id: str, kind: VenueKind, body: WaitlistInput | EventWaitlistInput
    ) -> WaitlistEntry:
        """A new entry with its token (offered at once when what it asks is free now)."""
        profile = await self._venues.profile(venue_id, kind)
        if not body.user_id.isprintable():
            raise ValidationFailed("user_id must be printable characters only")
        if isinstance(body, WaitlistInput):
            check_slot_id(body.slot)
            slot, need, section = body.slot, body.party_size, None
            group = need
        else:
            slot, need, section = str(profile.event_slot), body.count, body.section
            group = await self._group(venue_id, need, section)
        entry_id = new_hold_id()
        token = new_secret()
        keys = self._keys.of(venue_id)
        await self._scripts.join(
            keys,
            slot=slot,
            entry_id=entry_id,
            token_digest=digest(token),
            user_id=body.user_id,
            need=need,
            group=group,
            fields={
                "name": body.name,
                "phone": self._venues.phone(body.phone),
                "email": body.email,
                "section": section,
            },
        )
        entry = await self._view(profile, keys, entry_id, await self._record(keys, entry_id))
        entry.token = token
        return entry

    async def _group(self, event_id: str, count: int, section: str | None) -> int:
        """The group an event entry waits in: entries of one group fit the same free places
        (the same count, in the same section or in any), so an offer asks best available
        once per group (lua/include/waitlist_offer.lua)."""
        if section is None:
            return count
        plan = await self._events.seat_map(event_id)
        if plan is None:
            raise NotFound(f"No such section: {section} (this event has no seat map)")
        ordinal = next((n for n, s in enumerate(plan.sections, 1) if s.id == section), None)
        if ordinal is None:
            raise NotFound(f"No such section: {section}")
        return ordinal * GROUP_SECTION + count

    async def get(
        self, venue_id: str, kind: VenueKind, entry_id: str, token: str | None
    ) -> WaitlistEntry:
        """An entry, for its bearer: position while waiting, the offer's hold while offered."""
        profile = await self._venues.profile(venue_id, kind)
        keys = self._keys.of(venue_id)
        record = await self._authorized(keys, entry_id, token)
        return await self._view(profile, keys, entry_id, record)

    async def leave(
        self, venue_id: str, kind: VenueKind, entry_id: str, token: str | None
    ) -> WaitlistEntry:
        """The bearer leaves; an open offer is released and passed on. Idempotent."""
        profile = await self._venues.profile(venue_id, kind)
        keys = self._keys.of(venue_id)
        for _ in range(5):
            record = await self._authorized(keys, entry_id, token)
            try:
                await self._scripts.leave(
                    keys,
                    slot=record["slot"],
                    entry_id=entry_id,
                    token_digest=digest(token or ""),
                    user_id=record["user"],
                    offer_hold_id=record.get("hold") or "",
                )
                break
            except Stale:
                # Offered between the read and the script: read the offer, call again.
                continue
        else:  # pragma: no cover - an entry is offered at most once
            raise RuntimeError("the entry kept changing")
        return await self._view(profile, keys, entry_id, await self._record(keys, entry_id))

    async def staff_list(
        self, venue_id: str, kind: VenueKind, slot: str | None
    ) -> list[WaitlistEntry]:
        """Waiting and offered entries of a slot (an event's one slot), oldest first; no
        tokens."""
        profile = await self._venues.profile(venue_id, kind)
        if kind is VenueKind.EVENT:
            slot = str(profile.event_slot)
        elif slot is None:
            raise ValidationFailed("'slot' is required")
        else:
            check_slot_id(slot)
        keys = self._keys.of(venue_id)
        ids: list[str] = await self._redis.zrange(keys.waitlist_live(slot), 0, -1)
        if not ids:
            return []
        texts = await self._redis.hmget(keys.waitlist, ids)
        positions = await self._positions(keys, slot, ids)
        return [
            entry_view(profile, entry_id, json.loads(text), positions.get(entry_id))
            for entry_id, text in zip(ids, texts, strict=True)
            if text is not None
        ]

    async def _positions(self, keys: VenueKeys, slot: str, ids: list[str]) -> dict[str, int]:
        waiting: list[str] = await self._redis.zrange(keys.waitlist_queue(slot), 0, -1)
        order = {entry_id: n for n, entry_id in enumerate(waiting, start=1)}
        return {entry_id: order[entry_id] for entry_id in ids if entry_id in order}

    async def _record(self, keys: VenueKeys, entry_id: str) -> dict[str, Any]:
        text = await self._redis.hget(keys.waitlist, entry_id)
        if text is None:
            raise NotFound("No such waitlist entry")
        record: dict[str, Any] = json.loads(text)
        return record

    async def _authorized(
        self, keys: VenueKeys, entry_id: str, token: str | None
    ) -> dict[str, Any]:
        record = await self._record(keys, entry_id)
        if not same_secret(token, record.get("digest")):
            raise Forbidden("The Waitlist-Token does not match this entry")
        return record

    async def _view(
        self,
        profile: VenueProfile,
        keys: VenueKeys,
        entry_id: str,
        record: dict[str, Any],
    ) -> WaitlistEntry:
        """The bearer's view: position while waiting, the offer's hold (with its token)."""
        position = None
        if record["status"] == "waiting":
            rank = await self._redis.zrank(keys.waitlist_queue(record["slot"]), entry_id)
            position = None if rank is None else int(rank) + 1
        entry = entry_view(profile, entry_id, record, position)
        hold_id = record.get("hold")
        if record["status"] == "offered" and hold_id:
            values = await self._redis.hmget(keys.hold(hold_id), HOLD_FIELDS)
            if values[0] is not None:
                fields = {
                    name: value
                    for name, value in zip(HOLD_FIELDS, values, strict=True)
                    if value is not None
                }
                hold = hold_view(profile, hold_id, fields, await redis_now_ms(self._redis))
                hold.token = self._holds.token(profile.id, hold_id)
                entry.hold = hold
        return entry


def entry_view(
    profile: VenueProfile, entry_id: str, record: dict[str, Any], position: int | None
) -> WaitlistEntry:
    """A stored entry as the API shows it (no token, no hold)."""
    entry = WaitlistEntry(
        id=entry_id,
        status=record["status"],
        position=position,
        created_at=timegrid.rfc3339(int(record["created"]), profile.tz),
        user_id=record["user"],
        slot=record["slot"],
        name=record["name"],
        phone=record["phone"],
        email=record.get("email") or None,
    )
    if profile.kind is VenueKind.EVENT:
        entry.count = int(record["need"])
        entry.section = record.get("section") or None
    else:
        entry.party_size = int(record["need"])
    if record.get("hold"):
        entry.hold_id = record["hold"]
    return entry
