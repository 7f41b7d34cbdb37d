"""The waitlist (API.md "Waitlist", DESIGN.md invariant 9): join, read, leave, the staff list,
and the hand-off of freed cells inside the step that frees them."""

from __future__ import annotations

import json
from typing import Any

from holdsvc.keys import Keys
from holdsvc.services import Services
from tests.cluster import both_backends
from tests.helpers import (
    ADMIN,
    GUEST,
    Client,
    assert_problem,
    day_after,
    lapse,
    new_hold,
    new_reservation,
    new_venue,
)

redis_backend = both_backends

DAY = day_after(1)
SLOT = f"{DAY}T19:00"
OTHER_SLOT = f"{DAY}T20:00"
WAITER = {"name": "Grace Hopper", "phone": "+1 212 555 0199"}
V = Keys("hs")


async def join(
    client: Client, rid: str, user: str, *, party: int = 2, slot: str = SLOT
) -> dict[str, Any]:
    """Join a restaurant slot's waitlist (must succeed)."""
    answer = await client.post(
        f"/v1/restaurants/{rid}/waitlist",
        json={"user_id": user, "slot": slot, "party_size": party, **WAITER},
    )
    assert answer.status_code == 201, answer.text
    entry: dict[str, Any] = answer.json()
    return entry


async def entry_of(client: Client, rid: str, entry: dict[str, Any]) -> dict[str, Any]:
    answer = await client.get(
        f"/v1/restaurants/{rid}/waitlist/{entry['id']}", headers={"Waitlist-Token": entry["token"]}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def feed(client: Client, rid: str) -> list[dict[str, Any]]:
    answer = await client.get(
        f"/v1/restaurants/{rid}/changes", headers={**ADMIN, "Accept": "application/json"}
    )
    changes: list[dict[str, Any]] = answer.json()["changes"]
    return changes


async def test_a_cancel_offers_the_table_to_the_waiting_entry(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,), first=DAY)
    made = await new_reservation(client, rid, "guest", slot=SLOT)
    entry = await join(client, rid, "waiter")
    assert entry["status"] == "waiting" and entry["position"] == 1 and entry["token"]
    cancelled = await client.delete(
        f"/v1/reservations/{made['reference']}", headers={"Manage-Token": made["manage_token"]}
    )
    assert cancelled.status_code == 200
    seen = await entry_of(client, rid, entry)
    assert seen["status"] == "offered" and seen["position"] is None
    hold = seen["hold"]
    assert hold["user_id"] == "waiter" and hold["table_id"] == "T1" and hold["token"]
    # The feed: the cancel, then one 'offered' entry and no 'held' one.
    events = [c["event"] for c in await feed(client, rid)]
    assert events[-2:] == ["cancelled", "offered"]
    assert events.count("held") == 1  # the guest's own hold only
    # Nobody else can take the table now.
    other = await client.post(
        f"/v1/restaurants/{rid}/holds", json={"user_id": "bot", "slot": SLOT, "party_size": 2}
    )
    assert_problem(other, 409, "no_table_available")
    confirmed = await client.post(
        f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm",
        json=GUEST,
        headers={"Hold-Token": hold["token"]},
    )
    assert confirmed.status_code == 201, confirmed.text
    assert (await entry_of(client, rid, entry))["status"] == "confirmed"


async def test_a_released_or_lapsed_offer_passes_on_in_the_same_step(
    client: Client, services: Services
) -> None:
    rid = await new_venue(client, capacities=(2,), first=DAY)
    hold = await new_hold(client, rid, "guest", slot=SLOT)
    first, second, third = [await join(client, rid, user) for user in ("w1", "w2", "w3")]
    assert [first["position"], second["position"], third["position"]] == [1, 2, 3]
    released = await client.delete(
        f"/v1/restaurants/{rid}/holds/{hold['id']}", headers={"Hold-Token": hold["token"]}
    )
    assert released.status_code == 204
    offer = (await entry_of(client, rid, first))["hold"]
    assert (await entry_of(client, rid, second))["position"] == 1
    # The first offer is let go: its entry expires and the second is offered at once.
    let_go = await client.delete(
        f"/v1/restaurants/{rid}/holds/{offer['id']}", headers={"Hold-Token": offer["token"]}
    )
    assert let_go.status_code == 204
    assert (await entry_of(client, rid, first))["status"] == "expired"
    second_offer = (await entry_of(client, rid, second))["hold"]
    # The second offer lapses; the sweeper's expiry hands the table to the third.
    await lapse(services, rid, second_offer["id"])
    await services.sweeper.expire_holds(rid, [second_offer["id"]])
    assert (await entry_of(client, rid, second))["status"] == "expired"
    third_seen = await entry_of(client, rid, third)
    assert third_seen["status"] == "offered" and third_seen["hold"]["table_id"] == "T1"
    events = [c["event"] for c in await feed(client, rid)]
    assert events[-6:] == [
        "released", "offered", "released", "offered", "expired", "offered",
    ]  # fmt: skip
    offered = [c for c in await feed(client, rid) if c["event"] == "offered"]
    assert [c["waitlist_id"] for c in offered] == [first["id"], second["id"], third["id"]]
    assert offered[-1]["user_id"] == "w3" and offered[-1]["cells"] == [{"slot": SLOT, "unit": "T1"}]


async def test_entries_the_freed_table_cannot_seat_are_skipped(client: Client) -> None:
    rid = await new_venue(client, capacities=(2, 6), first=DAY)
    small = await new_reservation(client, rid, "a", slot=SLOT, party=2)
    await new_reservation(client, rid, "b", slot=SLOT, party=6)
    big = await join(client, rid, "big", party=6)
    couple = await join(client, rid, "couple", party=2)
    await client.delete(
        f"/v1/reservations/{small['reference']}", headers={"Manage-Token": small["manage_token"]}
    )
    assert (await entry_of(client, rid, big))["status"] == "waiting"
    assert (await entry_of(client, rid, big))["position"] == 1
    seen = await entry_of(client, rid, couple)
    assert seen["status"] == "offered" and seen["hold"]["table_id"] == "T1"


async def test_an_entry_whose_user_is_at_the_cap_is_skipped(client: Client) -> None:
    rid = await new_venue(client, capacities=(2, 2), first=DAY, max_holds_per_user=1)
    hold = await new_hold(client, rid, "guest", slot=SLOT)
    await new_hold(client, rid, "guest2", slot=SLOT)
    capped = await join(client, rid, "capped")
    await new_hold(client, rid, "capped", slot=OTHER_SLOT)  # its one allowed unit
    free = await join(client, rid, "free")
    await client.delete(
        f"/v1/restaurants/{rid}/holds/{hold['id']}", headers={"Hold-Token": hold["token"]}
    )
    assert (await entry_of(client, rid, capped))["status"] == "waiting"
    assert (await entry_of(client, rid, free))["status"] == "offered"


async def test_joining_when_the_table_is_free_offers_it_at_once(client: Client) -> None:
    rid = await new_venue(client, capacities=(4,), first=DAY)
    entry = await join(client, rid, "early", party=3)
    assert entry["status"] == "offered" and entry["position"] is None
    assert entry["token"]
    seen = await entry_of(client, rid, entry)
    assert seen["hold"]["table_id"] == "T1" and seen["hold"]["status"] == "held"
    events = [c["event"] for c in await feed(client, rid)]
    assert events == ["waitlisted", "offered"]


async def test_a_move_away_offers_the_old_table(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,), first=DAY)
    made = await new_reservation(client, rid, "guest", slot=SLOT)
    entry = await join(client, rid, "waiter")
    moved = await client.patch(
        f"/v1/reservations/{made['reference']}",
        json={"slot": OTHER_SLOT},
        headers={"Manage-Token": made["manage_token"]},
    )
    assert moved.status_code == 200, moved.text
    assert (await entry_of(client, rid, entry))["status"] == "offered"
    events = [c["event"] for c in await feed(client, rid)]
    assert events[-2:] == ["changed", "offered"]


async def test_a_staff_booking_removed_offers_its_table(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,), first=DAY)
    booked = await client.post(
        f"/v1/restaurants/{rid}/reservations",
        json={"slot": SLOT, "party_size": 2, **GUEST},
        headers=ADMIN,
    )
    assert booked.status_code == 201, booked.text
    entry = await join(client, rid, "waiter")
    removed = await client.delete(f"/v1/reservations/{booked.json()['reference']}", headers=ADMIN)
    assert removed.status_code == 200
    assert (await entry_of(client, rid, entry))["status"] == "offered"


async def test_leaving_releases_an_open_offer_and_passes_it_on(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,), first=DAY)
    hold = await new_hold(client, rid, "guest", slot=SLOT)
    first, second = await join(client, rid, "w1"), await join(client, rid, "w2")
    await client.delete(
        f"/v1/restaurants/{rid}/holds/{hold['id']}", headers={"Hold-Token": hold["token"]}
    )
    left = await client.delete(
        f"/v1/restaurants/{rid}/waitlist/{first['id']}", headers={"Waitlist-Token": first["token"]}
    )
    assert left.status_code == 200 and left.json()["status"] == "left"
    assert "token" not in left.json()
    assert (await entry_of(client, rid, second))["status"] == "offered"
    again = await client.delete(
        f"/v1/restaurants/{rid}/waitlist/{first['id']}", headers={"Waitlist-Token": first["token"]}
    )
    assert again.status_code == 200 and again.json()["status"] == "left"
    # A waiting entry leaves too, and may join again afterwards.
    third = await join(client, rid, "w3")
    gone = await client.delete(
        f"/v1/restaurants/{rid}/waitlist/{third['id']}", headers={"Waitlist-Token": third["token"]}
    )
    assert gone.json()["status"] == "left" and gone.json()["position"] is None
    assert (await join(client, rid, "w3"))["status"] == "waiting"


async def test_tokens_limits_and_codes(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,), first=DAY, max_waitlist=2)
    await new_reservation(client, rid, "guest", slot=SLOT)
    entry = await join(client, rid, "w1")
    path = f"/v1/restaurants/{rid}/waitlist/{entry['id']}"
    assert_problem(await client.get(path), 403, "forbidden")
    assert_problem(await client.get(path, headers={"Waitlist-Token": "nope"}), 403, "forbidden")
    assert_problem(await client.delete(path, headers={"Waitlist-Token": "x"}), 403, "forbidden")
    missing = f"/v1/restaurants/{rid}/waitlist/nosuchentry"
    assert_problem(await client.get(missing, headers={"Waitlist-Token": "x"}), 404, "not_found")
    body = {"user_id": "w1", "slot": SLOT, "party_size": 2, **WAITER}
    url = f"/v1/restaurants/{rid}/waitlist"
    assert_problem(await client.post(url, json=body), 409, "already_waiting")
    await join(client, rid, "w2")
    assert_problem(await client.post(url, json={**body, "user_id": "w3"}), 409, "waitlist_full")
    assert_problem(
        await client.post(url, json={**body, "user_id": "w4", "party_size": "2"}),
        400,
        "validation_error",
    )
    assert_problem(
        await client.post(url, json={**body, "user_id": "w4", "slot": f"{DAY}T03:00"}),
        404,
        "not_found",
    )
    assert_problem(
        await client.post(url, json={**body, "user_id": "w4", "party_size": 9}),
        409,
        "no_table_available",
    )
    seen = await entry_of(client, rid, entry)
    assert "token" not in seen and seen["party_size"] == 2 and seen["phone"] == "+12125550199"


async def test_venue_fields_max_waitlist_and_offer_seconds(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,), first=DAY)
    venue = (await client.get(f"/v1/restaurants/{rid}")).json()
    assert venue["max_waitlist"] == 100 and venue["offer_seconds"] == 900
    patched = await client.patch(
        f"/v1/restaurants/{rid}", json={"max_waitlist": 5, "offer_seconds": 60}, headers=ADMIN
    )
    assert patched.status_code == 200 and patched.json()["offer_seconds"] == 60
    for bad in ({"max_waitlist": 0}, {"max_waitlist": 10_001}, {"offer_seconds": 59}):
        answer = await client.patch(f"/v1/restaurants/{rid}", json=bad, headers=ADMIN)
        assert_problem(answer, 400, "validation_error")
    entry = await join(client, rid, "w1")
    hold = (await entry_of(client, rid, entry))["hold"]
    assert 59 < hold["expires_in"] <= 60
    event = await client.post(
        "/v1/events",
        json={
            "name": "Gala",
            "starts_at": f"{DAY}T19:00:00+00:00",
            "total_seats": 10,
            "max_waitlist": 3,
            "offer_seconds": 120,
        },
        headers=ADMIN,
    )
    assert event.status_code == 201, event.text
    assert event.json()["max_waitlist"] == 3 and event.json()["offer_seconds"] == 120


async def test_the_staff_list_shows_waiting_and_offered_without_tokens(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,), first=DAY)
    hold = await new_hold(client, rid, "guest", slot=SLOT)
    first, second = await join(client, rid, "w1"), await join(client, rid, "w2")
    third = await join(client, rid, "w3")
    await client.delete(
        f"/v1/restaurants/{rid}/waitlist/{third['id']}", headers={"Waitlist-Token": third["token"]}
    )
    await client.delete(
        f"/v1/restaurants/{rid}/holds/{hold['id']}", headers={"Hold-Token": hold["token"]}
    )
    url = f"/v1/restaurants/{rid}/waitlist?slot={SLOT}"
    assert_problem(await client.get(url), 401, "unauthorized")
    listed = (await client.get(url, headers=ADMIN)).json()["entries"]
    assert [e["id"] for e in listed] == [first["id"], second["id"]]
    assert [e["status"] for e in listed] == ["offered", "waiting"]
    assert [e["position"] for e in listed] == [None, 1]
    assert all("token" not in e and "hold" not in e for e in listed)
    assert_problem(
        await client.get(f"/v1/restaurants/{rid}/waitlist", headers=ADMIN), 400, "validation_error"
    )


async def test_a_sold_out_event_offers_released_seats(client: Client) -> None:
    made = await client.post(
        "/v1/events",
        json={"name": "Gala", "starts_at": f"{DAY}T19:00:00+00:00", "total_seats": 10},
        headers=ADMIN,
    )
    eid = made.json()["id"]
    holds = []
    for n in range(2):
        answer = await client.post(f"/v1/events/{eid}/holds", json={"user_id": f"g{n}", "count": 5})
        assert answer.status_code == 201, answer.text
        holds.append(answer.json())
    url = f"/v1/events/{eid}/waitlist"
    joined = []
    for user, count in (("four", 4), ("six", 6), ("one", 1)):
        answer = await client.post(url, json={"user_id": user, "count": count, **WAITER})
        assert answer.status_code == 201, answer.text
        joined.append(answer.json())
    assert_problem(
        await client.post(url, json={"user_id": "x", "count": 11, **WAITER}),
        409,
        "not_enough_seats",
    )
    assert_problem(
        await client.post(url, json={"user_id": "x", "count": 1, "section": "A", **WAITER}),
        404,
        "not_found",
    )
    released = await client.delete(
        f"/v1/events/{eid}/holds/{holds[0]['id']}", headers={"Hold-Token": holds[0]["token"]}
    )
    assert released.status_code == 204
    seen = [
        (await client.get(f"{url}/{e['id']}", headers={"Waitlist-Token": e["token"]})).json()
        for e in joined
    ]
    # Five seats: four go to the oldest that fits, the sixth waits, the last one goes to "one".
    assert [s["status"] for s in seen] == ["offered", "waiting", "offered"]
    assert len(seen[0]["hold"]["seats"]) == 4 and len(seen[2]["hold"]["seats"]) == 1
    assert seen[1]["position"] == 1 and seen[1]["count"] == 6
    listed = (await client.get(url, headers=ADMIN)).json()["entries"]
    assert [e["status"] for e in listed] == ["offered", "waiting", "offered"]


async def test_many_entries_at_the_cap_are_skipped_in_one_step(client: Client) -> None:
    """Twenty users at the cap wait ahead of one who is not: a release offers the table to
    the twenty-first in the same step (the walk passes every one at the cap)."""
    rid = await new_venue(client, capacities=(2,) * 21, first=DAY, max_holds_per_user=1)
    blocker = await new_hold(client, rid, "blocker", slot=SLOT)
    for n in range(20):
        await new_hold(client, rid, f"guest{n}", slot=SLOT)
    for n in range(20):
        await new_hold(client, rid, f"capped{n}", slot=OTHER_SLOT)
        await join(client, rid, f"capped{n}")
    free = await join(client, rid, "free")
    await client.delete(
        f"/v1/restaurants/{rid}/holds/{blocker['id']}", headers={"Hold-Token": blocker["token"]}
    )
    assert (await entry_of(client, rid, free))["status"] == "offered"
    audit = await client.get(f"/v1/restaurants/{rid}/audit", headers=ADMIN)
    assert audit.json()["ok"], audit.json()


async def test_a_seat_map_offer_is_a_block_together_and_keeps_the_index(
    client: Client, services: Services
) -> None:
    made = await client.post(
        "/v1/events",
        json={
            "name": "Recital",
            "starts_at": f"{DAY}T19:00:00+00:00",
            "sections": [{"id": "A", "name": "Stalls", "rows": [{"id": "1", "seats": 10}]}],
        },
        headers=ADMIN,
    )
    assert made.status_code == 201, made.text
    eid = made.json()["id"]
    first = await client.post(f"/v1/events/{eid}/holds", json={"user_id": "g1", "count": 4})
    rest = await client.post(
        f"/v1/events/{eid}/holds", json={"user_id": "g2", "count": 6, "together": False}
    )
    assert first.status_code == rest.status_code == 201, (first.text, rest.text)
    url = f"/v1/events/{eid}/waitlist"
    waiting = await client.post(url, json={"user_id": "w", "count": 3, **WAITER})
    assert waiting.status_code == 201 and waiting.json()["status"] == "waiting", waiting.text
    hold = first.json()
    released = await client.delete(
        f"/v1/events/{eid}/holds/{hold['id']}", headers={"Hold-Token": hold["token"]}
    )
    assert released.status_code == 204
    entry = waiting.json()
    seen = (
        await client.get(f"{url}/{entry['id']}", headers={"Waitlist-Token": entry["token"]})
    ).json()
    assert seen["status"] == "offered", seen
    numbers = sorted(int(seat.rsplit("-", 1)[1]) for seat in seen["hold"]["seats"])
    # Three adjacent seats of the four freed, taken through the free-run index.
    assert len(numbers) == 3 and numbers == list(range(numbers[0], numbers[0] + 3)), numbers
    sections = (await client.get(f"/v1/events/{eid}/sections")).json()["sections"]
    assert sections[0]["available"] == 1
    report = await services.auditor.audit(eid, "event")
    assert report.ok, report.violations


async def test_an_entry_naming_a_section_is_offered_places_there_only(
    client: Client, services: Services
) -> None:
    made = await client.post(
        "/v1/events",
        json={
            "name": "Recital",
            "starts_at": f"{DAY}T19:00:00+00:00",
            "sections": [
                {"id": "A", "name": "Stalls", "rows": [{"id": "1", "seats": 6}]},
                {"id": "B", "name": "Standing", "capacity": 4},
            ],
        },
        headers=ADMIN,
    )
    assert made.status_code == 201, made.text
    eid = made.json()["id"]
    holds = f"/v1/events/{eid}/holds"
    stalls = await client.post(holds, json={"user_id": "g1", "count": 6, "section": "A"})
    standing = await client.post(holds, json={"user_id": "g2", "count": 4, "section": "B"})
    assert stalls.status_code == standing.status_code == 201, (stalls.text, standing.text)
    url = f"/v1/events/{eid}/waitlist"
    assert_problem(
        await client.post(url, json={"user_id": "x", "count": 1, "section": "Z", **WAITER}),
        404,
        "not_found",
    )
    for_b = await client.post(url, json={"user_id": "wb", "count": 2, "section": "B", **WAITER})
    for_any = await client.post(url, json={"user_id": "wa", "count": 2, **WAITER})
    assert for_b.status_code == for_any.status_code == 201, (for_b.text, for_any.text)
    assert for_b.json()["section"] == "B" and for_b.json()["status"] == "waiting"

    async def status(entry: dict[str, Any]) -> dict[str, Any]:
        answer = await client.get(
            f"{url}/{entry['id']}", headers={"Waitlist-Token": entry["token"]}
        )
        body: dict[str, Any] = answer.json()
        return body

    async def release(hold: dict[str, Any]) -> None:
        answer = await client.delete(f"{holds}/{hold['id']}", headers={"Hold-Token": hold["token"]})
        assert answer.status_code == 204

    # The stalls free up: the older entry waits for standing places, the younger one (any
    # seated section) gets two seats together.
    await release(stalls.json())
    assert (await status(for_b.json()))["status"] == "waiting"
    offered = await status(for_any.json())
    assert offered["status"] == "offered" and len(offered["hold"]["seats"]) == 2
    await release(standing.json())
    standing_offer = await status(for_b.json())
    assert standing_offer["status"] == "offered", standing_offer
    assert standing_offer["hold"]["ga"] == {"section": "B", "count": 2}
    report = await services.auditor.audit(eid, "event")
    assert report.ok, report.violations


async def test_entries_ended_a_week_ago_are_dropped_as_others_end(
    client: Client, services: Services
) -> None:
    rid = await new_venue(client, capacities=(2,), first=DAY)
    await new_reservation(client, rid, "guest", slot=SLOT)
    old = await join(client, rid, "old")
    url = f"/v1/restaurants/{rid}/waitlist"
    left = await client.delete(f"{url}/{old['id']}", headers={"Waitlist-Token": old["token"]})
    assert left.status_code == 200
    # It ended eight days ago (its record and the list of ended entries agree).
    keys = V.of(rid)
    long_ago = int(await services.redis.zscore(keys.waitlist_ended, old["id"])) - 8 * 86_400_000
    record = json.loads(await services.redis.hget(keys.waitlist, old["id"]))
    await services.redis.hset(keys.waitlist, old["id"], json.dumps({**record, "ended": long_ago}))
    await services.redis.zadd(keys.waitlist_ended, {old["id"]: long_ago})
    assert (await entry_of(client, rid, old))["status"] == "left"
    # The next entry that ends drops it; the new one stays readable.
    new = await join(client, rid, "new")
    left = await client.delete(f"{url}/{new['id']}", headers={"Waitlist-Token": new["token"]})
    assert left.status_code == 200
    gone = await client.get(f"{url}/{old['id']}", headers={"Waitlist-Token": old["token"]})
    assert gone.status_code == 404
    assert (await entry_of(client, rid, new))["status"] == "left"
    assert await services.redis.zrange(keys.waitlist_ended, 0, -1) == [new["id"]]
    assert (await services.auditor.audit(rid)).ok
