"""HTTP contract, end to end: placing, reading, refreshing, releasing and confirming holds.

Every refused request is checked to be ``application/problem+json`` with its stable code and
to leave Redis exactly as it was.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import quote

from redis.asyncio import Redis

from holdsvc.services import Services
from tests.cluster import both_backends
from tests.helpers import (
    ADMIN,
    GUEST,
    Client,
    Send,
    assert_problem,
    assert_refused_unchanged,
    day_after,
    hold_http,
    lapse,
    new_hold,
    new_venue,
    slot_tomorrow,
    tomorrow,
)

# Every test here runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends

REFERENCE = re.compile(r"^[A-Z2-9]{6}-[A-Z2-9]{6}$")
HOLD_KEYS = {
    "id",
    "token",
    "venue_id",
    "user_id",
    "slot",
    "table_id",
    "table_ids",
    "party_size",
    "created_at",
    "expires_at",
    "expires_in",
    "ends_at",
}
RESERVATION_KEYS = {
    "reference",
    "status",
    "venue_id",
    "slot",
    "starts_at",
    "ends_at",
    "table_id",
    "table_ids",
    "party_size",
    "name",
    "phone",
    "email",
    "notes",
    "created_at",
    "cancelled_at",
}
ODD_IDS = ["nope", "a/b", "x" * 300, "{hs}", "a:b", "ÄÖÜ", "*", "a b", "0"]


def seconds_between(first: str, second: str) -> float:
    """Seconds from one RFC 3339 time to another."""
    return (datetime.fromisoformat(second) - datetime.fromisoformat(first)).total_seconds()


def hold_url(rid: str, hold_id: str, action: str = "") -> str:
    """The URL of a hold (or one of its actions)."""
    return f"/v1/restaurants/{rid}/holds/{quote(hold_id, safe='')}{action}"


async def confirm(
    client: Client, rid: str, hold: dict[str, Any], body: object = GUEST, token: str | None = None
) -> Any:
    """POST the confirm of a hold with its token (or another); the raw response."""
    return await client.post(
        hold_url(rid, hold["id"], "/confirm"),
        json=body,
        headers={"Hold-Token": token if token is not None else hold["token"]},
    )


# -- placing ----------------------------------------------------------------------------------


async def test_place_hold_picks_the_smallest_free_table_that_fits(client: Client) -> None:
    rid = await new_venue(client, capacities=(4, 2, 2, 6))
    response = await hold_http(client, rid, "u1", party=2)
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/json")
    hold = response.json()
    assert hold.keys() >= HOLD_KEYS
    assert hold["table_id"] == "T2"  # smallest fit, and of the two 2-tops the first created
    assert hold["venue_id"] == rid
    assert hold["user_id"] == "u1"
    assert hold["slot"] == slot_tomorrow()
    assert hold["party_size"] == 2
    assert isinstance(hold["token"], str) and len(hold["token"]) >= 20
    assert seconds_between(hold["created_at"], hold["expires_at"]) == 600
    assert 599 <= hold["expires_in"] <= 600
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00", hold["expires_at"])
    assert (await new_hold(client, rid, "u2", party=2))["table_id"] == "T3"
    assert (await new_hold(client, rid, "u3", party=3))["table_id"] == "T1"
    # Every table that fits a party of 5 is now taken but the 6-top.
    assert (await new_hold(client, rid, "u5", party=5))["table_id"] == "T4"


async def test_place_hold_on_a_named_table(client: Client) -> None:
    rid = await new_venue(client, capacities=(2, 8))
    hold = await new_hold(client, rid, table="T2", party=2)
    assert hold["table_id"] == "T2"
    assert hold["party_size"] == 2


async def test_place_hold_rejects_bad_input(client: Client, redis: Redis) -> None:
    rid = await new_venue(client)
    good: dict[str, Any] = {"user_id": "u1", "slot": slot_tomorrow(), "party_size": 2}
    bodies: dict[str, bytes] = {
        "malformed-json": b'{"user_id": "u1", ',
        "empty-body": b"",
        "null-body": b"null",
        "array-body": b"[]",
    }
    changes: dict[str, dict[str, Any]] = {
        "party-string": {"party_size": "4"},
        "party-0": {"party_size": 0},
        "party-51": {"party_size": 51},
        "party-null": {"party_size": None},
        "party-float": {"party_size": 2.5},
        "party-bool": {"party_size": True},
        "user-number": {"user_id": 42},
        "user-null": {"user_id": None},
        "user-empty": {"user_id": ""},
        "user-129": {"user_id": "u" * 129},
        "user-newline": {"user_id": "u\n1"},
        "user-nul": {"user_id": "u\x001"},
        "user-tab": {"user_id": "u\t1"},
        "user-del": {"user_id": "u\x7f1"},
        "user-c1-control": {"user_id": "u\x851"},
        "slot-number": {"slot": 202612011900},
        "slot-null": {"slot": None},
        "table-number": {"table_id": 1},
        "table-empty": {"table_id": ""},
        "unknown-field": {"seats": ["S1"]},
        "100kB-user": {"user_id": "u" * 100_000},
    }
    for case_id, change in changes.items():
        bodies[case_id] = json.dumps(good | change).encode()
    for field in good:
        bodies[f"missing-{field}"] = json.dumps(
            {k: v for k, v in good.items() if k != field}
        ).encode()
    for slot in ("2026-13-01T19:00", "2026-02-30T19:00", "tomorrow", "2026-12-01 19:00"):
        bodies[f"slot {slot}"] = json.dumps(good | {"slot": slot}).encode()
    url = f"/v1/restaurants/{rid}/holds"
    headers = {"Content-Type": "application/json"}
    cases: dict[str, Send] = {
        case_id: partial(client.post, url, content=body, headers=headers)
        for case_id, body in bodies.items()
    }
    cases["idempotency-key-empty"] = partial(
        client.post, url, json=good, headers={"Idempotency-Key": ""}
    )
    cases["idempotency-key-256"] = partial(
        client.post, url, json=good, headers={"Idempotency-Key": "k" * 256}
    )
    await assert_refused_unchanged(redis, cases, 400, "validation_error")


async def test_place_hold_unknown_slot_or_table_is_404(client: Client, redis: Redis) -> None:
    rid = await new_venue(client, max_days_ahead=2)
    cases: dict[str, Send] = {
        "slot-off-grid-hour": partial(hold_http, client, rid, slot=f"{tomorrow()}T03:00"),
        "slot-off-grid-minute": partial(hold_http, client, rid, slot=f"{tomorrow()}T19:30"),
        # Not in the grid, and past the booking window: the 404 comes first.
        "slot-far-future": partial(hold_http, client, rid, slot="2031-01-01T19:00"),
        "slot-in-the-past": partial(hold_http, client, rid, slot="2001-01-01T19:00"),
        "table-unknown": partial(hold_http, client, rid, table="T99"),
        "table-lowercase": partial(hold_http, client, rid, table="t1"),
    }
    await assert_refused_unchanged(redis, cases, 404, "not_found")


async def test_no_table_fits_the_party(client: Client, redis: Redis) -> None:
    rid = await new_venue(client, capacities=(2, 4))
    cases: dict[str, Send] = {
        "party-9-no-table-that-big": partial(hold_http, client, rid, party=9),
        "party-50": partial(hold_http, client, rid, party=50),
        "named-table-too-small": partial(hold_http, client, rid, party=3, table="T1"),
    }
    for case_id, send in cases.items():
        body = assert_problem(await send(), 409, "no_table_available")
        assert "retry_after" not in body, case_id
    await assert_refused_unchanged(redis, cases, 409, "no_table_available")


async def test_every_fitting_table_held_is_409_with_retry_after(
    client: Client, redis: Redis
) -> None:
    rid = await new_venue(client, capacities=(2, 4), hold_seconds=120)
    await new_hold(client, rid, "u1", party=3)
    response = await hold_http(client, rid, "u2", party=3)
    body = assert_problem(response, 409, "no_table_available")
    assert 119 <= body["retry_after"] <= 120
    assert response.headers["Retry-After"] == str(body["retry_after"])
    # A party of 2 still gets the 2-top.
    assert (await new_hold(client, rid, "u2", party=2))["table_id"] == "T1"


async def test_held_table_is_409_unit_unavailable_with_retry_after(
    client: Client, redis: Redis
) -> None:
    rid = await new_venue(client, capacities=(2, 4))
    held = await new_hold(client, rid, "u1", table="T1")
    before_body = {"user_id": "u2", "slot": slot_tomorrow(), "party_size": 2, "table_id": "T1"}
    response = await client.post(f"/v1/restaurants/{rid}/holds", json=before_body)
    body = assert_problem(response, 409, "unit_unavailable")
    assert 599 <= body["retry_after"] <= 600
    assert response.headers["Retry-After"] == str(body["retry_after"])
    assert body["retry_after"] >= seconds_between(held["created_at"], held["expires_at"]) - 1
    # The same user cannot take it twice either.
    assert_problem(await hold_http(client, rid, "u1", table="T1"), 409, "unit_unavailable")
    await assert_refused_unchanged(
        redis, {"again": partial(hold_http, client, rid, "u2", table="T1")}, 409, "unit_unavailable"
    )


async def test_reserved_table_is_409_without_retry_after(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,))
    hold = await new_hold(client, rid, table="T1")
    assert (await confirm(client, rid, hold)).status_code == 201
    response = await hold_http(client, rid, "u2", table="T1")
    body = assert_problem(response, 409, "unit_unavailable")
    assert "retry_after" not in body
    assert "Retry-After" not in response.headers
    best_fit = assert_problem(await hold_http(client, rid, "u2"), 409, "no_table_available")
    assert "retry_after" not in best_fit


async def test_hold_limit_per_user(client: Client, redis: Redis) -> None:
    rid = await new_venue(client, capacities=(2, 2, 2), max_holds_per_user=2)
    first = await new_hold(client, rid, "u1", slot=slot_tomorrow(12))
    await new_hold(client, rid, "u1", slot=slot_tomorrow(13))
    await assert_refused_unchanged(
        redis,
        {"third": partial(hold_http, client, rid, "u1", slot=slot_tomorrow(14))},
        409,
        "hold_limit_reached",
    )
    # Another user is not affected; the limit is per user.
    await new_hold(client, rid, "u2", slot=slot_tomorrow(14))
    # Releasing one frees a place under the limit at once.
    released = await client.delete(
        hold_url(rid, first["id"]), headers={"Hold-Token": first["token"]}
    )
    assert released.status_code == 204
    await new_hold(client, rid, "u1", slot=slot_tomorrow(14))


async def test_slot_in_past_and_outside_booking_window(client: Client, redis: Redis) -> None:
    past = await new_venue(client, first=day_after(-1), last=tomorrow())
    yesterday = f"{day_after(-1)}T19:00"
    await assert_refused_unchanged(
        redis, {"yesterday": partial(hold_http, client, past, slot=yesterday)}, 409, "slot_in_past"
    )
    far = await new_venue(client, last=day_after(3), max_days_ahead=2)
    notice = await new_venue(client, min_notice_minutes=525_600)
    cases: dict[str, Send] = {
        "beyond-max-days-ahead": partial(hold_http, client, far, slot=f"{day_after(3)}T19:00"),
        "within-min-notice": partial(hold_http, client, notice),
    }
    await assert_refused_unchanged(redis, cases, 409, "outside_booking_window")
    # Inside the window: fine. Widening the window through PATCH opens the far slot.
    await new_hold(client, far)
    patched = await client.patch(
        f"/v1/restaurants/{far}", json={"max_days_ahead": 10}, headers=ADMIN
    )
    assert patched.status_code == 200
    await new_hold(client, far, "u2", slot=f"{day_after(3)}T19:00")


# -- idempotency ------------------------------------------------------------------------------


async def test_idempotency_key_replays_the_same_hold(client: Client, redis: Redis) -> None:
    rid = await new_venue(client, capacities=(2, 2))
    key = {"Idempotency-Key": "booking-form-7f3a"}
    first = await hold_http(client, rid, "u1", headers=key)
    assert first.status_code == 201
    again = await hold_http(client, rid, "u1", headers=key)
    assert again.status_code == 200
    replayed = again.json()
    assert replayed["id"] == first.json()["id"]
    assert replayed["token"] == first.json()["token"]
    assert replayed["table_id"] == first.json()["table_id"] == "T1"
    assert replayed["expires_at"] == first.json()["expires_at"]
    # The same key with another body is a mistake, and changes nothing.
    await assert_refused_unchanged(
        redis,
        {
            "other-party": partial(hold_http, client, rid, "u1", party=1, headers=key),
            "other-slot": partial(
                hold_http, client, rid, "u1", slot=slot_tomorrow(12), headers=key
            ),
            "other-table": partial(hold_http, client, rid, "u1", table="T2", headers=key),
        },
        400,
        "validation_error",
    )
    # Keys belong to their user: another user with the same key gets a hold of their own.
    other = await hold_http(client, rid, "u2", headers=key)
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]
    assert other.json()["table_id"] == "T2"


# -- reading, refreshing, releasing -------------------------------------------------------------


async def test_get_hold_needs_its_token(client: Client, redis: Redis) -> None:
    rid = await new_venue(client)
    hold = await new_hold(client, rid)
    other = await new_hold(client, rid, "u2")
    response = await client.get(hold_url(rid, hold["id"]), headers={"Hold-Token": hold["token"]})
    assert response.status_code == 200
    seen = response.json()
    assert "token" not in seen
    assert {k: v for k, v in hold.items() if k not in ("token", "expires_in")} == {
        k: v for k, v in seen.items() if k != "expires_in"
    }
    await assert_refused_unchanged(
        redis,
        {
            "no-token": partial(client.get, hold_url(rid, hold["id"])),
            "empty-token": partial(
                client.get, hold_url(rid, hold["id"]), headers={"Hold-Token": ""}
            ),
            "wrong-token": partial(
                client.get, hold_url(rid, hold["id"]), headers={"Hold-Token": "x" * 40}
            ),
            "other-holds-token": partial(
                client.get, hold_url(rid, hold["id"]), headers={"Hold-Token": other["token"]}
            ),
            "admin-token-is-not-a-hold-token": partial(
                client.get, hold_url(rid, hold["id"]), headers=ADMIN
            ),
        },
        403,
        "forbidden",
    )


async def test_unknown_hold_is_404_on_every_hold_endpoint(client: Client, redis: Redis) -> None:
    rid = await new_venue(client)
    elsewhere = await new_venue(client)
    foreign = await new_hold(client, elsewhere)
    token = {"Hold-Token": foreign["token"]}
    cases: dict[str, Send] = {}
    for hold_id in [*ODD_IDS, foreign["id"]]:
        cases |= {
            f"get {hold_id}": partial(client.get, hold_url(rid, hold_id), headers=token),
            f"refresh {hold_id}": partial(
                client.post, hold_url(rid, hold_id, "/refresh"), headers=token
            ),
            f"release {hold_id}": partial(client.delete, hold_url(rid, hold_id), headers=token),
            f"confirm {hold_id}": partial(
                client.post, hold_url(rid, hold_id, "/confirm"), json=GUEST, headers=token
            ),
        }
    # The hold exists, but not in this venue: an unknown venue is a 404 as well.
    for name, venue in (("unknown-venue", "NOSUCH"), ("odd-venue", "{x}")):
        cases[f"{name} get"] = partial(
            client.get, hold_url(quote(venue, safe=""), foreign["id"]), headers=token
        )
    await assert_refused_unchanged(redis, cases, 404, "not_found")


async def test_refresh_extends_the_hold(client: Client, redis: Redis) -> None:
    rid = await new_venue(client, hold_seconds=300, max_hold_seconds=900)
    hold = await new_hold(client, rid)
    response = await client.post(
        hold_url(rid, hold["id"], "/refresh"), headers={"Hold-Token": hold["token"]}
    )
    assert response.status_code == 200
    refreshed = response.json()
    assert refreshed["id"] == hold["id"]
    assert "token" not in refreshed
    assert refreshed["created_at"] == hold["created_at"]
    assert refreshed["expires_at"] >= hold["expires_at"]
    assert 299 <= refreshed["expires_in"] <= 300
    assert seconds_between(refreshed["created_at"], refreshed["expires_at"]) <= 900
    assert refreshed["refreshes"] == 1
    await assert_refused_unchanged(
        redis,
        {
            "no-token": partial(client.post, hold_url(rid, hold["id"], "/refresh")),
            "wrong-token": partial(
                client.post, hold_url(rid, hold["id"], "/refresh"), headers={"Hold-Token": "nope"}
            ),
        },
        403,
        "forbidden",
    )


async def test_refresh_at_the_lifetime_cap_is_409(client: Client, redis: Redis) -> None:
    rid = await new_venue(client, hold_seconds=600, max_hold_seconds=600)
    hold = await new_hold(client, rid)
    assert seconds_between(hold["created_at"], hold["expires_at"]) == 600
    url = hold_url(rid, hold["id"], "/refresh")
    await assert_refused_unchanged(
        redis,
        {"refresh": partial(client.post, url, headers={"Hold-Token": hold["token"]})},
        409,
        "hold_lifetime_exceeded",
    )


async def test_release_frees_the_table_at_once(client: Client, redis: Redis) -> None:
    rid = await new_venue(client, capacities=(2,))
    hold = await new_hold(client, rid, table="T1")
    token = {"Hold-Token": hold["token"]}
    await assert_refused_unchanged(
        redis,
        {
            "no-token": partial(client.delete, hold_url(rid, hold["id"])),
            "wrong-token": partial(
                client.delete, hold_url(rid, hold["id"]), headers={"Hold-Token": "nope"}
            ),
        },
        403,
        "forbidden",
    )
    released = await client.delete(hold_url(rid, hold["id"]), headers=token)
    assert released.status_code == 204
    assert released.content == b""
    view = (await client.get(f"/v1/restaurants/{rid}/slots/{slot_tomorrow()}")).json()
    assert view["tables"][0]["status"] == "available"
    # Releasing again changes nothing; refreshing or confirming a released hold is a 410.
    assert (await client.delete(hold_url(rid, hold["id"]), headers=token)).status_code == 204
    await assert_refused_unchanged(
        redis,
        {
            "refresh": partial(client.post, hold_url(rid, hold["id"], "/refresh"), headers=token),
            "confirm": partial(
                client.post, hold_url(rid, hold["id"], "/confirm"), json=GUEST, headers=token
            ),
        },
        410,
        "hold_expired",
    )
    taken = await new_hold(client, rid, "u2", table="T1")
    assert taken["table_id"] == "T1"


async def test_lapsed_hold_is_410_for_refresh_and_confirm(
    client: Client, redis: Redis, services: Services
) -> None:
    rid = await new_venue(client, capacities=(2,))
    hold = await new_hold(client, rid, table="T1")
    await lapse(services, rid, hold["id"])
    token = {"Hold-Token": hold["token"]}
    for send in (
        partial(client.post, hold_url(rid, hold["id"], "/refresh"), headers=token),
        partial(client.post, hold_url(rid, hold["id"], "/confirm"), json=GUEST, headers=token),
    ):
        assert_problem(await send(), 410, "hold_expired")
    seen = (await client.get(hold_url(rid, hold["id"]), headers=token)).json()
    assert seen["status"] == "expired"
    assert seen["expires_in"] == 0
    # Someone else gets the table straight away.
    assert (await new_hold(client, rid, "u2", table="T1"))["table_id"] == "T1"


async def test_a_hold_really_lapses_after_hold_seconds(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,), hold_seconds=1, max_hold_seconds=1)
    hold = await new_hold(client, rid, table="T1")
    days = {"from": tomorrow(), "to": tomorrow(), "party_size": "2"}
    listed = (await client.get(f"/v1/restaurants/{rid}/availability", params=days)).json()
    assert slot_tomorrow() not in [s["slot"] for s in listed["slots"]]
    await asyncio.sleep(1.1)
    listed = (await client.get(f"/v1/restaurants/{rid}/availability", params=days)).json()
    assert slot_tomorrow() in [s["slot"] for s in listed["slots"]]
    assert_problem(await confirm(client, rid, hold), 410, "hold_expired")
    assert (await new_hold(client, rid, "u2", table="T1"))["table_id"] == "T1"


# -- confirming -------------------------------------------------------------------------------


async def test_confirm_makes_a_reservation_once(client: Client, redis: Redis) -> None:
    rid = await new_venue(client, capacities=(4,))
    hold = await new_hold(client, rid, party=3, slot=slot_tomorrow(20))
    body = {**GUEST, "notes": "window please"}
    created = await confirm(client, rid, hold, body)
    assert created.status_code == 201
    reservation = created.json()
    assert reservation.keys() == RESERVATION_KEYS | {"manage_token"}
    assert REFERENCE.match(reservation["reference"])
    assert not set("0O1IL") & set(reservation["reference"])
    assert reservation | {"reference": "R", "manage_token": "M", "created_at": "C"} == {
        "reference": "R",
        "manage_token": "M",
        "created_at": "C",
        "status": "confirmed",
        "venue_id": rid,
        "slot": slot_tomorrow(20),
        "starts_at": f"{tomorrow()}T20:00:00.000+00:00",
        "ends_at": f"{tomorrow()}T21:00:00.000+00:00",
        "table_id": "T1",
        "table_ids": ["T1"],
        "party_size": 3,
        "name": "Ada Lovelace",
        "phone": "+12125550100",
        "email": "ada@example.com",
        "notes": "window please",
        "cancelled_at": None,
    }
    # The same confirm again, whatever its body: 200, the same reservation and the same
    # manage token (a guest whose connection dropped can still manage the booking).
    expected_again = reservation
    for again_body in (b"", b"garbage{", b"{}", json.dumps({"name": "Someone Else"}).encode()):
        again = await client.post(
            hold_url(rid, hold["id"], "/confirm"),
            content=again_body,
            headers={"Hold-Token": hold["token"], "Content-Type": "application/json"},
        )
        assert again.status_code == 200, again_body
        assert again.json() == expected_again
    # But only for the bearer of the hold's token.
    await assert_refused_unchanged(
        redis,
        {"wrong-token": partial(confirm, client, rid, hold, token="nope")},
        403,
        "forbidden",
    )
    seen = (
        await client.get(hold_url(rid, hold["id"]), headers={"Hold-Token": hold["token"]})
    ).json()
    assert seen["status"] == "confirmed"
    assert seen["reference"] == reservation["reference"]
    token = {"Hold-Token": hold["token"]}
    await assert_refused_unchanged(
        redis,
        {
            "refresh": partial(client.post, hold_url(rid, hold["id"], "/refresh"), headers=token),
            "release": partial(client.delete, hold_url(rid, hold["id"]), headers=token),
        },
        410,
        "hold_expired",
    )
    view = (await client.get(f"/v1/restaurants/{rid}/slots/{slot_tomorrow(20)}")).json()
    assert view["tables"][0]["status"] == "reserved"


async def test_confirm_rejects_bad_input(client: Client, redis: Redis) -> None:
    rid = await new_venue(client)
    hold = await new_hold(client, rid)
    bodies: dict[str, bytes] = {
        "malformed-json": b'{"name": ',
        "empty-body": b"",
        "array-body": b"[]",
    }
    changes: dict[str, dict[str, Any]] = {
        "missing-name": {"name": None},
        "name-empty": {"name": ""},
        "name-201": {"name": "n" * 201},
        "name-number": {"name": 7},
        "phone-not-a-phone": {"phone": "call me maybe"},
        "phone-number": {"phone": 12125550100},
        "email-invalid": {"email": "ada-at-example"},
        "email-number": {"email": 5},
        "notes-2001": {"notes": "n" * 2001},
        "unknown-field": {"party_size": 4},
        "100kB-notes": {"notes": "n" * 100_000},
    }
    for case_id, change in changes.items():
        body = {k: v for k, v in (GUEST | change).items() if v is not None}
        bodies[case_id] = json.dumps(body).encode()
    headers = {"Hold-Token": hold["token"], "Content-Type": "application/json"}
    url = hold_url(rid, hold["id"], "/confirm")
    cases: dict[str, Send] = {
        case_id: partial(client.post, url, content=body, headers=headers)
        for case_id, body in bodies.items()
    }
    await assert_refused_unchanged(redis, cases, 400, "validation_error")
    # The hold is still live and confirms normally.
    assert (await confirm(client, rid, hold)).status_code == 201
