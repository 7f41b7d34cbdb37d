"""Availability benchmark: 14 days of a 40-table restaurant with 15-minute slots and 2-hour
durations, about a third of its cells booked: Redis round trips, Redis commands and wall time
per ``GET …/availability`` (the service call behind it), next to the same restaurant without
booking rules (the plain one-slot path).

Round trips are counted at the client: each command sent alone and each pipeline (one
write, one read) is one. API.md asks for at most one round trip per day of the range. The
range is read page after page (``next_cursor``), as a client reads it: the figures are for
the whole range.

    .venv/bin/python -m bench.availability_bench [--days 14] [--tables 40] [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis.asyncio.client import Pipeline

from holdsvc.connection import connect_redis
from holdsvc.errors import HoldsvcError
from holdsvc.metrics import Metrics
from holdsvc.models import DurationRule, RestaurantInput, StaffBookingInput, TableInput
from holdsvc.paging import page_request
from holdsvc.redis_server import EmbeddedRedis
from holdsvc.services import Services
from holdsvc.settings import Settings

CAPACITIES = (2, 2, 2, 2, 4, 4, 4, 6)  # repeated to the table count


class RoundTrips:
    """Counts what a client sends: each command alone, each pipeline as one."""

    def __init__(self, redis: Any) -> None:
        self.count = 0
        original = redis.execute_command

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original(*args, **kwargs)

        redis.execute_command = counted
        pipeline_execute = Pipeline.execute

        async def counted_pipeline(pipe: Pipeline, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await pipeline_execute(pipe, *args, **kwargs)

        Pipeline.execute = counted_pipeline  # type: ignore[method-assign,assignment]


async def redis_calls(redis: Any) -> int:
    stats = await redis.info("commandstats")
    return sum(int(entry["calls"]) for entry in stats.values())


async def measure(
    redis: Any, trips: RoundTrips, action: Callable[[], Awaitable[int]], runs: int
) -> dict[str, float]:
    """Median and p95 wall ms, round trips and Redis commands per call, slots listed."""
    walls: list[float] = []
    listed = 0
    calls_before = await redis_calls(redis)
    trips_before = trips.count
    for _ in range(runs):
        started = time.perf_counter()
        listed = await action()
        walls.append(time.perf_counter() - started)
    calls_after = await redis_calls(redis)
    walls.sort()
    return {
        "wall_ms": statistics.median(walls) * 1000,
        "p95_ms": walls[max(0, int(len(walls) * 0.95) - 1)] * 1000,
        # INFO itself: one command and one round trip per sample (two samples).
        "round_trips": (trips.count - trips_before - 1) / runs,
        "commands": (calls_after - calls_before - 1) / runs,
        "listed": listed,
    }


async def restaurant(
    services: Services, tables: int, days: int, rules: bool, seed: int
) -> tuple[str, int]:
    """A restaurant (UTC, 10:00-23:00, 15-minute slots) with ``tables`` tables and ``days``
    days of grid from tomorrow, about a third of its cells booked by staff; with ``rules``:
    durations of two hours (and 2.5 hours for parties over four). (id, bookings)."""
    durations = (
        [DurationRule(max_party=4, minutes=120), DurationRule(max_party=50, minutes=150)]
        if rules
        else None
    )
    made = await services.restaurants.create(
        RestaurantInput(
            name="Bench",
            phone="+12125550100",
            timezone="UTC",
            opens="10:00",
            closes="23:00",
            slot_minutes=15,
            max_days_ahead=365,
            durations=durations,
        )
    )
    rid = made.id
    await services.restaurants.add_tables(
        rid, [TableInput(capacity=CAPACITIES[i % len(CAPACITIES)]) for i in range(tables)]
    )
    first = datetime.now(UTC).date() + timedelta(days=1)
    await services.restaurants.add_slots(
        rid, first.isoformat(), (first + timedelta(days=days - 1)).isoformat()
    )
    rng = random.Random(seed)
    booked = 0
    # A booking of 8 slots (2 hours) per table and day, 3 or 4 of them: about a third full.
    for offset in range(days):
        day = first + timedelta(days=offset)
        for n in range(tables * 3):
            hour, quarter = rng.randrange(10, 21), rng.choice((0, 15, 30, 45))
            body = StaffBookingInput(
                slot=f"{day.isoformat()}T{hour:02d}:{quarter:02d}",
                party_size=rng.choice((2, 2, 3, 4)),
                name=f"Guest {n}",
                phone="+12125550100",
            )
            try:
                await services.reservations.book(rid, body)
                booked += 1
            except HoldsvcError:
                continue
    return rid, booked


async def run(url: str, days: int, tables: int, runs: int) -> None:
    settings = Settings(_env_file=None, redis_url=url, admin_tokens=["bench"], secret_key="bench")
    redis = connect_redis(settings)
    services = Services.build(redis, settings, Metrics())
    await services.scripts.load()
    rich, rich_booked = await restaurant(services, tables, days, rules=True, seed=1)
    plain, plain_booked = await restaurant(services, tables, days, rules=False, seed=1)
    trips = RoundTrips(redis)
    first = datetime.now(UTC).date() + timedelta(days=1)
    last = first + timedelta(days=days - 1)
    limit = settings.max_cells_per_page

    def asking(rid: str, party: int) -> Callable[[], Awaitable[int]]:
        async def action() -> int:
            # Every page of the range, as a client following next_cursor reads it.
            listed, request = 0, None
            while True:
                page = await services.restaurants.availability(
                    rid, first.isoformat(), last.isoformat(), party, request
                )
                listed += len(page.items)
                if page.next_cursor is None:
                    return listed
                request = page_request(None, page.next_cursor, size=limit)

        return action

    results = {
        ("2-hour durations", party): await measure(redis, trips, asking(rich, party), runs)
        for party in (2, 6)
    }
    results[("plain one-slot", 2)] = await measure(redis, trips, asking(plain, 2), runs)
    await redis.aclose()
    slots = days * 52
    print(
        f"availability: {days} days x 52 slots (15 minutes, 10:00-23:00), {tables} tables, "
        f"embedded Redis (AOF everysec), one client, median of {runs}"
    )
    print(f"  bookings made by staff: {rich_booked} (rules), {plain_booked} (plain)")
    for (name, party), r in results.items():
        print(
            f"  {name:17} party {party}: {r['wall_ms']:7.1f} ms (p95 {r['p95_ms']:.1f}), "
            f"{r['round_trips']:.0f} round trips ({r['round_trips'] / days:.2f} per day), "
            f"{r['commands']:.0f} Redis commands, {r['listed']:.0f} of {slots} slots listed"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--tables", type=int, default=40)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        EmbeddedRedis(Path(folder), port=0, unix_socket=False) as server,
    ):
        asyncio.run(run(server.url, args.days, args.tables, args.runs))


if __name__ == "__main__":
    main()
