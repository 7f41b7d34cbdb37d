"""The change feed: every kind in order, resume with nothing lost or repeated, expiry by
several sweepers, streams that end cleanly, and a reset instead of a silent gap."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from holdsvc.metrics import Metrics
from holdsvc.services import Services
from holdsvc.settings import Settings
from holdsvc.sweeper import Sweeper
from holdsvc.venues import VenueKind
from tests.cluster import both_backends, connected_clients
from tests.helpers import ADMIN, lapse, make_restaurant, place, slot_tomorrow, tomorrow
from tests.serverproc import ServerProcess

# Every test here runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends

Client = AsyncTestClient[Any]
JSON = {**ADMIN, "Accept": "application/json"}


async def page(client: Client, path: str, **params: Any) -> dict[str, Any]:
    answer = await client.get(path, headers=JSON, params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_every_kind_in_order_across_a_whole_lifecycle(
    client: Client, services: Services
) -> None:
    rid = await make_restaurant(services, capacities=(2, 2, 2))
    path = f"/v1/restaurants/{rid}/changes"
    assert await page(client, path) == {"changes": [], "last_id": None}
    a = await place(services, rid, "a")
    await services.holds.refresh(rid, "restaurant", a.id, a.token)  # type: ignore[arg-type]
    await services.holds.release(rid, "restaurant", a.id, a.token)  # type: ignore[arg-type]
    b = await place(services, rid, "b")
    await lapse(services, rid, b.id)
    await services.sweeper.sweep_once()
    c = await place(services, rid, "c")
    confirm = await client.post(
        f"/v1/restaurants/{rid}/holds/{c.id}/confirm",
        json={"name": "C", "phone": "+12125550100"},
        headers={"Hold-Token": str(c.token)},
    )
    ref = confirm.json()["reference"]
    manage = {"Manage-Token": confirm.json()["manage_token"]}
    await client.patch(f"/v1/reservations/{ref}", json={"notes": "window"}, headers=manage)
    await client.delete(f"/v1/reservations/{ref}", headers=manage)
    body = await page(client, path)
    kinds = [change["event"] for change in body["changes"]]
    assert kinds == [
        "held",
        "refreshed",
        "released",
        "held",
        "expired",
        "held",
        "confirmed",
        "changed",
        "cancelled",
    ]
    assert body["last_id"] == body["changes"][-1]["id"]
    ids = [change["id"] for change in body["changes"]]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    first = body["changes"][0]
    assert first["user_id"] == "a" and first["hold_id"] == a.id and first["reference"] is None
    assert first["cells"] == [{"slot": slot_tomorrow(), "unit": "T1"}]
    assert first["at"].endswith("+00:00")
    assert {c["reference"] for c in body["changes"][6:]} == {ref}
    # Paging: after the 4th entry, two at a time, resumes exactly.
    second = await page(client, path, since=ids[3], limit=2)
    assert [c["id"] for c in second["changes"]] == ids[4:6] and second["last_id"] == ids[5]
    caught_up = await page(client, path, since=ids[-1])
    assert caught_up == {"changes": [], "last_id": ids[-1]}


async def test_feed_requires_admin_and_a_valid_position(client: Client, services: Services) -> None:
    rid = await make_restaurant(services)
    path = f"/v1/restaurants/{rid}/changes"
    assert (await client.get(path, headers={"Accept": "application/json"})).status_code == 401
    bad = await client.get(path, headers=JSON, params={"since": "yesterday"})
    assert bad.status_code == 400 and bad.json()["code"] == "validation_error"
    assert (await client.get("/v1/restaurants/NOSUCH/changes", headers=JSON)).status_code == 404
    assert (await client.get(f"/v1/events/{rid}/changes", headers=JSON)).status_code == 404


async def test_several_sweepers_expire_each_hold_exactly_once(
    services: Services, settings: Settings
) -> None:
    rid = await make_restaurant(services, capacities=(2,) * 10, days=3)
    holds = []
    for day in range(3):
        for n in range(10):
            hold = await place(services, rid, f"user{day}-{n}", slot=f"{tomorrow()}T1{day}:00")
            holds.append(hold)
    for hold in holds:
        await lapse(services, rid, hold.id)
    sweepers = [
        Sweeper(services.redis, services.sweeper._keys, services.scripts, Metrics(), batch=7)
        for _ in range(4)
    ]
    counts = await asyncio.gather(*(s.sweep_once() for s in sweepers))
    assert sum(counts) == 30
    entries = await services.redis.xrange(f"hs:{{{rid}}}:feed")
    expired = [fields["hold"] for _, fields in entries if fields["event"] == "expired"]
    assert sorted(expired) == sorted(h.id for h in holds)


async def test_position_trimmed_away_gets_a_reset(services: Services, settings: Settings) -> None:
    small = Services.build(
        services.redis, settings.model_copy(update={"feed_maxlen": 100}), Metrics()
    )
    rid = await make_restaurant(small, capacities=(2,))
    first = await place(small, rid)
    for _ in range(350):
        await small.holds.refresh(rid, "restaurant", first.id, first.token)  # type: ignore[arg-type]
    oldest = (await services.redis.xrange(f"hs:{{{rid}}}:feed", count=1))[0][0]
    assert oldest != "0-1"
    page_ = await small.feed.page(rid, VenueKind.RESTAURANT, "1-0", 10)
    assert page_.reset and page_.changes == []
    fresh = await small.feed.page(rid, VenueKind.RESTAURANT, oldest, 10)
    assert not fresh.reset and len(fresh.changes) == 10


# -- live streams through a real server ---------------------------------------------------------


@pytest.fixture(scope="module")
def server(redis_url: str) -> Iterator[ServerProcess]:
    env = {"HOLDSVC_SSE_HEARTBEAT_SECONDS": "0.5", "HOLDSVC_SSE_MAX_STREAMS": "2"}
    with ServerProcess(redis_url, workers=1, env=env) as running:
        yield running


@pytest.fixture
async def http(server: ServerProcess, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


async def live_venue(http: httpx.AsyncClient, server: ServerProcess) -> tuple[str, dict[str, str]]:
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    body = {
        "name": "Live",
        "phone": "+12125550100",
        "timezone": "UTC",
        "opens": "10:00",
        "closes": "22:00",
    }
    rid = (await http.post("/v1/restaurants", json=body, headers=admin)).json()["id"]
    await http.post(
        f"/v1/restaurants/{rid}/tables", json={"tables": [{"capacity": 2}] * 5}, headers=admin
    )
    await http.post(
        f"/v1/restaurants/{rid}/slots", json={"from": tomorrow(), "to": tomorrow()}, headers=admin
    )
    return str(rid), admin


async def read_events(response: httpx.Response, wanted: int) -> list[dict[str, str]]:
    """Parse SSE messages until ``wanted`` data-carrying events arrived."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in current:
                events.append(current)
                if len(events) == wanted:
                    return events
            current = {}
            continue
        field, _, value = line.partition(": ")
        if field in ("id", "event", "data"):
            current[field] = value
    return events


async def hold_some(http: httpx.AsyncClient, rid: str, users: list[str]) -> None:
    for user in users:
        answer = await http.post(
            f"/v1/restaurants/{rid}/holds",
            json={"user_id": user, "slot": slot_tomorrow(), "party_size": 2},
        )
        assert answer.status_code == 201


async def open_streams(http: httpx.AsyncClient) -> float:
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith("holdsvc_open_streams "):
            return float(line.split()[1])
    raise AssertionError("no holdsvc_open_streams gauge")


@pytest.mark.slow
async def test_resume_after_disconnect_nothing_lost_nothing_repeated(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid, admin = await live_venue(http, server)
    path = f"/v1/restaurants/{rid}/changes"
    await hold_some(http, rid, ["a", "b"])
    async with http.stream("GET", path, headers=admin) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        seen = await read_events(stream, 2)
    assert [json.loads(e["data"])["user_id"] for e in seen] == ["a", "b"]
    await hold_some(http, rid, ["c", "d"])  # while nobody listens
    async with http.stream(
        "GET", path, headers={**admin, "Last-Event-ID": seen[-1]["id"]}
    ) as stream:
        reader = asyncio.create_task(read_events(stream, 3))
        await asyncio.sleep(0.3)
        await hold_some(http, rid, ["e"])  # live, while listening
        resumed = await asyncio.wait_for(reader, 10)
    assert [json.loads(e["data"])["user_id"] for e in resumed] == ["c", "d", "e"]
    assert all(e["event"] == "held" for e in resumed)
    # ?since= works the same way.
    async with http.stream(
        "GET", path, headers=admin, params={"since": resumed[0]["id"]}
    ) as stream:
        tail = await read_events(stream, 2)
    assert [e["id"] for e in tail] == [e["id"] for e in resumed[1:]]


@pytest.mark.slow
async def test_client_leaving_mid_stream_leaves_nothing_behind(
    http: httpx.AsyncClient, server: ServerProcess, redis: Redis, redis_backend: str
) -> None:
    rid, admin = await live_venue(http, server)
    path = f"/v1/restaurants/{rid}/changes"
    await hold_some(http, rid, ["a"])
    async with http.stream("GET", path, headers=admin), http.stream("GET", path, headers=admin):
        # (Reading a line iterator only partly would close it: poll the gauge instead.)
        for _ in range(50):
            if await open_streams(http) == 2:
                break
            await asyncio.sleep(0.1)
        assert await open_streams(http) == 2
        full = await http.get(path, headers=admin)
        assert full.status_code == 503 and full.json()["code"] == "unavailable"
    for _ in range(50):
        if await open_streams(http) == 0:
            break
        await asyncio.sleep(0.1)
    assert await open_streams(http) == 0
    clients = await connected_clients(redis)  # (every primary of a cluster)
    if redis_backend == "cluster":
        # A cluster node's pool hands its connections out first in, first out, so one whose
        # XREAD answered at once (entries were waiting) may sit idle, its last command an
        # XREAD: only a read still blocked would be left behind.
        assert not [c for c in clients if c.get("cmd") == "xread" and "b" in c.get("flags", "")]
    else:
        assert not [c for c in clients if c.get("cmd") == "xread"]
    async with http.stream("GET", path, headers=admin) as again:
        assert len(await read_events(again, 1)) == 1


async def test_since_now_gives_the_current_position(client: Client, services: Services) -> None:
    rid = await make_restaurant(services)
    path = f"/v1/restaurants/{rid}/changes"
    assert await page(client, path, since="$") == {"changes": [], "last_id": None}
    first = await place(services, rid, "a")
    now = await page(client, path, since="$")
    assert now["changes"] == [] and now["last_id"] is not None
    await services.holds.release(rid, VenueKind.RESTAURANT, first.id, str(first.token))
    after = await page(client, path, since=now["last_id"])
    assert [c["event"] for c in after["changes"]] == ["released"]
