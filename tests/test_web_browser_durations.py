"""Pages of durations and combinations (issue 15) in real headless Chromium: the guest sees
when a booking ends, staff see one booking drawn across its slots and tables, the admin page
sets durations, pacing and the one-booking rule and makes and removes combinations."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.serverproc import ServerProcess
from tests.test_web_browser import (  # the fixtures and builders of the browser suite
    GUEST,
    browser,
    day,
    hold,
    http,
    new_restaurant,
    open_staff,
    page,
    pick_day,
    server,
    sign_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]
__all__ = ["browser", "http", "page", "server"]

DASH = "\u2013"  # the en dash between a booking's start and its end
DURATIONS = [{"max_party": 2, "minutes": 90}, {"max_party": 4, "minutes": 120}]


def at(hhmm: str) -> str:
    """A slot id of tomorrow (UTC)."""
    return f"{day(1)}T{hhmm}"


async def test_the_guest_sees_when_the_booking_ends(page: Page, http: httpx.AsyncClient) -> None:
    # A 24-hour locale: the times below read as the issue writes them (19:00 to 21:00).
    rid = await new_restaurant(http, slot_minutes=30, durations=DURATIONS, locale="en-GB")
    await page.goto(f"/r/{rid}")
    await page.get_by_label("Guests").fill("2")
    await pick_day(page, day(1))
    button = page.locator(f'.slot-btn[data-slot="{at("19:00")}"]')
    await expect(button).to_contain_text(f"19:00{DASH}20:30")
    # A table free at 19:00 but not for the whole 90 minutes is not offered.
    await hold(http, rid, at("20:00"))
    await hold(http, rid, at("20:00"), user="another", party=4)
    await page.locator("#search").evaluate("f => htmx.trigger(f, 'refresh')")
    await expect(page.locator(f'.slot-btn[data-slot="{at("19:00")}"]')).to_have_count(0)
    await expect(page.locator(f'.slot-btn[data-slot="{at("18:00")}"]')).to_contain_text(
        f"18:00{DASH}19:30"
    )
    await page.locator(f'.slot-btn[data-slot="{at("18:00")}"]').click()
    await expect(page.locator("#hold-summary")).to_contain_text(f"18:00{DASH}19:30")
    await page.get_by_label("Name").fill(GUEST["name"])
    await page.get_by_label("Phone").fill(GUEST["phone"])
    await page.get_by_role("button", name="Confirm booking").click()
    await expect(page.locator("#done-summary")).to_contain_text(f"18:00{DASH}19:30")
    reference = (await page.locator("#done-ref").inner_text()).strip()
    stored = (await http.get(f"/v1/reservations/{reference}")).json()
    assert stored["ends_at"] == f"{day(1)}T19:30:00.000+00:00"


async def test_staff_see_a_booking_across_its_slots_and_tables(
    page: Page, http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await new_restaurant(
        http, capacities=(2, 2), slot_minutes=30, durations=DURATIONS, locale="en-GB"
    )
    made = await http.post(
        f"/v1/restaurants/{rid}/combinations", json={"tables": ["T1", "T2"], "capacity": 4}
    )
    assert made.status_code == 201
    booked = await http.post(
        f"/v1/restaurants/{rid}/reservations",
        json={
            "slot": at("19:00"),
            "party_size": 4,
            "name": "Grace Hopper",
            "phone": "+12125550142",
        },
    )
    assert booked.status_code == 201, booked.text
    await open_staff(page, server, rid)
    first = page.locator(f'[data-key="{at("19:00")}|T1"]')
    await expect(first).to_contain_text("Grace Hopper")
    await expect(first).to_contain_text("until 21:00")
    # Down its slots and across the combination's other table: one booking, one block.
    later = page.locator(f'[data-key="{at("20:30")}|T1"]')
    await expect(later).to_have_class(re.compile(r"\bspan-slot\b"))
    await expect(later).to_contain_text("Grace Hopper")
    joined = page.locator(f'[data-key="{at("19:00")}|T2"]')
    await expect(joined).to_have_class(re.compile(r"\bspan-table\b"))
    await expect(joined).to_contain_text(f"19:00{DASH}21:00")
    await expect(page.locator(f'[data-key="{at("21:00")}|T1"]')).to_have_class(
        re.compile(r"\bavailable\b")
    )


async def test_admin_sets_durations_pacing_and_combinations(
    page: Page, server: ServerProcess, http: httpx.AsyncClient
) -> None:
    rid = await new_restaurant(
        http, name=f"Enoteca {uuid.uuid4().hex[:6]}", capacities=(2, 2, 4), slot_minutes=30
    )
    await page.goto("/admin")
    await sign_in(page, server)
    await page.locator("#t-restaurant").select_option(rid)
    await expect(page.locator("#rules")).to_be_visible()

    await page.get_by_role("button", name="Add a rule").click()
    await page.get_by_label("Rule 1: parties up to").fill("2")
    await page.get_by_label("Rule 1: minutes").fill("90")
    await page.get_by_role("button", name="Add a rule").click()
    await page.get_by_label("Rule 2: parties up to").fill("6")
    await page.get_by_label("Rule 2: minutes").fill("150")
    await page.get_by_role("button", name="Save durations").click()
    await expect(page.locator("#messages")).to_contain_text("Saved 2 duration rules")
    saved = (await http.get(f"/v1/restaurants/{rid}")).json()
    assert saved["durations"] == [
        {"max_party": 2, "minutes": 90},
        {"max_party": 6, "minutes": 150},
    ]
    # A length that is no multiple of the slot is refused with the API's words.
    await page.get_by_label("Rule 2: minutes").fill("100")
    await page.get_by_role("button", name="Save durations").click()
    await expect(page.locator("#messages")).to_contain_text("multiple of slot_minutes")

    await page.get_by_label("Most guests starting in one slot").fill("12")
    await page.get_by_label("One booking per guest at a time").check()
    await page.get_by_role("button", name="Save pacing").click()
    await expect(page.locator("#messages")).to_contain_text("Saved pacing")
    saved = (await http.get(f"/v1/restaurants/{rid}")).json()
    assert (saved["max_covers_per_slot"], saved["one_booking_per_guest"]) == (12, True)

    await page.locator('.combo-table[value="T1"]').check()
    await page.locator('.combo-table[value="T2"]').check()
    await page.get_by_label("Seats together").fill("4")
    await page.get_by_role("button", name="Add combination").click()
    await expect(page.locator("#messages")).to_contain_text("Combination C1 (T1 + T2) seats 4")
    await expect(page.locator("#combinations")).to_contain_text("C1: T1 + T2, seats 4")
    listed = (await http.get(f"/v1/restaurants/{rid}/combinations")).json()
    assert listed == {"combinations": [{"id": "C1", "tables": ["T1", "T2"], "capacity": 4}]}
    await page.get_by_role("button", name="Remove combination C1").click()
    await expect(page.locator("#messages")).to_contain_text("Removed combination C1")
    await expect(page.locator("#combinations li")).to_have_count(0)
    assert (await http.get(f"/v1/restaurants/{rid}/combinations")).json() == {"combinations": []}
