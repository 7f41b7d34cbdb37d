"""Bounded work: tables per restaurant, days per grid query, table states per page, and every
list that can grow without bound answered a page at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from redis.asyncio import Redis

from holdsvc.connection import connect_redis
from holdsvc.errors import ValidationFailed
from holdsvc.metrics import Metrics
from holdsvc.models import RestaurantInput, TableInput
from holdsvc.services import Services
from holdsvc.settings import Settings
from tests.conftest import MakeClient
from tests.helpers import (
    ADMIN,
    Client,
    Send,
    assert_problem,
    assert_refused_unchanged,
    day_after,
    new_reservation,
    new_venue,
    restaurant_body,
    slot_tomorrow,
    tomorrow,
)


async def every_page(client: Client, url: str, key: str, **params: Any) -> list[list[Any]]:
    """The items of each page of a list, following next_cursor to the end."""
    pages: list[list[Any]] = []
    query = dict(params)
    while True:
        answer = await client.get(url, params=query, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append(body[key])
        if "next_cursor" not in body:
            return pages
        assert body["next_cursor"], body
        query = {**params, "cursor": body["next_cursor"]}


# -- tables per restaurant --------------------------------------------------------------------


async def test_tables_beyond_the_limit_are_refused_and_none_is_added(
    make_client: MakeClient, redis: Redis
) -> None:
    async with make_client(max_tables_per_venue=3) as client:
        rid = await new_venue(client, capacities=(2, 2))
        url = f"/v1/restaurants/{rid}/tables"
        two = {"tables": [{"capacity": 4}, {"capacity": 4}]}
        await assert_refused_unchanged(
            redis,
            {"two more": partial(client.post, url, json=two, headers=ADMIN)},
            400,
            "validation_error",
        )
        refused = (await client.post(url, json=two, headers=ADMIN)).json()
        assert "at most 3 tables" in refused["detail"], refused
        added = await client.post(url, json={"tables": [{"capacity": 6}]}, headers=ADMIN)
        assert added.status_code == 201 and added.json()["tables"][0]["id"] == "T3"
        listed = (await client.get(url)).json()["tables"]
        assert [t["id"] for t in listed] == ["T1", "T2", "T3"]


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[Services]:
    """The service layer with a limit of 10 tables per restaurant."""
    capped = settings.model_copy(update={"max_tables_per_venue": 10})
    client = connect_redis(capped)
    await client.flushall()
    built = Services.build(client, capped, Metrics())
    await built.scripts.load()
    try:
        yield built
    finally:
        await client.aclose()


async def test_the_table_limit_holds_when_adds_race(limited: Services) -> None:
    """Ten adds of two tables at once under a limit of ten: exactly five get in."""
    created = await limited.restaurants.create(
        RestaurantInput(
            name="Race", phone="+12125550100", timezone="UTC", opens="10:00", closes="22:00"
        )
    )
    pair = [TableInput(capacity=2), TableInput(capacity=4)]
    results = await asyncio.gather(
        *(limited.restaurants.add_tables(created.id, pair) for _ in range(10)),
        return_exceptions=True,
    )
    added = [r for r in results if isinstance(r, list)]
    assert len(added) == 5
    assert all(isinstance(r, ValidationFailed) for r in results if not isinstance(r, list))
    ids = [table.id for tables in added for table in tables]
    assert sorted(ids, key=lambda i: int(i[1:])) == [f"T{n}" for n in range(1, 11)]
    assert [t.id for t in await limited.restaurants.tables(created.id)] == [
        f"T{n}" for n in range(1, 11)
    ]


# -- days and table states per grid query -----------------------------------------------------


async def test_a_year_of_15_minute_slots_is_not_one_answer(client: Client, redis: Redis) -> None:
    """The grid may span a year; one read of it spans at most 31 days and one page holds at
    most HOLDSVC_MAX_CELLS_PER_PAGE table states (20 000)."""
    created = await client.post(
        "/v1/restaurants",
        json=restaurant_body(opens="00:00", closes="23:59", slot_minutes=15),
        headers=ADMIN,
    )
    rid = created.json()["id"]
    tables = {"tables": [{"capacity": 2}] * 40}
    assert (
        await client.post(f"/v1/restaurants/{rid}/tables", json=tables, headers=ADMIN)
    ).is_success
    year = {"from": tomorrow(), "to": day_after(366)}
    laid = await client.post(f"/v1/restaurants/{rid}/slots", json=year, headers=ADMIN)
    assert laid.status_code == 201 and laid.json()["total"] == 366 * 95
    base = f"/v1/restaurants/{rid}"
    await assert_refused_unchanged(
        redis,
        {
            "slots, a year": partial(client.get, f"{base}/slots", params=year),
            "availability, a year": partial(client.get, f"{base}/availability", params=year),
            "slots, 32 days": partial(
                client.get, f"{base}/slots", params={"from": tomorrow(), "to": day_after(32)}
            ),
        },
        400,
        "validation_error",
    )
    month = {"from": tomorrow(), "to": day_after(31)}
    first = await client.get(f"{base}/slots", params=month)
    assert first.status_code == 200
    slots = first.json()["slots"]
    assert sum(len(s["tables"]) for s in slots) <= 20_000 and len(slots) == 500
    assert len(first.content) < 2_500_000, len(first.content)
    pages = await every_page(client, f"{base}/slots", "slots", **month)
    assert sum(len(p) for p in pages) == 31 * 95
    starts = [s["starts_at"] for p in pages for s in p]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


async def test_slot_pages_join_into_the_whole_range(make_client: MakeClient) -> None:
    async with make_client(max_cells_per_page=100) as client:
        rid = await new_venue(client, capacities=(2,) * 10, last=day_after(2))
        base = f"/v1/restaurants/{rid}"
        days = {"from": tomorrow(), "to": day_after(2)}
        pages = await every_page(client, f"{base}/slots", "slots", **days)
        assert [len(p) for p in pages] == [10, 10, 4]
        await new_reservation(client, rid, table="T1", slot=slot_tomorrow(10))
        free = await every_page(client, f"{base}/availability", "slots", **days, limit=5)
        assert [len(p) for p in free] == [5, 5, 5, 5, 4]
        assert free[0][0]["tables"][0]["id"] == "T2"  # T1 is taken at 10:00
        assert sum(len(p) for p in free) == 24


# -- lists, a page at a time ------------------------------------------------------------------


async def test_restaurants_and_events_page_by_cursor(client: Client) -> None:
    rids = [
        (
            await client.post("/v1/restaurants", json=restaurant_body(name=f"R{n}"), headers=ADMIN)
        ).json()["id"]
        for n in range(5)
    ]
    whole = (await client.get("/v1/restaurants")).json()
    assert "next_cursor" not in whole and [r["id"] for r in whole["restaurants"]] == rids
    first = (await client.get("/v1/restaurants", params={"limit": 2})).json()
    # A venue created meanwhile comes at the end: the cursor is a position, not an offset.
    later = (await client.post("/v1/restaurants", json=restaurant_body(), headers=ADMIN)).json()
    rest = await every_page(
        client, "/v1/restaurants", "restaurants", limit=2, cursor=first["next_cursor"]
    )
    seen = [r["id"] for r in first["restaurants"]] + [r["id"] for p in rest for r in p]
    assert seen == [*rids, later["id"]]
    starts = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0).isoformat()
    eids = [
        (
            await client.post(
                "/v1/events",
                json={"name": f"E{n}", "starts_at": starts, "total_seats": 25},
                headers=ADMIN,
            )
        ).json()["id"]
        for n in range(3)
    ]
    pages = await every_page(client, "/v1/events", "events", limit=2)
    assert [[e["id"] for e in p] for p in pages] == [eids[:2], eids[2:]]
    seats = await every_page(client, f"/v1/events/{eids[0]}/seats", "seats", limit=10)
    assert [len(p) for p in seats] == [10, 10, 5]
    assert [s["id"] for p in seats for s in p] == [f"S{n}" for n in range(1, 26)]
    held = await client.post(f"/v1/events/{eids[0]}/holds", json={"user_id": "u", "count": 3})
    assert held.status_code == 201
    free = await every_page(
        client, f"/v1/events/{eids[0]}/seats", "seats", status="available", limit=10
    )
    assert [s["id"] for p in free for s in p] == [f"S{n}" for n in range(4, 26)]


async def test_reservation_lists_page_by_cursor(client: Client) -> None:
    rid = await new_venue(client, capacities=(2, 2, 2))
    made = [
        await new_reservation(
            client, rid, f"u{n}", table=f"T{n % 3 + 1}", slot=slot_tomorrow(10 + n)
        )
        for n in range(7)
    ]
    url = f"/v1/restaurants/{rid}/reservations"
    pages = await every_page(client, url, "reservations", limit=3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [r["reference"] for p in pages for r in p] == [r["reference"] for r in made]
    cancelled = {made[n]["reference"] for n in (1, 4, 5)}
    for reference in cancelled:
        await client.delete(f"/v1/reservations/{reference}", headers=ADMIN)
    only = await every_page(client, url, "reservations", limit=2, status="cancelled")
    assert {r["reference"] for p in only for r in p} == cancelled
    by_phone = await every_page(
        client, "/v1/reservations", "reservations", phone="+12125550100", limit=4
    )
    assert [len(p) for p in by_phone] == [4, 3]
    assert [r["reference"] for p in by_phone for r in p] == [r["reference"] for r in made]


async def test_a_cursor_we_did_not_hand_out_is_a_400(client: Client, redis: Redis) -> None:
    rid = await new_venue(client)
    cases: dict[str, Send] = {
        f"{url} {cursor!r}": partial(client.get, url, params={"cursor": cursor}, headers=ADMIN)
        for url in ("/v1/restaurants", "/v1/events", f"/v1/restaurants/{rid}/reservations")
        for cursor in ("nope", "W10", "WyJhIiwxXQ", "bnVsbA")
    }
    await assert_refused_unchanged(redis, cases, 400, "validation_error")
    assert_problem(
        await client.get("/v1/restaurants", params={"limit": 0}), 400, "validation_error"
    )
