"""Events and their seats: create and read events, hold seats, confirm them."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from holdsvc.api.auth import HOST_PATCHABLE, admin_guard, staff_guard
from holdsvc.api.dto import StrictBody
from holdsvc.api.schemas import (
    EventList,
    PageCursor,
    PageLimit,
    SeatList,
    SectionList,
    problems,
)
from holdsvc.models import (
    Event,
    EventInput,
    EventPatch,
)
from holdsvc.paging import page_request
from holdsvc.services import Services
from holdsvc.staff import Role


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
        responses=problems(400, 401, 403),
    )
    async def create(
        self, data: JSONBody[EventInput], services: NamedDependency[Services]
    ) -> Event:
        """Create an event with seats S1..SN (10..10 000), or a seat map (``sections``)."""
        return await services.events.create(data)

    @get("/", operation_id="listEvents", responses=problems(400))
    async def list_all(
        self,
        services: NamedDependency[Services],
        limit: PageLimit = None,
        cursor: PageCursor = None,
    ) -> EventList:
        """Every event, oldest first, with its free seats, one page at a time."""
        size = services.venues.settings.page_size
        page = await services.events.page(page_request(limit, cursor, size=size))
        return EventList(page.items, page.next_cursor)

    @get("/{eid:str}", operation_id="getEvent", responses=problems(404))
    async def one(self, eid: FromPath[str], services: NamedDependency[Services]) -> Event:
        """One event, with its exact number of free seats."""
        return await services.events.get(eid)

    @patch(
        "/{eid:str}",
        guards=[staff_guard(Role.HOST, host_may_set=HOST_PATCHABLE)],
        dto=StrictBody[EventPatch],
        return_dto=None,
        operation_id="updateEvent",
        responses=problems(400, 401, 403, 404),
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
        limit: PageLimit = None,
        cursor: PageCursor = None,
    ) -> SeatList:
        """Every seat with its status (available, held with free_at, reserved), in seat
        order, one page at a time."""
        size = services.venues.settings.page_size
        page = await services.events.seat_page(eid, status, page_request(limit, cursor, size=size))
        return SeatList(page.items, page.next_cursor)

    @get("/{eid:str}/sections", operation_id="listSections", responses=problems(404))
    async def sections(
        self, eid: FromPath[str], services: NamedDependency[Services]
    ) -> SectionList:
        """A seat map's sections in map order, each with its free places now and, for
        seated sections, every row with its free seats."""
        return SectionList(await services.events.sections(eid))
