"""HTTP contract, end to end: weekly schedules, closures, removing slots and the rolling grid.

Every refused request is checked to be ``application/problem+json`` with its stable code and to
leave Redis exactly as it was. The rolling grid is driven pass by pass through the service
(tests/test_races_grid.py runs it in a real 2-worker server).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from holdsvc.errors import Stale
from holdsvc.keys import Keys
from holdsvc.models import ClosureInput, RestaurantInput, RestaurantPatch, Schedule
from holdsvc.paging import PageRequest, page_request
from holdsvc.services import Services
from tests.cluster import both_backends
from tests.helpers import (
    ADMIN,
    Client,
    Send,
    assert_problem,
    assert_refused_unchanged,
    day_after,
    hold_http,
    lapse,
    new_hold,
    new_reservation,
    new_venue,
    restaurant_body,
    snapshot_keys,
)

# Every test here runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends

LUNCH = {"opens": "12:00", "closes": "14:30"}
DINNER = {"opens": "18:00", "closes": "22:00"}
LATE = {"opens": "18:00", "closes": "02:00"}
# Closed on Monday (left out) and Tuesday ([]), two services midweek, late on Friday.
WEEK: dict[str, list[dict[str, str]]] = {
    "tue": [],
    "wed": [LUNCH, DINNER],
    "thu": [DINNER],
    "fri": [LATE],
    "sat": [LUNCH, DINNER],
    "sun": [LUNCH],
}
MONDAY = date(2030, 1, 7)


def iso(day: date, days: int = 0) -> str:
    return (day + timedelta(days=days)).isoformat()


def next_monday() -> date:
    """The first Monday at least two days from today (UTC): every slot of its week is ahead."""
    start = datetime.now(UTC).date() + timedelta(days=2)
    return start + timedelta(days=-start.weekday() % 7)


async def slot_ids(client: Client, rid: str, first: str, last: str) -> list[str]:
    view = await client.get(f"/v1/restaurants/{rid}/slots", params={"from": first, "to": last})
    assert view.status_code == 200, view.text
    return [s["slot"] for s in view.json()["slots"]]


async def add_slots(client: Client, rid: str, first: str, last: str) -> dict[str, int]:
    grid = await client.post(
        f"/v1/restaurants/{rid}/slots", json={"from": first, "to": last}, headers=ADMIN
    )
    assert grid.status_code == 201, grid.text
    body: dict[str, int] = grid.json()
    return body


async def close(client: Client, rid: str, first: str, last: str, **extra: Any) -> dict[str, Any]:
    body = {"from": first, "to": last, **extra}
    closed = await client.post(f"/v1/restaurants/{rid}/closures", json=body, headers=ADMIN)
    assert closed.status_code == 201, closed.text
    result: dict[str, Any] = closed.json()
    return result


def hours(day: str, *times: str) -> list[str]:
    return [f"{day}T{t}" for t in times]


# -- schedules -----------------------------------------------------------------------------------


async def test_schedule_is_returned_as_given_and_null_without_one(client: Client) -> None:
    plain = await client.post("/v1/restaurants", json=restaurant_body(), headers=ADMIN)
    assert plain.json()["schedule"] is None
    assert plain.json()["horizon_days"] == 0
    created = await client.post(
        "/v1/restaurants", json=restaurant_body(schedule=WEEK, horizon_days=14), headers=ADMIN
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["schedule"] == WEEK
    assert body["horizon_days"] == 14
    rid = body["id"]
    assert (await client.get(f"/v1/restaurants/{rid}")).json() == body

    weekend = {"sat": [DINNER], "sun": [LUNCH]}
    patched = await client.patch(
        f"/v1/restaurants/{rid}", json={"schedule": weekend, "horizon_days": 0}, headers=ADMIN
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["schedule"] == weekend
    assert patched.json()["horizon_days"] == 0
    cleared = await client.patch(f"/v1/restaurants/{rid}", json={"schedule": None}, headers=ADMIN)
    assert cleared.json()["schedule"] is None
    assert (await client.get(f"/v1/restaurants/{rid}")).json()["schedule"] is None


async def test_grid_follows_the_schedule_day_by_day(client: Client) -> None:
    rid = await new_venue(client, schedule=WEEK, first=iso(MONDAY, 2), last=iso(MONDAY, 2))
    made = await add_slots(client, rid, iso(MONDAY), iso(MONDAY, 6))
    # Wed 2+4, Thu 4, Fri 8 (18:00..01:00 into Saturday), Sat 2+4, Sun 2: 26 (Wed was there).
    assert made == {"created": 20, "total": 26}
    slots = await slot_ids(client, rid, iso(MONDAY), iso(MONDAY, 7))
    expected = [
        *hours(iso(MONDAY, 2), "12:00", "13:00", "18:00", "19:00", "20:00", "21:00"),
        *hours(iso(MONDAY, 3), "18:00", "19:00", "20:00", "21:00"),
        *hours(iso(MONDAY, 4), "18:00", "19:00", "20:00", "21:00", "22:00", "23:00"),
        *hours(iso(MONDAY, 5), "00:00", "01:00", "12:00", "13:00"),
        *hours(iso(MONDAY, 5), "18:00", "19:00", "20:00", "21:00"),
        *hours(iso(MONDAY, 6), "12:00", "13:00"),
    ]
    assert slots == expected
    # Again: nothing twice.
    assert await add_slots(client, rid, iso(MONDAY), iso(MONDAY, 6)) == {"created": 0, "total": 26}


async def test_without_a_schedule_opens_and_closes_apply_every_day(client: Client) -> None:
    rid = await new_venue(client, first=iso(MONDAY), last=iso(MONDAY, 6))
    assert len(await slot_ids(client, rid, iso(MONDAY), iso(MONDAY, 6))) == 7 * 12


async def test_a_new_schedule_changes_the_slots_made_from_then_on(client: Client) -> None:
    rid = await new_venue(client, first=iso(MONDAY), last=iso(MONDAY))
    await client.patch(f"/v1/restaurants/{rid}", json={"schedule": WEEK}, headers=ADMIN)
    # Monday's existing slots stay (they may have bookings); Tuesday is closed now.
    assert await add_slots(client, rid, iso(MONDAY), iso(MONDAY, 2)) == {
        "created": 6,
        "total": 18,
    }


async def test_bad_schedules_are_refused_and_nothing_is_stored(
    client: Client, redis: Redis
) -> None:
    rid = await new_venue(client, schedule=WEEK)
    bad: dict[str, object] = {
        "overlap": {
            "wed": [{"opens": "12:00", "closes": "15:00"}, {"opens": "14:00", "closes": "18:00"}]
        },
        "overlap-past-midnight": {"fri": [LATE, {"opens": "23:00", "closes": "23:30"}]},
        "overlap-out-of-order": {"wed": [DINNER, {"opens": "17:00", "closes": "18:30"}]},
        "same-twice": {"wed": [LUNCH, LUNCH]},
        "five-services": {
            "sat": [{"opens": f"{h:02d}:00", "closes": f"{h:02d}:30"} for h in (8, 10, 12, 14, 16)]
        },
        "hour-24": {"mon": [{"opens": "24:00", "closes": "02:00"}]},
        "minute-60": {"mon": [{"opens": "12:60", "closes": "14:00"}]},
        "pm": {"mon": [{"opens": "7pm", "closes": "11pm"}]},
        "one-digit": {"mon": [{"opens": "9:00", "closes": "14:00"}]},
        "number": {"mon": [{"opens": 1200, "closes": 1400}]},
        "opens-equals-closes": {"mon": [{"opens": "12:00", "closes": "12:00"}]},
        "missing-closes": {"mon": [{"opens": "12:00"}]},
        "extra-field": {"mon": [{**LUNCH, "seats": 40}]},
        "unknown-day": {"monday": [LUNCH]},
        "day-null": {"mon": None},
        "day-not-a-list": {"mon": LUNCH},
        "not-an-object": [LUNCH],
        "a-string": "mon-fri 12-22",
    }
    cases: dict[str, Send] = {}
    for case_id, schedule in bad.items():
        cases[f"create-{case_id}"] = partial(
            client.post, "/v1/restaurants", json=restaurant_body(schedule=schedule), headers=ADMIN
        )
        cases[f"patch-{case_id}"] = partial(
            client.patch, f"/v1/restaurants/{rid}", json={"schedule": schedule}, headers=ADMIN
        )
    for case_id, horizon in {"-1": -1, "367": 367, "string": "7", "float": 7.5}.items():
        cases[f"horizon-{case_id}"] = partial(
            client.patch, f"/v1/restaurants/{rid}", json={"horizon_days": horizon}, headers=ADMIN
        )
    await assert_refused_unchanged(redis, cases, 400, "validation_error")
    assert len((await client.get("/v1/restaurants")).json()["restaurants"]) == 1


async def test_services_may_touch_and_four_fit_in_a_day(client: Client) -> None:
    four = [
        {"opens": "07:00", "closes": "10:00"},
        {"opens": "10:00", "closes": "12:00"},
        {"opens": "12:00", "closes": "15:00"},
        {"opens": "18:00", "closes": "01:00"},
    ]
    rid = await new_venue(client, schedule={"mon": four}, first=iso(MONDAY), last=iso(MONDAY))
    slots = await slot_ids(client, rid, iso(MONDAY), iso(MONDAY, 1))
    assert len(slots) == 3 + 2 + 3 + 7


async def test_a_service_across_both_dst_nights_in_berlin(client: Client) -> None:
    """Saturday's 22:00-04:00 service on the nights the clocks change: 02:00 does not exist in
    March (no phantom slot); in October it happens twice but is one slot (no duplicate)."""
    late_saturday = {"sat": [{"opens": "22:00", "closes": "04:00"}]}
    rid = await new_venue(
        client,
        timezone="Europe/Berlin",
        schedule=late_saturday,
        first="2030-03-30",
        last="2030-03-30",
    )
    await add_slots(client, rid, "2030-10-26", "2030-10-26")
    spring = (
        await client.get(
            f"/v1/restaurants/{rid}/slots", params={"from": "2030-03-30", "to": "2030-03-31"}
        )
    ).json()["slots"]
    assert [(s["slot"][11:], s["starts_at"][11:]) for s in spring] == [
        ("22:00", "22:00:00.000+01:00"),
        ("23:00", "23:00:00.000+01:00"),
        ("00:00", "00:00:00.000+01:00"),
        ("01:00", "01:00:00.000+01:00"),
        ("03:00", "03:00:00.000+02:00"),
    ]
    assert spring[3]["ends_at"] == "2030-03-31T03:00:00.000+02:00"
    autumn = (
        await client.get(
            f"/v1/restaurants/{rid}/slots", params={"from": "2030-10-26", "to": "2030-10-27"}
        )
    ).json()["slots"]
    assert [(s["slot"][11:], s["starts_at"][11:]) for s in autumn] == [
        ("22:00", "22:00:00.000+02:00"),
        ("23:00", "23:00:00.000+02:00"),
        ("00:00", "00:00:00.000+02:00"),
        ("01:00", "01:00:00.000+02:00"),
        ("02:00", "02:00:00.000+02:00"),
        ("03:00", "03:00:00.000+01:00"),
    ]
    starts = [s["starts_at"] for s in [*spring, *autumn]]
    assert len(set(starts)) == len(starts)


# -- closures --------------------------------------------------------------------------------


async def slot_keys(redis: Redis, rid: str, day: str) -> set[str]:
    """The cells and held keys of one date that exist."""
    found: set[str] = set()
    for pattern in (f"hs:{{{rid}}}:cells:{day}*", f"hs:{{{rid}}}:held:{day}*"):
        async for key in redis.scan_iter(match=pattern):
            found.add(key.decode())
    return found


async def test_a_closure_removes_free_slots_and_keeps_booked_ones(
    client: Client, redis: Redis, services: Services
) -> None:
    rid = await new_venue(client, capacities=(2, 4), first=day_after(1), last=day_after(3))
    closed_day = day_after(2)

    def at(hour: int) -> str:
        return f"{closed_day}T{hour}:00"

    reservation = await new_reservation(client, rid, "u1", slot=at(19))
    await new_hold(client, rid, "u2", slot=at(20))
    lapsed = await new_hold(client, rid, "u3", slot=at(21))
    await lapse(services, rid, lapsed["id"])
    cancelled = await new_reservation(client, rid, "u4", slot=at(12))
    cancel = await client.delete(f"/v1/reservations/{cancelled['reference']}", headers=ADMIN)
    assert cancel.status_code == 200

    result = await close(client, rid, closed_day, closed_day, reason="Staff party")
    assert result == {"removed": 10, "kept": [at(19), at(20)]}
    assert await slot_ids(client, rid, closed_day, closed_day) == [at(19), at(20)]
    assert await slot_keys(redis, rid, closed_day) == {
        f"hs:{{{rid}}}:cells:{at(19)}",
        f"hs:{{{rid}}}:cells:{at(20)}",
        f"hs:{{{rid}}}:held:{at(20)}",
    }
    # The lapsed hold was expired before its slot went: its own entry, then nothing else.
    lapsed_state = await client.get(
        f"/v1/restaurants/{rid}/holds/{lapsed['id']}", headers={"Hold-Token": lapsed["token"]}
    )
    assert lapsed_state.json()["status"] == "expired"
    assert (await client.get(f"/v1/reservations/{reservation['reference']}", headers=ADMIN)).json()[
        "status"
    ] == "confirmed"
    listed = await client.get(f"/v1/restaurants/{rid}/closures")
    assert listed.json() == {
        "closures": [{"from": closed_day, "to": closed_day, "reason": "Staff party"}]
    }
    # No slot is created on the closed date again; the other dates are untouched.
    assert await add_slots(client, rid, day_after(1), day_after(3)) == {
        "created": 0,
        "total": 26,
    }
    # The kept slots take no new guests: the day is closed.
    free = await client.get(
        f"/v1/restaurants/{rid}/availability", params={"from": closed_day, "to": closed_day}
    )
    assert free.json()["slots"] == []
    assert_problem(await hold_http(client, rid, "u5", slot=at(13)), 404, "not_found")
    audit = await client.get(f"/v1/restaurants/{rid}/audit", headers=ADMIN)
    assert audit.json()["ok"], audit.json()

    # Closing again once the guests are called and cancelled removes what is free by then.
    await client.delete(f"/v1/reservations/{reservation['reference']}", headers=ADMIN)
    assert await close(client, rid, closed_day, closed_day) == {"removed": 1, "kept": [at(20)]}
    assert (await client.get(f"/v1/restaurants/{rid}/closures")).json()["closures"] == [
        {"from": closed_day, "to": closed_day, "reason": None}
    ]


async def test_reopening_lets_the_grid_fill_the_dates_again(client: Client) -> None:
    rid = await new_venue(client, first=day_after(1), last=day_after(3))
    assert await close(client, rid, day_after(1), day_after(2)) == {"removed": 24, "kept": []}
    await close(client, rid, day_after(5), day_after(5), reason="Inventory")
    assert await add_slots(client, rid, day_after(1), day_after(5)) == {
        "created": 12,
        "total": 24,
    }
    reopened = await client.delete(f"/v1/restaurants/{rid}/closures/{day_after(1)}", headers=ADMIN)
    assert reopened.status_code == 204
    assert (await client.get(f"/v1/restaurants/{rid}/closures")).json()["closures"] == [
        {"from": day_after(5), "to": day_after(5), "reason": "Inventory"}
    ]
    assert await add_slots(client, rid, day_after(1), day_after(5)) == {
        "created": 24,
        "total": 48,
    }


async def test_closures_are_listed_earliest_first_and_replaced_by_their_first_date(
    client: Client,
) -> None:
    rid = await new_venue(client, capacities=())
    assert (await client.get(f"/v1/restaurants/{rid}/closures")).json() == {"closures": []}
    await close(client, rid, "2030-12-24", "2030-12-26", reason="Christmas")
    await close(client, rid, "2030-08-01", "2030-08-14", reason="")
    await close(client, rid, "2030-12-24", "2030-12-25", reason="Christmas | family")
    assert (await client.get(f"/v1/restaurants/{rid}/closures")).json() == {
        "closures": [
            {"from": "2030-08-01", "to": "2030-08-14", "reason": ""},
            {"from": "2030-12-24", "to": "2030-12-25", "reason": "Christmas | family"},
        ]
    }


async def test_a_closure_goes_by_the_date_a_slot_starts(client: Client) -> None:
    """Friday's late service runs into Saturday: closing Saturday takes its 00:00 and 01:00."""
    rid = await new_venue(
        client, schedule={"fri": [LATE]}, first=iso(MONDAY, 4), last=iso(MONDAY, 4)
    )
    assert await close(client, rid, iso(MONDAY, 5), iso(MONDAY, 5)) == {"removed": 2, "kept": []}
    assert await slot_ids(client, rid, iso(MONDAY, 4), iso(MONDAY, 5)) == hours(
        iso(MONDAY, 4), "18:00", "19:00", "20:00", "21:00", "22:00", "23:00"
    )


async def test_removing_slots_keeps_booked_ones_and_records_no_closure(client: Client) -> None:
    rid = await new_venue(client, first=day_after(1), last=day_after(2))
    await new_hold(client, rid, "u1", slot=f"{day_after(2)}T10:00")
    removed = await client.delete(
        f"/v1/restaurants/{rid}/slots",
        params={"from": day_after(1), "to": day_after(2)},
        headers=ADMIN,
    )
    assert removed.status_code == 200, removed.text
    assert removed.json() == {"removed": 23, "kept": [f"{day_after(2)}T10:00"]}
    assert (await client.get(f"/v1/restaurants/{rid}/closures")).json() == {"closures": []}
    again = await client.delete(
        f"/v1/restaurants/{rid}/slots",
        params={"from": day_after(1), "to": day_after(2)},
        headers=ADMIN,
    )
    assert again.json() == {"removed": 0, "kept": [f"{day_after(2)}T10:00"]}
    assert await add_slots(client, rid, day_after(1), day_after(2)) == {
        "created": 23,
        "total": 24,
    }


async def test_closure_and_removal_input_is_checked(client: Client, redis: Redis) -> None:
    rid = await new_venue(client)
    bodies: dict[str, object] = {
        "367-days": {"from": day_after(1), "to": day_after(367)},
        "to-before-from": {"from": day_after(2), "to": day_after(1)},
        "not-a-date": {"from": "2030-02-30", "to": "2030-03-01"},
        "word": {"from": "christmas", "to": "2030-12-26"},
        "number": {"from": 20301224, "to": "2030-12-26"},
        "missing-to": {"from": "2030-12-24"},
        "reason-201": {"from": "2030-12-24", "to": "2030-12-24", "reason": "r" * 201},
        "reason-number": {"from": "2030-12-24", "to": "2030-12-24", "reason": 7},
        "unknown-field": {"from": "2030-12-24", "to": "2030-12-24", "why": "x"},
        "null": None,
    }
    cases: dict[str, Send] = {
        f"close-{case_id}": partial(
            client.post, f"/v1/restaurants/{rid}/closures", json=body, headers=ADMIN
        )
        for case_id, body in bodies.items()
    }
    ranges = {
        "367-days": {"from": day_after(1), "to": day_after(367)},
        "to-before-from": {"from": day_after(2), "to": day_after(1)},
        "not-a-date": {"from": "2030-02-30", "to": "2030-03-01"},
        "missing-to": {"from": day_after(1)},
        "word": {"from": "today", "to": day_after(1)},
    }
    for case_id, params in ranges.items():
        cases[f"remove-{case_id}"] = partial(
            client.delete, f"/v1/restaurants/{rid}/slots", params=params, headers=ADMIN
        )
    for case_id, day in {"word": "christmas", "not-a-date": "2030-02-30"}.items():
        cases[f"reopen-{case_id}"] = partial(
            client.delete, f"/v1/restaurants/{rid}/closures/{day}", headers=ADMIN
        )
    await assert_refused_unchanged(redis, cases, 400, "validation_error")
    # The longest closure: 366 days.
    assert (await close(client, rid, day_after(1), day_after(366)))["removed"] == 12


async def test_closures_and_removals_need_an_admin_and_a_restaurant(
    client: Client, redis: Redis
) -> None:
    rid = await new_venue(client)
    await close(client, rid, "2030-12-24", "2030-12-24")
    span = {"from": day_after(1), "to": day_after(1)}
    unauthorized: dict[str, Send] = {
        "close": partial(client.post, f"/v1/restaurants/{rid}/closures", json=span),
        "reopen": partial(client.delete, f"/v1/restaurants/{rid}/closures/2030-12-24"),
        "remove": partial(client.delete, f"/v1/restaurants/{rid}/slots", params=span),
        "close-wrong-token": partial(
            client.post,
            f"/v1/restaurants/{rid}/closures",
            json=span,
            headers={"Authorization": "Bearer wrong"},
        ),
    }
    await assert_refused_unchanged(redis, unauthorized, 401, "unauthorized")
    event = await client.post(
        "/v1/events",
        json={"name": "Gig", "starts_at": "2030-06-01T20:00:00+00:00", "total_seats": 10},
        headers=ADMIN,
    )
    missing: dict[str, Send] = {}
    for venue in ("NOSUCH", event.json()["id"]):
        base = f"/v1/restaurants/{venue}"
        missing |= {
            f"close {venue}": partial(client.post, f"{base}/closures", json=span, headers=ADMIN),
            f"list {venue}": partial(client.get, f"{base}/closures"),
            f"reopen {venue}": partial(client.delete, f"{base}/closures/2030-12-24", headers=ADMIN),
            f"remove {venue}": partial(client.delete, f"{base}/slots", params=span, headers=ADMIN),
        }
    missing["reopen-no-such-closure"] = partial(
        client.delete, f"/v1/restaurants/{rid}/closures/2030-12-25", headers=ADMIN
    )
    await assert_refused_unchanged(redis, missing, 404, "not_found")


# -- the rolling grid (pass by pass through the service: no app runs one meanwhile) ---------------


def today_utc() -> date:
    return datetime.now(UTC).date()


async def horizon_venue(services: Services, days: int, **rules: Any) -> str:
    """A UTC restaurant (10:00-22:00 unless a schedule says otherwise) with ``horizon_days``."""
    if "schedule" in rules:
        rules["schedule"] = msgspec.convert(rules["schedule"], Schedule)
    body = restaurant_body(horizon_days=days, **rules)
    restaurant = await services.restaurants.create(msgspec.convert(body, RestaurantInput))
    return restaurant.id


async def grid_of(services: Services, rid: str, first: date, last: date) -> list[str]:
    """Every slot id from ``first`` to ``last``, read 31 days and one page at a time."""
    found: list[str] = []
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=30))
        request: PageRequest | None = None
        while True:
            page = await services.restaurants.slot_views(
                rid, start.isoformat(), end.isoformat(), request
            )
            found += [view.slot for view in page.items]
            if page.next_cursor is None:
                break
            request = page_request(None, page.next_cursor, size=100_000)
        start = end + timedelta(days=1)
    return found


async def test_the_rolling_grid_fills_the_horizon_once(services: Services, redis: Redis) -> None:
    rid = await horizon_venue(services, 3)
    off = await horizon_venue(services, 0)
    # Four dates, today included (its started slots too): 4 x 12.
    assert await services.rolling_grid.pass_once() == 48
    today = today_utc()
    assert len(await grid_of(services, rid, today, today + timedelta(days=3))) == 48
    assert await grid_of(services, off, today, today + timedelta(days=3)) == []
    marker = await redis.hget(f"hs:{{{rid}}}:venue", "grid_filled")
    assert marker == f"0|{iso(today, 3)}".encode()
    # A pass with nothing to do writes nothing.
    before = await snapshot_keys(redis)
    assert await services.rolling_grid.pass_once() == 0
    assert await snapshot_keys(redis) == before


async def test_a_longer_horizon_fills_only_the_new_days(services: Services) -> None:
    rid = await horizon_venue(services, 1)
    assert await services.rolling_grid.pass_once() == 24
    patched = await services.restaurants.update(rid, RestaurantPatch(horizon_days=5))
    assert patched.horizon_days == 5
    assert await services.rolling_grid.pass_once() == 48


async def test_the_rolling_grid_follows_schedule_and_closures(services: Services) -> None:
    today = today_utc()
    rid = await horizon_venue(services, 6, schedule={"mon": [], "tue": [LUNCH]})
    await services.grid.close(rid, ClosureInput(first=iso(today, 2), last=iso(today, 3)))
    open_days = [today + timedelta(days=d) for d in range(7) if d not in (2, 3)]
    tuesdays = [d for d in open_days if d.weekday() == 1]
    assert await services.rolling_grid.pass_once() == 2 * len(tuesdays)
    # A new schedule: the horizon is filled again from today, closed dates left out.
    wednesday_dinner = msgspec.convert({"wed": [DINNER]}, Schedule)
    await services.restaurants.update(rid, RestaurantPatch(schedule=wednesday_dinner))
    wednesdays = [d for d in open_days if d.weekday() == 2]
    assert await services.rolling_grid.pass_once() == 4 * len(wednesdays)
    # Reopening: the closed dates fill too, with the week as it is now.
    await services.grid.reopen(rid, iso(today, 2))
    reopened = [today + timedelta(days=d) for d in (2, 3)]
    assert await services.rolling_grid.pass_once() == 4 * sum(d.weekday() == 2 for d in reopened)
    assert await services.rolling_grid.pass_once() == 0


async def test_passes_running_at_once_create_each_slot_once(services: Services) -> None:
    """Ten passes at once over five restaurants (as ten workers would): every slot is
    created by exactly one of them."""
    for _ in range(5):
        await horizon_venue(services, 30, schedule={"fri": [LATE], "sat": [LUNCH, DINNER]})
    created = await asyncio.gather(*(services.rolling_grid.pass_once() for _ in range(10)))
    today = today_utc()
    # Friday's late service: 6 slots, then 2 past midnight; Saturday: 2 + 4.
    per_venue = sum({4: 8, 5: 6}.get((today + timedelta(days=d)).weekday(), 0) for d in range(31))
    assert sum(created) == 5 * per_venue
    assert await services.rolling_grid.pass_once() == 0


async def test_a_closure_landing_while_the_grid_fills_leaves_no_slot_on_its_dates(
    services: Services,
) -> None:
    rid = await horizon_venue(services, 60)
    today = today_utc()
    closing = services.grid.close(rid, ClosureInput(first=iso(today, 10), last=iso(today, 20)))
    passes = [services.rolling_grid.pass_once() for _ in range(3)]
    await asyncio.gather(passes[0], passes[1], closing, passes[2])
    closed = await grid_of(services, rid, today + timedelta(days=10), today + timedelta(days=20))
    assert closed == []
    everything = await grid_of(services, rid, today, today + timedelta(days=60))
    assert len(everything) == 12 * (61 - 11)


async def test_slots_of_an_older_week_are_refused_and_the_marker_never_goes_back(
    services: Services, redis: Redis
) -> None:
    """What keeps a fill racing a schedule change, or two workers, honest: add_slots.lua
    refuses slots computed under an older grid version, and moves the marker only forward."""
    rid = await horizon_venue(services, 0)
    venue_keys = Keys("hs").of(rid)
    slot = [("2030-01-07T12:00", 1_894_017_600_000)]
    added = await services.scripts.add_slots(
        venue_keys, grid_version="0", slots=slot, filled_through="2030-01-10"
    )
    assert (added.created, added.total) == (1, 1)
    await services.restaurants.update(rid, RestaurantPatch(schedule=Schedule()))
    before = await snapshot_keys(redis)
    with pytest.raises(Stale):
        await services.scripts.add_slots(
            venue_keys, grid_version="0", slots=[("2030-01-08T12:00", 1_894_104_000_000)]
        )
    assert await snapshot_keys(redis) == before
    # Under the current version, a worker behind another never sets the marker back.
    await services.scripts.add_slots(
        venue_keys, grid_version="1", slots=[], filled_through="2030-01-20"
    )
    await services.scripts.add_slots(
        venue_keys, grid_version="1", slots=[], filled_through="2030-01-12"
    )
    assert await redis.hget(f"hs:{{{rid}}}:venue", "grid_filled") == b"1|2030-01-20"


async def test_horizon_days_out_of_range_is_refused(client: Client, redis: Redis) -> None:
    bodies: dict[str, dict[str, object]] = {
        "horizon-negative": {"horizon_days": -1},
        "horizon-367": {"horizon_days": 367},
        "horizon-string": {"horizon_days": "30"},
        "horizon-null": {"horizon_days": None},
    }
    headers = {**ADMIN, "Content-Type": "application/json"}
    cases: dict[str, Send] = {
        case_id: partial(
            client.post,
            "/v1/restaurants",
            content=json.dumps(restaurant_body(**body)).encode(),
            headers=headers,
        )
        for case_id, body in bodies.items()
    }
    await assert_refused_unchanged(redis, cases, 400, "validation_error")
