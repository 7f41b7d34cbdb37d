"""The audit: clean after real work, precise about each planted fault, quiet under load."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from holdsvc.cli import _audit, main
from holdsvc.errors import HoldsvcError
from holdsvc.keys import Keys
from holdsvc.models import (
    ConfirmInput,
    DurationRule,
    Hold,
    ReservationPatch,
    StaffBookingInput,
    WaitlistEntry,
    WaitlistInput,
)
from holdsvc.services import Services
from holdsvc.settings import Settings
from holdsvc.venues import VenueKind
from tests.cluster import both_backends
from tests.helpers import (
    ADMIN,
    hold_http,
    lapse,
    make_restaurant,
    new_venue,
    place,
    slot_tomorrow,
    snapshot,
    tomorrow,
)

# Every test here runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends

V = Keys("hs")
Fault = Callable[[Services, str, dict[str, Any]], Awaitable[None]]


async def busy_restaurant(services: Services) -> tuple[str, dict[str, Any]]:
    """A venue after a realistic day: every kind of change, some of each state left."""
    rid = await make_restaurant(services, capacities=(2, 2, 4, 6))
    live = await place(services, rid, "live")
    released = await place(services, rid, "gone")
    await services.holds.release(rid, VenueKind.RESTAURANT, released.id, str(released.token))
    lapsed = await place(services, rid, "late")
    await lapse(services, rid, lapsed.id)
    await services.sweeper.sweep_once()
    booked = await place(services, rid, "guest", slot=slot_tomorrow(12))
    res, _ = await services.holds.confirm(
        rid,
        VenueKind.RESTAURANT,
        booked.id,
        str(booked.token),
        ConfirmInput(name="G", phone="+12125550100"),
    )
    cancelled = await place(services, rid, "guest2", slot=slot_tomorrow(13))
    res2, _ = await services.holds.confirm(
        rid,
        VenueKind.RESTAURANT,
        cancelled.id,
        str(cancelled.token),
        ConfirmInput(name="H", phone="+12125550101"),
    )
    await services.reservations.cancel(res2.reference, admin=True)
    await services.reservations.change(
        res.reference,
        ReservationPatch(slot=slot_tomorrow(14), phone="+12125550199"),
        admin=True,
        manage_token=None,
    )
    staff = await services.reservations.book(
        rid,
        StaffBookingInput(
            slot=slot_tomorrow(15), party_size=5, name="Walk-in", phone="+12125550102"
        ),
    )
    return rid, {"live": live, "reservation": res, "cancelled": res2, "staff": staff}


async def test_clean_after_a_realistic_day(services: Services) -> None:
    rid, _ = await busy_restaurant(services)
    report = await services.auditor.audit(rid, "restaurant")
    assert report.violations == [] and report.ok
    assert report.checked["holds"] == 5 and report.checked["reservations"] == 3


async def _orphan_cell(services: Services, rid: str, made: dict[str, Any]) -> None:
    await services.redis.hset(V.of(rid).cells(slot_tomorrow(16)), "T1", "h|ghost|99999999999999")


async def _double_claim(services: Services, rid: str, made: dict[str, Any]) -> None:
    live = made["live"]
    fields = await services.redis.hgetall(V.of(rid).hold(live.id))
    await services.redis.hset(V.of(rid).hold("twin"), mapping={**fields, "user": "twin"})
    await services.redis.zadd(V.of(rid).holds, {"twin": int(fields["expires"])})


async def _lost_reserved_cell(services: Services, rid: str, made: dict[str, Any]) -> None:
    await services.redis.hdel(V.of(rid).cells(slot_tomorrow(14)), made["reservation"].table_id)


async def _cancelled_keeps_cell(services: Services, rid: str, made: dict[str, Any]) -> None:
    ref = made["cancelled"].reference
    await services.redis.hset(
        V.of(rid).cells(slot_tomorrow(13)), made["cancelled"].table_id, f"r|{ref}"
    )


async def _over_cap(services: Services, rid: str, made: dict[str, Any]) -> None:
    await services.redis.hset(V.of(rid).venue, "max_holds_per_user", "0")


async def _start_index(services: Services, rid: str, made: dict[str, Any]) -> None:
    await services.redis.zrem(V.of(rid).reservations_by_start, made["staff"].reference)


async def _phone_index(services: Services, rid: str, made: dict[str, Any]) -> None:
    await services.redis.srem(
        V.of(rid).reservations_by_phone("+12125550199"), made["reservation"].reference
    )


async def _expiry_index(services: Services, rid: str, made: dict[str, Any]) -> None:
    await services.redis.zrem(V.of(rid).holds, made["live"].id)


async def _feed_entry(services: Services, rid: str, made: dict[str, Any]) -> None:
    for entry_id, fields in await services.redis.xrange(V.of(rid).feed):
        if fields["event"] == "released":
            await services.redis.xdel(V.of(rid).feed, entry_id)


async def _lifetime(services: Services, rid: str, made: dict[str, Any]) -> None:
    await services.redis.hset(V.of(rid).hold(made["live"].id), "ends", "1")


async def _user_set(services: Services, rid: str, made: dict[str, Any]) -> None:
    live = made["live"]
    expires = await services.redis.hget(V.of(rid).hold(live.id), "expires")
    await services.redis.zadd(V.of(rid).user("intruder"), {f"{live.id}|1": int(expires)})


async def _unit_named_twice(services: Services, rid: str, made: dict[str, Any]) -> None:
    unit = made["staff"].table_id
    await services.redis.hset(
        V.of(rid).reservation(made["staff"].reference), "units", json.dumps([unit, unit])
    )


async def _unreadable_units(services: Services, rid: str, made: dict[str, Any]) -> None:
    await services.redis.hset(V.of(rid).hold(made["live"].id), "units", '["T1"')


async def _cell_of_no_unit(services: Services, rid: str, made: dict[str, Any]) -> None:
    # What a split of "T1,T2" once left behind: a cell named after no unit of the venue.
    ref = made["reservation"].reference
    await services.redis.hset(V.of(rid).cells(slot_tomorrow(14)), "T1,T2", f"r|{ref}")


async def _cell_of_removed_table(services: Services, rid: str, made: dict[str, Any]) -> None:
    # A table removed (at epoch 0) while a slot still to come claims it: what remove_table.lua
    # refuses in its step.
    ref = made["reservation"].reference
    await services.redis.hset(V.of(rid).units_removed, "T9", "0|2|")
    await services.redis.hset(V.of(rid).cells(slot_tomorrow(15)), "T9", f"r|{ref}")


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (_orphan_cell, "cell_owner"),
        (_double_claim, "double_claim"),
        (_lost_reserved_cell, "reservation_cell"),
        (_cancelled_keeps_cell, "reservation_cell"),
        (_over_cap, "user_cap"),
        (_start_index, "start_index"),
        (_phone_index, "phone_index"),
        (_expiry_index, "expiry_index"),
        (_feed_entry, "feed"),
        (_lifetime, "hold_lifetime"),
        (_user_set, "user_index"),
        (_unit_named_twice, "record_units"),
        (_unreadable_units, "record_units"),
        (_cell_of_no_unit, "cell_unit"),
        (_cell_of_removed_table, "removed_unit_cell"),
    ],
)
async def test_each_planted_fault_is_reported_precisely(
    services: Services, fault: Fault, check: str
) -> None:
    rid, made = await busy_restaurant(services)
    await fault(services, rid, made)
    report = await services.auditor.audit(rid, "restaurant")
    assert not report.ok
    assert check in {v.check for v in report.violations}, report.violations


async def test_quiet_under_live_load(services: Services) -> None:
    rid = await make_restaurant(services, capacities=(2,) * 6, days=1)
    stop = asyncio.Event()
    rng = random.Random(7)

    async def worker(n: int) -> None:
        while not stop.is_set():
            slot = slot_tomorrow(rng.choice(range(10, 22)))
            try:
                hold = await place(services, rid, f"w{n}", slot=slot)
            except HoldsvcError:  # taken or capped: part of the load
                continue
            roll = rng.random()
            if roll < 0.4:
                await services.holds.release(rid, VenueKind.RESTAURANT, hold.id, str(hold.token))
            elif roll < 0.8:
                res, _ = await services.holds.confirm(
                    rid,
                    VenueKind.RESTAURANT,
                    hold.id,
                    str(hold.token),
                    ConfirmInput(name="L", phone="+12125550100"),
                )
                if rng.random() < 0.5:
                    await services.reservations.cancel(res.reference, admin=True)

    workers = [asyncio.create_task(worker(n)) for n in range(6)]
    reports = []
    for _ in range(8):
        reports.append(await services.auditor.audit(rid))
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.gather(*workers)
    assert all(r.ok for r in reports), [r.violations for r in reports if not r.ok]
    final = await services.auditor.audit(rid)
    assert final.ok and final.checked["reservations"] > 10 and final.checked["feed_entries"] > 50


async def test_audit_endpoints(client: AsyncTestClient[Any]) -> None:
    body = {
        "name": "A",
        "phone": "+12125550100",
        "timezone": "UTC",
        "opens": "10:00",
        "closes": "22:00",
    }
    rid = (await client.post("/v1/restaurants", json=body, headers=ADMIN)).json()["id"]
    answer = await client.get(f"/v1/restaurants/{rid}/audit", headers=ADMIN)
    assert (
        answer.status_code == 200
        and answer.json()["ok"] is True
        and answer.json()["violations"] == []
    )
    assert (await client.get(f"/v1/restaurants/{rid}/audit")).status_code == 401
    assert (await client.get("/v1/restaurants/NOPE99/audit", headers=ADMIN)).status_code == 404
    event = {"name": "E", "starts_at": f"{tomorrow()}T20:00:00Z", "total_seats": 10}
    eid = (await client.post("/v1/events", json=event, headers=ADMIN)).json()["id"]
    await client.post(f"/v1/events/{eid}/holds", json={"user_id": "u", "count": 3})
    assert (await client.get(f"/v1/events/{eid}/audit", headers=ADMIN)).json()["ok"] is True
    assert (await client.get(f"/v1/events/{rid}/audit", headers=ADMIN)).status_code == 404


async def test_a_venue_left_off_the_list_is_found_and_put_back(
    services: Services, settings: Settings
) -> None:
    """The list of venues is written after the venue's atomic step (another cluster slot): a
    crash in between leaves an unlisted venue, which the audit finds and --repair relists."""
    listed = await make_restaurant(services)
    lost = await make_restaurant(services)
    created = int(await services.redis.hget(V.of(lost).venue, "created"))
    await services.redis.zrem(V.venues("restaurant"), lost)  # as if the app died before ZADD
    report = await services.auditor.audit(lost)
    assert [v.check for v in report.violations] == ["venue_index"]
    assert await services.auditor.unlisted_venues() == {lost: ("restaurant", created)}
    reports = await _audit(settings, [], repair=True)
    assert sorted(r.venue_id for r in reports) == sorted([listed, lost])
    assert await services.redis.zscore(V.venues("restaurant"), lost) == created
    assert await services.auditor.unlisted_venues() == {}
    assert (await services.auditor.audit(lost)).ok


async def test_a_consumer_position_ahead_of_the_clock_is_named(services: Services) -> None:
    rid = await make_restaurant(services)
    assert (await services.auditor.audit(rid)).ok
    position = json.dumps({"cursor": "99999999999999-0", "attempt": 0, "next": 0})
    await services.redis.hset(V.of(rid).consumers, "wh:wh_planted", position)
    report = await services.auditor.audit(rid)
    assert [v.check for v in report.violations] == ["consumer_position"]
    assert "wh:wh_planted" in report.violations[0].detail


async def test_a_venue_with_webhooks_off_the_delivery_list_is_named(services: Services) -> None:
    rid = await make_restaurant(services)
    await services.webhooks.create(rid, "https://93.184.215.14/hook", None, None)
    assert (await services.auditor.audit(rid)).ok
    await services.redis.srem(V.webhook_venues, rid)
    report = await services.auditor.audit(rid)
    assert [v.check for v in report.violations] == ["webhook_index"]


CRAFTED_USERS = ["x}:venue", "}:venue", "{X}:venue", "*", "a:b:c", "user:1", "\\}"]


async def test_a_crafted_user_id_never_passes_for_another_key(
    client: AsyncTestClient[Any], redis: Redis, settings: Settings
) -> None:
    """A user id with ``}`` and ``:venue`` once made a key that the audit's scan of venues
    took for a venue (and crashed on). Key names hash user ids; scans match structure."""
    rid = await new_venue(client, capacities=(2,) * len(CRAFTED_USERS), max_holds_per_user=1)
    for user in CRAFTED_USERS:
        assert (await hold_http(client, rid, user)).status_code == 201
    # Each crafted user is still capped on its own.
    capped = await hold_http(client, rid, CRAFTED_USERS[0], slot=slot_tomorrow(12))
    assert capped.json()["code"] == "hold_limit_reached"
    reports = await _audit(settings, [])
    assert [(r.venue_id, r.ok) for r in reports] == [(rid, True)], reports
    assert [(r.venue_id, r.ok) for r in await _audit(settings, [], repair=True)] == [(rid, True)]
    # No key name carries a user id as it was sent: each user's set is named by a digest.
    keys = [key.decode() async for key in redis.scan_iter(match=f"hs:{{{rid}}}:user:*")]
    assert len(keys) == len(CRAFTED_USERS)
    assert all(re.fullmatch(rf"hs:\{{{rid}\}}:user:[0-9a-f]{{32}}", key) for key in keys), keys


async def _strand_cells(services: Services, rid: str, made: dict[str, Any]) -> set[tuple[Any, ...]]:
    """Two stuck cells: one reserved by a cancelled reservation, one by a missing one."""
    cancelled = made["cancelled"]
    missing = f"{rid}-ZZZZZZ"
    await services.redis.hset(
        V.of(rid).cells(slot_tomorrow(13)), cancelled.table_id, f"r|{cancelled.reference}"
    )
    await services.redis.hset(V.of(rid).cells(slot_tomorrow(17)), "T3", f"r|{missing}")
    return {
        (slot_tomorrow(13), cancelled.table_id, cancelled.reference),
        (slot_tomorrow(17), "T3", missing),
    }


def stuck_cells(report: Any) -> set[tuple[Any, ...]]:
    return {(v.slot, v.unit, v.reference) for v in report.violations if v.check == "cell_owner"}


async def test_repair_frees_a_cell_no_live_reservation_owns(
    services: Services,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rid, made = await busy_restaurant(services)
    planted = await _strand_cells(services, rid, made)
    assert stuck_cells(await services.auditor.audit(rid)) == planted
    # `holdsvc audit` itself (its own event loop, hence a thread).
    monkeypatch.setenv("HOLDSVC_REDIS_URL", str(settings.redis_url))
    assert await asyncio.to_thread(main, ["audit", rid]) == 1  # no --repair: no write
    assert stuck_cells(await services.auditor.audit(rid)) == planted
    assert await asyncio.to_thread(main, ["audit", "--repair", rid]) == 0
    freed = [line for line in capsys.readouterr().err.splitlines() if ": freed " in line]
    assert sorted(freed) == sorted(
        f"{rid}: freed {slot} {unit} (reserved by {ref}: cell reserved by a reservation that is "
        f"{'missing' if ref.endswith('ZZZZZZ') else 'cancelled'})"
        for slot, unit, ref in planted
    )
    for slot, unit, _ in planted:
        assert await services.redis.hget(V.of(rid).cells(slot), unit) is None
    assert (await services.auditor.audit(rid)).ok
    # Each freed cell is a change the feed tells (the staff screen repaints it).
    entries = [fields for _, fields in await services.redis.xrange(V.of(rid).feed)][-2:]
    assert sorted((e["event"], e["ref"], json.loads(e["cells"])) for e in entries) == sorted(
        ("changed", ref, [{"slot": slot, "unit": unit}]) for slot, unit, ref in planted
    )


async def test_repair_rechecks_each_cell_when_it_frees_it(services: Services) -> None:
    """Between the audit and the repair the cell may have been fixed and claimed again, or its
    reservation may own it after all: the repair script checks again and leaves it."""
    rid, made = await busy_restaurant(services)
    await _strand_cells(services, rid, made)
    report = await services.auditor.audit(rid)
    assert len(stuck_cells(report)) == 2
    keys = V.of(rid)
    # One is freed by someone else and a guest holds it now; the other's record is restored.
    await services.redis.hdel(keys.cells(slot_tomorrow(13)), made["cancelled"].table_id)
    holder = await place(
        services, rid, "new", slot=slot_tomorrow(13), table=made["cancelled"].table_id
    )
    await services.redis.hset(
        keys.reservation(f"{rid}-ZZZZZZ"),
        mapping={
            **await services.redis.hgetall(keys.reservation(made["staff"].reference)),
            "reference": f"{rid}-ZZZZZZ",
            "slot": slot_tomorrow(17),
            "units": '["T3"]',
        },
    )
    before = await snapshot(services, rid)
    assert await services.auditor.free_stuck_cells(report, services.scripts) == []
    assert await snapshot(services, rid) == before
    assert (
        await services.redis.hget(keys.cells(slot_tomorrow(13)), made["cancelled"].table_id)
        == f"h|{holder.id}|{await services.redis.hget(keys.hold(holder.id), 'expires')}"
    )


# -- durations, combinations, pacing, one booking per guest (DESIGN.md 8 and 10) ----------

RICH_DAY = tomorrow()


async def rich_restaurant(client: AsyncTestClient[Any]) -> tuple[str, dict[str, Any]]:
    """A restaurant of 30-minute slots with durations, a combination, a covers cap and one
    booking per guest, after a few bookings: a 90-minute reservation on T1 at 19:00, a
    120-minute one on the T2+T3 combination at 19:00, and a live 90-minute hold at 12:00."""
    rid = await new_venue(
        client,
        capacities=(2, 2, 2),
        slot_minutes=30,
        durations=[{"max_party": 2, "minutes": 90}, {"max_party": 4, "minutes": 120}],
        max_covers_per_slot=8,
        one_booking_per_guest=True,
    )
    combo = await client.post(
        f"/v1/restaurants/{rid}/combinations",
        json={"tables": ["T2", "T3"], "capacity": 4},
        headers=ADMIN,
    )
    assert combo.status_code == 201
    made: dict[str, Any] = {}
    for name, party, phone in (("pair", 2, "+12125550100"), ("four", 4, "+12125550111")):
        hold = (await hold_http(client, rid, name, slot=f"{RICH_DAY}T19:00", party=party)).json()
        confirmed = await client.post(
            f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm",
            json={"name": name, "phone": phone},
            headers={"Hold-Token": hold["token"]},
        )
        assert confirmed.status_code == 201, confirmed.text
        made[name] = confirmed.json()
    made["live"] = (await hold_http(client, rid, "live", slot=f"{RICH_DAY}T12:00")).json()
    return rid, made


async def _middle_cell_lost(services: Services, rid: str, made: dict[str, Any]) -> None:
    # The second of the reservation's three slots no longer points at it.
    await services.redis.hdel(V.of(rid).cells(f"{RICH_DAY}T19:30"), "T1")


async def _combination_half_freed(services: Services, rid: str, made: dict[str, Any]) -> None:
    await services.redis.hdel(V.of(rid).cells(f"{RICH_DAY}T20:00"), "T3")


async def _span_with_a_gap(services: Services, rid: str, made: dict[str, Any]) -> None:
    # The hold's record skips a slot: its slots are no longer back to back.
    spanned = [f"{RICH_DAY}T12:00", f"{RICH_DAY}T13:00", f"{RICH_DAY}T13:30"]
    await services.redis.hset(V.of(rid).hold(made["live"]["id"]), "slots", json.dumps(spanned))


async def _covers_over_cap(services: Services, rid: str, made: dict[str, Any]) -> None:
    await services.redis.hset(V.of(rid).venue, "max_covers_per_slot", "5")


async def _guest_twice(services: Services, rid: str, made: dict[str, Any]) -> None:
    # Both reservations under one phone: two bookings of one guest at 19:00.
    await services.redis.hset(
        V.of(rid).reservation(made["four"]["reference"]), "phone", "+12125550100"
    )


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (_middle_cell_lost, "reservation_cell"),
        (_combination_half_freed, "reservation_cell"),
        (_span_with_a_gap, "booking_span"),
        (_covers_over_cap, "covers"),
        (_guest_twice, "guest_overlap"),
    ],
)
async def test_each_planted_booking_fault_is_named(
    client: AsyncTestClient[Any], services: Services, fault: Fault, check: str
) -> None:
    rid, made = await rich_restaurant(client)
    clean = await services.auditor.audit(rid, "restaurant")
    assert clean.ok, clean.violations
    await fault(services, rid, made)
    report = await services.auditor.audit(rid, "restaurant")
    assert not report.ok
    assert check in {v.check for v in report.violations}, report.violations


# -- invariant 9: the waitlist ---------------------------------------------------------------


async def waitlisted_restaurant(services: Services) -> tuple[str, dict[str, Any]]:
    """A full slot with an offered, a waiting, a confirmed and a left entry."""
    rid = await make_restaurant(services, capacities=(2, 2))
    slot = slot_tomorrow(19)
    kind = VenueKind.RESTAURANT
    taken = await place(services, rid, "guest", slot=slot)
    second = await place(services, rid, "guest2", slot=slot)

    async def join(user: str) -> WaitlistEntry:
        body = WaitlistInput(user_id=user, slot=slot, party_size=2, name="W", phone="+12125550199")
        return await services.waitlist.join(rid, kind, body)

    done, offered, waiting, left = [await join(u) for u in ("done", "offered", "waits", "left")]
    await services.holds.release(rid, kind, taken.id, str(taken.token))
    first = await services.waitlist.get(rid, kind, done.id, str(done.token))
    assert isinstance(first.hold, Hold)
    await services.holds.confirm(
        rid,
        kind,
        first.hold.id,
        str(first.hold.token),
        ConfirmInput(name="D", phone="+12125550100"),
    )
    assert (await services.waitlist.get(rid, kind, done.id, str(done.token))).status == "confirmed"
    await services.holds.release(rid, kind, second.id, str(second.token))
    assert (
        await services.waitlist.get(rid, kind, offered.id, str(offered.token))
    ).status == "offered"
    await services.waitlist.leave(rid, kind, left.id, str(left.token))
    return rid, {"slot": slot, "offered": offered, "waiting": waiting, "left": left}


async def test_the_waitlist_is_clean_after_real_work(services: Services) -> None:
    rid, _ = await waitlisted_restaurant(services)
    report = await services.auditor.audit(rid, "restaurant")
    assert report.violations == [] and report.ok
    assert report.checked["waitlist_entries"] == 4


async def _free_table_while_waiting(services: Services, rid: str, made: dict[str, Any]) -> None:
    # A table appears behind the scripts' back: free, and fitting the entry that waits.
    await services.redis.hset(V.of(rid).units, "T9", 4)
    await services.redis.zadd(V.of(rid).units_by_fit, {"T9": 4 * 1048576 + 9})


async def _offer_without_hold(services: Services, rid: str, made: dict[str, Any]) -> None:
    key = V.of(rid).waitlist
    entry = json.loads(await services.redis.hget(key, made["waiting"].id))
    await services.redis.hset(key, made["waiting"].id, json.dumps({**entry, "status": "offered"}))


async def _left_still_listed(services: Services, rid: str, made: dict[str, Any]) -> None:
    entry = json.loads(await services.redis.hget(V.of(rid).waitlist, made["left"].id))
    await services.redis.zadd(
        V.of(rid).waitlist_live(made["slot"]), {made["left"].id: entry["seq"]}
    )


async def _ended_unlisted(services: Services, rid: str, made: dict[str, Any]) -> None:
    # An ended entry the list of ended ones lost would never be dropped.
    await services.redis.zrem(V.of(rid).waitlist_ended, made["left"].id)


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (_ended_unlisted, "waitlist_state"),
        (_free_table_while_waiting, "waitlist_fit"),
        (_offer_without_hold, "waitlist_state"),
        (_left_still_listed, "waitlist_state"),
    ],
)
async def test_each_planted_waitlist_fault_is_named(
    services: Services, fault: Fault, check: str
) -> None:
    rid, made = await waitlisted_restaurant(services)
    await fault(services, rid, made)
    report = await services.auditor.audit(rid, "restaurant")
    assert not report.ok
    assert check in {v.check for v in report.violations}, report.violations


# -- invariant 9 under booking rules ---------------------------------------------------------


async def rules_waitlisted(services: Services) -> tuple[str, dict[str, Any]]:
    """Durations of 90 minutes on 30-minute slots: T1 reserved 19:30-21:00, and a party of 2
    waiting for 19:00 (it needs 19:00-20:30)."""
    rid = await make_restaurant(
        services,
        capacities=(2,),
        slot_minutes=30,
        durations=[DurationRule(max_party=2, minutes=90)],
    )
    slot, booked = slot_tomorrow(19), f"{slot_tomorrow(19)[:11]}19:30"
    hold = await place(services, rid, "guest", slot=booked)
    kind = VenueKind.RESTAURANT
    await services.holds.confirm(
        rid, kind, hold.id, str(hold.token), ConfirmInput(name="G", phone="+12125550100")
    )
    body = WaitlistInput(user_id="w", slot=slot, party_size=2, name="W", phone="+12125550199")
    entry = await services.waitlist.join(rid, kind, body)
    assert entry.status == "waiting"
    return rid, {"slot": slot, "booked": booked, "entry": entry}


async def test_a_waiting_entry_of_a_rule_venue_audits_clean(services: Services) -> None:
    rid, _ = await rules_waitlisted(services)
    report = await services.auditor.audit(rid, "restaurant")
    assert report.violations == [] and report.ok


async def _span_freed_behind_the_scripts(
    services: Services, rid: str, made: dict[str, Any]
) -> None:
    # The reservation's cells vanish (its record stays): 19:00-20:30 is free for the entry.
    keys = V.of(rid)
    for hhmm in ("19:30", "20:00", "20:30"):
        await services.redis.hdel(keys.cells(f"{made['slot'][:11]}{hhmm}"), "T1")


async def _waiting_slot_unlisted(services: Services, rid: str, made: dict[str, Any]) -> None:
    # A freeing step would not find this waitlist: the list of waiting slots lost it.
    await services.redis.zrem(V.of(rid).waitlist_slots, made["slot"])


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (_span_freed_behind_the_scripts, "waitlist_fit"),
        (_waiting_slot_unlisted, "waitlist_state"),
    ],
)
async def test_each_planted_rule_waitlist_fault_is_named(
    services: Services, fault: Fault, check: str
) -> None:
    rid, made = await rules_waitlisted(services)
    await fault(services, rid, made)
    report = await services.auditor.audit(rid, "restaurant")
    assert not report.ok
    assert check in {v.check for v in report.violations}, report.violations
