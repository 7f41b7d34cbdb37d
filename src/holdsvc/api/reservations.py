"""Reservations: read and cancel (manage token or admin), and the cross-venue phone search."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get
from litestar.di import Provide
from litestar.params import HeaderParameter, Parameter
from litestar.status_codes import HTTP_200_OK

from holdsvc.api.auth import admin_guard, caller_is_admin
from holdsvc.api.deps import provide_services
from holdsvc.api.schemas import ReservationList, problems
from holdsvc.models import Reservation
from holdsvc.services import Services

ManageToken = Annotated[
    str | None, HeaderParameter(name="Manage-Token", description="The reservation's secret")
]


class ReservationController(Controller):
    """A guest manages a reservation with its manage token; staff with an admin token."""

    path = "/v1/reservations"
    tags = ["reservations"]
    dependencies = {"services": Provide(provide_services, sync_to_thread=False)}

    @get("/{reference:str}", operation_id="getReservation", responses=problems(400, 401, 403, 404))
    async def one(
        self,
        request: Request[Any, Any, Any],
        reference: str,
        services: Services,
        manage_token: ManageToken = None,
    ) -> Reservation:
        """A reservation."""
        admin = caller_is_admin(request)
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
        reference: str,
        services: Services,
        manage_token: ManageToken = None,
    ) -> Reservation:
        """Cancel; the table is free at once. Cancelling again answers the same, unchanged."""
        admin = caller_is_admin(request)
        return await services.reservations.cancel(reference, admin=admin, manage_token=manage_token)

    @get(
        "/",
        guards=[admin_guard],
        operation_id="listReservationsByPhone",
        responses=problems(400, 401),
    )
    async def by_phone(
        self, services: Services, phone: Annotated[str, Parameter(min_length=3, max_length=40)]
    ) -> ReservationList:
        """One client's reservations in every venue."""
        return ReservationList(await services.reservations.by_phone(phone))
