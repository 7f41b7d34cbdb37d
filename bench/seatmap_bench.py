"""Seat-map benchmark: Redis time per best-available hold at any fill, and an on-sale storm.

1. Redis time per hold. One embedded Redis (AOF everysec). A seat map of ``--places`` seats
   (rows of 200 in sections of 50 rows) and a ``total_seats`` event of as many seats (made in
   Python: the API stops at 10 000; its best available scans the lowest free numbers). Each
   is filled like an on-sale fills it (best-available holds of 1..6 seats: together, apart
   when no block is left) to 0, 50, 90, 99 and 99.9 %, and at each level ``--samples`` holds
   of 2..6 seats are placed (then released) one by one, each timed by Redis itself: the
   EVALSHA ``usec`` of INFO commandstats before and after it. The seat map's holds ask for a
   block together (refusals included and counted) and, separately, ``together: false``.
2. On-sale storm. ``holdsvc serve`` (2 workers) on a fresh Redis; a map of ``--storm-places``
   (90 % seated, 10 % general admission); ``--buyers`` concurrent buyers through HTTP ask for
   1..6 seats (together; apart after not_enough_together; fewer after not_enough_seats;
   1 buyer in 10 asks the standing area) until nothing is left. Prints holds/s, p50/p99
   latency, refusals by code, places sold (must be the capacity exactly) and the audit.

    .venv/bin/python -m bench.seatmap_bench [--places 50000] [--samples 200]
        [--storm-places 50000] [--buyers 2000] [--connections 500]
        [--skip-storm] [--skip-redis-time]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from bench.hold_bench import ADMIN, server
from holdsvc.connection import connect_redis
from holdsvc.errors import HoldsvcError
from holdsvc.metrics import Metrics
from holdsvc.models import EventInput, RowInput, SeatHoldInput, SectionInput
from holdsvc.redis_server import EmbeddedRedis, free_tcp_port
from holdsvc.services import Services
from holdsvc.settings import Settings
from holdsvc.venues import VenueKind

FILLS = (0.0, 0.5, 0.9, 0.99, 0.999)
ROW = 200
ROWS_PER_SECTION = 50
STARTS = "2031-01-01T20:00:00+00:00"
EVENT = VenueKind.EVENT
RULES: dict[str, Any] = {
    "hold_seconds": 86_400,
    "max_hold_seconds": 604_800,
    "max_holds_per_user": 1000,
}


def seated_sections(places: int) -> list[SectionInput]:
    """``places`` seats in rows of ROW, ROWS_PER_SECTION rows a section (the last shorter)."""
    rows = [min(ROW, places - start) for start in range(0, places, ROW)]
    sections = []
    for s, first in enumerate(range(0, len(rows), ROWS_PER_SECTION)):
        chunk = rows[first : first + ROWS_PER_SECTION]
        sections.append(
            SectionInput(
                id=f"S{s + 1}",
                name=f"Section {s + 1}",
                rows=[RowInput(id=str(r + 1), seats=n) for r, n in enumerate(chunk)],
            )
        )
    return sections


async def evalsha_usec(redis: Redis) -> int:
    """Microseconds Redis spent in EVALSHA so far."""
    stats = await redis.info("commandstats")
    entry = stats.get("cmdstat_evalsha", {})
    return int(entry.get("usec", 0)) if isinstance(entry, dict) else 0


class Filler:
    """Places holds on one event, one new user each, and keeps count of what it took."""

    def __init__(self, services: Services, eid: str, capacity: int) -> None:
        self.services = services
        self.eid = eid
        self.capacity = capacity
        self.taken = 0
        self.users = 0

    async def place(self, body: dict[str, Any]) -> tuple[Any, str | None]:
        """(hold, None) or (None, refusal code)."""
        self.users += 1
        data = SeatHoldInput(user_id=f"u{self.users}", **body)
        try:
            hold, _ = await self.services.holds.place_from_body(self.eid, EVENT, data, None)
        except HoldsvcError as error:
            return None, error.code
        return hold, None

    async def fill_to(self, fill: float, seat_map: bool, rng: random.Random) -> None:
        """Sell like an on-sale until ``fill`` of the capacity is taken."""
        target = round(self.capacity * fill)
        while self.taken < target:
            n = min(rng.randint(1, 6), target - self.taken)
            if not seat_map:
                # The scan's best available takes the lowest free numbers: naming them is the
                # same state without paying the scan for every fill step.
                seats = [f"S{k}" for k in range(self.taken + 1, self.taken + n + 1)]
                hold, code = await self.place({"seats": seats})
                if hold is None:
                    raise SystemExit(f"bench: fill refused with {code} at {self.taken}")
                self.taken += n
                continue
            hold, code = await self.place({"count": n})
            if hold is None and seat_map and code == "not_enough_together":
                hold, code = await self.place({"count": n, "together": False})
            if hold is None:
                raise SystemExit(f"bench: fill refused with {code} at {self.taken}")
            self.taken += n

    async def sample(self, redis: Redis, body: dict[str, Any]) -> tuple[int, str]:
        """Redis µs of one hold (released again afterwards), and its outcome."""
        before = await evalsha_usec(redis)
        hold, code = await self.place(body)
        spent = await evalsha_usec(redis) - before
        if hold is not None:
            await self.services.holds.release(self.eid, EVENT, hold.id, hold.token)
        return spent, code or "201"


def summary(times: list[int]) -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered):7.0f} {p99:7.0f}"


async def redis_time(url: str, places: int, samples: int) -> list[str]:
    """Part 1: Redis µs per hold at each fill, seat map next to the total_seats scan."""
    config = Settings(_env_file=None, redis_url=url, secret_key="bench")
    redis = connect_redis(config)
    services = Services.build(redis, config, Metrics())
    await services.scripts.load()
    mapped = await services.events.create(
        EventInput(name="Map", starts_at=STARTS, sections=seated_sections(places), **RULES)
    )
    # Made in Python, past the API's 10 000: the same size as the map, for the same fills.
    plain = await services.events.create(
        EventInput(name="Plain", starts_at=STARTS, total_seats=places, **RULES)
    )
    fillers = {
        "map": Filler(services, mapped.id, places),
        "plain": Filler(services, plain.id, places),
    }
    rng = random.Random(21)
    lines = [
        f"Redis time per best-available hold (EVALSHA usec from INFO commandstats), {places} "
        f"seats, {samples} holds of 2..6 seats per cell, median and p99 in µs",
        f"{'fill':>6} | {'map together':>15} {'refused':>18} | {'map apart':>15} | "
        f"{'total_seats scan':>16}",
    ]
    for fill in FILLS:
        for name, filler in fillers.items():
            await filler.fill_to(fill, name == "map", rng)
        together: list[int] = []
        apart: list[int] = []
        scan: list[int] = []
        outcomes: Counter[str] = Counter()
        for i in range(samples):
            n = 2 + i % 5
            spent, code = await fillers["map"].sample(redis, {"count": n})
            together.append(spent)
            outcomes[code] += 1
            spent, _ = await fillers["map"].sample(redis, {"count": n, "together": False})
            apart.append(spent)
            spent, _ = await fillers["plain"].sample(redis, {"count": n})
            scan.append(spent)
        refused = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()) if k != "201")
        lines.append(
            f"{fill * 100:5.1f}% | {summary(together)} {refused or '-':>18} | "
            f"{summary(apart)} | {summary(scan)}"
        )
        print(lines[-1], flush=True)
    await redis.aclose()
    return lines


async def storm(url: str, places: int, buyers: int, connections: int) -> list[str]:
    """Part 2: ``buyers`` concurrent buyers through HTTP until the map is sold out."""
    ga = places // 10
    seated = [
        {"id": s.id, "name": s.name, "rows": [{"id": r.id, "seats": r.seats} for r in s.rows or []]}
        for s in seated_sections(places - ga)
    ]
    sections = [*seated, {"id": "GA", "name": "Standing", "capacity": ga}]
    port = free_tcp_port()
    base = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    sold = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    in_flight = asyncio.Semaphore(connections)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with server(url, 2, port, "uvicorn"):
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as http:
            body = {
                "name": "Storm",
                "starts_at": STARTS,
                "sections": sections,
                "hold_seconds": 86_400,
                "max_hold_seconds": 604_800,
                "max_holds_per_user": 1000,
            }
            created = await http.post("/v1/events", json=body, headers=admin)
            assert created.status_code == 201, created.text
            eid = created.json()["id"]

            async def ask(user: str, payload: dict[str, Any]) -> httpx.Response:
                # An Idempotency-Key per ask: a retry after a dropped keep-alive connection
                # gets the same hold back (200), never a second one.
                key = {"Idempotency-Key": uuid.uuid4().hex}
                started = time.perf_counter()
                for retry in range(20):
                    try:
                        # At most `connections` requests in flight: the rest of the buyers
                        # wait here, not inside the client's connection pool.
                        async with in_flight:
                            answer = await http.post(
                                f"/v1/events/{eid}/holds",
                                json={"user_id": user, **payload},
                                headers=key,
                            )
                        break
                    except httpx.TransportError:
                        codes["transport retry"] += 1
                        await asyncio.sleep(0.05 * (retry + 1))
                else:
                    raise SystemExit("bench: 20 transport errors in a row")
                latencies.append(time.perf_counter() - started)
                ok = answer.status_code in (200, 201)
                codes["201" if ok else answer.json()["code"]] += 1
                return answer

            async def buy(user: str, n: int, standing: bool) -> bool:
                """Ask for n (together, then apart, then fewer) until a hold or none left."""
                nonlocal sold
                payload: dict[str, Any] = {"count": n}
                if standing:
                    payload["section"] = "GA"
                while True:
                    answer = await ask(user, payload)
                    if answer.status_code in (200, 201):
                        held = answer.json()
                        sold += held["ga"]["count"] if standing else len(held["seats"])
                        return True
                    code = answer.json()["code"]
                    if code == "not_enough_together":
                        payload["together"] = False
                    elif code == "not_enough_seats" and payload["count"] > 1:
                        payload["count"] -= 1
                    else:
                        return False

            async def buyer(b: int) -> None:
                rng = random.Random(b)
                attempt = 0
                while open_kinds:
                    attempt += 1
                    standing = "ga" in open_kinds and (
                        "seated" not in open_kinds or rng.random() < 0.1
                    )
                    kind = "ga" if standing else "seated"
                    if not await buy(f"b{b}-{attempt}", rng.randint(1, 6), standing):
                        open_kinds.discard(kind)

            open_kinds = {"seated", "ga"}
            started = time.perf_counter()
            await asyncio.gather(*(buyer(b) for b in range(buyers)))
            elapsed = time.perf_counter() - started
            event = (await http.get(f"/v1/events/{eid}")).json()
            audit = (await http.get(f"/v1/events/{eid}/audit", headers=admin)).json()
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2] * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    holds = codes["201"]
    refusals = ", ".join(f"{k} {v}" for k, v in sorted(codes.items()) if k != "201")
    return [
        f"on-sale storm: {places} places ({places - ga} seated, {ga} standing), {buyers} "
        f"concurrent buyers, {connections} connections, 2 workers, one Redis",
        f"  {len(latencies)} requests in {elapsed:.1f} s: {holds} holds "
        f"({holds / elapsed:.0f} holds/s, {len(latencies) / elapsed:.0f} requests/s), "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
        f"  refusals by code: {refusals}",
        f"  places sold {sold} of {places} (exactly the capacity: {sold == places}), "
        f"available_seats now {event['available_seats']}, audit ok {audit['ok']} "
        f"({len(audit['violations'])} violations)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--places", type=int, default=50_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--storm-places", type=int, default=50_000)
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--skip-storm", action="store_true")
    parser.add_argument("--skip-redis-time", action="store_true")
    args = parser.parse_args()
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_redis_time:
            with EmbeddedRedis(Path(folder) / "one", port=free_tcp_port(), unix_socket=False) as r:
                lines += asyncio.run(redis_time(r.url, args.places, args.samples))
        if not args.skip_storm:
            with EmbeddedRedis(Path(folder) / "two", port=free_tcp_port(), unix_socket=False) as r:
                lines += asyncio.run(storm(r.url, args.storm_places, args.buyers, args.connections))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
