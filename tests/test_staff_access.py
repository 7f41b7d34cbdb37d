"""Staff tokens and roles: the README's table of who may call what, walked against a live app.

For every row that needs a token, each of an admin, a manager and a host of the venue, a host
of another venue, a revoked token and no token calls it; the answer must be what the row says
(2xx, 401 or 403), and a refused call must change nothing in Redis.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from holdsvc.cli import main
from tests.cluster import both_backends
from tests.conftest import MakeClient
from tests.helpers import (
    ADMIN,
    GUEST,
    Client,
    assert_problem,
    new_reservation,
    new_venue,
    restaurant_body,
    snapshot_keys,
    tomorrow,
)

redis_backend = both_backends

README = Path(__file__).parents[1] / "README.md"
ROW = re.compile(r"^\| (GET|POST|PATCH|DELETE) \| (/v1/[^ |]+) \| ([^|]+) \|$", re.MULTILINE)
ACTORS = ("admin", "manager", "host", "other_host", "revoked", "none")


def table_rows() -> list[tuple[str, str, str]]:
    """(method, path, who) of every row of README's table that needs a token."""
    text = README.read_text()
    section = text[text.index("## Who may call what") :]
    section = section[: section.index("\n## ", 3)]
    rows = [(m, p, who.strip()) for m, p, who in ROW.findall(section)]
    return [row for row in rows if row[2] not in ("anyone", "hold token")]


@dataclass
class Venue:
    """A venue with a manager, a host and a revoked token, and the tokens of another venue."""

    id: str
    tokens: dict[str, dict[str, str]]
    reference: str = ""
    manage_token: str = ""


async def staff_token(client: Client, base: str, role: str, headers: dict[str, str]) -> str:
    created = await client.post(
        f"{base}/staff-tokens", json={"name": f"{role} desk", "role": role}, headers=headers
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"id", "name", "role", "token", "created_at"}
    return str(body["token"])


async def tokens_for(client: Client, base: str, other_base: str) -> dict[str, dict[str, str]]:
    """Authorization headers of each actor for the venue at ``base``."""
    revoked = await client.post(
        f"{base}/staff-tokens", json={"name": "gone", "role": "manager"}, headers=ADMIN
    )
    gone = await client.delete(f"{base}/staff-tokens/{revoked.json()['id']}", headers=ADMIN)
    assert gone.status_code == 204

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    return {
        "admin": ADMIN,
        "manager": bearer(await staff_token(client, base, "manager", ADMIN)),
        "host": bearer(await staff_token(client, base, "host", ADMIN)),
        "other_host": bearer(await staff_token(client, other_base, "host", ADMIN)),
        "revoked": bearer(revoked.json()["token"]),
        "none": {},
    }


@dataclass
class World:
    client: Client
    restaurant: Venue
    event: Venue
    hours: Any  # an iterator of free slots for staff bookings

    def venue_of(self, path: str) -> Venue:
        return self.event if "{eid}" in path else self.restaurant

    async def fresh_reservation(self) -> tuple[str, str]:
        made = await new_reservation(self.client, self.restaurant.id, slot=next(self.hours))
        return made["reference"], made["manage_token"]

    async def prepare(
        self, method: str, path: str, body: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any] | None]:
        """The URL and body of one call of a row: a fresh object where the call consumes one
        (made before the call, so a refused call can be shown to change nothing)."""
        client = self.client
        venue = self.venue_of(path)
        url = path.replace("{rid}", self.restaurant.id).replace("{eid}", self.event.id)
        if url.endswith("/staff-tokens/{id}"):
            base = url.rsplit("/", 1)[0]
            made = await client.post(base, json={"name": "x", "role": "host"}, headers=ADMIN)
            url = f"{base}/{made.json()['id']}"
        if "/webhooks/{id}" in url:
            base, _, rest = url.partition("/webhooks/{id}")
            made = await client.post(f"{base}/webhooks", json=WEBHOOK, headers=ADMIN)
            url = f"{base}/webhooks/{made.json()['id']}{rest}"
        if "{reference}" in url:
            reference = venue.reference
            if method == "DELETE":
                reference, _ = await self.fresh_reservation()
            url = url.replace("{reference}", reference)
        if url.endswith("/combinations/{id}"):
            base = url.rsplit("/", 1)[0]
            made = await client.post(
                base, json={"tables": ["T1", "T2"], "capacity": 4}, headers=ADMIN
            )
            url = f"{base}/{made.json()['id']}"
        if url.endswith("/closures/{from}"):
            day = "2031-04-01"
            base = url.rsplit("/", 1)[0]
            await client.post(base, json={"from": day, "to": day}, headers=ADMIN)
            url = f"{base}/{day}"
        if url.endswith("/tables/{tid}"):
            # A fresh table each call: a removal consumes it, and nothing is booked on it.
            base = url.rsplit("/", 1)[0]
            made = await client.post(base, json={"tables": [{"capacity": 2}]}, headers=ADMIN)
            url = f"{base}/{made.json()['tables'][0]['id']}"
        if url.endswith("/slots?from=&to="):
            url = url.replace("from=&to=", "from=2031-02-01&to=2031-02-01")
        if url.endswith("/waitlist?slot="):
            url += next(self.hours)
        if url == "/v1/reservations?phone=":
            url = "/v1/reservations?phone=%2B12125550100"
        if url.endswith("/reservations") and method == "POST":
            body = {"slot": next(self.hours), "party_size": 2, **GUEST}
        return url, body


WEBHOOK = {"url": "https://93.184.215.14/hook"}  # a public address (no private ones here)
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/restaurants/{rid}/webhooks"): WEBHOOK,
    ("POST", "/v1/events/{eid}/webhooks"): WEBHOOK,
    ("POST", "/v1/webhooks"): WEBHOOK,
    ("PATCH", "/v1/restaurants/{rid}/webhooks/{id}"): {"enabled": True},
    ("PATCH", "/v1/events/{eid}/webhooks/{id}"): {"enabled": True},
    ("PATCH", "/v1/webhooks/{id}"): {"enabled": True},
    ("POST", "/v1/restaurants"): restaurant_body(),
    ("POST", "/v1/events"): {
        "name": "Gala",
        "starts_at": "2031-06-01T19:00:00+00:00",
        "total_seats": 10,
    },
    ("POST", "/v1/restaurants/{rid}/tables"): {"tables": [{"capacity": 2}]},
    ("POST", "/v1/restaurants/{rid}/slots"): {"from": "2031-01-01", "to": "2031-01-01"},
    ("POST", "/v1/restaurants/{rid}/staff-tokens"): {"name": "Front", "role": "host"},
    ("POST", "/v1/restaurants/{rid}/closures"): {"from": "2031-03-01", "to": "2031-03-01"},
    ("POST", "/v1/events/{eid}/staff-tokens"): {"name": "Door", "role": "host"},
    ("POST", "/v1/restaurants/{rid}/combinations"): {"tables": ["T1", "T2"], "capacity": 4},
    ("PATCH", "/v1/reservations/{reference}"): {"notes": "window seat"},
    ("PATCH", "/v1/restaurants/{rid}/tables/{tid}"): {"label": "Window", "capacity": 4},
}


def expected(who: str, actor: str) -> int:
    """The status class an actor gets on a row: 2 (2xx), 401 or 403."""
    if actor == "admin":
        return 2
    if actor in ("revoked",):
        return 401
    if actor == "none":
        return 403 if who.startswith("manage token") else 401
    if actor == "other_host":
        return 403
    if who == "admin":
        return 403
    if who == "manager":
        return 2 if actor == "manager" else 403
    return 2  # host rows: a host or a manager of the venue


@pytest.fixture
async def client(make_client: MakeClient) -> AsyncIterator[Client]:
    """The app with no delivery pass after the first: a refused call must leave Redis as it
    was, and webhooks that earlier rows made would otherwise be tried meanwhile."""
    async with make_client(webhook_poll_seconds=3600) as test_client:
        yield test_client


@pytest.fixture
async def world(client: Client) -> World:
    rid = await new_venue(client, capacities=(2,) * 12)
    other = await new_venue(client)
    event = await client.post("/v1/events", json=BODIES[("POST", "/v1/events")], headers=ADMIN)
    eid = event.json()["id"]
    other_event = await client.post(
        "/v1/events", json=BODIES[("POST", "/v1/events")], headers=ADMIN
    )
    await client.post(
        f"/v1/restaurants/{rid}/slots", json={"from": tomorrow(), "to": tomorrow()}, headers=ADMIN
    )
    hours = (f"{tomorrow()}T{h:02d}:00" for h in itertools.cycle(range(10, 22)))
    restaurant = Venue(
        rid, await tokens_for(client, f"/v1/restaurants/{rid}", f"/v1/restaurants/{other}")
    )
    made = await new_reservation(client, rid, slot=next(hours))
    restaurant.reference, restaurant.manage_token = made["reference"], made["manage_token"]
    evt = Venue(
        eid,
        await tokens_for(client, f"/v1/events/{eid}", f"/v1/events/{other_event.json()['id']}"),
    )
    return World(client, restaurant, evt, hours)


def test_the_table_names_every_route_that_needs_a_token() -> None:
    rows = table_rows()
    assert len(rows) >= 20
    assert {who for _, _, who in rows} <= {
        "admin",
        "manager",
        "host",
        "host (`bookings_open` alone), manager",
        "manage token, host",
        "manage token (guest fields), host",
    }


async def test_every_row_answers_each_actor_as_the_table_says(world: World, redis: Redis) -> None:
    checked = 0
    for method, path, who in table_rows():
        body = BODIES.get((method, path))
        if who.startswith("host (`bookings_open` alone)"):
            # Two calls in one row: what a host may PATCH, and what only a manager may.
            cases: list[tuple[dict[str, Any] | None, str]] = [
                ({"bookings_open": True}, "host"),
                ({"name": "Renamed"}, "manager"),
            ]
        else:
            cases = [(body, who)]
        for payload, rule in cases:
            headers_of = world.venue_of(path).tokens
            for actor in ACTORS:
                want = expected(rule, actor)
                url, sent = await world.prepare(method, path, payload)
                before = await snapshot_keys(redis) if want != 2 else None
                # The feed as one JSON page (its event stream would not end).
                accept = {"Accept": "application/json"} if url.endswith("/changes") else {}
                answer = await world.client.request(
                    method, url, json=sent, headers={**headers_of[actor], **accept}
                )
                label = f"{method} {path} {payload} as {actor}"
                if want == 2:
                    assert 200 <= answer.status_code < 300, f"{label}: {answer.text}"
                else:
                    code = "unauthorized" if want == 401 else "forbidden"
                    assert_problem(answer, want, code)
                    assert await snapshot_keys(redis) == before, f"{label} changed something"
                checked += 1
    assert checked >= 120


async def test_a_guest_with_the_manage_token_still_manages_it(world: World) -> None:
    venue = world.restaurant
    guest = {"Manage-Token": venue.manage_token}
    path = f"/v1/reservations/{venue.reference}"
    assert (await world.client.get(path, headers=guest)).status_code == 200
    assert (await world.client.patch(path, json={"notes": "hi"}, headers=guest)).status_code == 200
    # Staff fields stay staff-only for the guest; a host may set them.
    assert_problem(
        await world.client.patch(path, json={"tags": ["vip"]}, headers=guest), 403, "forbidden"
    )
    host = venue.tokens["host"]
    tagged = await world.client.patch(path, json={"tags": ["vip"]}, headers=host)
    assert tagged.status_code == 200 and tagged.json()["tags"] == ["vip"]


async def test_tokens_are_listed_without_secrets_and_revoked_at_once(
    world: World, redis: Redis
) -> None:
    client, rid = world.client, world.restaurant.id
    manager = world.restaurant.tokens["manager"]
    listed = (await client.get(f"/v1/restaurants/{rid}/staff-tokens", headers=manager)).json()
    tokens = listed["staff_tokens"]
    assert tokens and all(
        set(t) == {"id", "name", "role", "created_at", "last_used_at"} for t in tokens
    )
    used = [t for t in tokens if t["role"] == "manager" and t["last_used_at"]]
    assert used, "the manager's own token shows when it was used"
    # Nothing in Redis is the token itself: only digests.
    secret = manager["Authorization"].split()[1]
    dump = await snapshot_keys(redis)
    assert secret.encode() not in repr(dump).encode()
    host = world.restaurant.tokens["host"]
    assert (
        await client.get(f"/v1/restaurants/{rid}/reservations", headers=host)
    ).status_code == 200
    again = (await client.get(f"/v1/restaurants/{rid}/staff-tokens", headers=manager)).json()
    host_id = next(
        t["id"] for t in again["staff_tokens"] if t["role"] == "host" and t["last_used_at"]
    )
    gone = await client.delete(f"/v1/restaurants/{rid}/staff-tokens/{host_id}", headers=manager)
    assert gone.status_code == 204
    assert_problem(
        await client.get(f"/v1/restaurants/{rid}/reservations", headers=host), 401, "unauthorized"
    )
    assert_problem(
        await client.delete(f"/v1/restaurants/{rid}/staff-tokens/{host_id}", headers=manager),
        404,
        "not_found",
    )


async def test_staff_token_bodies_are_validated(world: World) -> None:
    base = f"/v1/restaurants/{world.restaurant.id}/staff-tokens"
    for body in (
        {"name": "", "role": "host"},
        {"name": "x", "role": "owner"},
        {"name": "x" * 81, "role": "host"},
        {"role": "host"},
    ):
        assert_problem(
            await world.client.post(base, json=body, headers=ADMIN), 400, "validation_error"
        )


async def test_feed_entries_say_who_acted(world: World) -> None:
    client, rid = world.client, world.restaurant.id
    made = await client.post(
        f"/v1/restaurants/{rid}/staff-tokens",
        json={"name": "Phone desk", "role": "host"},
        headers=ADMIN,
    )
    desk = {"Authorization": f"Bearer {made.json()['token']}"}
    booked = await client.post(
        f"/v1/restaurants/{rid}/reservations",
        json={"slot": next(world.hours), "party_size": 2, **GUEST},
        headers=desk,
    )
    assert booked.status_code == 201, booked.text
    reference = booked.json()["reference"]
    await client.patch(f"/v1/reservations/{reference}", json={"notes": "x"}, headers=ADMIN)
    guest_ref, guest_token = await world.fresh_reservation()
    await client.delete(f"/v1/reservations/{guest_ref}", headers={"Manage-Token": guest_token})
    page = await client.get(
        f"/v1/restaurants/{rid}/changes?since=0&limit=1000",
        headers={**desk, "Accept": "application/json"},
    )
    changes = page.json()["changes"]
    assert all("actor" in change for change in changes)
    by_ref = {(c["reference"], c["event"]): c["actor"] for c in changes}
    assert by_ref[(reference, "confirmed")] == made.json()["id"]
    assert by_ref[(reference, "changed")] == "admin"
    assert by_ref[(guest_ref, "confirmed")] is None
    assert by_ref[(guest_ref, "cancelled")] is None
    assert all(c["actor"] is None for c in changes if c["event"] == "held")


async def test_the_command_line_creates_lists_and_revokes_tokens(
    world: World,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, rid = world.client, world.restaurant.id
    monkeypatch.setenv("HOLDSVC_REDIS_URL", redis_url)
    assert (
        await asyncio.to_thread(
            main, ["staff-token", "create", rid, "Night desk", "--role", "manager"]
        )
        == 0
    )
    out = capsys.readouterr()
    token = out.out.strip()
    token_id = out.err.split("\t")[0]
    bearer = {"Authorization": f"Bearer {token}"}
    listed = await client.get(f"/v1/restaurants/{rid}/staff-tokens", headers=bearer)
    assert listed.status_code == 200
    assert await asyncio.to_thread(main, ["staff-token", "list", rid]) == 0
    assert "Night desk" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["staff-token", "revoke", rid, token_id]) == 0
    assert_problem(
        await client.get(f"/v1/restaurants/{rid}/staff-tokens", headers=bearer), 401, "unauthorized"
    )
    assert await asyncio.to_thread(main, ["staff-token", "revoke", rid, token_id]) == 1
