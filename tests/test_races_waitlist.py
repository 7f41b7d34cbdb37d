"""Waitlist races with exact counts, through a real ``holdsvc serve`` (2 workers), on one node
and on the cluster: a freed table is never free for racers while a fitting entry waits."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.cluster import both_backends
from tests.helpers import day_after
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.race
redis_backend = both_backends

DAY = day_after(1)
SLOT = f"{DAY}T19:00"
WAITER = {"name": "Grace Hopper", "phone": "+12125550199"}
GUEST = {"name": "Ada", "phone": "+12125550123"}


async def venue(
    http: httpx.AsyncClient, server: ServerProcess, capacities: list[int], **rules: Any
) -> str:
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    body = {
        **rules,
        "name": "Race",
        "phone": "+12125550100",
        "timezone": "UTC",
        "opens": "10:00",
        "closes": "22:00",
    }
    created = await http.post("/v1/restaurants", json=body, headers=admin)
    rid = str(created.json()["id"])
    tables = {"tables": [{"capacity": c} for c in capacities]}
    assert (
        await http.post(f"/v1/restaurants/{rid}/tables", json=tables, headers=admin)
    ).status_code == 201
    span = {"from": DAY, "to": DAY}
    assert (
        await http.post(f"/v1/restaurants/{rid}/slots", json=span, headers=admin)
    ).status_code == 201
    return rid


async def reserve(http: httpx.AsyncClient, rid: str, user: str, slot: str = SLOT) -> dict[str, Any]:
    hold = await http.post(
        f"/v1/restaurants/{rid}/holds", json={"user_id": user, "slot": slot, "party_size": 2}
    )
    assert hold.status_code == 201, hold.text
    made = await http.post(
        f"/v1/restaurants/{rid}/holds/{hold.json()['id']}/confirm",
        json=GUEST,
        headers={"Hold-Token": hold.json()["token"]},
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def join(http: httpx.AsyncClient, rid: str, user: str, slot: str = SLOT) -> dict[str, Any]:
    answer = await http.post(
        f"/v1/restaurants/{rid}/waitlist",
        json={"user_id": user, "slot": slot, "party_size": 2, **WAITER},
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def offered_events(http: httpx.AsyncClient, server: ServerProcess, rid: str) -> list[Any]:
    admin = {"Authorization": f"Bearer {server.admin_token}", "Accept": "application/json"}
    changes = (await http.get(f"/v1/restaurants/{rid}/changes", headers=admin)).json()["changes"]
    return [c for c in changes if c["event"] == "offered"]


async def test_50_racers_as_a_cancel_lands_never_get_the_freed_table(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await venue(http, server, [2])
    made = await reserve(http, rid, "guest")
    entry = await join(http, rid, "waiter")
    racers = [
        http.post(
            f"/v1/restaurants/{rid}/holds",
            json={"user_id": f"bot{i}", "slot": SLOT, "party_size": 2},
        )
        for i in range(50)
    ]
    cancel = http.delete(
        f"/v1/reservations/{made['reference']}", headers={"Manage-Token": made["manage_token"]}
    )
    # The cancel lands in the middle of the racers.
    answers = await asyncio.gather(*racers[:25], cancel, *racers[25:])
    assert answers[25].status_code == 200
    racer_codes = Counter(a.status_code for i, a in enumerate(answers) if i != 25)
    assert racer_codes == {409: 50}
    seen = await http.get(
        f"/v1/restaurants/{rid}/waitlist/{entry['id']}", headers={"Waitlist-Token": entry["token"]}
    )
    assert seen.json()["status"] == "offered" and seen.json()["hold"]["table_id"] == "T1"
    offers = await offered_events(http, server, rid)
    assert len(offers) == 1 and offers[0]["waitlist_id"] == entry["id"]


async def test_with_durations_50_racers_never_get_a_span_the_waiting_entry_fits(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    # Two-hour bookings on one-hour slots: T1 is reserved 19:00-21:00; a party waits for
    # 18:00 (it needs 18:00-20:00). Racers ask for 18:00 and 19:00 as the cancel lands.
    rid = await venue(http, server, [2], durations=[{"max_party": 4, "minutes": 120}])
    made = await reserve(http, rid, "guest")
    early = f"{DAY}T18:00"
    entry = await join(http, rid, "waiter", early)
    racers = [
        http.post(
            f"/v1/restaurants/{rid}/holds",
            json={"user_id": f"bot{i}", "slot": (early, SLOT)[i % 2], "party_size": 2},
        )
        for i in range(50)
    ]
    cancel = http.delete(
        f"/v1/reservations/{made['reference']}", headers={"Manage-Token": made["manage_token"]}
    )
    answers = await asyncio.gather(*racers[:25], cancel, *racers[25:])
    assert answers[25].status_code == 200
    racer_codes = Counter(a.status_code for i, a in enumerate(answers) if i != 25)
    assert racer_codes == {409: 50}
    seen = await http.get(
        f"/v1/restaurants/{rid}/waitlist/{entry['id']}", headers={"Waitlist-Token": entry["token"]}
    )
    hold = seen.json()["hold"]
    assert seen.json()["status"] == "offered" and hold["slot"] == early
    assert hold["ends_at"].startswith(f"{DAY}T20:00")
    offers = await offered_events(http, server, rid)
    assert len(offers) == 1
    assert [c["slot"][11:] for c in offers[0]["cells"]] == ["18:00", "19:00"]
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    audited = await http.get(f"/v1/restaurants/{rid}/audit", headers=admin)
    assert audited.json()["ok"] is True, audited.text


async def test_5_cancels_and_50_racers_each_entry_offered_exactly_once(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await venue(http, server, [2] * 5)
    made = [await reserve(http, rid, f"guest{i}") for i in range(5)]
    entries = [await join(http, rid, f"waiter{i}") for i in range(5)]
    calls = [
        http.post(
            f"/v1/restaurants/{rid}/holds",
            json={"user_id": f"bot{i}", "slot": SLOT, "party_size": 2},
        )
        for i in range(50)
    ]
    for n, reservation in enumerate(made):
        calls.insert(
            n * 10 + 5,
            http.delete(
                f"/v1/reservations/{reservation['reference']}",
                headers={"Manage-Token": reservation["manage_token"]},
            ),
        )
    answers = await asyncio.gather(*calls)
    codes = Counter(a.status_code for a in answers)
    assert codes == {200: 5, 409: 50}
    offers = await offered_events(http, server, rid)
    assert sorted(o["waitlist_id"] for o in offers) == sorted(e["id"] for e in entries)
    assert len({o["cells"][0]["unit"] for o in offers}) == 5
    # Oldest first: the offers went out in the order the entries joined.
    assert [o["waitlist_id"] for o in offers] == [e["id"] for e in entries]


async def test_30_joins_on_a_free_table_exactly_one_is_offered(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await venue(http, server, [2])
    answers = await asyncio.gather(
        *(
            http.post(
                f"/v1/restaurants/{rid}/waitlist",
                json={"user_id": f"w{i}", "slot": SLOT, "party_size": 2, **WAITER},
            )
            for i in range(30)
        )
    )
    assert Counter(a.status_code for a in answers) == {201: 30}
    statuses = Counter(a.json()["status"] for a in answers)
    assert statuses == {"offered": 1, "waiting": 29}
    positions = sorted(a.json()["position"] for a in answers if a.json()["status"] == "waiting")
    assert positions == list(range(1, 30))
    same_user = await asyncio.gather(
        *(
            http.post(
                f"/v1/restaurants/{rid}/waitlist",
                json={"user_id": "twice", "slot": SLOT, "party_size": 2, **WAITER},
            )
            for _ in range(20)
        )
    )
    assert Counter(a.status_code for a in same_user) == {201: 1, 409: 19}
