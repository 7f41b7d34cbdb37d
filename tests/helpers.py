"""Builders shared by the tests: venues with tables and slots, holds, and time travel."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import Response
from litestar.testing import AsyncTestClient

from holdsvc.booking_rules import record_slots
from holdsvc.holds import HoldRequest
from holdsvc.keys import Keys
from holdsvc.models import Hold, RestaurantInput, TableInput
from holdsvc.scripts import AnyRedis
from holdsvc.services import Services
from holdsvc.units import decode_units
from holdsvc.venues import VenueKind

ADMIN = {"Authorization": "Bearer test-admin"}


def tomorrow() -> str:
    """Tomorrow's date in UTC (every slot of it is in the future)."""
    return (datetime.now(UTC) + timedelta(days=1)).date().isoformat()


def day_after(days: int) -> str:
    """The UTC date ``days`` from today."""
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


async def make_restaurant(
    services: Services,
    *,
    capacities: tuple[int, ...] = (2, 4),
    days: int = 1,
    **rules: Any,
) -> str:
    """A UTC restaurant open 10:00-22:00 with tables and slots from tomorrow on."""
    restaurant = await services.restaurants.create(
        RestaurantInput(
            name="Test Bistro",
            phone="+1 212 555 0100",
            timezone="UTC",
            opens="10:00",
            closes="22:00",
            **rules,
        )
    )
    await services.restaurants.add_tables(
        restaurant.id, [TableInput(capacity=c) for c in capacities]
    )
    await services.restaurants.add_slots(restaurant.id, tomorrow(), day_after(days))
    return restaurant.id


def slot_tomorrow(hour: int = 19) -> str:
    """The slot id of tomorrow at ``hour``:00 UTC."""
    return f"{tomorrow()}T{hour:02d}:00"


async def place(
    services: Services,
    venue_id: str,
    user: str = "u1",
    *,
    slot: str | None = None,
    party: int = 2,
    table: str | None = None,
    key: str | None = None,
) -> Hold:
    """Place a restaurant hold through the service."""
    hold, _ = await services.holds.place(
        venue_id,
        VenueKind.RESTAURANT,
        HoldRequest(
            user_id=user,
            slot=slot or slot_tomorrow(),
            party_size=party,
            units=[table] if table else [],
            count=1,
            idempotency_key=key,
        ),
    )
    return hold


async def lapse(services: Services, venue_id: str, hold_id: str) -> None:
    """Make a live hold lapse now, as if its time had run out (rewrites every expiry)."""
    keys = Keys("hs").of(venue_id)
    redis = services.redis
    fields = await redis.hgetall(keys.hold(hold_id))
    past = 1
    for slot in record_slots(fields):
        for unit in decode_units(fields["units"]):
            await redis.hset(keys.cells(slot), unit, f"h|{hold_id}|{past}")
            await redis.zadd(keys.held(slot), {unit: past})
    await redis.hset(keys.hold(hold_id), "expires", str(past))
    await redis.zadd(keys.holds, {hold_id: past})
    await redis.zadd(keys.user(fields["user"]), {f"{hold_id}|{fields['n']}": past})


async def feed_events(services: Services, venue_id: str) -> list[str]:
    """The event names of a venue's feed, oldest first."""
    entries = await services.redis.xrange(Keys("hs").of(venue_id).feed)
    return [fields["event"] for _, fields in entries]


# -- Redis snapshots: a refused request must change nothing --------------------------------


async def snapshot_keys(redis: AnyRedis, pattern: str = "*") -> dict[object, object]:
    """Every key matching ``pattern`` with its value (and whether it expires)."""
    out: dict[object, object] = {}
    async for key in redis.scan_iter(match=pattern):
        kind = await redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        value: object
        if kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = await redis.smembers(key)
        elif kind == "stream":
            value = await redis.xrange(key)
        else:
            value = await redis.get(key)
        out[key] = (value, await redis.pttl(key) > 0)
    return out


async def snapshot(services: Services, venue_id: str) -> dict[object, object]:
    """Every key of one venue with its value, to prove a refused call changed nothing."""
    return await snapshot_keys(services.redis, f"hs:{{{venue_id}}}:*")


# -- HTTP builders for the API tests ---------------------------------------------------------

Client = AsyncTestClient[Any]
PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def problem_mismatch(response: Response, status: int, code: str) -> str | None:
    """Why ``response`` is not an ``application/problem+json`` error with this status and
    code (type, title, status, detail and code all present), or None when it is one."""
    if response.status_code != status:
        return f"status {response.status_code}, not {status}: {response.text[:300]}"
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return f"content-type {response.headers.get('content-type')!r}"
    body = response.json()
    if not isinstance(body, dict) or not body.keys() >= PROBLEM_KEYS:
        return f"not a problem document: {body!r}"
    if body["status"] != status or body["code"] != code:
        return f"status/code {body['status']}/{body['code']}, not {status}/{code}"
    if not all(isinstance(body[name], str) for name in ("type", "title", "detail")):
        return f"type, title and detail must be strings: {body!r}"
    return None


def assert_problem(response: Response, status: int, code: str) -> dict[str, Any]:
    """The response is an ``application/problem+json`` error with this status and code."""
    mismatch = problem_mismatch(response, status, code)
    assert mismatch is None, mismatch
    body: dict[str, Any] = response.json()
    return body


Send = Callable[[], Awaitable[Response]]


async def assert_refused_unchanged(
    redis: AnyRedis, cases: dict[str, Send], status: int, code: str
) -> None:
    """Send each case: every one must be this problem and leave every Redis key as it was."""
    failures: list[str] = []
    for case_id, send in cases.items():
        before = await snapshot_keys(redis)
        mismatch = problem_mismatch(await send(), status, code)
        if mismatch is not None:
            failures.append(f"{case_id}: {mismatch}")
        elif await snapshot_keys(redis) != before:
            failures.append(f"{case_id}: Redis changed")
    assert not failures, "\n".join(failures)


def restaurant_body(**overrides: object) -> dict[str, object]:
    """A valid POST /v1/restaurants body: UTC, open 10:00-22:00."""
    body: dict[str, object] = {
        "name": "Test Bistro",
        "phone": "+1 212 555 0100",
        "timezone": "UTC",
        "opens": "10:00",
        "closes": "22:00",
    }
    body.update(overrides)
    return body


async def new_venue(
    client: Client,
    *,
    capacities: tuple[int, ...] = (2, 4),
    first: str | None = None,
    last: str | None = None,
    **rules: object,
) -> str:
    """A restaurant made over HTTP, with tables T1.. and slots from tomorrow (by default)."""
    created = await client.post("/v1/restaurants", json=restaurant_body(**rules), headers=ADMIN)
    assert created.status_code == 201, created.text
    rid: str = created.json()["id"]
    if capacities:
        tables = [{"capacity": c} for c in capacities]
        added = await client.post(
            f"/v1/restaurants/{rid}/tables", json={"tables": tables}, headers=ADMIN
        )
        assert added.status_code == 201, added.text
    grid = {"from": first or tomorrow(), "to": last or first or tomorrow()}
    slots = await client.post(f"/v1/restaurants/{rid}/slots", json=grid, headers=ADMIN)
    assert slots.status_code == 201, slots.text
    return rid


async def hold_http(
    client: Client,
    rid: str,
    user: str = "u1",
    *,
    slot: str | None = None,
    party: int = 2,
    table: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """POST a restaurant hold; the raw response."""
    body: dict[str, object] = {
        "user_id": user,
        "slot": slot or slot_tomorrow(),
        "party_size": party,
    }
    if table is not None:
        body["table_id"] = table
    return await client.post(f"/v1/restaurants/{rid}/holds", json=body, headers=headers or {})


async def new_hold(client: Client, rid: str, user: str = "u1", **kwargs: Any) -> dict[str, Any]:
    """A hold that must succeed (201); its JSON, with its token."""
    response = await hold_http(client, rid, user, **kwargs)
    assert response.status_code == 201, response.text
    hold: dict[str, Any] = response.json()
    return hold


GUEST = {"name": "Ada Lovelace", "phone": "+1 (212) 555-0100", "email": "ada@example.com"}


async def new_reservation(
    client: Client,
    rid: str,
    user: str = "u1",
    *,
    guest: dict[str, str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Hold then confirm (201); the reservation JSON, with its manage token."""
    hold = await new_hold(client, rid, user, **kwargs)
    confirmed = await client.post(
        f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm",
        json=guest or GUEST,
        headers={"Hold-Token": hold["token"]},
    )
    assert confirmed.status_code == 201, confirmed.text
    reservation: dict[str, Any] = confirmed.json()
    return reservation
