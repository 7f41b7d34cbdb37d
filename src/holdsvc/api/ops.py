"""Health, readiness and metrics."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.di import NamedDependency

from holdsvc.api.problems import problem
from holdsvc.api.schemas import problems
from holdsvc.services import Services


class OpsController(Controller):
    """For load balancers and Prometheus."""

    tags = ["operations"]

    @get("/health", operation_id="health")
    async def health(self) -> dict[str, str]:
        """200 while the process is up."""
        return {"status": "ok"}

    @get("/ready", operation_id="ready", responses=problems())
    async def ready(self, services: NamedDependency[Services]) -> Response[dict[str, object]]:
        """200 only when Redis answers and the scripts are loaded."""
        if await services.ready():
            return Response({"status": "ready"})
        return problem(
            503, "unavailable", "Not ready", "Redis is unreachable or the scripts are not loaded"
        )

    @get("/metrics", operation_id="metrics", media_type="text/plain; version=0.0.4")
    async def metrics(self, services: NamedDependency[Services]) -> bytes:
        """Prometheus text exposition."""
        return services.metrics.render()
