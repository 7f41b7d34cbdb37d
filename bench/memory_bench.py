"""Memory benchmark: Redis bytes per slot and per reservation, and a 5-year projection for a
30-table restaurant with and without a monthly ``holdsvc archive``.

For each size (days of history) a 30-table restaurant open 10:00-22:00 (12 one-hour slots a
day) gets that many past days of slots, then ``--fill`` of its cells booked by staff bookings
(book.lua: the same reservation record, indexes and feed entry a guest's confirm writes, minus
the hold's tombstone, which expires after a day anyway), each guest with their own phone
number (a per-phone index set each: the worst case) and an e-mail address. ``INFO memory``
``used_memory`` is read before and after each step on an embedded server (AOF off, so no AOF
buffer is counted), and ``MEMORY USAGE ... SAMPLES 0`` of every key shows where the bytes go.
The feed is left out of the per-reservation figure: it is one stream capped at
``HOLDSVC_FEED_MAXLEN`` entries, a fixed cost. Finally ``holdsvc archive`` (the Transfer
module, archive.lua per slot) removes every slot and ``used_memory`` is read again.

    .venv/bin/python -m bench.memory_bench [--days 30,90,180] [--fill 0.5] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from holdsvc.connection import connect_redis
from holdsvc.keys import Keys
from holdsvc.metrics import Metrics
from holdsvc.models import RestaurantInput, StaffBookingInput, TableInput
from holdsvc.redis_server import EmbeddedRedis
from holdsvc.services import Services
from holdsvc.settings import Settings
from holdsvc.transfer import Transfer

CAPACITIES = (2,) * 8 + (4,) * 12 + (6,) * 6 + (8,) * 4  # 30 tables
SLOTS_PER_DAY = 12
CONCURRENCY = 64
YEARS = 5
AHEAD_DAYS = 90  # max_days_ahead: the grid reaches this far, mostly empty
MONTHLY_KEEP_DAYS = 62  # archive on the 1st of each month, --before the 1st of last month


@dataclass
class Size:
    """What one size measured."""

    days: int
    slots: int
    reservations: int
    venue_bytes: int
    slot_bytes: float
    reservation_bytes: float
    feed_entry_bytes: float
    by_key: dict[str, int]
    slots_delta: int
    reservations_delta: int
    archive_seconds: float
    archive_file_bytes: int
    left_after_archive: dict[str, int]


async def used_memory(redis: Any) -> int:
    """used_memory less what is not data: the clients' buffers (they grow with a pipeline
    and shrink later) and the Lua VM (its garbage is collected when Lua gets to it); read
    until two readings half a second apart agree."""
    last = -1
    for _ in range(10):
        info = await redis.info("memory")
        now = (
            int(info["used_memory"])
            - int(info.get("mem_clients_normal", 0))
            - int(info.get("used_memory_vm_eval", 0))
        )
        if now == last:
            break
        last = now
        await asyncio.sleep(0.5)
    return last


async def key_usage(redis: Any, keys: Keys, venue_id: str) -> dict[str, int]:
    """MEMORY USAGE (exact: SAMPLES 0) of every key of the venue, summed by kind."""
    base = keys.of(venue_id)
    kinds = {
        base.reservations_by_start: "by-start index",
        base.slots: "slots zset",
        base.feed: "feed stream",
    }
    names = [str(key) async for key in redis.scan_iter(match=base.base + "*", count=1000)]
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.memory_usage(name, samples=0)
    totals: defaultdict[str, int] = defaultdict(int)
    for name, usage in zip(names, await pipe.execute(), strict=True):
        kind = kinds.get(name)
        if kind is None:
            for prefix, label in (
                (base.reservations_by_phone(""), "by-phone sets"),
                (base.reservation(""), "reservation hashes"),
                (base.cells(""), "cells hashes"),
            ):
                if name.startswith(prefix):
                    kind = label
                    break
        totals[kind or "venue, tables"] += int(usage or 0)
    return dict(totals)


async def book_all(services: Services, venue_id: str, slots: list[str], per_slot: int) -> int:
    """``per_slot`` staff bookings in every slot, each guest with their own phone."""
    jobs = [(slot, n) for slot in slots for n in range(1, per_slot + 1)]
    counter = 0

    async def book(slot: str, table: int) -> None:
        nonlocal counter
        counter += 1
        guest = counter
        await services.reservations.book(
            venue_id,
            StaffBookingInput(
                slot=slot,
                party_size=2,
                table_id=f"T{table}",
                name=f"Guest {guest}",
                phone=f"+4420{guest:08d}",
                email=f"guest{guest}@example.com",
            ),
        )

    for start in range(0, len(jobs), CONCURRENCY):
        await asyncio.gather(*(book(slot, n) for slot, n in jobs[start : start + CONCURRENCY]))
    return len(jobs)


async def measure(services: Services, settings: Settings, days: int, fill: float) -> Size:
    redis = services.redis
    keys = Keys(settings.key_prefix)
    await redis.execute_command("FLUSHALL", "SYNC")
    empty = await used_memory(redis)
    restaurant = await services.restaurants.create(
        RestaurantInput(
            name="Bistro", phone="+1 212 555 0100", timezone="UTC", opens="10:00", closes="22:00"
        )
    )
    rid = restaurant.id
    await services.restaurants.add_tables(rid, [TableInput(capacity=c) for c in CAPACITIES])
    with_tables = await used_memory(redis)
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days)
    await services.restaurants.add_slots(
        rid, first.isoformat(), (today - timedelta(days=1)).isoformat()
    )
    slots: list[str] = await redis.zrange(keys.of(rid).slots, 0, -1)
    with_slots = await used_memory(redis)
    per_slot = round(len(CAPACITIES) * fill)
    reservations = await book_all(services, rid, slots, per_slot)
    booked = await used_memory(redis)
    by_key = await key_usage(redis, keys, rid)
    feed = by_key.get("feed stream", 0)
    entries = int(await redis.xlen(keys.of(rid).feed))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "archive.jsonl"
        started = time.perf_counter()
        with path.open("w") as out:
            await Transfer.build(redis, settings).archive(today, [rid], out)
        archive_seconds = time.perf_counter() - started
        archive_bytes = path.stat().st_size
    left = await key_usage(redis, keys, rid)
    return Size(
        days=days,
        slots=len(slots),
        reservations=reservations,
        venue_bytes=with_tables - empty,
        slot_bytes=(with_slots - with_tables) / len(slots),
        reservation_bytes=(booked - with_slots - feed) / reservations,
        feed_entry_bytes=feed / entries,
        by_key=by_key,
        slots_delta=with_slots - with_tables,
        reservations_delta=booked - with_slots - feed,
        archive_seconds=archive_seconds,
        archive_file_bytes=archive_bytes,
        left_after_archive=left,
    )


async def run(url: str, sizes: list[int], fill: float) -> tuple[str, list[Size]]:
    settings = Settings(_env_file=None, redis_url=url, admin_tokens=["bench"], secret_key="bench")
    client = connect_redis(settings)
    # No AOF buffer, and nothing freed in the background (Valkey's defaults free DEL and
    # FLUSHALL lazily, which would shrink used_memory under the next steps' feet).
    await client.config_set("appendonly", "no")
    for lazy in ("lazyfree-lazy-user-del", "lazyfree-lazy-user-flush", "lazyfree-lazy-server-del"):
        await client.config_set(lazy, "no")
    services = Services.build(client, settings, Metrics())
    await services.scripts.load()
    version = (await client.info("server")).get("valkey_version") or (
        await client.info("server")
    ).get("redis_version")
    try:
        # Warm up (scripts, connections, buffers) so the first size measures only its data.
        await measure(services, settings, 2, fill)
        return str(version), [await measure(services, settings, days, fill) for days in sizes]
    finally:
        await client.aclose()


def mib(value: float) -> str:
    return f"{value / 1_048_576:8.1f} MiB"


def slope(results: list[Size], size: str, count: str) -> float:
    """Bytes per item between the smallest and the largest size: what one more costs, with
    the fixed costs (and the first allocations) of every run cancelled out."""
    small, large = results[0], results[-1]
    items: int = getattr(large, count) - getattr(small, count)
    grown: int = getattr(large, size) - getattr(small, size)
    return grown / items


def report(version: str, results: list[Size], fill: float, feed_maxlen: int) -> list[str]:
    out = [
        f"server {version} (embedded, AOF off); used_memory deltas, MEMORY USAGE SAMPLES 0 per key",
        f"machine: {platform.machine()}; restaurant: {len(CAPACITIES)} tables, "
        f"{SLOTS_PER_DAY} slots/day, {fill:.0%} of cells booked (staff bookings, a phone each)",
        "",
        "  days    slots  reservations  bytes/slot  bytes/reservation  feed B/entry"
        "  archive: seconds, file B/reservation",
    ]
    for s in results:
        out.append(
            f"  {s.days:4d}  {s.slots:7d}  {s.reservations:12d}  {s.slot_bytes:10.0f}  "
            f"{s.reservation_bytes:17.0f}  {s.feed_entry_bytes:12.0f}  "
            f"{s.archive_seconds:7.1f} s, {s.archive_file_bytes / s.reservations:4.0f}"
        )
    slot_bytes = slope(results, "slots_delta", "slots")
    res_bytes = slope(results, "reservations_delta", "reservations")
    last = results[-1]
    out += [
        f"  marginal ({results[0].days} -> {last.days} days): {slot_bytes:.0f} bytes/slot, "
        f"{res_bytes:.0f} bytes/reservation",
        "",
        f"where the bytes are at {last.days} days (MEMORY USAGE; per reservation):",
    ]
    for kind, total in sorted(last.by_key.items(), key=lambda item: -item[1]):
        out.append(f"  {kind:20s} {mib(total)}  {total / last.reservations:5.0f} B")
    left = ", ".join(f"{kind} {total} B" for kind, total in sorted(last.left_after_archive.items()))
    out.append(f"left after archiving every slot: {left}")
    feed_cap = feed_maxlen * max(s.feed_entry_bytes for s in results)
    per_day = SLOTS_PER_DAY * slot_bytes + len(CAPACITIES) * SLOTS_PER_DAY * fill * res_bytes
    fixed = last.venue_bytes + feed_cap
    ahead = AHEAD_DAYS * SLOTS_PER_DAY * slot_bytes
    out += [
        "",
        f"projection: {len(CAPACITIES)} tables x {SLOTS_PER_DAY} slots/day x {fill:.0%} booked = "
        f"{len(CAPACITIES) * SLOTS_PER_DAY * fill:.0f} reservations/day = "
        f"{per_day / 1024:.0f} KiB/day at the marginal costs above;",
        f"fixed: venue and tables {last.venue_bytes / 1024:.0f} KiB, the feed (capped at "
        f"{feed_maxlen} entries) ~{feed_cap / 1_048_576:.0f} MiB, the empty grid "
        f"{AHEAD_DAYS} days ahead {ahead / 1024:.0f} KiB.",
        f"monthly archive: `holdsvc archive --before <1st of last month>` on the 1st keeps at "
        f"most {MONTHLY_KEEP_DAYS} past days",
        "",
        "  after   no archive   monthly archive",
    ]
    for year in range(1, YEARS + 1):
        kept_days = 365 * year
        out.append(
            f"  {year} y   {mib(fixed + ahead + kept_days * per_day)}   "
            f"{mib(fixed + ahead + min(kept_days, MONTHLY_KEEP_DAYS) * per_day)}"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", default="30,90,180", help="sizes: days of history")
    parser.add_argument("--fill", type=float, default=0.5, help="share of cells booked")
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()
    sizes = [int(part) for part in args.days.split(",")]
    with (
        tempfile.TemporaryDirectory() as folder,
        EmbeddedRedis(Path(folder), port=0, unix_socket=False) as server,
    ):
        version, results = asyncio.run(run(server.url, sizes, args.fill))
    lines = report(version, results, args.fill, Settings(_env_file=None).feed_maxlen)
    print("\n".join(lines))
    if args.out:
        command = " ".join(["python -m bench.memory_bench", *sys.argv[1:]])
        stamp = date.today().isoformat()
        args.out.write_text(f"$ .venv/bin/{command}   # {stamp}\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
