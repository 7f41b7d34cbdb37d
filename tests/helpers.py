"""Builders shared by the tests: venues with tables and slots, holds, and time travel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from holdsvc.holds import HoldRequest
from holdsvc.keys import Keys
from holdsvc.models import Hold, RestaurantInput, TableInput
from holdsvc.services import Services

ADMIN = {"Authorization": "Bearer test-admin"}


def tomorrow() -> str:
    """Tomorrow's date in UTC (every slot of it is in the future)."""
    return (datetime.now(UTC) + timedelta(days=1)).date().isoformat()


def day_after(days: int) -> str:
    """The UTC date ``days`` from today."""
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


async def make_restaurant(
    services: Services,
    *,
    capacities: tuple[int, ...] = (2, 4),
    days: int = 1,
    **rules: int,
) -> str:
    """A UTC restaurant open 10:00-22:00 with tables and slots from tomorrow on."""
    restaurant = await services.venues.create_restaurant(
        RestaurantInput(
            name="Test Bistro",
            phone="+1 212 555 0100",
            timezone="UTC",
            opens="10:00",
            closes="22:00",
            **rules,
        )
    )
    await services.venues.add_tables(restaurant.id, [TableInput(capacity=c) for c in capacities])
    await services.venues.add_slots(restaurant.id, tomorrow(), day_after(days))
    return restaurant.id


def slot_tomorrow(hour: int = 19) -> str:
    """The slot id of tomorrow at ``hour``:00 UTC."""
    return f"{tomorrow()}T{hour:02d}:00"


async def place(
    services: Services,
    venue_id: str,
    user: str = "u1",
    *,
    slot: str | None = None,
    party: int = 2,
    table: str | None = None,
    key: str | None = None,
) -> Hold:
    """Place a restaurant hold through the service."""
    hold, _ = await services.holds.place(
        venue_id,
        "restaurant",
        HoldRequest(
            user_id=user,
            slot=slot or slot_tomorrow(),
            party_size=party,
            units=[table] if table else [],
            count=1,
            idempotency_key=key,
        ),
    )
    return hold


async def lapse(services: Services, venue_id: str, hold_id: str) -> None:
    """Make a live hold lapse now, as if its time had run out (rewrites every expiry)."""
    keys = Keys("hs").of(venue_id)
    redis = services.redis
    fields = await redis.hgetall(keys.hold(hold_id))
    past = 1
    for unit in fields["units"].split(","):
        await redis.hset(keys.cells(fields["slot"]), unit, f"h|{hold_id}|{past}")
        await redis.zadd(keys.held(fields["slot"]), {unit: past})
    await redis.hset(keys.hold(hold_id), "expires", str(past))
    await redis.zadd(keys.holds, {hold_id: past})
    await redis.zadd(keys.user(fields["user"]), {f"{hold_id}|{fields['n']}": past})


async def feed_events(services: Services, venue_id: str) -> list[str]:
    """The event names of a venue's feed, oldest first."""
    entries = await services.redis.xrange(Keys("hs").of(venue_id).feed)
    return [fields["event"] for _, fields in entries]
