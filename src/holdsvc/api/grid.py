"""Restaurant closures: close dates (removing their free slots), list them, reopen them.

Removing slots without a closure (``DELETE /v1/restaurants/{rid}/slots``) lives with the other
``…/slots`` routes in api/restaurants.py. The write routes are a venue manager's (API.md); until
staff tokens exist they take an admin token.
"""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from holdsvc.api.auth import staff_guard
from holdsvc.api.dto import StrictBody
from holdsvc.api.schemas import problems
from holdsvc.models import Closure, ClosureInput, SlotRemoval
from holdsvc.services import Services
from holdsvc.staff import Role


class ClosureList(msgspec.Struct):
    """``{"closures": [...]}``, earliest first."""

    closures: list[Closure]


class ClosureController(Controller):
    """Managers close and reopen dates; anyone reads the closures."""

    path = "/v1/restaurants"
    tags = ["restaurants"]

    @post(
        "/{rid:str}/closures",
        guards=[staff_guard(Role.MANAGER)],
        dto=StrictBody[ClosureInput],
        return_dto=None,
        operation_id="closeDates",
        responses=problems(400, 401, 403, 404),
    )
    async def close(
        self, rid: FromPath[str], data: JSONBody[ClosureInput], services: NamedDependency[Services]
    ) -> SlotRemoval:
        """Close a date range (at most 366 days): its slots without a live hold or a
        reservation are removed, the others kept and listed; no slot is created on it again."""
        return await services.grid.close(rid, data)

    @get("/{rid:str}/closures", operation_id="listClosures", responses=problems(400, 404))
    async def closures(
        self, rid: FromPath[str], services: NamedDependency[Services]
    ) -> ClosureList:
        """A restaurant's closures, earliest first."""
        return ClosureList(await services.grid.closures(rid))

    @delete(
        "/{rid:str}/closures/{day:str}",
        guards=[staff_guard(Role.MANAGER)],
        operation_id="reopenDates",
        responses=problems(400, 401, 403, 404),
    )
    async def reopen(
        self, rid: FromPath[str], day: FromPath[str], services: NamedDependency[Services]
    ) -> None:
        """Lift the closure whose ``from`` is ``day`` (YYYY-MM-DD); its dates fill again with
        the next grid request or the rolling grid."""
        await services.grid.reopen(rid, day)
