"""Waitlist benchmark: Redis time of one cancel with 0, 100 and 10 000 entries waiting.

A restaurant slot with a 2-seat table (reserved, then cancelled) and an 8-seat table (reserved
throughout). Before each cancel the slot's waitlist holds W entries, in one of three shapes:
  none       nobody waits at all: the cancel frees the table and offers nothing;
  fit        W entries of party 2: the first one fits and gets the offer (W = 0: one entry);
  need       W entries of party 8 (nothing free seats them), then one of party 2: the walk
             asks best fit once for party 8 and moves on;
  cap        W entries of party 2 whose users are at the cap (marked when they joined), then
             one whose user is not: the walk reads only the marked entries whose users
             the heads read named (the first 64 of the group), not all W.
  span       the restaurant books 2 hours on 1-hour slots (durations): the cancelled booking
             spans 19:00-21:00 and W entries of party 2 wait for 18:00, an earlier slot of
             the cancel's reach; the first one gets 18:00-20:00.
Each cancel is timed inside Redis (INFO commandstats: µs the server spent in EVALSHA, and how
many script calls): with no entry in reach a cancel is one call of cancel.lua; with some, its
first call answers WAITLIST_KEYS, the read-only waitlist_heads.lua names the users, and the
second call does the work. The heads read is also measured alone.
The offer is confirmed between runs, so every run cancels with the same W waiting.
Usage: .venv/bin/python -m bench.waitlist_bench [--runs R] [--sizes 0,100,10000]
       [--shapes none,fit,need,cap,span]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from holdsvc.connection import connect_redis
from holdsvc.keys import Keys
from holdsvc.metrics import Metrics
from holdsvc.models import (
    ConfirmInput,
    DurationRule,
    RestaurantInput,
    StaffBookingInput,
    TableInput,
    WaitlistInput,
)
from holdsvc.redis_server import EmbeddedRedis
from holdsvc.services import Services
from holdsvc.settings import Settings
from holdsvc.venues import VenueKind

DAY = "2031-03-03"
SLOT = f"{DAY}T19:00"
OTHER = f"{DAY}T12:00"
EARLY = f"{DAY}T18:00"
KIND = VenueKind.RESTAURANT
GUEST = ConfirmInput(name="Bench", phone="+12125550100")


async def venue(services: Services, span: bool) -> str:
    made = await services.restaurants.create(
        RestaurantInput(
            name="Bench",
            phone="+12125550100",
            timezone="UTC",
            opens="10:00",
            closes="22:00",
            max_holds_per_user=1,
            max_waitlist=10_000,
            max_days_ahead=3660,
            durations=[DurationRule(max_party=8, minutes=120)] if span else None,
        )
    )
    await services.restaurants.add_tables(made.id, [TableInput(capacity=2), TableInput(capacity=8)])
    await services.restaurants.add_slots(made.id, DAY, DAY)
    return made.id


async def book(services: Services, rid: str, table: str) -> str:
    made = await services.reservations.book(
        rid,
        StaffBookingInput(slot=SLOT, party_size=2, table_id=table, name="B", phone="+12125550100"),
        actor="admin",
    )
    return str(made.reference)


def entry_slot(shape: str) -> str:
    """The slot the shape's entries wait for."""
    return EARLY if shape == "span" else SLOT


async def join(services: Services, rid: str, user: str, party: int, slot: str = SLOT) -> str:
    body = WaitlistInput(user_id=user, slot=slot, party_size=party, name="W", phone="+12125550199")
    return str((await services.waitlist.join(rid, KIND, body)).id)


async def fill(services: Services, rid: str, shape: str, size: int) -> None:
    """W entries of the shape (and, for need and cap, the one that fits behind them)."""
    keys = Keys("hs").of(rid)
    for n in range(size):
        party = 8 if shape == "need" else 2
        entry_id = await join(services, rid, f"{shape}{n}", party, entry_slot(shape))
        if shape == "cap":
            # Then the user reached the cap (its one unit held elsewhere, written straight to
            # its cap set: ten thousand holds would need ten thousand tables) and a freeing
            # step passed the entry over: the mark that step writes.
            await services.redis.zadd(keys.user(f"cap{n}"), {f"elsewhere{n}|1": 9_999_999_999_999})
            entry = json.loads(await services.redis.hget(keys.waitlist, entry_id))
            await services.redis.hset(keys.waitlist, entry_id, json.dumps({**entry, "capped": 1}))
            score = await services.redis.zscore(keys.waitlist_waiting(SLOT), entry_id)
            await services.redis.zrem(keys.waitlist_waiting(SLOT), entry_id)
            await services.redis.zadd(keys.waitlist_capped(SLOT), {entry_id: score})


async def evalsha_us(redis: Redis, action: Any) -> tuple[int, int]:
    """µs Redis spent running scripts while ``action`` ran, and how many script calls
    (INFO commandstats: EVALSHA)."""
    await redis.config_resetstat()
    await action()
    info = await redis.info("commandstats")
    stats = info.get("cmdstat_evalsha", {})
    return int(stats.get("usec", 0)), int(stats.get("calls", 0))


async def scenario(services: Services, shape: str, size: int, runs: int) -> dict[str, float]:
    rid = await venue(services, span=shape == "span")
    await book(services, rid, "T2")
    reference = await book(services, rid, "T1")
    # need and cap: W waiting counts the entry behind them (max_waitlist is 10 000).
    await fill(services, rid, shape, size if shape == "fit" else max(size - 1, 0))
    keys = Keys("hs").of(rid)
    cancel_us: list[int] = []
    heads_us: list[int] = []
    calls: list[int] = []
    slot = entry_slot(shape)
    for run in range(runs):
        if shape != "none" and (shape != "fit" or size == 0):
            # The entry the cancel should serve, behind the W that it must pass.
            await join(services, rid, f"taker{run}", 2, slot)
        current = reference

        async def cancel(ref: str = current) -> None:
            await services.reservations.cancel(ref, admin=True)

        async def heads() -> None:
            await services.scripts.waitlist_heads(keys, [slot])

        # The read-only heads script alone, then the whole cancel (every script it ran).
        heads_alone, _ = await evalsha_us(services.redis, heads)
        whole, count = await evalsha_us(services.redis, cancel)
        heads_us.append(heads_alone)
        cancel_us.append(whole)
        calls.append(count)
        # The offer went out; confirming it re-fills the table for the next run (with
        # nobody waiting, a booking does).
        if shape == "none":
            reference = await book(services, rid, "T1")
        else:
            reference = await confirm_offer(services, rid, slot)
    return {
        "cancel": statistics.median(cancel_us),
        "heads": statistics.median(heads_us),
        "calls": statistics.median(calls),
    }


async def confirm_offer(services: Services, rid: str, slot: str) -> str:
    keys = Keys("hs").of(rid)
    ids = await services.redis.zrange(keys.waitlist_live(slot), 0, -1)
    for entry_id in ids:
        text = await services.redis.hget(keys.waitlist, entry_id)
        if '"status":"offered"' in text:
            hold_id = text.split('"hold":"', 1)[1].split('"', 1)[0]
            token = services.holds.token(rid, hold_id)
            reservation, _ = await services.holds.confirm(rid, KIND, hold_id, token, GUEST)
            return str(reservation.reference)
    raise AssertionError("the cancel made no offer")


async def main(sizes: list[int], runs: int, shapes: list[str]) -> None:
    with EmbeddedRedis(Path(tempfile.mkdtemp()), port=0, unix_socket=False) as server:
        settings = Settings(_env_file=None, redis_url=server.url, secret_key="bench")
        redis = connect_redis(settings)
        services = Services.build(redis, settings, Metrics())
        await services.scripts.load()
        print(f"waitlist benchmark: Redis time per cancel (median of {runs}), embedded Redis")
        print(
            f"  {'waiting':>8}  {'shape':<5}  {'whole cancel':>12}  {'calls':>5}  "
            f"{'heads alone':>11}"
        )
        for size in sizes:
            for shape in shapes:
                if (size == 0) != (shape == "none") and shape not in ("fit", "span"):
                    continue
                found = await scenario(services, shape, size, runs)
                print(
                    f"  {size:>8}  {shape:<5}  {found['cancel']:>9.0f} µs  {found['calls']:>5.0f}"
                    f"  {found['heads']:>8.0f} µs"
                )
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="0,100,10000")
    parser.add_argument("--shapes", default="none,fit,need,cap,span")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    asyncio.run(main(sizes, args.runs, args.shapes.split(",")))
