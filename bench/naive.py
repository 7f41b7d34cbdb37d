"""The hot-spot workload, two ways: holdsvc's hold.lua, and the naive WATCH/MULTI hold that
people write instead (optimistic locking: watch the cell, read it, write in MULTI, retry).

Both write the same things (cell, hold record, expiry set, feed entry); both are correct —
the naive one pays for it in retries when many clients want the same few cells.
"""

from __future__ import annotations

import random
import secrets
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from holdsvc.errors import HoldsvcError
from holdsvc.keys import Keys, VenueKeys
from holdsvc.metrics import Metrics
from holdsvc.scripts import Scripts
from holdsvc.sweeper import Sweeper, after_sweeping

HOT_TABLES = 4
SLOT = "2030-01-01T20:00"
_scripts: dict[int, tuple[Scripts, Sweeper]] = {}


async def seed_hot_venue(redis: Redis, name: str) -> VenueKeys:
    """A venue with four tables in one slot; holds lapse after one second."""
    venue = Keys("bench").of(f"HOT{name.upper()}")
    await redis.hset(
        venue.venue,
        mapping={
            "kind": "restaurant",
            "bookings_open": "1",
            "hold_seconds": "1",
            "max_hold_seconds": "1",
            "max_holds_per_user": "1000",
        },
    )
    await redis.zadd(venue.slots, {SLOT: 1_893_528_000_000})
    tables: dict[Any, int] = {f"T{n}": 2 for n in range(1, HOT_TABLES + 1)}
    await redis.hset(venue.units, mapping=tables)
    await redis.zadd(venue.units_by_fit, {t: 2 * 1048576 + n for n, t in enumerate(tables, 1)})
    await _tools(redis)[0].load()
    return venue


async def script_hold(redis: Redis, venue: VenueKeys, user: str) -> str:
    """One hold through hold.lua, as the service places it: one round trip, plus one expiry
    when a lapsed hold still sits on the cell."""
    scripts, sweeper = _tools(redis)
    unit = f"T{random.randint(1, HOT_TABLES)}"
    hold_id = secrets.token_hex(8)

    async def claim() -> object:
        return await scripts.hold(
            venue,
            hold_id=hold_id,
            token_digest="digest",
            user_id=user,
            slot=SLOT,
            party_size=2,
            units=[unit],
            count=1,
            idempotency_key=None,
            fingerprint="",
        )

    try:
        await after_sweeping(sweeper, venue.base.split("{")[1].split("}")[0], claim)
    except HoldsvcError:
        return "taken"
    return "held"


def _tools(redis: Redis) -> tuple[Scripts, Sweeper]:
    found = _scripts.get(id(redis))
    if found is None:
        scripts = Scripts(redis, feed_maxlen=100_000, tombstone_seconds=60)
        found = _scripts[id(redis)] = (
            scripts,
            Sweeper(redis, Keys("bench"), scripts, Metrics(), batch=100),
        )
    return found


async def naive_hold(redis: Redis, venue: VenueKeys, user: str) -> str:
    """One hold the naive way: WATCH the cell, read it, MULTI/EXEC, retry on conflict."""
    unit = f"T{random.randint(1, HOT_TABLES)}"
    cells = venue.cells(SLOT)
    hold_id = secrets.token_hex(8)
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(cells)
                state = await pipe.hget(cells, unit)
                now = int(time.time() * 1000)  # the app's clock: a second clock, the usual way
                if state is not None and int(str(state).rsplit("|", 1)[1]) > now:
                    await pipe.unwatch()  # type: ignore[no-untyped-call]
                    return "taken"
                expires = now + 1000
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.hset(cells, unit, f"h|{hold_id}|{expires}")
                pipe.hset(
                    venue.hold(hold_id),
                    mapping={"user": user, "slot": SLOT, "units": unit, "expires": expires},
                )
                pipe.zadd(venue.holds, {hold_id: expires})
                pipe.xadd(
                    venue.feed, {"event": "held", "hold": hold_id}, maxlen=100_000, approximate=True
                )
                await pipe.execute()
                return "held"
            except WatchError:
                continue
