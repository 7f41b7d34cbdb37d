"""Rolling grid benchmark: what one pass costs when every horizon is already filled.

Creates ``--restaurants`` restaurants (UTC, 10:00-22:00, ``--horizon`` days ahead) on an
embedded Redis (AOF everysec), runs one pass that fills them all, then times ``--runs`` passes
with nothing to do, as every worker runs them every HOLDSVC_GRID_INTERVAL_SECONDS: wall time,
Redis CPU (``INFO CPU``) and Redis commands (``INFO COMMANDSTATS``) per pass. Side by side, the
same no-op work without the per-venue ``grid_filled`` marker: laying out each horizon again
and adding it with ZADD NX (creating nothing), what a pass would cost without the marker.

    .venv/bin/python -m bench.grid_bench [--restaurants 1000] [--horizon 30] [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from holdsvc.connection import connect_redis
from holdsvc.metrics import Metrics
from holdsvc.models import RestaurantInput
from holdsvc.redis_server import EmbeddedRedis
from holdsvc.services import Services
from holdsvc.settings import Settings


async def redis_cpu_and_calls(redis: Any) -> tuple[float, int]:
    """Redis CPU seconds so far, and commands run so far."""
    cpu = await redis.info("cpu")
    stats = await redis.info("commandstats")
    calls = sum(int(entry["calls"]) for entry in stats.values())
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), calls


async def measure(redis: Any, action: Any, runs: int) -> dict[str, float]:
    """Median wall ms, Redis CPU ms and Redis commands of ``runs`` calls of ``action``."""
    walls: list[float] = []
    cpu_before, calls_before = await redis_cpu_and_calls(redis)
    for _ in range(runs):
        started = time.perf_counter()
        created = await action()
        walls.append(time.perf_counter() - started)
        assert created == 0, f"a pass with nothing to do created {created} slots"
    cpu_after, calls_after = await redis_cpu_and_calls(redis)
    # INFO itself counts as two commands per sample.
    return {
        "wall_ms": statistics.median(walls) * 1000,
        "p95_ms": sorted(walls)[int(len(walls) * 0.95) - 1] * 1000 if runs > 1 else walls[0] * 1000,
        "cpu_ms": (cpu_after - cpu_before) * 1000 / runs,
        "commands": (calls_after - calls_before - 2) / runs,
    }


async def run(url: str, restaurants: int, horizon: int, runs: int) -> None:
    settings = Settings(_env_file=None, redis_url=url, admin_tokens=["bench"], secret_key="bench")
    redis = connect_redis(settings)
    services = Services.build(redis, settings, Metrics())
    await services.scripts.load()
    ids: list[str] = []
    for _ in range(restaurants):
        made = await services.restaurants.create(
            RestaurantInput(
                name="Bench",
                phone="+12125550100",
                timezone="UTC",
                opens="10:00",
                closes="22:00",
                horizon_days=horizon,
            )
        )
        ids.append(made.id)

    started = time.perf_counter()
    filled = await services.rolling_grid.pass_once()
    first_pass = time.perf_counter() - started
    assert filled == restaurants * (horizon + 1) * 12, filled

    no_op = await measure(redis, services.rolling_grid.pass_once, runs)

    async def without_marker() -> int:
        today = datetime.now(UTC).date()
        created = 0
        for venue_id in ids:
            made, _ = await services.grid.fill(venue_id, today, today + timedelta(days=horizon))
            created += made
        return created

    naive = await measure(redis, without_marker, max(1, runs // 10))
    await redis.aclose()

    per_venue_us = no_op["wall_ms"] * 1000 / restaurants
    print(
        f"rolling grid: {restaurants} restaurants, horizon {horizon} days (12 slots a day), "
        "embedded Redis, AOF everysec, one client"
    )
    print(f"  first pass, filling every horizon     {first_pass * 1000:9.1f} ms  ({filled} slots)")
    print(
        f"  no-op pass (median of {runs})             {no_op['wall_ms']:9.1f} ms  "
        f"p95 {no_op['p95_ms']:.1f} ms, {per_venue_us:.1f} us per restaurant"
    )
    print(
        f"    Redis: {no_op['cpu_ms']:.2f} ms CPU, {no_op['commands']:.0f} commands "
        "(ZRANGE, TIME, one HMGET per restaurant)"
    )
    print(f"  the same without the marker           {naive['wall_ms']:9.1f} ms")
    print(
        f"    Redis: {naive['cpu_ms']:.2f} ms CPU, {naive['commands']:.0f} commands "
        "(those inside scripts counted too)"
    )
    print(f"  -> the marker makes a no-op pass {naive['wall_ms'] / no_op['wall_ms']:.0f}x cheaper")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restaurants", type=int, default=1000)
    parser.add_argument("--horizon", type=int, default=30)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        EmbeddedRedis(Path(folder), port=0, unix_socket=False) as server,
    ):
        asyncio.run(run(server.url, args.restaurants, args.horizon, args.runs))


if __name__ == "__main__":
    main()
