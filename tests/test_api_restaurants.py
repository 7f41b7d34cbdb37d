"""HTTP contract, end to end: restaurants, their tables and slot grids.

Every refused request is checked to be ``application/problem+json`` with its stable code and
to leave Redis exactly as it was.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any
from urllib.parse import quote

from redis.asyncio import Redis

from tests.cluster import both_backends
from tests.helpers import (
    ADMIN,
    Client,
    Send,
    assert_problem,
    assert_refused_unchanged,
    day_after,
    hold_http,
    new_venue,
    restaurant_body,
    slot_tomorrow,
    snapshot_keys,
    tomorrow,
)

# Every test here runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends

# Ids of every shape: none of them exists, so each is a 404 (never a 400 or a 500).
ODD_IDS = [
    "NOSUCH",
    "nosuch",
    "a/b",
    "x" * 300,
    "{hs}",
    "a:b:c",
    "ÄÖÜ",
    "1",
    "T1",
    "*",
    "a%b",
    "a b",
]


def path_id(value: str) -> str:
    """An id as one URL path segment."""
    return quote(value, safe="")


# -- restaurants ------------------------------------------------------------------------------


async def test_create_restaurant_applies_defaults_and_normalises_phone(client: Client) -> None:
    response = await client.post("/v1/restaurants", json=restaurant_body(), headers=ADMIN)
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["id"], str) and body["id"]
    assert body | {"id": "x", "created_at": "x"} == {
        "id": "x",
        "name": "Test Bistro",
        "phone": "+12125550100",
        "timezone": "UTC",
        "opens": "10:00",
        "closes": "22:00",
        "slot_minutes": 60,
        "hold_seconds": 600,
        "max_hold_seconds": 1800,
        "max_holds_per_user": 6,
        "min_notice_minutes": 0,
        "max_days_ahead": 90,
        "bookings_open": True,
        "created_at": "x",
        "schedule": None,
        "horizon_days": 0,
        "address": "",
        "description": "",
        "locale": "en-US",
        "reminder_hours": 0,
        "durations": None,
        "max_covers_per_slot": 0,
        "one_booking_per_guest": False,
        "max_waitlist": 100,
        "offer_seconds": 900,
    }
    fetched = await client.get(f"/v1/restaurants/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == body


async def test_create_restaurant_takes_every_optional_rule(client: Client) -> None:
    rules = {
        "slot_minutes": 90,
        "hold_seconds": 120,
        "max_hold_seconds": 240,
        "max_holds_per_user": 3,
        "min_notice_minutes": 30,
        "max_days_ahead": 14,
    }
    body = restaurant_body(timezone="Europe/Paris", **rules)
    response = await client.post("/v1/restaurants", json=body, headers=ADMIN)
    assert response.status_code == 201
    created = response.json()
    assert {name: created[name] for name in rules} == rules
    assert created["timezone"] == "Europe/Paris"
    assert created["created_at"][-6:] in ("+01:00", "+02:00")


async def test_list_restaurants_oldest_first(client: Client) -> None:
    assert (await client.get("/v1/restaurants")).json() == {"restaurants": []}
    first = await new_venue(client, capacities=())
    second = await new_venue(client, capacities=(), name="Second")
    response = await client.get("/v1/restaurants")
    assert response.status_code == 200
    listed = response.json()["restaurants"]
    assert [r["id"] for r in listed] == [first, second]
    assert listed[1]["name"] == "Second"
    assert listed[0] == (await client.get(f"/v1/restaurants/{first}")).json()


async def test_admin_endpoints_need_a_valid_admin_token(client: Client, redis: Redis) -> None:
    rid = await new_venue(client)
    variants = {
        "none": {},
        "wrong-token": {"Authorization": "Bearer wrong"},
        "empty-bearer": {"Authorization": "Bearer "},
        "no-scheme": {"Authorization": "test-admin"},
        "basic-scheme": {"Authorization": "Basic test-admin"},
        "manage-token-header": {"Manage-Token": "test-admin"},
    }
    cases: dict[str, Send] = {}
    for name, headers in variants.items():
        cases |= {
            f"create-{name}": partial(
                client.post, "/v1/restaurants", json=restaurant_body(), headers=headers
            ),
            f"patch-{name}": partial(
                client.patch, f"/v1/restaurants/{rid}", json={"name": "x"}, headers=headers
            ),
            f"tables-{name}": partial(
                client.post,
                f"/v1/restaurants/{rid}/tables",
                json={"tables": [{"capacity": 2}]},
                headers=headers,
            ),
            f"slots-{name}": partial(
                client.post,
                f"/v1/restaurants/{rid}/slots",
                json={"from": day_after(5), "to": day_after(6)},
                headers=headers,
            ),
            f"staff-list-{name}": partial(
                client.get, f"/v1/restaurants/{rid}/reservations", headers=headers
            ),
            f"phone-search-{name}": partial(
                client.get, "/v1/reservations", params={"phone": "+12125550100"}, headers=headers
            ),
        }
    await assert_refused_unchanged(redis, cases, 401, "unauthorized")


async def test_create_restaurant_rejects_bad_input(client: Client, redis: Redis) -> None:
    bodies: dict[str, bytes] = {
        "malformed-json": b'{"name": ',
        "empty-body": b"",
        "null-body": b"null",
        "array-body": b"[]",
        "not-utf8": b"\xff\xfe",
    }
    changes: dict[str, dict[str, Any]] = {
        "name-201": {"name": "n" * 201},
        "name-empty": {"name": ""},
        "name-number": {"name": 5},
        "name-null": {"name": None},
        "phone-not-a-phone": {"phone": "call me"},
        "phone-number": {"phone": 2125550100},
        "timezone-unknown": {"timezone": "Mars/Olympus_Mons"},
        "timezone-empty": {"timezone": ""},
        "opens-25h": {"opens": "25:00"},
        "opens-pm": {"opens": "7pm"},
        "closes-equals-opens": {"closes": "10:00"},
        "slot-minutes-14": {"slot_minutes": 14},
        "slot-minutes-241": {"slot_minutes": 241},
        "slot-minutes-string": {"slot_minutes": "60"},
        "slot-minutes-float": {"slot_minutes": 60.5},
        "slot-minutes-bool": {"slot_minutes": True},
        "hold-seconds-0": {"hold_seconds": 0},
        "hold-seconds-86401": {"hold_seconds": 86_401},
        "hold-seconds-string": {"hold_seconds": "600"},
        "max-hold-below-hold": {"hold_seconds": 600, "max_hold_seconds": 599},
        "max-hold-604801": {"max_hold_seconds": 604_801},
        "max-holds-0": {"max_holds_per_user": 0},
        "max-holds-1001": {"max_holds_per_user": 1001},
        "min-notice-negative": {"min_notice_minutes": -1},
        "min-notice-525601": {"min_notice_minutes": 525_601},
        "max-days-0": {"max_days_ahead": 0},
        "max-days-3661": {"max_days_ahead": 3661},
        "unknown-field": {"colour": "red"},
        "id-not-settable": {"id": "MINE"},
        "100kB-name": {"name": "n" * 100_000},
    }
    for case_id, change in changes.items():
        bodies[case_id] = json.dumps(restaurant_body(**change)).encode()
    missing = restaurant_body()
    del missing["name"]
    bodies["missing-name"] = json.dumps(missing).encode()
    headers = {**ADMIN, "Content-Type": "application/json"}
    cases: dict[str, Send] = {
        case_id: partial(client.post, "/v1/restaurants", content=body, headers=headers)
        for case_id, body in bodies.items()
    }
    await assert_refused_unchanged(redis, cases, 400, "validation_error")
    assert (await client.get("/v1/restaurants")).json() == {"restaurants": []}


async def test_patch_restaurant_changes_each_field(client: Client) -> None:
    rid = await new_venue(client)
    change = {
        "name": "Renamed",
        "phone": "+44 20 7946 0958",
        "bookings_open": False,
        "hold_seconds": 300,
        "max_hold_seconds": 900,
        "max_holds_per_user": 2,
        "min_notice_minutes": 60,
        "max_days_ahead": 30,
    }
    response = await client.patch(f"/v1/restaurants/{rid}", json=change, headers=ADMIN)
    assert response.status_code == 200
    patched = response.json()
    assert {name: patched[name] for name in change} == change | {"phone": "+442079460958"}
    assert (await client.get(f"/v1/restaurants/{rid}")).json() == patched
    # An empty patch changes nothing and answers the restaurant.
    same = await client.patch(f"/v1/restaurants/{rid}", json={}, headers=ADMIN)
    assert same.status_code == 200
    assert same.json() == patched


async def test_patch_restaurant_rejects_bad_input(client: Client, redis: Redis) -> None:
    rid = await new_venue(client)
    bodies = {
        "malformed-json": b"{",
        "bool-as-string": b'{"bookings_open": "false"}',
        "bool-null": b'{"bookings_open": null}',
        "name-empty": b'{"name": ""}',
        "name-201": json.dumps({"name": "n" * 201}).encode(),
        "hold-seconds-0": b'{"hold_seconds": 0}',
        "hold-seconds-86401": b'{"hold_seconds": 86401}',
        "max-hold-below-current-hold": b'{"max_hold_seconds": 599}',
        "hold-above-current-max-hold": b'{"hold_seconds": 1801}',
        "max-holds-0": b'{"max_holds_per_user": 0}',
        "max-holds-1001": b'{"max_holds_per_user": 1001}',
        "max-holds-string": b'{"max_holds_per_user": "4"}',
        "slot-minutes-not-patchable": b'{"slot_minutes": 30}',
        "timezone-not-patchable": b'{"timezone": "UTC"}',
        "phone-not-a-phone": b'{"phone": "nope"}',
        "unknown-field": b'{"colour": "red"}',
        "100kB-name": json.dumps({"name": "n" * 100_000}).encode(),
    }
    headers = {**ADMIN, "Content-Type": "application/json"}
    cases: dict[str, Send] = {
        case_id: partial(client.patch, f"/v1/restaurants/{rid}", content=body, headers=headers)
        for case_id, body in bodies.items()
    }
    await assert_refused_unchanged(redis, cases, 400, "validation_error")


async def test_pausing_bookings_refuses_holds_until_resumed(client: Client, redis: Redis) -> None:
    rid = await new_venue(client)
    paused = await client.patch(
        f"/v1/restaurants/{rid}", json={"bookings_open": False}, headers=ADMIN
    )
    assert paused.json()["bookings_open"] is False
    before = await snapshot_keys(redis)
    assert_problem(await hold_http(client, rid), 409, "bookings_paused")
    assert await snapshot_keys(redis) == before
    resumed = await client.patch(
        f"/v1/restaurants/{rid}", json={"bookings_open": True}, headers=ADMIN
    )
    assert resumed.json()["bookings_open"] is True
    assert (await hold_http(client, rid)).status_code == 201


async def test_unknown_venue_is_404_on_every_venue_endpoint(client: Client, redis: Redis) -> None:
    await new_venue(client)
    days = {"from": tomorrow(), "to": tomorrow()}
    hold = {"user_id": "u1", "slot": slot_tomorrow(), "party_size": 2}
    cases: dict[str, Send] = {}
    for rid in ODD_IDS:
        base = f"/v1/restaurants/{path_id(rid)}"
        cases |= {
            f"get {rid}": partial(client.get, base),
            f"patch {rid}": partial(client.patch, base, json={"name": "x"}, headers=ADMIN),
            f"tables {rid}": partial(client.get, f"{base}/tables"),
            f"add-tables {rid}": partial(
                client.post, f"{base}/tables", json={"tables": [{"capacity": 2}]}, headers=ADMIN
            ),
            f"add-slots {rid}": partial(client.post, f"{base}/slots", json=days, headers=ADMIN),
            f"slots {rid}": partial(client.get, f"{base}/slots", params=days),
            f"slot {rid}": partial(client.get, f"{base}/slots/{slot_tomorrow()}"),
            f"availability {rid}": partial(
                client.get, f"{base}/availability", params=days | {"party_size": "2"}
            ),
            f"hold {rid}": partial(client.post, f"{base}/holds", json=hold),
            f"staff-list {rid}": partial(client.get, f"{base}/reservations", headers=ADMIN),
        }
    await assert_refused_unchanged(redis, cases, 404, "not_found")


async def test_unknown_route_is_a_404_problem(client: Client) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404, "not_found")


# -- tables -----------------------------------------------------------------------------------


async def test_add_and_list_tables_in_creation_order(client: Client) -> None:
    rid = await new_venue(client, capacities=())
    added = await client.post(
        f"/v1/restaurants/{rid}/tables",
        json={"tables": [{"capacity": 4, "label": "Window"}, {"capacity": 2}, {"capacity": 8}]},
        headers=ADMIN,
    )
    assert added.status_code == 201
    expected = [
        {"id": "T1", "label": "Window", "capacity": 4},
        {"id": "T2", "label": None, "capacity": 2},
        {"id": "T3", "label": None, "capacity": 8},
    ]
    assert added.json() == {"tables": expected}
    more = await client.post(
        f"/v1/restaurants/{rid}/tables", json={"tables": [{"capacity": 2}]}, headers=ADMIN
    )
    assert more.json()["tables"][0]["id"] == "T4"
    listed = await client.get(f"/v1/restaurants/{rid}/tables")
    assert listed.status_code == 200
    assert listed.json() == {"tables": [*expected, {"id": "T4", "label": None, "capacity": 2}]}


async def test_add_tables_rejects_bad_input(client: Client, redis: Redis) -> None:
    rid = await new_venue(client)
    bodies: dict[str, object] = {
        "capacity-1": {"tables": [{"capacity": 1}]},
        "capacity-9": {"tables": [{"capacity": 9}]},
        "capacity-string": {"tables": [{"capacity": "4"}]},
        "capacity-null": {"tables": [{"capacity": None}]},
        "capacity-float": {"tables": [{"capacity": 4.0}]},
        "label-empty": {"tables": [{"capacity": 4, "label": ""}]},
        "label-201": {"tables": [{"capacity": 4, "label": "l" * 201}]},
        "label-number": {"tables": [{"capacity": 4, "label": 7}]},
        "unknown-table-field": {"tables": [{"capacity": 4, "seats": 4}]},
        "no-tables": {"tables": []},
        "one-bad-of-two": {"tables": [{"capacity": 4}, {"capacity": 0}]},
        "not-a-list": {"tables": {"capacity": 4}},
        "missing-tables": {},
        "null": None,
    }
    cases: dict[str, Send] = {
        case_id: partial(client.post, f"/v1/restaurants/{rid}/tables", json=body, headers=ADMIN)
        for case_id, body in bodies.items()
    }
    await assert_refused_unchanged(redis, cases, 400, "validation_error")
    assert [
        t["id"] for t in (await client.get(f"/v1/restaurants/{rid}/tables")).json()["tables"]
    ] == ["T1", "T2"]


# -- slot grid --------------------------------------------------------------------------------


async def test_add_slots_is_idempotent(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,), first=tomorrow())
    # new_venue already laid out tomorrow: asking again creates nothing.
    again = await client.post(
        f"/v1/restaurants/{rid}/slots", json={"from": tomorrow(), "to": tomorrow()}, headers=ADMIN
    )
    assert again.status_code == 201
    assert again.json() == {"created": 0, "total": 12}
    wider = await client.post(
        f"/v1/restaurants/{rid}/slots",
        json={"from": tomorrow(), "to": day_after(3)},
        headers=ADMIN,
    )
    assert wider.json() == {"created": 24, "total": 36}
    repeat = await client.post(
        f"/v1/restaurants/{rid}/slots",
        json={"from": tomorrow(), "to": day_after(3)},
        headers=ADMIN,
    )
    assert repeat.json() == {"created": 0, "total": 36}


async def test_slot_grid_follows_slot_minutes_and_past_midnight_closing(client: Client) -> None:
    rid = await new_venue(client, opens="18:00", closes="01:30", slot_minutes=45)
    view = await client.get(
        f"/v1/restaurants/{rid}/slots", params={"from": tomorrow(), "to": day_after(2)}
    )
    slots = [s["slot"] for s in view.json()["slots"]]
    # 18:00 .. 00:45 every 45 minutes while the slot ends by 01:30 the next morning.
    expected_times = ["18:00", "18:45", "19:30", "20:15", "21:00", "21:45", "22:30", "23:15"]
    expected = [f"{tomorrow()}T{t}" for t in expected_times] + [
        f"{day_after(2)}T00:00",
        f"{day_after(2)}T00:45",
    ]
    assert slots == expected
    first = view.json()["slots"][0]
    assert first["starts_at"] == f"{tomorrow()}T18:00:00.000+00:00"
    assert first["ends_at"] == f"{tomorrow()}T18:45:00.000+00:00"


async def test_add_slots_rejects_bad_ranges(client: Client, redis: Redis) -> None:
    rid = await new_venue(client)
    bodies: dict[str, object] = {
        "367-days": {"from": day_after(1), "to": day_after(367)},
        "to-before-from": {"from": day_after(2), "to": day_after(1)},
        "not-a-date": {"from": "2026-02-30", "to": "2026-03-01"},
        "month-13": {"from": "2026-13-01", "to": "2026-13-02"},
        "word": {"from": "tomorrow", "to": "2026-03-01"},
        "short-date": {"from": "2026-3-1", "to": "2026-03-01"},
        "number": {"from": 20260301, "to": "2026-03-01"},
        "null": {"from": None, "to": "2026-03-01"},
        "missing-to": {"from": "2026-03-01"},
        "unknown-field": {"from": "2026-03-01", "to": "2026-03-01", "x": 1},
    }
    cases: dict[str, Send] = {
        case_id: partial(client.post, f"/v1/restaurants/{rid}/slots", json=body, headers=ADMIN)
        for case_id, body in bodies.items()
    }
    await assert_refused_unchanged(redis, cases, 400, "validation_error")
    # The longest range allowed: 366 days.
    longest = await client.post(
        f"/v1/restaurants/{rid}/slots",
        json={"from": day_after(10), "to": day_after(10 + 365)},
        headers=ADMIN,
    )
    assert longest.status_code == 201
    assert longest.json() == {"created": 366 * 12, "total": 367 * 12}
