"""A Redis that would evict keys is not ready; a full one answers 503, never 500; and a hold
whose record vanished anyway (evicted, deleted) is ended by the sweeper, cells and all."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from holdsvc.keys import Keys
from holdsvc.services import Services
from holdsvc.venues import VenueKind
from tests.cluster import both_backends
from tests.conftest import MakeClient
from tests.helpers import (
    ADMIN,
    Client,
    assert_problem,
    feed_events,
    hold_http,
    lapse,
    make_restaurant,
    new_venue,
    place,
    restaurant_body,
    slot_tomorrow,
    snapshot_keys,
)

# Every test here runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends
KEYS = Keys("hs")


async def last_primary(redis: Any) -> Redis:
    """A plain client of the one server, or of the last primary of a cluster."""
    if isinstance(redis, RedisCluster):
        await redis.initialize()
        node = redis.get_primaries()[-1]
        return Redis(host=node.host, port=int(node.port), decode_responses=True)
    kwargs = redis.connection_pool.connection_kwargs
    return Redis(host=str(kwargs["host"]), port=int(kwargs["port"]), decode_responses=True)


@asynccontextmanager
async def config_on_one_primary(redis: Any, **changes: str) -> AsyncIterator[None]:
    """CONFIG SET on one primary only (every primary must be checked), restored after."""
    node = await last_primary(redis)
    before = {name: str((await node.config_get(name))[name]) for name in changes}
    try:
        for name, value in changes.items():
            await node.config_set(name, value)
        yield
    finally:
        # maxmemory first: a restored policy must not meet a still-full server.
        for name in sorted(before, key=lambda n: n != "maxmemory"):
            await node.config_set(name, before[name])
        await node.aclose()


class Lines(logging.Handler):
    """Collects the records of one logger (the app's logging setup replaces the root's
    handlers, pytest's capture among them)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_ready_is_503_with_the_reason_while_redis_would_evict(
    make_client: MakeClient, redis: Any
) -> None:
    lines = Lines()
    async with make_client() as client:
        logging.getLogger("holdsvc.eviction").addHandler(lines)
        try:
            assert (await client.get("/ready")).status_code == 200
            async with config_on_one_primary(redis, **{"maxmemory-policy": "allkeys-lru"}):
                for _ in range(3):
                    answer = await client.get("/ready")
                    assert answer.status_code == 503
                    body = answer.json()
                    assert body["status"] == "not_ready"
                    assert "allkeys-lru" in body["reason"] and "noeviction" in body["reason"]
            assert (await client.get("/ready")).status_code == 200
        finally:
            logging.getLogger("holdsvc.eviction").removeHandler(lines)
    # One error line for the three probes, not one each.
    said = [(r.levelno, r.getMessage()) for r in lines.records]
    assert [level for level, _ in said] == [logging.ERROR], said
    assert "allkeys-lru" in said[0][1]


async def test_allow_eviction_accepts_a_redis_that_would_evict(
    make_client: MakeClient, redis: Any
) -> None:
    async with config_on_one_primary(redis, **{"maxmemory-policy": "volatile-lru"}):
        async with make_client(allow_eviction=True) as client:
            assert (await client.get("/ready")).status_code == 200
        async with make_client() as client:
            assert (await client.get("/ready")).status_code == 503


async def test_a_full_redis_answers_503_with_retry_after_and_writes_nothing(
    make_client: MakeClient, redis: Any, redis_backend: str
) -> None:
    """At noeviction with memory full, Redis refuses a first write: the rate limit's count
    in front of every hold (so every hold was a 500), a new venue, new tables."""
    if redis_backend == "cluster":
        pytest.skip("maxmemory is a setting of each node: one node shows it")
    async with make_client(rate_limit_per_minute=100) as client:
        rid = await new_venue(client, capacities=(2,))
        used = int((await redis.info("memory"))["used_memory"])
        before = await snapshot_keys(redis)
        full = {"maxmemory-policy": "noeviction", "maxmemory": str(used // 2)}
        async with config_on_one_primary(redis, **full):
            refused = {
                "hold": await hold_http(client, rid),
                "venue": await client.post(
                    "/v1/restaurants", json=restaurant_body(), headers=ADMIN
                ),
                "tables": await client.post(
                    f"/v1/restaurants/{rid}/tables",
                    json={"tables": [{"capacity": 2}]},
                    headers=ADMIN,
                ),
            }
            for name, answer in refused.items():
                assert_problem(answer, 503, "unavailable")
                assert int(answer.headers["Retry-After"]) >= 1, name
            assert await snapshot_keys(redis) == before
            metrics = (await client.get("/metrics")).text
            assert 'status="500"' not in metrics
        assert (await hold_http(client, rid)).status_code == 201


# -- holds whose record is gone ---------------------------------------------------------------


async def vanish(services: Services, venue: str, hold_id: str, *, index_too: bool) -> None:
    """What an eviction does: the hold's record is gone (and maybe its index entry too)."""
    keys = KEYS.of(venue)
    await services.redis.delete(keys.hold(hold_id))
    if index_too:
        await services.redis.zrem(keys.holds, hold_id)


async def assert_clean(services: Services, venue: str, slot: str) -> None:
    keys = KEYS.of(venue)
    assert await services.redis.hlen(keys.cells(slot)) == 0
    assert await services.redis.zcard(keys.held(slot)) == 0
    assert await services.redis.zcard(keys.holds) == 0
    assert await services.redis.zcard(keys.user("u1")) == 0
    report = await services.auditor.audit(venue)
    assert report.ok, report.violations


async def test_the_sweeper_frees_the_cells_of_a_hold_whose_record_is_gone(
    services: Services,
) -> None:
    venue = await make_restaurant(services, capacities=(2, 2))
    hold = await place(services, venue)
    await place(services, venue, "u2")  # another hold the sweep must leave alone
    await lapse(services, venue, hold.id)
    await vanish(services, venue, hold.id, index_too=False)
    assert await services.sweeper.sweep_once() == 1
    assert await services.sweeper.sweep_once() == 0
    keys = KEYS.of(venue)
    assert await services.redis.hkeys(keys.cells(hold.slot)) == ["T2"]
    assert await services.redis.zcard(keys.user("u1")) == 0
    assert await feed_events(services, venue) == ["held", "held", "expired"]
    last = (await services.feed.page(venue, VenueKind.RESTAURANT, None, 10)).changes[-1]
    assert (last.hold_id, last.user_id, [c.unit for c in last.cells]) == (hold.id, "u1", ["T1"])
    report = await services.auditor.audit(venue)
    assert report.ok, report.violations


async def test_a_claim_on_the_cell_of_a_vanished_hold_frees_it_and_succeeds(
    client: Client, services: Services
) -> None:
    """Record and index entry both gone: the cell named a hold nobody could end, and every
    hold on that table was a 500 (the claim asked for a sweep that found nothing to sweep)."""
    rid = await new_venue(client, capacities=(2,))
    first = await hold_http(client, rid, "u1")
    assert first.status_code == 201
    await lapse(services, rid, first.json()["id"])
    await vanish(services, rid, first.json()["id"], index_too=True)
    again = await hold_http(client, rid, "u2")
    assert again.status_code == 201, again.text
    assert again.json()["table_id"] == "T1"
    release = await client.delete(
        f"/v1/restaurants/{rid}/holds/{again.json()['id']}",
        headers={"Hold-Token": again.json()["token"]},
    )
    assert release.status_code == 204
    assert await feed_events(services, rid) == ["held", "expired", "held", "released"]
    await assert_clean(services, rid, slot_tomorrow())
