"""Webhooks (Standard Webhooks): subscriptions, signatures checked by the `standardwebhooks`
package, order under retries, giving up and resuming, trimmed feeds, the SSRF guard, and a
worker killed mid-retry in a real 2-worker server. Every receiver is a real HTTP server on
127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from holdsvc.keys import Keys
from tests.cluster import both_backends
from tests.conftest import MakeClient
from tests.helpers import ADMIN, assert_problem, new_reservation, new_venue, slot_tomorrow
from tests.receiver import Received, Receiver, child_pids, pid_with_local_port, until
from tests.serverproc import ServerProcess

redis_backend = both_backends

FAST = {
    "webhook_allow_private": True,
    "webhook_retry_schedule": "0.2,0.2,0.2",
    "webhook_timeout_seconds": 2.0,
    "webhook_poll_seconds": 0.05,
}
HOURS = [slot_tomorrow(hour) for hour in (11, 12, 13, 14, 15, 16, 17, 18)]


@pytest.fixture
async def client(make_client: MakeClient) -> AsyncIterator[AsyncTestClient[Any]]:
    """The whole app with fast retries and private receivers allowed."""
    async with make_client(**FAST) as test_client:
        yield test_client


async def subscribe(client: Any, rid: str, url: str, **body: Any) -> dict[str, Any]:
    made = await client.post(
        f"/v1/restaurants/{rid}/webhooks", json={"url": url, **body}, headers=ADMIN
    )
    assert made.status_code == 201, made.text
    hook: dict[str, Any] = made.json()
    return hook


async def feed(client: Any, rid: str) -> list[dict[str, Any]]:
    page = await client.get(
        f"/v1/restaurants/{rid}/changes",
        headers={**ADMIN, "Accept": "application/json"},
        params={"limit": 1000},
    )
    assert page.status_code == 200, page.text
    changes: list[dict[str, Any]] = page.json()["changes"]
    return changes


def verify(secret: str, received: Received) -> Any:
    """The payload, if the signature is good (the package raises otherwise)."""
    headers = {k: v for k, v in received.headers.items() if k.startswith("webhook-")}
    return Verifier(secret).verify(received.body, headers)


async def test_create_list_delete_and_the_secret_shown_once(client: Any) -> None:
    rid = await new_venue(client)
    async with Receiver() as receiver:
        hook = await subscribe(client, rid, receiver.url, description="POS")
        assert set(hook) >= {"id", "url", "events", "enabled", "secret", "created_at"}
        assert hook["enabled"] is True and hook["url"] == receiver.url
        assert hook["events"] == [
            "held",
            "refreshed",
            "released",
            "expired",
            "confirmed",
            "cancelled",
            "changed",
        ]
        assert hook["secret"].startswith("whsec_")
        assert len(base64.b64decode(hook["secret"].removeprefix("whsec_"))) >= 24
        listed = await client.get(f"/v1/restaurants/{rid}/webhooks", headers=ADMIN)
        assert listed.status_code == 200
        (shown,) = listed.json()["webhooks"]
        assert shown["id"] == hook["id"] and "secret" not in shown
        assert hook["secret"] not in listed.text
        log = await client.get(
            f"/v1/restaurants/{rid}/webhooks/{hook['id']}/deliveries", headers=ADMIN
        )
        assert log.status_code == 200 and log.json() == {"deliveries": []}
        gone = await client.delete(f"/v1/restaurants/{rid}/webhooks/{hook['id']}", headers=ADMIN)
        assert gone.status_code == 204
        again = await client.delete(f"/v1/restaurants/{rid}/webhooks/{hook['id']}", headers=ADMIN)
        assert_problem(again, 404, "not_found")
        listed = await client.get(f"/v1/restaurants/{rid}/webhooks", headers=ADMIN)
        assert listed.json() == {"webhooks": []}


async def test_entries_arrive_signed_in_feed_order_as_the_feed_shows_them(client: Any) -> None:
    rid = await new_venue(client)
    async with Receiver() as receiver:
        hook = await subscribe(client, rid, receiver.url)
        made = await new_reservation(client, rid, slot=HOURS[0])
        cancelled = await client.delete(
            f"/v1/reservations/{made['reference']}", headers={"Manage-Token": made["manage_token"]}
        )
        assert cancelled.status_code == 200
        await until(lambda: len(receiver.delivered()) == 3, what="three deliveries")
        changes = await feed(client, rid)
        assert [c["event"] for c in changes] == ["held", "confirmed", "cancelled"]
        for change, received in zip(changes, receiver.delivered(), strict=True):
            payload = verify(hook["secret"], received)
            assert payload["type"] == change["event"]
            assert payload["timestamp"] == change["at"]
            assert payload["data"] == {**change, "venue_id": rid}
            assert received.message_id == f"msg_{rid}_{change['id']}"
            assert int(received.headers["webhook-timestamp"]) > 0
        log = await client.get(
            f"/v1/restaurants/{rid}/webhooks/{hook['id']}/deliveries", headers=ADMIN
        )
        rows = log.json()["deliveries"]
        assert [r["event"] for r in rows] == ["cancelled", "confirmed", "held"]  # newest first
        assert all(r["attempt"] == 1 and r["status_code"] == 200 for r in rows)
        assert all(r["error"] is None for r in rows)


async def test_a_tampered_body_fails_verification(client: Any) -> None:
    rid = await new_venue(client)
    async with Receiver() as receiver:
        hook = await subscribe(client, rid, receiver.url, events=["held"])
        await new_reservation(client, rid, slot=HOURS[0])
        await until(lambda: len(receiver.delivered()) == 1)
        received = receiver.delivered()[0]
        received.body = received.body.replace(b'"held"', b'"xheld"', 1)
        with pytest.raises(WebhookVerificationError):
            verify(hook["secret"], received)


async def test_only_the_subscribed_events_are_sent(client: Any) -> None:
    rid = await new_venue(client)
    async with Receiver() as receiver:
        await subscribe(client, rid, receiver.url, events=["confirmed"])
        for hour in HOURS[:3]:
            await new_reservation(client, rid, slot=hour)
        await until(lambda: len(receiver.delivered()) == 3)
        await asyncio.sleep(0.3)
        assert [r.json["type"] for r in receiver.requests] == ["confirmed"] * 3


async def test_order_holds_under_retries(client: Any) -> None:
    """The first entry fails twice: nothing after it is sent before it succeeds, and every
    entry then follows in feed order, each with the same webhook-id on every try."""
    tries: dict[str, int] = {}

    async def flaky(received: Received) -> int:
        tries[received.message_id] = tries.get(received.message_id, 0) + 1
        return 500 if len(tries) == 1 and tries[received.message_id] <= 2 else 200

    rid = await new_venue(client)
    async with Receiver(flaky) as receiver:
        hook = await subscribe(client, rid, receiver.url)
        for hour in HOURS[:3]:
            await new_reservation(client, rid, slot=hour)
        await until(lambda: len(receiver.delivered()) == 6, what="six entries delivered")
        changes = await feed(client, rid)
        ids = [f"msg_{rid}_{c['id']}" for c in changes]
        assert [r.message_id for r in receiver.delivered()] == ids
        # Every request in arrival order: the first entry three times, then the rest once each.
        assert [r.message_id for r in receiver.requests] == [ids[0]] * 3 + ids[1:]
        log = (
            await client.get(
                f"/v1/restaurants/{rid}/webhooks/{hook['id']}/deliveries", headers=ADMIN
            )
        ).json()["deliveries"]
        first = [row for row in log if row["webhook_id"] == ids[0]]
        assert [(r["attempt"], r["status_code"]) for r in reversed(first)] == [
            (1, 500),
            (2, 500),
            (3, 200),
        ]
        assert first[-1]["error"] == "nope"  # an excerpt of the answer
        metrics = (await client.get("/metrics")).text
        assert 'holdsvc_webhook_attempts_total{result="ok"} 6.0' in metrics
        assert 'holdsvc_webhook_attempts_total{result="failed"} 2.0' in metrics
        assert 'holdsvc_webhook_failures_total{cause="status"} 2.0' in metrics
        lag = f'holdsvc_feed_lag_entries{{consumer="webhook",venue="{rid}"}} 0.0'
        for _ in range(100):
            if lag in (await client.get("/metrics")).text:
                break
            await asyncio.sleep(0.05)
        assert lag in (await client.get("/metrics")).text


async def test_410_disables_and_resume_goes_on_after_the_entry_given_up(client: Any) -> None:
    answers = iter([410])

    async def gone_once(_: Received) -> int:
        return next(answers, 200)

    rid = await new_venue(client)
    async with Receiver(gone_once) as receiver:
        hook = await subscribe(client, rid, receiver.url, events=["confirmed"])
        base = f"/v1/restaurants/{rid}/webhooks"
        first = await new_reservation(client, rid, slot=HOURS[0])
        await until(lambda: len(receiver.requests) == 1)
        await wait_disabled(client, base)
        listed = (await client.get(base, headers=ADMIN)).json()["webhooks"][0]
        assert listed["enabled"] is False and "410" in listed["disabled_reason"]
        second = await new_reservation(client, rid, slot=HOURS[1])
        await asyncio.sleep(0.4)
        assert len(receiver.requests) == 1  # disabled: nothing more is sent
        resumed = await client.patch(f"{base}/{hook['id']}", json={"enabled": True}, headers=ADMIN)
        assert resumed.status_code == 200 and resumed.json()["enabled"] is True
        await until(lambda: len(receiver.delivered()) == 1)
        await asyncio.sleep(0.3)
        refs = [r.json["data"]["reference"] for r in receiver.requests]
        assert refs == [first["reference"], second["reference"]]


async def test_an_exhausted_schedule_disables(client: Any) -> None:
    async def down(_: Received) -> int:
        return 503

    rid = await new_venue(client)
    async with Receiver(down) as receiver:
        hook = await subscribe(client, rid, receiver.url, events=["held"])
        await new_reservation(client, rid, slot=HOURS[0])
        base = f"/v1/restaurants/{rid}/webhooks"
        await until(lambda: len(receiver.requests) == 4, what="1 try + 3 retries")
        await wait_disabled(client, base)
        await asyncio.sleep(0.5)
        assert len(receiver.requests) == 4
        (listed,) = (await client.get(base, headers=ADMIN)).json()["webhooks"]
        assert "retry schedule" in listed["disabled_reason"]
        log = await client.get(f"{base}/{hook['id']}/deliveries", headers=ADMIN)
        assert [r["attempt"] for r in log.json()["deliveries"]] == [4, 3, 2, 1]


async def wait_disabled(client: Any, base: str) -> None:
    for _ in range(200):
        hooks = (await client.get(base, headers=ADMIN)).json()["webhooks"]
        if hooks and not hooks[0]["enabled"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the webhook was not disabled")


async def test_a_trimmed_feed_is_reported_as_a_reset(client: Any, redis: Redis) -> None:
    rid = await new_venue(client)
    async with Receiver() as receiver:
        hook = await subscribe(client, rid, receiver.url, events=["confirmed"])
        base = f"/v1/restaurants/{rid}/webhooks/{hook['id']}"
        # The sender has taken up its position (where it stands before anything is lost).
        for _ in range(200):
            if await redis.hexists(Keys().of(rid).consumers, f"wh:{hook['id']}"):
                break
            await asyncio.sleep(0.05)
        await client.patch(base, json={"enabled": False}, headers=ADMIN)
        await new_reservation(client, rid, slot=HOURS[0])
        # The feed loses the unsent entry (as MAXLEN trimming would).
        await redis.xtrim(Keys().of(rid).feed, maxlen=0)
        later = await new_reservation(client, rid, slot=HOURS[1])
        await client.patch(base, json={"enabled": True}, headers=ADMIN)
        await until(lambda: len(receiver.delivered()) == 1)
        assert receiver.delivered()[0].json["data"]["reference"] == later["reference"]
        rows = (await client.get(f"{base}/deliveries", headers=ADMIN)).json()["deliveries"]
        assert [r["event"] for r in rows] == ["confirmed", "reset"]
        assert "trimmed" in rows[1]["error"]


async def test_an_admin_webhook_hears_every_venue(client: Any) -> None:
    first, second = await new_venue(client), await new_venue(client)
    async with Receiver() as receiver:
        made = await client.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["confirmed"]}, headers=ADMIN
        )
        assert made.status_code == 201, made.text
        hook = made.json()
        await new_reservation(client, first, slot=HOURS[0])
        await new_reservation(client, second, slot=HOURS[0])
        await until(lambda: len(receiver.delivered()) == 2)
        venues = {verify(hook["secret"], r)["data"]["venue_id"] for r in receiver.delivered()}
        assert venues == {first, second}
        log = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=ADMIN)
        assert len(log.json()["deliveries"]) == 2
        listed = await client.get("/v1/webhooks", headers=ADMIN)
        assert [h["id"] for h in listed.json()["webhooks"]] == [hook["id"]]
        # A venue's list is the venue's own.
        own = await client.get(f"/v1/restaurants/{first}/webhooks", headers=ADMIN)
        assert own.json() == {"webhooks": []}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"url": "ftp://example.com/x"}, 400),
        ({"url": "not a url"}, 400),
        ({"url": "http://127.0.0.1:9/x"}, 400),  # loopback, private not allowed
        ({"url": "http://10.1.2.3/x"}, 400),
        ({"url": "http://169.254.169.254/latest"}, 400),
        ({"url": "http://[::1]/x"}, 400),
        ({"url": "http://localhost/x"}, 400),
        ({"url": 5}, 400),
        ({"url": "https://93.184.215.14/x", "events": ["nope"]}, 400),
        ({"url": "https://93.184.215.14/x", "events": []}, 400),
        ({"url": "https://93.184.215.14/x", "extra": 1}, 400),
        ({}, 400),
    ],
)
async def test_bad_webhooks_are_refused(
    make_client: MakeClient, redis: Redis, body: dict[str, Any], status: int
) -> None:
    async with make_client() as client:
        rid = await new_venue(client)
        before = await redis.dbsize()
        made = await client.post(f"/v1/restaurants/{rid}/webhooks", json=body, headers=ADMIN)
        assert_problem(made, status, "validation_error")
        assert await redis.dbsize() == before


async def test_a_public_address_is_accepted_and_unknown_ids_are_404(
    make_client: MakeClient,
) -> None:
    async with make_client() as same:
        rid = await new_venue(same)
        made = await same.post(
            f"/v1/restaurants/{rid}/webhooks",
            json={"url": "https://93.184.215.14/hook"},
            headers=ADMIN,
        )
        assert made.status_code == 201
        for method in ("get", "delete"):
            answer = await getattr(same, method)(
                f"/v1/restaurants/{rid}/webhooks/wh_nope/deliveries"
                if method == "get"
                else f"/v1/restaurants/{rid}/webhooks/wh_nope",
                headers=ADMIN,
            )
            assert_problem(answer, 404, "not_found")
        patched = await same.patch(
            f"/v1/restaurants/{rid}/webhooks/{made.json()['id']}",
            json={"enabled": "yes"},
            headers=ADMIN,
        )
        assert_problem(patched, 400, "validation_error")
        unknown_venue = await same.get("/v1/restaurants/ZZZZZZZZ/webhooks", headers=ADMIN)
        assert unknown_venue.status_code in (403, 404)


@pytest.mark.race
@pytest.mark.crash
@pytest.mark.slow
async def test_killing_the_delivering_worker_mid_retry_loses_and_reorders_nothing(
    redis_url: str, redis: Redis
) -> None:
    """Two workers. Each entry's first try fails; while the first entry is being retried,
    the worker that sends it is killed with SIGKILL. The other worker takes over: every
    entry arrives, in feed order."""
    env = {
        "HOLDSVC_WEBHOOK_ALLOW_PRIVATE": "true",
        "HOLDSVC_WEBHOOK_RETRY_SCHEDULE": "0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3",
        "HOLDSVC_WEBHOOK_TIMEOUT_SECONDS": "2",
        "HOLDSVC_WEBHOOK_POLL_SECONDS": "0.05",
        "HOLDSVC_ADMIN_TOKENS": "test-admin",  # the helpers' ADMIN
    }
    victim: list[int] = []
    tries: dict[str, int] = {}
    with ServerProcess(redis_url, workers=2, env=env, startup_timeout=90) as server:
        assert server.pid is not None
        workers = child_pids(server.pid)

        async def answer(received: Received) -> int:
            tries[received.message_id] = tries.get(received.message_id, 0) + 1
            if tries[received.message_id] == 2 and not victim:
                # The second try of the first entry: kill whoever sends it, before answering.
                pid = pid_with_local_port(received.peer_port, child_pids(server.pid or 0))
                assert pid is not None, "the sending worker was not found"
                victim.append(pid)
                os.kill(pid, signal.SIGKILL)
                await asyncio.sleep(0.2)
                return 500
            return 500 if tries[received.message_id] == 1 else 200

        headers = ADMIN
        async with (
            Receiver(answer) as receiver,
            httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        ):
            client: Any = http  # the helpers take any client with .post/.get
            rid = await new_venue(client)
            made = await client.post(
                f"/v1/restaurants/{rid}/webhooks",
                json={"url": receiver.url, "events": ["held", "confirmed"]},
                headers=headers,
            )
            assert made.status_code == 201, made.text
            for hour in HOURS[:4]:
                await new_reservation(client, rid, slot=hour)
            await until(lambda: len(receiver.delivered()) == 8, timeout=60, what="8 entries")
            page = await client.get(
                f"/v1/restaurants/{rid}/changes",
                headers={**headers, "Accept": "application/json"},
            )
            ids = [f"msg_{rid}_{c['id']}" for c in page.json()["changes"]]
            assert [r.message_id for r in receiver.delivered()] == ids
            assert victim and victim[0] in workers
            # In order at every moment: no entry was tried before the one before it succeeded.
            seen: list[str] = []
            for request in receiver.requests:
                if request.message_id not in seen:
                    seen.append(request.message_id)
            assert seen == ids
