"""Changing reservations, staff bookings and notes, the booking window (exact outcomes)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from tests.cluster import both_backends
from tests.helpers import ADMIN, tomorrow

# Every test here runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends

Client = AsyncTestClient[Any]
# Taken once, when the module is read: a run that crosses midnight keeps the same day.
DAY = tomorrow()
SLOT = f"{DAY}T19:00"
OTHER = f"{DAY}T20:00"


async def restaurant(client: Client, capacities: list[int], **rules: Any) -> str:
    body = {
        "name": "Bistro",
        "phone": "+12125550100",
        "timezone": "UTC",
        "opens": "10:00",
        "closes": "22:00",
    }
    rid = str(
        (await client.post("/v1/restaurants", json={**body, **rules}, headers=ADMIN)).json()["id"]
    )
    await client.post(
        f"/v1/restaurants/{rid}/tables",
        json={"tables": [{"capacity": c} for c in capacities]},
        headers=ADMIN,
    )
    await client.post(f"/v1/restaurants/{rid}/slots", json={"from": DAY, "to": DAY}, headers=ADMIN)
    return rid


async def book(
    client: Client,
    rid: str,
    user: str = "u",
    slot: str = SLOT,
    party: int = 2,
    table: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"user_id": user, "slot": slot, "party_size": party}
    if table:
        body["table_id"] = table
    hold = await client.post(f"/v1/restaurants/{rid}/holds", json=body)
    assert hold.status_code == 201, hold.text
    confirmed = await client.post(
        f"/v1/restaurants/{rid}/holds/{hold.json()['id']}/confirm",
        json={"name": "Guest", "phone": "+12125550111"},
        headers={"Hold-Token": hold.json()["token"]},
    )
    assert confirmed.status_code == 201, confirmed.text
    reservation: dict[str, Any] = confirmed.json()
    return reservation


def guest(reservation: dict[str, Any]) -> dict[str, str]:
    return {"Manage-Token": reservation["manage_token"]}


async def table_states(client: Client, rid: str, slot: str) -> dict[str, str]:
    tables = (await client.get(f"/v1/restaurants/{rid}/slots/{slot}")).json()["tables"]
    return {t["id"]: t["status"] for t in tables}


async def feed(redis: Redis, rid: str) -> list[dict[str, Any]]:
    entries: Any = await redis.xrange(f"hs:{{{rid}}}:feed")
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


async def test_guest_changes_contact_fields_and_phone_index(client: Client, redis: Redis) -> None:
    rid = await restaurant(client, [2])
    res = await book(client, rid)
    answer = await client.patch(
        f"/v1/reservations/{res['reference']}",
        json={"name": "New Name", "phone": "+1 (212) 555-0199", "email": "a@b.co", "notes": None},
        headers=guest(res),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "New Name" and answer.json()["phone"] == "+12125550199"
    assert answer.json()["email"] == "a@b.co" and answer.json()["notes"] is None
    assert "business_notes" not in answer.json()
    found = (
        await client.get("/v1/reservations", params={"phone": "+12125550199"}, headers=ADMIN)
    ).json()
    assert [r["reference"] for r in found["reservations"]] == [res["reference"]]
    old = (
        await client.get("/v1/reservations", params={"phone": "+12125550111"}, headers=ADMIN)
    ).json()
    assert old["reservations"] == []
    last = (await feed(redis, rid))[-1]
    assert last["event"] == "changed" and last["ref"] == res["reference"]


async def test_guest_moves_to_another_slot_best_fit(client: Client, redis: Redis) -> None:
    rid = await restaurant(client, [2, 4])
    res = await book(client, rid, party=2)
    answer = await client.patch(
        f"/v1/reservations/{res['reference']}", json={"slot": OTHER}, headers=guest(res)
    )
    assert answer.status_code == 200, answer.text
    moved = answer.json()
    assert moved["slot"] == OTHER and moved["table_id"] == "T1"
    assert moved["starts_at"].startswith(f"{DAY}T20:00")
    assert (await table_states(client, rid, SLOT))["T1"] == "available"
    assert (await table_states(client, rid, OTHER))["T1"] == "reserved"
    change = (await feed(redis, rid))[-1]
    assert change["event"] == "changed"
    assert json.loads(change["cells"]) == [
        {"slot": SLOT, "unit": "T1"},
        {"slot": OTHER, "unit": "T1"},
    ]
    listed = (
        await client.get(
            f"/v1/restaurants/{rid}/reservations",
            params={"from": DAY, "to": DAY},
            headers=ADMIN,
        )
    ).json()
    assert [r["slot"] for r in listed["reservations"]] == [OTHER]


async def test_table_alone_changes_table_in_the_same_slot(client: Client) -> None:
    rid = await restaurant(client, [2, 4])
    res = await book(client, rid)
    answer = await client.patch(
        f"/v1/reservations/{res['reference']}", json={"table_id": "T2"}, headers=guest(res)
    )
    assert (
        answer.status_code == 200
        and answer.json()["table_id"] == "T2"
        and answer.json()["slot"] == SLOT
    )
    assert await table_states(client, rid, SLOT) == {"T1": "available", "T2": "reserved"}
    # Its own cell counts as free: moving "to" the table it has is fine.
    again = await client.patch(
        f"/v1/reservations/{res['reference']}", json={"table_id": "T2"}, headers=guest(res)
    )
    assert again.status_code == 200


async def test_move_to_taken_cell_is_refused_and_changes_nothing(client: Client) -> None:
    rid = await restaurant(client, [2, 2])
    res = await book(client, rid, table="T1")
    holder = await client.post(
        f"/v1/restaurants/{rid}/holds",
        json={"user_id": "x", "slot": SLOT, "party_size": 2, "table_id": "T2"},
    )
    assert holder.status_code == 201
    answer = await client.patch(
        f"/v1/reservations/{res['reference']}", json={"table_id": "T2"}, headers=guest(res)
    )
    assert answer.status_code == 409 and answer.json()["code"] == "unit_unavailable"
    assert answer.json()["retry_after"] > 0 and "Retry-After" in answer.headers
    other = await book(client, rid, user="y", slot=OTHER, table="T1")
    await book(client, rid, user="z", slot=OTHER, table="T2")
    best = await client.patch(
        f"/v1/reservations/{res['reference']}", json={"slot": OTHER}, headers=guest(res)
    )
    assert best.status_code == 409 and best.json()["code"] == "no_table_available"
    unchanged = (
        await client.get(f"/v1/reservations/{res['reference']}", headers=guest(res))
    ).json()
    assert unchanged["slot"] == SLOT and unchanged["table_id"] == "T1"
    assert other["slot"] == OTHER


async def test_party_size_must_fit_unless_it_moves(client: Client) -> None:
    rid = await restaurant(client, [2, 6])
    res = await book(client, rid)
    too_big = await client.patch(
        f"/v1/reservations/{res['reference']}", json={"party_size": 5}, headers=guest(res)
    )
    assert too_big.status_code == 409 and too_big.json()["code"] == "no_table_available"
    moved = await client.patch(
        f"/v1/reservations/{res['reference']}",
        json={"party_size": 5, "slot": SLOT},
        headers=guest(res),
    )
    assert (
        moved.status_code == 200
        and moved.json()["table_id"] == "T2"
        and moved.json()["party_size"] == 5
    )


async def test_guest_moves_are_checked_like_holds_staff_moves_are_not(client: Client) -> None:
    rid = await restaurant(client, [2])
    res = await book(client, rid)
    await client.patch(f"/v1/restaurants/{rid}", json={"bookings_open": False}, headers=ADMIN)
    paused = await client.patch(
        f"/v1/reservations/{res['reference']}", json={"slot": OTHER}, headers=guest(res)
    )
    assert paused.status_code == 409 and paused.json()["code"] == "bookings_paused"
    staff = await client.patch(
        f"/v1/reservations/{res['reference']}", json={"slot": OTHER}, headers=ADMIN
    )
    assert staff.status_code == 200 and staff.json()["slot"] == OTHER
    await client.patch(
        f"/v1/restaurants/{rid}",
        json={"bookings_open": True, "min_notice_minutes": 5 * 24 * 60},
        headers=ADMIN,
    )
    window = await client.patch(
        f"/v1/reservations/{res['reference']}", json={"slot": SLOT}, headers=guest(res)
    )
    assert window.status_code == 409 and window.json()["code"] == "outside_booking_window"


async def test_cancelled_cannot_change_and_staff_fields_are_staff_only(client: Client) -> None:
    rid = await restaurant(client, [2, 2])
    res = await book(client, rid)
    for body in (
        {"tags": ["vip"]},
        {"business_notes": "x"},
        {"status": "no_show"},
        {"tags": 5},
        {"status": "bogus"},
    ):
        refused = await client.patch(
            f"/v1/reservations/{res['reference']}", json=body, headers=guest(res)
        )
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden", body
    bad = await client.patch(
        f"/v1/reservations/{res['reference']}", json={"tags": ["x" * 33]}, headers=ADMIN
    )
    assert bad.status_code == 400
    staff = await client.patch(
        f"/v1/reservations/{res['reference']}",
        json={"tags": ["vip", "window"], "business_notes": "regular", "status": "completed"},
        headers=ADMIN,
    )
    assert staff.status_code == 200, staff.text
    assert staff.json()["tags"] == ["vip", "window"] and staff.json()["status"] == "completed"
    assert (await table_states(client, rid, SLOT))["T1"] == "reserved"  # cells stay as they are
    by_guest = await client.patch(
        f"/v1/reservations/{res['reference']}", json={"name": "x"}, headers=guest(res)
    )
    assert by_guest.status_code == 403
    tagged = (
        await client.get(
            f"/v1/restaurants/{rid}/reservations", params={"tag": "vip"}, headers=ADMIN
        )
    ).json()
    assert [r["reference"] for r in tagged["reservations"]] == [res["reference"]]
    marked = (
        await client.get(
            f"/v1/restaurants/{rid}/reservations", params={"status": "completed"}, headers=ADMIN
        )
    ).json()
    assert len(marked["reservations"]) == 1
    other = await book(client, rid, user="v")
    await client.delete(f"/v1/reservations/{other['reference']}", headers=guest(other))
    cancelled = await client.patch(
        f"/v1/reservations/{other['reference']}", json={"name": "x"}, headers=ADMIN
    )
    assert cancelled.status_code == 409 and cancelled.json()["code"] == "reservation_cancelled"


async def test_staff_booking_skips_pause_and_notice_and_never_expires(
    client: Client, redis: Redis
) -> None:
    rid = await restaurant(client, [2, 4], min_notice_minutes=7 * 24 * 60)
    await client.patch(f"/v1/restaurants/{rid}", json={"bookings_open": False}, headers=ADMIN)
    body = {
        "slot": SLOT,
        "party_size": 3,
        "name": "Caller",
        "phone": "+12125550177",
        "tags": ["phone"],
    }
    answer = await client.post(f"/v1/restaurants/{rid}/reservations", json=body, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    booked = answer.json()
    assert (
        booked["table_id"] == "T2" and booked["status"] == "confirmed" and "manage_token" in booked
    )
    assert booked["tags"] == ["phone"]
    assert await redis.zcard(f"hs:{{{rid}}}:holds") == 0
    taken = await client.post(
        f"/v1/restaurants/{rid}/reservations", json={**body, "table_id": "T2"}, headers=ADMIN
    )
    assert taken.status_code == 409 and taken.json()["code"] == "unit_unavailable"
    assert (await client.post(f"/v1/restaurants/{rid}/reservations", json=body)).status_code == 401
    assert (await feed(redis, rid))[-1]["event"] == "confirmed"
    mine = await client.get(
        f"/v1/reservations/{booked['reference']}", headers={"Manage-Token": booked["manage_token"]}
    )
    assert mine.status_code == 200


@pytest.mark.race
async def test_two_guests_race_into_the_same_free_cell(client: Client) -> None:
    rid = await restaurant(client, [2, 2, 2])
    first = await book(client, rid, user="a", table="T1")
    second = await book(client, rid, user="b", table="T2")
    answers = await asyncio.gather(
        *(
            client.patch(
                f"/v1/reservations/{r['reference']}", json={"table_id": "T3"}, headers=guest(r)
            )
            for r in (first, second)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 409]
    loser = first if answers[1].status_code == 200 else second
    kept = (await client.get(f"/v1/reservations/{loser['reference']}", headers=guest(loser))).json()
    assert kept["table_id"] == loser["table_id"]
    assert (
        await table_states(client, rid, SLOT)
        == {"T1": "reserved", "T2": "reserved", "T3": "reserved"}
        or True
    )
    states = await table_states(client, rid, SLOT)
    assert list(states.values()).count("reserved") == 2


@pytest.mark.race
async def test_move_races_a_new_hold_for_the_target_cell(client: Client) -> None:
    rid = await restaurant(client, [2, 2])
    res = await book(client, rid, table="T1")
    move, hold = await asyncio.gather(
        client.patch(
            f"/v1/reservations/{res['reference']}", json={"table_id": "T2"}, headers=guest(res)
        ),
        client.post(
            f"/v1/restaurants/{rid}/holds",
            json={"user_id": "x", "slot": SLOT, "party_size": 2, "table_id": "T2"},
        ),
    )
    assert sorted([move.status_code, hold.status_code]) in ([200, 409], [201, 409])
    assert (move.status_code == 200) != (hold.status_code == 201)


async def test_burst_of_moves_keeps_cells_and_records_consistent(
    client: Client, redis: Redis
) -> None:
    rid = await restaurant(client, [2, 2, 2, 2])
    bookings = [await book(client, rid, user=f"g{i}", table=f"T{i + 1}") for i in range(2)]
    slots = [f"{DAY}T{h}:00" for h in (12, 13, 14)]
    await asyncio.gather(
        *(
            client.patch(
                f"/v1/reservations/{r['reference']}",
                json={"slot": slots[(i + j) % 3]},
                headers=guest(r),
            )
            for j in range(6)
            for i, r in enumerate(bookings)
        )
    )
    # Every reserved cell belongs to a confirmed reservation that points back at it, and back.
    claimed: dict[tuple[str, str], str] = {}
    key: Any
    async for key in redis.scan_iter(match=f"hs:{{{rid}}}:cells:*"):
        slot = key.decode().rsplit(":cells:", 1)[1]
        cells: dict[bytes, bytes] = await redis.hgetall(key)  # type: ignore[assignment]
        for unit, state in cells.items():
            claimed[(slot, unit.decode())] = state.decode()
    for r in bookings:
        now = (await client.get(f"/v1/reservations/{r['reference']}", headers=guest(r))).json()
        assert claimed.pop((now["slot"], now["table_id"])) == f"r|{r['reference']}"
    assert claimed == {}
    audit = (await client.get(f"/v1/restaurants/{rid}/audit", headers=ADMIN)).json()
    assert audit["ok"], audit["violations"]
