"""The expiry sweeper through the app and the service: it runs on its own, expires what
nobody touches, leaves alone what was refreshed, and the cap does not wait for it."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from holdsvc.keys import Keys
from holdsvc.services import Services
from tests.cluster import both_backends
from tests.conftest import MakeClient
from tests.helpers import (
    ADMIN,
    GUEST,
    Client,
    assert_problem,
    feed_events,
    hold_http,
    lapse,
    new_venue,
    slot_tomorrow,
)

# Every test here runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends
KEYS = Keys("hs")


async def changes(client: Client, rid: str) -> list[dict[str, Any]]:
    """The venue's feed, as the JSON page shows it."""
    page = await client.get(
        f"/v1/restaurants/{rid}/changes", headers={**ADMIN, "Accept": "application/json"}
    )
    assert page.status_code == 200, page.text
    found: list[dict[str, Any]] = page.json()["changes"]
    return found


async def test_the_app_expires_a_hold_nobody_touches(make_client: MakeClient, redis: Redis) -> None:
    """No request ever names the hold again: the app's own sweeper must end it, with its
    'expired' entry, and its record must be on its way out of Redis."""
    async with make_client(hold_tombstone_seconds=60) as client:
        rid = await new_venue(client, capacities=(2,), hold_seconds=1, max_hold_seconds=1)
        held = await hold_http(client, rid)
        assert held.status_code == 201
        hold_id = held.json()["id"]
        keys = KEYS.of(rid)
        for _ in range(50):
            await asyncio.sleep(0.1)
            events = [c["event"] for c in await changes(client, rid)]
            if "expired" in events:
                break
        assert events == ["held", "expired"]
        expired = (await changes(client, rid))[-1]
        assert expired["hold_id"] == hold_id and expired["user_id"] == "u1"
    assert await redis.hget(keys.hold(hold_id), "status") == b"expired"
    assert 0 < await redis.pttl(keys.hold(hold_id)) <= 60_000
    assert await redis.zcard(keys.holds) == 0
    assert await redis.exists(keys.cells(slot_tomorrow()), keys.user("u1")) == 0


async def test_a_lapsed_hold_frees_its_user_s_cap_before_any_sweep(
    make_client: MakeClient, services: Services
) -> None:
    """The cap counts live holds only: a lapsed one is pruned by the hold script itself, with
    no sweeper pass in between (this app's sweeper waits a minute between passes)."""
    async with make_client(sweep_interval_seconds=60) as client:
        rid = await new_venue(client, capacities=(2, 2), max_holds_per_user=1)
        first = await hold_http(client, rid, "u1")
        assert first.status_code == 201
        later = slot_tomorrow(20)
        assert_problem(await hold_http(client, rid, "u1", slot=later), 409, "hold_limit_reached")
        await lapse(services, rid, first.json()["id"])
        again = await hold_http(client, rid, "u1", slot=later)
        assert again.status_code == 201, again.text
        # Nothing swept the first hold: the script's own pruning let the second one in.
        assert await feed_events(services, rid) == ["held", "held"]


async def test_a_sweep_that_picked_a_refreshed_hold_leaves_it_live(
    client: Client, services: Services
) -> None:
    """A sweeper may pick a hold that is live by the time its script runs (refreshed since,
    or judged by another node's clock): the script re-checks, and the hold goes on."""
    rid = await new_venue(client, capacities=(2,))
    held = (await hold_http(client, rid)).json()
    token = {"Hold-Token": held["token"]}
    url = f"/v1/restaurants/{rid}/holds/{held['id']}"
    assert (await client.post(f"{url}/refresh", headers=token)).status_code == 200
    assert await services.sweeper.expire_holds(rid, [held["id"]]) == 0
    assert (await client.get(url, headers=token)).json()["status"] == "held"
    confirmed = await client.post(f"{url}/confirm", json=GUEST, headers=token)
    assert confirmed.status_code == 201, confirmed.text
    assert await feed_events(services, rid) == ["held", "refreshed", "confirmed"]
