"""The staff routes every venue face shares: its reservations, its change feed, its audit.

``venue_router(face)`` builds them under ``/v1/restaurants/{rid}`` or ``/v1/events/{eid}``
with that face's operation ids, from one implementation.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, Router, get
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Parameter, QueryParameter

from holdsvc.api.auth import admin_guard
from holdsvc.api.faces import Face
from holdsvc.api.feed import FEED_RESPONSES, LastEventId, Limit, Since, changes
from holdsvc.api.schemas import PageCursor, PageLimit, ReservationList, problems
from holdsvc.audit import AuditReport
from holdsvc.paging import page_request
from holdsvc.services import Services


def venue_router(face: Face, *only_this_face: BaseRouteHandler) -> Router:
    """Reservations, changes and audit of one venue face (admin), with the staff routes
    ``only_this_face`` has (a restaurant's staff bookings)."""
    kind = face.kind

    @get(
        "/reservations",
        operation_id=face.op("reservations"),
        responses=problems(400, 401, 404),
        tags=[face.collection],
    )
    async def reservations(
        venue_id: NamedDependency[str],
        services: NamedDependency[Services],
        first: Annotated[
            str | None, QueryParameter(name="from", pattern=r"^\d{4}-\d{2}-\d{2}$")
        ] = None,
        last: Annotated[
            str | None, QueryParameter(name="to", pattern=r"^\d{4}-\d{2}-\d{2}$")
        ] = None,
        phone: Annotated[str | None, Parameter(max_length=40)] = None,
        status: Annotated[str | None, Parameter(max_length=20)] = None,
        tag: Annotated[str | None, Parameter(max_length=32)] = None,
        limit: PageLimit = None,
        cursor: PageCursor = None,
    ) -> ReservationList:
        """Staff view of the venue's reservations, sorted by start; every filter optional;
        one page at a time."""
        size = services.venues.settings.page_size
        found = await services.reservations.for_venue(
            venue_id,
            kind,
            first=first,
            last=last,
            phone=phone,
            status=status,
            tag=tag,
            page=page_request(limit, cursor, size=size),
        )
        return ReservationList(found.items, found.next_cursor)

    @get("/changes", operation_id=face.op("changes"), responses=FEED_RESPONSES, tags=["feed"])
    async def venue_changes(
        request: Request[Any, Any, Any],
        venue_id: NamedDependency[str],
        services: NamedDependency[Services],
        since: Since = None,
        last_event_id: LastEventId = None,
        limit: Limit = 100,
    ) -> Response[Any]:
        """The venue's changes: live SSE (resumable) or one page (Accept: application/json)."""
        return await changes(request, services, venue_id, kind, last_event_id or since, limit)

    @get(
        "/audit",
        operation_id=face.op("audit"),
        responses=problems(401, 404),
        tags=["operations"],
    )
    async def audit(
        venue_id: NamedDependency[str], services: NamedDependency[Services]
    ) -> AuditReport:
        """Check the venue against every invariant; ``ok`` false lists each violation."""
        return await services.auditor.audit(venue_id, kind)

    return Router(
        path=face.base,
        route_handlers=[reservations, venue_changes, audit, *only_this_face],
        dependencies={"venue_id": face.venue_id},
        guards=[admin_guard],
    )
