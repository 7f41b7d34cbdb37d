"""Guests and staff, day to day: venue details, staff statuses, next available date, table
fixes, an idempotent add-tables, the manage token of a replayed confirm (exact outcomes)."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from tests.cluster import both_backends
from tests.helpers import ADMIN, day_after, tomorrow
from tests.serverproc import ServerProcess

# Every test here runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends

Client = AsyncTestClient[Any]
# Taken once, when the module is read: a run that crosses midnight keeps the same day.
DAY = tomorrow()
YESTERDAY = day_after(-1)
LATER = day_after(5)
SLOT = f"{DAY}T19:00"
PAST_SLOT = f"{YESTERDAY}T19:00"
DETAILS: dict[str, Any] = {
    "address": "1 Main St, Springfield",
    "description": "Small plates and natural wine.",
    "locale": "de-DE",
    "reminder_hours": 24,
}


async def restaurant(
    client: Client, capacities: list[int], days: tuple[str, str] = (DAY, DAY), **rules: Any
) -> str:
    body = {
        "name": "Bistro",
        "phone": "+12125550100",
        "timezone": "UTC",
        "opens": "10:00",
        "closes": "22:00",
    }
    created = await client.post("/v1/restaurants", json={**body, **rules}, headers=ADMIN)
    assert created.status_code == 201, created.text
    rid = str(created.json()["id"])
    tables = {"tables": [{"capacity": c} for c in capacities]}
    assert (
        await client.post(f"/v1/restaurants/{rid}/tables", json=tables, headers=ADMIN)
    ).status_code == 201
    span = {"from": days[0], "to": days[1]}
    assert (
        await client.post(f"/v1/restaurants/{rid}/slots", json=span, headers=ADMIN)
    ).status_code == 201
    return rid


async def staff_book(client: Client, rid: str, slot: str, **extra: Any) -> dict[str, Any]:
    body = {"slot": slot, "party_size": 2, "name": "Ann", "phone": "+12125550111", **extra}
    made = await client.post(f"/v1/restaurants/{rid}/reservations", json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    reservation: dict[str, Any] = made.json()
    return reservation


async def feed(redis: Redis, rid: str) -> list[dict[str, str]]:
    entries: Any = await redis.xrange(f"hs:{{{rid}}}:feed")
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


async def audit(client: Client, rid: str) -> dict[str, Any]:
    answer: dict[str, Any] = (
        await client.get(f"/v1/restaurants/{rid}/audit", headers=ADMIN)
    ).json()
    return answer


# -- venue details ------------------------------------------------------------------------


async def test_venue_details_on_create_patch_and_get_of_both_kinds(client: Client) -> None:
    rid = await restaurant(client, [2], **DETAILS)
    shown = (await client.get(f"/v1/restaurants/{rid}")).json()
    assert {k: shown[k] for k in DETAILS} == DETAILS
    patched = await client.patch(
        f"/v1/restaurants/{rid}",
        json={"locale": "fr-FR", "address": "", "reminder_hours": 0},
        headers=ADMIN,
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["locale"], patched.json()["address"]) == ("fr-FR", "")
    assert patched.json()["description"] == DETAILS["description"]
    event = await client.post(
        "/v1/events",
        json={
            "name": "Gig",
            "starts_at": f"{LATER}T20:00:00+00:00",
            "total_seats": 10,
            **DETAILS,
        },
        headers=ADMIN,
    )
    assert event.status_code == 201, event.text
    assert {k: event.json()[k] for k in DETAILS} == DETAILS
    eid = event.json()["id"]
    changed = await client.patch(f"/v1/events/{eid}", json={"locale": "en-GB"}, headers=ADMIN)
    assert changed.status_code == 200 and changed.json()["locale"] == "en-GB"
    plain = await client.post(
        "/v1/events",
        json={"name": "Gig", "starts_at": f"{LATER}T20:00:00+00:00", "total_seats": 10},
        headers=ADMIN,
    )
    assert (plain.json()["locale"], plain.json()["reminder_hours"]) == ("en-US", 0)


@pytest.mark.parametrize(
    "bad",
    [
        {"locale": "xx-NOPE-zz"},
        {"locale": "en US"},
        {"locale": 5},
        {"address": "x" * 301},
        {"description": "x" * 2001},
        {"reminder_hours": 169},
        {"reminder_hours": -1},
        {"reminder_hours": "2"},
    ],
)
async def test_bad_venue_details_are_400_and_change_nothing(
    client: Client, bad: dict[str, Any]
) -> None:
    rid = await restaurant(client, [2], **DETAILS)
    before = (await client.get(f"/v1/restaurants/{rid}")).json()
    refused = await client.patch(f"/v1/restaurants/{rid}", json=bad, headers=ADMIN)
    assert refused.status_code == 400 and refused.json()["code"] == "validation_error"
    assert (await client.get(f"/v1/restaurants/{rid}")).json() == before
    created = await client.post(
        "/v1/restaurants",
        json={
            "name": "B",
            "phone": "+12125550100",
            "timezone": "UTC",
            "opens": "10:00",
            "closes": "22:00",
            **bad,
        },
        headers=ADMIN,
    )
    assert created.status_code == 400 and created.json()["code"] == "validation_error"


# -- staff statuses -----------------------------------------------------------------------


async def test_staff_statuses_seated_completed_undo_and_feed_status(
    client: Client, redis: Redis
) -> None:
    rid = await restaurant(client, [2, 2])
    res = await staff_book(client, rid, SLOT)
    url = f"/v1/reservations/{res['reference']}"
    for status in ("seated", "completed", "confirmed"):
        answer = await client.patch(url, json={"status": status}, headers=ADMIN)
        assert answer.status_code == 200 and answer.json()["status"] == status, answer.text
        cell = await redis.hget(f"hs:{{{rid}}}:cells:{SLOT}", res["table_id"])
        assert cell == f"r|{res['reference']}".encode()  # staff statuses keep the cell
    changed = [e for e in await feed(redis, rid) if e["event"] == "changed"]
    assert [e["status"] for e in changed] == ["seated", "completed", "confirmed"]
    polled = await client.get(
        f"/v1/restaurants/{rid}/changes", headers={**ADMIN, "Accept": "application/json"}
    )
    statuses = [c.get("status") for c in polled.json()["changes"] if c["event"] == "changed"]
    assert statuses == ["seated", "completed", "confirmed"]
    await client.patch(url, json={"name": "Ann B"}, headers=ADMIN)
    last = (
        await client.get(
            f"/v1/restaurants/{rid}/changes", headers={**ADMIN, "Accept": "application/json"}
        )
    ).json()
    assert "status" not in last["changes"][-1]  # a change that sets no status names none
    seated = await client.get(
        f"/v1/restaurants/{rid}/reservations", params={"status": "confirmed"}, headers=ADMIN
    )
    assert [r["reference"] for r in seated.json()["reservations"]] == [res["reference"]]
    assert (await audit(client, rid))["ok"]


async def test_no_show_before_the_start_is_409_not_started_and_changes_nothing(
    client: Client, redis: Redis
) -> None:
    rid = await restaurant(client, [2], days=(YESTERDAY, DAY))
    future = await staff_book(client, rid, SLOT)
    entries = len(await feed(redis, rid))
    stored = await redis.hgetall(f"hs:{{{rid}}}:res:{future['reference']}")
    refused = await client.patch(
        f"/v1/reservations/{future['reference']}",
        json={"status": "no_show", "tags": ["x"]},
        headers=ADMIN,
    )
    assert refused.status_code == 409 and refused.json()["code"] == "not_started"
    assert await redis.hgetall(f"hs:{{{rid}}}:res:{future['reference']}") == stored
    assert len(await feed(redis, rid)) == entries
    past = await staff_book(client, rid, PAST_SLOT)
    marked = await client.patch(
        f"/v1/reservations/{past['reference']}", json={"status": "no_show"}, headers=ADMIN
    )
    assert marked.status_code == 200 and marked.json()["status"] == "no_show"
    assert (await feed(redis, rid))[-1]["status"] == "no_show"
    undone = await client.patch(
        f"/v1/reservations/{past['reference']}", json={"status": "confirmed"}, headers=ADMIN
    )
    assert undone.status_code == 200 and undone.json()["status"] == "confirmed"
    guest = await client.patch(
        f"/v1/reservations/{past['reference']}",
        json={"status": "seated"},
        headers={"Manage-Token": past["manage_token"]},
    )
    assert guest.status_code == 403 and guest.json()["code"] == "forbidden"
    assert (await audit(client, rid))["ok"]


# -- availability -------------------------------------------------------------------------


async def test_a_full_range_points_to_the_next_available_date(client: Client) -> None:
    rid = await restaurant(client, [2, 6], days=(DAY, LATER), opens="19:00", closes="20:00")
    empty = (
        await client.get(
            f"/v1/restaurants/{rid}/availability",
            params={"from": DAY, "to": DAY, "party_size": 2},
        )
    ).json()
    assert empty["slots"] and empty["next_available"] is None
    assert empty["max_party_size"] == 6
    for table in ("T1", "T2"):
        await staff_book(client, rid, SLOT, table_id=table)
    full = (
        await client.get(
            f"/v1/restaurants/{rid}/availability",
            params={"from": DAY, "to": DAY, "party_size": 2},
        )
    ).json()
    assert full["slots"] == [] and full["next_available"] == day_after(2)
    assert full["max_party_size"] == 6
    too_big = (
        await client.get(
            f"/v1/restaurants/{rid}/availability",
            params={"from": DAY, "to": DAY, "party_size": 7},
        )
    ).json()
    assert too_big == {"slots": [], "next_available": None, "max_party_size": 6}


async def test_next_available_stays_within_max_days_ahead(client: Client) -> None:
    rid = await restaurant(
        client, [2], days=(DAY, LATER), opens="19:00", closes="20:00", max_days_ahead=2
    )
    for day in (DAY, day_after(2)):
        await staff_book(client, rid, f"{day}T19:00")
    answer = (
        await client.get(
            f"/v1/restaurants/{rid}/availability",
            params={"from": DAY, "to": DAY, "party_size": 2},
        )
    ).json()
    # day_after(3) has a free slot, but it lies beyond the booking window.
    assert answer["slots"] == [] and answer["next_available"] is None


# -- a replayed confirm -------------------------------------------------------------------


async def test_a_replayed_confirm_carries_the_same_manage_token(client: Client) -> None:
    rid = await restaurant(client, [2])
    hold = (
        await client.post(
            f"/v1/restaurants/{rid}/holds",
            json={"user_id": "u", "slot": SLOT, "party_size": 2},
        )
    ).json()
    url = f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm"
    body = {"name": "Ann", "phone": "+12125550111"}
    first = await client.post(url, json=body, headers={"Hold-Token": hold["token"]})
    again = await client.post(url, json={}, headers={"Hold-Token": hold["token"]})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["manage_token"] == first.json()["manage_token"]
    wrong = await client.post(url, json={}, headers={"Hold-Token": "x" * 40})
    assert wrong.status_code == 403 and "manage_token" not in wrong.text
    ref = first.json()["reference"]
    token = {"Manage-Token": first.json()["manage_token"]}
    read = await client.get(f"/v1/reservations/{ref}", headers=token)
    assert read.status_code == 200 and "manage_token" not in read.json()
    assert "manage_token" not in (await client.get(f"/v1/reservations/{ref}", headers=ADMIN)).text
    held = await client.get(
        f"/v1/restaurants/{rid}/holds/{hold['id']}", headers={"Hold-Token": hold["token"]}
    )
    assert "manage_token" not in held.text
    listed = await client.get(f"/v1/restaurants/{rid}/reservations", headers=ADMIN)
    assert "manage_token" not in listed.text


# -- tables -------------------------------------------------------------------------------


async def test_edit_a_tables_label_and_capacity(client: Client) -> None:
    rid = await restaurant(client, [2, 4])
    base = f"/v1/restaurants/{rid}/tables"
    labelled = await client.patch(f"{base}/T1", json={"label": "Window"}, headers=ADMIN)
    assert labelled.status_code == 200, labelled.text
    assert labelled.json() == {"id": "T1", "label": "Window", "capacity": 2}
    grown = await client.patch(f"{base}/T1", json={"capacity": 6}, headers=ADMIN)
    assert grown.json() == {"id": "T1", "label": "Window", "capacity": 6}
    cleared = await client.patch(f"{base}/T1", json={"label": None}, headers=ADMIN)
    assert cleared.json()["label"] is None
    tables = (await client.get(base)).json()["tables"]
    assert [(t["id"], t["capacity"]) for t in tables] == [("T1", 6), ("T2", 4)]
    # Best fit follows the new capacity: a party of 5 now fits T1 only.
    hold = await client.post(
        f"/v1/restaurants/{rid}/holds", json={"user_id": "u", "slot": SLOT, "party_size": 5}
    )
    assert hold.status_code == 201 and hold.json()["table_id"] == "T1"
    shrink = await client.patch(f"{base}/T1", json={"capacity": 2}, headers=ADMIN)
    assert shrink.status_code == 409 and shrink.json()["code"] == "table_in_use"
    assert hold.json()["id"] in shrink.json()["detail"]
    for body in ({"capacity": 9}, {"capacity": 1}, {"label": ""}, {"colour": "red"}):
        bad = await client.patch(f"{base}/T2", json=body, headers=ADMIN)
        assert bad.status_code == 400, body
    missing = await client.patch(f"{base}/T9", json={"label": "x"}, headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert (await audit(client, rid))["ok"]


async def test_remove_a_table_only_without_bookings_still_to_come(
    client: Client, redis: Redis
) -> None:
    rid = await restaurant(client, [2, 2, 4], days=(YESTERDAY, DAY))
    base = f"/v1/restaurants/{rid}/tables"
    past = await staff_book(client, rid, PAST_SLOT, table_id="T1")
    future = await staff_book(client, rid, SLOT, table_id="T2")
    blocked = await client.delete(f"{base}/T2", headers=ADMIN)
    assert blocked.status_code == 409 and blocked.json()["code"] == "table_in_use"
    assert future["reference"] in blocked.json()["detail"]
    # A past booking does not stand in the way, and keeps naming its table afterwards.
    removed = await client.delete(f"{base}/T1", headers=ADMIN)
    assert removed.status_code == 204, removed.text
    assert [t["id"] for t in (await client.get(base)).json()["tables"]] == ["T2", "T3"]
    kept = await client.get(f"/v1/reservations/{past['reference']}", headers=ADMIN)
    assert kept.json()["table_id"] == "T1"
    hold = await client.post(
        f"/v1/restaurants/{rid}/holds",
        json={"user_id": "u", "slot": SLOT, "party_size": 2, "table_id": "T1"},
    )
    assert hold.status_code == 404 and hold.json()["code"] == "not_found"
    again = await client.delete(f"{base}/T1", headers=ADMIN)
    assert again.status_code == 404
    await client.delete(f"/v1/reservations/{future['reference']}", headers=ADMIN)
    assert (await client.delete(f"{base}/T2", headers=ADMIN)).status_code == 204
    more = await client.post(base, json={"tables": [{"capacity": 2}]}, headers=ADMIN)
    assert more.json()["tables"][0]["id"] == "T4"  # ids are never reused
    assert (await audit(client, rid))["ok"]
    # The audit names a cell of a removed table in a slot still to come.
    await redis.hset(f"hs:{{{rid}}}:cells:{SLOT}", "T1", f"r|{past['reference']}")
    report = await audit(client, rid)
    assert "removed_unit_cell" in {v["check"] for v in report["violations"]}


async def test_a_lapsed_hold_on_a_table_is_swept_before_removal(
    client: Client, redis: Redis
) -> None:
    rid = await restaurant(client, [2, 2])
    hold = await client.post(
        f"/v1/restaurants/{rid}/holds",
        json={"user_id": "u", "slot": SLOT, "party_size": 2, "table_id": "T1"},
    )
    hold_id = hold.json()["id"]
    key = f"hs:{{{rid}}}:hold:{hold_id}"
    # Make it lapse now, as Redis sees it, without waiting.
    await redis.hset(key, "expires", "1")
    await redis.hset(f"hs:{{{rid}}}:cells:{SLOT}", "T1", f"h|{hold_id}|1")
    await redis.zadd(f"hs:{{{rid}}}:held:{SLOT}", {"T1": 1})
    await redis.zadd(f"hs:{{{rid}}}:holds", {hold_id: 1})
    removed = await client.delete(f"/v1/restaurants/{rid}/tables/T1", headers=ADMIN)
    assert removed.status_code == 204, removed.text
    events = [e["event"] for e in await feed(redis, rid)]
    assert events[-1] == "expired"
    assert await redis.hget(f"hs:{{{rid}}}:cells:{SLOT}", "T1") is None


async def test_add_tables_twice_with_one_idempotency_key_adds_them_once(client: Client) -> None:
    rid = await restaurant(client, [2])
    base = f"/v1/restaurants/{rid}/tables"
    body = {"tables": [{"capacity": 4, "label": "Patio"}, {"capacity": 2}]}
    key = {**ADMIN, "Idempotency-Key": "form-1"}
    first = await client.post(base, json=body, headers=key)
    again = await client.post(base, json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert [t["id"] for t in (await client.get(base)).json()["tables"]] == ["T1", "T2", "T3"]
    other = await client.post(base, json={"tables": [{"capacity": 8}]}, headers=key)
    assert other.status_code == 400 and other.json()["code"] == "validation_error"
    bad = await client.post(base, json=body, headers={**ADMIN, "Idempotency-Key": "a\x7fb"})
    assert bad.status_code == 400
    fresh = await client.post(base, json=body, headers={**ADMIN, "Idempotency-Key": "form-2"})
    assert [t["id"] for t in fresh.json()["tables"]] == ["T4", "T5"]


# -- races through the real 2-worker server -----------------------------------------------


@pytest.mark.race
async def test_30_same_key_add_tables_make_one_set_of_tables(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    made = await http.post(
        "/v1/restaurants",
        json={
            "name": "R",
            "phone": "+12125550100",
            "timezone": "UTC",
            "opens": "10:00",
            "closes": "22:00",
        },
        headers=admin,
    )
    rid = made.json()["id"]
    body = {"tables": [{"capacity": 2}, {"capacity": 4}]}
    answers = await asyncio.gather(
        *(
            http.post(
                f"/v1/restaurants/{rid}/tables",
                json=body,
                headers={**admin, "Idempotency-Key": "pressed-twice"},
            )
            for _ in range(30)
        )
    )
    assert Counter(a.status_code for a in answers) == {201: 1, 200: 29}
    assert {json.dumps(a.json(), sort_keys=True) for a in answers} == {
        json.dumps(
            {
                "tables": [
                    {"id": "T1", "label": None, "capacity": 2},
                    {"id": "T2", "label": None, "capacity": 4},
                ]
            },
            sort_keys=True,
        )
    }
    listed = (await http.get(f"/v1/restaurants/{rid}/tables")).json()["tables"]
    assert [t["id"] for t in listed] == ["T1", "T2"]


@pytest.mark.race
async def test_removing_a_table_racing_holds_on_it_never_strands_a_cell(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    """20 guests hold table T1 while the manager removes it, 10 rounds: either the removal
    came first (204, every hold 404) or a hold did (409 table_in_use naming it, exactly one
    hold 201, the rest 409 unit_unavailable). Never a hold on a removed table."""
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    outcomes: Counter[str] = Counter()
    for _ in range(10):
        made = await http.post(
            "/v1/restaurants",
            json={
                "name": "R",
                "phone": "+12125550100",
                "timezone": "UTC",
                "opens": "10:00",
                "closes": "22:00",
            },
            headers=admin,
        )
        rid = made.json()["id"]
        await http.post(
            f"/v1/restaurants/{rid}/tables", json={"tables": [{"capacity": 2}]}, headers=admin
        )
        await http.post(
            f"/v1/restaurants/{rid}/slots", json={"from": DAY, "to": DAY}, headers=admin
        )
        holds = [
            http.post(
                f"/v1/restaurants/{rid}/holds",
                json={"user_id": f"u{i}", "slot": SLOT, "party_size": 2, "table_id": "T1"},
            )
            for i in range(20)
        ]
        removal, *answers = await asyncio.gather(
            http.delete(f"/v1/restaurants/{rid}/tables/T1", headers=admin), *holds
        )
        codes = Counter(
            (a.status_code, a.json()["code"] if a.status_code >= 400 else "") for a in answers
        )
        if removal.status_code == 204:
            assert codes == {(404, "not_found"): 20}
            outcomes["removed"] += 1
        else:
            assert removal.status_code == 409 and removal.json()["code"] == "table_in_use"
            assert codes[(201, "")] == 1 and codes[(409, "unit_unavailable")] == 19
            winner = next(a.json()["id"] for a in answers if a.status_code == 201)
            assert winner in removal.json()["detail"]
            outcomes["kept"] += 1
        report = (await http.get(f"/v1/restaurants/{rid}/audit", headers=admin)).json()
        assert report["ok"], report
    assert sum(outcomes.values()) == 10


# -- offline docs and compression ---------------------------------------------------------


async def test_the_docs_page_loads_every_file_from_the_app(client: Client) -> None:
    page = await client.get("/schema")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(source.startswith("/static/vendor/") for source in sources), sources
    for source in sources:
        assert (await client.get(source)).status_code == 200, source
    assert "SwaggerUIBundle" in page.text
    assert (await client.get("/schema/openapi.json")).json()["info"]["title"] == "holdsvc"


async def test_text_answers_are_compressed_and_feed_streams_are_not(client: Client) -> None:
    gzip = {"Accept-Encoding": "gzip"}
    for url in ("/static/app.css", "/schema/openapi.json", "/"):
        answer = await client.get(url, headers=gzip)
        assert answer.headers.get("content-encoding") == "gzip", url
    rid = await restaurant(client, [2])
    polled = await client.get(
        f"/v1/restaurants/{rid}/changes",
        headers={**ADMIN, **gzip, "Accept": "application/json"},
    )
    assert polled.status_code == 200 and "content-encoding" not in polled.headers
