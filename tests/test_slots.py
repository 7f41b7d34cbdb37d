"""Slot grids in local time: DST changes, closing past midnight, slot id validation."""

from __future__ import annotations

from datetime import date, time

import pytest

from holdsvc import slots as timegrid
from holdsvc.models import RestaurantInput
from holdsvc.services import Services

BERLIN = timegrid.zone("Europe/Berlin")
NEW_YORK = timegrid.zone("America/New_York")


def ids(grid: list[tuple[str, int]]) -> list[str]:
    return [slot for slot, _ in grid]


def test_spring_forward_skips_the_missing_hour() -> None:
    grid = timegrid.grid(BERLIN, date(2026, 3, 29), date(2026, 3, 29), time(0), time(5), 60)
    assert ids(grid) == [f"2026-03-29T0{h}:00" for h in (0, 1, 3, 4)]
    starts = [ms for _, ms in grid]
    # 01:00 and 03:00 local are one real hour apart.
    assert starts[2] - starts[1] == 3_600_000
    assert timegrid.rfc3339(starts[2], BERLIN) == "2026-03-29T03:00:00.000+02:00"


def test_fall_back_uses_the_first_of_the_repeated_hour() -> None:
    grid = timegrid.grid(BERLIN, date(2026, 10, 25), date(2026, 10, 25), time(0), time(5), 60)
    assert ids(grid) == [f"2026-10-25T0{h}:00" for h in range(5)]
    two_am = dict(grid)["2026-10-25T02:00"]
    assert timegrid.rfc3339(two_am, BERLIN) == "2026-10-25T02:00:00.000+02:00"
    # 02:00 (first, +02:00) to 03:00 (+01:00) is two real hours.
    assert dict(grid)["2026-10-25T03:00"] - two_am == 7_200_000


def test_new_york_dst_offsets() -> None:
    grid = timegrid.grid(NEW_YORK, date(2026, 3, 7), date(2026, 3, 8), time(19), time(21), 60)
    texts = [timegrid.rfc3339(ms, NEW_YORK) for _, ms in grid]
    assert texts == [
        "2026-03-07T19:00:00.000-05:00",
        "2026-03-07T20:00:00.000-05:00",
        "2026-03-08T19:00:00.000-04:00",
        "2026-03-08T20:00:00.000-04:00",
    ]


def test_closing_past_midnight_runs_into_the_next_date() -> None:
    grid = timegrid.grid(BERLIN, date(2026, 12, 1), date(2026, 12, 1), time(18), time(2), 60)
    assert ids(grid) == [
        "2026-12-01T18:00",
        "2026-12-01T19:00",
        "2026-12-01T20:00",
        "2026-12-01T21:00",
        "2026-12-01T22:00",
        "2026-12-01T23:00",
        "2026-12-02T00:00",
        "2026-12-02T01:00",
    ]


def test_slot_must_end_by_closing() -> None:
    grid = timegrid.grid(BERLIN, date(2026, 12, 1), date(2026, 12, 1), time(17), time(19, 30), 45)
    assert ids(grid) == ["2026-12-01T17:00", "2026-12-01T17:45", "2026-12-01T18:30"]


@pytest.mark.parametrize(
    "bad",
    [
        "2026-13-01T19:00",
        "2026-02-30T19:00",
        "2026-12-01T24:00",
        "tomorrow",
        "2026-12-01 19:00",
        "",
    ],
)
def test_bad_slot_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="not"):
        timegrid.parse_slot_id(bad)


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        timegrid.zone("Mars/Olympus")


async def test_grid_over_dst_through_the_service_is_idempotent(services: Services) -> None:
    restaurant = await services.restaurants.create(
        RestaurantInput(
            name="Late",
            phone="+49 30 1234567",
            timezone="Europe/Berlin",
            opens="22:00",
            closes="04:00",
        )
    )
    created, total = await services.restaurants.add_slots(restaurant.id, "2030-03-30", "2030-03-31")
    # The 30th serves 22, 23, then 00, 01, 03 of the 31st (02:00 does not exist that night);
    # the 31st serves 22, 23, then 00..03 of April 1st.
    assert (created, total) == (11, 11)
    assert await services.restaurants.add_slots(restaurant.id, "2030-03-30", "2030-03-31") == (
        0,
        11,
    )
    views = (await services.restaurants.slot_views(restaurant.id, "2030-03-31", "2030-03-31")).items
    assert [v.slot for v in views] == [
        "2030-03-31T00:00",
        "2030-03-31T01:00",
        "2030-03-31T03:00",
        "2030-03-31T22:00",
        "2030-03-31T23:00",
    ]
    assert views[1].ends_at == "2030-03-31T03:00:00.000+02:00"


def test_a_day_takes_up_to_four_services_that_may_touch_but_not_overlap() -> None:
    day = timegrid.check_day([("18:00", "01:00"), ("12:00", "15:00"), ("15:00", "17:00")])
    assert [(opens.isoformat("minutes"), closes.isoformat("minutes")) for opens, closes in day] == [
        ("12:00", "15:00"),
        ("15:00", "17:00"),
        ("18:00", "01:00"),
    ]
    for services, reason in [
        ([("12:00", "15:00"), ("14:59", "16:00")], "overlap"),
        ([("18:00", "02:00"), ("23:00", "23:30")], "overlap"),
        ([("10:00", "10:00")], "closes when it opens"),
        ([("24:00", "02:00")], "not a real time"),
        ([("8:00", "10:00")], "not HH:MM"),
        ([(f"{h:02d}:00", f"{h:02d}:30") for h in range(5)], "at most 4"),
    ]:
        with pytest.raises(ValueError, match=reason):
            timegrid.check_day(services)


def test_a_late_service_running_into_the_next_days_first_is_listed_once() -> None:
    week = [[(time(20), time(3))], [(time(1), time(4))], [], [], [], [], []]
    grid = timegrid.weekly_grid(BERLIN, date(2030, 1, 7), date(2030, 1, 8), week, 60)
    assert ids(grid) == [
        "2030-01-07T20:00",
        "2030-01-07T21:00",
        "2030-01-07T22:00",
        "2030-01-07T23:00",
        "2030-01-08T00:00",
        "2030-01-08T01:00",
        "2030-01-08T02:00",
        "2030-01-08T03:00",
    ]


@pytest.mark.parametrize(
    ("night", "expected"),
    [
        # Spring: 02:00..02:59 does not exist; no slot starts there.
        ("2030-03-30", ["23:00", "23:30", "00:00", "00:30", "01:00", "01:30", "03:00", "03:30"]),
        # Autumn: 02:00..02:59 happens twice; each slot once, at its first occurrence.
        (
            "2030-10-26",
            [
                "23:00",
                "23:30",
                "00:00",
                "00:30",
                "01:00",
                "01:30",
                "02:00",
                "02:30",
                "03:00",
                "03:30",
            ],
        ),
    ],
)
def test_a_service_on_the_night_the_clocks_change(night: str, expected: list[str]) -> None:
    week = [[], [], [], [], [], [(time(23), time(4))], []]
    first = date.fromisoformat(night)
    grid = timegrid.weekly_grid(BERLIN, first, first, week, 30)
    assert [slot[11:] for slot in ids(grid)] == expected
    starts = [ms for _, ms in grid]
    assert starts == sorted(set(starts))
