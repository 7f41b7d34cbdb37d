"""The waitlist pages in headless Chromium against a real ``holdsvc serve``: a guest joins a
full slot's waitlist, staff cancel a booking on the staff screen, and the guest's page shows
the offer (countdown and confirm form) and books it."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import httpx
import pytest

from tests.serverproc import ServerProcess
from tests.test_web_browser import (  # noqa: F401 - fixtures
    browser,
    day,
    http,
    new_restaurant,
    open_staff,
    page,
    reserve,
    server,
    shoot,
    slot,
)

with contextlib.suppress(ImportError):  # the test extra installs it; without it, skipped
    from playwright.async_api import Browser, Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


async def test_a_cancel_on_the_staff_screen_offers_the_table_to_the_waiting_guest(
    page: Page,  # noqa: F811 - the fixture
    browser: Browser,  # noqa: F811
    http: httpx.AsyncClient,  # noqa: F811
    server: ServerProcess,  # noqa: F811
) -> None:
    rid = await new_restaurant(http, capacities=(2,))
    booked = await reserve(http, rid, slot(19), name="Grace Hopper")
    # The guest finds 19:00 full and joins its waitlist.
    await page.goto(f"/r/{rid}")
    await page.locator("#waitlist-link").click()
    await page.get_by_label("Time").fill(slot(19))
    await page.get_by_label("Guests").fill("2")
    await page.get_by_label("Name").fill("Ada Lovelace")
    await page.get_by_label("Phone").fill("+1 212 555 0100")
    await page.get_by_role("button", name="Join the waitlist").click()
    await expect(page.locator("#entry-status")).to_have_text("You are number 1 on the waitlist.")
    assert "/w/restaurant/" in page.url and "token=" in page.url

    # Staff see the guest waiting, then cancel the booking on their screen.
    context = await browser.new_context(
        base_url=server.url, viewport={"width": 1100, "height": 900}
    )
    context.set_default_timeout(8000)
    staff = await context.new_page()
    try:
        await open_staff(staff, server, rid)
        await expect(staff.locator("#waitlist-list")).to_contain_text("Ada Lovelace")
        await expect(staff.locator("#waitlist-list")).to_contain_text("waiting, number 1")
        await staff.locator("#list .open-btn").first.click()
        await staff.get_by_role("button", name="Cancel reservation").click()
        await staff.get_by_role("button", name="Press again to cancel").click()
        await expect(staff.locator("#list")).to_contain_text("Cancelled")
        # The freed table went to the guest in the cancel's own step: held, not free.
        await expect(staff.locator(f'[data-key="{slot(19)}|T1"]')).to_have_class(
            re.compile(r"\bheld\b")
        )
        await expect(staff.locator("#waitlist-list")).to_contain_text("offered a table")
    finally:
        await context.close()

    # The guest's page shows the offer: a countdown and the confirm form, as for a hold.
    await expect(page.locator("#step-hold")).to_be_visible()
    await expect(page.locator("#countdown")).to_have_text(re.compile(r"1[45]:\d\d"))
    await page.locator("#guest-name").fill("Ada Lovelace")
    await page.locator("#guest-phone").fill("+1 212 555 0100")
    await page.get_by_role("button", name="Confirm booking").click()
    await expect(page.locator("#step-done")).to_be_visible()
    reference = (await page.locator("#done-ref").text_content()) or ""
    mine = (await http.get(f"/v1/reservations/{reference.strip()}")).json()
    assert mine["name"] == "Ada Lovelace" and mine["slot"] == slot(19)
    assert booked["reference"] != mine["reference"]
    listed = (await http.get(f"/v1/restaurants/{rid}/waitlist?slot={slot(19)}")).json()
    assert listed["entries"] == []  # confirmed: off the staff list
    assert day(1) in mine["slot"]


async def test_a_guest_waits_for_one_section_of_a_sold_out_event(
    page: Page,  # noqa: F811 - the fixture
    http: httpx.AsyncClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    made = await http.post(
        "/v1/events",
        json={
            "name": "Recital",
            "starts_at": f"{day(1)}T19:00:00+00:00",
            "sections": [
                {"id": "A", "name": "Stalls", "rows": [{"id": "1", "seats": 6}]},
                {"id": "B", "name": "Standing", "capacity": 4},
            ],
        },
    )
    assert made.status_code == 201, made.text
    eid = made.json()["id"]
    holds = f"/v1/events/{eid}/holds"
    stalls = await http.post(holds, json={"user_id": "g1", "count": 6, "section": "A"})
    standing = await http.post(holds, json={"user_id": "g2", "count": 4, "section": "B"})
    assert stalls.status_code == standing.status_code == 201
    await page.set_viewport_size({"width": 375, "height": 800})
    await page.goto(f"/e/{eid}/waitlist")
    await page.get_by_label("Seats").fill("2")
    await page.get_by_label("Section").select_option(label="Standing")
    # On a phone: axe-clean, no wider than the screen (and a picture when asked for one).
    await shoot(
        page, Path(os.environ.get("HOLDSVC_SCREENSHOTS_DIR") or tmp_path), "waitlist-section-mobile"
    )
    await page.get_by_label("Name").fill("Ada Lovelace")
    await page.get_by_label("Phone").fill("+1 212 555 0100")
    await page.get_by_role("button", name="Join the waitlist").click()
    await expect(page.locator("#entry-status")).to_have_text("You are number 1 on the waitlist.")
    # Stalls seats free up: not what the guest waits for.
    hold = stalls.json()
    await http.delete(f"{holds}/{hold['id']}", headers={"Hold-Token": hold["token"]})
    listed = (await http.get(f"/v1/events/{eid}/waitlist")).json()["entries"]
    assert [(e["status"], e["section"]) for e in listed] == [("waiting", "B")]
    # Standing places free up: the page shows the offer.
    hold = standing.json()
    await http.delete(f"{holds}/{hold['id']}", headers={"Hold-Token": hold["token"]})
    await expect(page.locator("#step-hold")).to_be_visible()
    await expect(page.locator("#countdown")).to_have_text(re.compile(r"1[45]:\d\d"))
