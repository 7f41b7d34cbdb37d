"""The hot path is the one way in: guards a hold route declares run on it too, and what it
serves is the handler's own body, not a copy of it. What it does per hold stays small: no
compressor on the way, the slot's end converted once per slot, not once per hold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import tzinfo
from typing import Any

import pytest
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.compression import CompressionMiddleware
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from holdsvc import holds as holds_module
from holdsvc import slots as timegrid
from holdsvc.api.deps import provide_services
from holdsvc.api.faces import EVENTS, RESTAURANTS
from holdsvc.api.holds import hold_router
from holdsvc.api.problems import EXCEPTION_HANDLERS
from holdsvc.app import create_app
from holdsvc.connection import connect_redis
from holdsvc.errors import Forbidden
from holdsvc.metrics import Metrics
from holdsvc.services import Services
from holdsvc.settings import Settings
from tests.helpers import ADMIN, hold_http, new_hold, new_venue, slot_tomorrow, tomorrow


async def test_guards_declared_on_hold_routes_run_on_the_fast_path(
    settings: Settings, redis: Redis
) -> None:
    seen: list[tuple[str, str]] = []

    def front_desk_only(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        seen.append((str(connection.scope.get("method")), connection.url.path))
        if connection.headers.get("x-desk") != "open":
            raise Forbidden("Only the front desk may hold here")

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Its own services, built on the loop the test client runs the app on.
        redis = connect_redis(settings)
        app.state.services = Services.build(redis, settings, Metrics())
        app.state.max_body_bytes = settings.max_body_bytes
        await app.state.services.scripts.load()
        yield
        await redis.aclose()

    guarded = Litestar(
        route_handlers=[
            hold_router(face, guards=[front_desk_only]) for face in (RESTAURANTS, EVENTS)
        ],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
    )
    async with AsyncTestClient(app=create_app(settings)) as admin:
        rid = (
            await admin.post(
                "/v1/restaurants",
                json={
                    "name": "Guarded",
                    "phone": "+12125550100",
                    "timezone": "UTC",
                    "opens": "10:00",
                    "closes": "22:00",
                },
                headers=ADMIN,
            )
        ).json()["id"]
        await admin.post(
            f"/v1/restaurants/{rid}/tables", json={"tables": [{"capacity": 2}]}, headers=ADMIN
        )
        await admin.post(
            f"/v1/restaurants/{rid}/slots",
            json={"from": tomorrow(), "to": tomorrow()},
            headers=ADMIN,
        )
        body = {"user_id": "u1", "slot": slot_tomorrow(), "party_size": 2}
        async with AsyncTestClient(app=guarded) as client:
            refused = await client.post(f"/v1/restaurants/{rid}/holds", json=body)
            assert refused.status_code == 403
            assert refused.json()["code"] == "forbidden"
            # The refusal happened before anything was held.
            assert await redis.zcard(f"hs:{{{rid}}}:holds") == 0
            placed = await client.post(
                f"/v1/restaurants/{rid}/holds", json=body, headers={"x-desk": "open"}
            )
            assert placed.status_code == 201, placed.text
            assert placed.json()["table_id"] == "T1"
            # The same guard on the other routes of the face, the ordinary way.
            read = await client.get(
                f"/v1/restaurants/{rid}/holds/{placed.json()['id']}",
                headers={"Hold-Token": placed.json()["token"]},
            )
            assert read.status_code == 403
    assert seen == [
        ("POST", f"/v1/restaurants/{rid}/holds"),
        ("POST", f"/v1/restaurants/{rid}/holds"),
        ("GET", f"/v1/restaurants/{rid}/holds/{placed.json()['id']}"),
    ]


async def test_the_served_hold_is_the_handlers_answer(client: AsyncTestClient[Any]) -> None:
    """No handler body is dead: the place route's function is what the fast path calls."""
    routes = {
        route.path: route
        for route in client.app.routes
        if route.path in ("/v1/restaurants/{rid:str}/holds", "/v1/events/{eid:str}/holds")
    }
    assert len(routes) == 2
    for route in routes.values():
        handler = route.route_handler_map["POST"][0]
        assert handler.fn.__name__ == "place"
        assert handler.fn.__doc__ and "Hold" in handler.fn.__doc__


async def test_the_compressor_never_sees_a_hold_answer(
    client: AsyncTestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Litestar wraps each route's own handling in the gzip of pages; the fast path replaces
    that handling, so a placed hold never goes through the compressor (pages still do)."""
    rid = await new_venue(client)
    seen: list[str] = []
    compress = CompressionMiddleware.__call__

    async def counted(self: CompressionMiddleware, scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await compress(self, scope, receive, send)

    monkeypatch.setattr(CompressionMiddleware, "__call__", counted)
    gzip = {"Accept-Encoding": "gzip"}
    placed = await hold_http(client, rid, headers=gzip)
    assert placed.status_code == 201, placed.text
    assert "content-encoding" not in placed.headers
    page = await client.get("/", headers=gzip)
    assert page.headers.get("content-encoding") == "gzip"
    assert seen == ["/"]


async def test_a_slots_end_is_converted_once_for_all_its_holds(
    client: AsyncTestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ends_at`` of every placed hold: the slot id is parsed and its local time converted
    once per slot and zone, not for each hold (it was a tenth of a hold's CPU)."""
    rid = await new_venue(client, capacities=(2, 2, 2))
    converted: list[str] = []
    start_ms = timegrid.slot_start_ms

    def counted(slot: str, tz: tzinfo) -> int | None:
        converted.append(slot)
        return start_ms(slot, tz)

    monkeypatch.setattr(timegrid, "slot_start_ms", counted)
    holds_module._span_end_text.cache_clear()
    placed = [await new_hold(client, rid, f"u{n}") for n in range(3)]
    assert {hold["ends_at"] for hold in placed} == {f"{tomorrow()}T20:00:00.000+00:00"}
    assert converted == [slot_tomorrow()]
