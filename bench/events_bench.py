"""Events benchmark: creating a 10 000-seat event and listing its free seats.

Side by side in one run, on one embedded Redis (AOF everysec), each timed ``--runs`` times:
  create   holdsvc's one MULTI (HSET + 2 ZADD for all seats) vs a naive loop of one
           round trip per seat (what a simple implementation does);
  list     GET /v1/events/{eid}/seats?status=available through the app (one HGETALL) vs a
           naive per-seat read (one HGET round trip per seat).
Prints medians and the ratios. Usage: .venv/bin/python -m bench.events_bench [--seats N] [--runs R]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from holdsvc.app import create_app
from holdsvc.redis_server import EmbeddedRedis
from holdsvc.settings import Settings

ADMIN = {"Authorization": "Bearer bench"}


async def timed(action: Any) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def run(seats: int, runs: int, url: str) -> dict[str, list[float]]:
    settings = Settings(_env_file=None, redis_url=url, admin_tokens=["bench"], secret_key="bench")
    raw = Redis.from_url(url, decode_responses=True)
    results: dict[str, list[float]] = {
        "create": [],
        "create_naive": [],
        "list": [],
        "list_naive": [],
    }
    body = {"name": "Bench", "starts_at": "2031-01-01T20:00:00+00:00", "total_seats": seats}
    async with AsyncTestClient(app=create_app(settings)) as client:
        event_ids: list[str] = []

        async def create() -> None:
            answer = await client.post("/v1/events", json=body, headers=ADMIN)
            assert answer.status_code == 201, answer.text
            event_ids.append(answer.json()["id"])

        async def create_naive() -> None:
            for n in range(1, seats + 1):
                await raw.hset("naive:seats", f"S{n}", "free")

        for _ in range(runs):
            results["create"].append(await timed(create))
            results["create_naive"].append(await timed(create_naive))
        eid = event_ids[0]
        # A realistic mix: a third of the seats held.
        for user in range(seats // 3 // 6):
            await client.post(f"/v1/events/{eid}/holds", json={"user_id": f"u{user}", "count": 6})

        async def list_seats() -> None:
            answer = await client.get(f"/v1/events/{eid}/seats", params={"status": "available"})
            assert answer.status_code == 200

        async def list_naive() -> None:
            for n in range(1, seats + 1):
                await raw.hget(f"hs:{{{eid}}}:cells:2031-01-01T20:00", f"S{n}")

        for _ in range(runs):
            results["list"].append(await timed(list_seats))
            results["list_naive"].append(await timed(list_naive))
    await raw.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seats", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        EmbeddedRedis(Path(folder), port=0, unix_socket=False) as server,
    ):
        results = asyncio.run(run(args.seats, args.runs, server.url))
    median = {name: statistics.median(times) * 1000 for name, times in results.items()}
    print(
        f"events benchmark: {args.seats} seats, median of {args.runs} runs, embedded Redis, AOF everysec"
    )
    print(f"  create event (one MULTI)          {median['create']:9.1f} ms")
    print(f"  create naive (a round trip/seat)  {median['create_naive']:9.1f} ms")
    print(f"  -> holdsvc is {median['create_naive'] / median['create']:.1f}x faster")
    print(f"  list available seats (HTTP)       {median['list']:9.1f} ms")
    print(f"  list naive (HGET per seat)        {median['list_naive']:9.1f} ms")
    print(f"  -> holdsvc is {median['list_naive'] / median['list']:.1f}x faster")


if __name__ == "__main__":
    main()
