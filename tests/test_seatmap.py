"""Seat maps: sections, rows, general admission, seats together (API.md, issue 21)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from holdsvc.keys import Keys
from holdsvc.services import Services
from holdsvc.transfer import Transfer, read_venues
from tests.cluster import both_backends
from tests.helpers import ADMIN
from tests.serverproc import ServerProcess

# Every test here runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends

Client = AsyncTestClient[Any]

STARTS = "2030-06-01T20:00:00+02:00"
SMALL_MAP: list[dict[str, Any]] = [
    {"id": "A", "name": "Stalls", "rows": [{"id": "1", "seats": 10}, {"id": "2", "seats": 10}]},
    {"id": "B", "name": "Balcony", "rows": [{"id": "1", "seats": 6}]},
    {"id": "F", "name": "Floor", "capacity": 30},
]


async def make_map(client: Client, sections: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    created = await client.post(
        "/v1/events",
        json={"name": "Gig", "starts_at": STARTS, "sections": sections, **extra},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    event: dict[str, Any] = created.json()
    return event


async def hold(client: Client, eid: str, user: str = "u1", **body: Any) -> httpx.Response:
    return await client.post(f"/v1/events/{eid}/holds", json={"user_id": user, **body})


def row(section: str, row_id: str, seats: int) -> dict[str, Any]:
    return {"id": section, "name": section, "rows": [{"id": row_id, "seats": seats}]}


async def take(client: Client, eid: str, seats: list[str], user: str = "blocker") -> None:
    answer = await hold(client, eid, user, seats=seats)
    assert answer.status_code == 201, answer.text


async def test_create_and_read_a_map(client: Client) -> None:
    event = await make_map(client, SMALL_MAP)
    assert event["total_seats"] == 56 and event["available_seats"] == 56
    assert event["sections"] == [
        {"id": "A", "name": "Stalls", "kind": "seated", "capacity": 20, "available": 20},
        {"id": "B", "name": "Balcony", "kind": "seated", "capacity": 6, "available": 6},
        {"id": "F", "name": "Floor", "kind": "ga", "capacity": 30, "available": 30},
    ]
    seats = (await client.get(f"/v1/events/{event['id']}/seats")).json()["seats"]
    assert len(seats) == 26  # GA places have no seat ids
    assert seats[0] == {
        "id": "A-1-1",
        "status": "available",
        "section": "A",
        "row": "1",
        "number": 1,
    }
    assert seats[-1]["id"] == "B-1-6"
    sections = (await client.get(f"/v1/events/{event['id']}/sections")).json()["sections"]
    assert [s["id"] for s in sections] == ["A", "B", "F"]
    assert sections[0]["rows"] == [{"id": "1", "available": 10}, {"id": "2", "available": 10}]
    assert "rows" not in sections[2]


@pytest.mark.parametrize(
    "sections",
    [
        [{"id": "A", "name": "x", "capacity": 9}],  # fewer than 10 places
        [{"id": "A", "name": "x", "capacity": 100_001}],
        [
            {"id": "A", "name": "x", "capacity": 60_000},
            {"id": "B", "name": "y", "capacity": 40_001},
        ],
        [{"id": "A", "name": "x", "capacity": 10}, {"id": "A", "name": "y", "capacity": 10}],
        [{"id": "A-1", "name": "x", "capacity": 10}],
        [{"id": "A" * 17, "name": "x", "capacity": 10}],
        [{"id": "A", "name": "", "capacity": 10}],
        [{"id": "A", "name": "x" * 81, "capacity": 10}],
        [{"id": "A", "name": "x", "rows": [{"id": "1", "seats": 201}]}],
        [{"id": "A", "name": "x", "rows": [{"id": "1", "seats": 0}]}],
        [{"id": "A", "name": "x", "rows": [{"id": "1", "seats": 5}, {"id": "1", "seats": 5}]}],
        [{"id": "A", "name": "x", "rows": [{"id": "1", "seats": 10}], "capacity": 10}],
        [{"id": "A", "name": "x"}],
        [],
    ],
)
async def test_bad_maps_are_400(client: Client, sections: list[dict[str, Any]]) -> None:
    answer = await client.post(
        "/v1/events",
        json={"name": "Gig", "starts_at": STARTS, "sections": sections},
        headers=ADMIN,
    )
    assert answer.status_code == 400 and answer.json()["code"] == "validation_error"


async def test_total_seats_and_sections_together_is_400(client: Client) -> None:
    answer = await client.post(
        "/v1/events",
        json={"name": "Gig", "starts_at": STARTS, "total_seats": 10, "sections": SMALL_MAP},
        headers=ADMIN,
    )
    assert answer.status_code == 400


async def test_best_together_takes_the_middle_of_the_first_row(client: Client) -> None:
    eid = (await make_map(client, SMALL_MAP))["id"]
    answer = await hold(client, eid, count=4)
    assert answer.status_code == 201, answer.text
    assert answer.json()["seats"] == ["A-1-4", "A-1-5", "A-1-6", "A-1-7"]
    # Rows first: row 1 still has two runs of exactly 3 at equal distance: the lower wins.
    answer = await hold(client, eid, "u2", count=3)
    assert answer.json()["seats"] == ["A-1-1", "A-1-2", "A-1-3"]
    answer = await hold(client, eid, "u3", count=3)
    assert answer.json()["seats"] == ["A-1-8", "A-1-9", "A-1-10"]
    # Row 1 is full: in row 2 the two blocks nearest the middle tie, the lower numbers win.
    answer = await hold(client, eid, "u4", count=3)
    assert answer.json()["seats"] == ["A-2-4", "A-2-5", "A-2-6"]


async def test_a_block_that_strands_no_seat_is_preferred(client: Client) -> None:
    eid = (await make_map(client, [row("A", "1", 10)]))["id"]
    # Free: 1-3 and 8-10 around a taken middle; asking 2 in 1..3 strands one seat either way
    # except at an end... (1,2 leaves 3 alone; 2,3 leaves 1 alone), so 8..10 does the same.
    await take(client, eid, ["A-1-4", "A-1-5", "A-1-6", "A-1-7"])
    answer = await hold(client, eid, count=3)
    # Blocks of 3: 1-3 or 8-10 strand nothing; 8-10 is no nearer the middle: lower numbers.
    assert answer.json()["seats"] == ["A-1-1", "A-1-2", "A-1-3"]
    answer = await hold(client, eid, "u2", count=2)
    # Only 8-10 is left: 8,9 strands 10 and 9,10 strands 8: a stranding block is still given.
    assert answer.status_code == 201
    assert answer.json()["seats"] == ["A-1-8", "A-1-9"]


async def test_stranding_is_avoided_even_off_the_middle(client: Client) -> None:
    eid = (await make_map(client, [row("A", "1", 12)]))["id"]
    # Free runs: 1-4 (4 seats) and 7-9 (3) and 11-12 (2); asking 3.
    await take(client, eid, ["A-1-5", "A-1-6", "A-1-10"])
    answer = await hold(client, eid, count=3)
    # 7-9 fills its run exactly; 1-3 / 2-4 would leave one seat alone.
    assert answer.json()["seats"] == ["A-1-7", "A-1-8", "A-1-9"]


async def test_not_enough_together_versus_not_enough_seats(client: Client) -> None:
    eid = (await make_map(client, [row("A", "1", 10)]))["id"]
    await take(client, eid, ["A-1-3", "A-1-6", "A-1-9"])
    # 7 free seats, longest run 2.
    refused = await hold(client, eid, count=3)
    assert refused.status_code == 409 and refused.json()["code"] == "not_enough_together"
    apart = await hold(client, eid, count=3, together=False)
    assert apart.status_code == 201
    assert apart.json()["seats"] == ["A-1-1", "A-1-2", "A-1-4"]
    short = await hold(client, eid, "u2", count=5)
    assert short.status_code == 409 and short.json()["code"] == "not_enough_seats"


async def test_together_false_still_prefers_a_block(client: Client) -> None:
    eid = (await make_map(client, SMALL_MAP))["id"]
    answer = await hold(client, eid, count=2, together=False)
    assert answer.json()["seats"] == ["A-1-5", "A-1-6"]


async def test_named_section(client: Client) -> None:
    eid = (await make_map(client, SMALL_MAP))["id"]
    answer = await hold(client, eid, count=6, section="B")
    assert answer.json()["seats"] == [f"B-1-{n}" for n in range(1, 7)]
    full = await hold(client, eid, "u2", count=1, section="B")
    assert full.status_code == 409 and full.json()["code"] == "not_enough_seats"
    missing = await hold(client, eid, "u2", count=1, section="Z")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


async def test_later_rows_and_sections_in_order(client: Client) -> None:
    eid = (await make_map(client, SMALL_MAP))["id"]
    await take(client, eid, ["A-1-3", "A-1-8", "A-2-3", "A-2-8"])
    answer = await hold(client, eid, count=5)
    # No row of A has 5 together any more: the balcony's row does.
    assert answer.json()["seats"] == [f"B-1-{n}" for n in range(1, 6)]


async def test_general_admission_counter(client: Client) -> None:
    event = await make_map(client, SMALL_MAP, max_holds_per_user=50)
    eid = event["id"]
    first = await hold(client, eid, count=25, section="F")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["ga"] == {"section": "F", "count": 25} and "seats" not in body
    over = await hold(client, eid, "u2", count=6, section="F")
    assert over.status_code == 409 and over.json()["code"] == "not_enough_seats"
    rest = await hold(client, eid, "u2", count=5, section="F")
    assert rest.status_code == 201
    sections = (await client.get(f"/v1/events/{eid}/sections")).json()["sections"]
    assert sections[2]["available"] == 0
    assert (await client.get(f"/v1/events/{eid}")).json()["available_seats"] == 26
    # Release gives the places back to the counter at once.
    released = await client.delete(
        f"/v1/events/{eid}/holds/{body['id']}", headers={"Hold-Token": body["token"]}
    )
    assert released.status_code == 204
    sections = (await client.get(f"/v1/events/{eid}/sections")).json()["sections"]
    assert sections[2]["available"] == 25


async def test_ga_confirm_and_cancel(client: Client) -> None:
    eid = (await make_map(client, SMALL_MAP))["id"]
    held = (await hold(client, eid, count=3, section="F")).json()
    confirmed = await client.post(
        f"/v1/events/{eid}/holds/{held['id']}/confirm",
        json={"name": "Ann", "phone": "+33612345678"},
        headers={"Hold-Token": held["token"]},
    )
    assert confirmed.status_code == 201, confirmed.text
    reservation = confirmed.json()
    assert reservation["ga"] == {"section": "F", "count": 3} and "seats" not in reservation
    sections = (await client.get(f"/v1/events/{eid}/sections")).json()["sections"]
    assert sections[2]["available"] == 27
    cancelled = await client.delete(
        f"/v1/reservations/{reservation['reference']}",
        headers={"Manage-Token": reservation["manage_token"]},
    )
    assert cancelled.status_code == 200
    sections = (await client.get(f"/v1/events/{eid}/sections")).json()["sections"]
    assert sections[2]["available"] == 30
    audit = (await client.get(f"/v1/events/{eid}/audit", headers=ADMIN)).json()
    assert audit["ok"] and audit["violations"] == [], audit


async def test_cancel_frees_seats_for_the_next_block(client: Client) -> None:
    eid = (await make_map(client, [row("A", "1", 10)]))["id"]
    held = (await hold(client, eid, count=4)).json()
    reservation = (
        await client.post(
            f"/v1/events/{eid}/holds/{held['id']}/confirm",
            json={"name": "Ann", "phone": "+33612345678"},
            headers={"Hold-Token": held["token"]},
        )
    ).json()
    assert reservation["seats"] == ["A-1-4", "A-1-5", "A-1-6", "A-1-7"]
    cancelled = await client.delete(
        f"/v1/reservations/{reservation['reference']}",
        headers={"Manage-Token": reservation["manage_token"]},
    )
    assert cancelled.status_code == 200
    again = await hold(client, eid, "u2", count=4)
    assert again.json()["seats"] == ["A-1-4", "A-1-5", "A-1-6", "A-1-7"]


async def test_lapsed_holds_are_free_for_the_next_pick(make_client: Any, redis: Redis) -> None:
    async with make_client() as client:
        eid = (await make_map(client, [row("A", "1", 10)], hold_seconds=1, max_holds_per_user=10))[
            "id"
        ]
        first = await hold(client, eid, count=10)
        assert first.status_code == 201
        await asyncio.sleep(1.2)
        sections = (await client.get(f"/v1/events/{eid}/sections")).json()["sections"]
        assert sections[0]["available"] == 10 and sections[0]["rows"][0]["available"] == 10
        again = await hold(client, eid, "u2", count=4)
        assert again.status_code == 201, again.text
        assert again.json()["seats"] == ["A-1-4", "A-1-5", "A-1-6", "A-1-7"]
        audit = (await client.get(f"/v1/events/{eid}/audit", headers=ADMIN)).json()
        assert audit["ok"], audit


async def test_named_seats_and_rows_update(client: Client) -> None:
    eid = (await make_map(client, SMALL_MAP))["id"]
    await take(client, eid, ["A-1-1", "A-2-10"])
    sections = (await client.get(f"/v1/events/{eid}/sections")).json()["sections"]
    assert sections[0]["available"] == 18
    assert sections[0]["rows"] == [{"id": "1", "available": 9}, {"id": "2", "available": 9}]
    missing = await hold(client, eid, seats=["A-9-1"])
    assert missing.status_code == 404
    taken = await hold(client, eid, "u2", seats=["A-1-1"])
    assert taken.status_code == 409 and taken.json()["code"] == "unit_unavailable"
    listed = (await client.get(f"/v1/events/{eid}/seats?status=held")).json()["seats"]
    assert [s["id"] for s in listed] == ["A-1-1", "A-2-10"]


async def test_section_and_together_only_with_count(client: Client) -> None:
    eid = (await make_map(client, SMALL_MAP))["id"]
    bad = await hold(client, eid, seats=["A-1-1"], section="A")
    assert bad.status_code == 400
    plain = await client.post(
        "/v1/events",
        json={"name": "Old", "starts_at": STARTS, "total_seats": 10},
        headers=ADMIN,
    )
    old = plain.json()["id"]
    assert (await hold(client, old, count=2, section="A")).status_code == 404
    assert (await hold(client, old, count=2, together=True)).status_code == 400
    assert (await hold(client, old, count=2)).json()["seats"] == ["S1", "S2"]
    assert (await client.get(f"/v1/events/{old}/sections")).status_code == 404
    assert "sections" not in (await client.get(f"/v1/events/{old}")).json()


def server_admin(server: ServerProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_token}"}


RACE_ROWS = 6
RACE_SEATS = 20


async def test_racing_best_four_blocks_are_disjoint_and_adjacent(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    sections = [
        {
            "id": "A",
            "name": "Stalls",
            "rows": [{"id": str(r), "seats": RACE_SEATS} for r in range(1, RACE_ROWS + 1)],
        }
    ]
    capacity = RACE_ROWS * RACE_SEATS
    created = await http.post(
        "/v1/events",
        json={"name": "Race", "starts_at": STARTS, "sections": sections},
        headers=server_admin(server),
    )
    eid = created.json()["id"]

    async def racer(n: int) -> httpx.Response:
        return await http.post(f"/v1/events/{eid}/holds", json={"user_id": f"r{n}", "count": 4})

    answers = await asyncio.gather(*(racer(n) for n in range(60)))
    won = [a.json()["seats"] for a in answers if a.status_code == 201]
    refused = [a.json()["code"] for a in answers if a.status_code != 201]
    # 20 seats a row: 5 blocks of 4 each, 30 blocks in all; the rest find none.
    assert len(won) == capacity // 4 and len(refused) == 60 - capacity // 4
    assert set(refused) == {"not_enough_seats"}
    taken = [seat for block in won for seat in block]
    assert len(taken) == len(set(taken)) == capacity
    for block in won:
        parts = [seat.rsplit("-", 1) for seat in block]
        assert len({p[0] for p in parts}) == 1
        numbers = [int(p[1]) for p in parts]
        assert numbers == list(range(numbers[0], numbers[0] + 4))
    event = (await http.get(f"/v1/events/{eid}")).json()
    assert event["available_seats"] == 0
    audit = (await http.get(f"/v1/events/{eid}/audit", headers=server_admin(server))).json()
    assert audit["ok"] and audit["violations"] == [], audit


async def test_racing_general_admission_is_never_oversold(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    sections = [{"id": "GA", "name": "Standing", "capacity": 50}]
    created = await http.post(
        "/v1/events",
        json={"name": "Race", "starts_at": STARTS, "sections": sections},
        headers=server_admin(server),
    )
    eid = created.json()["id"]

    async def racer(n: int) -> httpx.Response:
        return await http.post(
            f"/v1/events/{eid}/holds",
            json={"user_id": f"r{n}", "count": 3, "section": "GA"},
        )

    answers = await asyncio.gather(*(racer(n) for n in range(40)))
    won = [a.json()["ga"]["count"] for a in answers if a.status_code == 201]
    # 50 places, 3 at a time: 16 holds, 2 places never sold, 24 refused.
    assert sum(won) == 48 and len(won) == 16
    assert {a.json()["code"] for a in answers if a.status_code != 201} == {"not_enough_seats"}
    sections_now = (await http.get(f"/v1/events/{eid}/sections")).json()["sections"]
    assert sections_now[0]["available"] == 2
    audit = (await http.get(f"/v1/events/{eid}/audit", headers=server_admin(server))).json()
    assert audit["ok"] and audit["violations"] == [], audit


# -- the audit: the row index and GA counters against the cells ----------------------------


async def audit_checks(client: Client, eid: str) -> set[tuple[str, str | None]]:
    report = (await client.get(f"/v1/events/{eid}/audit", headers=ADMIN)).json()
    return {(v["check"], v.get("unit")) for v in report["violations"]}


async def test_audit_names_a_planted_row_mismatch(client: Client, redis: Redis) -> None:
    eid = (await make_map(client, SMALL_MAP))["id"]
    await take(client, eid, ["A-1-2"])
    key = Keys("hs").of(eid).seat_index
    record = await redis.hget(key, "R:A-1")
    assert record is not None
    text = record.decode() if isinstance(record, bytes) else str(record)
    leaf, section, bits = text.split("|")
    # Seat 2 (taken) marked free, seat 5 (free) marked taken.
    planted = bits[0] + "." + bits[2:4] + "x" + bits[5:]
    await redis.hset(key, "R:A-1", f"{leaf}|{section}|{planted}")
    checks = await audit_checks(client, eid)
    assert ("seat_index", "A-1-2") in checks and ("seat_index", "A-1-5") in checks


async def test_audit_names_a_planted_ga_counter(client: Client, redis: Redis) -> None:
    eid = (await make_map(client, SMALL_MAP))["id"]
    await hold(client, eid, count=2, section="F")
    await redis.hincrby(Keys("hs").of(eid).seat_index, "A:F", 1)
    assert ("ga_counter", None) in await audit_checks(client, eid)


async def test_audit_names_a_planted_run_tree_node(client: Client, redis: Redis) -> None:
    eid = (await make_map(client, SMALL_MAP))["id"]
    await redis.hset(Keys("hs").of(eid).seat_index, "T:1", "1")
    assert ("seat_index", None) in await audit_checks(client, eid)


# -- export and import ---------------------------------------------------------------------


async def confirm(client: Client, eid: str, held: dict[str, Any]) -> dict[str, Any]:
    answer = await client.post(
        f"/v1/events/{eid}/holds/{held['id']}/confirm",
        json={"name": "Ann", "phone": "+33612345678"},
        headers={"Hold-Token": held["token"]},
    )
    assert answer.status_code == 201, answer.text
    reservation: dict[str, Any] = answer.json()
    return reservation


async def test_a_seat_map_survives_export_and_import(
    client: Client, services: Services, redis: Redis, tmp_path: Path
) -> None:
    eid = (await make_map(client, SMALL_MAP))["id"]
    seated = await confirm(client, eid, (await hold(client, eid, count=4)).json())
    standing = await confirm(client, eid, (await hold(client, eid, count=3, section="F")).json())
    await hold(client, eid, "u2", count=2, section="B")  # a live hold: not exported
    transfer = Transfer(services.redis, Keys("hs"), services.scripts, services.sweeper)
    out = io.StringIO()
    await transfer.export([eid], out)
    exported = tmp_path / "venues.jsonl"
    exported.write_text(out.getvalue())
    await redis.flushall()
    await transfer.import_venues(read_venues(str(exported)))

    sections = (await client.get(f"/v1/events/{eid}/sections")).json()["sections"]
    assert [s["available"] for s in sections] == [16, 6, 27]
    assert sections[0]["rows"] == [{"id": "1", "available": 6}, {"id": "2", "available": 10}]
    assert (await client.get(res_url(seated["reference"]), headers=manage(seated))).json()[
        "seats"
    ] == seated["seats"]
    got = (await client.get(res_url(standing["reference"]), headers=manage(standing))).json()
    assert got["ga"] == {"section": "F", "count": 3}
    # Row 1 keeps only runs of 3 around the reserved middle: four together go to row 2.
    again = await hold(client, eid, "u3", count=4)
    assert again.json()["seats"] == ["A-2-4", "A-2-5", "A-2-6", "A-2-7"]
    assert (await services.auditor.audit(eid)).ok


def res_url(reference: str) -> str:
    return f"/v1/reservations/{quote(reference, safe='')}"


def manage(reservation: dict[str, Any]) -> dict[str, str]:
    return {"Manage-Token": reservation["manage_token"]}


async def test_manage_page_shows_map_seats_and_standing(client: Client) -> None:
    eid = (await make_map(client, SMALL_MAP))["id"]
    seated = await confirm(client, eid, (await hold(client, eid, count=2)).json())
    standing = await confirm(client, eid, (await hold(client, eid, count=3, section="F")).json())
    page = await client.get(
        f"/manage/{quote(seated['reference'], safe='')}", params={"token": seated["manage_token"]}
    )
    assert page.status_code == 200 and "A-1-5, A-1-6" in page.text
    page = await client.get(
        f"/manage/{quote(standing['reference'], safe='')}",
        params={"token": standing["manage_token"]},
    )
    assert page.status_code == 200 and "3 in F" in page.text
