"""Events and their seats: create and read events, hold seats, confirm them."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from holdsvc.api.auth import admin_guard
from holdsvc.api.dto import StrictBody
from holdsvc.api.fastpath import place_seat_hold, seat_hold_request
from holdsvc.api.holds import (
    AlreadyConfirmed,
    HoldToken,
    IdempotencyKey,
    on_already_confirmed,
    place_hold,
    replay_guard,
)
from holdsvc.api.schemas import EventList, ReservationList, SeatList, problems
from holdsvc.models import (
    ConfirmInput,
    Event,
    EventInput,
    EventPatch,
    Hold,
    Reservation,
    SeatHoldInput,
)
from holdsvc.services import Services


class EventController(Controller):
    """Admins create events; anyone reads them and their seats."""

    path = "/v1/events"
    tags = ["events"]

    @post(
        "/",
        guards=[admin_guard],
        dto=StrictBody[EventInput],
        return_dto=None,
        operation_id="createEvent",
        responses=problems(400, 401),
    )
    async def create(
        self, data: JSONBody[EventInput], services: NamedDependency[Services]
    ) -> Event:
        """Create an event with seats S1..SN (10..10 000)."""
        return await services.events.create(data)

    @get("/", operation_id="listEvents")
    async def list_all(self, services: NamedDependency[Services]) -> EventList:
        """Every event, with its free seats."""
        return EventList(await services.events.list_all())

    @get("/{eid:str}", operation_id="getEvent", responses=problems(404))
    async def one(self, eid: FromPath[str], services: NamedDependency[Services]) -> Event:
        """One event, with its exact number of free seats."""
        return await services.events.get(eid)

    @patch(
        "/{eid:str}",
        guards=[admin_guard],
        dto=StrictBody[EventPatch],
        return_dto=None,
        operation_id="updateEvent",
        responses=problems(400, 401, 404),
    )
    async def update(
        self, eid: FromPath[str], data: JSONBody[EventPatch], services: NamedDependency[Services]
    ) -> Event:
        """Pause or resume bookings, rename, or change the hold rules."""
        return await services.events.update(eid, data)

    @get("/{eid:str}/seats", operation_id="listSeats", responses=problems(400, 404))
    async def seats(
        self,
        eid: FromPath[str],
        services: NamedDependency[Services],
        status: Annotated[str | None, Parameter(max_length=20)] = None,
    ) -> SeatList:
        """Every seat with its status (available, held with free_at, reserved)."""
        return SeatList(await services.events.seats(eid, status))

    @get(
        "/{eid:str}/reservations",
        guards=[admin_guard],
        operation_id="listEventReservations",
        responses=problems(400, 401, 404),
    )
    async def reservations(
        self,
        eid: FromPath[str],
        services: NamedDependency[Services],
        phone: Annotated[str | None, Parameter(max_length=40)] = None,
        status: Annotated[str | None, Parameter(max_length=20)] = None,
        tag: Annotated[str | None, Parameter(max_length=32)] = None,
    ) -> ReservationList:
        """Staff view of the event's reservations."""
        found = await services.reservations.for_venue(
            eid, "event", phone=phone, status=status, tag=tag
        )
        return ReservationList(found)


class EventHoldController(Controller):
    """Holds on seats of an event: named seats or the best ``count``, all or nothing."""

    path = "/v1/events/{eid:str}/holds"
    tags = ["holds"]

    @post(
        "/",
        dto=StrictBody[SeatHoldInput],
        return_dto=None,
        status_code=HTTP_201_CREATED,
        operation_id="placeSeatHold",
        responses=problems(400, 404, 409),
        middleware=[place_seat_hold],
    )
    async def place(
        self,
        eid: FromPath[str],
        data: JSONBody[SeatHoldInput],
        services: NamedDependency[Services],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Hold]:
        """Hold named seats, or the lowest-numbered free ``count``; 200 on an idempotent replay."""
        # Served by the place_seat_hold middleware; the same steps, should it ever not be.
        request = await seat_hold_request(services, eid, data, idempotency_key)
        return await place_hold(services, eid, "event", request)

    @get("/{hold_id:str}", operation_id="getSeatHold", responses=problems(400, 403, 404))
    async def one(
        self,
        eid: FromPath[str],
        hold_id: FromPath[str],
        services: NamedDependency[Services],
        hold_token: HoldToken = None,
    ) -> Hold:
        """A seat hold, for its bearer."""
        return await services.holds.get(eid, "event", hold_id, hold_token)

    @post(
        "/{hold_id:str}/refresh",
        status_code=HTTP_200_OK,
        operation_id="refreshSeatHold",
        responses=problems(400, 403, 404, 409, 410),
    )
    async def refresh(
        self,
        eid: FromPath[str],
        hold_id: FromPath[str],
        services: NamedDependency[Services],
        hold_token: HoldToken = None,
    ) -> Hold:
        """Keep a seat hold alive."""
        return await services.holds.refresh(eid, "event", hold_id, hold_token)

    @delete(
        "/{hold_id:str}", operation_id="releaseSeatHold", responses=problems(400, 403, 404, 410)
    )
    async def release(
        self,
        eid: FromPath[str],
        hold_id: FromPath[str],
        services: NamedDependency[Services],
        hold_token: HoldToken = None,
    ) -> None:
        """Release a seat hold; every seat is free at once."""
        await services.holds.release(eid, "event", hold_id, hold_token)

    @post(
        "/{hold_id:str}/confirm",
        guards=[replay_guard],
        dto=StrictBody[ConfirmInput],
        return_dto=None,
        status_code=HTTP_201_CREATED,
        operation_id="confirmSeatHold",
        exception_handlers={AlreadyConfirmed: on_already_confirmed},
        responses=problems(400, 403, 404, 410),
    )
    async def confirm(
        self,
        eid: FromPath[str],
        hold_id: FromPath[str],
        data: JSONBody[ConfirmInput],
        services: NamedDependency[Services],
        hold_token: HoldToken = None,
    ) -> Response[Reservation]:
        """Turn the seat hold into a reservation; again: 200, the same."""
        reservation, replayed = await services.holds.confirm(
            eid, "event", hold_id, hold_token, data
        )
        return Response(reservation, status_code=HTTP_200_OK if replayed else HTTP_201_CREATED)
