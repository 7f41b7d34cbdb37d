"""Races with exact counts, through a real ``holdsvc serve`` (2 workers) on the real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable
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
    # Every answer carries the one manage token (a replay answers it again).
    assert len({a.json()["manage_token"] for a in answers}) == 1
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


# -- two verbs racing on one reservation ------------------------------------------------------
# Every rule about a reservation's current state (its cells, its status, who may change it) is
# checked by the script that acts, on what it reads there: whatever the order Redis runs two
# verbs in, the outcome is one of the orders, never a mix of both.

GUEST = {"name": "Race", "phone": "+12125550111"}


async def reserve(http: httpx.AsyncClient, rid: str, user: str, slot: str, table: str) -> Any:
    """Hold then confirm one named table; the reservation with its manage token."""
    body = {"user_id": user, "slot": slot, "party_size": 2, "table_id": table}
    hold = await http.post(f"/v1/restaurants/{rid}/holds", json=body)
    assert hold.status_code == 201, hold.text
    confirmed = await http.post(
        f"/v1/restaurants/{rid}/holds/{hold.json()['id']}/confirm",
        json=GUEST,
        headers={"Hold-Token": hold.json()["token"]},
    )
    assert confirmed.status_code == 201, confirmed.text
    return confirmed.json()


async def together(
    first: Awaitable[httpx.Response], second: Awaitable[httpx.Response], *, lead_us: int
) -> tuple[httpx.Response, httpx.Response]:
    """Send ``first``, then ``second`` ``lead_us`` microseconds later (under a millisecond):
    pairs with a spread of gaps meet inside the server at every point of each other's way."""
    ahead = asyncio.ensure_future(first)
    for _ in range(3):  # let ``first`` reach its socket write
        await asyncio.sleep(0)
    until = time.perf_counter() + lead_us / 1e6
    while time.perf_counter() < until:  # a timer cannot wait less than a millisecond
        pass
    behind = await second
    return await ahead, behind


async def reserved_cells(redis: Redis, rid: str) -> dict[tuple[str, str], str]:
    """Every claimed cell of a venue: (slot, unit) -> state."""
    found: dict[tuple[str, str], str] = {}
    key: Any
    async for key in redis.scan_iter(match=f"hs:{{{rid}}}:cells:*"):
        slot = key.decode().rsplit(":cells:", 1)[1]
        cells: Any = await redis.hgetall(key)
        for unit, state in cells.items():
            found[(slot, unit.decode())] = state.decode()
    return found


async def audit_ok(http: httpx.AsyncClient, server: ServerProcess, rid: str) -> None:
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    audit = (await http.get(f"/v1/restaurants/{rid}/audit", headers=admin)).json()
    assert audit["ok"], audit["violations"]


@pytest.mark.parametrize("racers", [8, 32])
async def test_concurrent_changes_of_one_reservation_all_commit(
    http: httpx.AsyncClient, server: ServerProcess, redis: Redis, racers: int
) -> None:
    """Moves and phone changes of one reservation, all at once: each one commits in Redis's
    order (200); contention is never an outage (503)."""
    rid = await venue(http, server, [2])
    slots = [f"{tomorrow()}T{hour}:00" for hour in range(10, 22)]
    res = await reserve(http, rid, "guest", slots[0], "T1")
    url = f"/v1/reservations/{res['reference']}"
    bodies = [
        {"phone": f"+1212555{i:04d}"} if i % 4 == 3 else {"slot": slots[(i + 1) % len(slots)]}
        for i in range(racers)
    ]
    manage = {"Manage-Token": res["manage_token"]}
    answers = await asyncio.gather(*(http.patch(url, json=body, headers=manage) for body in bodies))
    assert Counter(a.status_code for a in answers) == {200: racers}, [
        a.text for a in answers if a.status_code != 200
    ]
    final = (await http.get(url, headers=manage)).json()
    assert await reserved_cells(redis, rid) == {(final["slot"], "T1"): f"r|{res['reference']}"}
    changes: Any = await redis.xrange(f"hs:{{{rid}}}:feed")
    changed = [json.loads(f[b"cells"]) for _, f in changes if f[b"event"] == b"changed"]
    assert len(changed) == racers
    assert changed[-1][-1] == {"slot": final["slot"], "unit": "T1"}  # the last to commit won
    await audit_ok(http, server, rid)


PAIRS = 120


async def staff_bookings(
    http: httpx.AsyncClient, server: ServerProcess, rid: str, slot: str
) -> list[Any]:
    """One staff booking on each table T1..T<PAIRS> of ``slot``, made all at once."""
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    made = await asyncio.gather(
        *(
            http.post(
                f"/v1/restaurants/{rid}/reservations",
                json={"slot": slot, "party_size": 2, "table_id": f"T{n + 1}", **GUEST},
                headers=admin,
            )
            for n in range(PAIRS)
        )
    )
    assert {answer.status_code for answer in made} == {201}
    return [answer.json() for answer in made]


def pair_order(n: int) -> tuple[bool, int]:
    """Pair ``n``: whether the other verb goes first (three pairs in four), and how many
    microseconds ahead of the second request (0 to 990): every gap within a millisecond."""
    return n % 4 != 3, (n * 7) % 100 * 10


async def test_cancel_racing_a_move_never_strands_a_cell(
    http: httpx.AsyncClient, server: ServerProcess, redis: Redis
) -> None:
    """A guest's cancel and move of one reservation sent within a millisecond of each other,
    120 times: the cancel either comes first (the move is 409 reservation_cancelled) or frees
    the cell the move claimed. No cell stays reserved by a cancelled reservation."""
    rid = await venue(http, server, [2] * PAIRS)
    here, there = f"{tomorrow()}T19:00", f"{tomorrow()}T20:00"
    outcomes: Counter[tuple[int, int, str | None]] = Counter()
    for n, res in enumerate(await staff_bookings(http, server, rid, here)):
        url = f"/v1/reservations/{res['reference']}"
        manage = {"Manage-Token": res["manage_token"]}
        move = http.patch(url, json={"slot": there, "table_id": res["table_id"]}, headers=manage)
        cancel = http.delete(url, headers=manage)
        move_first, lead = pair_order(n)
        if move_first:
            moved, cancelled = await together(move, cancel, lead_us=lead)
        else:
            cancelled, moved = await together(cancel, move, lead_us=lead)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        outcomes[(cancelled.status_code, moved.status_code, moved.json().get("code"))] += 1
    assert set(outcomes) <= {(200, 200, None), (200, 409, "reservation_cancelled")}, outcomes
    assert sum(outcomes.values()) == PAIRS
    assert await reserved_cells(redis, rid) == {}  # every cell of every cancelled one is free
    await audit_ok(http, server, rid)


async def test_guest_cancel_racing_a_staff_status_never_both_win(
    http: httpx.AsyncClient, server: ServerProcess, redis: Redis
) -> None:
    """A guest cancels while staff mark the same reservation seated (or completed), sent
    within a millisecond of each other, 120 times: either the cancel came first (the staff
    change is 409 reservation_cancelled) or the staff change did (the guest may no longer
    cancel: 403 forbidden). Never both."""
    rid = await venue(http, server, [2] * PAIRS)
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    slot = f"{tomorrow()}T19:00"
    outcomes: Counter[str] = Counter()
    for n, res in enumerate(await staff_bookings(http, server, rid, slot)):
        url = f"/v1/reservations/{res['reference']}"
        status = ("seated", "completed")[n % 2]
        mark = http.patch(url, json={"status": status}, headers=admin)
        cancel = http.delete(url, headers={"Manage-Token": res["manage_token"]})
        staff_first, lead = pair_order(n)
        if staff_first:
            marked, cancelled = await together(mark, cancel, lead_us=lead)
        else:
            cancelled, marked = await together(cancel, mark, lead_us=lead)
        final = (await http.get(url, headers=admin)).json()
        claimed = await redis.hget(f"hs:{{{rid}}}:cells:{slot}", res["table_id"])
        if cancelled.status_code == 200:
            assert (marked.status_code, marked.json().get("code")) == (409, "reservation_cancelled")
            assert final["status"] == "cancelled" and claimed is None
            outcomes["cancel first"] += 1
        else:
            assert (cancelled.status_code, cancelled.json().get("code")) == (403, "forbidden")
            assert marked.status_code == 200 and final["status"] == status
            assert claimed == f"r|{res['reference']}".encode()  # staff statuses keep the cell
            outcomes["staff first"] += 1
    assert sum(outcomes.values()) == PAIRS
    await audit_ok(http, server, rid)
