"""Archive: archive.lua removes an ended slot, only as the caller read it, or nothing.

Refusals are checked to leave every Redis key as it was.
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from holdsvc.errors import NeedsSweep, NotFound, Stale, UnitUnavailable
from holdsvc.keys import Keys
from holdsvc.models import Reservation, StaffBookingInput
from holdsvc.scripts import ArchivedReservation
from holdsvc.services import Services
from tests.cluster import both_backends
from tests.helpers import (
    day_after,
    lapse,
    make_restaurant,
    place,
    slot_tomorrow,
    snapshot_keys,
    tomorrow,
)

# Every test here runs on one Redis node, then on the Redis Cluster (marked `cluster`).
redis_backend = both_backends

V = Keys("hs")
PAST = day_after(-3)
PAST_SLOT = f"{PAST}T19:00"


async def past_restaurant(services: Services) -> str:
    """A restaurant (no app, so no sweeper running) with slots from three days ago on."""
    rid = await make_restaurant(services, capacities=(2, 4))
    await services.venues.add_slots(rid, PAST, tomorrow())
    return rid


async def staff_book(services: Services, rid: str, slot: str) -> Reservation:
    booking = StaffBookingInput(slot=slot, party_size=2, name="Walk-in", phone="+12125550177")
    return await services.reservations.book(rid, booking)


async def hold_on_an_ended_slot(services: Services, rid: str) -> str:
    """A hold placed on tomorrow's 19:00, whose slot is then moved three days back (a hold
    can outlive its slot's end by up to max_hold_seconds; moving the slot is quicker)."""
    hold = await place(services, rid, "u5", slot=slot_tomorrow(19))
    starts = await services.redis.zscore(V.of(rid).slots, PAST_SLOT)
    await services.redis.zadd(V.of(rid).slots, {slot_tomorrow(19): int(starts) - 1})
    return hold.id


async def test_archive_script_refuses_and_changes_nothing(services: Services, redis: Redis) -> None:
    rid = await past_restaurant(services)
    old = await staff_book(services, rid, PAST_SLOT)
    keys = V.of(rid)
    scripts = services.scripts
    fields = await services.redis.hgetall(keys.reservation(old.reference))
    cells = await services.redis.hgetall(keys.cells(PAST_SLOT))
    right = [ArchivedReservation(old.reference, fields)]
    never = 10**15
    before = await snapshot_keys(redis)

    # Not ended by the cutoff; not ended by now (whatever the cutoff).
    early = await scripts.archive(
        keys, slot=PAST_SLOT, cutoff_ms=1, cells=cells, reservations=right
    )
    coming = await scripts.archive(
        keys, slot=slot_tomorrow(18), cutoff_ms=never, cells={}, reservations=[]
    )
    assert not early.removed and not coming.removed
    # What the caller wrote is not what is there: a cell, a field, a reservation missing.
    for wrong_cells, wrong_reservations in (
        ({}, right),
        (cells, [ArchivedReservation(old.reference, {**fields, "name": "Other"})]),
        (cells, []),
    ):
        with pytest.raises(Stale):
            await scripts.archive(
                keys,
                slot=PAST_SLOT,
                cutoff_ms=never,
                cells=wrong_cells,
                reservations=wrong_reservations,
            )
    with pytest.raises(NotFound):
        await scripts.archive(
            keys, slot=f"{PAST}T03:00", cutoff_ms=never, cells={}, reservations=[]
        )
    assert await snapshot_keys(redis) == before

    # Holds: a live one keeps the slot, a lapsed one must be swept first.
    hold_id = await hold_on_an_ended_slot(services, rid)
    held = slot_tomorrow(19)
    for lapsed, refusal in ((False, UnitUnavailable), (True, NeedsSweep)):
        if lapsed:
            await lapse(services, rid, hold_id)
        held_cells = await services.redis.hgetall(keys.cells(held))
        before = await snapshot_keys(redis)
        with pytest.raises(refusal) as refused:
            await scripts.archive(
                keys, slot=held, cutoff_ms=never, cells=held_cells, reservations=[]
            )
        assert await snapshot_keys(redis) == before
    assert isinstance(refused.value, NeedsSweep) and refused.value.hold_ids == [hold_id]

    done = await scripts.archive(
        keys, slot=PAST_SLOT, cutoff_ms=never, cells=cells, reservations=right
    )
    assert done.removed and done.reservations == 1
    assert not await redis.exists(keys.reservation(old.reference), keys.cells(PAST_SLOT))
