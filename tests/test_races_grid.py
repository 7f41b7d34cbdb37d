"""The slot grid under races, through a real ``holdsvc serve`` (2 workers) on the real Redis:
holds racing a closure, and the rolling grid filling in every worker at once. Exact counts."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.cluster import both_backends
from tests.helpers import day_after
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.race

# Each test runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends
GRID_INTERVAL = 0.3


@pytest.fixture(scope="module")
def server(redis_url: str) -> Iterator[ServerProcess]:
    """Two workers, each running the rolling grid every `GRID_INTERVAL` seconds."""
    env = {"HOLDSVC_GRID_INTERVAL_SECONDS": str(GRID_INTERVAL)}
    with ServerProcess(redis_url, workers=2, env=env) as running:
        yield running


def admin(server: ServerProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_token}"}


async def restaurant(
    http: httpx.AsyncClient, server: ServerProcess, capacities: list[int], **rules: Any
) -> str:
    body = {
        "name": "Race",
        "phone": "+12125550100",
        "timezone": "UTC",
        "opens": "10:00",
        "closes": "22:00",
        **rules,
    }
    created = await http.post("/v1/restaurants", json=body, headers=admin(server))
    assert created.status_code == 201, created.text
    rid = str(created.json()["id"])
    if capacities:
        tables = {"tables": [{"capacity": c} for c in capacities]}
        added = await http.post(f"/v1/restaurants/{rid}/tables", json=tables, headers=admin(server))
        assert added.status_code == 201, added.text
    return rid


async def grid(http: httpx.AsyncClient, rid: str, first: str, last: str) -> list[str]:
    """Every slot id from ``first`` to ``last``: 31 days (the read limit) and a page at a
    time."""
    found: list[str] = []
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    while start <= end:
        stop = min(end, start + timedelta(days=30))
        params = {"from": start.isoformat(), "to": stop.isoformat()}
        while True:
            view = await http.get(f"/v1/restaurants/{rid}/slots", params=params)
            assert view.status_code == 200, view.text
            found += [s["slot"] for s in view.json()["slots"]]
            cursor = view.json().get("next_cursor")
            if cursor is None:
                break
            params = {**params, "cursor": cursor}
        start = stop + timedelta(days=1)
    return found


async def existing_slot_keys(redis: Redis, rid: str) -> set[str]:
    """Slot ids that still have a cells hash or a held set."""
    found: set[str] = set()
    for kind in ("cells", "held"):
        async for key in redis.scan_iter(match=f"hs:{{{rid}}}:{kind}:*"):
            found.add(key.decode().rsplit(f":{kind}:", 1)[1])
    return found


async def test_holds_racing_a_closure_never_land_in_a_removed_slot(
    http: httpx.AsyncClient, server: ServerProcess, redis: Redis
) -> None:
    """240 holds (5 guests for each of 48 quarter-hour slots, one table) and a closure of that
    day, all at once, the closure sent in the middle: every slot is either removed, with no
    hold in it and no cell left, or kept, with exactly the one hold that won it; the closure's
    answer and the holds' answers agree exactly."""
    rid = await restaurant(http, server, [4], slot_minutes=15)
    closed_day = day_after(1)
    span = {"from": closed_day, "to": closed_day}
    made = await http.post(f"/v1/restaurants/{rid}/slots", json=span, headers=admin(server))
    assert made.json() == {"created": 48, "total": 48}
    day_slots = [f"{closed_day}T{10 + q // 4:02d}:{q % 4 * 15:02d}" for q in range(48)]
    # Slot by slot, so early slots are likely won before the closure, late ones likely
    # removed before their guests arrive, and the ones around it race.
    asks = [(slot, guest) for slot in day_slots for guest in range(5)]

    def hold(slot: str, guest: int) -> Any:
        body = {"user_id": f"g{guest}-{slot}", "slot": slot, "party_size": 2}
        return http.post(f"/v1/restaurants/{rid}/holds", json=body)

    closing = http.post(f"/v1/restaurants/{rid}/closures", json=span, headers=admin(server))
    half = len(asks) // 2
    answers = await asyncio.gather(
        *(hold(*ask) for ask in asks[:half]), closing, *(hold(*ask) for ask in asks[half:])
    )
    closure = answers[half]
    holds = list(zip(asks, answers[:half] + answers[half + 1 :], strict=True))
    assert closure.status_code == 201, closure.text
    kept = set(closure.json()["kept"])
    removed = set(day_slots) - kept
    assert closure.json()["removed"] == len(removed)

    won = [slot for (slot, _), answer in holds if answer.status_code == 201]
    assert sorted(won) == sorted(kept)  # each kept slot: exactly its one winner
    refused = Counter(
        (answer.status_code, slot in kept, answer.json()["code"])
        for (slot, _), answer in holds
        if answer.status_code != 201
    )
    # The other 4 guests of a kept slot find its table taken; all 5 of a removed one, no slot.
    expected = {
        (409, True, "no_table_available"): 4 * len(kept),
        (404, False, "not_found"): 5 * len(removed),
    }
    assert refused == Counter(expected) - Counter()

    assert await grid(http, rid, closed_day, closed_day) == sorted(kept)
    assert await existing_slot_keys(redis, rid) == kept
    audit = await http.get(f"/v1/restaurants/{rid}/audit", headers=admin(server))
    assert audit.json()["ok"], audit.json()


async def test_setting_horizon_days_fills_it_in_every_worker_once(
    http: httpx.AsyncClient, server: ServerProcess, redis: Redis
) -> None:
    rid = await restaurant(http, server, [2])
    today = datetime.now(UTC).date()
    last = (today + timedelta(days=14)).isoformat()
    assert await grid(http, rid, today.isoformat(), last) == []
    started = time.monotonic()
    patched = await http.patch(
        f"/v1/restaurants/{rid}", json={"horizon_days": 14}, headers=admin(server)
    )
    assert patched.json()["horizon_days"] == 14
    while len(await grid(http, rid, today.isoformat(), last)) < 15 * 12:
        assert time.monotonic() - started < 60, "the horizon was not filled within a minute"
        await asyncio.sleep(0.1)
    # Both workers keep passing: nothing more, nothing twice.
    await asyncio.sleep(GRID_INTERVAL * 4)
    assert len(await grid(http, rid, today.isoformat(), last)) == 15 * 12
    assert await redis.zcard(f"hs:{{{rid}}}:slots") == 15 * 12
    assert await redis.hget(f"hs:{{{rid}}}:venue", "grid_filled") == f"0|{last}".encode()


async def test_a_closure_while_the_workers_fill_leaves_its_dates_empty(
    http: httpx.AsyncClient, server: ServerProcess, redis: Redis
) -> None:
    rid = await restaurant(http, server, [2])
    today = datetime.now(UTC).date()
    first_closed, last_closed = day_after(20), day_after(40)
    closing = http.post(
        f"/v1/restaurants/{rid}/closures",
        json={"from": first_closed, "to": last_closed, "reason": "Works"},
        headers=admin(server),
    )
    horizon = http.patch(f"/v1/restaurants/{rid}", json={"horizon_days": 90}, headers=admin(server))
    answers = await asyncio.gather(horizon, closing)
    assert [a.status_code for a in answers] == [200, 201]
    last = (today + timedelta(days=90)).isoformat()
    started = time.monotonic()
    while await redis.hget(f"hs:{{{rid}}}:venue", "grid_filled") != f"0|{last}".encode():
        assert time.monotonic() - started < 60, "the horizon was not filled within a minute"
        await asyncio.sleep(0.1)
    assert await grid(http, rid, first_closed, last_closed) == []
    assert len(await grid(http, rid, today.isoformat(), last)) == 12 * (91 - 21)
