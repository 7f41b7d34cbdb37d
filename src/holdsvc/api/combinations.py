"""Table combinations: tables pushed together for one party, claimed and freed as one.

Every route is a venue manager's (API.md, "Durations, table combinations, pacing").
"""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from holdsvc.api.auth import staff_guard
from holdsvc.api.dto import StrictBody
from holdsvc.api.schemas import problems
from holdsvc.models import Combination, CombinationInput
from holdsvc.services import Services
from holdsvc.staff import Role


class CombinationList(msgspec.Struct):
    """``{"combinations": [...]}``, in creation order."""

    combinations: list[Combination]


class CombinationController(Controller):
    """Managers create, list and remove a restaurant's combinations."""

    path = "/v1/restaurants"
    tags = ["restaurants"]

    @post(
        "/{rid:str}/combinations",
        guards=[staff_guard(Role.MANAGER)],
        dto=StrictBody[CombinationInput],
        return_dto=None,
        operation_id="addCombination",
        responses=problems(400, 401, 403, 404),
    )
    async def add(
        self,
        rid: FromPath[str],
        data: JSONBody[CombinationInput],
        services: NamedDependency[Services],
    ) -> Combination:
        """Push 2..4 distinct tables of the restaurant together for parties up to
        ``capacity``; best fit tries them after single tables."""
        return await services.restaurants.add_combination(rid, data)

    @get(
        "/{rid:str}/combinations",
        guards=[staff_guard(Role.MANAGER)],
        operation_id="listCombinations",
        responses=problems(400, 401, 403, 404),
    )
    async def list_all(
        self, rid: FromPath[str], services: NamedDependency[Services]
    ) -> CombinationList:
        """A restaurant's combinations, in creation order."""
        return CombinationList(await services.restaurants.combinations(rid))

    @delete(
        "/{rid:str}/combinations/{combo_id:str}",
        guards=[staff_guard(Role.MANAGER)],
        operation_id="removeCombination",
        responses=problems(400, 401, 403, 404),
    )
    async def remove(
        self, rid: FromPath[str], combo_id: FromPath[str], services: NamedDependency[Services]
    ) -> None:
        """Remove a combination; bookings holding its tables keep them."""
        await services.restaurants.remove_combination(rid, combo_id)
