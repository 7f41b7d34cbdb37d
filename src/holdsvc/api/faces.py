"""The faces of the venue core on the HTTP side: how each kind of venue is addressed.

Restaurants and events share their hold, reservation-list, feed and audit routes: each
controller of those is built once per face from one implementation. A face says where its
venues live (``/v1/restaurants/{rid}``), what its hold body is, and how its operations are
named in OpenAPI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import Provide

from holdsvc.models import HoldInput, SeatHoldInput
from holdsvc.venues import VenueKind


@dataclass(frozen=True, slots=True)
class Face:
    """One kind of venue as the API shows it."""

    kind: VenueKind
    collection: str  # the path segment: "restaurants"
    param: str  # the venue id's path parameter: "rid"
    hold_body: type[msgspec.Struct]
    # operation ids of the shared routes, by role ("place" -> "placeHold")
    operations: dict[str, str]

    @property
    def base(self) -> str:
        """The path of one venue: ``/v1/restaurants/{rid:str}``."""
        return f"/v1/{self.collection}/{{{self.param}:str}}"

    def op(self, role: str) -> str:
        """The OpenAPI operation id of a shared route."""
        return self.operations[role]

    def venue_id_of(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        """The venue id a request addresses."""
        return str(connection.path_params[self.param])

    @property
    def venue_id(self) -> Provide:
        """The ``venue_id`` dependency: the face's path parameter, whatever its name."""
        param = self.param

        def provide(request: Request[Any, Any, Any]) -> str:
            return str(request.path_params[param])

        return Provide(provide, sync_to_thread=False)


RESTAURANTS = Face(
    kind=VenueKind.RESTAURANT,
    collection="restaurants",
    param="rid",
    hold_body=HoldInput,
    operations={
        "place": "placeHold",
        "get": "getHold",
        "refresh": "refreshHold",
        "release": "releaseHold",
        "confirm": "confirmHold",
        "reservations": "listRestaurantReservations",
        "changes": "restaurantChanges",
        "audit": "auditRestaurant",
        "create_staff_token": "createRestaurantStaffToken",
        "list_staff_tokens": "listRestaurantStaffTokens",
        "revoke_staff_token": "revokeRestaurantStaffToken",
    },
)
EVENTS = Face(
    kind=VenueKind.EVENT,
    collection="events",
    param="eid",
    hold_body=SeatHoldInput,
    operations={
        "place": "placeSeatHold",
        "get": "getSeatHold",
        "refresh": "refreshSeatHold",
        "release": "releaseSeatHold",
        "confirm": "confirmSeatHold",
        "reservations": "listEventReservations",
        "changes": "eventChanges",
        "audit": "auditEvent",
        "create_staff_token": "createEventStaffToken",
        "list_staff_tokens": "listEventStaffTokens",
        "revoke_staff_token": "revokeEventStaffToken",
    },
)
FACES = (RESTAURANTS, EVENTS)
