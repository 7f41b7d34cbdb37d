"""Health, readiness and metrics."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency

from holdsvc.api.auth import signed_in_guard
from holdsvc.api.schemas import Me, Ready, problems
from holdsvc.errors import Unavailable
from holdsvc.services import Services
from holdsvc.staff import Actor


class OpsController(Controller):
    """For load balancers and Prometheus."""

    tags = ["operations"]

    @get("/health", operation_id="health")
    async def health(self) -> dict[str, str]:
        """200 while the process is up."""
        return {"status": "ok"}

    @get("/ready", operation_id="ready", responses=problems())
    async def ready(self, services: NamedDependency[Services]) -> Ready:
        """200 only when Redis answers and the scripts are loaded."""
        if await services.ready():
            return Ready(status="ready")
        raise Unavailable("Redis is unreachable or the scripts are not loaded")

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
