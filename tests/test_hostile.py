"""Hostile input and abuse: rate limits, body size, constant-time secrets, quiet logs."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from holdsvc.app import create_app
from holdsvc.settings import Settings
from tests.conftest import MakeClient
from tests.helpers import ADMIN, tomorrow
from tests.serverproc import ServerProcess

Client = AsyncTestClient[Any]


async def venue(client: Client) -> str:
    body = {
        "name": "R",
        "phone": "+12125550100",
        "timezone": "UTC",
        "opens": "10:00",
        "closes": "22:00",
    }
    rid = str((await client.post("/v1/restaurants", json=body, headers=ADMIN)).json()["id"])
    await client.post(
        f"/v1/restaurants/{rid}/tables", json={"tables": [{"capacity": 2}] * 3}, headers=ADMIN
    )
    await client.post(
        f"/v1/restaurants/{rid}/slots", json={"from": tomorrow(), "to": tomorrow()}, headers=ADMIN
    )
    return rid


async def test_hold_endpoints_are_rate_limited_per_client(
    make_client: MakeClient, redis: Redis
) -> None:
    async with make_client(rate_limit_per_minute=5) as client:
        rid = await venue(client)
        slot = f"{tomorrow()}T19:00"
        answers = [
            await client.post(
                f"/v1/restaurants/{rid}/holds",
                json={"user_id": f"u{i}", "slot": slot, "party_size": 2},
            )
            for i in range(7)
        ]
        assert [a.status_code for a in answers[:5]].count(201) == 3  # 3 tables, then 409s
        refused = answers[5]
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "rate_limited" and "Retry-After" in refused.headers
        # Other endpoints are not limited.
        for _ in range(10):
            assert (await client.get(f"/v1/restaurants/{rid}")).status_code == 200
    # Nothing beyond the 3 holds happened.
    assert await redis.hlen(f"hs:{{{rid}}}:cells:{slot}") == 3


async def test_oversized_body_is_a_problem_and_changes_nothing(
    client: Client, redis: Redis
) -> None:
    rid = await venue(client)
    huge = {"user_id": "u", "slot": f"{tomorrow()}T19:00", "party_size": 2, "pad": "x" * 200_000}
    answer = await client.post(f"/v1/restaurants/{rid}/holds", json=huge)
    assert 400 <= answer.status_code < 500
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert await redis.exists(f"hs:{{{rid}}}:cells:{tomorrow()}T19:00") == 0


async def test_no_token_phone_or_name_in_logs(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rid = await venue(client)
    hold = (
        await client.post(
            f"/v1/restaurants/{rid}/holds",
            json={"user_id": "u", "slot": f"{tomorrow()}T19:00", "party_size": 2},
        )
    ).json()
    confirmed = (
        await client.post(
            f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm",
            json={"name": "Zelda Secretname", "phone": "+12125550142"},
            headers={"Hold-Token": hold["token"]},
        )
    ).json()
    await client.get("/v1/reservations", params={"phone": "+12125550142"}, headers=ADMIN)
    await client.get(
        f"/v1/reservations/{confirmed['reference']}", headers={"Manage-Token": "wrong"}
    )
    logged = "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith("httpx")
    )
    for secret in (hold["token"], confirmed["manage_token"], "Secretname", "5550142", "test-admin"):
        assert secret not in logged


def test_admin_tokens_are_kept_as_digests_only() -> None:
    settings = Settings(_env_file=None, admin_tokens=["plain-admin", "sha256:" + "ab" * 32])
    digests = settings.admin_token_digests()
    assert "plain-admin" not in digests and "ab" * 32 in digests
    app = create_app(settings)
    assert "plain-admin" not in repr(app.state.admin_digests)


def test_server_logs_carry_no_secrets(redis_url: str) -> None:
    """A real server at log level info: access lines name routes, never ids, tokens or phones."""
    with ServerProcess(redis_url, env={"HOLDSVC_LOG_LEVEL": "info"}) as server:
        admin = {"Authorization": f"Bearer {server.admin_token}"}
        with httpx.Client(base_url=server.url, timeout=10) as http:
            body = {
                "name": "Logs",
                "phone": "+12125550100",
                "timezone": "UTC",
                "opens": "10:00",
                "closes": "22:00",
            }
            rid = http.post("/v1/restaurants", json=body, headers=admin).json()["id"]
            http.post(
                f"/v1/restaurants/{rid}/tables", json={"tables": [{"capacity": 2}]}, headers=admin
            )
            http.post(
                f"/v1/restaurants/{rid}/slots",
                json={"from": tomorrow(), "to": tomorrow()},
                headers=admin,
            )
            hold = http.post(
                f"/v1/restaurants/{rid}/holds",
                json={"user_id": "u", "slot": f"{tomorrow()}T19:00", "party_size": 2},
            ).json()
            res = http.post(
                f"/v1/restaurants/{rid}/holds/{hold['id']}/confirm",
                json={"name": "Zelda Secretname", "phone": "+12125550142"},
                headers={"Hold-Token": hold["token"]},
            ).json()
            http.get("/v1/reservations", params={"phone": "+12125550142"}, headers=admin)
            http.get(f"/v1/reservations/{res['reference']}", params={"token": res["manage_token"]})
        # Log lines go through a queue: give the last one a moment to reach the output.
        for _ in range(50):
            if "GET /v1/reservations/{reference} 403" in server.output():
                break
            time.sleep(0.05)
        output = server.output()
    assert "GET /v1/reservations/{reference} 403" in output  # access lines are there
    for secret in (
        hold["token"],
        res["manage_token"],
        "Secretname",
        "5550142",
        server.admin_token,
        res["reference"],
    ):
        assert secret not in output


async def test_cors_is_off_unless_configured(make_client: MakeClient) -> None:
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    async with make_client() as client:
        answer = await client.get("/health", headers={"Origin": "https://shop.example"})
        assert "access-control-allow-origin" not in answer.headers
    async with make_client(cors_origins=["https://shop.example"]) as client:
        answer = await client.options("/v1/restaurants", headers=preflight)
        assert answer.headers.get("access-control-allow-origin") == "https://shop.example"
        other = await client.get("/health", headers={"Origin": "https://evil.example"})
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"
