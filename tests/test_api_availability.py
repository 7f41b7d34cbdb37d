"""HTTP contract, end to end: availability and slot views (held, reserved, available).

Every refused request is checked to be ``application/problem+json`` with its stable code and
to leave Redis exactly as it was.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import quote

from redis.asyncio import Redis

from holdsvc.services import Services
from tests.cluster import both_backends
from tests.helpers import (
    ADMIN,
    Client,
    Send,
    assert_problem,
    assert_refused_unchanged,
    day_after,
    lapse,
    new_hold,
    new_reservation,
    new_venue,
    slot_tomorrow,
    tomorrow,
)

# Every test here runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends

HOURS = [f"{hour:02d}:00" for hour in range(10, 22)]
# Malformed slot ids (400), unlike a well-formed slot that is not in the grid (404).
BAD_SLOT_IDS = [
    "2026-13-01T19:00",
    "2026-02-30T19:00",
    "tomorrow",
    "2026-12-01 19:00",
    "2026-12-01T25:00",
    "2026-12-01T19:60",
    "2026-12-01T19:00:00",
    "2026-12-1T19:00",
    "x" * 500,
]


def path_id(value: str) -> str:
    """An id as one URL path segment."""
    return quote(value, safe="")


# -- availability and slot views ----------------------------------------------------------------


async def test_availability_lists_free_fitting_tables_smallest_first(client: Client) -> None:
    rid = await new_venue(client, capacities=(6, 2, 4))
    await new_hold(client, rid, "u1", table="T2", slot=slot_tomorrow(19))
    await new_reservation(client, rid, "u2", table="T3", slot=slot_tomorrow(19))
    await new_hold(client, rid, "u3", table="T1", slot=slot_tomorrow(20))
    await new_hold(client, rid, "u4", table="T1", slot=slot_tomorrow(21))
    await new_hold(client, rid, "u4", table="T3", slot=slot_tomorrow(21))
    days = {"from": tomorrow(), "to": tomorrow()}
    response = await client.get(
        f"/v1/restaurants/{rid}/availability", params=days | {"party_size": "2"}
    )
    assert response.status_code == 200
    slots = {s["slot"]: s for s in response.json()["slots"]}
    assert list(slots) == [f"{tomorrow()}T{hour}" for hour in HOURS]
    assert slots[slot_tomorrow(19)] == {
        "slot": slot_tomorrow(19),
        "starts_at": f"{tomorrow()}T19:00:00.000+00:00",
        "ends_at": f"{tomorrow()}T20:00:00.000+00:00",
        "tables": [{"id": "T1", "label": None, "capacity": 6}],
    }
    assert [t["id"] for t in slots[slot_tomorrow(12)]["tables"]] == ["T2", "T3", "T1"]
    assert [t["id"] for t in slots[slot_tomorrow(20)]["tables"]] == ["T2", "T3"]
    # Party of 5: only the 6-top fits, and 20:00 and 21:00 have it taken.
    big = await client.get(f"/v1/restaurants/{rid}/availability", params=days | {"party_size": "5"})
    listed = [s["slot"] for s in big.json()["slots"]]
    assert slot_tomorrow(20) not in listed and slot_tomorrow(21) not in listed
    assert slot_tomorrow(19) in listed
    none = await client.get(
        f"/v1/restaurants/{rid}/availability", params=days | {"party_size": "7"}
    )
    assert none.json() == {"slots": [], "next_available": None, "max_party_size": 6}


async def test_availability_leaves_out_started_slots(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,), first=day_after(-1), last=tomorrow())
    response = await client.get(
        f"/v1/restaurants/{rid}/availability",
        params={"from": day_after(-1), "to": tomorrow(), "party_size": "2"},
    )
    listed = [s["slot"] for s in response.json()["slots"]]
    now = datetime.now(UTC)
    assert not [s for s in listed if s.startswith(day_after(-1))]
    for slot in listed:
        assert datetime.fromisoformat(slot).replace(tzinfo=UTC) > now - timedelta(seconds=5)
    assert [s for s in listed if s.startswith(tomorrow())] == [
        f"{tomorrow()}T{hour}" for hour in HOURS
    ]
    # The slot view still shows every slot, started or not.
    everything = await client.get(
        f"/v1/restaurants/{rid}/slots", params={"from": day_after(-1), "to": day_after(-1)}
    )
    assert len(everything.json()["slots"]) == 12


async def test_availability_keeps_to_the_booking_window(client: Client) -> None:
    late = await new_venue(client, capacities=(2,), last=day_after(3), max_days_ahead=2)
    response = await client.get(
        f"/v1/restaurants/{late}/availability",
        params={"from": tomorrow(), "to": day_after(3), "party_size": "2"},
    )
    days = {s["slot"][:10] for s in response.json()["slots"]}
    assert tomorrow() in days
    assert day_after(3) not in days
    soon = await new_venue(client, capacities=(2,), min_notice_minutes=525_600)
    response = await client.get(
        f"/v1/restaurants/{soon}/availability",
        params={"from": tomorrow(), "to": tomorrow(), "party_size": "2"},
    )
    assert response.json() == {"slots": [], "next_available": None, "max_party_size": 2}


async def test_availability_shows_a_table_again_once_its_hold_lapses(
    client: Client, services: Services
) -> None:
    rid = await new_venue(client, capacities=(2,))
    hold = await new_hold(client, rid, table="T1")
    days = {"from": tomorrow(), "to": tomorrow(), "party_size": "2"}
    listed = (await client.get(f"/v1/restaurants/{rid}/availability", params=days)).json()
    assert slot_tomorrow() not in [s["slot"] for s in listed["slots"]]
    await lapse(services, rid, hold["id"])
    listed = (await client.get(f"/v1/restaurants/{rid}/availability", params=days)).json()
    assert slot_tomorrow() in [s["slot"] for s in listed["slots"]]
    view = (await client.get(f"/v1/restaurants/{rid}/slots/{slot_tomorrow()}")).json()
    assert view["tables"] == [{"id": "T1", "label": None, "capacity": 2, "status": "available"}]


async def test_slot_views_show_held_reserved_and_available(client: Client) -> None:
    rid = await new_venue(client, capacities=(2, 4, 6))
    held = await new_hold(client, rid, "u1", table="T1")
    await new_reservation(client, rid, "u2", table="T2")
    expected_tables = [
        {"id": "T1", "label": None, "capacity": 2, "status": "held", "free_at": held["expires_at"]},
        {"id": "T2", "label": None, "capacity": 4, "status": "reserved"},
        {"id": "T3", "label": None, "capacity": 6, "status": "available"},
    ]
    one = await client.get(f"/v1/restaurants/{rid}/slots/{slot_tomorrow()}")
    assert one.status_code == 200
    assert one.json() == {
        "slot": slot_tomorrow(),
        "starts_at": f"{tomorrow()}T19:00:00.000+00:00",
        "ends_at": f"{tomorrow()}T20:00:00.000+00:00",
        "tables": expected_tables,
    }
    every = await client.get(
        f"/v1/restaurants/{rid}/slots", params={"from": tomorrow(), "to": tomorrow()}
    )
    assert every.status_code == 200
    slots = every.json()["slots"]
    assert [s["slot"] for s in slots] == [f"{tomorrow()}T{hour}" for hour in HOURS]
    assert slots[9] == one.json()
    assert all(
        t["status"] == "available"
        for s in slots
        if s["slot"] != slot_tomorrow()
        for t in s["tables"]
    )


async def test_malformed_slot_id_is_400(client: Client, redis: Redis) -> None:
    rid = await new_venue(client)
    cases: dict[str, Send] = {
        slot: partial(client.get, f"/v1/restaurants/{rid}/slots/{path_id(slot)}")
        for slot in BAD_SLOT_IDS
    }
    await assert_refused_unchanged(redis, cases, 400, "validation_error")


async def test_well_formed_slot_outside_the_grid_is_404(client: Client) -> None:
    rid = await new_venue(client)
    for slot in (f"{tomorrow()}T03:00", f"{tomorrow()}T19:30", "2031-01-01T19:00"):
        assert_problem(await client.get(f"/v1/restaurants/{rid}/slots/{slot}"), 404, "not_found")


async def test_range_queries_reject_bad_parameters(client: Client, redis: Redis) -> None:
    rid = await new_venue(client)
    ranges: dict[str, dict[str, str]] = {
        "missing-from": {"to": "2026-12-01"},
        "missing-to": {"from": "2026-12-01"},
        "to-before-from": {"from": "2026-12-02", "to": "2026-12-01"},
        "367-days": {"from": "2026-12-01", "to": "2027-12-02"},
        "not-a-date": {"from": "2026-02-30", "to": "2026-03-01"},
        "word": {"from": "tomorrow", "to": "2026-03-01"},
    }
    parties = {"party-0": "0", "party-51": "51", "party-word": "two", "party-float": "2.5"}
    cases: dict[str, Send] = {}
    for case_id, params in ranges.items():
        for endpoint in ("availability", "slots"):
            url = f"/v1/restaurants/{rid}/{endpoint}"
            cases[f"{endpoint} {case_id}"] = partial(client.get, url, params=params)
    for case_id, party in parties.items():
        params = {"from": tomorrow(), "to": tomorrow(), "party_size": party}
        url = f"/v1/restaurants/{rid}/availability"
        cases[f"availability {case_id}"] = partial(client.get, url, params=params)
    await assert_refused_unchanged(redis, cases, 400, "validation_error")


async def test_extreme_dates_are_a_400_never_a_500(client: Client, redis: Redis) -> None:
    """Day bounds of year 1 or 9999 overflow in zones east or west of UTC: 400, not 500."""
    cases: dict[str, Send] = {}
    for zone in ("UTC", "Asia/Tokyo", "America/Sitka", "Asia/Manila"):
        rid = await new_venue(client, timezone=zone)
        base = f"/v1/restaurants/{rid}"
        for name, days in (
            ("last-day", {"from": "9999-12-31", "to": "9999-12-31"}),
            ("first-day", {"from": "0001-01-01", "to": "0001-01-01"}),
        ):
            cases |= {
                f"{zone} slots {name}": partial(client.get, f"{base}/slots", params=days),
                f"{zone} availability {name}": partial(
                    client.get, f"{base}/availability", params=days
                ),
                f"{zone} add-slots {name}": partial(
                    client.post, f"{base}/slots", json=days, headers=ADMIN
                ),
                f"{zone} staff-list {name}": partial(
                    client.get, f"{base}/reservations", params=days, headers=ADMIN
                ),
            }
    await assert_refused_unchanged(redis, cases, 400, "validation_error")
    # Open-ended staff lists in a zone east of UTC, and the outermost dates allowed.
    tokyo = await new_venue(client, timezone="Asia/Tokyo")
    made = await new_reservation(client, tokyo)
    for params in ({"to": day_after(30)}, {"from": "0001-01-02"}, {"to": "9999-12-30"}):
        response = await client.get(
            f"/v1/restaurants/{tokyo}/reservations", params=params, headers=ADMIN
        )
        assert response.status_code == 200, (params, response.text)
        assert [r["reference"] for r in response.json()["reservations"]] == [made["reference"]]
    edge = {"from": "9999-12-30", "to": "9999-12-30"}
    assert (await client.get(f"/v1/restaurants/{tokyo}/slots", params=edge)).json() == {"slots": []}
