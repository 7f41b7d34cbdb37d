"""Durations by party size, table combinations, pacing and one booking per guest (issue 15):
each rule over HTTP, on one node and on the Redis Cluster."""

from __future__ import annotations

import io
import json
from datetime import date
from functools import partial
from typing import Any

from redis.asyncio import Redis

from holdsvc.keys import Keys
from holdsvc.services import Services
from holdsvc.transfer import LineWriter, Transfer, parse_lines
from tests.cluster import both_backends
from tests.helpers import (
    ADMIN,
    GUEST,
    Send,
    assert_problem,
    assert_refused_unchanged,
    day_after,
    hold_http,
    new_hold,
    new_venue,
    tomorrow,
)

redis_backend = both_backends

Client = Any
V = Keys("hs")
# Taken once per module: the tests survive midnight.
DAY = tomorrow()
DURATIONS = [{"max_party": 2, "minutes": 90}, {"max_party": 4, "minutes": 120}]


def at(hhmm: str) -> str:
    """A slot id of DAY."""
    return f"{DAY}T{hhmm}"


async def rich_venue(client: Client, capacities: tuple[int, ...] = (2, 4), **rules: Any) -> str:
    """A restaurant of 30-minute slots, 10:00-22:00, with DURATIONS unless told otherwise."""
    rules.setdefault("durations", DURATIONS)
    return await new_venue(client, capacities=capacities, slot_minutes=30, **rules)


async def statuses(client: Client, rid: str, table: str) -> dict[str, str]:
    """Slot id -> status of one table, over DAY."""
    listed = await client.get(f"/v1/restaurants/{rid}/slots", params={"from": DAY, "to": DAY})
    assert listed.status_code == 200, listed.text
    return {
        s["slot"]: next(t["status"] for t in s["tables"] if t["id"] == table)
        for s in listed.json()["slots"]
    }


def taken(states: dict[str, str]) -> list[str]:
    """The slot times (HH:MM) that are not available."""
    return [slot[11:] for slot, status in states.items() if status != "available"]


async def audit_ok(client: Client, rid: str) -> None:
    audited = await client.get(f"/v1/restaurants/{rid}/audit", headers=ADMIN)
    body = audited.json()
    assert (body["ok"], body["violations"]) == (True, []), audited.text


async def confirm(client: Client, rid: str, hold: dict[str, Any], **guest: str) -> Any:
    return await client.post(
        f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm",
        json={**GUEST, **guest},
        headers={"Hold-Token": hold["token"]},
    )


# -- the fields ------------------------------------------------------------------------


async def test_rules_are_stored_shown_and_patched(client: Client) -> None:
    rid = await rich_venue(client, max_covers_per_slot=10, one_booking_per_guest=True)
    shown = (await client.get(f"/v1/restaurants/{rid}")).json()
    assert shown["durations"] == DURATIONS
    assert shown["max_covers_per_slot"] == 10
    assert shown["one_booking_per_guest"] is True
    patched = await client.patch(
        f"/v1/restaurants/{rid}",
        json={"durations": None, "max_covers_per_slot": 0, "one_booking_per_guest": False},
        headers=ADMIN,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["durations"], body["max_covers_per_slot"], body["one_booking_per_guest"]) == (
        None,
        0,
        False,
    )


async def test_bad_rules_are_400_and_change_nothing(client: Client, redis: Redis) -> None:
    rid = await rich_venue(client)
    bad = {
        "not_a_multiple": {"durations": [{"max_party": 2, "minutes": 45}]},
        "not_ascending": {
            "durations": [{"max_party": 4, "minutes": 60}, {"max_party": 2, "minutes": 90}]
        },
        "zero_minutes": {"durations": [{"max_party": 2, "minutes": 0}]},
        "empty": {"durations": []},
        "string_cap": {"max_covers_per_slot": "4"},
        "negative_cap": {"max_covers_per_slot": -1},
        "rule_not_bool": {"one_booking_per_guest": 1},
    }
    cases: dict[str, Send] = {
        name: partial(client.patch, f"/v1/restaurants/{rid}", json=body, headers=ADMIN)
        for name, body in bad.items()
    }
    await assert_refused_unchanged(redis, cases, 400, "validation_error")
    created = await client.post(
        "/v1/restaurants",
        json={
            "name": "X",
            "phone": "+12125550100",
            "timezone": "UTC",
            "opens": "10:00",
            "closes": "22:00",
            "slot_minutes": 60,
            "durations": [{"max_party": 2, "minutes": 90}],
        },
        headers=ADMIN,
    )
    assert_problem(created, 400, "validation_error")


# -- durations -------------------------------------------------------------------------


async def test_a_booking_claims_its_table_for_every_slot_and_frees_them_as_one(
    client: Client, services: Services
) -> None:
    rid = await rich_venue(client)
    hold = await new_hold(client, rid, slot=at("19:00"), party=2)
    assert hold["table_ids"] == ["T1"]
    assert hold["ends_at"] == f"{DAY}T20:30:00.000+00:00"
    assert taken(await statuses(client, rid, "T1")) == ["19:00", "19:30", "20:00"]
    # Overlapping the booking's last slot: T1 does not fit, T2 (a 4-top) does.
    other = await new_hold(client, rid, "u2", slot=at("20:00"), party=2)
    assert other["table_id"] == "T2"
    # Half-open: a booking ending at 20:30 and one starting at 20:30 do not overlap.
    after = await new_hold(client, rid, "u3", slot=at("20:30"), party=2)
    assert after["table_id"] == "T1"
    released = await client.delete(
        f"/v1/restaurants/{rid}/holds/{hold['id']}", headers={"Hold-Token": hold["token"]}
    )
    assert released.status_code == 204
    assert taken(await statuses(client, rid, "T1")) == ["20:30", "21:00", "21:30"]
    feed = await services.redis.xrange(V.of(rid).feed)
    held = [f for _, f in feed if f["hold"] == hold["id"]]
    assert [f["event"] for f in held] == ["held", "released"]
    assert '"slot":"' + at("20:00") + '"' in held[1]["cells"]
    await audit_ok(client, rid)


async def test_a_party_above_every_rule_books_one_slot(client: Client) -> None:
    rid = await rich_venue(client, capacities=(6,))
    hold = await new_hold(client, rid, slot=at("19:00"), party=6)
    assert hold["ends_at"] == f"{DAY}T19:30:00.000+00:00"
    assert taken(await statuses(client, rid, "T1")) == ["19:00"]


async def test_a_span_past_closing_does_not_fit(client: Client) -> None:
    rid = await rich_venue(client)
    # 21:00 + 90 minutes runs past 22:00: the last slots are missing from the grid.
    assert_problem(
        await hold_http(client, rid, slot=at("21:00"), party=2), 409, "no_table_available"
    )
    assert_problem(
        await hold_http(client, rid, slot=at("21:00"), party=2, table="T1"),
        409,
        "no_table_available",
    )
    hold = await new_hold(client, rid, slot=at("20:30"), party=2)
    assert hold["ends_at"] == f"{DAY}T22:00:00.000+00:00"


async def test_confirm_refresh_cancel_act_on_every_cell(client: Client) -> None:
    rid = await rich_venue(client)
    hold = await new_hold(client, rid, slot=at("18:00"), party=3)
    refreshed = await client.post(
        f"/v1/restaurants/{rid}/holds/{hold['id']}/refresh", headers={"Hold-Token": hold["token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    made = await confirm(client, rid, hold)
    assert made.status_code == 201, made.text
    res = made.json()
    assert res["ends_at"] == f"{DAY}T20:00:00.000+00:00"
    assert res["table_ids"] == ["T2"]
    states = await statuses(client, rid, "T2")
    assert taken(states) == ["18:00", "18:30", "19:00", "19:30"]
    assert {states[at(t)] for t in ("18:00", "19:30")} == {"reserved"}
    await audit_ok(client, rid)
    cancelled = await client.delete(f"/v1/reservations/{res['reference']}", headers=ADMIN)
    assert cancelled.json()["status"] == "cancelled"
    assert taken(await statuses(client, rid, "T2")) == []
    await audit_ok(client, rid)


async def test_a_lapsed_booking_is_expired_whole_by_the_sweeper(
    client: Client, services: Services
) -> None:
    rid = await rich_venue(client, hold_seconds=1, max_hold_seconds=1)
    hold = await new_hold(client, rid, slot=at("12:00"), party=2)
    keys = V.of(rid)
    # Lapse it now, in every cell it holds.
    for slot in (at("12:00"), at("12:30"), at("13:00")):
        await services.redis.hset(keys.cells(slot), "T1", f"h|{hold['id']}|1")
        await services.redis.zadd(keys.held(slot), {"T1": 1})
    await services.redis.hset(keys.hold(hold["id"]), "expires", "1")
    await services.redis.zadd(keys.holds, {hold["id"]: 1})
    await services.sweeper.sweep_once()
    assert taken(await statuses(client, rid, "T1")) == []
    assert (await services.redis.hget(keys.hold(hold["id"]), "status")) == "expired"
    await audit_ok(client, rid)


async def test_a_move_takes_every_slot_along(client: Client) -> None:
    rid = await rich_venue(client)
    hold = await new_hold(client, rid, slot=at("12:00"), party=2)
    res = (await confirm(client, rid, hold)).json()
    moved = await client.patch(
        f"/v1/reservations/{res['reference']}",
        json={"slot": at("15:00")},
        headers={"Manage-Token": res["manage_token"]},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["ends_at"] == f"{DAY}T16:30:00.000+00:00"
    assert taken(await statuses(client, rid, "T1")) == ["15:00", "15:30", "16:00"]
    # A bigger party lasts longer: the same start, four slots, re-seated by best fit.
    grown = await client.patch(
        f"/v1/reservations/{res['reference']}", json={"party_size": 4}, headers=ADMIN
    )
    assert grown.status_code == 200, grown.text
    assert grown.json()["ends_at"] == f"{DAY}T17:00:00.000+00:00"
    assert grown.json()["table_ids"] == ["T2"]
    assert taken(await statuses(client, rid, "T1")) == []
    assert taken(await statuses(client, rid, "T2")) == ["15:00", "15:30", "16:00", "16:30"]
    await audit_ok(client, rid)


async def test_a_staff_booking_spans_its_duration(client: Client) -> None:
    rid = await rich_venue(client)
    booked = await client.post(
        f"/v1/restaurants/{rid}/reservations",
        json={"slot": at("13:00"), "party_size": 2, **GUEST},
        headers=ADMIN,
    )
    assert booked.status_code == 201, booked.text
    assert booked.json()["ends_at"] == f"{DAY}T14:30:00.000+00:00"
    assert taken(await statuses(client, rid, "T1")) == ["13:00", "13:30", "14:00"]
    await audit_ok(client, rid)


# -- combinations ----------------------------------------------------------------------


async def test_combinations_are_made_listed_and_removed(client: Client, redis: Redis) -> None:
    rid = await rich_venue(client, capacities=(2, 2, 2))
    made = await client.post(
        f"/v1/restaurants/{rid}/combinations",
        json={"tables": ["T1", "T2"], "capacity": 4},
        headers=ADMIN,
    )
    assert made.status_code == 201, made.text
    assert made.json() == {"id": "C1", "tables": ["T1", "T2"], "capacity": 4}
    listed = await client.get(f"/v1/restaurants/{rid}/combinations", headers=ADMIN)
    assert listed.json() == {"combinations": [made.json()]}
    url = f"/v1/restaurants/{rid}/combinations"
    await assert_refused_unchanged(
        redis,
        {
            "one_table": lambda: client.post(
                url, json={"tables": ["T1"], "capacity": 4}, headers=ADMIN
            ),
            "five_tables": lambda: client.post(
                url, json={"tables": ["T1", "T2", "T3", "T1", "T2"], "capacity": 4}, headers=ADMIN
            ),
            "twice": lambda: client.post(
                url, json={"tables": ["T1", "T1"], "capacity": 4}, headers=ADMIN
            ),
            "capacity_51": lambda: client.post(
                url, json={"tables": ["T1", "T2"], "capacity": 51}, headers=ADMIN
            ),
            "bad_id": lambda: client.post(
                url, json={"tables": ["T1", "a:b}"], "capacity": 4}, headers=ADMIN
            ),
        },
        400,
        "validation_error",
    )
    assert_problem(
        await client.post(url, json={"tables": ["T1", "T9"], "capacity": 4}, headers=ADMIN),
        404,
        "not_found",
    )
    assert (await client.delete(f"{url}/C1", headers=ADMIN)).status_code == 204
    assert_problem(await client.delete(f"{url}/C1", headers=ADMIN), 404, "not_found")
    assert (await client.get(url, headers=ADMIN)).json() == {"combinations": []}


async def test_best_fit_tries_tables_then_combinations(client: Client) -> None:
    rid = await rich_venue(client, capacities=(2, 2, 4, 2))
    url = f"/v1/restaurants/{rid}/combinations"
    for tables, capacity in ((["T1", "T2", "T4"], 6), (["T1", "T2"], 4)):
        made = await client.post(url, json={"tables": tables, "capacity": capacity}, headers=ADMIN)
        assert made.status_code == 201
    # A single 4-top fits a party of four first.
    first = await new_hold(client, rid, "a", slot=at("19:00"), party=4)
    assert first["table_ids"] == ["T3"]
    # Then the smallest combination whose every table is free for the whole duration.
    second = await new_hold(client, rid, "b", slot=at("19:00"), party=4)
    assert second["table_ids"] == ["T1", "T2"]
    assert second["table_id"] == "T1"
    for table in ("T1", "T2"):
        assert taken(await statuses(client, rid, table)) == ["19:00", "19:30", "20:00", "20:30"]
    # The combination's tables are taken: the 6-seat one no longer fits either.
    assert_problem(
        await hold_http(client, rid, "c", slot=at("19:00"), party=5), 409, "no_table_available"
    )
    made = (await confirm(client, rid, second)).json()
    assert made["table_ids"] == ["T1", "T2"]
    await audit_ok(client, rid)
    await client.delete(f"/v1/reservations/{made['reference']}", headers=ADMIN)
    named = await new_hold(client, rid, "d", slot=at("19:00"), party=5, table="C1")
    assert named["table_ids"] == ["T1", "T2", "T4"]
    assert_problem(
        await hold_http(client, rid, "e", slot=at("19:00"), party=4, table="C2"),
        409,
        "unit_unavailable",
    )
    await audit_ok(client, rid)


async def test_the_user_cap_counts_each_table_of_a_combination(client: Client) -> None:
    rid = await rich_venue(client, capacities=(2, 2, 2), max_holds_per_user=2)
    await client.post(
        f"/v1/restaurants/{rid}/combinations",
        json={"tables": ["T1", "T2"], "capacity": 4},
        headers=ADMIN,
    )
    await new_hold(client, rid, "u", slot=at("12:00"), party=4)
    assert_problem(
        await hold_http(client, rid, "u", slot=at("18:00"), party=2), 409, "hold_limit_reached"
    )


# -- pacing ----------------------------------------------------------------------------


async def test_covers_starting_in_a_slot_stay_within_the_cap(client: Client) -> None:
    rid = await rich_venue(client, capacities=(4, 4, 4), max_covers_per_slot=6)
    first = await new_hold(client, rid, "a", slot=at("19:00"), party=4)
    refused = await hold_http(client, rid, "b", slot=at("19:00"), party=3)
    assert_problem(refused, 409, "covers_limit_reached")
    await new_hold(client, rid, "b", slot=at("19:00"), party=2)
    # Another start is another count.
    await new_hold(client, rid, "c", slot=at("19:30"), party=4)
    # Staff bookings are checked too.
    staff = await client.post(
        f"/v1/restaurants/{rid}/reservations",
        json={"slot": at("19:00"), "party_size": 1, **GUEST},
        headers=ADMIN,
    )
    assert_problem(staff, 409, "covers_limit_reached")
    # A released hold gives its covers back; a confirmed one keeps them.
    await client.delete(
        f"/v1/restaurants/{rid}/holds/{first['id']}", headers={"Hold-Token": first["token"]}
    )
    again = await new_hold(client, rid, "d", slot=at("19:00"), party=4)
    assert (await confirm(client, rid, again)).status_code == 201
    assert_problem(
        await hold_http(client, rid, "e", slot=at("19:00"), party=1), 409, "covers_limit_reached"
    )
    avail = await client.get(
        f"/v1/restaurants/{rid}/availability", params={"from": DAY, "to": DAY, "party_size": 1}
    )
    assert at("19:00") not in [s["slot"] for s in avail.json()["slots"]]
    await audit_ok(client, rid)


# -- one booking per guest -------------------------------------------------------------


async def test_one_booking_per_guest_by_user_and_by_phone(client: Client) -> None:
    rid = await rich_venue(client, capacities=(2, 2, 2), one_booking_per_guest=True)
    hold = await new_hold(client, rid, "ann", slot=at("19:00"), party=2)
    # Overlapping the 19:00-20:30 booking, on another table: refused.
    assert_problem(
        await hold_http(client, rid, "ann", slot=at("20:00"), party=2),
        409,
        "overlapping_booking",
    )
    # Right after it: fine (half-open times); another user: fine.
    later = await new_hold(client, rid, "ann", slot=at("20:30"), party=2)
    await new_hold(client, rid, "bob", slot=at("19:00"), party=2)
    assert (await confirm(client, rid, hold)).status_code == 201
    # The reservation still counts for the user.
    assert_problem(
        await hold_http(client, rid, "ann", slot=at("18:00"), party=2),
        409,
        "overlapping_booking",
    )
    # Another user with the same phone overlapping: refused at confirm, the hold kept.
    other = await new_hold(client, rid, "cat", slot=at("18:30"), party=2)
    refused = await confirm(client, rid, other)
    assert_problem(refused, 409, "overlapping_booking")
    kept = await client.get(
        f"/v1/restaurants/{rid}/holds/{other['id']}", headers={"Hold-Token": other["token"]}
    )
    assert kept.json()["status"] == "held"
    assert (await confirm(client, rid, other, phone="+12125550199")).status_code == 201
    assert (await confirm(client, rid, later)).status_code == 201
    await audit_ok(client, rid)


# -- export and import -----------------------------------------------------------------


async def test_combinations_and_long_bookings_survive_export_and_import(
    client: Client, services: Services, redis: Redis
) -> None:
    rid = await rich_venue(
        client, capacities=(2, 2), max_covers_per_slot=6, one_booking_per_guest=True
    )
    await client.post(
        f"/v1/restaurants/{rid}/combinations",
        json={"tables": ["T1", "T2"], "capacity": 4},
        headers=ADMIN,
    )
    hold = await new_hold(client, rid, "ann", slot=at("19:00"), party=4)
    res = (await confirm(client, rid, hold)).json()
    transfer = Transfer(services.redis, V, services.scripts, services.sweeper)
    out = io.StringIO()
    await transfer.export([rid], out)
    text = out.getvalue()
    kinds = [json.loads(line)["type"] for line in text.splitlines()]
    assert kinds.count("combination") == 1
    await redis.flushall()
    await services.scripts.load()
    services.venues.forget_rules(rid)
    report = await transfer.import_venues(parse_lines(text.splitlines()))
    assert report.venues[rid]["combinations"] == 1
    out_again = io.StringIO()
    await transfer.export([rid], out_again)
    assert out_again.getvalue() == text
    listed = await client.get(f"/v1/restaurants/{rid}/combinations", headers=ADMIN)
    assert [c["id"] for c in listed.json()["combinations"]] == ["C1"]
    assert taken(await statuses(client, rid, "T2")) == ["19:00", "19:30", "20:00", "20:30"]
    # The rule indexes came back too: the covers cap and one booking per guest still count it.
    assert_problem(
        await hold_http(client, rid, "bob", slot=at("19:00"), party=3), 409, "covers_limit_reached"
    )
    assert_problem(
        await hold_http(client, rid, "ann", slot=at("18:00"), party=2), 409, "overlapping_booking"
    )
    cancelled = await client.delete(
        f"/v1/reservations/{res['reference']}", headers={"Manage-Token": res["manage_token"]}
    )
    assert cancelled.json()["status"] == "cancelled"
    await audit_ok(client, rid)


async def test_a_rule_switched_on_counts_the_bookings_already_made(client: Client) -> None:
    rid = await new_venue(client, capacities=(4, 4, 4), slot_minutes=30)
    slot = at("19:00")
    made = (
        await confirm(client, rid, await new_hold(client, rid, "ann", slot=slot, party=4))
    ).json()
    await new_hold(client, rid, "bob", slot=slot, party=2)
    patched = await client.patch(
        f"/v1/restaurants/{rid}",
        json={"max_covers_per_slot": 7, "one_booking_per_guest": True},
        headers=ADMIN,
    )
    assert patched.status_code == 200, patched.text
    # 4 + 2 covers start at 19:00 already: two more would make 8.
    assert_problem(
        await hold_http(client, rid, "cat", slot=slot, party=2), 409, "covers_limit_reached"
    )
    assert_problem(
        await hold_http(client, rid, "ann", slot=slot, party=1), 409, "overlapping_booking"
    )
    await audit_ok(client, rid)
    # Cancelling takes it out of the indexes it was put in.
    await client.delete(f"/v1/reservations/{made['reference']}", headers=ADMIN)
    await new_hold(client, rid, "ann", slot=slot, party=4)
    await audit_ok(client, rid)


async def test_availability_of_a_day_without_slots_is_empty(client: Client) -> None:
    rid = await rich_venue(client)
    empty = await client.get(
        f"/v1/restaurants/{rid}/availability",
        params={"from": day_after(3), "to": day_after(3), "party_size": 2},
    )
    assert empty.status_code == 200 and empty.json()["slots"] == []


async def test_archive_keeps_a_booking_whole_until_all_of_it_has_ended(
    client: Client, services: Services
) -> None:
    # Open 20:00-02:00: a 90-minute booking at 23:30 three days ago ends after midnight.
    rid = await new_venue(
        client,
        capacities=(2,),
        opens="20:00",
        closes="02:00",
        slot_minutes=30,
        durations=DURATIONS,
        first=day_after(-3),
        last=day_after(-1),
    )
    booked = await client.post(
        f"/v1/restaurants/{rid}/reservations",
        json={"slot": f"{day_after(-3)}T23:30", "party_size": 2, **GUEST},
        headers=ADMIN,
    )
    assert booked.status_code == 201, booked.text
    transfer = Transfer(services.redis, V, services.scripts, services.sweeper)
    # Before midnight: its first slot ended by the cutoff, the booking did not.
    report = await transfer.archive_venue(
        rid, date.fromisoformat(day_after(-2)), LineWriter(io.StringIO())
    )
    assert report.kept == {f"{day_after(-3)}T23:30": "a booking on it ends after the cutoff"}
    assert report.reservations == 0
    await audit_ok(client, rid)
    # A day later all of it has ended: archived whole, nothing left pointing at it.
    report = await transfer.archive_venue(
        rid, date.fromisoformat(day_after(-1)), LineWriter(io.StringIO())
    )
    assert report.reservations == 1 and report.kept == {}
    await audit_ok(client, rid)
