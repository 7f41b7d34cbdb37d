"""Holds of every venue face: place, read, refresh, release, confirm (one implementation).

``hold_router(face)`` builds the routes of one face (``/v1/restaurants/{rid}/holds`` or
``/v1/events/{eid}/holds``) with that face's operation ids. Placing a hold is served by
``serve_directly`` (the hot path); the handler below it is what runs.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, Router, delete, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, HeaderParameter, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from litestar.types import Guard

from holdsvc.api.dto import StrictBody, strict_body
from holdsvc.api.faces import Face
from holdsvc.api.fastpath import EarlyAnswer, on_early_answer, serve_directly
from holdsvc.api.schemas import problems, replayed
from holdsvc.models import ConfirmInput, Hold, HoldInput, Reservation, SeatHoldInput
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


def hold_router(face: Face, guards: list[Guard] | None = None) -> Router:
    """The hold routes of one venue face; ``guards`` run on every route, the hot one too."""
    kind = face.kind
    opt = {"venue_param": face.param}

    async def replay_guard(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        """Runs before the confirm body is decoded: a confirmed hold answers its reservation."""
        services: Services = connection.app.state.services
        reservation = await services.holds.confirmed_reservation(
            face.venue_id_of(connection),
            kind,
            str(connection.path_params["hold_id"]),
            connection.headers.get("hold-token"),
        )
        if reservation is not None:
            raise AlreadyConfirmed(reservation)

    @post(
        "/",
        dto=strict_body(face.hold_body),
        return_dto=None,
        operation_id=face.op("place"),
        responses={
            **problems(400, 404, 409),
            **replayed(Hold, "The same Idempotency-Key and body again: the same hold"),
        },
        status_code=HTTP_201_CREATED,
        middleware=[serve_directly],
        exception_handlers={EarlyAnswer: on_early_answer},
        opt=opt,
        description=face.hold_body.__doc__,
    )
    async def place(
        venue_id: NamedDependency[str],
        data: JSONBody[HoldInput | SeatHoldInput],
        services: NamedDependency[Services],
        idempotency_key: IdempotencyKey = None,
    ) -> Hold:
        """Hold a table or seats (best fit when none is named); 200 when an
        Idempotency-Key replays an earlier hold."""
        hold, replayed = await services.holds.place_from_body(venue_id, kind, data, idempotency_key)
        if replayed:
            raise EarlyAnswer(hold, HTTP_200_OK)
        return hold

    @get("/{hold_id:str}", operation_id=face.op("get"), responses=problems(400, 403, 404))
    async def one(
        venue_id: NamedDependency[str],
        hold_id: FromPath[str],
        services: NamedDependency[Services],
        hold_token: HoldToken = None,
    ) -> Hold:
        """A hold, for its bearer."""
        return await services.holds.get(venue_id, kind, hold_id, hold_token)

    @post(
        "/{hold_id:str}/refresh",
        status_code=HTTP_200_OK,
        operation_id=face.op("refresh"),
        responses=problems(400, 403, 404, 409, 410),
    )
    async def refresh(
        venue_id: NamedDependency[str],
        hold_id: FromPath[str],
        services: NamedDependency[Services],
        hold_token: HoldToken = None,
    ) -> Hold:
        """Keep a hold alive: now + hold_seconds, at most created + max_hold_seconds."""
        return await services.holds.refresh(venue_id, kind, hold_id, hold_token)

    @delete(
        "/{hold_id:str}",
        operation_id=face.op("release"),
        responses=problems(400, 403, 404, 410),
    )
    async def release(
        venue_id: NamedDependency[str],
        hold_id: FromPath[str],
        services: NamedDependency[Services],
        hold_token: HoldToken = None,
    ) -> None:
        """Release a hold; its cells are free at once."""
        await services.holds.release(venue_id, kind, hold_id, hold_token)

    @post(
        "/{hold_id:str}/confirm",
        guards=[replay_guard],
        dto=StrictBody[ConfirmInput],
        return_dto=None,
        status_code=HTTP_201_CREATED,
        operation_id=face.op("confirm"),
        responses={
            **problems(400, 403, 404, 410),
            **replayed(Reservation, "The same confirm again: the same reservation"),
        },
        exception_handlers={AlreadyConfirmed: on_already_confirmed},
    )
    async def confirm(
        venue_id: NamedDependency[str],
        hold_id: FromPath[str],
        data: JSONBody[ConfirmInput],
        services: NamedDependency[Services],
        hold_token: HoldToken = None,
    ) -> Response[Reservation]:
        """Turn the hold into a reservation (201, with its manage token); again: 200, the same."""
        reservation, replayed = await services.holds.confirm(
            venue_id, kind, hold_id, hold_token, data
        )
        return Response(reservation, status_code=HTTP_200_OK if replayed else HTTP_201_CREATED)

    return Router(
        path=f"{face.base}/holds",
        route_handlers=[place, one, refresh, release, confirm],
        tags=["holds"],
        dependencies={"venue_id": face.venue_id},
        guards=guards,
    )
