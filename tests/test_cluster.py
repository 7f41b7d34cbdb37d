"""holdsvc on a Redis Cluster of 3 primaries and 3 replicas (real processes on loopback).

The API suites run here too (tests/test_api_*.py and others use `both_backends`); this module
covers what only a cluster has: scripts on every primary, venues spread over the primaries,
a WAIT routed to the primary that owns the venue, and a primary killed mid-load.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from litestar.testing import AsyncTestClient

from holdsvc.app import create_app
from holdsvc.connection import connect_redis
from holdsvc.keys import Keys
from holdsvc.metrics import Metrics
from holdsvc.models import ConfirmInput
from holdsvc.services import Services
from holdsvc.settings import Settings
from holdsvc.venues import VenueKind
from tests.cluster import LocalCluster, wait_for
from tests.helpers import (
    ADMIN,
    GUEST,
    assert_problem,
    make_restaurant,
    new_hold,
    new_reservation,
    new_venue,
    place,
    slot_tomorrow,
)
from tests.loadgen import load_venue, run_load
from tests.serverproc import ServerProcess
from tests.test_crash import HOLD_SECONDS, verify, wait_ready

pytestmark = pytest.mark.cluster
V = Keys("hs")


@pytest.fixture
async def cluster_services(
    cluster_settings: Settings, redis_cluster: LocalCluster
) -> AsyncIterator[Services]:
    """The service layer on the emptied cluster, scripts loaded, no sweeper."""
    client = connect_redis(cluster_settings)
    await client.flushall()
    built = Services.build(client, cluster_settings, Metrics())
    await built.scripts.load()
    try:
        yield built
    finally:
        await client.aclose()


def script_flags(cluster: LocalCluster, shas: list[str]) -> dict[int, list[int]]:
    """SCRIPT EXISTS of every primary, asked of each node directly."""
    flags: dict[int, list[int]] = {}
    for port in cluster.primaries():
        with cluster.client(port) as node:
            flags[port] = list(node.execute_command("SCRIPT", "EXISTS", *shas))
    return flags


def flush_scripts(cluster: LocalCluster, ports: list[int]) -> None:
    for port in ports:
        with cluster.client(port) as node:
            node.execute_command("SCRIPT", "FLUSH")


async def test_scripts_load_on_every_primary(
    cluster_services: Services, redis_cluster: LocalCluster
) -> None:
    shas = list(cluster_services.scripts.shas.values())
    primaries = redis_cluster.primaries()
    assert len(primaries) == 3
    flush_scripts(redis_cluster, primaries)
    assert not await cluster_services.scripts.loaded()
    await cluster_services.scripts.load()
    assert script_flags(redis_cluster, shas) == {port: [1] * len(shas) for port in primaries}
    assert await cluster_services.scripts.loaded()
    # One primary that lost its cache (a promoted replica) is enough to say "not loaded".
    flush_scripts(redis_cluster, primaries[1:2])
    assert not await cluster_services.scripts.loaded()
    assert await cluster_services.ready()  # loads them again
    assert script_flags(redis_cluster, shas) == {port: [1] * len(shas) for port in primaries}


async def test_noscript_reloads_and_retries_on_every_primary(
    cluster_services: Services, redis_cluster: LocalCluster
) -> None:
    rids = [await make_restaurant(cluster_services) for _ in range(6)]
    flush_scripts(redis_cluster, redis_cluster.primaries())
    for rid in rids:  # each EVALSHA meets NOSCRIPT (or a reloaded cache) and succeeds
        hold = await place(cluster_services, rid)
        assert hold.table_id == "T1"
    assert await cluster_services.scripts.loaded()


async def test_venues_spread_over_the_primaries_each_in_one_slot(
    cluster_services: Services, redis_cluster: LocalCluster
) -> None:
    redis = cluster_services.redis
    rids: list[str] = []
    owners: set[int] = set()
    # Random ids: 12 of them miss a primary 2 % of the time. Make venues until every primary
    # owns one (at least 12; 60 all on two primaries has odds of about 1e-10).
    while len(rids) < 12 or (len(owners) < 3 and len(rids) < 60):
        rid = await make_restaurant(cluster_services)
        rids.append(rid)
        hold = await place(cluster_services, rid, "u1")
        await cluster_services.holds.confirm(
            rid,
            VenueKind.RESTAURANT,
            hold.id,
            str(hold.token),
            ConfirmInput(**GUEST),
        )
        venue_keys = [key async for key in redis.scan_iter(match=f"hs:{{{rid}}}:*")]
        assert len(venue_keys) > 8
        assert len({await redis.cluster_keyslot(key) for key in venue_keys}) == 1
        owners.add(redis_cluster.primary_of(V.of(rid).venue))
        assert (await cluster_services.auditor.audit(rid, "restaurant")).ok
    assert len(owners) == 3, f"{len(rids)} random venue ids should land on every primary"
    # The phone search merges the per-venue indexes of every primary.
    found = (await cluster_services.reservations.by_phone(GUEST["phone"])).items
    assert sorted(r.venue_id for r in found) == sorted(rids)
    # The sweeper's cross-venue pipelines reach every primary.
    assert await cluster_services.sweeper.sweep_once() == 0


async def test_confirm_waits_for_the_replica_of_its_primary(
    cluster_settings: Settings, redis_cluster: LocalCluster, cluster_services: Services
) -> None:
    durable = cluster_settings.model_copy(update={"confirm_wait_replicas": 1})
    async with AsyncTestClient(app=create_app(durable)) as client:
        rid = await new_venue(client)
        made = await new_reservation(client, rid)
        # Acknowledged by the replica: there already, read from the replica itself.
        replica = redis_cluster.replica_of(redis_cluster.primary_of(V.of(rid).venue))
        with redis_cluster.client(replica) as node:
            node.execute_command("READONLY")
            stored = node.hgetall(V.of(rid).reservation(made["reference"]))
        assert stored["status"] == "confirmed"
        cancelled = await client.delete(f"/v1/reservations/{made['reference']}", headers=ADMIN)
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"


async def test_more_replicas_than_exist_answer_503_with_the_reference(
    cluster_settings: Settings, cluster_services: Services
) -> None:
    greedy = cluster_settings.model_copy(
        update={"confirm_wait_replicas": 2, "confirm_wait_timeout_ms": 50}
    )
    async with AsyncTestClient(app=create_app(greedy)) as client:
        rid = await new_venue(client)
        hold = await new_hold(client, rid)
        answer = await client.post(
            f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm",
            json=GUEST,
            headers={"Hold-Token": hold["token"]},
        )
        reference = assert_problem(answer, 503, "unavailable")["reference"]
        stored = await client.get(f"/v1/reservations/{reference}", headers=ADMIN)
        assert stored.status_code == 200 and stored.json()["status"] == "confirmed"


async def test_rate_limiter_counts_in_the_cluster(
    cluster_settings: Settings, cluster_services: Services
) -> None:
    limited = cluster_settings.model_copy(update={"rate_limit_per_minute": 2})
    async with AsyncTestClient(app=create_app(limited)) as client:  # shuts down cleanly too
        rid = await new_venue(client, capacities=(2, 2, 2))
        await new_hold(client, rid, "a")
        await new_hold(client, rid, "b")
        third = await client.post(
            f"/v1/restaurants/{rid}/holds",
            json={"user_id": "c", "slot": slot_tomorrow(), "party_size": 2},
        )
        assert_problem(third, 429, "rate_limited")


def client_list(cluster: LocalCluster, port: int) -> list[str]:
    with cluster.client(port) as node:
        return list(node.execute_command("CLIENT", "LIST").splitlines())


async def test_an_acl_user_with_any_password_reaches_every_primary(
    cluster_settings: Settings, cluster_services: Services, redis_cluster: LocalCluster
) -> None:
    """A cluster URL with an ACL user and a password that needs percent-encoding: the pooled
    client and the per-primary pipelines both log in as that user."""
    user, password = "hs-app", "p@ss:w/rd%"
    for port in redis_cluster.ports:
        with redis_cluster.client(port) as node:
            node.execute_command("ACL", "SETUSER", user, "on", f">{password}", "~*", "&*", "+@all")
    url = cluster_settings.redis_url or ""
    as_user = url.replace("://", f"://{user}:{quote(password, safe='')}@", 1)
    try:
        settings = cluster_settings.model_copy(update={"redis_url": as_user})
        async with AsyncTestClient(app=create_app(settings)) as client:
            rid = await new_venue(client)
            await new_hold(client, rid, "a")
            # While the app runs: the hold's script went through a pipeline logged in as the user.
            assert any(
                f"user={user}" in line and "cmd=evalsha" in line
                for port in redis_cluster.primaries()
                for line in client_list(redis_cluster, port)
            )
    finally:
        for port in redis_cluster.ports:
            with redis_cluster.client(port) as node:
                node.execute_command("ACL", "DELUSER", user)


# -- a primary killed mid-load ---------------------------------------------------------------------


def role_of(cluster: LocalCluster, port: int) -> str:
    return str(cluster.roles().get(port))


@pytest.mark.crash
@pytest.mark.slow
def test_failover_mid_load_keeps_every_acknowledged_confirm(tmp_path: Path) -> None:
    """Kill the primary of a busy venue: its replica takes over, every confirm and cancel that
    was acknowledged (WAIT 1) is there, the audit is clean, and the app recovers by itself."""
    env = {"HOLDSVC_CONFIRM_WAIT_REPLICAS": "1", "HOLDSVC_REDIS_TIMEOUT_SECONDS": "2"}
    with (
        LocalCluster(tmp_path / "cluster", node_timeout_ms=1500) as cluster,
        ServerProcess(cluster.url, workers=1, env=env) as server,
    ):
        admin = {"Authorization": f"Bearer {server.admin_token}"}

        async def scenario() -> dict[str, Any]:
            rid, slots = await load_venue(
                server.url, admin, name="Failover", tables=160, hold_seconds=HOLD_SECONDS
            )
            primary = cluster.primary_of(V.of(rid).venue)
            replica = cluster.replica_of(primary)
            load = asyncio.create_task(run_load(server.url, rid, slots, users=12, seconds=12))
            await asyncio.sleep(2.5)
            cluster.node(primary).kill()
            killed = time.monotonic()
            promoted = partial(role_of, cluster, replica)
            await asyncio.to_thread(wait_for, "a takeover", lambda: promoted() == "master", 20)
            took_over = time.monotonic()
            # Until a replica is back, WAIT 1 cannot succeed: confirms answer 503 + reference.
            await asyncio.sleep(1.5)
            alone = time.monotonic()
            # The old primary comes back as a replica of the new one, while the load goes on.
            await asyncio.to_thread(cluster.node(primary).start)
            await asyncio.to_thread(cluster.wait_ok, 30)
            rejoined = time.monotonic()
            outcome = await load
            ready = await wait_ready(server.url)
            result = await verify(server.url, admin, rid, outcome)
            return {
                "outcome": outcome,
                "took_over": took_over - killed,
                "acks_without_replica": sum(
                    1 for t in outcome.confirm_times if took_over <= t <= alone
                ),
                "rejoined": rejoined - killed,
                "acks_after_rejoin": sum(1 for t in outcome.confirm_times if t > rejoined),
                "acks_before_kill": sum(1 for t in outcome.confirm_times if t < killed),
                "ready": ready,
                **result,
            }

        result = asyncio.run(scenario())
        log = server.output()
    outcome = result["outcome"]
    summary = {
        "requests": outcome.requests,
        "confirmed_acks": len(outcome.confirmed),
        "cancelled_acks": len(outcome.cancelled),
        "lost": len(result["missing"]),
        "acks_before_kill": result["acks_before_kill"],
        "acks_after_rejoin": result["acks_after_rejoin"],
        "acks_without_replica": result["acks_without_replica"],
        "replica_took_over_after_s": round(result["took_over"], 2),
        "old_primary_rejoined_after_s": round(result["rejoined"], 2),
        "statuses": dict(outcome.statuses),
        "transport_errors": outcome.transport_errors,
    }
    print(f"\ncluster failover: {summary}")
    assert result["acks_before_kill"] > 5 and result["acks_after_rejoin"] > 5
    assert result["acks_without_replica"] == 0  # WAIT 1 had no replica: 503s, no 201s
    assert outcome.statuses[503] > 0
    assert result["ready"] < 5  # /ready is 200 again, no restart of the app
    assert result["missing"] == [] and result["wrong"] == []
    assert result["audit"]["ok"], result["audit"]["violations"]
    assert result["stuck_held"] == []
    assert outcome.statuses[500] == 0, log[log.find("unhandled error") - 200 :][:4000]


async def test_script_calls_pipeline_to_the_primary_of_each_venue(
    cluster_settings: Settings, redis_cluster: LocalCluster
) -> None:
    """The hot path keeps its pipelining on a cluster: one connection per primary, chosen by
    the venue's slot, and the holds land where the slot lives."""
    async with AsyncTestClient(app=create_app(cluster_settings)) as client:
        services: Services = client.app.state.services
        assert services.scripts.pipelined
        rids = [await new_venue(client) for _ in range(9)]
        for rid in rids:
            assert (await new_hold(client, rid))["table_id"] == "T1"
        primaries = {redis_cluster.primary_of(V.of(rid).venue) for rid in rids}
        pipelines = services.scripts._pipeline
        assert len(pipelines._connections) == len(primaries) >= 2  # type: ignore[union-attr]
