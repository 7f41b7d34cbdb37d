"""The rolling grid: every restaurant with ``horizon_days`` > 0 keeps slots from today to today
+ ``horizon_days`` in its grid, following its week and closures, without any request.

Every worker runs it. A pass reads one small field list per restaurant (its horizon, zone, grid
version and ``grid_filled`` marker, ``<grid version>|<date>``): when the marker of the current
version already reaches the horizon's last day there is nothing to do. Otherwise the missing
days are added by add_slots.lua (ZADD NX: workers filling at once never create a slot twice)
and the marker moves forward in the same step, never back, so workers never undo each other.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from redis.exceptions import RedisClusterException, RedisError

from holdsvc import slots as timegrid
from holdsvc.clock import redis_now_ms
from holdsvc.errors import HoldsvcError
from holdsvc.grid import Grid
from holdsvc.keys import Keys
from holdsvc.scripts import AnyRedis
from holdsvc.venues import VenueKind

log = logging.getLogger(__name__)

# What a pass reads per restaurant, in this order.
FIELDS = ("horizon_days", "grid_version", "grid_filled", "timezone", "utc_offset_minutes")


def _zone(name: str | None, offset: str | None) -> tzinfo:
    if name:
        return ZoneInfo(name)  # cached by zoneinfo: no file read per pass
    return timegrid.venue_zone({"utc_offset_minutes": offset or "0"})


def due(row: list[str | None], now_ms: int) -> tuple[date, date] | None:
    """The dates a restaurant's grid still lacks (first, last), from its `FIELDS` as of
    ``now_ms``; None when the horizon is off or already filled."""
    horizon, version, marker, zone_name, offset = row
    if not horizon or int(horizon) <= 0:
        return None
    today = datetime.fromtimestamp(now_ms / 1000, _zone(zone_name, offset)).date()
    last = today + timedelta(days=int(horizon))
    filled_version, _, filled = (marker or "").partition("|")
    if filled and filled_version == (version or "0"):
        if filled >= last.isoformat():
            return None
        return max(today, date.fromisoformat(filled) + timedelta(days=1)), last
    return today, last


class RollingGrid:
    """Keeps every restaurant's horizon filled; one `pass_once` per interval."""

    def __init__(self, redis: AnyRedis, keys: Keys, grid: Grid) -> None:
        self._redis = redis
        self._keys = keys
        self._grid = grid

    async def pass_once(self) -> int:
        """Fill what every restaurant's horizon lacks; how many slots this pass created."""
        venue_ids: list[str] = await self._redis.zrange(
            self._keys.venues(VenueKind.RESTAURANT), 0, -1
        )
        if not venue_ids:
            return 0
        now = await redis_now_ms(self._redis)
        pipe = self._redis.pipeline(transaction=False)
        for venue_id in venue_ids:
            pipe.hmget(self._keys.of(venue_id).venue, FIELDS)
        rows: list[list[str | None]] = await pipe.execute()
        created = 0
        for venue_id, row in zip(venue_ids, rows, strict=True):
            dates = due(row, now)
            if dates is not None:
                created += await self._fill(venue_id, *dates)
        return created

    async def _fill(self, venue_id: str, first: date, last: date) -> int:
        try:
            made, _ = await self._grid.fill(venue_id, first, last, filled_through=last.isoformat())
        except HoldsvcError as error:
            # One restaurant (gone meanwhile, its week changing under us) never stops the pass.
            log.warning("rolling grid of %s skipped: %s", venue_id, error.detail)
            return 0
        return made

    async def run(self, interval: float) -> None:
        """Fill forever, every ``interval`` seconds; Redis outages are logged and waited out."""
        while True:
            try:
                await self.pass_once()
            except (RedisError, RedisClusterException, OSError) as error:
                log.warning("rolling grid pass failed, retrying: %s", type(error).__name__)
            await asyncio.sleep(interval)
