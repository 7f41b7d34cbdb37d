"""The waitlist routes of every venue face: join, read, leave (entry token), staff list (host).

``waitlist_router(face)`` builds ``/v1/restaurants/{rid}/waitlist`` or
``/v1/events/{eid}/waitlist`` from one implementation.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Router, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from holdsvc.api.auth import staff_guard
from holdsvc.api.dto import strict_body
from holdsvc.api.faces import Face
from holdsvc.api.schemas import problems
from holdsvc.models import EventWaitlistInput, WaitlistEntry, WaitlistEntryList, WaitlistInput
from holdsvc.services import Services
from holdsvc.staff import Role
from holdsvc.venues import VenueKind

WaitlistToken = Annotated[
    str | None, HeaderParameter(name="Waitlist-Token", description="The entry's secret")
]
# Operation ids by face and role (kept here: the shared faces table is not this feature's).
OPERATIONS = {
    VenueKind.RESTAURANT: {
        "join": "joinWaitlist",
        "get": "getWaitlistEntry",
        "leave": "leaveWaitlist",
        "list": "listWaitlist",
    },
    VenueKind.EVENT: {
        "join": "joinEventWaitlist",
        "get": "getEventWaitlistEntry",
        "leave": "leaveEventWaitlist",
        "list": "listEventWaitlist",
    },
}


def waitlist_router(face: Face) -> Router:
    """The waitlist routes of one venue face."""
    kind = face.kind
    ops = OPERATIONS[kind]
    body_type = WaitlistInput if kind is VenueKind.RESTAURANT else EventWaitlistInput

    @post(
        "/",
        dto=strict_body(body_type),
        return_dto=None,
        status_code=HTTP_201_CREATED,
        operation_id=ops["join"],
        responses=problems(400, 404, 409),
        description=body_type.__doc__,
    )
    async def join(
        venue_id: NamedDependency[str],
        data: JSONBody[WaitlistInput | EventWaitlistInput],
        services: NamedDependency[Services],
    ) -> WaitlistEntry:
        """Join the waitlist (offered at once when what is asked is free now); ``token``
        only here."""
        return await services.waitlist.join(venue_id, kind, data)

    @get(
        "/",
        guards=[staff_guard(Role.HOST)],
        operation_id=ops["list"],
        responses=problems(400, 401, 403, 404),
    )
    async def staff_list(
        venue_id: NamedDependency[str],
        services: NamedDependency[Services],
        slot: Annotated[str | None, QueryParameter(description="restaurants: the slot")] = None,
    ) -> WaitlistEntryList:
        """Waiting and offered entries, oldest first, no tokens (host)."""
        return WaitlistEntryList(entries=await services.waitlist.staff_list(venue_id, kind, slot))

    @get("/{entry_id:str}", operation_id=ops["get"], responses=problems(400, 403, 404))
    async def one(
        venue_id: NamedDependency[str],
        entry_id: FromPath[str],
        services: NamedDependency[Services],
        waitlist_token: WaitlistToken = None,
    ) -> WaitlistEntry:
        """An entry, for its bearer: its position, and when offered the offer's hold."""
        return await services.waitlist.get(venue_id, kind, entry_id, waitlist_token)

    @delete(
        "/{entry_id:str}",
        status_code=HTTP_200_OK,
        operation_id=ops["leave"],
        responses=problems(400, 403, 404),
    )
    async def leave(
        venue_id: NamedDependency[str],
        entry_id: FromPath[str],
        services: NamedDependency[Services],
        waitlist_token: WaitlistToken = None,
    ) -> WaitlistEntry:
        """Leave the waitlist; an open offer is released and passed on."""
        return await services.waitlist.leave(venue_id, kind, entry_id, waitlist_token)

    return Router(
        path=f"{face.base}/waitlist",
        route_handlers=[join, staff_list, one, leave],
        tags=["waitlist"],
        dependencies={"venue_id": face.venue_id},
    )
