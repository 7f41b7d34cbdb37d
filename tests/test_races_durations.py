"""Races on bookings of several slots, combinations, the covers cap and one booking per
guest, with exact counts, through a real ``holdsvc serve`` (2 workers) on the real Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.helpers import tomorrow
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.race

# Taken once per module: the tests survive midnight.
DAY = tomorrow()
# 19:00, 19:30 and 20:00 for 90 minutes: every two of them overlap (all hold 20:00).
OVERLAPPING = [f"{DAY}T19:00", f"{DAY}T19:30", f"{DAY}T20:00"]
DURATIONS = [{"max_party": 2, "minutes": 90}, {"max_party": 4, "minutes": 120}]


async def venue(
    http: httpx.AsyncClient, server: ServerProcess, capacities: list[int], **rules: Any
) -> str:
    """A restaurant of 30-minute slots (10:00-22:00 tomorrow) with DURATIONS."""
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    body = {
        "name": "Race",
        "phone": "+12125550100",
        "timezone": "UTC",
        "opens": "10:00",
        "closes": "22:00",
        "slot_minutes": 30,
        "durations": DURATIONS,
        "max_holds_per_user": 1000,
    }
    created = await http.post("/v1/restaurants", json={**body, **rules}, headers=admin)
    assert created.status_code == 201, created.text
    rid = str(created.json()["id"])
    tables = {"tables": [{"capacity": c} for c in capacities]}
    added = await http.post(f"/v1/restaurants/{rid}/tables", json=tables, headers=admin)
    assert added.status_code == 201
    span = {"from": DAY, "to": DAY}
    assert (
        await http.post(f"/v1/restaurants/{rid}/slots", json=span, headers=admin)
    ).status_code == 201
    return rid


async def audit_clean(http: httpx.AsyncClient, server: ServerProcess, rid: str) -> None:
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    report = (await http.get(f"/v1/restaurants/{rid}/audit", headers=admin)).json()
    assert (report["ok"], report["violations"]) == (True, [])


async def held_cells(http: httpx.AsyncClient, rid: str) -> Counter[str]:
    """Per table, how many of its cells the slot views show taken (held or reserved)."""
    listed = (
        await http.get(f"/v1/restaurants/{rid}/slots", params={"from": DAY, "to": DAY})
    ).json()
    return Counter(
        t["id"] for s in listed["slots"] for t in s["tables"] if t["status"] != "available"
    )


async def race(http: httpx.AsyncClient, rid: str, bodies: list[dict[str, Any]]) -> list[Any]:
    return list(
        await asyncio.gather(
            *(http.post(f"/v1/restaurants/{rid}/holds", json=body) for body in bodies)
        )
    )


async def test_40_racers_for_overlapping_spans_of_one_table_exactly_one_wins(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await venue(http, server, [2])
    bodies = [
        {"user_id": f"u{i}", "slot": OVERLAPPING[i % 3], "party_size": 2, "table_id": "T1"}
        for i in range(40)
    ]
    answers = await race(http, rid, bodies)
    codes = Counter(a.status_code for a in answers)
    assert codes == {201: 1, 409: 39}
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"unit_unavailable"}
    # The winner holds its table in all three of its slots, and nothing else is held.
    assert await held_cells(http, rid) == {"T1": 3}
    await audit_clean(http, server, rid)


async def test_40_best_fit_racers_on_3_tables_exactly_3_win(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await venue(http, server, [2, 2, 4])
    bodies = [{"user_id": f"u{i}", "slot": OVERLAPPING[i % 3], "party_size": 2} for i in range(40)]
    answers = await race(http, rid, bodies)
    codes = Counter(a.status_code for a in answers)
    assert codes == {201: 3, 409: 37}
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"no_table_available"}
    assert await held_cells(http, rid) == {"T1": 3, "T2": 3, "T3": 3}
    await audit_clean(http, server, rid)


async def test_combination_racers_never_share_a_table(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await venue(http, server, [2, 2, 2])
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    for tables in (["T1", "T2"], ["T2", "T3"]):
        made = await http.post(
            f"/v1/restaurants/{rid}/combinations",
            json={"tables": tables, "capacity": 4},
            headers=admin,
        )
        assert made.status_code == 201
    # Parties of four fit only the combinations, which share T2: exactly one wins.
    bodies = [{"user_id": f"u{i}", "slot": OVERLAPPING[i % 3], "party_size": 4} for i in range(40)]
    answers = await race(http, rid, bodies)
    assert Counter(a.status_code for a in answers) == {201: 1, 409: 39}
    won = next(a.json() for a in answers if a.status_code == 201)
    # Four slots of 30 minutes (120 minutes) for each of its two tables.
    assert await held_cells(http, rid) == dict.fromkeys(won["table_ids"], 4)
    await audit_clean(http, server, rid)


async def test_covers_cap_is_never_exceeded(http: httpx.AsyncClient, server: ServerProcess) -> None:
    rid = await venue(http, server, [2] * 40, max_covers_per_slot=10)
    slot = f"{DAY}T19:00"
    bodies = [{"user_id": f"u{i}", "slot": slot, "party_size": 2} for i in range(40)]
    answers = await race(http, rid, bodies)
    codes = Counter(a.status_code for a in answers)
    assert codes == {201: 5, 409: 35}
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"covers_limit_reached"}
    await audit_clean(http, server, rid)


async def test_one_user_parallel_holds_one_booking_per_guest(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await venue(http, server, [2] * 40, one_booking_per_guest=True)
    bodies = [{"user_id": "same", "slot": OVERLAPPING[i % 3], "party_size": 2} for i in range(40)]
    answers = await race(http, rid, bodies)
    codes = Counter(a.status_code for a in answers)
    assert codes == {201: 1, 409: 39}
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"overlapping_booking"}
    await audit_clean(http, server, rid)
