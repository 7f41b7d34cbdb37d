"""One clock: holds live and lapse by Redis TIME, whatever the app's own clock says.

The app process's clock is moved far ahead and far behind (time-machine patches the C-level
clock functions too); holds keep their lifetimes, nothing expires early or late, and the
sweeper expires nothing that Redis still considers live.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import time_machine

from holdsvc.models import ConfirmInput
from holdsvc.services import Services
from holdsvc.venues import VenueKind
from tests.helpers import feed_events, make_restaurant, place, slot_tomorrow


@pytest.mark.parametrize("skew", [timedelta(days=40), timedelta(days=-40), timedelta(hours=3)])
async def test_app_clock_skew_changes_nothing(services: Services, skew: timedelta) -> None:
    rid = await make_restaurant(services, capacities=(2, 2), hold_seconds=2, max_hold_seconds=4)
    slot = slot_tomorrow()
    with time_machine.travel(skew, tick=True):
        hold = await place(services, rid, "a", slot=slot)
        assert 1.5 < hold.expires_in <= 2.0
        assert (await services.sweeper.sweep_once()) == 0
        refreshed = await services.holds.refresh(
            rid, VenueKind.RESTAURANT, hold.id, str(hold.token)
        )
        assert refreshed.status == "held" and refreshed.expires_in > 1.5
        view = await services.restaurants.slot_view(rid, slot)
        assert [t.status for t in view.tables] == ["held", "available"]
        assert await services.sweeper.sweep_once() == 0
        second = await place(services, rid, "b", slot=slot)
        reservation, _ = await services.holds.confirm(
            rid,
            VenueKind.RESTAURANT,
            second.id,
            str(second.token),
            ConfirmInput(name="B", phone="+12125550100"),
        )
        assert reservation.status == "confirmed"
    await asyncio.sleep(2.2)  # Redis time moves on: now the first hold has lapsed
    assert (await services.sweeper.sweep_once()) == 1
    assert await feed_events(services, rid) == ["held", "refreshed", "held", "confirmed", "expired"]
    assert (await services.auditor.audit(rid)).ok
