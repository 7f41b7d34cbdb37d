"""Fixing a restaurant's tables: change a label or capacity, remove a table (no HTTP here).

Both are one script each (edit_table.lua, remove_table.lua) that checks, by Redis time, that
no booking or live hold stands on the table in a slot that has not ended, and changes it in
the same step. The caller passes the grid's open slots as it read them; a script that finds
one more (the grid grew in between) answers STALE and the slots are read again.
"""

from __future__ import annotations

from holdsvc.clock import redis_now_ms
from holdsvc.errors import NotFound, Stale
from holdsvc.keys import Keys
from holdsvc.models import OMIT, Table, TablePatch
from holdsvc.scripts import OMITTED, AnyRedis, Omitted, Scripts
from holdsvc.sweeper import Sweeper, after_sweeping
from holdsvc.venues import FIT_SCALE, VenueKind, Venues

KIND = VenueKind.RESTAURANT


class Tables:
    """Edit and remove a restaurant's tables."""

    def __init__(
        self, redis: AnyRedis, keys: Keys, scripts: Scripts, venues: Venues, sweeper: Sweeper
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._venues = venues
        self._sweeper = sweeper

    async def _open_slots(self, venue_id: str) -> list[str]:
        """The grid's slots that have not ended by Redis time (read before the script, so a
        superset of what the script finds unless the grid grew)."""
        venue = await self._venues.load(venue_id, KIND)
        now = await redis_now_ms(self._redis)
        low = now - venue.slot_minutes * 60_000
        slots: list[str] = await self._redis.zrangebyscore(
            self._keys.of(venue_id).slots, f"({low}", "+inf"
        )
        return slots

    async def edit(self, venue_id: str, table_id: str, patch: TablePatch) -> Table:
        """Change a table's label (null clears it) and/or capacity; a smaller capacity only
        while nothing is booked or held on it in a slot that has not ended (TableInUse)."""
        keys = self._keys.of(venue_id)
        capacity = None if patch.capacity is OMIT else int(patch.capacity)
        label: str | Omitted | None = OMITTED if patch.label is OMIT else patch.label
        while True:
            slots = await self._open_slots(venue_id)

            async def act(slots: list[str] = slots) -> None:
                await self._scripts.edit_table(
                    keys, unit=table_id, capacity=capacity, label=label, open_slots=slots
                )

            try:
                await after_sweeping(self._sweeper, venue_id, act)
                break
            except Stale:
                continue
        if capacity is not None:
            # A larger table may seat a party on the waitlist: offered now (invariant 9).
            await self._scripts.offer_waiting(keys)
        return await self.one(venue_id, table_id)

    async def remove(self, venue_id: str, table_id: str) -> None:
        """Remove a table with no booking or live hold in a slot that has not ended; else
        TableInUse naming the references (and hold ids) in the way."""
        keys = self._keys.of(venue_id)
        while True:
            slots = await self._open_slots(venue_id)

            async def act(slots: list[str] = slots) -> None:
                await self._scripts.remove_table(keys, unit=table_id, open_slots=slots)

            try:
                await after_sweeping(self._sweeper, venue_id, act)
                return
            except Stale:
                continue

    async def one(self, venue_id: str, table_id: str) -> Table:
        """One table as it is now."""
        keys = self._keys.of(venue_id)
        score = await self._redis.zscore(keys.units_by_fit, table_id)
        label = await self._redis.hget(keys.unit_labels, table_id)
        if score is None:
            raise NotFound(f"No such unit: {table_id}")
        return Table(id=table_id, label=label, capacity=int(score) // FIT_SCALE)
