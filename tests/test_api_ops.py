"""HTTP contract, end to end: health, readiness, metrics, OpenAPI, audit, Redis down."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from redis.asyncio import Redis

from tests.conftest import MakeClient
from tests.helpers import (
    ADMIN,
    Client,
    assert_problem,
    assert_refused_unchanged,
    hold_http,
    new_hold,
    new_reservation,
    new_venue,
    restaurant_body,
    slot_tomorrow,
)

# -- operations -------------------------------------------------------------------------------


async def test_health_and_ready(client: Client) -> None:
    health = await client.get("/health")
    assert health.status_code == 200
    ready = await client.get("/ready")
    assert ready.status_code == 200


async def test_metrics_are_prometheus_text(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,))
    await new_reservation(client, rid)
    assert_problem(await hold_http(client, rid, "u2", table="T1"), 409, "unit_unavailable")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE holdsvc_holds_total counter" in text
    assert 'holdsvc_holds_total{kind="restaurant",replayed="false"} 1.0' in text
    assert 'holdsvc_holds_refused_total{code="unit_unavailable",kind="restaurant"} 1.0' in text
    assert 'holdsvc_confirms_total{kind="restaurant"} 1.0' in text
    assert "holdsvc_requests_total{" in text
    assert "holdsvc_request_seconds_bucket{" in text


API_PATHS = {
    "/v1/restaurants": {"get", "post"},
    "/v1/restaurants/{rid}": {"get", "patch"},
    "/v1/restaurants/{rid}/tables": {"get", "post"},
    "/v1/restaurants/{rid}/slots": {"get", "post"},
    "/v1/restaurants/{rid}/slots/{slot}": {"get"},
    "/v1/restaurants/{rid}/availability": {"get"},
    "/v1/restaurants/{rid}/holds": {"post"},
    "/v1/restaurants/{rid}/holds/{hold_id}": {"get", "delete"},
    "/v1/restaurants/{rid}/holds/{hold_id}/refresh": {"post"},
    "/v1/restaurants/{rid}/holds/{hold_id}/confirm": {"post"},
    "/v1/restaurants/{rid}/reservations": {"get"},
    "/v1/reservations": {"get"},
    "/v1/reservations/{reference}": {"get", "delete"},
    "/health": {"get"},
    "/ready": {"get"},
    "/metrics": {"get"},
    "/v1/restaurants/{rid}/audit": {"get"},
}


async def test_openapi_lists_every_contract_path(client: Client) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    paths: dict[str, dict[str, Any]] = response.json()["paths"]
    for path, methods in API_PATHS.items():
        assert path in paths, f"{path} missing from the OpenAPI document"
        assert methods <= paths[path].keys(), (path, sorted(paths[path]))


async def test_restaurant_audit(client: Client, redis: Redis) -> None:
    rid = await new_venue(client, capacities=(2, 4))
    await new_hold(client, rid, "u1", table="T1")
    kept = await new_reservation(client, rid, "u2", table="T2")
    cancelled = await new_reservation(client, rid, "u3", slot=slot_tomorrow(12))
    cancel = await client.delete(f"/v1/reservations/{cancelled['reference']}", headers=ADMIN)
    assert cancel.status_code == 200
    assert kept["status"] == "confirmed"
    await assert_refused_unchanged(
        redis,
        {
            "no-token": partial(client.get, f"/v1/restaurants/{rid}/audit"),
            "wrong-token": partial(
                client.get,
                f"/v1/restaurants/{rid}/audit",
                headers={"Authorization": "Bearer nope"},
            ),
        },
        401,
        "unauthorized",
    )
    assert_problem(
        await client.get("/v1/restaurants/NOSUCH/audit", headers=ADMIN), 404, "not_found"
    )
    response = await client.get(f"/v1/restaurants/{rid}/audit", headers=ADMIN)
    assert response.status_code == 200
    report = response.json()
    assert report["ok"] is True
    assert report["violations"] == []


async def test_redis_down_is_503_but_health_stays_up(make_client: MakeClient) -> None:
    async with make_client(redis_url="redis://127.0.0.1:1/0", redis_timeout_seconds=0.5) as client:
        assert (await client.get("/health")).status_code == 200
        assert_problem(await client.get("/ready"), 503, "unavailable")
        body = {"user_id": "u1", "slot": slot_tomorrow(), "party_size": 2}
        assert_problem(
            await client.post("/v1/restaurants/ABCDEF/holds", json=body), 503, "unavailable"
        )
        assert_problem(await client.get("/v1/restaurants"), 503, "unavailable")
        assert_problem(
            await client.post("/v1/restaurants", json=restaurant_body(), headers=ADMIN),
            503,
            "unavailable",
        )


@contextmanager
def silent_redis() -> Iterator[str]:
    """A TCP port that accepts connections (the kernel does) and never answers: a Redis that
    does not answer in time."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


async def test_metrics_count_the_503_a_timed_out_redis_gave_not_500(
    make_client: MakeClient,
) -> None:
    """Requests answered 503 because Redis did not answer in time are counted as 503, on every
    path: the hold fast path, the rate limit in front of it, and an ordinary route."""
    body = {"user_id": "u1", "slot": slot_tomorrow(), "party_size": 2}
    with silent_redis() as url:
        for limit in (0, 5):
            overrides = {"redis_url": url, "redis_timeout_seconds": 0.3}
            async with make_client(rate_limit_per_minute=limit, **overrides) as client:
                hold = await client.post("/v1/restaurants/ABCDEF/holds", json=body)
                assert_problem(hold, 503, "unavailable")
                assert "Retry-After" in hold.headers
                assert_problem(await client.get("/v1/restaurants/ABCDEF"), 503, "unavailable")
                text = (await client.get("/metrics")).text
            counted = {
                line.split(" ")[0]
                for line in text.splitlines()
                if line.startswith("holdsvc_requests_total{")
            }
            assert (
                'holdsvc_requests_total{method="POST",route="/v1/restaurants/{rid}/holds",'
                'status="503"}' in counted
            ), counted
            assert (
                'holdsvc_requests_total{method="GET",route="/v1/restaurants/{rid}",'
                'status="503"}' in counted
            ), counted
            assert not [line for line in counted if 'status="500"' in line], counted
