"""Holds on restaurant tables: place, read, refresh, release, confirm."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, HeaderParameter, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from holdsvc.api.dto import StrictBody
from holdsvc.api.fastpath import place_table_hold, table_hold_request
from holdsvc.api.problems import problem_for
from holdsvc.api.schemas import problems
from holdsvc.errors import HoldsvcError
from holdsvc.holds import HoldRequest
from holdsvc.models import ConfirmInput, Hold, HoldInput, Reservation
from holdsvc.services import Services

HoldToken = Annotated[
    str | None, HeaderParameter(name="Hold-Token", description="The hold's secret")
]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key", max_length=255, description="Same key and body: same hold"
    ),
]


class AlreadyConfirmed(Exception):
    """Raised before the body is read when the hold already became this reservation."""

    def __init__(self, reservation: Reservation) -> None:
        super().__init__(reservation.reference)
        self.reservation = reservation


def on_already_confirmed(
    _: Request[Any, Any, Any], signal: AlreadyConfirmed
) -> Response[Reservation]:
    """A repeated confirm answers 200 with the same reservation, whatever its body."""
    return Response(signal.reservation, status_code=HTTP_200_OK)


def kind_and_venue(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[str, str]:
    """Which venue a hold route addresses: restaurants or events."""
    params = connection.path_params
    if "eid" in params:
        return "event", str(params["eid"])
    return "restaurant", str(params["rid"])


async def replay_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Runs before the confirm body is decoded: a confirmed hold answers its reservation."""
    services: Services = connection.app.state.services
    kind, venue_id = kind_and_venue(connection)
    reservation = await services.holds.confirmed_reservation(
        venue_id, kind, str(connection.path_params["hold_id"]), connection.headers.get("hold-token")
    )
    if reservation is not None:
        raise AlreadyConfirmed(reservation)


async def place_hold(
    services: Services, venue_id: str, kind: str, request: HoldRequest
) -> Response[Any]:
    """201 for a new hold, 200 for an idempotent replay, the problem for a refusal.

    A refusal (a taken cell, the cap) is the common answer under load: it is shaped here
    rather than raised through Litestar's exception middleware, which costs more.
    """
    try:
        hold, replayed = await services.holds.place(venue_id, kind, request)
    except HoldsvcError as refusal:
        return problem_for(refusal)
    return Response(hold, status_code=HTTP_200_OK if replayed else HTTP_201_CREATED)


class RestaurantHoldController(Controller):
    """Holds on one table of one slot."""

    path = "/v1/restaurants/{rid:str}/holds"
    tags = ["holds"]

    @post(
        "/",
        dto=StrictBody[HoldInput],
        return_dto=None,
        operation_id="placeHold",
        responses=problems(400, 404, 409),
        status_code=HTTP_201_CREATED,
        middleware=[place_table_hold],
    )
    async def place(
        self,
        rid: FromPath[str],
        data: JSONBody[HoldInput],
        services: NamedDependency[Services],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Hold]:
        """Hold a table (best fit when none is named); 200 when an Idempotency-Key replays."""
        # Served by the place_table_hold middleware; the same steps, should it ever not be.
        request = table_hold_request(data, idempotency_key)
        return await place_hold(services, rid, "restaurant", request)

    @get("/{hold_id:str}", operation_id="getHold", responses=problems(400, 403, 404))
    async def one(
        self,
        rid: FromPath[str],
        hold_id: FromPath[str],
        services: NamedDependency[Services],
        hold_token: HoldToken = None,
    ) -> Hold:
        """A hold, for its bearer."""
        return await services.holds.get(rid, "restaurant", hold_id, hold_token)

    @post(
        "/{hold_id:str}/refresh",
        status_code=HTTP_200_OK,
        operation_id="refreshHold",
        responses=problems(400, 403, 404, 409, 410),
    )
    async def refresh(
        self,
        rid: FromPath[str],
        hold_id: FromPath[str],
        services: NamedDependency[Services],
        hold_token: HoldToken = None,
    ) -> Hold:
        """Keep a hold alive: now + hold_seconds, at most created + max_hold_seconds."""
        return await services.holds.refresh(rid, "restaurant", hold_id, hold_token)

    @delete("/{hold_id:str}", operation_id="releaseHold", responses=problems(400, 403, 404, 410))
    async def release(
        self,
        rid: FromPath[str],
        hold_id: FromPath[str],
        services: NamedDependency[Services],
        hold_token: HoldToken = None,
    ) -> None:
        """Release a hold; its table is free at once."""
        await services.holds.release(rid, "restaurant", hold_id, hold_token)

    @post(
        "/{hold_id:str}/confirm",
        guards=[replay_guard],
        dto=StrictBody[ConfirmInput],
        return_dto=None,
        status_code=HTTP_201_CREATED,
        operation_id="confirmHold",
        responses=problems(400, 403, 404, 410),
        exception_handlers={AlreadyConfirmed: on_already_confirmed},
    )
    async def confirm(
        self,
        rid: FromPath[str],
        hold_id: FromPath[str],
        data: JSONBody[ConfirmInput],
        services: NamedDependency[Services],
        hold_token: HoldToken = None,
    ) -> Response[Reservation]:
        """Turn the hold into a reservation (201, with its manage token); again: 200, the same."""
        reservation, replayed = await services.holds.confirm(
            rid, "restaurant", hold_id, hold_token, data
        )
        return Response(reservation, status_code=HTTP_200_OK if replayed else HTTP_201_CREATED)
