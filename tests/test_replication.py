"""Durable confirms on one node: HOLDSVC_CONFIRM_WAIT_REPLICAS asks for replicas that a lone
server does not have, so confirm, cancel and a staff booking answer 503 ``unavailable`` with
the reservation's reference, and the reservation is there all the same."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from holdsvc.connection import split_cluster_url
from tests.conftest import MakeClient
from tests.helpers import (
    ADMIN,
    GUEST,
    Client,
    assert_problem,
    new_hold,
    new_reservation,
    new_venue,
    slot_tomorrow,
)


@pytest.fixture
async def durable(make_client: MakeClient, redis: Redis) -> AsyncIterator[Client]:
    """The app asking for 1 replica per confirm, on a server that has none."""
    if int((await redis.info("replication"))["connected_slaves"]):
        pytest.skip("the test server has replicas")
    async with make_client(confirm_wait_replicas=1, confirm_wait_timeout_ms=50) as client:
        yield client


def not_replicated(response: Any) -> str:
    """The 503 problem of a write no replica acknowledged; its reference."""
    body = assert_problem(response, 503, "unavailable")
    assert isinstance(body["reference"], str), body
    assert body["reference"] in body["detail"]
    return str(body["reference"])


async def test_confirm_without_a_replica_answers_503_with_the_reference(
    durable: Client,
) -> None:
    rid = await new_venue(durable)
    hold = await new_hold(durable, rid)
    path = f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm"
    token = {"Hold-Token": hold["token"]}
    refused = await durable.post(path, json=GUEST, headers=token)
    reference = not_replicated(refused)
    # The manage token's only copy comes with the 503: the guest can still manage it.
    manage = {"Manage-Token": refused.json()["manage_token"]}
    assert (await durable.get(f"/v1/reservations/{reference}", headers=manage)).status_code == 200
    stored = await durable.get(f"/v1/reservations/{reference}", headers=ADMIN)
    assert stored.status_code == 200
    assert stored.json()["status"] == "confirmed"
    assert stored.json()["table_id"] == hold["table_id"]
    # The client checks by confirming again: the same reservation (nothing new to wait for).
    again = await durable.post(path, json=GUEST, headers=token)
    assert again.status_code == 200
    assert again.json()["reference"] == reference


async def test_cancel_and_staff_booking_without_a_replica_answer_503_with_the_reference(
    client: Client, durable: Client
) -> None:
    rid = await new_venue(client, capacities=(2, 2))
    made = await new_reservation(client, rid)  # the plain app: no wait
    cancel = await durable.delete(
        f"/v1/reservations/{made['reference']}", headers={"Manage-Token": made["manage_token"]}
    )
    assert not_replicated(cancel) == made["reference"]
    stored = await durable.get(f"/v1/reservations/{made['reference']}", headers=ADMIN)
    assert stored.json()["status"] == "cancelled"
    # Cancelling again changes nothing, so there is nothing to wait for.
    again = await durable.delete(f"/v1/reservations/{made['reference']}", headers=ADMIN)
    assert again.status_code == 200

    booking = await durable.post(
        f"/v1/restaurants/{rid}/reservations",
        json={"slot": slot_tomorrow(), "party_size": 2, **GUEST},
        headers=ADMIN,
    )
    reference = not_replicated(booking)
    stored = await durable.get(f"/v1/reservations/{reference}", headers=ADMIN)
    assert stored.status_code == 200 and stored.json()["status"] == "confirmed"


async def test_refusals_do_not_wait(durable: Client) -> None:
    rid = await new_venue(durable)
    hold = await new_hold(durable, rid)
    wrong = await durable.post(
        f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm",
        json=GUEST,
        headers={"Hold-Token": "not-the-token"},
    )
    assert_problem(wrong, 403, "forbidden")


def test_cluster_urls_name_every_startup_node() -> None:
    assert split_cluster_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001/0") == (
        "redis://10.0.0.1:7000/0",
        [("10.0.0.2", 7001)],
    )
    assert split_cluster_url("rediss+cluster://u:p@a:1,b:2,c:3?ssl_cert_reqs=none") == (
        "rediss://u:p@a:1?ssl_cert_reqs=none",
        [("b", 2), ("c", 3)],
    )
    assert split_cluster_url("redis://one:6379") == ("redis://one:6379", [])
