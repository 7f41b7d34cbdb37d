"""Health, readiness and metrics."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from redis.exceptions import RedisClusterException, RedisError

from holdsvc.api.auth import signed_in_guard
from holdsvc.api.schemas import Me, Ready
from holdsvc.errors import Unavailable
from holdsvc.services import Services
from holdsvc.staff import Actor


class NotReady(msgspec.Struct, kw_only=True):
    """``/ready`` on a Redis that would evict keys: ``{"status": "not_ready", "reason"}``."""

    reason: str
    status: Literal["not_ready"] = "not_ready"


READY_RESPONSES = {
    200: ResponseSpec(
        data_container=Ready, generate_examples=False, description="Ready to take holds"
    ),
    503: ResponseSpec(
        data_container=NotReady,
        generate_examples=False,
        description="Redis would evict keys (maxmemory-policy other than noeviction, unless "
        "HOLDSVC_ALLOW_EVICTION=true); while Redis is unreachable or the scripts are not "
        "loaded, a problem (unavailable) instead",
    ),
}


class OpsController(Controller):
    """For load balancers and Prometheus."""

    tags = ["operations"]

    @get("/health", operation_id="health")
    async def health(self) -> dict[str, str]:
        """200 while the process is up."""
        return {"status": "ok"}

    @get("/ready", operation_id="ready", responses=READY_RESPONSES)
    async def ready(self, services: NamedDependency[Services]) -> Response[Any]:
        """200 only when Redis answers, the scripts are loaded and Redis keeps every key."""
        try:
            answers = await services.ready()
            evicts = await services.eviction.reason() if answers else None
        except (RedisError, RedisClusterException, OSError):
            answers, evicts = False, None
        if not answers:
            raise Unavailable("Redis is unreachable or the scripts are not loaded")
        if evicts is not None:
            return Response(NotReady(reason=evicts), status_code=503)
        return Response(Ready(status="ready"))

    @get("/metrics", operation_id="metrics", media_type="text/plain; version=0.0.4")
    async def metrics(self, services: NamedDependency[Services]) -> bytes:
        """Prometheus text exposition."""
        return services.metrics.render()

    @get("/v1/me", operation_id="whoAmI", guards=[signed_in_guard], tags=["staff"])
    async def me(self, request: Request[Any, Any, Any]) -> Me:
        """Who a bearer token is: an admin, or a staff token with its venue and role (the
        staff page says so, and hides what a host may not do)."""
        actor: Actor = request.state.actor  # set by the guard
        if actor.admin:
            return Me(role="admin", actor="admin")
        return Me(
            role=str(actor.role),
            actor=actor.feed_name,
            venue_id=actor.venue_id,
            name=actor.name,
        )
