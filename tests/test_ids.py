"""Ids are checked as ids: a separator inside a unit id never turns one unit into several.

Unit ids in a body are checked against their alphabet (400); a well-formed id that does not
exist stays a 404. Below the edge, the scripts take lists of units as JSON arrays and records
store them that way, so no character of an id can ever split it.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest
from redis.asyncio import Redis

from holdsvc import errors
from holdsvc.holds import HoldRequest
from holdsvc.identifiers import digest, new_staff_token_id
from holdsvc.keys import Keys
from holdsvc.models import ConfirmInput, EventInput
from holdsvc.services import Services
from holdsvc.venues import FIT_SCALE, VenueKind
from tests.helpers import (
    ADMIN,
    Client,
    Send,
    assert_refused_unchanged,
    hold_http,
    make_restaurant,
    new_reservation,
    new_venue,
    place,
    slot_tomorrow,
    snapshot,
)

KEYS = Keys("hs")
# Each would be one unit to an id check, and several (or none) to a split on a separator.
MALFORMED = ["T1,T2", "T1,T1", "T1 ", " T1", "T1\n", "T1|r|x", "T1}", "{T1}", "T1:x", "T1*"]
MALFORMED += ["Ä1", "T" * 41, "T1\x00", ""]
WELL_FORMED_UNKNOWN = ["T99", "t1", "A-1-1", "Main-A-12", "X" * 40]


async def test_table_ids_outside_their_alphabet_are_400_and_change_nothing(
    client: Client, redis: Redis
) -> None:
    rid = await new_venue(client, capacities=(2, 4))
    res = await new_reservation(client, rid)
    cases: dict[str, Send] = {}
    for table in MALFORMED:
        booking = {"slot": slot_tomorrow(12), "party_size": 2, "name": "N", "phone": "+12125550100"}
        cases |= {
            f"hold {table!r}": partial(hold_http, client, rid, "u2", table=table),
            f"staff booking {table!r}": partial(
                client.post,
                f"/v1/restaurants/{rid}/reservations",
                json={**booking, "table_id": table},
                headers=ADMIN,
            ),
            f"move {table!r}": partial(
                client.patch,
                f"/v1/reservations/{res['reference']}",
                json={"table_id": table},
                headers=ADMIN,
            ),
        }
    await assert_refused_unchanged(redis, cases, 400, "validation_error")


async def test_well_formed_table_ids_that_do_not_exist_are_404(
    client: Client, redis: Redis
) -> None:
    rid = await new_venue(client, capacities=(2, 4))
    res = await new_reservation(client, rid)
    cases: dict[str, Send] = {}
    for table in WELL_FORMED_UNKNOWN:
        cases |= {
            f"hold {table}": partial(hold_http, client, rid, "u2", table=table),
            f"move {table}": partial(
                client.patch,
                f"/v1/reservations/{res['reference']}",
                json={"table_id": table},
                headers={"Manage-Token": res["manage_token"]},
            ),
        }
    await assert_refused_unchanged(redis, cases, 404, "not_found")


async def test_seat_ids_are_checked_one_by_one(client: Client, redis: Redis) -> None:
    """``["S1,S1"]`` once held one seat twice (and counted it twice towards the party)."""
    event = {"name": "E", "starts_at": "2030-06-01T20:00:00Z", "total_seats": 10}
    eid = (await client.post("/v1/events", json=event, headers=ADMIN)).json()["id"]
    url = f"/v1/events/{eid}/holds"
    malformed = [["S1,S1"], ["S1,S2"], ["S1", "S2,S3"], ["S1\n"], ["S1 "], ["S1|x"]]
    await assert_refused_unchanged(
        redis,
        {
            f"seats {seats!r}": partial(client.post, url, json={"user_id": "u", "seats": seats})
            for seats in malformed
        },
        400,
        "validation_error",
    )
    await assert_refused_unchanged(
        redis,
        {
            f"seats {seats!r}": partial(client.post, url, json={"user_id": "u", "seats": seats})
            for seats in (["S11"], ["A-1-1"], ["S1", "s2"])
        },
        404,
        "not_found",
    )
    assert (await client.get(f"/v1/events/{eid}")).json()["available_seats"] == 10


async def test_a_unit_id_with_a_separator_in_it_is_one_unit_everywhere(
    services: Services,
) -> None:
    """The scripts never split an id, whatever it holds: a unit named ``A,B|r`` (planted;
    the API would refuse to name it) is held, confirmed, shown and freed as one unit."""
    rid = await make_restaurant(services, capacities=(2,))
    keys = KEYS.of(rid)
    odd = "A,B|r"
    await services.redis.hset(keys.units, odd, 2)
    await services.redis.zadd(keys.units_by_fit, {odd: 2 * FIT_SCALE + 2})
    hold = await place(services, rid, table=odd)
    assert hold.table_id == odd
    assert await services.redis.hkeys(keys.cells(hold.slot)) == [odd]
    assert await services.redis.hget(keys.hold(hold.id), "n") == "1"
    fetched = await services.holds.get(rid, VenueKind.RESTAURANT, hold.id, str(hold.token))
    assert fetched.table_id == odd
    reservation, _ = await services.holds.confirm(
        rid,
        VenueKind.RESTAURANT,
        hold.id,
        str(hold.token),
        ConfirmInput(name="A", phone="+12125550100"),
    )
    assert reservation.table_id == odd and reservation.party_size == 2
    assert await services.redis.hgetall(keys.cells(hold.slot)) == {
        odd: f"r|{reservation.reference}"
    }
    entries = await services.redis.xrange(keys.feed)
    assert [json.loads(fields["cells"]) for _, fields in entries] == [
        [{"slot": hold.slot, "unit": odd}]
    ] * 2
    await services.reservations.cancel(reservation.reference, admin=True)
    assert await services.redis.hlen(keys.cells(hold.slot)) == 0
    assert (await services.auditor.audit(rid)).ok


async def test_a_unit_named_twice_is_refused_by_the_scripts(services: Services) -> None:
    rid = await make_restaurant(services, capacities=(2, 2))
    keys = KEYS.of(rid)
    before = await snapshot(services, rid)
    with pytest.raises(errors.ValidationFailed, match="T1"):
        await services.scripts.hold(
            keys,
            hold_id="H1",
            token_digest=digest("t"),
            user_id="u",
            slot=slot_tomorrow(),
            party_size=2,
            units=["T1", "T1"],
            count=2,
            idempotency_key=None,
            fingerprint="",
        )
    with pytest.raises(errors.ValidationFailed, match="T2"):
        await services.scripts.book(
            keys,
            venue_id=rid,
            reference=f"{rid}-AAAAAA",
            manage_digest="m",
            slot=slot_tomorrow(),
            party_size=2,
            units=["T2", "T1", "T2"],
            count=3,
            fields={"name": "N", "phone": "+12125550100"},
            actor="admin",
        )
    assert await snapshot(services, rid) == before


async def test_records_stored_as_comma_joined_text_still_read_the_same(
    services: Services,
) -> None:
    """Holds and reservations written before units were JSON arrays keep working."""
    event = await services.events.create(
        EventInput(name="E", starts_at="2030-06-01T20:00:00Z", total_seats=10)
    )
    keys = KEYS.of(event.id)
    hold = await place_seats(services, event.id, ["S2", "S1"])
    await services.redis.hset(keys.hold(hold["id"]), "units", "S2,S1")  # as stored before
    fetched = await services.holds.get(event.id, VenueKind.EVENT, hold["id"], hold["token"])
    assert fetched.seats == ["S2", "S1"]
    reservation, _ = await services.holds.confirm(
        event.id,
        VenueKind.EVENT,
        hold["id"],
        hold["token"],
        ConfirmInput(name="A", phone="+12125550100"),
    )
    assert reservation.seats == ["S2", "S1"] and reservation.party_size == 2
    stored = await services.redis.hget(keys.reservation(reservation.reference), "units")
    assert json.loads(stored) == ["S2", "S1"]
    await services.redis.hset(keys.reservation(reservation.reference), "units", "S2,S1")
    assert (await services.reservations.get(reservation.reference, admin=True)).seats == [
        "S2",
        "S1",
    ]
    assert (await services.auditor.audit(event.id)).ok
    await services.reservations.cancel(reservation.reference, admin=True)
    assert await services.redis.hlen(keys.cells(event.slot)) == 0


async def place_seats(services: Services, event_id: str, seats: list[str]) -> dict[str, Any]:
    """A hold on named seats through the service: its id and token."""
    profile = await services.venues.profile(event_id, VenueKind.EVENT)
    hold, _ = await services.holds.place(
        event_id,
        VenueKind.EVENT,
        HoldRequest(
            user_id="u", slot=str(profile.event_slot), party_size=1, units=seats, count=len(seats)
        ),
    )
    return {"id": hold.id, "token": str(hold.token)}


def test_staff_token_ids_are_letters_and_digits_so_the_command_line_takes_them() -> None:
    # A leading '-' made `holdsvc staff-token revoke <venue> <id>` read the id as an option
    # (token_urlsafe ids did that one time in 64).
    ids = {new_staff_token_id() for _ in range(2000)}
    assert len(ids) == 2000 and all(len(i) == 16 and i.isalnum() and i.isascii() for i in ids)
