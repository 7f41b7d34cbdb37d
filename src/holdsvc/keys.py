"""The only place where Redis key strings are built.

Every key of a venue starts with ``<prefix>:{<venue id>}:`` so that the venue id is the
first braced part, the Redis Cluster hash tag: all keys one script touches live in one
cluster slot. The prefix stays outside the braces so several deployments can share a Redis.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VenueKeys:
    """Key names of one venue."""

    base: str

    @property
    def venue(self) -> str:
        """Hash: the venue's settings (kind, name, timezone, hold rules, bookings_open...)."""
        return f"{self.base}venue"

    @property
    def units(self) -> str:
        """Hash: unit id -> capacity."""
        return f"{self.base}units"

    @property
    def unit_labels(self) -> str:
        """Hash: unit id -> label."""
        return f"{self.base}units:label"

    @property
    def units_by_fit(self) -> str:
        """Zset: unit id -> capacity * 2^20 + creation sequence (best fit order)."""
        return f"{self.base}units:fit"

    @property
    def slots(self) -> str:
        """Zset: slot id -> start epoch ms."""
        return f"{self.base}slots"

    def cells(self, slot: str) -> str:
        """Hash: unit id -> ``h|<hold>|<expires ms>`` or ``r|<reference>`` (absent = free)."""
        return f"{self.base}cells:{slot}"

    def held(self, slot: str) -> str:
        """Zset: unit id -> expires ms of the hold on it (live-held count without a scan)."""
        return f"{self.base}held:{slot}"

    def hold(self, hold_id: str) -> str:
        """Hash: one hold (user, token digest, slot, units, created, expires, status...)."""
        return f"{self.base}hold:{hold_id}"

    @property
    def holds(self) -> str:
        """Zset: live hold id -> expires ms (what the sweeper walks)."""
        return f"{self.base}holds"

    def user(self, user_id: str) -> str:
        """Zset: ``<hold id>|<units>`` -> expires ms, the user's live holds (the cap)."""
        return f"{self.base}user:{user_id}"

    def idempotency(self, user_id: str, key: str) -> str:
        """String: the hold an Idempotency-Key produced, scoped to the user."""
        digest = hashlib.sha256(f"{user_id}\0{key}".encode()).hexdigest()[:32]
        return f"{self.base}idem:{digest}"

    def reservation(self, reference: str) -> str:
        """Hash: one reservation."""
        return f"{self.base}res:{reference}"

    @property
    def reservations_by_start(self) -> str:
        """Zset: reference -> slot start ms (date range queries)."""
        return f"{self.base}res:by-start"

    def reservations_by_phone(self, phone: str) -> str:
        """Set: references of one client (E.164 phone)."""
        return f"{self.base}res:by-phone:{phone}"

    @property
    def feed(self) -> str:
        """Stream: the venue's change log."""
        return f"{self.base}feed"

    @property
    def staff_tokens(self) -> str:
        """Hash: staff token digest -> the token's record (JSON: id, name, role, created)."""
        return f"{self.base}staff"

    @property
    def staff_ids(self) -> str:
        """Hash: staff token id -> its digest (list and revoke by id)."""
        return f"{self.base}staff:ids"

    @property
    def staff_used(self) -> str:
        """Hash: staff token id -> when it was last accepted (epoch ms)."""
        return f"{self.base}staff:used"


@dataclass(frozen=True, slots=True)
class Keys:
    """Builds key names under one configurable prefix."""

    prefix: str = "hs"

    def of(self, venue_id: str) -> VenueKeys:
        """The keys of one venue, all hash-tagged with its id."""
        return VenueKeys(f"{self.prefix}:{{{venue_id}}}:")

    def rate(self, client: str) -> str:
        """String: a client's next arrival time for the rate limit (throttle.lua), in its
        own slot. Not per venue."""
        return f"{self.prefix}:ratelimit:{{{client}}}"

    def venues(self, kind: str) -> str:
        """Zset: venue id -> created ms, one per kind (restaurant, event). Not per venue."""
        return f"{self.prefix}:venues:{kind}"
