"""The audit of a venue against every invariant (admin)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from holdsvc.api.auth import admin_guard
from holdsvc.api.schemas import problems
from holdsvc.audit import AuditReport
from holdsvc.services import Services


class AuditController(Controller):
    """``/audit`` of restaurants and events: read-only, safe on a live venue."""

    tags = ["operations"]
    guards = [admin_guard]

    @get(
        "/v1/restaurants/{rid:str}/audit",
        operation_id="auditRestaurant",
        responses=problems(401, 404),
    )
    async def restaurant(
        self, rid: FromPath[str], services: NamedDependency[Services]
    ) -> AuditReport:
        """Check a restaurant against every invariant; ``ok`` false lists each violation."""
        return await services.auditor.audit(rid, "restaurant")

    @get("/v1/events/{eid:str}/audit", operation_id="auditEvent", responses=problems(401, 404))
    async def event(self, eid: FromPath[str], services: NamedDependency[Services]) -> AuditReport:
        """Check an event against every invariant; ``ok`` false lists each violation."""
        return await services.auditor.audit(eid, "event")
