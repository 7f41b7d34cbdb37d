"""Reservations: read and cancel (manage token or admin), and the cross-venue phone search."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, HeaderParameter, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK

from holdsvc.api.auth import admin_guard, reservation_actor
from holdsvc.api.dto import StrictBody, decode_untyped
from holdsvc.api.schemas import PageCursor, PageLimit, ReservationList, problems
from holdsvc.identifiers import venue_of_reference
from holdsvc.models import Reservation, ReservationPatch
from holdsvc.paging import page_request
from holdsvc.services import Services
from holdsvc.staff import Actor

ManageToken = Annotated[
    str | None, HeaderParameter(name="Manage-Token", description="The reservation's secret")
]


async def staff_actor(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor | None:
    """The admin or staff (host or manager) of the reservation's venue who asks; None for a
    guest (whose manage token the service checks)."""
    venue_id = venue_of_reference(str(connection.path_params["reference"]))
    return await reservation_actor(connection, venue_id)


def feed_name(actor: Actor | None) -> str | None:
    """Who the feed names for a change by ``actor``."""
    return actor.feed_name if actor is not None else None


async def change_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Before the body is validated: the token, and staff-only fields for admins only."""
    services: NamedDependency[Services] = connection.app.state.services
    request: Request[Any, Any, Any] = connection  # type: ignore[assignment]
    # Not JSON (or nested too deeply): the body's own validation answers 400 after this.
    decoded = decode_untyped(await request.body())
    await services.reservations.authorize_change(
        str(connection.path_params["reference"]),
        admin=await staff_actor(connection) is not None,
        manage_token=connection.headers.get("manage-token"),
        fields=set(decoded) if isinstance(decoded, dict) else set(),
    )


class ReservationController(Controller):
    """A guest manages a reservation with its manage token; staff of its venue with a staff
    token, or an admin."""

    path = "/v1/reservations"
    tags = ["reservations"]

    @get("/{reference:str}", operation_id="getReservation", responses=problems(400, 401, 403, 404))
    async def one(
        self,
        request: Request[Any, Any, Any],
        reference: FromPath[str],
        services: NamedDependency[Services],
        manage_token: ManageToken = None,
    ) -> Reservation:
        """A reservation."""
        admin = await staff_actor(request) is not None
        return await services.reservations.get(reference, admin=admin, manage_token=manage_token)

    @delete(
        "/{reference:str}",
        status_code=HTTP_200_OK,
        operation_id="cancelReservation",
        responses=problems(400, 401, 403, 404),
    )
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        reference: FromPath[str],
        services: NamedDependency[Services],
        manage_token: ManageToken = None,
    ) -> Reservation:
        """Cancel; the table is free at once. Cancelling again answers the same, unchanged."""
        actor = await staff_actor(request)
        return await services.reservations.cancel(
            reference, admin=actor is not None, manage_token=manage_token, actor=feed_name(actor)
        )

    @patch(
        "/{reference:str}",
        guards=[change_guard],
        dto=StrictBody[ReservationPatch],
        return_dto=None,
        operation_id="changeReservation",
        responses=problems(400, 401, 403, 404, 409),
    )
    async def change(
        self,
        request: Request[Any, Any, Any],
        reference: FromPath[str],
        data: JSONBody[ReservationPatch],
        services: NamedDependency[Services],
        manage_token: ManageToken = None,
    ) -> Reservation:
        """Change contact fields or party size, move it, or (staff) set notes, tags, status."""
        actor = await staff_actor(request)
        return await services.reservations.change(
            reference,
            data,
            admin=actor is not None,
            manage_token=manage_token,
            actor=feed_name(actor),
        )

    @get(
        "/",
        guards=[admin_guard],
        operation_id="listReservationsByPhone",
        responses=problems(400, 401, 403),
    )
    async def by_phone(
        self,
        services: NamedDependency[Services],
        phone: Annotated[str, Parameter(min_length=3, max_length=40)],
        limit: PageLimit = None,
        cursor: PageCursor = None,
    ) -> ReservationList:
        """One client's reservations in every venue, sorted by start, one page at a time."""
        size = services.venues.settings.page_size
        found = await services.reservations.by_phone(phone, page_request(limit, cursor, size=size))
        return ReservationList(found.items, found.next_cursor)
