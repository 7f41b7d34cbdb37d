"""The seat-map event page in headless Chromium: drawn in the browser from compact data,
pick seats or the best N together, general admission as a counter (issue 21).

``HOLDSVC_SCREENSHOTS_DIR=docs/screenshots`` also writes the README's screenshot of it.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_web_browser import GUEST, browser, day, http, page, server

# Without playwright the borrowed browser fixture skips (or fails under CI) before any body.
with contextlib.suppress(ImportError):
    from playwright.async_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]
__all__ = ["browser", "http", "page", "server"]  # the fixtures this module borrows

MAP: list[dict[str, Any]] = [
    {
        "id": "A",
        "name": "Stalls",
        "rows": [{"id": str(r), "seats": 12} for r in range(1, 6)],
    },
    {"id": "B", "name": "Balcony", "rows": [{"id": "1", "seats": 8}, {"id": "2", "seats": 8}]},
    {"id": "GA", "name": "Standing", "capacity": 40},
]


async def new_map_event(http: httpx.AsyncClient, sections: list[dict[str, Any]]) -> str:
    created = await http.post(
        "/v1/events",
        json={"name": "Open Air", "starts_at": f"{day(4)}T20:00:00+00:00", "sections": sections},
    )
    assert created.status_code == 201, created.text
    eid: str = created.json()["id"]
    return eid


async def test_seat_map_page_picks_best_together_and_standing(
    page: Page, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    eid = await new_map_event(http, MAP)
    taken = await http.post(
        f"/v1/events/{eid}/holds", json={"user_id": "x", "seats": ["A-1-5", "A-1-6"]}
    )
    assert taken.status_code == 201

    await page.goto(f"/e/{eid}")
    await expect(page.locator('[data-seat="A-1-5"]')).to_have_class(re.compile(r"\bheld\b"))
    await expect(page.locator('[data-ga-section="GA"]')).to_have_text("Standing: 40 places left")
    folder = Path(os.environ.get("HOLDSVC_SCREENSHOTS_DIR") or tmp_path)
    await page.screenshot(path=str(folder / "event-seatmap.png"), full_page=True)

    # Pick a seat on the map, then drop it again.
    await page.locator('[data-seat="B-2-3"]').click()
    await expect(page.locator("#selected-count")).to_have_text("Selected: B row 2 seat 3")
    await page.locator('[data-seat="B-2-3"]').click()
    await expect(page.locator("#selected-count")).to_have_text("No seats selected")

    # Best 4 together: row 1 is free at 1-4 and 7-12; 7-10 is nearest the middle and leaves
    # no seat alone.
    await page.get_by_label("Number of seats").fill("4")
    await page.get_by_role("button", name="Hold the best seats").click()
    summary = "Seats A row 1 seat 7, A row 1 seat 8, A row 1 seat 9, A row 1 seat 10"
    await expect(page.locator("#hold-summary")).to_contain_text(summary)
    await page.get_by_label("Name").fill(GUEST["name"])
    await page.get_by_label("Phone").fill(GUEST["phone"])
    await page.get_by_role("button", name="Confirm booking").click()
    await expect(page.locator("#done-summary")).to_contain_text(summary)
    reference = (await page.locator("#done-ref").inner_text()).strip()
    booked = (await http.get(f"/v1/reservations/{reference}")).json()
    assert booked["seats"] == ["A-1-7", "A-1-8", "A-1-9", "A-1-10"]
    await expect(page.locator('[data-seat="A-1-9"]')).to_have_class(re.compile("reserved"))


async def test_standing_places_from_the_counter(page: Page, http: httpx.AsyncClient) -> None:
    eid = await new_map_event(http, MAP)
    await page.goto(f"/e/{eid}")
    await expect(page.locator('[data-ga-section="GA"]')).to_have_text("Standing: 40 places left")
    await page.get_by_label("Number of seats").fill("3")
    await page.get_by_label("Where").select_option("GA")
    await page.get_by_role("button", name="Hold the best seats").click()
    await expect(page.locator("#hold-summary")).to_contain_text("3 standing places (GA)")
    await expect(page.locator('[data-ga-section="GA"]')).to_have_text("Standing: 37 places left")


async def test_a_big_map_page_stays_light(http: httpx.AsyncClient) -> None:
    rows = [{"id": str(r), "seats": 100} for r in range(1, 51)]
    eid = await new_map_event(
        http, [{"id": "A", "name": "A", "rows": rows}, {"id": "B", "name": "B", "rows": rows}]
    )
    html = await http.get(f"/e/{eid}")
    data = await http.get(f"/e/{eid}/map")
    assert html.status_code == 200 and data.status_code == 200
    # 10 000 seats: a few kB of page and about a byte a seat of data, not 1.8 MB of HTML.
    assert len(html.content) < 20_000, len(html.content)
    assert len(data.content) < 20_000, len(data.content)
    assert sum(len(states) for _, states in data.json()["sections"][0]["rows"]) == 5000
