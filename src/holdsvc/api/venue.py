"""The staff routes every venue face shares: its reservations, its change feed, its audit,
its staff tokens.

``venue_router(face)`` builds them under ``/v1/restaurants/{rid}`` or ``/v1/events/{eid}``
with that face's operation ids, from one implementation.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, Router, delete, get, post
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from holdsvc import slots as timegrid
from holdsvc.api.auth import staff_guard
from holdsvc.api.dto import StrictBody
from holdsvc.api.faces import Face
from holdsvc.api.feed import FEED_RESPONSES, LastEventId, Limit, Since, changes
from holdsvc.api.schemas import PageCursor, PageLimit, ReservationList, StaffTokenList, problems
from holdsvc.audit import AuditReport
from holdsvc.models import StaffTokenCreated, StaffTokenInput, StaffTokenView
from holdsvc.paging import page_request
from holdsvc.services import Services
from holdsvc.staff import Role, StaffToken
from holdsvc.venues import VenueProfile


def token_view(profile: VenueProfile, token: StaffToken) -> StaffTokenView:
    """A staff token as listed, its times in the venue's zone."""
    used = token.last_used_ms
    return StaffTokenView(
        id=token.id,
        name=token.name,
        role=token.role,
        created_at=timegrid.rfc3339(token.created_ms, profile.tz),
        last_used_at=timegrid.rfc3339(used, profile.tz) if used is not None else None,
    )


def venue_router(face: Face, *only_this_face: BaseRouteHandler) -> Router:
    """The staff routes of one venue face (hosts of the venue and up: see api/auth.py), with
    the ones ``only_this_face`` has (a restaurant's staff bookings)."""
    kind = face.kind
    # Each route declares its own guard (not the router: a refused manager call must not
    # have been accepted as a host's first).
    host, manager = [staff_guard(Role.HOST)], [staff_guard(Role.MANAGER)]

    @post(
        "/staff-tokens",
        guards=manager,
        dto=StrictBody[StaffTokenInput],
        return_dto=None,
        operation_id=face.op("create_staff_token"),
        responses=problems(400, 401, 403, 404),
        tags=["staff"],
    )
    async def create_staff_token(
        venue_id: NamedDependency[str],
        data: JSONBody[StaffTokenInput],
        services: NamedDependency[Services],
    ) -> StaffTokenCreated:
        """A new staff token for the venue; ``token`` is shown only in this answer."""
        token, secret = await services.staff.create(venue_id, data.name, Role(data.role))
        view = token_view(await services.venues.profile(venue_id, kind), token)
        return StaffTokenCreated(
            id=view.id, name=view.name, role=view.role, token=secret, created_at=view.created_at
        )

    @get(
        "/staff-tokens",
        guards=manager,
        operation_id=face.op("list_staff_tokens"),
        responses=problems(401, 403, 404),
        tags=["staff"],
    )
    async def list_staff_tokens(
        venue_id: NamedDependency[str], services: NamedDependency[Services]
    ) -> StaffTokenList:
        """The venue's staff tokens (never a token), with when each was last used."""
        profile = await services.venues.profile(venue_id, kind)
        return StaffTokenList([token_view(profile, t) for t in await services.staff.list(venue_id)])

    @delete(
        "/staff-tokens/{token_id:str}",
        guards=manager,
        operation_id=face.op("revoke_staff_token"),
        responses=problems(401, 403, 404),
        tags=["staff"],
    )
    async def revoke_staff_token(
        venue_id: NamedDependency[str],
        token_id: FromPath[str],
        services: NamedDependency[Services],
    ) -> None:
        """Revoke a staff token: refused (401) from now on, on every worker and host."""
        await services.venues.profile(venue_id, kind)
        await services.staff.revoke(venue_id, token_id)

    @get(
        "/reservations",
        guards=host,
        operation_id=face.op("reservations"),
        responses=problems(400, 401, 403, 404),
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

    @get(
        "/changes",
        guards=host,
        operation_id=face.op("changes"),
        responses=FEED_RESPONSES,
        tags=["feed"],
    )
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
        guards=host,
        operation_id=face.op("audit"),
        responses=problems(401, 403, 404),
        tags=["operations"],
    )
    async def audit(
        venue_id: NamedDependency[str], services: NamedDependency[Services]
    ) -> AuditReport:
        """Check the venue against every invariant; ``ok`` false lists each violation."""
        return await services.auditor.audit(venue_id, kind)

    return Router(
        path=face.base,
        route_handlers=[
            reservations,
            venue_changes,
            audit,
            create_staff_token,
            list_staff_tokens,
            revoke_staff_token,
            *only_this_face,
        ],
        dependencies={"venue_id": face.venue_id},
    )
