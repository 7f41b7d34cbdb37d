"""The waitlist at a restaurant with booking rules (issues 15 and 16): an offer is what a hold
would get, a table or combination for the party's whole duration, within the covers cap and
the guest's other bookings; a freeing step offers to every waitlist its cells may now fit.
Over HTTP, on one node and on the Redis Cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest

from holdsvc.keys import Keys
from holdsvc.services import Services
from tests.cluster import both_backends
from tests.helpers import ADMIN, Client, assert_problem, day_after, lapse, new_hold, new_venue

redis_backend = both_backends

V = Keys("hs")
# Taken once per module: the tests survive midnight.
DAY = day_after(1)
DURATIONS = [{"max_party": 2, "minutes": 90}, {"max_party": 4, "minutes": 120}]
WAITER = {"name": "Grace Hopper", "phone": "+1 212 555 0199"}
GUEST = {"name": "Ada Lovelace", "phone": "+1 212 555 0100"}


def at(hhmm: str) -> str:
    """A slot id of DAY."""
    return f"{DAY}T{hhmm}"


async def rich_venue(client: Client, capacities: tuple[int, ...] = (2,), **rules: Any) -> str:
    """A restaurant of 30-minute slots on DAY, with DURATIONS unless told otherwise."""
    rules.setdefault("durations", DURATIONS)
    return await new_venue(client, capacities=capacities, slot_minutes=30, first=DAY, **rules)


async def reserve(client: Client, rid: str, user: str, slot: str, **kwargs: Any) -> dict[str, Any]:
    """Hold then confirm; the reservation with its manage token."""
    hold = await new_hold(client, rid, user, slot=slot, **kwargs)
    made = await client.post(
        f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm",
        json={**GUEST, "phone": f"+1 212 555 {len(user):04d}", "name": user},
        headers={"Hold-Token": hold["token"]},
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def cancel(client: Client, made: dict[str, Any]) -> None:
    answer = await client.delete(
        f"/v1/reservations/{made['reference']}", headers={"Manage-Token": made["manage_token"]}
    )
    assert answer.status_code == 200, answer.text


async def join(client: Client, rid: str, user: str, slot: str, party: int = 2) -> dict[str, Any]:
    answer = await client.post(
        f"/v1/restaurants/{rid}/waitlist",
        json={"user_id": user, "slot": slot, "party_size": party, **WAITER},
    )
    assert answer.status_code == 201, answer.text
    entry: dict[str, Any] = answer.json()
    return entry


async def seen(client: Client, rid: str, entry: dict[str, Any]) -> dict[str, Any]:
    answer = await client.get(
        f"/v1/restaurants/{rid}/waitlist/{entry['id']}", headers={"Waitlist-Token": entry["token"]}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def table_states(client: Client, rid: str, table: str) -> dict[str, str]:
    """HH:MM -> status of one table, over DAY."""
    listed = await client.get(f"/v1/restaurants/{rid}/slots", params={"from": DAY, "to": DAY})
    assert listed.status_code == 200, listed.text
    return {
        s["slot"][11:]: next(t["status"] for t in s["tables"] if t["id"] == table)
        for s in listed.json()["slots"]
    }


async def audit_ok(client: Client, rid: str) -> None:
    audited = await client.get(f"/v1/restaurants/{rid}/audit", headers=ADMIN)
    body = audited.json()
    assert (body["ok"], body["violations"]) == (True, []), audited.text


async def test_an_offer_spans_the_party_duration_and_reaches_back_to_earlier_slots(
    client: Client,
) -> None:
    rid = await rich_venue(client)
    # 19:30-21:00 is booked; a party of 2 waiting for 19:00 needs 19:00-20:30.
    made = await reserve(client, rid, "booked", at("19:30"))
    entry = await join(client, rid, "waiter", at("19:00"))
    assert entry["status"] == "waiting" and entry["position"] == 1
    await audit_ok(client, rid)
    await cancel(client, made)
    offered = await seen(client, rid, entry)
    assert offered["status"] == "offered", offered
    hold = offered["hold"]
    assert hold["slot"] == at("19:00") and hold["table_id"] == "T1"
    assert hold["ends_at"].startswith(f"{DAY}T20:30")
    states = await table_states(client, rid, "T1")
    assert [hhmm for hhmm, status in states.items() if status != "available"] == [
        "19:00",
        "19:30",
        "20:00",
    ]
    await audit_ok(client, rid)
    confirmed = await client.post(
        f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm",
        json=GUEST,
        headers={"Hold-Token": hold["token"]},
    )
    assert confirmed.status_code == 201, confirmed.text
    assert confirmed.json()["ends_at"].startswith(f"{DAY}T20:30")
    assert (await seen(client, rid, entry))["status"] == "confirmed"
    await audit_ok(client, rid)


async def test_a_party_waits_for_a_combination_until_all_its_tables_are_free(
    client: Client,
) -> None:
    rid = await rich_venue(client, capacities=(2, 2))
    combined = await client.post(
        f"/v1/restaurants/{rid}/combinations",
        json={"tables": ["T1", "T2"], "capacity": 4},
        headers=ADMIN,
    )
    assert combined.status_code == 201, combined.text
    first = await reserve(client, rid, "first", at("19:00"), table="T1")
    second = await reserve(client, rid, "second", at("19:00"), table="T2")
    entry = await join(client, rid, "four", at("19:00"), party=4)
    assert entry["status"] == "waiting"
    await cancel(client, first)
    assert (await seen(client, rid, entry))["status"] == "waiting"
    await audit_ok(client, rid)
    await cancel(client, second)
    offered = await seen(client, rid, entry)
    assert offered["status"] == "offered", offered
    assert sorted(offered["hold"]["table_ids"]) == ["T1", "T2"]
    assert offered["hold"]["ends_at"].startswith(f"{DAY}T21:00")
    await audit_ok(client, rid)


async def test_the_covers_cap_holds_an_entry_back_until_covers_free(client: Client) -> None:
    rid = await rich_venue(client, capacities=(2, 2, 2), max_covers_per_slot=4)
    made = await reserve(client, rid, "first", at("19:00"))
    await reserve(client, rid, "second", at("19:00"))
    # A table is free at 19:00, but 4 covers start there already: the entry waits.
    entry = await join(client, rid, "waiter", at("19:00"))
    assert entry["status"] == "waiting"
    await audit_ok(client, rid)
    await cancel(client, made)
    offered = await seen(client, rid, entry)
    assert offered["status"] == "offered", offered
    # The offer counts against the cap as a hold does.
    bot = await client.post(
        f"/v1/restaurants/{rid}/holds",
        json={"user_id": "bot", "slot": at("19:00"), "party_size": 2},
    )
    assert_problem(bot, 409, "covers_limit_reached")
    await audit_ok(client, rid)


async def test_one_booking_per_guest_passes_over_a_guest_booked_then(client: Client) -> None:
    rid = await rich_venue(client, capacities=(2, 2), one_booking_per_guest=True)
    made = await reserve(client, rid, "first", at("19:00"), table="T1")
    # The waiter holds T2 at 18:30-20:00, overlapping 19:00-20:30: not offered while it does.
    await new_hold(client, rid, "waiter", slot=at("18:30"), table="T2")
    passed = await join(client, rid, "waiter", at("19:00"))
    behind = await join(client, rid, "behind", at("19:00"))
    await cancel(client, made)
    assert (await seen(client, rid, passed))["status"] == "waiting"
    offered = await seen(client, rid, behind)
    assert offered["status"] == "offered" and offered["hold"]["table_id"] == "T1"
    await audit_ok(client, rid)


async def test_leaving_an_offer_passes_its_whole_span_on(client: Client) -> None:
    rid = await rich_venue(client)
    made = await reserve(client, rid, "booked", at("19:00"))
    first = await join(client, rid, "first", at("19:00"))
    later = await join(client, rid, "later", at("19:30"))
    await cancel(client, made)
    assert (await seen(client, rid, first))["status"] == "offered"
    assert (await seen(client, rid, later))["status"] == "waiting"
    left = await client.delete(
        f"/v1/restaurants/{rid}/waitlist/{first['id']}",
        headers={"Waitlist-Token": first["token"]},
    )
    assert left.status_code == 200, left.text
    # The 19:00 offer's three slots are free again: 19:30-21:00 fits the later entry.
    offered = await seen(client, rid, later)
    assert offered["status"] == "offered", offered
    assert offered["hold"]["ends_at"].startswith(f"{DAY}T21:00")
    states = await table_states(client, rid, "T1")
    assert [hhmm for hhmm, status in states.items() if status != "available"] == [
        "19:30",
        "20:00",
        "20:30",
    ]
    await audit_ok(client, rid)


async def test_a_lapsed_offer_passes_on_across_slots(client: Client, services: Services) -> None:
    rid = await rich_venue(client)
    made = await reserve(client, rid, "booked", at("19:00"))
    first = await join(client, rid, "first", at("19:00"))
    later = await join(client, rid, "later", at("20:00"))
    await cancel(client, made)
    offer = (await seen(client, rid, first))["hold"]
    # The offer's time runs out; the sweeper's expiry passes 19:00-20:30 on, and 20:00-21:30
    # fits the later entry.
    await lapse(services, rid, offer["id"])
    await services.sweeper.sweep_once()
    assert (await seen(client, rid, first))["status"] == "expired"
    assert (await seen(client, rid, later))["status"] == "offered"
    await audit_ok(client, rid)


async def test_the_waiting_slots_list_follows_the_entries(
    client: Client, services: Services
) -> None:
    redis = services.redis
    rid = await rich_venue(client)
    await reserve(client, rid, "booked", at("19:00"))
    entry = await join(client, rid, "waiter", at("19:00"))
    keys = V.of(rid)
    assert await redis.zrange(keys.waitlist_slots, 0, -1) == [at("19:00")]
    left = await client.delete(
        f"/v1/restaurants/{rid}/waitlist/{entry['id']}",
        headers={"Waitlist-Token": entry["token"]},
    )
    assert left.status_code == 200
    assert await redis.zrange(keys.waitlist_slots, 0, -1) == []
    stored = json.loads(await redis.hget(keys.waitlist, entry["id"]))
    assert stored["status"] == "left"
    await audit_ok(client, rid)


async def test_a_cancel_with_nobody_waiting_in_reach_is_one_script_call(
    client: Client, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = await rich_venue(client)
    made = await reserve(client, rid, "booked", at("19:00"))
    # An entry outside the cancel's reach (21:00 starts after 19:00-20:30 ends).
    await join(client, rid, "later", at("21:00"))
    called: list[str] = []
    evalsha = services.scripts._evalsha

    async def counting(name: str, keys: list[str], args: list[str | int]) -> Any:
        called.append(name)
        return await evalsha(name, keys, args)

    monkeypatch.setattr(services.scripts, "_evalsha", counting)
    await services.reservations.cancel(made["reference"], admin=True)
    assert called == ["cancel"]
    # With an entry in reach the first call asks for its keys, changing nothing, and the
    # second, told who heads that waitlist, frees and offers.
    again = await reserve(client, rid, "again", at("19:00"))
    entry = await join(client, rid, "waiter", at("18:30"))
    called.clear()
    await services.reservations.cancel(again["reference"], admin=True)
    assert called == ["cancel", "waitlist_heads", "cancel"]
    assert (await seen(client, rid, entry))["status"] == "offered"
    await audit_ok(client, rid)


async def test_capacity_that_grows_is_offered_to_the_waitlist(client: Client) -> None:
    rid = await rich_venue(client, capacities=(2, 4))
    await reserve(client, rid, "booked", at("19:00"), table="T1")
    await reserve(client, rid, "booked4", at("19:00"), party=4, table="T2")
    pair = await join(client, rid, "pair", at("19:00"))
    four = await join(client, rid, "four", at("19:00"), party=4)
    tables = f"/v1/restaurants/{rid}/tables"
    # A new table of two: the waiting pair gets it, in the step after the table is added.
    added = await client.post(tables, json={"tables": [{"capacity": 2}]}, headers=ADMIN)
    assert added.status_code == 201, added.text
    offered = await seen(client, rid, pair)
    assert offered["status"] == "offered" and offered["hold"]["table_id"] == "T3"
    assert (await seen(client, rid, four))["status"] == "waiting"
    await audit_ok(client, rid)
    # Another table of two seats nobody waiting; made larger, it seats the party of four.
    added = await client.post(tables, json={"tables": [{"capacity": 2}]}, headers=ADMIN)
    assert added.status_code == 201
    assert (await seen(client, rid, four))["status"] == "waiting"
    grown = await client.patch(f"{tables}/T4", json={"capacity": 4}, headers=ADMIN)
    assert grown.status_code == 200, grown.text
    offered = await seen(client, rid, four)
    assert offered["status"] == "offered" and offered["hold"]["table_id"] == "T4"
    await audit_ok(client, rid)
