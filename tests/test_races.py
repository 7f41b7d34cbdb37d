"""Races with exact counts, through a real ``holdsvc serve`` (2 workers) on the real Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.helpers import tomorrow
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.race


async def venue(
    http: httpx.AsyncClient, server: ServerProcess, capacities: list[int], **rules: Any
) -> str:
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    body = {
        "name": "Race",
        "phone": "+12125550100",
        "timezone": "UTC",
        "opens": "10:00",
        "closes": "22:00",
    }
    created = await http.post("/v1/restaurants", json={**body, **rules}, headers=admin)
    assert created.status_code == 201, created.text
    rid = str(created.json()["id"])
    tables = {"tables": [{"capacity": c} for c in capacities]}
    assert (
        await http.post(f"/v1/restaurants/{rid}/tables", json=tables, headers=admin)
    ).status_code == 201
    span = {"from": tomorrow(), "to": tomorrow()}
    assert (
        await http.post(f"/v1/restaurants/{rid}/slots", json=span, headers=admin)
    ).status_code == 201
    return rid


async def test_200_racers_on_one_cell_exactly_one_wins(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await venue(http, server, [2])
    slot = f"{tomorrow()}T19:00"
    answers = await asyncio.gather(
        *(
            http.post(
                f"/v1/restaurants/{rid}/holds",
                json={"user_id": f"u{i}", "slot": slot, "party_size": 2, "table_id": "T1"},
            )
            for i in range(200)
        )
    )
    codes = Counter(a.status_code for a in answers)
    assert codes == {201: 1, 409: 199}
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"unit_unavailable"}
    state = (await http.get(f"/v1/restaurants/{rid}/slots/{slot}")).json()
    assert state["tables"][0]["status"] == "held"


async def test_one_user_60_racers_cap_6_exactly_6(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await venue(http, server, [2] * 10, max_holds_per_user=6)
    slots = [f"{tomorrow()}T{h}:00" for h in range(10, 16)]
    answers = await asyncio.gather(
        *(
            http.post(
                f"/v1/restaurants/{rid}/holds",
                json={"user_id": "greedy", "slot": slots[i % 6], "party_size": 2},
            )
            for i in range(60)
        )
    )
    codes = Counter(a.status_code for a in answers)
    assert codes == {201: 6, 409: 54}
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"hold_limit_reached"}


async def test_30_confirms_of_one_hold_make_one_reservation(
    http: httpx.AsyncClient, server: ServerProcess, redis: Redis
) -> None:
    rid = await venue(http, server, [4])
    hold = (
        await http.post(
            f"/v1/restaurants/{rid}/holds",
            json={"user_id": "u", "slot": f"{tomorrow()}T20:00", "party_size": 3},
        )
    ).json()
    body = {"name": "Ada", "phone": "+12125550123"}
    answers = await asyncio.gather(
        *(
            http.post(
                f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm",
                json=body,
                headers={"Hold-Token": hold["token"]},
            )
            for _ in range(30)
        )
    )
    codes = Counter(a.status_code for a in answers)
    assert codes == {201: 1, 200: 29}
    assert len({a.json()["reference"] for a in answers}) == 1
    assert sum("manage_token" in a.json() for a in answers) == 1
    assert await redis.zcard(f"hs:{{{rid}}}:res:by-start") == 1


async def test_rate_limit_is_exact_across_workers(redis_url: str, redis: Redis) -> None:
    """20 a minute, 120 hold requests at once from one address through 2 workers: exactly 20
    are let through (a limiter counting per process, or read-modify-write, lets more)."""
    env = {"HOLDSVC_RATE_LIMIT_PER_MINUTE": "20"}
    limits = httpx.Limits(max_connections=120, max_keepalive_connections=120)
    with ServerProcess(redis_url, workers=2, env=env) as limited:
        async with httpx.AsyncClient(base_url=limited.url, limits=limits, timeout=30) as http:
            answers = await asyncio.gather(
                *(http.get(f"/v1/restaurants/nowhere/holds/h{i}") for i in range(120))
            )
            # Not limited: anything that is not a hold endpoint.
            assert (await http.get("/v1/restaurants/nowhere")).status_code == 404
    codes = Counter(a.status_code for a in answers)
    assert codes == {404: 20, 429: 100}
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 3
    let_through = [a for a in answers if a.status_code == 404]
    remaining = sorted(int(a.headers["ratelimit-remaining"]) for a in let_through)
    assert remaining == list(range(20))  # each request counted once, none twice
    assert {a.headers["ratelimit-policy"] for a in let_through} == {"20;w=60"}
