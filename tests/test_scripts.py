"""Each Lua script called directly on a real Redis: every result code, expiry and cap edges."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from holdsvc import errors
from holdsvc.identifiers import digest
from holdsvc.keys import Keys, VenueKeys
from holdsvc.models import Hold, RestaurantPatch
from holdsvc.scripts import Changed, Confirmed, HoldPlaced
from holdsvc.services import Services
from tests.helpers import feed_events, lapse, make_restaurant, place, slot_tomorrow, snapshot

KEYS = Keys("hs")


def vk(venue_id: str) -> VenueKeys:
    return KEYS.of(venue_id)


async def raw_hold(
    services: Services,
    venue_id: str,
    *,
    hold_id: str = "H1",
    user: str = "u1",
    slot: str | None = None,
    party: int = 2,
    units: list[str] | None = None,
    count: int = 1,
    key: str | None = None,
    fingerprint: str = "fp",
) -> HoldPlaced:
    return await services.scripts.hold(
        vk(venue_id),
        hold_id=hold_id,
        token_digest=digest("tok-" + hold_id),
        user_id=user,
        slot=slot or slot_tomorrow(),
        party_size=party,
        units=units or [],
        count=count,
        idempotency_key=key,
        fingerprint=fingerprint,
    )


async def raw_confirm(
    services: Services, venue: str, hold: Hold, reference: str, *, token: str | None = None
) -> Confirmed:
    """confirm.lua on a hold placed by ``place`` (its own token unless one is given)."""
    return await services.scripts.confirm(
        vk(venue),
        venue_id=venue,
        hold_id=hold.id,
        token_digest=token or digest(str(hold.token)),
        slot=hold.slot,
        user_id="u1",
        reference=reference,
        manage_digest="m",
        name="A",
        phone="+12125550100",
        email="",
        notes="",
    )


# -- hold.lua -------------------------------------------------------------------------------


async def test_hold_ok_best_fit_takes_smallest_table_first_created(services: Services) -> None:
    venue = await make_restaurant(services, capacities=(4, 2, 2, 6))
    placed = await raw_hold(services, venue, party=2)
    assert placed.units == ("T2",)
    second = await raw_hold(services, venue, hold_id="H2", user="u2", party=2)
    assert second.units == ("T3",)
    third = await raw_hold(services, venue, hold_id="H3", user="u3", party=3)
    assert third.units == ("T1",)
    assert placed.expires_ms - placed.created_ms == 600_000
    assert await feed_events(services, venue) == ["held", "held", "held"]


async def test_hold_replays_same_key_and_body_and_refuses_other_body(services: Services) -> None:
    venue = await make_restaurant(services)
    first = await raw_hold(services, venue, key="k", fingerprint="a")
    again = await raw_hold(services, venue, hold_id="H2", key="k", fingerprint="a")
    assert again.replayed and again.hold_id == first.hold_id
    with pytest.raises(errors.ValidationFailed):
        await raw_hold(services, venue, hold_id="H3", key="k", fingerprint="b")
    assert await feed_events(services, venue) == ["held"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"venue": "NOSUCH"}, errors.NotFound),
        ({"slot": "2031-01-01T03:00"}, errors.NotFound),
        ({"units": ["T99"]}, errors.NotFound),
        ({"units": ["T1"], "party": 3}, errors.NoTableAvailable),
        ({"party": 9}, errors.NoTableAvailable),
    ],
)
async def test_hold_refusals_change_nothing(
    services: Services, change: dict[str, object], error: type[Exception]
) -> None:
    venue = await make_restaurant(services)
    before = await snapshot(services, venue)
    with pytest.raises(error):
        await raw_hold(
            services,
            str(change.get("venue", venue)),
            slot=change.get("slot"),  # type: ignore[arg-type]
            units=change.get("units"),  # type: ignore[arg-type]
            party=int(change.get("party", 2)),  # type: ignore[call-overload]
        )
    assert await snapshot(services, venue) == before


async def test_hold_on_held_cell_is_unavailable_with_retry_after(services: Services) -> None:
    venue = await make_restaurant(services)
    await raw_hold(services, venue, units=["T1"])
    before = await snapshot(services, venue)
    with pytest.raises(errors.UnitUnavailable) as refused:
        await raw_hold(services, venue, hold_id="H2", user="u2", units=["T1"])
    assert refused.value.retry_after is not None and 595 <= refused.value.retry_after <= 600
    assert await snapshot(services, venue) == before


async def test_hold_on_reserved_cell_has_no_retry_after(services: Services) -> None:
    venue = await make_restaurant(services)
    hold = await place(services, venue, table="T1")
    await raw_confirm(services, venue, hold, f"{venue}-AAAAAA")
    with pytest.raises(errors.UnitUnavailable) as refused:
        await raw_hold(services, venue, hold_id="H2", user="u2", units=["T1"])
    assert refused.value.retry_after is None


async def test_best_fit_with_every_fitting_table_held_says_when(services: Services) -> None:
    venue = await make_restaurant(services, capacities=(2,))
    await raw_hold(services, venue)
    with pytest.raises(errors.NoTableAvailable) as refused:
        await raw_hold(services, venue, hold_id="H2", user="u2")
    assert refused.value.retry_after is not None


async def test_cap_boundary_counts_live_units_and_prunes_lapsed(services: Services) -> None:
    venue = await make_restaurant(services, capacities=(2, 2, 2), max_holds_per_user=2)
    await raw_hold(services, venue, hold_id="A")
    await raw_hold(services, venue, hold_id="B")
    before = await snapshot(services, venue)
    with pytest.raises(errors.HoldLimitReached):
        await raw_hold(services, venue, hold_id="C")
    assert await snapshot(services, venue) == before
    # Another user is not affected by u1's cap.
    await raw_hold(services, venue, hold_id="D", user="u2")
    # Once one of u1's holds lapses (sweeper or not), u1 may hold again.
    await lapse(services, venue, "A")
    placed = await raw_hold(services, venue, hold_id="E", slot=slot_tomorrow(20))
    assert placed.units == ("T1",)


async def test_paused_past_and_window(services: Services) -> None:
    venue = await make_restaurant(services, days=200, min_notice_minutes=0, max_days_ahead=30)
    await services.restaurants.update(venue, RestaurantPatch(bookings_open=False))
    with pytest.raises(errors.BookingsPaused):
        await raw_hold(services, venue)
    await services.restaurants.update(venue, RestaurantPatch(bookings_open=True))
    # A slot in the grid but already started.
    await services.redis.zadd(vk(venue).slots, {"2020-01-01T10:00": 1_577_872_800_000})
    with pytest.raises(errors.SlotInPast):
        await raw_hold(services, venue, slot="2020-01-01T10:00")
    far = (await services.redis.zrange(vk(venue).slots, -1, -1))[0]
    with pytest.raises(errors.OutsideBookingWindow):
        await raw_hold(services, venue, slot=far)
    await services.restaurants.update(venue, RestaurantPatch(min_notice_minutes=5 * 24 * 60))
    with pytest.raises(errors.OutsideBookingWindow):
        await raw_hold(services, venue)


async def test_lapsed_hold_on_the_cell_is_swept_first(services: Services) -> None:
    venue = await make_restaurant(services, capacities=(2,))
    await raw_hold(services, venue, hold_id="OLD")
    await lapse(services, venue, "OLD")
    with pytest.raises(errors.NeedsSweep) as signal:
        await raw_hold(services, venue, hold_id="NEW", user="u2")
    assert signal.value.hold_ids == ["OLD"]
    # Through the service the sweep happens inline: expired entry before the new held one.
    hold = await place(services, venue, "u2")
    assert hold.table_id == "T1"
    assert await feed_events(services, venue) == ["held", "expired", "held"]


# -- refresh.lua ------------------------------------------------------------------------------


async def test_refresh_extends_and_is_capped_by_lifetime(services: Services) -> None:
    venue = await make_restaurant(services, hold_seconds=600, max_hold_seconds=900)
    placed = await raw_hold(services, venue)
    refreshed = await services.scripts.refresh(
        vk(venue), hold_id="H1", token_digest=digest("tok-H1"), slot=slot_tomorrow(), user_id="u1"
    )
    assert refreshed.expires_ms >= placed.expires_ms
    # Push the hold to the end of its life: the next refresh stops at created + max.
    # As if 500 s had passed: created 400 s ago, lapsing in 100 s.
    await services.redis.hset(
        vk(venue).hold("H1"),
        mapping={
            "created": refreshed.now_ms - 400_000,
            "ends": refreshed.now_ms + 500_000,
            "expires": refreshed.now_ms + 100_000,
        },
    )
    capped = await services.scripts.refresh(
        vk(venue), hold_id="H1", token_digest=digest("tok-H1"), slot=slot_tomorrow(), user_id="u1"
    )
    assert capped.expires_ms == capped.created_ms + 900_000
    before = await snapshot(services, venue)
    with pytest.raises(errors.HoldLifetimeExceeded):
        await services.scripts.refresh(
            vk(venue),
            hold_id="H1",
            token_digest=digest("tok-H1"),
            slot=slot_tomorrow(),
            user_id="u1",
        )
    assert await snapshot(services, venue) == before
    assert await feed_events(services, venue) == ["held", "refreshed", "refreshed"]


@pytest.mark.parametrize("case", ["missing", "wrong_token", "lapsed", "released", "confirmed"])
async def test_refresh_refusals_extend_nothing(services: Services, case: str) -> None:
    venue = await make_restaurant(services)
    hold = await place(services, venue)
    token = digest(str(hold.token))
    expected: type[Exception] = errors.HoldExpired
    hold_id = hold.id
    if case == "missing":
        hold_id, expected = "nope", errors.NotFound
    elif case == "wrong_token":
        token, expected = digest("bad"), errors.Forbidden
    elif case == "lapsed":
        await lapse(services, venue, hold.id)
    elif case == "released":
        await services.holds.release(venue, "restaurant", hold.id, hold.token)  # type: ignore[arg-type]
    elif case == "confirmed":
        await raw_confirm(services, venue, hold, f"{venue}-BBBBBB", token=token)
    before = await snapshot(services, venue)
    with pytest.raises(expected):
        await services.scripts.refresh(
            vk(venue), hold_id=hold_id, token_digest=token, slot=hold.slot, user_id="u1"
        )
    assert await snapshot(services, venue) == before


# -- release.lua and expire.lua ---------------------------------------------------------------


async def test_release_frees_at_once_and_is_idempotent(services: Services) -> None:
    venue = await make_restaurant(services, capacities=(2,))
    hold = await place(services, venue)
    args: dict[str, Any] = {
        "hold_id": hold.id,
        "token_digest": digest(str(hold.token)),
        "slot": hold.slot,
        "user_id": "u1",
    }
    with pytest.raises(errors.Forbidden):
        await services.scripts.release(vk(venue), **{**args, "token_digest": digest("x")})
    with pytest.raises(errors.NotFound):
        await services.scripts.release(vk(venue), **{**args, "hold_id": "nope"})
    assert (await services.scripts.release(vk(venue), **args)).changed
    assert not (await services.scripts.release(vk(venue), **args)).changed
    assert (await place(services, venue, "u2")).table_id == "T1"
    assert await feed_events(services, venue) == ["held", "released", "held"]


async def test_release_of_confirmed_hold_is_refused(services: Services) -> None:
    venue = await make_restaurant(services)
    hold = await place(services, venue)
    token = digest(str(hold.token))
    await raw_confirm(services, venue, hold, f"{venue}-CCCCCC", token=token)
    with pytest.raises(errors.HoldExpired):
        await services.scripts.release(
            vk(venue), hold_id=hold.id, token_digest=token, slot=hold.slot, user_id="u1"
        )


async def test_release_of_lapsed_hold_records_expiry(services: Services) -> None:
    venue = await make_restaurant(services)
    hold = await place(services, venue)
    await lapse(services, venue, hold.id)
    await services.scripts.release(
        vk(venue),
        hold_id=hold.id,
        token_digest=digest(str(hold.token)),
        slot=hold.slot,
        user_id="u1",
    )
    assert await feed_events(services, venue) == ["held", "expired"]


async def test_expire_codes_and_parallel_sweepers_expire_once(services: Services) -> None:
    venue = await make_restaurant(services)
    hold = await place(services, venue)
    live = await services.scripts.expire(vk(venue), hold_id=hold.id, slot=hold.slot, user_id="u1")
    assert not live.changed  # NOT_EXPIRED: still live
    await lapse(services, venue, hold.id)
    results = await asyncio.gather(
        *(
            services.scripts.expire(vk(venue), hold_id=hold.id, slot=hold.slot, user_id="u1")
            for _ in range(20)
        )
    )
    assert sum(r.changed for r in results) == 1
    assert await feed_events(services, venue) == ["held", "expired"]
    assert await services.redis.zcard(vk(venue).holds) == 0
    assert await services.redis.hlen(vk(venue).cells(hold.slot)) == 0


async def test_sweeper_pass_expires_only_lapsed_holds(services: Services) -> None:
    venue = await make_restaurant(services, capacities=(2, 2))
    first = await place(services, venue)
    await place(services, venue, "u2")
    await lapse(services, venue, first.id)
    assert await services.sweeper.sweep_once() == 1
    assert await services.sweeper.sweep_once() == 0
    assert await feed_events(services, venue) == ["held", "held", "expired"]


# -- confirm.lua and cancel.lua ---------------------------------------------------------------


async def test_confirm_codes(services: Services) -> None:
    venue = await make_restaurant(services)
    hold = await place(services, venue)
    base: dict[str, Any] = {
        "venue_id": venue,
        "hold_id": hold.id,
        "token_digest": digest(str(hold.token)),
        "slot": hold.slot,
        "user_id": "u1",
        "reference": f"{venue}-DDDDDD",
        "manage_digest": "m",
        "name": "A",
        "phone": "+12125550100",
        "email": "",
        "notes": "",
    }
    with pytest.raises(errors.NotFound):
        await services.scripts.confirm(vk(venue), **{**base, "hold_id": "nope"})
    with pytest.raises(errors.Forbidden):
        await services.scripts.confirm(vk(venue), **{**base, "token_digest": digest("x")})
    await services.redis.hset(vk(venue).reservation(f"{venue}-TAKENX"), "status", "confirmed")
    with pytest.raises(errors.ReferenceTaken):
        await services.scripts.confirm(vk(venue), **{**base, "reference": f"{venue}-TAKENX"})
    first = await services.scripts.confirm(vk(venue), **base)
    again = await services.scripts.confirm(vk(venue), **{**base, "reference": f"{venue}-EEEEEE"})
    assert not first.replayed and again.replayed and again.reference == first.reference
    assert await services.redis.hget(vk(venue).cells(hold.slot), "T1") == f"r|{venue}-DDDDDD"
    assert await services.redis.zcard(vk(venue).holds) == 0
    assert await feed_events(services, venue) == ["held", "confirmed"]


async def test_confirm_of_lapsed_hold_is_expired(services: Services) -> None:
    venue = await make_restaurant(services)
    hold = await place(services, venue)
    await lapse(services, venue, hold.id)
    before = await snapshot(services, venue)
    with pytest.raises(errors.HoldExpired):
        await raw_confirm(services, venue, hold, f"{venue}-FFFFFF")
    assert await snapshot(services, venue) == before


async def test_cancel_codes(services: Services) -> None:
    venue = await make_restaurant(services)
    hold = await place(services, venue)
    ref = f"{venue}-GGGGGG"
    await raw_confirm(services, venue, hold, ref)  # manage digest "m"
    guest: dict[str, Any] = {
        "reference": ref,
        "slot": hold.slot,
        "manage_digest": "m",
        "actor": None,
    }
    before = await snapshot(services, venue)
    with pytest.raises(errors.NotFound):
        await services.scripts.cancel(vk(venue), **{**guest, "reference": f"{venue}-HHHHHH"})
    for wrong in ("", "n"):
        with pytest.raises(errors.Forbidden):
            await services.scripts.cancel(vk(venue), **{**guest, "manage_digest": wrong})
    with pytest.raises(errors.Stale):  # read in another slot: nothing is freed there
        await services.scripts.cancel(vk(venue), **{**guest, "slot": slot_tomorrow(20)})
    assert await snapshot(services, venue) == before
    assert (await services.scripts.cancel(vk(venue), **guest)).changed
    assert not (await services.scripts.cancel(vk(venue), **guest)).changed
    assert await services.redis.hlen(vk(venue).cells(hold.slot)) == 0
    assert await feed_events(services, venue) == ["held", "confirmed", "cancelled"]


@pytest.mark.parametrize("status", ["no_show", "completed"])
async def test_cancel_of_a_staff_marked_reservation_is_for_staff_only(
    services: Services, status: str
) -> None:
    """cancel.lua decides from the status it reads, whatever the caller read before."""
    venue = await make_restaurant(services)
    hold = await place(services, venue)
    ref = f"{venue}-JJJJJJ"
    await raw_confirm(services, venue, hold, ref)
    await services.redis.hset(vk(venue).reservation(ref), "status", status)
    guest: dict[str, Any] = {
        "reference": ref,
        "slot": hold.slot,
        "manage_digest": "m",
        "actor": None,
    }
    before = await snapshot(services, venue)
    with pytest.raises(errors.Forbidden):
        await services.scripts.cancel(vk(venue), **guest)
    assert await snapshot(services, venue) == before
    staff = {**guest, "manage_digest": "", "actor": "admin"}
    assert (await services.scripts.cancel(vk(venue), **staff)).changed
    assert await services.redis.hlen(vk(venue).cells(hold.slot)) == 0


async def raw_change(services: Services, venue: str, ref: str, **overrides: Any) -> Changed:
    """change.lua: by default a guest (manage digest "m") changing ``ref`` as read at 19:00
    with phone +12125550100; ``overrides`` say otherwise."""
    args: dict[str, Any] = {
        "reference": ref,
        "current_slot": slot_tomorrow(),
        "current_phone": "+12125550100",
        "fields": {},
        "target_slot": None,
        "target_unit": None,
        "party_size": None,
        "actor": None,
        "manage_digest": "m",
        **overrides,
    }
    return await services.scripts.change(vk(venue), **args)


async def test_change_is_stale_only_when_a_key_it_needs_moved(services: Services) -> None:
    """Read at another slot or phone: a move, or a phone change, is STALE (nothing changes);
    any other change needs neither key and commits on what the script reads."""
    venue = await make_restaurant(services, capacities=(2, 2))
    hold = await place(services, venue)
    ref = f"{venue}-KKKKKK"
    await raw_confirm(services, venue, hold, ref)  # 19:00, T1, +12125550100
    before = await snapshot(services, venue)
    stale_reads: list[dict[str, Any]] = [
        {"current_slot": slot_tomorrow(20), "target_unit": "T2"},
        {"current_slot": slot_tomorrow(20), "target_slot": slot_tomorrow(21)},
        {"current_phone": "+12125550199", "fields": {"phone": "+12125550177"}},
    ]
    for overrides in stale_reads:
        with pytest.raises(errors.Stale):
            await raw_change(services, venue, ref, **overrides)
    assert await snapshot(services, venue) == before
    for overrides in (
        {"current_slot": slot_tomorrow(20), "fields": {"name": "B"}, "party_size": 1},
        {"current_phone": "+12125550199", "fields": {"notes": "n"}},
        {"current_phone": "+12125550199", "fields": {"phone": "+12125550100"}},  # unchanged
    ):
        assert (await raw_change(services, venue, ref, **overrides)).changed
    stored = await services.redis.hgetall(vk(venue).reservation(ref))
    assert (stored["name"], stored["party"], stored["notes"]) == ("B", "1", "n")


async def test_change_checks_the_token_and_status_it_reads(services: Services) -> None:
    venue = await make_restaurant(services, capacities=(2, 2))
    hold = await place(services, venue)
    ref = f"{venue}-MMMMMM"
    await raw_confirm(services, venue, hold, ref)
    before = await snapshot(services, venue)
    for overrides in ({"manage_digest": ""}, {"manage_digest": "x"}):
        with pytest.raises(errors.Forbidden):
            await raw_change(services, venue, ref, fields={"name": "B"}, **overrides)
    await services.redis.hset(vk(venue).reservation(ref), "status", "no_show")
    with pytest.raises(errors.Forbidden):
        await raw_change(services, venue, ref, target_unit="T2")
    await services.redis.hset(vk(venue).reservation(ref), "status", "confirmed")
    assert await snapshot(services, venue) == before
    staff = {"actor": "admin", "manage_digest": ""}
    assert (await raw_change(services, venue, ref, fields={"status": "completed"}, **staff)).changed
    assert (await raw_change(services, venue, ref, target_unit="T2", **staff)).changed
    assert await services.redis.hgetall(vk(venue).cells(hold.slot)) == {"T2": f"r|{ref}"}


def test_unknown_status_raises() -> None:
    with pytest.raises(errors.UnknownStatus):
        errors.raise_for_status([99, 0])
    with pytest.raises(errors.UnknownStatus):
        errors.raise_for_status([-1, 0])


async def test_real_time_expiry_by_redis_clock(services: Services) -> None:
    venue = await make_restaurant(services, capacities=(2,), hold_seconds=1, max_hold_seconds=1)
    hold = await place(services, venue)
    with pytest.raises(errors.UnitUnavailable):
        await raw_hold(services, venue, hold_id="X", user="u2", units=["T1"])
    await asyncio.sleep(1.1)
    # Free for everyone at once, before any sweep.
    view = await services.restaurants.slot_view(venue, hold.slot)
    assert view.tables[0].status == "available"
    assert (await place(services, venue, "u2")).table_id == "T1"


async def test_throttle_allows_a_burst_of_the_limit_then_one_per_interval(
    services: Services,
) -> None:
    """GCRA: 5 a minute = 5 at once, then refused (nothing counted) until 12 s have passed."""
    rate = KEYS.rate("203.0.113.7")
    interval, window = 12_000_000, 60_000_000
    allowed = [
        await services.scripts.throttle(rate, interval_us=interval, window_us=window)
        for _ in range(5)
    ]
    assert [a.remaining for a in allowed] == [4, 3, 2, 1, 0]
    assert 59_000_000 < allowed[-1].reset_us <= window  # the whole burst is back in a minute
    stored = await services.redis.get(rate)
    for _ in range(3):
        with pytest.raises(errors.RateLimited) as refused:
            await services.scripts.throttle(rate, interval_us=interval, window_us=window)
        assert refused.value.retry_after in (11, 12)
    assert await services.redis.get(rate) == stored  # a refusal changes nothing
    assert 59_000 < await services.redis.pttl(rate) <= 60_000
    # Another client has its own budget.
    other = await services.scripts.throttle(
        KEYS.rate("2001:db8::1"), interval_us=interval, window_us=window
    )
    assert other.remaining == 4


async def test_throttle_refills_at_the_steady_rate(services: Services) -> None:
    """Two a second (interval 500 ms): after the burst, one more every half second."""
    rate = KEYS.rate("198.51.100.1")
    kwargs = {"interval_us": 500_000, "window_us": 1_000_000}
    await services.scripts.throttle(rate, **kwargs)
    await services.scripts.throttle(rate, **kwargs)
    with pytest.raises(errors.RateLimited):
        await services.scripts.throttle(rate, **kwargs)
    await asyncio.sleep(0.55)
    assert (await services.scripts.throttle(rate, **kwargs)).remaining == 0
    with pytest.raises(errors.RateLimited):
        await services.scripts.throttle(rate, **kwargs)
