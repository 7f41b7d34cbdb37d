"""HTTP contract, end to end: reading and cancelling reservations, staff lists, phone search.

Every refused request is checked to be ``application/problem+json`` with its stable code and
to leave Redis exactly as it was.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any
from urllib.parse import quote

from redis.asyncio import Redis

from tests.cluster import both_backends
from tests.helpers import (
    ADMIN,
    Client,
    Send,
    assert_refused_unchanged,
    day_after,
    new_hold,
    new_reservation,
    new_venue,
    slot_tomorrow,
    tomorrow,
)

# Every test here runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends

REFERENCE = re.compile(r"^[A-Z2-9]{6}-[A-Z2-9]{6}$")
PHONE_A = "+1 (212) 555-0100"
PHONE_B = "+44 20 7946 0958"


def guest(phone: str, name: str = "Ada Lovelace") -> dict[str, str]:
    """A confirm body."""
    return {"name": name, "phone": phone}


def res_url(reference: str) -> str:
    """The URL of a reservation."""
    return f"/v1/reservations/{quote(reference, safe='')}"


def refs(response: Any) -> list[str]:
    """The references of a reservation list, in order."""
    assert response.status_code == 200, response.text
    return [r["reference"] for r in response.json()["reservations"]]


async def test_references_are_short_unambiguous_and_unique(client: Client) -> None:
    rid = await new_venue(client, capacities=(2, 2, 2, 2))
    references = [
        (await new_reservation(client, rid, f"u{i}", slot=slot_tomorrow(10 + i)))["reference"]
        for i in range(8)
    ]
    assert len(set(references)) == len(references)
    for reference in references:
        assert REFERENCE.match(reference), reference
        assert not set("0O1IL") & set(reference), reference


async def test_get_reservation_with_manage_token_or_admin(client: Client, redis: Redis) -> None:
    rid = await new_venue(client)
    made = await new_reservation(client, rid)
    other = await new_reservation(client, rid, "u2")
    url = res_url(made["reference"])
    expected = {k: v for k, v in made.items() if k != "manage_token"}
    guest_view = await client.get(url, headers={"Manage-Token": made["manage_token"]})
    assert guest_view.status_code == 200
    assert guest_view.json() == expected
    staff_view = await client.get(url, headers=ADMIN)
    assert staff_view.status_code == 200
    assert staff_view.json() == expected | {"business_notes": None, "tags": []}
    hold = await new_hold(client, rid, "u3", slot=slot_tomorrow(12))
    await assert_refused_unchanged(
        redis,
        {
            "no-token": partial(client.get, url),
            "empty-token": partial(client.get, url, headers={"Manage-Token": ""}),
            "wrong-token": partial(client.get, url, headers={"Manage-Token": "nope"}),
            "other-reservations-token": partial(
                client.get, url, headers={"Manage-Token": other["manage_token"]}
            ),
            "hold-token": partial(client.get, url, headers={"Manage-Token": hold["token"]}),
            "admin-token-as-manage-token": partial(
                client.get, url, headers={"Manage-Token": "test-admin"}
            ),
        },
        403,
        "forbidden",
    )
    await assert_refused_unchanged(
        redis,
        {
            "wrong-admin-bearer": partial(
                client.get, url, headers={"Authorization": "Bearer wrong"}
            ),
            "manage-token-as-bearer": partial(
                client.get, url, headers={"Authorization": f"Bearer {made['manage_token']}"}
            ),
        },
        401,
        "unauthorized",
    )


async def test_unknown_reservation_is_404(client: Client, redis: Redis) -> None:
    rid = await new_venue(client)
    made = await new_reservation(client, rid)
    tail = "ZZZZZZ" if not made["reference"].endswith("ZZZZZZ") else "YYYYYY"
    references = [
        "ZZZZZZ-ZZZZZZ",
        f"{rid}-{tail}",
        f"{rid}-{tail}".lower(),
        "nope",
        "x" * 500,
        "ABC-DEF",
        "{hs}-ABCDEF",
        "AAAAAA-AAAAA0",
        "ÄÖÜ",
        "a b",
    ]
    as_guest = {"Manage-Token": made["manage_token"]}
    cases: dict[str, Send] = {}
    for reference in references:
        cases |= {
            f"get-admin {reference}": partial(client.get, res_url(reference), headers=ADMIN),
            f"get-guest {reference}": partial(client.get, res_url(reference), headers=as_guest),
            f"cancel-admin {reference}": partial(client.delete, res_url(reference), headers=ADMIN),
            f"cancel-guest {reference}": partial(
                client.delete, res_url(reference), headers=as_guest
            ),
        }
    await assert_refused_unchanged(redis, cases, 404, "not_found")


async def test_cancel_frees_the_table_and_is_idempotent(client: Client, redis: Redis) -> None:
    rid = await new_venue(client, capacities=(2,))
    made = await new_reservation(client, rid, table="T1")
    url = res_url(made["reference"])
    token = {"Manage-Token": made["manage_token"]}
    await assert_refused_unchanged(
        redis,
        {
            "no-token": partial(client.delete, url),
            "wrong-token": partial(client.delete, url, headers={"Manage-Token": "nope"}),
        },
        403,
        "forbidden",
    )
    await assert_refused_unchanged(
        redis,
        {"bad-bearer": partial(client.delete, url, headers={"Authorization": "Bearer nope"})},
        401,
        "unauthorized",
    )
    response = await client.delete(url, headers=token)
    assert response.status_code == 200
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert isinstance(cancelled["cancelled_at"], str)
    assert "manage_token" not in cancelled
    unchanged = {
        k: v for k, v in made.items() if k not in ("manage_token", "status", "cancelled_at")
    }
    assert {k: v for k, v in cancelled.items() if k not in ("status", "cancelled_at")} == unchanged
    # The table is free at once for someone else.
    taken = await new_hold(client, rid, "u2", table="T1")
    assert taken["table_id"] == "T1"
    # Cancelling again (guest or staff) answers the same, unchanged, and frees nothing else.
    before_again = await client.get(f"/v1/restaurants/{rid}/slots/{slot_tomorrow()}")
    again = await client.delete(url, headers=token)
    assert again.status_code == 200
    assert again.json() == cancelled
    by_staff = await client.delete(url, headers=ADMIN)
    assert by_staff.status_code == 200
    assert by_staff.json() == cancelled | {"business_notes": None, "tags": []}
    after_again = await client.get(f"/v1/restaurants/{rid}/slots/{slot_tomorrow()}")
    assert after_again.json() == before_again.json()
    assert after_again.json()["tables"][0]["status"] == "held"
    assert (await client.get(url, headers=token)).json() == cancelled


async def test_staff_cancel_with_admin_token(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,))
    made = await new_reservation(client, rid, table="T1")
    response = await client.delete(res_url(made["reference"]), headers=ADMIN)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["tags"] == []
    assert (await new_hold(client, rid, "u2", table="T1"))["table_id"] == "T1"


async def test_staff_list_filters_and_sorts_by_start(client: Client, redis: Redis) -> None:
    rid = await new_venue(client, capacities=(2, 2), last=day_after(2))
    late = await new_reservation(
        client, rid, "u1", slot=f"{day_after(2)}T19:00", guest=guest(PHONE_A)
    )
    evening = await new_reservation(client, rid, "u2", slot=slot_tomorrow(20), guest=guest(PHONE_B))
    noon = await new_reservation(
        client, rid, "u3", slot=slot_tomorrow(12), guest=guest("+12125550100")
    )
    gone = await new_reservation(client, rid, "u4", slot=slot_tomorrow(15), guest=guest(PHONE_B))
    assert (await client.delete(res_url(gone["reference"]), headers=ADMIN)).status_code == 200
    other_venue = await new_venue(client)
    await new_reservation(client, other_venue, "u5", guest=guest(PHONE_A))
    url = f"/v1/restaurants/{rid}/reservations"

    everything = await client.get(url, headers=ADMIN)
    ordered = [noon, gone, evening, late]
    assert refs(everything) == [r["reference"] for r in ordered]
    for row in everything.json()["reservations"]:
        assert "manage_token" not in row
        assert row["business_notes"] is None and row["tags"] == []
    starts = [r["starts_at"] for r in everything.json()["reservations"]]
    assert starts == sorted(starts)

    async def listed(**params: str) -> list[str]:
        return refs(await client.get(url, params=params, headers=ADMIN))

    assert await listed(**{"from": tomorrow(), "to": tomorrow()}) == [
        noon["reference"],
        gone["reference"],
        evening["reference"],
    ]
    assert await listed(**{"from": day_after(2)}) == [late["reference"]]
    assert await listed(to=tomorrow()) == [r["reference"] for r in ordered[:3]]
    assert await listed(**{"from": day_after(3), "to": day_after(9)}) == []
    assert await listed(phone="(212) 555-0100") == [noon["reference"], late["reference"]]
    assert await listed(phone="+12125550100") == [noon["reference"], late["reference"]]
    assert await listed(phone="+1 646 555 0199") == []
    assert await listed(status="cancelled") == [gone["reference"]]
    assert await listed(status="confirmed") == [
        noon["reference"],
        evening["reference"],
        late["reference"],
    ]
    assert await listed(status="no_show") == []
    assert await listed(phone=PHONE_B, status="confirmed", to=tomorrow()) == [evening["reference"]]

    bad: dict[str, dict[str, str]] = {
        "status-unknown": {"status": "pending"},
        "from-not-a-date": {"from": "2026-02-30"},
        "from-word": {"from": "tomorrow"},
        "to-before-from": {"from": day_after(2), "to": tomorrow()},
        "phone-not-a-phone": {"phone": "call me"},
        "phone-41": {"phone": "1" * 41},
    }
    cases: dict[str, Send] = {
        case_id: partial(client.get, url, params=params, headers=ADMIN)
        for case_id, params in bad.items()
    }
    await assert_refused_unchanged(redis, cases, 400, "validation_error")


async def test_phone_search_finds_a_client_in_every_venue(client: Client, redis: Redis) -> None:
    first = await new_venue(client, capacities=(2, 2), last=day_after(2))
    second = await new_venue(client, capacities=(2,))
    late = await new_reservation(
        client, first, "u1", slot=f"{day_after(2)}T12:00", guest=guest(PHONE_A)
    )
    early = await new_reservation(
        client, second, "u2", slot=slot_tomorrow(11), guest=guest("+12125550100")
    )
    middle = await new_reservation(
        client, first, "u3", slot=slot_tomorrow(20), guest=guest(PHONE_A)
    )
    other = await new_reservation(client, first, "u4", slot=slot_tomorrow(20), guest=guest(PHONE_B))
    expected = [early["reference"], middle["reference"], late["reference"]]
    for phone in (PHONE_A, "+12125550100", "212-555-0100", "+1 212 555 0100"):
        response = await client.get("/v1/reservations", params={"phone": phone}, headers=ADMIN)
        assert refs(response) == expected, phone
    rows = (await client.get("/v1/reservations", params={"phone": PHONE_A}, headers=ADMIN)).json()
    assert {r["venue_id"] for r in rows["reservations"]} == {first, second}
    assert all(r["phone"] == "+12125550100" for r in rows["reservations"])
    by_b = await client.get("/v1/reservations", params={"phone": PHONE_B}, headers=ADMIN)
    assert refs(by_b) == [other["reference"]]
    nobody = await client.get(
        "/v1/reservations", params={"phone": "+1 646 555 0199"}, headers=ADMIN
    )
    assert nobody.json() == {"reservations": []}
    cases: dict[str, Send] = {
        "missing-phone": partial(client.get, "/v1/reservations", headers=ADMIN),
        "phone-2-chars": partial(
            client.get, "/v1/reservations", params={"phone": "12"}, headers=ADMIN
        ),
        "phone-not-a-phone": partial(
            client.get, "/v1/reservations", params={"phone": "call me"}, headers=ADMIN
        ),
        "phone-41-chars": partial(
            client.get, "/v1/reservations", params={"phone": "1" * 41}, headers=ADMIN
        ),
    }
    await assert_refused_unchanged(redis, cases, 400, "validation_error")
