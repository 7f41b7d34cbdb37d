"""The Lua scripts: read once at start-up, loaded into Redis, one typed async method each.

Each ``lua/<verb>.lua`` is a script; the helpers it names with ``--- @include "<helper>"``
lines (files in ``lua/include/``, which may include others) are put in front of it, each once,
so a script carries only what it calls. Callers never see KEYS or ARGV: they call
``Scripts.hold(...)`` and get a typed result, or the exception that
``errors.raise_for_status`` made of the script's status code.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from redis.exceptions import NoScriptError

from holdsvc.booking_rules import BookingRules, following_slot_keys, record_slots
from holdsvc.errors import Status, WaitlistKeysNeeded, raise_for_status
from holdsvc.identifiers import new_hold_id
from holdsvc.keys import REMINDERS, VenueKeys
from holdsvc.pipelined import ClusterPipelines, PipelinedConnection
from holdsvc.replication import NO_WAIT, Replication, eval_then_wait
from holdsvc.units import decode_units, encode_units

# redis-py annotates replies as unions of sync/async and bytes/str. Our clients always use
# decode_responses=True, so replies are text; the client is typed loosely at this one boundary.
AnyRedis: TypeAlias = Any  # Redis | RedisCluster
# The waitlist block (lua/include/waitlist_offer.lua): how many users of each need, and how
# many needs, a freeing step is told about; how many offers one step may make.
WAITLIST_USERS_PER_NEED = 16
WAITLIST_MAX_NEEDS = 64
WAITLIST_MARKED_NAMED = 64
WAITLIST_OFFERS_PER_STEP = 4
# How often a freeing step is called again with the waitlist keys it asked for. Each round
# keeps every slot it was told about, so another is needed only when, between its read and
# its call (a millisecond), a guest joined a slot of the reach where nobody waited before.
WAITLIST_KEY_ROUNDS = 64
_Reply = TypeVar("_Reply")
INCLUDE = re.compile(r'^--- @include "([a-z_]+)"[ \t]*$', re.MULTILINE)


def lua_dir() -> Path:
    """Where the Lua files are: inside the installed wheel, else the checkout's ``lua/``."""
    packaged = Path(str(resources.files("holdsvc"))) / "lua"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "lua"


def script_names(directory: Path | None = None) -> tuple[str, ...]:
    """Every script: each ``lua/*.lua`` (the helpers live in ``lua/include/``)."""
    return tuple(sorted(path.stem for path in (directory or lua_dir()).glob("*.lua")))


def read_script(name: str, directory: Path | None = None) -> str:
    """The full text sent to Redis for one script: its helpers (dependencies first, each
    once), then the script itself."""
    folder = directory or lua_dir()
    helpers: list[str] = []
    seen: set[str] = set()

    def take(helper: str, chain: tuple[str, ...]) -> None:
        if helper in chain:
            raise ValueError(f"Lua helpers include each other: {' -> '.join((*chain, helper))}")
        if helper in seen:
            return
        text = (folder / "include" / f"{helper}.lua").read_text()
        for needed in INCLUDE.findall(text):
            take(needed, (*chain, helper))
        seen.add(helper)
        helpers.append(INCLUDE.sub("", text))

    script = (folder / f"{name}.lua").read_text()
    for helper in INCLUDE.findall(script):
        take(helper, ())
    return "\n".join([*helpers, INCLUDE.sub("", script)])


class Omitted(Enum):
    """A value left out of a request (distinct from None, which clears it)."""

    OMITTED = "omitted"


OMITTED = Omitted.OMITTED


@dataclass(frozen=True, slots=True)
class SeatPick:
    """Best available on a seat map: in ``section`` ('' = every seated one), in one block."""

    section: str
    together: bool


@dataclass(frozen=True, slots=True)
class HoldPlaced:
    """What hold.lua answered: a new hold, or the earlier one an Idempotency-Key made."""

    replayed: bool
    hold_id: str
    now_ms: int
    created_ms: int = 0
    expires_ms: int = 0
    units: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What refresh.lua answered."""

    now_ms: int
    created_ms: int
    expires_ms: int


@dataclass(frozen=True, slots=True)
class Confirmed:
    """What confirm.lua answered: the reference, and whether it was an earlier confirm."""

    replayed: bool
    reference: str
    now_ms: int
    replication: Replication = NO_WAIT


@dataclass(frozen=True, slots=True)
class Changed:
    """What a script that only changes state answered (release, expire, cancel)."""

    changed: bool
    now_ms: int
    replication: Replication = NO_WAIT


@dataclass(frozen=True, slots=True)
class Booked:
    """What book.lua answered: the new reservation's reference."""

    reference: str
    replication: Replication = NO_WAIT


@dataclass(frozen=True, slots=True)
class Archived:
    """What archive.lua answered: whether the slot was removed, and with how many
    reservations (``removed`` False: it has not ended by the cutoff, nothing changed)."""

    removed: bool
    reservations: int
    now_ms: int


@dataclass(frozen=True, slots=True)
class ArchivedReservation:
    """One reservation archive.lua removes with its slot: its fields exactly as the caller
    read (and wrote out) them."""

    reference: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class SlotsAdded:
    """What add_slots.lua answered: slots it created, and how many the grid has now."""

    created: int
    total: int


@dataclass(frozen=True, slots=True)
class Joined:
    """What join.lua answered: the entry's sequence, its position (0 when it was offered at
    once) and the offer's hold id ('' when none)."""

    seq: int
    position: int
    offer_hold_id: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class WaitlistReach:
    """What a waitlist block names (lua/include/waitlist_offer.lua): the slots whose waitlist
    keys it passes, the slots whose cells it passes, the users (their cap and guest keys), and
    whether those users were read as the heads of every named slot's waitlist."""

    slots: list[str]
    cells: list[str]
    users: list[str]
    read: bool = False
    offers: bool = True

    @classmethod
    def own(cls, slot: str, *, offers: bool = True) -> WaitlistReach:
        """The first call's block: the script's own slot, no users read (enough when no
        waiting entry is in reach; else the script asks for more)."""
        return cls(slots=[slot], cells=[slot], users=[], offers=offers)


def _union(first: list[str], more: list[str]) -> list[str]:
    """``first`` then the items of ``more`` it lacks, in order."""
    joined = list(first)
    joined += [item for item in dict.fromkeys(more) if item not in first]
    return joined


@dataclass(frozen=True, slots=True)
class Throttled:
    """What throttle.lua answered for an allowed request."""

    remaining: int
    reset_us: int


PLAIN = BookingRules()


def _hold_keys(keys: VenueKeys, hold_id: str, slot: str, user_id: str) -> list[str]:
    """KEYS[1..5] of every script that changes an existing hold (refresh, release, expire,
    confirm): the hold, its slot's cells and held set, the expiry set, the user's set."""
    return [keys.hold(hold_id), keys.cells(slot), keys.held(slot), keys.holds, keys.user(user_id)]


def _span_tail(
    keys: VenueKeys, slot: str, user_id: str, slots: list[str] | None, *fixed: str
) -> list[str]:
    """The keys after a hold script's own: the covers hash of the first slot, the user's guest
    hash, any ``fixed`` keys the script names next, then the following slots' cells and held
    keys (lua/include/slot_keys.lua)."""
    following = following_slot_keys(keys, slots or [slot])
    return [keys.covers(slot), keys.guest(user_id), *fixed, *following]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _wrote(reply: list[Any]) -> bool:
    """Raise for a refusal; True when the script changed something (OK, not a replay)."""
    raise_for_status(reply)
    return int(reply[0]) == Status.OK


class Scripts:
    """The scripts, registered once; each method is one atomic Redis call."""

    def __init__(
        self,
        redis: AnyRedis,
        *,
        feed_maxlen: int,
        tombstone_seconds: int,
        pipeline: PipelinedConnection | ClusterPipelines | None = None,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
    ) -> None:
        self._redis = redis
        # Durable confirms: confirm, cancel and book WAIT for this many replicas (0: never).
        self._wait_replicas = wait_replicas
        self._wait_timeout_ms = wait_timeout_ms
        # Script calls go through the pipelined connection when there is one (one node).
        self._pipeline = pipeline
        self._feed_maxlen = feed_maxlen
        self._tombstone_ms = tombstone_seconds * 1000
        self._source = {name: read_script(name) for name in script_names()}
        # The token digest of an offer's hold (venue id, hold id): set by the services, as
        # hold tokens are MACs of their ids (holdsvc.identifiers.hold_token).
        self.offer_digest: Callable[[str, str], str] | None = None
        self._sha = {
            name: hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
            for name, text in self._source.items()
        }

    @property
    def pipelined(self) -> bool:
        """Whether script calls share the pipelining connection."""
        return self._pipeline is not None

    @property
    def shas(self) -> dict[str, str]:
        """Script name -> SHA-1 that EVALSHA uses."""
        return dict(self._sha)

    async def load(self) -> None:
        """Load every script into Redis (on every primary of a cluster)."""
        for text in self._source.values():
            # On a cluster redis-py sends SCRIPT LOAD to every primary.
            await self._redis.script_load(text)

    async def loaded(self) -> bool:
        """True when Redis answers and has every script."""
        flags = await self._redis.script_exists(*self._sha.values())
        return all(flags)

    async def _evalsha(self, name: str, keys: list[str], args: list[str | int]) -> Any:
        if self._pipeline is not None:
            return await self._pipeline.execute("EVALSHA", self._sha[name], len(keys), *keys, *args)
        return await self._redis.evalsha(self._sha[name], len(keys), *keys, *args)

    async def _call(self, name: str, keys: list[str], args: list[str | int]) -> list[Any]:
        try:
            reply = await self._evalsha(name, keys, args)
        except NoScriptError:
            # Redis lost its script cache (restart, failover, SCRIPT FLUSH): load and retry
            # once. Safe: a NOSCRIPT reply means the script did not run.
            await self.load()
            reply = await self._evalsha(name, keys, args)
        result = list(reply)
        raise_for_status(result)
        return result

    async def _call_durable(
        self, name: str, keys: list[str], args: list[str | int]
    ) -> tuple[list[Any], Replication]:
        """`_call`, then (when ``wait_replicas`` > 0 and the script wrote) a WAIT for the
        replicas on the same connection: how many acknowledged the write."""
        if not self._wait_replicas:
            return await self._call(name, keys, args), NO_WAIT
        reply, acknowledged = await eval_then_wait(
            self._redis,
            ("EVALSHA", self._sha[name], len(keys), *keys, *args),
            slot_key=keys[0],
            replicas=self._wait_replicas,
            timeout_ms=self._wait_timeout_ms,
            load=self.load,
            check=_wrote,
        )
        return reply, Replication(wanted=self._wait_replicas, acknowledged=acknowledged)

    async def waitlist_heads(self, keys: VenueKeys, slots: list[str]) -> list[str]:
        """The users heading each need of the slots' waitlists (waitlist_heads.lua)."""
        reply = await self._call(
            "waitlist_heads",
            [
                keys.waitlist,
                *(
                    key
                    for slot in slots
                    for key in (keys.waitlist_waiting(slot), keys.waitlist_capped(slot))
                ),
            ],
            [WAITLIST_USERS_PER_NEED, WAITLIST_MAX_NEEDS, WAITLIST_MARKED_NAMED],
        )
        return [_text(user) for user in reply[2:]]

    def waitlist_block(self, keys: VenueKeys, reach: WaitlistReach) -> tuple[list[str], str]:
        """KEYS and the last ARGV of the waitlist block (lua/include/waitlist_offer.lua) for
        ``reach``, with fresh offer hold ids when its users were read."""
        digest_of = self.offer_digest
        # Without a way to sign offers (a tool built without the hold secret) none is made.
        offers = reach.offers and reach.read and digest_of is not None
        count = min(len(reach.users), WAITLIST_OFFERS_PER_STEP) if offers else 0
        hold_ids = [new_hold_id() for _ in range(count)]
        block_keys = [
            keys.venue,
            keys.units,
            keys.units_by_fit,
            keys.slots,
            keys.holds,
            keys.feed,
            keys.waitlist,
            keys.seat_index,
            keys.combinations,
            keys.combinations_by_fit,
            keys.waitlist_slots,
            keys.waitlist_ended,
            *(
                key
                for slot in reach.slots
                for key in (
                    keys.waitlist_waiting(slot),
                    keys.waitlist_capped(slot),
                    keys.waitlist_queue(slot),
                    keys.waitlist_live(slot),
                    keys.waitlist_users(slot),
                    keys.covers(slot),
                )
            ),
            *(key for slot in reach.cells for key in (keys.cells(slot), keys.held(slot))),
            *(keys.hold(hold_id) for hold_id in hold_ids),
            *(key for user in reach.users for key in (keys.user(user), keys.guest(user))),
        ]
        spec = {
            "slots": reach.slots,
            "cells": reach.cells,
            "offers": [
                [hold_id, digest_of(keys.venue_id, hold_id)]
                for hold_id in hold_ids
                if digest_of is not None
            ],
            "users": reach.users,
            "read": reach.read,
        }
        return block_keys, json.dumps(spec, ensure_ascii=False)

    async def _with_waitlist(
        self,
        keys: VenueKeys,
        reach: WaitlistReach,
        call: Callable[[list[str], str], Awaitable[_Reply]],
    ) -> _Reply:
        """Run ``call`` with the waitlist block of ``reach``; when the script answers that
        waiting entries need keys the block lacks (nothing changed then), read who heads
        their waitlists and call again with them."""
        for _ in range(WAITLIST_KEY_ROUNDS):
            block_keys, block = self.waitlist_block(keys, reach)
            try:
                return await call(block_keys, block)
            except WaitlistKeysNeeded as needed:
                reach = await self._widen(keys, reach, needed)
        raise RuntimeError("the waitlists in reach kept changing")  # pragma: no cover

    async def _widen(
        self, keys: VenueKeys, reach: WaitlistReach, needed: WaitlistKeysNeeded
    ) -> WaitlistReach:
        slots = _union(reach.slots, needed.slots)
        heads = await self.waitlist_heads(keys, slots)
        return WaitlistReach(
            slots=slots,
            cells=_union(reach.cells, needed.cells),
            users=_union(reach.users, heads),
            read=True,
            offers=reach.offers,
        )

    async def offer_waiting(self, keys: VenueKeys) -> int:
        """Offer free cells to the waitlists of every slot with waiting entries (offer.lua
        per slot): capacity grew without a cell being freed (a table added or enlarged, a
        combination made, rules relaxed). Returns how many offers were made."""
        made = 0
        for listed in await self._redis.zrange(keys.waitlist_slots, 0, -1):
            reply = await self._with_waitlist(
                keys,
                WaitlistReach.own(_text(listed)),
                lambda block_keys, block: self._call(
                    "offer", block_keys, [self._feed_maxlen, block]
                ),
            )
            made += int(reply[2])
        return made

    async def join(
        self,
        keys: VenueKeys,
        *,
        slot: str,
        entry_id: str,
        token_digest: str,
        user_id: str,
        need: int,
        fields: dict[str, str | None],
        group: int | None = None,
    ) -> Joined:
        """Add a waitlist entry to ``slot``; offered at once when what it asks is free.
        ``group``: entries of one group fit the same free cells (default: ``need``)."""
        # Who heads the waitlist is read only when the script says what was asked is free
        # now (older entries, their users at the cap say, may head the offer's walk).
        reach = WaitlistReach(slots=[slot], cells=[slot], users=[user_id])
        args: list[str | int] = [
            entry_id,
            token_digest,
            user_id,
            need,
            json.dumps(fields, ensure_ascii=False),
            self._feed_maxlen,
            need if group is None else group,
        ]
        reply = await self._with_waitlist(
            keys, reach, lambda block_keys, block: self._call("join", block_keys, [*args, block])
        )
        return Joined(
            seq=int(reply[2]),
            position=int(reply[3]),
            offer_hold_id=_text(reply[4]),
            now_ms=int(reply[1]),
        )

    async def leave(
        self,
        keys: VenueKeys,
        *,
        slot: str,
        entry_id: str,
        token_digest: str,
        user_id: str,
        offer_hold_id: str,
    ) -> Changed:
        """The entry leaves its waitlist; an open offer is released and passed on.

        Raises:
            Stale: the entry's offer is not ``offer_hold_id`` any more: read, call again.
        """
        own = [keys.hold(offer_hold_id or "-"), keys.user(user_id)]
        args: list[str | int] = [
            entry_id,
            token_digest,
            offer_hold_id,
            self._feed_maxlen,
            self._tombstone_ms,
        ]
        # The entry's user: its guest hash is an index an open offer may be in.
        reach = WaitlistReach(slots=[slot], cells=[slot], users=[user_id])
        reply = await self._with_waitlist(
            keys,
            reach,
            lambda block_keys, block: self._call("leave", [*own, *block_keys], [*args, block]),
        )
        return Changed(changed=int(reply[0]) == Status.OK, now_ms=int(reply[1]))

    async def hold(
        self,
        keys: VenueKeys,
        *,
        hold_id: str,
        token_digest: str,
        user_id: str,
        slot: str,
        party_size: int,
        units: list[str],
        count: int,
        idempotency_key: str | None,
        fingerprint: str,
        pick: SeatPick | None = None,
        rules: BookingRules = PLAIN,
        slot_ids: list[str] | None = None,
        slot_minutes: int = 60,
    ) -> HoldPlaced:
        """Place a hold on ``units`` (or the best-fitting ``count`` units) of one slot; with
        ``rules`` that are rich, on one table or combination for ``slot_ids``; ``pick``: best
        available from a seat map's free-run index instead (events only, never rich).

        Raises:
            Stale: the venue's rules are not ``rules.version`` any more (nothing changed).
        """
        idem_key = keys.idempotency(user_id, idempotency_key or "")
        spanned = slot_ids or [slot]
        rich_keys: list[str] = []
        rich_args: list[str | int] = []
        if rules.rich:
            rich_keys = [
                keys.combinations,
                keys.combinations_by_fit,
                keys.covers(slot),
                keys.guest(user_id),
                *following_slot_keys(keys, spanned),
            ]
            rich_args = rules.script_args(spanned, slot_minutes)
        reply = await self._call(
            "hold",
            [
                keys.venue,
                keys.slots,
                keys.cells(slot),
                keys.held(slot),
                keys.holds,
                keys.user(user_id),
                keys.hold(hold_id),
                idem_key,
                keys.units,
                keys.units_by_fit,
                keys.feed,
                # A restaurant's rich keys, else the seat index (an event's rules are never rich).
                *(rich_keys or [keys.seat_index]),
            ],
            [
                hold_id,
                token_digest,
                user_id,
                slot,
                party_size,
                encode_units(units),
                count,
                fingerprint if idempotency_key else "",
                self._feed_maxlen,
                rules.version,
                *(["rich", *rich_args] if rules.rich else []),
                *(["seats", pick.section, "1" if pick.together else "0"] if pick else []),
            ],
        )
        if int(reply[0]) == Status.REPLAYED:
            return HoldPlaced(replayed=True, hold_id=_text(reply[2]), now_ms=int(reply[1]))
        return HoldPlaced(
            replayed=False,
            hold_id=_text(reply[2]),
            now_ms=int(reply[1]),
            created_ms=int(reply[3]),
            expires_ms=int(reply[4]),
            units=tuple(decode_units(_text(reply[5]))),
        )

    async def refresh(
        self,
        keys: VenueKeys,
        *,
        hold_id: str,
        token_digest: str,
        slot: str,
        user_id: str,
        slots: list[str] | None = None,
    ) -> Refreshed:
        """Extend a live hold (bearer only, bounded by the venue's max_hold_seconds);
        ``slots``: every slot its booking spans (default: ``slot`` alone)."""
        reply = await self._call(
            "refresh",
            [
                *_hold_keys(keys, hold_id, slot, user_id),
                keys.venue,
                keys.feed,
                *_span_tail(keys, slot, user_id, slots),
            ],
            [hold_id, token_digest, self._feed_maxlen],
        )
        return Refreshed(now_ms=int(reply[1]), created_ms=int(reply[2]), expires_ms=int(reply[3]))

    async def release(
        self,
        keys: VenueKeys,
        *,
        hold_id: str,
        token_digest: str,
        slot: str,
        user_id: str,
        slots: list[str] | None = None,
    ) -> Changed:
        """Release a hold (bearer only); idempotent. ``slots``: every slot it spans."""
        own = [
            *_hold_keys(keys, hold_id, slot, user_id),
            keys.feed,
            *_span_tail(keys, slot, user_id, slots, keys.seat_index),
        ]
        args: list[str | int] = [hold_id, token_digest, self._feed_maxlen, self._tombstone_ms]
        reply = await self._with_waitlist(
            keys,
            WaitlistReach.own(slot),
            lambda block_keys, block: self._call("release", [*own, *block_keys], [*args, block]),
        )
        return Changed(changed=int(reply[0]) == Status.OK, now_ms=int(reply[1]))

    async def expire(
        self,
        keys: VenueKeys,
        *,
        hold_id: str,
        slot: str,
        user_id: str,
        slots: list[str] | None = None,
    ) -> Changed:
        """Expire a lapsed hold (sweeper); a no-op when it is live or already ended.
        ``slots``: every slot it spans."""
        own = [
            *_hold_keys(keys, hold_id, slot, user_id),
            keys.feed,
            *_span_tail(keys, slot, user_id, slots, keys.seat_index),
        ]
        args: list[str | int] = [hold_id, self._feed_maxlen, self._tombstone_ms]
        reply = await self._with_waitlist(
            keys,
            WaitlistReach.own(slot),
            lambda block_keys, block: self._call("expire", [*own, *block_keys], [*args, block]),
        )
        return Changed(changed=int(reply[0]) == Status.OK, now_ms=int(reply[1]))

    async def expire_orphan(
        self, keys: VenueKeys, *, hold_id: str, user_id: str, cells: dict[str, list[str]]
    ) -> Changed:
        """Free the lapsed cells of a hold whose record is gone (sweeper); ``cells`` are the
        units found on each slot, re-checked in the script. Also cleans the indexes."""
        slot_keys: list[str] = []
        slot_args: list[str | int] = []
        for slot, units in cells.items():
            slot_keys += [keys.cells(slot), keys.held(slot)]
            slot_args += [slot, json.dumps(units)]
        own = [keys.hold(hold_id), keys.holds, keys.user(user_id), keys.feed, *slot_keys]
        args: list[str | int] = [hold_id, self._feed_maxlen, user_id, *slot_args]
        # The waitlist of the first slot it may free; the script asks for any other in reach.
        reach = WaitlistReach.own(next(iter(cells))) if cells else WaitlistReach([], [], [])
        reply = await self._with_waitlist(
            keys,
            reach,
            lambda block_keys, block: self._call(
                "expire_orphan", [*own, keys.seat_index, *block_keys], [*args, block]
            ),
        )
        return Changed(changed=int(reply[0]) == Status.OK, now_ms=int(reply[1]))

    async def confirm(
        self,
        keys: VenueKeys,
        *,
        venue_id: str,
        hold_id: str,
        token_digest: str,
        slot: str,
        user_id: str,
        reference: str,
        manage_digest: str,
        name: str,
        phone: str,
        email: str,
        notes: str,
        slots: list[str] | None = None,
    ) -> Confirmed:
        """Consume a live hold into a reservation; again on the same hold: the same one.
        ``slots``: every slot the hold spans."""
        tail = _span_tail(keys, slot, user_id, slots)
        # No offers: a confirm frees nothing; the block's slot is the offer's (if it is one).
        block_keys, block = self.waitlist_block(keys, WaitlistReach.own(slot, offers=False))
        reply, replication = await self._call_durable(
            "confirm",
            [
                *_hold_keys(keys, hold_id, slot, user_id),
                keys.reservation(reference),
                keys.reservations_by_start,
                keys.reservations_by_phone(phone),
                keys.slots,
                keys.venue,
                keys.feed,
                tail[0],
                tail[1],
                keys.guest_phone(phone),
                *tail[2:],
                *block_keys,
            ],
            [
                hold_id,
                token_digest,
                reference,
                manage_digest,
                name,
                phone,
                email,
                notes,
                venue_id,
                self._feed_maxlen,
                self._tombstone_ms,
                block,
            ],
        )
        return Confirmed(
            replayed=int(reply[0]) == Status.REPLAYED,
            reference=_text(reply[2]),
            now_ms=int(reply[1]),
            replication=replication,
        )

    async def cancel(
        self,
        keys: VenueKeys,
        *,
        reference: str,
        slot: str,
        manage_digest: str,
        actor: str | None,
        record: dict[str, str] | None = None,
    ) -> Changed:
        """Cancel a reservation and free its cells; idempotent. ``record``: its fields as
        read (the keys of every slot it spans and of its rule indexes are built from them).

        ``slot`` is where the caller read it; ``manage_digest`` the digest of the presented
        manage token ('' when none), needed unless staff act (``actor``: ``admin`` or a staff
        token's id, written to the feed; None for the guest).

        Raises:
            Stale: it moved since ``slot`` was read; read it again and call again.
        """
        own = [
            keys.reservation(reference),
            keys.cells(slot),
            keys.feed,
            keys.covers(slot),
            keys.guest((record or {}).get("user", "")),
            keys.guest_phone((record or {}).get("phone", "")),
            keys.seat_index,
            *following_slot_keys(keys, record_slots(record) if record else [slot]),
        ]
        args: list[str | int] = [reference, slot, manage_digest, actor or "", self._feed_maxlen]
        reply, replication = await self._with_waitlist(
            keys,
            WaitlistReach.own(slot),
            lambda block_keys, block: self._call_durable(
                "cancel", [*own, *block_keys], [*args, block]
            ),
        )
        return Changed(
            changed=int(reply[0]) == Status.OK, now_ms=int(reply[1]), replication=replication
        )

    async def repair(self, keys: VenueKeys, *, slot: str, unit: str, reference: str) -> Changed:
        """Free a cell ``reference`` reserves without owning it (cancelled, missing, or
        claiming another cell), checked again in the script; False when it is not stuck."""
        reply = await self._call(
            "repair",
            [keys.cells(slot), keys.reservation(reference), keys.feed, keys.seat_index],
            [slot, unit, reference, self._feed_maxlen],
        )
        return Changed(changed=int(reply[0]) == Status.OK, now_ms=int(reply[1]))

    async def seat_counts(
        self, keys: VenueKeys, *, slot: str, fields: list[str]
    ) -> tuple[dict[str, str], list[str]]:
        """Seat-map index ``fields`` and the units of lapsed holds, from one snapshot."""
        reply = await self._call("seat_counts", [keys.seat_index, keys.held(slot)], list(fields))
        values = [_text(v) for v in reply[2]]
        return dict(zip(fields, values, strict=True)), [_text(u) for u in reply[3]]

    async def index_booking(
        self, keys: VenueKeys, *, kind: str, record_id: str, fields: dict[str, str]
    ) -> bool:
        """Put a live hold (``kind`` 'h') or reservation ('r') into the rule indexes the venue's
        rules ask for, from ``fields`` as read; False when there was nothing to do.

        Raises:
            Stale: it moved, or its phone changed, since ``fields`` were read.
        """
        record = keys.hold(record_id) if kind == "h" else keys.reservation(record_id)
        reply = await self._call(
            "index_booking",
            [
                record,
                keys.covers(fields.get("slot", "")),
                keys.guest(fields.get("user", "")),
                keys.guest_phone(fields.get("phone", "")),
                keys.slots,
                keys.venue,
            ],
            [
                kind,
                record_id,
                fields.get("slot", ""),
                fields.get("phone", "") if kind == "r" else "",
            ],
        )
        return int(reply[0]) == Status.OK

    async def available(self, keys: VenueKeys, *, slot: str) -> tuple[int, int]:
        """(free units, all units) of one slot, from one consistent snapshot."""
        reply = await self._call("available", [keys.cells(slot), keys.held(slot), keys.units], [])
        return int(reply[2]), int(reply[3])

    async def add_slots(
        self,
        keys: VenueKeys,
        *,
        grid_version: str,
        slots: list[tuple[str, int]],
        filled_through: str = "",
    ) -> SlotsAdded:
        """Add slots (ZADD NX) except those of closed dates; ``filled_through`` moves the
        rolling grid's marker.

        Raises:
            Stale: the venue's grid_version is not ``grid_version`` any more (nothing added).
        """
        pairs = [item for slot, start in slots for item in (slot, start)]
        reply = await self._call(
            "add_slots",
            [keys.venue, keys.slots, keys.closures],
            [grid_version, filled_through, *pairs],
        )
        return SlotsAdded(created=int(reply[2]), total=int(reply[3]))

    async def remove_slot(self, keys: VenueKeys, *, slot: str) -> bool | None:
        """Remove one slot unless a live hold or a reservation is on it: True when removed,
        False when kept, None when it was not in the grid.

        Raises:
            NeedsSweep: lapsed holds sit on its cells; expire them, then call again.
        """
        reply = await self._call(
            "remove_slot", [keys.slots, keys.cells(slot), keys.held(slot)], [slot]
        )
        if int(reply[0]) == Status.REPLAYED:
            return None
        return int(reply[2]) == 1

    async def remove_table(self, keys: VenueKeys, *, unit: str, open_slots: list[str]) -> None:
        """Remove a table unless a booking or live hold is on it in a slot not yet ended;
        ``open_slots``: every slot of the grid the caller read as not yet ended.

        Raises:
            NotFound: no such table.
            TableInUse: bookings or holds stand in the way (named in the detail).
            NeedsSweep: lapsed holds sit on its cells; expire them, then call again.
            Stale: the grid gained a slot not in ``open_slots``: read it again.
        """
        await self._call(
            "remove_table",
            [
                keys.slots,
                keys.units,
                keys.unit_labels,
                keys.units_by_fit,
                keys.units_removed,
                keys.venue,
                *(keys.cells(slot) for slot in open_slots),
            ],
            [unit, *open_slots],
        )

    async def edit_table(
        self,
        keys: VenueKeys,
        *,
        unit: str,
        capacity: int | None,
        label: str | Omitted | None,
        open_slots: list[str],
    ) -> None:
        """Change a table's capacity (None: kept) and label (OMITTED: kept, None: cleared);
        a smaller capacity only while nothing is booked or held on it in a slot not yet ended.

        Raises:
            NotFound, TableInUse, NeedsSweep, Stale: as for ``remove_table``.
        """
        action = "keep" if label is OMITTED else ("clear" if label is None else "set")
        await self._call(
            "edit_table",
            [
                keys.slots,
                keys.units,
                keys.unit_labels,
                keys.units_by_fit,
                keys.venue,
                *(keys.cells(slot) for slot in open_slots),
            ],
            [
                unit,
                "" if capacity is None else capacity,
                action,
                label if isinstance(label, str) else "",
                *open_slots,
            ],
        )

    async def throttle(self, rate_key: str, *, interval_us: int, window_us: int) -> Throttled:
        """Count one request against a client's rate limit.

        Raises:
            RateLimited: the client is over its limit (nothing was counted).
        """
        reply = await self._call("throttle", [rate_key], [interval_us, window_us])
        return Throttled(remaining=int(reply[2]), reset_us=int(reply[3]))

    async def consumer_save(
        self, keys: VenueKeys, name: str, *, token: str, position: str, lease_ms: int
    ) -> None:
        """Save a feed consumer's position (``""``: keep it) and renew (or, at 0, release)
        its lease, only while ``token`` holds that lease.

        Raises:
            LeaseLost: another worker holds the lease now; nothing changed.
        """
        await self._call(
            "consumer_save",
            [keys.consumer_lease(name), keys.consumers],
            [token, name, position, lease_ms],
        )

    async def reminder_sent(
        self, keys: VenueKeys, *, token: str, reference: str, due_ms: int
    ) -> None:
        """Record a sent reminder (unless it moved meanwhile), under the reminders' lease.

        Raises:
            LeaseLost: another worker holds the lease now; nothing changed.
        """
        await self._call(
            "reminder_sent",
            [keys.consumer_lease(REMINDERS), keys.reminders],
            [token, reference, due_ms],
        )

    async def book(
        self,
        keys: VenueKeys,
        *,
        venue_id: str,
        reference: str,
        manage_digest: str,
        slot: str,
        party_size: int,
        units: list[str],
        count: int,
        fields: dict[str, str],
        actor: str,
        rules: BookingRules = PLAIN,
        slot_ids: list[str] | None = None,
        slot_minutes: int = 60,
    ) -> Booked:
        """A staff booking by ``actor`` (``admin`` or a staff token's id): claim cells as a
        confirmed reservation with no hold; with rich ``rules``, one table or combination for
        ``slot_ids``.

        Raises:
            Stale: the venue's rules are not ``rules.version`` any more (nothing changed).
        """
        spanned = slot_ids or [slot]
        rich_keys: list[str] = []
        rich_args: list[str | int] = []
        if rules.rich:
            rich_keys = [
                keys.combinations,
                keys.combinations_by_fit,
                keys.covers(slot),
                keys.guest_phone(fields["phone"]),
                *following_slot_keys(keys, spanned),
            ]
            rich_args = rules.script_args(spanned, slot_minutes)
        reply, replication = await self._call_durable(
            "book",
            [
                keys.venue,
                keys.slots,
                keys.cells(slot),
                keys.units,
                keys.units_by_fit,
                keys.reservation(reference),
                keys.reservations_by_start,
                keys.reservations_by_phone(fields["phone"]),
                keys.feed,
                *rich_keys,
            ],
            [
                reference,
                manage_digest,
                slot,
                party_size,
                encode_units(units),
                count,
                json.dumps(fields),
                venue_id,
                self._feed_maxlen,
                actor,
                rules.version,
                *rich_args,
            ],
        )
        return Booked(reference=_text(reply[2]), replication=replication)

    async def change(
        self,
        keys: VenueKeys,
        *,
        reference: str,
        current_slot: str,
        current_phone: str,
        fields: dict[str, str],
        target_slot: str | None,
        target_unit: str | None,
        party_size: int | None,
        actor: str | None,
        manage_digest: str,
        rules: BookingRules = PLAIN,
        record: dict[str, str] | None = None,
        target_ids: list[str] | None = None,
        slot_minutes: int = 60,
    ) -> Changed:
        """Change fields and/or move a reservation, in one step. With ``target_ids`` (the
        slots it will span; the rich path) ``record`` is what the caller read.

        ``current_slot`` and ``current_phone`` are what the caller read (some keys are built
        from them); ``manage_digest`` the digest of the presented manage token ('' when none),
        needed unless staff act (``actor``: ``admin`` or a staff token's id; None: the guest).

        Raises:
            Stale: the slot or phone this change needs moved since they were read; read them
                again and call again.
        """
        new_phone = fields.get("phone", current_phone)
        move_to = target_slot or current_slot
        rich_keys: list[str] = []
        rich_args: list[str | int] = []
        if target_ids is not None:
            stored = record or {}
            rich_keys = [
                keys.combinations,
                keys.combinations_by_fit,
                keys.covers(current_slot),
                keys.covers(move_to),
                keys.guest(stored.get("user", "")),
                keys.guest_phone(current_phone),
                keys.guest_phone(new_phone),
                *following_slot_keys(keys, record_slots(stored) if stored else [current_slot]),
                *following_slot_keys(keys, target_ids),
            ]
            rich_args = rules.script_args(target_ids, slot_minutes)
        own = [
            keys.reservation(reference),
            keys.cells(current_slot),
            keys.cells(move_to),
            keys.slots,
            keys.units,
            keys.units_by_fit,
            keys.reservations_by_start,
            keys.reservations_by_phone(current_phone),
            keys.reservations_by_phone(new_phone),
            keys.venue,
            keys.feed,
            *rich_keys,
        ]
        args: list[str | int] = [
            reference,
            current_slot,
            current_phone,
            json.dumps(fields),
            "1" if target_slot is not None or target_unit is not None else "0",
            move_to,
            target_unit or "",
            "" if party_size is None else party_size,
            actor or "",
            manage_digest,
            self._feed_maxlen,
            rules.version,
            *rich_args,
        ]
        reply = await self._with_waitlist(
            keys,
            WaitlistReach.own(current_slot),
            lambda block_keys, block: self._call("change", [*own, *block_keys], [*args, block]),
        )
        return Changed(changed=True, now_ms=int(reply[1]))

    async def archive(
        self,
        keys: VenueKeys,
        *,
        slot: str,
        cutoff_ms: int,
        cells: dict[str, str],
        reservations: list[ArchivedReservation],
    ) -> Archived:
        """Remove an ended slot with its cells, reservations and their index entries, if it
        is still exactly as read (``cells``, ``reservations``: every one starting in it).

        Raises:
            UnitUnavailable: a live hold sits on the slot (kept).
            NeedsSweep: lapsed holds sit on it: expire them, read it again, retry.
            Stale: the slot or its reservations changed since they were read.
            NotFound: no such venue, or the slot is not in the grid (any more).
        """
        phones = sorted({r.fields.get("phone", "") for r in reservations})
        index = {phone: n for n, phone in enumerate(phones, start=1)}
        expected = {
            "cells": cells,
            "reservations": [
                {"ref": r.reference, "phone": index[r.fields.get("phone", "")], "fields": r.fields}
                for r in reservations
            ],
        }
        reply = await self._call(
            "archive",
            [
                keys.venue,
                keys.slots,
                keys.cells(slot),
                keys.held(slot),
                keys.reservations_by_start,
                *(keys.reservation(r.reference) for r in reservations),
                *(keys.reservations_by_phone(phone) for phone in phones),
                keys.waitlist,
                keys.waitlist_ended,
                keys.waitlist_slots,
                keys.waitlist_waiting(slot),
                keys.waitlist_capped(slot),
                keys.waitlist_queue(slot),
                keys.waitlist_live(slot),
                keys.waitlist_users(slot),
                keys.seat_index,
            ],
            [slot, cutoff_ms, json.dumps(expected, ensure_ascii=False)],
        )
        removed = int(reply[0]) == Status.OK
        return Archived(
            removed=removed, reservations=int(reply[2]) if removed else 0, now_ms=int(reply[1])
        )
