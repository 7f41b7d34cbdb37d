"""The only place where Redis key strings are built, and where SCANs learn their shapes.

Every key of a venue starts with ``<prefix>:{<venue id>}:`` so that the venue id is the
first braced part, the Redis Cluster hash tag: all keys one script touches live in one
cluster slot. The prefix stays outside the braces so several deployments can share a Redis.

Text a client chose freely (user ids, Idempotency-Keys) never becomes part of a key name: it
is hashed first, so it can never look like a structural part (a ``}``, a ``:venue``). Other
parts are ids the service made or checked (venue ids, references, slot ids, E.164 phones).
A ``KeyFamily`` gives a SCAN its glob and the exact shape a key must have to count.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from holdsvc.identifiers import REFERENCE_TAIL_LENGTH, UNAMBIGUOUS, VENUE_ID_LENGTH

_VENUE_ID = f"[{UNAMBIGUOUS}]{{{VENUE_ID_LENGTH}}}"
_REFERENCE = f"{_VENUE_ID}-[{UNAMBIGUOUS}]{{{REFERENCE_TAIL_LENGTH}}}"
_HOLD_ID = "[A-Za-z0-9_-]{1,64}"  # token_urlsafe ids (new_hold_id)
_SLOT_ID = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}"
_DIGEST = "[0-9a-f]{32}"
_E164 = r"\+[0-9]{1,15}"
REMINDERS = "reminders"  # the lease name of a venue's reminder mails
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def glob_escape(text: str) -> str:
    """``text`` as a literal inside a SCAN/KEYS glob pattern."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def user_digest(user_id: str) -> str:
    """What a user id becomes in key names: 128 bits of its SHA-256, in hex."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class KeyFamily:
    """Keys of one structure with one variable part: how to SCAN for them, exactly."""

    glob: str
    shape: re.Pattern[str]

    @classmethod
    def under(cls, head: str, part: str) -> KeyFamily:
        """Keys ``<head><part>``, ``part`` a regex of the variable part."""
        return cls(f"{glob_escape(head)}*", re.compile(f"{re.escape(head)}({part})"))

    def part(self, key: str) -> str | None:
        """The variable part of ``key`` when it has exactly this structure, else None."""
        found = self.shape.fullmatch(key)
        return found.group(1) if found else None


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
    def units_removed(self) -> str:
        """Hash: removed unit id -> ``<removed ms>|<capacity>|<label>`` (past bookings keep
        naming it; no cell of it lies in a slot that had not ended when it was removed)."""
        return f"{self.base}units:removed"

    def table_request(self, key: str) -> str:
        """String: the answer to an add-tables request made with this Idempotency-Key
        (``pending`` while it runs); the key is digested, never key structure."""
        return f"{self.base}tables-idem:{user_digest(key)}"

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

    @property
    def seat_index(self) -> str:
        """Hash: a seat-map event's map and free-run index (lua/include/seat_runs.lua)."""
        return f"{self.base}seatmap"

    @property
    def combinations(self) -> str:
        """Hash: combination id -> JSON ``{"tables": [ids], "capacity": n, "seq": n}``."""
        return f"{self.base}combos"

    @property
    def combinations_by_fit(self) -> str:
        """Zset: combination id -> capacity * 2^20 + creation sequence (best fit order)."""
        return f"{self.base}combos:fit"

    def covers(self, slot: str) -> str:
        """Hash: the bookings starting in a slot, for the covers cap: ``h|<hold>`` ->
        ``<party>|<expires ms>``, ``r|<reference>`` -> ``<party>`` (lua/include/covers.lua)."""
        return f"{self.base}covers:{slot}"

    def guest(self, user_id: str) -> str:
        """Hash: a user's bookings for one booking per guest: ``h|<hold>`` ->
        ``<start>|<end>|<expires>``, ``r|<reference>`` -> ``<start>|<end>`` (ms). Named by
        the user id's digest."""
        return f"{self.base}guest:{user_digest(user_id)}"

    def guest_phone(self, phone: str) -> str:
        """Hash: a phone's reservations for one booking per guest: ``r|<reference>`` ->
        ``<start>|<end>`` (ms). Named by the phone's digest (guest text is never a key's
        structure)."""
        return f"{self.base}guest-phone:{user_digest(phone)}"

    @property
    def closures(self) -> str:
        """Hash: first closed date -> ``<last closed date>`` or ``<last>|<reason>``."""
        return f"{self.base}closures"

    def hold(self, hold_id: str) -> str:
        """Hash: one hold (user, token digest, slot, units, created, expires, status...)."""
        return f"{self.base}hold:{hold_id}"

    @property
    def holds(self) -> str:
        """Zset: live hold id -> expires ms (what the sweeper walks)."""
        return f"{self.base}holds"

    def user(self, user_id: str) -> str:
        """Zset: ``<hold id>|<units>`` -> expires ms, the user's live holds (the cap). Named
        by the user id's digest: a client picks its user id freely."""
        return f"{self.base}user:{user_digest(user_id)}"

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
    def venue_id(self) -> str:
        """The venue id these keys are tagged with (the first braced part)."""
        return self.base[self.base.index("{") + 1 : self.base.index("}")]

    @property
    def waitlist(self) -> str:
        """Hash: waitlist entry id -> the entry (JSON: slot, user, need, token digest, status,
        seq, hold, contact fields). Every slot's entries; ended ones stay readable."""
        return f"{self.base}wl"

    @property
    def waitlist_slots(self) -> str:
        """Zset: slot id -> start ms, for every slot with a waiting entry (a freeing step finds
        the waitlists its freed cells may fit here, lua/include/waitlist_offer.lua)."""
        return f"{self.base}wl:slots"

    @property
    def waitlist_ended(self) -> str:
        """Zset: ended entry id -> when it ended (ms). Entries stay readable for a while after
        they end, then the scripts that end entries drop the oldest (bounded work each)."""
        return f"{self.base}wl:ended"

    def waitlist_waiting(self, slot: str) -> str:
        """Zset: waiting entry id -> need * 2^32 + join sequence (a walk per need, oldest
        first: the offer's scan, lua/include/waitlist_offer.lua)."""
        return f"{self.base}wl:wait:{slot}"

    def waitlist_capped(self, slot: str) -> str:
        """Zset: the slot's waiting entries passed over at the cap, scored as in
        ``waitlist_waiting`` (a walk reads only those whose users it was told about)."""
        return f"{self.base}wl:capped:{slot}"

    def waitlist_queue(self, slot: str) -> str:
        """Zset: waiting entry id -> join sequence (positions)."""
        return f"{self.base}wl:queue:{slot}"

    def waitlist_live(self, slot: str) -> str:
        """Zset: waiting and offered entry id -> join sequence (the staff list)."""
        return f"{self.base}wl:live:{slot}"

    def waitlist_users(self, slot: str) -> str:
        """Hash: user id -> the user's live entry in this slot (``already_waiting``). A hash
        field, never a key part: user ids are chosen freely."""
        return f"{self.base}wl:users:{slot}"

    @property
    def every_waitlist_queue(self) -> KeyFamily:
        """Every slot's queue of waiting entries; the part is the slot id."""
        return KeyFamily.under(self.waitlist_queue(""), _SLOT_ID)

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

    @property
    def webhooks(self) -> str:
        """Hash: webhook id -> the venue's subscription (JSON, with its signing secret)."""
        return f"{self.base}webhooks"

    @property
    def consumers(self) -> str:
        """Hash: feed consumer name -> its position (JSON: cursor, attempt, next try ms)."""
        return f"{self.base}consumers"

    def consumer_lease(self, name: str) -> str:
        """String: the worker that delivers for one feed consumer now (a token, with a TTL)."""
        return f"{self.base}consumer:lease:{name}"

    def deliveries(self, webhook_id: str) -> str:
        """List: a venue webhook's delivery log, newest first (capped)."""
        return f"{self.base}wh:log:{webhook_id}"

    @property
    def mail_told(self) -> str:
        """Hash: reference -> what its guest was last mailed (status, start, party, address)."""
        return f"{self.base}mail:told"

    @property
    def reminders(self) -> str:
        """Zset: reference -> epoch ms its reminder mail is due (removed once sent)."""
        return f"{self.base}mail:reminders"

    def resend(self, reference: str) -> str:
        """String: set while a reference's manage link was just mailed again (the limit)."""
        return f"{self.base}mail:resend:{reference}"

    # -- what a SCAN of the venue's keys may count ----------------------------------------

    @property
    def every_hold(self) -> KeyFamily:
        """Every hold hash; the part is the hold id."""
        return KeyFamily.under(self.hold(""), _HOLD_ID)

    @property
    def every_reservation(self) -> KeyFamily:
        """Every reservation hash (not its indexes); the part is the reference."""
        return KeyFamily.under(self.reservation(""), _REFERENCE)

    @property
    def every_cells(self) -> KeyFamily:
        """Every slot's cells hash; the part is the slot id."""
        return KeyFamily.under(self.cells(""), _SLOT_ID)

    @property
    def every_user(self) -> KeyFamily:
        """Every user's set; the part is the user id's digest (``user_digest``)."""
        return KeyFamily.under(f"{self.base}user:", _DIGEST)

    @property
    def every_phone(self) -> KeyFamily:
        """Every phone's set of references; the part is the E.164 phone."""
        return KeyFamily.under(self.reservations_by_phone(""), _E164)


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

    @property
    def webhooks(self) -> str:
        """Hash: webhook id -> an admin's subscription to every venue (JSON). Not per venue."""
        return f"{self.prefix}:webhooks"

    @property
    def webhook_venues(self) -> str:
        """Set: ids of venues that have webhooks of their own (what the delivery loop walks)."""
        return f"{self.prefix}:webhook-venues"

    @property
    def mail_since(self) -> str:
        """String: epoch ms when mail was first turned on; feeds are mailed from then on."""
        return f"{self.prefix}:mail:since"

    def global_deliveries(self, webhook_id: str) -> str:
        """List: an every-venue webhook's delivery log, newest first (capped), in its own slot."""
        return f"{self.prefix}:wh:log:{{{webhook_id}}}"

    @property
    def every_venue(self) -> KeyFamily:
        """Every venue's settings hash (``<prefix>:{<venue id>}:venue``); the part is the
        venue id. The glob names the id's alphabet and length too, so a SCAN of a big Redis
        returns only venues."""
        head, tail = f"{self.prefix}:{{", "}:venue"
        return KeyFamily(
            f"{glob_escape(head)}{f'[{UNAMBIGUOUS}]' * VENUE_ID_LENGTH}{glob_escape(tail)}",
            re.compile(f"{re.escape(head)}({_VENUE_ID}){re.escape(tail)}"),
        )
