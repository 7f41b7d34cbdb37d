"""Restaurants, their tables, slot grids, availability and staff reservation lists."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK

from holdsvc.api.auth import HOST_PATCHABLE, admin_guard, staff_guard
from holdsvc.api.dto import StrictBody
from holdsvc.api.schemas import (
    AvailableSlotList,
    PageCursor,
    PageLimit,
    RestaurantList,
    SlotList,
    SlotsCreated,
    TableList,
    problems,
)
from holdsvc.holds import check_idempotency_key
from holdsvc.models import (
    Reservation,
    Restaurant,
    RestaurantInput,
    RestaurantPatch,
    SlotRemoval,
    SlotsInput,
    SlotView,
    StaffBookingInput,
    Table,
    TablePatch,
    TablesInput,
)
from holdsvc.paging import PageRequest, page_request
from holdsvc.services import Services
from holdsvc.staff import Actor, Role

SlotLimit = Annotated[
    int | None,
    QueryParameter(
        name="limit",
        ge=1,
        le=100_000,
        description="Slots per page: at most as many as keep a page within "
        "HOLDSVC_MAX_CELLS_PER_PAGE table states (also the default)",
    ),
]


def slot_page(services: Services, limit: int | None, cursor: str | None) -> PageRequest:
    """A page of slots: the tables' count bounds it further (see Restaurants._grid_page)."""
    return page_request(limit, cursor, size=services.venues.settings.max_cells_per_page)


class RestaurantController(Controller):
    """Admins create restaurants, tables and slots; anyone reads them."""

    path = "/v1/restaurants"
    tags = ["restaurants"]

    @post(
        "/",
        guards=[admin_guard],
        dto=StrictBody[RestaurantInput],
        return_dto=None,
        operation_id="createRestaurant",
        responses=problems(400, 401, 403),
    )
    async def create(
        self, data: JSONBody[RestaurantInput], services: NamedDependency[Services]
    ) -> Restaurant:
        """Create a restaurant."""
        return await services.restaurants.create(data)

    @get("/", operation_id="listRestaurants", responses=problems(400))
    async def list_all(
        self,
        services: NamedDependency[Services],
        limit: PageLimit = None,
        cursor: PageCursor = None,
    ) -> RestaurantList:
        """Every restaurant, oldest first, one page at a time."""
        size = services.venues.settings.page_size
        page = await services.restaurants.page(page_request(limit, cursor, size=size))
        return RestaurantList(page.items, page.next_cursor)

    @get("/{rid:str}", operation_id="getRestaurant", responses=problems(400, 404))
    async def one(self, rid: FromPath[str], services: NamedDependency[Services]) -> Restaurant:
        """One restaurant."""
        return await services.restaurants.get(rid)

    @patch(
        "/{rid:str}",
        guards=[staff_guard(Role.HOST, host_may_set=HOST_PATCHABLE)],
        dto=StrictBody[RestaurantPatch],
        return_dto=None,
        operation_id="updateRestaurant",
        responses=problems(400, 401, 403, 404),
    )
    async def update(
        self,
        rid: FromPath[str],
        data: JSONBody[RestaurantPatch],
        services: NamedDependency[Services],
    ) -> Restaurant:
        """Change name, phone, pause/resume bookings, or the hold rules."""
        return await services.restaurants.update(rid, data)

    @post(
        "/{rid:str}/tables",
        guards=[staff_guard(Role.MANAGER)],
        dto=StrictBody[TablesInput],
        return_dto=None,
        operation_id="addTables",
        responses=problems(400, 401, 403, 404),
    )
    async def add_tables(
        self,
        rid: FromPath[str],
        data: JSONBody[TablesInput],
        services: NamedDependency[Services],
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(
                name="Idempotency-Key",
                max_length=255,
                description="The same key and body within a day answer the tables the first "
                "request added (200) instead of adding them again",
            ),
        ] = None,
    ) -> Response[TableList]:
        """Add tables (capacity 2..8); a repeated Idempotency-Key adds nothing (200)."""
        check_idempotency_key(idempotency_key)
        created, replayed = await services.restaurants.add_tables_once(
            rid, data.tables, idempotency_key
        )
        return Response(TableList(created), status_code=200 if replayed else 201)

    @patch(
        "/{rid:str}/tables/{tid:str}",
        guards=[staff_guard(Role.MANAGER)],
        dto=StrictBody[TablePatch],
        return_dto=None,
        operation_id="updateTable",
        responses=problems(400, 401, 403, 404, 409),
    )
    async def update_table(
        self,
        rid: FromPath[str],
        tid: FromPath[str],
        data: JSONBody[TablePatch],
        services: NamedDependency[Services],
    ) -> Table:
        """Change a table's label (null clears it) or capacity; a smaller capacity only while
        no booking or hold on it has yet to end (409 table_in_use)."""
        await services.restaurants.get(rid)
        return await services.tables.edit(rid, tid, data)

    @delete(
        "/{rid:str}/tables/{tid:str}",
        guards=[staff_guard(Role.MANAGER)],
        operation_id="removeTable",
        responses=problems(400, 401, 403, 404, 409),
    )
    async def remove_table(
        self, rid: FromPath[str], tid: FromPath[str], services: NamedDependency[Services]
    ) -> None:
        """Remove a table with no booking or live hold that has yet to end; else 409
        table_in_use naming the bookings in the way."""
        await services.restaurants.get(rid)
        await services.tables.remove(rid, tid)

    @get("/{rid:str}/tables", operation_id="listTables", responses=problems(400, 404))
    async def tables(self, rid: FromPath[str], services: NamedDependency[Services]) -> TableList:
        """A restaurant's tables."""
        return TableList(await services.restaurants.tables(rid))

    @post(
        "/{rid:str}/slots",
        guards=[staff_guard(Role.MANAGER)],
        dto=StrictBody[SlotsInput],
        return_dto=None,
        operation_id="addSlots",
        responses=problems(400, 401, 403, 404),
    )
    async def add_slots(
        self, rid: FromPath[str], data: JSONBody[SlotsInput], services: NamedDependency[Services]
    ) -> SlotsCreated:
        """Lay out the slot grid for a date range (idempotent)."""
        created, total = await services.restaurants.add_slots(rid, data.first, data.last)
        return SlotsCreated(created=created, total=total)

    @get("/{rid:str}/availability", operation_id="getAvailability", responses=problems(400, 404))
    async def availability(
        self,
        rid: FromPath[str],
        services: NamedDependency[Services],
        first: Annotated[str, QueryParameter(name="from", pattern=r"^\d{4}-\d{2}-\d{2}$")],
        last: Annotated[str, QueryParameter(name="to", pattern=r"^\d{4}-\d{2}-\d{2}$")],
        party_size: Annotated[int, Parameter(ge=1, le=50)] = 2,
        limit: SlotLimit = None,
        cursor: PageCursor = None,
    ) -> AvailableSlotList:
        """Slots not yet started with at least one free table that fits the party (a range
        of at most HOLDSVC_MAX_QUERY_DAYS days, one page at a time)."""
        restaurants = services.restaurants
        page = await restaurants.availability(
            rid, first, last, party_size, slot_page(services, limit, cursor)
        )
        # Only a range with no fitting slot at all points further ahead.
        empty = not page.items and page.next_cursor is None and cursor is None
        return AvailableSlotList(
            slots=page.items,
            next_available=await restaurants.next_available(rid, last, party_size)
            if empty
            else None,
            max_party_size=await restaurants.max_party_size(rid),
            next_cursor=page.next_cursor,
        )

    @get("/{rid:str}/slots", operation_id="listSlots", responses=problems(400, 404))
    async def slots(
        self,
        rid: FromPath[str],
        services: NamedDependency[Services],
        first: Annotated[str, QueryParameter(name="from", pattern=r"^\d{4}-\d{2}-\d{2}$")],
        last: Annotated[str, QueryParameter(name="to", pattern=r"^\d{4}-\d{2}-\d{2}$")],
        limit: SlotLimit = None,
        cursor: PageCursor = None,
    ) -> SlotList:
        """Every slot of the range with each table's status (a range of at most
        HOLDSVC_MAX_QUERY_DAYS days, one page at a time)."""
        page = await services.restaurants.slot_views(
            rid, first, last, slot_page(services, limit, cursor)
        )
        return SlotList(page.items, page.next_cursor)

    @delete(
        "/{rid:str}/slots",
        guards=[staff_guard(Role.MANAGER)],
        status_code=HTTP_200_OK,
        operation_id="removeSlots",
        responses=problems(400, 401, 403, 404),
    )
    async def remove_slots(
        self,
        rid: FromPath[str],
        services: NamedDependency[Services],
        first: Annotated[str, QueryParameter(name="from", pattern=r"^\d{4}-\d{2}-\d{2}$")],
        last: Annotated[str, QueryParameter(name="to", pattern=r"^\d{4}-\d{2}-\d{2}$")],
    ) -> SlotRemoval:
        """Remove the slots of a date range that have no live hold and no reservation (those
        are kept and listed), without closing the dates (a manager's action)."""
        return await services.grid.remove(rid, first, last)

    @get("/{rid:str}/slots/{slot:str}", operation_id="getSlot", responses=problems(400, 404))
    async def slot(
        self, rid: FromPath[str], slot: FromPath[str], services: NamedDependency[Services]
    ) -> SlotView:
        """One slot with each table's status."""
        return await services.restaurants.slot_view(rid, slot)


@post(
    "/reservations",
    guards=[staff_guard(Role.HOST)],
    dto=StrictBody[StaffBookingInput],
    return_dto=None,
    operation_id="bookAsStaff",
    responses=problems(400, 401, 403, 404, 409),
    tags=["restaurants"],
)
async def book_as_staff(
    request: Request[Any, Any, Any],
    venue_id: NamedDependency[str],
    data: JSONBody[StaffBookingInput],
    services: NamedDependency[Services],
) -> Reservation:
    """A staff booking (phone, walk-in): no hold, no pause/window/past checks, no expiry."""
    actor: Actor = request.state.actor  # set by the staff guard
    return await services.reservations.book(venue_id, data, actor=actor.feed_name)
