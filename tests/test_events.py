"""Events and seats: batch holds, best available, exact counts, the same guarantees."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from tests.cluster import both_backends
from tests.helpers import ADMIN
from tests.serverproc import ServerProcess

# Every test here runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends

Client = AsyncTestClient[Any]


def next_week() -> str:
    return (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0).isoformat()


async def make_event(client: Client, seats: int = 20, **extra: Any) -> dict[str, Any]:
    created = await client.post(
        "/v1/events",
        json={
            "name": "Concert",
            "starts_at": "2030-06-01T20:00:00+02:00",
            "total_seats": seats,
            **extra,
        },
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    event: dict[str, Any] = created.json()
    return event


async def test_create_and_read_event(client: Client) -> None:
    event = await make_event(client, 12, timezone="Europe/Paris")
    assert event["starts_at"] == "2030-06-01T20:00:00.000+02:00"
    assert event["slot"] == "2030-06-01T20:00"
    assert event["available_seats"] == 12 and event["total_seats"] == 12
    assert event["max_holds_per_user"] == 6
    listed = (await client.get("/v1/events")).json()["events"]
    assert [e["id"] for e in listed] == [event["id"]]
    seats = (await client.get(f"/v1/events/{event['id']}/seats")).json()["seats"]
    assert [s["id"] for s in seats] == [f"S{n}" for n in range(1, 13)]
    assert {s["status"] for s in seats} == {"available"}


async def test_fixed_offset_kept_without_timezone(client: Client) -> None:
    event = await make_event(client, starts_at="2030-06-01T20:00:00.000-03:30")
    assert event["starts_at"] == "2030-06-01T20:00:00.000-03:30"
    assert event["timezone"] is None


async def test_best_available_lowest_numbers_then_named_seats(client: Client) -> None:
    event = await make_event(client)
    eid = event["id"]
    best = await client.post(f"/v1/events/{eid}/holds", json={"user_id": "a", "count": 3})
    assert best.status_code == 201, best.text
    assert best.json()["seats"] == ["S1", "S2", "S3"] and best.json()["party_size"] == 3
    named = await client.post(
        f"/v1/events/{eid}/holds", json={"user_id": "b", "seats": ["S3", "S9"]}
    )
    assert named.status_code == 409 and named.json()["code"] == "unit_unavailable"
    assert "retry_after" in named.json()
    named = await client.post(
        f"/v1/events/{eid}/holds", json={"user_id": "b", "seats": ["S9", "S4"]}
    )
    assert named.status_code == 201 and named.json()["seats"] == ["S9", "S4"]
    again = await client.post(f"/v1/events/{eid}/holds", json={"user_id": "c", "count": 2})
    assert again.json()["seats"] == ["S5", "S6"]
    detail = (await client.get(f"/v1/events/{eid}")).json()
    assert detail["available_seats"] == 20 - 7
    held = (await client.get(f"/v1/events/{eid}/seats", params={"status": "held"})).json()["seats"]
    assert [s["id"] for s in held] == ["S1", "S2", "S3", "S4", "S5", "S6", "S9"]
    assert all("free_at" in s for s in held)


async def test_confirm_refresh_release_and_cancel_frees_every_seat(client: Client) -> None:
    eid = (await make_event(client))["id"]
    hold = (await client.post(f"/v1/events/{eid}/holds", json={"user_id": "a", "count": 4})).json()
    token = {"Hold-Token": hold["token"]}
    refreshed = await client.post(f"/v1/events/{eid}/holds/{hold['id']}/refresh", headers=token)
    assert refreshed.status_code == 200 and refreshed.json()["seats"] == hold["seats"]
    assert (
        await client.get(f"/v1/events/{eid}/holds/{hold['id']}", headers=token)
    ).status_code == 200
    confirmed = await client.post(
        f"/v1/events/{eid}/holds/{hold['id']}/confirm",
        json={"name": "Fan", "phone": "+33 1 23 45 67 89"},
        headers=token,
    )
    assert confirmed.status_code == 201, confirmed.text
    reservation = confirmed.json()
    assert reservation["seats"] == ["S1", "S2", "S3", "S4"] and reservation["party_size"] == 4
    assert "table_id" not in reservation
    assert (await client.get(f"/v1/events/{eid}")).json()["available_seats"] == 16
    reserved = (await client.get(f"/v1/events/{eid}/seats", params={"status": "reserved"})).json()[
        "seats"
    ]
    assert len(reserved) == 4
    listed = (await client.get(f"/v1/events/{eid}/reservations", headers=ADMIN)).json()[
        "reservations"
    ]
    assert [r["reference"] for r in listed] == [reservation["reference"]]
    cancelled = await client.delete(
        f"/v1/reservations/{reservation['reference']}",
        headers={"Manage-Token": reservation["manage_token"]},
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await client.get(f"/v1/events/{eid}")).json()["available_seats"] == 20
    other = (
        await client.post(
            f"/v1/events/{eid}/holds", json={"user_id": "b", "seats": ["S1", "S2", "S3", "S4"]}
        )
    ).json()
    release = await client.delete(
        f"/v1/events/{eid}/holds/{other['id']}", headers={"Hold-Token": other["token"]}
    )
    assert release.status_code == 204
    assert (await client.get(f"/v1/events/{eid}")).json()["available_seats"] == 20


async def test_cap_refuses_and_changes_nothing(client: Client, redis: Redis) -> None:
    eid = (await make_event(client, max_holds_per_user=4))["id"]
    assert (
        await client.post(f"/v1/events/{eid}/holds", json={"user_id": "a", "count": 3})
    ).status_code == 201
    before = await redis.hgetall(f"hs:{{{eid}}}:cells:2030-06-01T20:00")
    refused = await client.post(f"/v1/events/{eid}/holds", json={"user_id": "a", "count": 2})
    assert refused.status_code == 409 and refused.json()["code"] == "hold_limit_reached"
    assert await redis.hgetall(f"hs:{{{eid}}}:cells:2030-06-01T20:00") == before
    assert (
        await client.post(f"/v1/events/{eid}/holds", json={"user_id": "a", "count": 1})
    ).status_code == 201


async def test_not_enough_seats(client: Client) -> None:
    eid = (await make_event(client, 10, max_holds_per_user=20))["id"]
    assert (
        await client.post(f"/v1/events/{eid}/holds", json={"user_id": "a", "count": 8})
    ).status_code == 201
    short = await client.post(f"/v1/events/{eid}/holds", json={"user_id": "b", "count": 3})
    assert short.status_code == 409 and short.json()["code"] == "not_enough_seats"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"user_id": "a", "seats": ["S99"]}, 404),
        ({"user_id": "a", "seats": ["S1", "S1"]}, 400),
        ({"user_id": "a", "count": 0}, 400),
        ({"user_id": "a", "count": 7}, 409),
        ({"user_id": "a", "count": 1001}, 400),
        ({"user_id": "a", "count": "2"}, 400),
        ({"user_id": "a"}, 400),
        ({"user_id": "a", "count": 1, "seats": ["S1"]}, 400),
        ({"user_id": "a", "seats": []}, 400),
    ],
)
async def test_bad_seat_holds(
    client: Client, redis: Redis, body: dict[str, Any], status: int
) -> None:
    eid = (await make_event(client))["id"]
    answer = await client.post(f"/v1/events/{eid}/holds", json=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert await redis.hlen(f"hs:{{{eid}}}:cells:2030-06-01T20:00") == 0


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "starts_at": "2030-06-01T20:00:00+02:00", "total_seats": 9},
        {"name": "x", "starts_at": "2030-06-01T20:00:00+02:00", "total_seats": 10_001},
        {"name": "x", "starts_at": "2030-06-01 20:00", "total_seats": 10},
        {"name": "x", "starts_at": "2030-06-01T20:00:00", "total_seats": 10},
        {"name": "x", "starts_at": "2030-06-01T20:00:00Z", "total_seats": "10"},
        {
            "name": "x",
            "starts_at": "2030-06-01T20:00:00Z",
            "total_seats": 10,
            "timezone": "Nowhere/City",
        },
    ],
)
async def test_bad_events(client: Client, body: dict[str, Any]) -> None:
    answer = await client.post("/v1/events", json=body, headers=ADMIN)
    assert answer.status_code == 400 and answer.json()["code"] == "validation_error"
    assert (await client.get("/v1/events")).json()["events"] == []


async def test_event_in_the_past_refuses_holds(client: Client) -> None:
    eid = (await make_event(client, starts_at="2020-01-01T10:00:00Z"))["id"]
    answer = await client.post(f"/v1/events/{eid}/holds", json={"user_id": "a", "count": 1})
    assert answer.status_code == 409 and answer.json()["code"] == "slot_in_past"


async def test_unknown_and_wrong_kind_are_404(client: Client) -> None:
    assert (await client.get("/v1/events/NOPE42")).status_code == 404
    eid = (await make_event(client))["id"]
    assert (await client.get(f"/v1/restaurants/{eid}")).status_code == 404
    answer = await client.post(
        f"/v1/restaurants/{eid}/holds",
        json={"user_id": "a", "slot": "2030-06-01T20:00", "party_size": 1},
    )
    assert answer.status_code == 404


# -- races through a real server ----------------------------------------------------------------


async def race_event(http: httpx.AsyncClient, server: ServerProcess, seats: int) -> str:
    body = {"name": "Race", "starts_at": next_week(), "total_seats": seats}
    created = await http.post(
        "/v1/events", json=body, headers={"Authorization": f"Bearer {server.admin_token}"}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@pytest.mark.race
async def test_200_users_racing_for_the_same_2_seats(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    eid = await race_event(http, server, 50)
    answers = await asyncio.gather(
        *(
            http.post(f"/v1/events/{eid}/holds", json={"user_id": f"u{i}", "seats": ["S7", "S8"]})
            for i in range(200)
        )
    )
    assert Counter(a.status_code for a in answers) == {201: 1, 409: 199}


@pytest.mark.race
async def test_100_users_count_3_on_150_seats_exactly_50_win(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    eid = await race_event(http, server, 150)
    answers = await asyncio.gather(
        *(
            http.post(f"/v1/events/{eid}/holds", json={"user_id": f"u{i}", "count": 3})
            for i in range(100)
        )
    )
    codes = Counter(a.status_code for a in answers)
    assert codes == {201: 50, 409: 50}
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"not_enough_seats"}
    held = [seat for a in answers if a.status_code == 201 for seat in a.json()["seats"]]
    assert len(held) == 150 and len(set(held)) == 150
    assert (await http.get(f"/v1/events/{eid}")).json()["available_seats"] == 0
