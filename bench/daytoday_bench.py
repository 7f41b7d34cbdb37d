"""Day-to-day costs that grow with a venue: ``next_available`` on a booked-solid grid, and
removing a table whose script sees every slot that has not ended.

One restaurant (UTC, 10:00-22:00, 8 tables, ``--days`` days of slots) on an embedded Redis
(AOF everysec). ``next_available`` is timed with every cell of the grid reserved (the worst
case: it reads forward until its cap of NEXT_AVAILABLE_SLOTS slots and answers null) and with
one free table ``--free-in`` days ahead. ``remove_table`` (edit_table.lua has the same scan)
is timed on an empty grid, where its script reads one cell per open slot; then the table is
added back. Wall time (median), Redis CPU (``INFO CPU``) and Redis commands per call.

    .venv/bin/python -m bench.daytoday_bench [--days 366] [--free-in 30] [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from holdsvc.connection import connect_redis
from holdsvc.keys import Keys
from holdsvc.metrics import Metrics
from holdsvc.models import RestaurantInput, TableInput
from holdsvc.redis_server import EmbeddedRedis
from holdsvc.restaurants import NEXT_AVAILABLE_SLOTS
from holdsvc.services import Services
from holdsvc.settings import Settings

TABLES = 8


async def redis_cpu_and_calls(redis: Any) -> tuple[float, int]:
    """Redis CPU seconds so far, and commands run so far."""
    cpu = await redis.info("cpu")
    stats = await redis.info("commandstats")
    calls = sum(int(entry["calls"]) for entry in stats.values())
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), calls


async def measure(redis: Any, action: Callable[[], Awaitable[object]], runs: int) -> str:
    """Median and p95 wall ms, Redis CPU ms and commands per call, as one line."""
    walls: list[float] = []
    cpu_before, calls_before = await redis_cpu_and_calls(redis)
    for _ in range(runs):
        started = time.perf_counter()
        await action()
        walls.append(time.perf_counter() - started)
    cpu_after, calls_after = await redis_cpu_and_calls(redis)
    p95 = sorted(walls)[max(0, int(len(walls) * 0.95) - 1)]
    return (
        f"{statistics.median(walls) * 1000:8.2f} ms  p95 {p95 * 1000:.2f} ms  Redis "
        f"{(cpu_after - cpu_before) * 1000 / runs:.2f} ms CPU, "
        f"{(calls_after - calls_before - 2) / runs:.0f} commands"
    )


async def run(url: str, days: int, free_in: int, runs: int) -> None:
    settings = Settings(_env_file=None, redis_url=url, admin_tokens=["bench"], secret_key="bench")
    redis = connect_redis(settings)
    services = Services.build(redis, settings, Metrics())
    await services.scripts.load()
    keys = Keys(settings.key_prefix)
    made = await services.restaurants.create(
        RestaurantInput(
            name="Bench",
            phone="+12125550100",
            timezone="UTC",
            opens="10:00",
            closes="22:00",
            max_days_ahead=days,
        )
    )
    rid = made.id
    await services.restaurants.add_tables(rid, [TableInput(capacity=4) for _ in range(TABLES)])
    today = datetime.now(UTC).date()
    await services.restaurants.add_slots(
        rid, (today + timedelta(days=1)).isoformat(), (today + timedelta(days=days)).isoformat()
    )
    venue = keys.of(rid)
    slots: list[str] = await redis.zrange(venue.slots, 0, -1)

    remove = await measure(redis, lambda: _remove_and_add_back(services, rid), max(1, runs // 2))

    # Every cell reserved (written directly: the read is what is measured here).
    pipe = redis.pipeline(transaction=False)
    for slot in slots:
        pipe.hset(venue.cells(slot), mapping={f"T{n}": "r|X" for n in range(1, 4 * TABLES)})
    await pipe.execute()
    first = (today + timedelta(days=1)).isoformat()
    solid = await measure(redis, lambda: services.restaurants.next_available(rid, first, 2), runs)
    free_day = (today + timedelta(days=free_in)).isoformat()
    await redis.hdel(venue.cells(f"{free_day}T19:00"), "T1", *(f"T{n}" for n in range(9, 33)))
    found = await services.restaurants.next_available(rid, first, 2)
    assert found == free_day, (found, free_day)
    near = await measure(redis, lambda: services.restaurants.next_available(rid, first, 2), runs)
    await redis.aclose()

    print(
        f"day to day: one restaurant, {TABLES} tables, {len(slots)} slots ({days} days x 12), "
        "embedded Redis, AOF everysec, one client"
    )
    print(f"  next_available, grid booked solid (null, cap {NEXT_AVAILABLE_SLOTS} slots)  {solid}")
    print(f"  next_available, a free table {free_in} days ahead                 {near}")
    print(f"  remove a table + add it back ({len(slots)} open slots in KEYS)      {remove}")


async def _remove_and_add_back(services: Services, rid: str) -> None:
    tables = await services.restaurants.tables(rid)
    await services.tables.remove(rid, tables[-1].id)
    await services.restaurants.add_tables(rid, [TableInput(capacity=4)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=366)
    parser.add_argument("--free-in", type=int, default=30)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        EmbeddedRedis(Path(folder), port=0, unix_socket=False) as server,
    ):
        asyncio.run(run(server.url, args.days, args.free_in, args.runs))


if __name__ == "__main__":
    main()
