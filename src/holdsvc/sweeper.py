"""The expiry sweeper: ends lapsed holds so their cells and feed entries catch up.

Reads and writes already treat a lapsed hold as free (invariant 7); the sweeper makes it
official, with one 'expired' feed entry per hold. It runs in every worker: expire.lua
re-checks each hold, so workers sweeping at once never expire a hold twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import RedisClusterException, RedisError

from holdsvc.booking_rules import record_slots
from holdsvc.clock import redis_now_ms
from holdsvc.errors import NeedsSweep
from holdsvc.keys import Keys, VenueKeys
from holdsvc.metrics import Metrics
from holdsvc.scripts import AnyRedis, Changed, Scripts
from holdsvc.venues import VenueKind

log = logging.getLogger(__name__)
# A hold lives at most this long after its creation (max_hold_seconds is at most 604800):
# its cells are in slots that started after its expiry minus this.
MAX_HOLD_LIFETIME_MS = 604_800_000
# How far back the feed is read for the user of a hold whose record is gone.
ORPHAN_FEED_ENTRIES = 10_000
FEED_PAGE = 500


class Sweeper:
    """Finds lapsed holds by Redis time and expires them one script call each."""

    def __init__(
        self, redis: AnyRedis, keys: Keys, scripts: Scripts, metrics: Metrics, *, batch: int
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._metrics = metrics
        self._batch = batch

    async def expire_holds(
        self, venue_id: str, hold_ids: list[str], *, slot: str | None = None
    ) -> int:
        """Expire these holds if they have lapsed; how many this call expired.

        ``slot``: where a claim found them, to look for the cells of a hold whose record is
        gone when the sweeper's index no longer says when it lapsed.
        """
        keys = self._keys.of(venue_id)
        pipe = self._redis.pipeline(transaction=False)
        for hold_id in hold_ids:
            pipe.hmget(keys.hold(hold_id), ["slot", "user", "slots"])
        owners = await pipe.execute()
        gone = [h for h, (slot_id, _, _) in zip(hold_ids, owners, strict=True) if not slot_id]
        # All at once: the script calls share one pipelined write.
        results = await asyncio.gather(
            *(
                self._scripts.expire(
                    keys,
                    hold_id=hold_id,
                    slot=slot_id,
                    user_id=user,
                    slots=record_slots({"slot": slot_id, "slots": spanned or ""}),
                )
                for hold_id, (slot_id, user, spanned) in zip(hold_ids, owners, strict=True)
                if slot_id and user
            ),
            *(self._expire_orphan(keys, hold_id, slot) for hold_id in gone),
        )
        expired = sum(1 for result in results if result.changed)
        for _ in range(expired):
            self._metrics.expired()
        return expired

    async def _expire_orphan(self, keys: VenueKeys, hold_id: str, hint: str | None) -> Changed:
        """End a hold whose record is gone (evicted, deleted): free the cells that still name
        it, drop it from the indexes, and give it its 'expired' entry (expire_orphan.lua)."""
        expires = await self._redis.zscore(keys.holds, hold_id)
        expires_ms = int(expires) if expires is not None else None
        cells = await self._orphan_cells(keys, hold_id, expires_ms, hint)
        user = await self._orphan_user(keys, hold_id) if cells else ""
        ended = await self._scripts.expire_orphan(keys, hold_id=hold_id, user_id=user, cells=cells)
        if ended.changed:
            # Only eviction or a hand in Redis takes a live hold's record: worth a line.
            log.warning("hold %s had lost its record: its cells are free again", hold_id)
        return ended

    async def _orphan_cells(
        self, keys: VenueKeys, hold_id: str, expires_ms: int | None, hint: str | None
    ) -> dict[str, list[str]]:
        """Units that name this hold, by slot. Its cells carry its expiry, also their score in
        the slot's held set: with the expiry known, every slot that could hold them (starting
        after the earliest creation that expiry allows) is asked for units of that score;
        the slot a claim found it in is read whole."""
        candidates: list[str] = [hint] if hint else []
        if expires_ms is not None:
            earliest = expires_ms - MAX_HOLD_LIFETIME_MS
            candidates += await self._redis.zrangebyscore(keys.slots, f"({earliest}", "+inf")
        candidates = list(dict.fromkeys(candidates))
        pipe = self._redis.pipeline(transaction=False)
        for slot in candidates:
            if slot == hint or expires_ms is None:
                pipe.hgetall(keys.cells(slot))
            else:
                pipe.zrangebyscore(keys.held(slot), expires_ms, expires_ms)
        found: dict[str, list[str]] = {}
        prefix = f"h|{hold_id}|"
        for slot, reply in zip(candidates, await pipe.execute() if candidates else [], strict=True):
            units = (
                list(reply)
                if isinstance(reply, list)
                else [unit for unit, state in reply.items() if state.startswith(prefix)]
            )
            if units:
                found[slot] = units
        return found

    async def _orphan_user(self, keys: VenueKeys, hold_id: str) -> str:
        """The user of a hold whose record is gone, from its 'held' feed entry ("" when it is
        not among the newest ORPHAN_FEED_ENTRIES: orphans are found soon after they lapse)."""
        end = "+"
        for _ in range(ORPHAN_FEED_ENTRIES // FEED_PAGE):
            entries = await self._redis.xrevrange(keys.feed, end, "-", count=FEED_PAGE)
            for _, fields in entries:
                if fields.get("hold") == hold_id and fields.get("event") == "held":
                    return str(fields.get("user", ""))
            if len(entries) < FEED_PAGE:
                break
            end = f"({entries[-1][0]}"
        return ""

    async def sweep_once(self) -> int:
        """One pass over every venue, until none has lapsed holds left; how many it expired."""
        venue_ids: list[str] = []
        for kind in VenueKind:
            venue_ids += await self._redis.zrange(self._keys.venues(kind), 0, -1)
        expired = 0
        while venue_ids:
            now = await redis_now_ms(self._redis)
            pipe = self._redis.pipeline(transaction=False)
            for venue_id in venue_ids:
                pipe.zrangebyscore(
                    self._keys.of(venue_id).holds, "-inf", now, start=0, num=self._batch
                )
            busy: list[str] = []
            for venue_id, lapsed in zip(venue_ids, await pipe.execute(), strict=True):
                if lapsed:
                    expired += await self.expire_holds(venue_id, list(lapsed))
                if len(lapsed) == self._batch:
                    busy.append(venue_id)  # a full batch: there may be more right behind it
            venue_ids = busy
        return expired

    async def run(self, interval: float) -> None:
        """Sweep forever, every ``interval`` seconds; Redis outages are logged and waited out."""
        while True:
            try:
                await self.sweep_once()
            except (RedisError, RedisClusterException, OSError) as error:
                # (RedisClusterException: a cluster mid-failover, a slot not covered yet.)
                log.warning("sweep failed, retrying: %s", type(error).__name__)
            await asyncio.sleep(interval)


T = TypeVar("T")
MAX_SWEEP_RETRIES = 3


async def after_sweeping(
    sweeper: Sweeper,
    venue_id: str,
    claim: Callable[[], Awaitable[T]],
    *,
    slot: str | None = None,
) -> T:
    """Run a claiming script; when lapsed holds sit on its cells, expire them and run it again.

    The lapsed hold gets its own 'expired' entry before the new claim's, so the feed never
    shows a cell taken twice. ``slot``: the slot the claim is for, where the cells of a
    lapsed hold whose record is gone are looked for.
    """
    for attempt in range(MAX_SWEEP_RETRIES + 1):
        try:
            return await claim()
        except NeedsSweep as lapsed:
            if attempt == MAX_SWEEP_RETRIES:
                raise
            await sweeper.expire_holds(venue_id, lapsed.hold_ids, slot=slot)
    raise AssertionError("unreachable")  # pragma: no cover
