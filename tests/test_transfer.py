"""Export, import and archive: a venue out and back in, and ended slots archived away.

Round trips go through the whole app: every reservation read with its own manage token
before and after, cancels and holds after the import, the audit clean. Refusals are checked
to leave every Redis key as it was.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from redis.asyncio import Redis

from holdsvc.cli import main
from holdsvc.errors import NeedsSweep, NotFound, Stale, UnitUnavailable
from holdsvc.keys import Keys
from holdsvc.models import ClosureInput, Reservation, RestaurantPatch, StaffBookingInput
from holdsvc.scripts import ArchivedReservation
from holdsvc.services import Services
from holdsvc.staff import Role
from holdsvc.transfer import (
    FORMAT_VERSION,
    BadFile,
    LineWriter,
    Transfer,
    VenuesExist,
    check_venues,
    parse_lines,
    read_venues,
)
from tests.cluster import both_backends
from tests.helpers import (
    ADMIN,
    Client,
    day_after,
    lapse,
    make_restaurant,
    new_hold,
    new_reservation,
    new_venue,
    place,
    slot_tomorrow,
    snapshot_keys,
    tomorrow,
)

# Every test here runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends

V = Keys("hs")
# Taken once, when the module is read: a run that crosses midnight keeps the same days.
PAST = day_after(-3)
RECENT = day_after(-2)
PAST_SLOT = f"{PAST}T19:00"


@pytest.fixture
def transfer(services: Services) -> Transfer:
    """Export, import and archive on the test's Redis, sharing the services' scripts."""
    return Transfer(services.redis, V, services.scripts, services.sweeper)


def res_url(reference: str) -> str:
    return f"/v1/reservations/{quote(reference, safe='')}"


def manage(reservation: dict[str, Any]) -> dict[str, str]:
    return {"Manage-Token": reservation["manage_token"]}


async def staff_booking(client: Client, rid: str, slot: str, **extra: Any) -> dict[str, Any]:
    body = {"slot": slot, "party_size": 2, "name": "Walk-in", "phone": "+1 212 555 0177"}
    answer = await client.post(
        f"/v1/restaurants/{rid}/reservations", json=body | extra, headers=ADMIN
    )
    assert answer.status_code == 201, answer.text
    booked: dict[str, Any] = answer.json()
    return booked


async def make_event(client: Client, seats: int = 20) -> str:
    body = {"name": "Concert", "starts_at": "2030-06-01T20:00:00+02:00", "total_seats": seats}
    created = await client.post("/v1/events", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    eid: str = created.json()["id"]
    return eid


async def event_reservation(client: Client, eid: str, user: str, count: int) -> dict[str, Any]:
    hold = (
        await client.post(f"/v1/events/{eid}/holds", json={"user_id": user, "count": count})
    ).json()
    confirmed = await client.post(
        f"/v1/events/{eid}/holds/{hold['id']}/confirm",
        json={"name": "Fan", "phone": "+33 1 23 45 67 89"},
        headers={"Hold-Token": hold["token"]},
    )
    assert confirmed.status_code == 201, confirmed.text
    reservation: dict[str, Any] = confirmed.json()
    return reservation


async def busy_venues(client: Client) -> tuple[str, str, list[dict[str, Any]]]:
    """A restaurant and an event with confirmed, cancelled, moved and staff-booked
    reservations and live holds; (restaurant id, event id, every reservation)."""
    rid = await new_venue(client, capacities=(2, 4, 6), last=day_after(2))
    made = [
        await new_reservation(client, rid, "u1", slot=slot_tomorrow(19)),
        await new_reservation(client, rid, "u2", slot=slot_tomorrow(20), party=4),
        await new_reservation(client, rid, "u3", slot=slot_tomorrow(12)),
        await staff_booking(client, rid, slot_tomorrow(19), business_notes="regular", tags=["vip"]),
    ]
    cancelled = await client.delete(res_url(made[1]["reference"]), headers=manage(made[1]))
    assert cancelled.status_code == 200
    moved = await client.patch(
        res_url(made[2]["reference"]), json={"slot": slot_tomorrow(13)}, headers=manage(made[2])
    )
    assert moved.status_code == 200, moved.text
    await new_hold(client, rid, "u4", slot=slot_tomorrow(21))
    eid = await make_event(client)
    made += [
        await event_reservation(client, eid, "f1", 3),
        await event_reservation(client, eid, "f2", 2),
    ]
    await client.post(f"/v1/events/{eid}/holds", json={"user_id": "f3", "count": 4})
    return rid, eid, made


async def venue_views(client: Client, rid: str, eid: str) -> dict[str, Any]:
    """Everything staff and guests see of both venues (live holds read as available)."""
    days = {"from": tomorrow(), "to": day_after(2)}
    slots = (await client.get(f"/v1/restaurants/{rid}/slots", params=days)).json()["slots"]
    for slot in slots:
        for table in slot["tables"]:
            if table["status"] == "held":
                table.update(status="available")
                table.pop("free_at")
    seats = (await client.get(f"/v1/events/{eid}/seats")).json()["seats"]
    return {
        "restaurant": (await client.get(f"/v1/restaurants/{rid}")).json(),
        "restaurants": (await client.get("/v1/restaurants")).json(),
        "events": [e["id"] for e in (await client.get("/v1/events")).json()["events"]],
        "tables": (await client.get(f"/v1/restaurants/{rid}/tables")).json(),
        "slots": slots,
        "reserved_seats": [s["id"] for s in seats if s["status"] == "reserved"],
        "staff_list": (
            await client.get(f"/v1/restaurants/{rid}/reservations", headers=ADMIN)
        ).json(),
        "event_list": (await client.get(f"/v1/events/{eid}/reservations", headers=ADMIN)).json(),
        "by_phone": (
            await client.get("/v1/reservations", params={"phone": "+12125550177"}, headers=ADMIN)
        ).json(),
    }


async def export_text(transfer: Transfer, venue_ids: list[str] | None = None) -> str:
    out = io.StringIO()
    await transfer.export(venue_ids or [], out)
    return out.getvalue()


def lines_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


# -- the round trip ------------------------------------------------------------------------


async def test_round_trip_into_an_empty_redis(
    client: Client, transfer: Transfer, services: Services, redis: Redis, tmp_path: Path
) -> None:
    rid, eid, made = await busy_venues(client)
    before = await venue_views(client, rid, eid)
    as_guest = {
        r["reference"]: (await client.get(res_url(r["reference"]), headers=manage(r))).json()
        for r in made
    }
    exported = tmp_path / "venues.jsonl"
    exported.write_text(await export_text(transfer))

    await redis.flushall()
    report = await transfer.import_venues(read_venues(str(exported)))

    assert sorted(report.venues) == sorted([rid, eid])
    assert report.venues[rid] == {
        "units": 3,
        "slots": 24,
        "reservations": 4,
        "staff tokens": 0,
        "closures": 0,
        "combinations": 0,
    }
    assert await venue_views(client, rid, eid) == before
    for reservation in made:
        again = await client.get(res_url(reservation["reference"]), headers=manage(reservation))
        assert again.status_code == 200 and again.json() == as_guest[reservation["reference"]]
        wrong = await client.get(res_url(reservation["reference"]), headers={"Manage-Token": "x"})
        assert wrong.status_code == 403
    for venue_id, kind in ((rid, "restaurant"), (eid, "event")):
        audit = await services.auditor.audit(venue_id, kind)
        assert audit.ok, audit.violations
    # Live again: a guest cancels with the old link, holds go on free cells, never on taken ones.
    first, staff = made[0], made[3]
    cancelled = await client.delete(res_url(first["reference"]), headers=manage(first))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    await new_hold(client, rid, "u9", slot=slot_tomorrow(19), table=first["table_id"])
    await new_hold(client, rid, "u8", slot=slot_tomorrow(21))  # held before the export only
    taken = await client.post(
        f"/v1/restaurants/{rid}/holds",
        json={
            "user_id": "u7",
            "slot": slot_tomorrow(19),
            "party_size": 2,
            "table_id": staff["table_id"],
        },
    )
    assert taken.status_code == 409 and taken.json()["code"] == "unit_unavailable"
    # S1..S5 are reserved; S6..S9 were held before the export and are free again.
    seats = await client.post(f"/v1/events/{eid}/holds", json={"user_id": "f9", "count": 6})
    assert seats.status_code == 201 and seats.json()["seats"] == [f"S{n}" for n in range(6, 12)]
    for venue_id in (rid, eid):
        assert (await services.auditor.audit(venue_id)).ok


async def test_export_format_one_line_per_record(client: Client, transfer: Transfer) -> None:
    rid, _, made = await busy_venues(client)
    lines = lines_of(await export_text(transfer, [rid]))

    assert {line["type"] for line in lines} == {"venue", "unit", "slot", "reservation"}
    assert all(line["version"] == FORMAT_VERSION and line["venue"] == rid for line in lines)
    venue = lines[0]
    assert venue["type"] == "venue" and venue["fields"]["kind"] == "restaurant"
    assert venue["fields"]["name"] == "Test Bistro" and venue["listed"] is not None
    assert [line["id"] for line in lines if line["type"] == "unit"] == ["T1", "T2", "T3"]
    reservations = {line["id"]: line["fields"] for line in lines if line["type"] == "reservation"}
    assert set(reservations) == {r["reference"] for r in made[:4]}
    # Digests only: the manage token itself is never written.
    text = json.dumps(lines)
    assert all(r["manage_token"] not in text for r in made)
    slot = next(
        line for line in lines if line["type"] == "slot" and line["id"] == slot_tomorrow(19)
    )
    assert slot["reserved"] == {
        made[0]["table_id"]: made[0]["reference"],
        made[3]["table_id"]: made[3]["reference"],
    }
    held = next(
        line for line in lines if line["type"] == "slot" and line["id"] == slot_tomorrow(21)
    )
    assert held["reserved"] == {}  # a live hold is not exported


@pytest.mark.parametrize(("booked", "moved_to"), [(20, 10), (10, 20)])
async def test_a_reservation_moved_during_the_export_is_imported_where_it_is_now(
    client: Client,
    transfer: Transfer,
    services: Services,
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
    booked: int,
    moved_to: int,
) -> None:
    """Each slot is read consistently on its own; a reservation moved right after the 10:00
    slot was read is in no slot read (20 -> 10) or in two (10 -> 20). The export catches up
    at the end: it writes the slots concerned again, and a later line replaces an earlier."""
    rid = await new_venue(client, capacities=(2,))
    guest = await new_reservation(client, rid, "u1", slot=slot_tomorrow(booked))
    read_slot = transfer._read_slot
    moved = False

    async def move_after_reading_10(*args: Any) -> Any:
        nonlocal moved
        snapshot = await read_slot(*args)
        if not moved and snapshot.slot == slot_tomorrow(10):
            moved = True
            answer = await client.patch(
                res_url(guest["reference"]),
                json={"slot": slot_tomorrow(moved_to)},
                headers=manage(guest),
            )
            assert answer.status_code == 200, answer.text
        return snapshot

    monkeypatch.setattr(transfer, "_read_slot", move_after_reading_10)
    text = await export_text(transfer)
    await redis.flushall()
    await transfer.import_venues(parse_lines(text.splitlines()))

    again = await client.get(res_url(guest["reference"]), headers=manage(guest))
    assert again.json()["slot"] == slot_tomorrow(moved_to)
    assert (await services.auditor.audit(rid)).ok


# -- staff tokens and closures ----------------------------------------------------------------


def bearer(created: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {created['token']}"}


async def new_staff_token(client: Client, rid: str, name: str, role: str) -> dict[str, Any]:
    """A staff token made over HTTP with the admin token: its id, role... and the token."""
    created = await client.post(
        f"/v1/restaurants/{rid}/staff-tokens", json={"name": name, "role": role}, headers=ADMIN
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def staffed_restaurant(
    client: Client, services: Services
) -> tuple[str, dict[str, dict[str, Any]]]:
    """A restaurant with a 4-day horizon, staff tokens (a host who has used theirs, a manager,
    a revoked one), closures (one with a reason, one without, one reopened: grid version 1),
    today's slots removed without closing and a reservation tomorrow at 19:00;
    (its id, the tokens by role)."""
    rid = await new_venue(client, horizon_days=4)
    base = f"/v1/restaurants/{rid}"
    tokens = {
        role: await new_staff_token(client, rid, f"{role} desk", role)
        for role in ("host", "manager")
    }
    tokens["revoked"] = await new_staff_token(client, rid, "gone", "manager")
    revoked = await client.delete(f"{base}/staff-tokens/{tokens['revoked']['id']}", headers=ADMIN)
    assert revoked.status_code == 204
    await services.rolling_grid.pass_once()
    for first, last, reason in (
        (day_after(2), day_after(5), "Inventory | audit"),
        (day_after(40), day_after(41), None),
        (day_after(30), day_after(30), None),
    ):
        body = {"from": first, "to": last} | ({} if reason is None else {"reason": reason})
        closed = await client.post(f"{base}/closures", json=body, headers=ADMIN)
        assert closed.status_code == 201, closed.text
    reopened = await client.delete(f"{base}/closures/{day_after(30)}", headers=ADMIN)
    assert reopened.status_code == 204
    await services.rolling_grid.pass_once()  # the new grid version's marker
    removed = await client.delete(
        f"{base}/slots", params={"from": day_after(0), "to": day_after(0)}, headers=ADMIN
    )
    assert removed.status_code == 200 and removed.json()["kept"] == []
    await new_reservation(client, rid, slot=slot_tomorrow(19))
    listed = await client.get(f"{base}/reservations", headers=bearer(tokens["host"]))
    assert listed.status_code == 200
    return rid, tokens


async def grid_days(client: Client, rid: str, last: int) -> dict[str, int]:
    """How many slots each date from today to ``last`` days on has."""
    days = {"from": day_after(0), "to": day_after(last)}
    slots = (await client.get(f"/v1/restaurants/{rid}/slots", params=days)).json()["slots"]
    return {
        day_after(n): sum(s["slot"].startswith(day_after(n)) for s in slots)
        for n in range(last + 1)
    }


async def test_staff_tokens_and_closures_round_trip(
    client: Client, transfer: Transfer, services: Services, redis: Redis
) -> None:
    rid, tokens = await staffed_restaurant(client, services)
    base = f"/v1/restaurants/{rid}"
    staff_before = (await client.get(f"{base}/staff-tokens", headers=ADMIN)).json()
    closures_before = (await client.get(f"{base}/closures")).json()
    grid_before = await grid_days(client, rid, 6)
    # Today removed on purpose, tomorrow open, 2..5 closed, 6 beyond the horizon.
    assert grid_before == {day_after(n): count for n, count in enumerate((0, 12, 0, 0, 0, 0, 0))}
    text = await export_text(transfer)

    lines = lines_of(text)
    staff = {line["id"]: line for line in lines if line["type"] == "staff_token"}
    assert set(staff) == {tokens["host"]["id"], tokens["manager"]["id"]}  # not the revoked one
    for role in ("host", "manager"):
        line = staff[tokens[role]["id"]]
        assert line["digest"] == hashlib.sha256(tokens[role]["token"].encode()).hexdigest()
        assert line["record"]["role"] == role and line["record"]["name"] == f"{role} desk"
        assert (line["last_used"] is None) == (role == "manager")
    assert all(token["token"] not in text for token in tokens.values())
    assert [(c["first"], c["last"], c["reason"]) for c in lines if c["type"] == "closure"] == [
        (day_after(2), day_after(5), "Inventory | audit"),
        (day_after(40), day_after(41), None),
    ]
    venue = lines[0]["fields"]
    assert venue["grid_version"] == "1" and venue["grid_filled"] == f"1|{day_after(4)}"

    await redis.flushall()
    report = await transfer.import_venues(parse_lines(text.splitlines()))

    assert report.venues[rid]["staff tokens"] == 2 and report.venues[rid]["closures"] == 2
    assert await export_text(transfer) == text  # every line comes back as it was
    assert (await client.get(f"{base}/staff-tokens", headers=ADMIN)).json() == staff_before
    assert (await client.get(f"{base}/closures")).json() == closures_before
    assert (await services.auditor.audit(rid)).ok
    # Each token works as before, within its role; the revoked one stays revoked.
    host, manager = bearer(tokens["host"]), bearer(tokens["manager"])
    listed = await client.get(f"{base}/reservations", headers=host)
    assert listed.status_code == 200 and len(listed.json()["reservations"]) == 1
    tables = {"tables": [{"capacity": 8}]}
    assert (await client.post(f"{base}/tables", json=tables, headers=host)).status_code == 403
    assert (await client.post(f"{base}/tables", json=tables, headers=manager)).status_code == 201
    gone = await client.get(f"{base}/reservations", headers=bearer(tokens["revoked"]))
    assert gone.status_code == 401
    # The grid: the rolling grid goes on from its marker (today stays removed), and neither it
    # nor a grid request creates a slot on a closed date.
    await services.rolling_grid.pass_once()
    assert await grid_days(client, rid, 6) == grid_before
    patched = await client.patch(base, json={"horizon_days": 6}, headers=manager)
    assert patched.status_code == 200, patched.text
    await services.rolling_grid.pass_once()
    after = await grid_days(client, rid, 6)
    assert after == grid_before | {day_after(6): 12}
    requested = await client.post(
        f"{base}/slots", json={"from": day_after(2), "to": day_after(5)}, headers=manager
    )
    assert requested.status_code == 201 and requested.json()["created"] == 0
    assert await grid_days(client, rid, 6) == after


async def test_a_file_without_staff_tokens_or_closures_still_imports(
    client: Client, transfer: Transfer, services: Services, redis: Redis
) -> None:
    """What holdsvc wrote before staff tokens and closures travelled (the same version 1, no
    such lines) still imports: the venue and its bookings, with no tokens and no closures."""
    rid, tokens = await staffed_restaurant(client, services)
    older = [
        line
        for line in (await export_text(transfer)).splitlines()
        if json.loads(line)["type"] not in ("staff_token", "closure")
    ]
    await redis.flushall()
    report = await transfer.import_venues(parse_lines(older))

    assert report.venues[rid]["staff tokens"] == 0 and report.venues[rid]["closures"] == 0
    base = f"/v1/restaurants/{rid}"
    assert (await client.get(f"{base}/closures")).json() == {"closures": []}
    listed = await client.get(f"{base}/reservations", headers=ADMIN)
    assert listed.status_code == 200 and len(listed.json()["reservations"]) == 1
    host = await client.get(f"{base}/reservations", headers=bearer(tokens["host"]))
    assert host.status_code == 401  # to be created again
    assert (await services.auditor.audit(rid)).ok


VENUE_LINE = (
    '{"type": "venue", "version": 1, "venue": "ABCDEF", "fields": {"kind": "%s", "created": "1"}}\n'
)
DIGEST = "0" * 64


def staff_line(token_id: str = "abc", digest: str = DIGEST, **record: Any) -> str:
    fields = {"id": token_id, "name": "Desk", "role": "host", "created": 1} | record
    line = {
        "type": "staff_token",
        "version": 1,
        "venue": "ABCDEF",
        "id": token_id,
        "digest": digest,
        "record": fields,
    }
    return json.dumps(line) + "\n"


def closure_line(first: str, last: str, reason: str | None = None) -> str:
    line = {"type": "closure", "version": 1, "venue": "ABCDEF", "first": first, "last": last}
    return json.dumps(line | {"reason": reason}) + "\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (staff_line(token_id="a b"), "not a staff token id"),
        (staff_line(digest="ABC"), "not a SHA-256"),
        (staff_line() + staff_line(token_id="xyz"), "same digest as staff token 'abc'"),
        (staff_line(id="other"), "its record names id 'other'"),
        (staff_line(role="owner"), "role 'owner' is not one of"),
        (staff_line(name=""), "needs a name"),
        (staff_line(created="1"), "'created' is not a time in ms"),
        (closure_line("2030-12-26", "2030-12-24"), "'to' is before 'from'"),
        (closure_line("2030-02-30", "2030-03-01"), "not a real date"),
        (closure_line("2030-12-24", "2030-12-26", "x" * 201), "reason over 200"),
    ],
)
def test_bad_staff_tokens_and_closures_are_refused(
    content: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(VENUE_LINE % "restaurant" + content)
    with pytest.raises(BadFile) as refused:
        read_venues(str(path))
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_a_closure_of_an_event_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(VENUE_LINE % "event" + closure_line("2030-12-24", "2030-12-26"))
    with pytest.raises(BadFile, match="closures are for restaurants"):
        read_venues(str(path))


# -- import refusals -------------------------------------------------------------------------


async def test_import_over_an_existing_venue_writes_nothing(
    client: Client, transfer: Transfer, redis: Redis
) -> None:
    rid, eid, _ = await busy_venues(client)
    text = await export_text(transfer)
    # The event is gone, the restaurant is still there: neither is written.
    for key in [k async for k in redis.scan_iter(match=f"hs:{{{eid}}}:*")]:
        await redis.delete(key)
    await redis.zrem(V.venues("event"), eid)
    before = await snapshot_keys(redis)

    with pytest.raises(VenuesExist) as refused:
        await transfer.import_venues(parse_lines(text.splitlines()))

    assert refused.value.venue_ids == [rid]
    assert await snapshot_keys(redis) == before
    # Any key of the venue counts, not only its settings: here only its feed is left.
    for key in [k async for k in redis.scan_iter(match=f"hs:{{{rid}}}:*")]:
        if not key.endswith(b":feed"):
            await redis.delete(key)
    with pytest.raises(VenuesExist):
        await transfer.import_venues(parse_lines(text.splitlines()))


async def test_import_over_left_staff_tokens_or_closures_writes_nothing(
    client: Client, transfer: Transfer, services: Services, redis: Redis
) -> None:
    """A venue of which only a staff token key or its closures are left is still there: the
    import would overwrite tokens revoked or closures lifted since."""
    rid, _ = await staffed_restaurant(client, services)
    text = await export_text(transfer)
    for suffix in ("staff", "staff:ids", "staff:used", "closures"):
        await redis.flushall()
        await transfer.import_venues(parse_lines(text.splitlines()))
        for key in [k async for k in redis.scan_iter(match=f"hs:{{{rid}}}:*")]:
            if key != f"hs:{{{rid}}}:{suffix}".encode():
                await redis.delete(key)
        await redis.zrem(V.venues("restaurant"), rid)
        before = await snapshot_keys(redis)
        assert len(before) == 1
        with pytest.raises(VenuesExist):
            await transfer.import_venues(parse_lines(text.splitlines()))
        assert await snapshot_keys(redis) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "line 1: not a holdsvc export line"),
        ('{"type": "venue"}\n', "line 1: not a holdsvc export line"),
        ('{"type": "mystery", "version": 1, "venue": "ABCDEF"}\n', "unknown type"),
        ('{"type": "venue", "version": 9, "venue": "ABCDEF", "fields": {}}\n', "version 9"),
        (
            '{"type": "slot", "version": 1, "venue": "ABCDEF", "id": "x", "starts": "1"}\n',
            "$.starts",
        ),
        (
            '{"type": "unit", "version": 1, "venue": "nope", "id": "T1", "capacity": 2}\n',
            "venue id",
        ),
        (
            '{"type": "unit", "version": 1, "venue": "ABCDEF", "id": "T1", "capacity": 2}\n',
            "missing",
        ),
    ],
)
def test_bad_files_are_refused_with_one_line(content: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(BadFile) as refused:
        read_venues(str(path))
    assert message in str(refused.value) and "\n" not in str(refused.value)


async def test_a_cell_naming_a_reservation_not_in_the_file_is_refused(
    client: Client, transfer: Transfer
) -> None:
    rid = await new_venue(client)
    reservation = await new_reservation(client, rid)
    text = await export_text(transfer)
    kept = [line for line in text.splitlines() if '"type":"reservation"' not in line]
    with pytest.raises(BadFile, match=f"names reservation {reservation['reference']}"):
        check_venues(parse_lines(kept))


# -- archive -------------------------------------------------------------------------------


class FlushRecorder(io.StringIO):
    """An output that remembers what it held at its last flush."""

    flushed = ""

    def flush(self) -> None:
        super().flush()
        self.flushed = self.getvalue()


async def past_and_future(client: Client) -> tuple[str, dict[str, dict[str, Any]]]:
    """A restaurant with slots from three days ago to tomorrow and reservations in them."""
    rid = await new_venue(client, capacities=(2, 4), first=PAST, last=tomorrow())
    made = {
        "old": await staff_booking(client, rid, PAST_SLOT),
        "old_cancelled": await staff_booking(client, rid, f"{PAST}T20:00", phone="+1 212 555 0188"),
        "recent": await staff_booking(client, rid, f"{RECENT}T19:00"),
        "coming": await new_reservation(client, rid, "u1", slot=slot_tomorrow(19)),
    }
    assert (
        await client.delete(res_url(made["old_cancelled"]["reference"]), headers=ADMIN)
    ).is_success
    return rid, made


async def test_archive_removes_exactly_the_ended_slots_after_writing_them(
    client: Client,
    transfer: Transfer,
    services: Services,
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rid, made = await past_and_future(client)
    keys = V.of(rid)
    out = FlushRecorder()
    archive = services.scripts.archive

    async def only_after_flush(venue_keys: Any, **kwargs: Any) -> Any:
        assert f'"type":"slot","version":1,"venue":"{rid}","id":"{kwargs["slot"]}"' in out.flushed
        for reservation in kwargs["reservations"]:
            assert f'"id":"{reservation.reference}"' in out.flushed
        return await archive(venue_keys, **kwargs)

    monkeypatch.setattr(services.scripts, "archive", only_after_flush)
    writer = LineWriter(out)
    report = await transfer.archive_venue(rid, date.fromisoformat(RECENT), writer)

    assert (report.slots, report.reservations, report.kept) == (12, 2, {})
    lines = lines_of(out.getvalue())
    assert sorted(line["id"] for line in lines if line["type"] == "slot") == [
        f"{PAST}T{hour:02d}:00" for hour in range(10, 22)
    ]
    archived = {made["old"]["reference"], made["old_cancelled"]["reference"]}
    assert {line["id"] for line in lines if line["type"] == "reservation"} == archived
    for reference in archived:
        assert (await client.get(res_url(reference), headers=ADMIN)).status_code == 404
    for kept in ("recent", "coming"):
        assert (
            await client.get(res_url(made[kept]["reference"]), headers=ADMIN)
        ).status_code == 200
    left = await services.redis.zrange(keys.slots, 0, -1)
    assert len(left) == 48 and not any(slot.startswith(PAST) for slot in left)
    assert not [k async for k in redis.scan_iter(match=keys.cells(f"{PAST}*"))]
    assert set(await redis.zrange(keys.reservations_by_start, 0, -1)) == {
        made["recent"]["reference"].encode(),
        made["coming"]["reference"].encode(),
    }
    assert not await redis.exists(keys.reservations_by_phone("+12125550188"))
    assert (await services.auditor.audit(rid)).ok
    # Again: nothing more has ended, nothing is written.
    again = io.StringIO()
    assert (
        await transfer.archive_venue(rid, date.fromisoformat(RECENT), LineWriter(again))
    ).slots == 0
    assert again.getvalue() == ""
    # The archive is in the export format: it restores those days into an empty Redis.
    await redis.flushall()
    await transfer.import_venues(parse_lines(out.getvalue().splitlines()))
    old = await client.get(res_url(made["old"]["reference"]), headers=manage(made["old"]))
    assert old.status_code == 200 and old.json()["slot"] == PAST_SLOT


async def test_an_imported_archive_fills_its_horizon_from_today(
    transfer: Transfer, services: Services, redis: Redis
) -> None:
    """An archive holds ended slots only: its venue line leaves out the rolling grid's marker
    (which speaks of slots up to the horizon), and staff tokens and closures stay out."""
    rid = await past_restaurant(services)
    await services.restaurants.update(rid, RestaurantPatch(horizon_days=2))
    await services.rolling_grid.pass_once()
    await services.staff.create(rid, "Desk", Role.HOST)
    await services.grid.close(rid, ClosureInput(first=day_after(10), last=day_after(10)))
    out = io.StringIO()
    await transfer.archive_venue(rid, date.fromisoformat(day_after(-2)), LineWriter(out))
    lines = lines_of(out.getvalue())

    assert {line["type"] for line in lines} == {"venue", "unit", "slot"}
    assert "grid_filled" not in lines[0]["fields"]
    assert lines[0]["fields"]["horizon_days"] == "2"
    await redis.flushall()
    await transfer.import_venues(parse_lines(out.getvalue().splitlines()))
    # Filled from today like a new restaurant: three whole days.
    assert await services.rolling_grid.pass_once() == 36


async def past_restaurant(services: Services) -> str:
    """A restaurant (no app, so no sweeper running) with slots from three days ago on."""
    rid = await make_restaurant(services, capacities=(2, 4))
    await services.restaurants.add_slots(rid, PAST, tomorrow())
    return rid


async def staff_book(services: Services, rid: str, slot: str) -> Reservation:
    booking = StaffBookingInput(slot=slot, party_size=2, name="Walk-in", phone="+12125550177")
    return await services.reservations.book(rid, booking)


async def hold_on_an_ended_slot(services: Services, rid: str) -> str:
    """A hold placed on tomorrow's 19:00, whose slot is then moved three days back (a hold
    can outlive its slot's end by up to max_hold_seconds; moving the slot is quicker)."""
    hold = await place(services, rid, "u5", slot=slot_tomorrow(19))
    starts = await services.redis.zscore(V.of(rid).slots, PAST_SLOT)
    await services.redis.zadd(V.of(rid).slots, {slot_tomorrow(19): int(starts) - 1})
    return hold.id


async def test_archive_keeps_a_slot_under_a_live_hold_and_sweeps_a_lapsed_one(
    transfer: Transfer, services: Services
) -> None:
    rid = await past_restaurant(services)
    hold_id = await hold_on_an_ended_slot(services, rid)
    out = io.StringIO()
    report = await transfer.archive_venue(rid, date.fromisoformat(RECENT), LineWriter(out))
    assert report.kept == {slot_tomorrow(19): "a live hold is on it"} and report.slots == 12
    assert f'"id":"{slot_tomorrow(19)}"' not in out.getvalue()  # not written: not archived
    assert (await services.auditor.audit(rid)).ok

    await lapse(services, rid, hold_id)
    report = await transfer.archive_venue(
        rid, date.fromisoformat(RECENT), LineWriter(io.StringIO())
    )
    assert report.slots == 1 and report.kept == {}
    entries = await services.redis.xrange(V.of(rid).feed)
    assert entries[-1][1]["event"] == "expired" and entries[-1][1]["hold"] == hold_id
    assert (await services.auditor.audit(rid)).ok


async def test_archive_script_refuses_and_changes_nothing(services: Services, redis: Redis) -> None:
    rid = await past_restaurant(services)
    old = await staff_book(services, rid, PAST_SLOT)
    keys = V.of(rid)
    scripts = services.scripts
    fields = await services.redis.hgetall(keys.reservation(old.reference))
    cells = await services.redis.hgetall(keys.cells(PAST_SLOT))
    right = [ArchivedReservation(old.reference, fields)]
    never = 10**15
    before = await snapshot_keys(redis)

    # Not ended by the cutoff; not ended by now (whatever the cutoff).
    early = await scripts.archive(
        keys, slot=PAST_SLOT, cutoff_ms=1, cells=cells, reservations=right
    )
    coming = await scripts.archive(
        keys, slot=slot_tomorrow(18), cutoff_ms=never, cells={}, reservations=[]
    )
    assert not early.removed and not coming.removed
    # What the caller wrote is not what is there: a cell, a field, a reservation missing.
    for wrong_cells, wrong_reservations in (
        ({}, right),
        (cells, [ArchivedReservation(old.reference, {**fields, "name": "Other"})]),
        (cells, []),
    ):
        with pytest.raises(Stale):
            await scripts.archive(
                keys,
                slot=PAST_SLOT,
                cutoff_ms=never,
                cells=wrong_cells,
                reservations=wrong_reservations,
            )
    with pytest.raises(NotFound):
        await scripts.archive(
            keys, slot=f"{PAST}T03:00", cutoff_ms=never, cells={}, reservations=[]
        )
    assert await snapshot_keys(redis) == before

    # Holds: a live one keeps the slot, a lapsed one must be swept first.
    hold_id = await hold_on_an_ended_slot(services, rid)
    held = slot_tomorrow(19)
    for lapsed, refusal in ((False, UnitUnavailable), (True, NeedsSweep)):
        if lapsed:
            await lapse(services, rid, hold_id)
        held_cells = await services.redis.hgetall(keys.cells(held))
        before = await snapshot_keys(redis)
        with pytest.raises(refusal) as refused:
            await scripts.archive(
                keys, slot=held, cutoff_ms=never, cells=held_cells, reservations=[]
            )
        assert await snapshot_keys(redis) == before
    assert isinstance(refused.value, NeedsSweep) and refused.value.hold_ids == [hold_id]

    done = await scripts.archive(
        keys, slot=PAST_SLOT, cutoff_ms=never, cells=cells, reservations=right
    )
    assert done.removed and done.reservations == 1
    assert not await redis.exists(keys.reservation(old.reference), keys.cells(PAST_SLOT))


# -- the command line ------------------------------------------------------------------------


async def test_cli_export_import_archive(
    client: Client,
    redis: Redis,
    redis_url: str,
    services: Services,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HOLDSVC_REDIS_URL", redis_url)
    rid, made = await past_and_future(client)

    async def holdsvc(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, exported, err = await holdsvc("export")
    assert code == 0 and "exported" in err and len(err.splitlines()) == 1
    path = tmp_path / "venues.jsonl"
    path.write_text(exported)

    before = await snapshot_keys(redis)
    code, _, err = await holdsvc("import", str(path))
    assert code == 1 and err.startswith(f"holdsvc import: already in this Redis: venue {rid}")
    assert len(err.splitlines()) == 1 and await snapshot_keys(redis) == before

    await redis.flushall()
    code, _, err = await holdsvc("import", str(path))
    assert code == 0 and f"imported {rid}" in err
    assert (await services.auditor.audit(rid)).ok

    code, archived, err = await holdsvc("archive", "--before", RECENT, rid)
    assert code == 0 and f"{rid}: archived 12 slots with 2 reservations" in err
    assert made["old"]["reference"] in archived
    assert (await client.get(res_url(made["old"]["reference"]), headers=ADMIN)).status_code == 404

    code, _, err = await holdsvc("export", "NOPE99")
    assert code == 1 and err == "holdsvc export: no venue NOPE99\n"
    for content in ("{oops\n", '{"type": "venue", "version": 1}\n'):
        path.write_text(content)
        code, _, err = await holdsvc("import", str(path))
        assert (
            code == 2 and err.startswith("holdsvc import: line 1:") and len(err.splitlines()) == 1
        )
    code, _, err = await holdsvc("import", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "cannot read" in err
    with pytest.raises(SystemExit) as usage:
        await holdsvc("archive", "--before", "2026-13-01")
    assert usage.value.code == 2


async def test_archive_ends_the_entries_still_waiting_for_an_ended_slot(
    client: Client, transfer: Transfer, services: Services, redis: Redis
) -> None:
    rid, _ = await past_and_future(client)
    keys = V.of(rid)
    # An entry that joined before PAST_SLOT started and was never served, as join.lua wrote it.
    entry = {
        **{"id": "E1", "slot": PAST_SLOT, "user": "w", "need": 2, "digest": "0" * 64},
        **{"status": "waiting", "created": 1, "seq": 1, "name": "W", "phone": "+12125550199"},
    }
    await redis.hset(keys.waitlist, "E1", json.dumps(entry))
    await redis.zadd(keys.waitlist_waiting(PAST_SLOT), {"E1": 2 * 2**32 + 1})
    await redis.zadd(keys.waitlist_queue(PAST_SLOT), {"E1": 1})
    await redis.zadd(keys.waitlist_live(PAST_SLOT), {"E1": 1})
    await redis.hset(keys.waitlist_users(PAST_SLOT), "w", "E1")
    await redis.zadd(keys.waitlist_slots, {PAST_SLOT: 1})
    await transfer.archive_venue(rid, date.fromisoformat(RECENT), LineWriter(io.StringIO()))
    raw = await redis.hget(keys.waitlist, "E1")
    assert raw is not None
    ended = json.loads(raw)
    assert ended["status"] == "expired"
    assert await redis.zscore(keys.waitlist_ended, "E1") == ended["ended"]
    for key in (
        keys.waitlist_waiting(PAST_SLOT),
        keys.waitlist_queue(PAST_SLOT),
        keys.waitlist_live(PAST_SLOT),
        keys.waitlist_users(PAST_SLOT),
    ):
        assert not await redis.exists(key)
    assert await redis.zscore(keys.waitlist_slots, PAST_SLOT) is None
    assert (await services.auditor.audit(rid)).ok
