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

from holdsvc.clock import redis_now_ms
from holdsvc.errors import NeedsSweep
from holdsvc.keys import Keys
from holdsvc.metrics import Metrics
from holdsvc.scripts import AnyRedis, Scripts
from holdsvc.venues import VenueKind

log = logging.getLogger(__name__)


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

    async def expire_holds(self, venue_id: str, hold_ids: list[str]) -> int:
        """Expire these holds if they have lapsed; how many this call expired."""
        keys = self._keys.of(venue_id)
        pipe = self._redis.pipeline(transaction=False)
        for hold_id in hold_ids:
            pipe.hmget(keys.hold(hold_id), ["slot", "user"])
        owners = await pipe.execute()
        gone = [h for h, (slot, user) in zip(hold_ids, owners, strict=True) if not (slot and user)]
        if gone:
            # The records are gone: only the sweeper's index may still name them.
            await self._redis.zrem(keys.holds, *gone)
        # All at once: the script calls share one pipelined write.
        results = await asyncio.gather(
            *(
                self._scripts.expire(keys, hold_id=hold_id, slot=slot, user_id=user)
                for hold_id, (slot, user) in zip(hold_ids, owners, strict=True)
                if slot and user
            )
        )
        expired = sum(1 for result in results if result.changed)
        for _ in range(expired):
            self._metrics.expired()
        return expired

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


async def after_sweeping(sweeper: Sweeper, venue_id: str, claim: Callable[[], Awaitable[T]]) -> T:
    """Run a claiming script; when lapsed holds sit on its cells, expire them and run it again.

    The lapsed hold gets its own 'expired' entry before the new claim's, so the feed never
    shows a cell taken twice.
    """
    for attempt in range(MAX_SWEEP_RETRIES + 1):
        try:
            return await claim()
        except NeedsSweep as lapsed:
            if attempt == MAX_SWEEP_RETRIES:
                raise
            await sweeper.expire_holds(venue_id, lapsed.hold_ids)
    raise AssertionError("unreachable")  # pragma: no cover
