"""The pages in headless Chromium against a real ``holdsvc serve`` on a loopback port.

Chromium is Debian's (``apt-get install chromium``), driven by the Playwright package; no
browser is ever downloaded. Without it these tests skip, except under ``CI=true`` where they
fail, so CI cannot pass without running them. ``HOLDSVC_SCREENSHOTS_DIR=docs/screenshots``
also writes the README's screenshots (test_main_pages_fit_a_phone_and_a_desktop).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

from tests.serverproc import ServerProcess

try:
    from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect
except ImportError:  # pragma: no cover - the test extra installs it
    async_playwright = None  # type: ignore[assignment]
from axe_playwright_python.async_playwright import Axe

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]
if async_playwright is not None:
    expect.set_options(timeout=8000)  # generous for a busy CI runner; passing tests never wait

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
GUEST = {"name": "Ada Lovelace", "phone": "+1 212 555 0100"}
# The times the pages write in the venue's locale (en-US: 12-hour; the space before PM may be
# a narrow no-break space).
SEVEN_PM = re.compile(r"7:00\sPM")
EIGHT_PM = re.compile(r"8:00\sPM")
AXE = Axe()
# Every default rule, plus the one axe-core ships disabled (experimental) that the issue named:
# a control whose accessible name does not contain its visible text.
AXE_OPTIONS = {
    "resultTypes": ["violations"],
    "rules": {"label-content-name-mismatch": {"enabled": True}},
}
# What no page may have in any state: axe-core's serious and critical violations.
BLOCKING = ("serious", "critical")


def unavailable(reason: str) -> NoReturn:
    """Skip on a laptop without Chromium; fail in CI, where the browser must be there."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(reason)


def chromium_path() -> str | None:
    """Debian's Chromium (or HOLDSVC_CHROMIUM), never a downloaded one."""
    configured = os.environ.get("HOLDSVC_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


def day(offset: int = 1) -> str:
    """A UTC date ``offset`` days from today."""
    return (datetime.now(UTC) + timedelta(days=offset)).date().isoformat()


def slot(hour: int, offset: int = 1) -> str:
    """The slot id at ``hour``:00 UTC, ``offset`` days from today."""
    return f"{day(offset)}T{hour:02d}:00"


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(redis_url: str) -> Iterator[ServerProcess]:
    """One real server for the module (each test makes its own venues)."""
    with ServerProcess(redis_url, env={"HOLDSVC_SWEEP_INTERVAL_SECONDS": "0.2"}) as running:
        yield running


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium, launched once for the module."""
    if async_playwright is None:
        unavailable("the 'playwright' package is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        unavailable("no Chromium found: apt-get install chromium, or set HOLDSVC_CHROMIUM")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """The JSON API of the server, as an admin."""
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
async def page(browser: Browser, server: ServerProcess) -> AsyncIterator[Page]:
    """A fresh browser context (own storage) and page; fails on a script error or a CSP
    violation in the page."""
    context = await browser.new_context(
        base_url=server.url, viewport={"width": 1100, "height": 900}, locale="en-GB"
    )
    context.set_default_timeout(8000)
    opened = await context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            problems.append(f"CSP: {message.text}")

    opened.on("console", on_console)
    try:
        yield opened
    finally:
        await context.close()
    assert not problems, problems


# -- builders ---------------------------------------------------------------------------------


async def new_restaurant(
    http: httpx.AsyncClient,
    *,
    name: str = "Trattoria Da Luca",
    capacities: tuple[int, ...] = (2, 4),
    labels: tuple[str | None, ...] = (),
    days: int = 2,
    **rules: Any,
) -> str:
    """A UTC restaurant open 10:00-22:00 with tables and slots from tomorrow."""
    body = {
        "name": name,
        "phone": "+1 212 555 0199",
        "timezone": "UTC",
        "opens": "10:00",
        "closes": "22:00",
        **rules,
    }
    created = await http.post("/v1/restaurants", json=body)
    assert created.status_code == 201, created.text
    rid: str = created.json()["id"]
    tables: list[dict[str, Any]] = []
    for n, capacity in enumerate(capacities):
        label = labels[n] if n < len(labels) else None
        tables.append({"capacity": capacity} | ({"label": label} if label else {}))
    added = await http.post(f"/v1/restaurants/{rid}/tables", json={"tables": tables})
    assert added.status_code == 201, added.text
    grid = await http.post(f"/v1/restaurants/{rid}/slots", json={"from": day(1), "to": day(days)})
    assert grid.status_code == 201, grid.text
    return rid


async def hold(
    http: httpx.AsyncClient, rid: str, at: str, user: str = "someone-else", party: int = 2
) -> dict[str, Any]:
    """A hold placed by another guest through the API."""
    body = {"user_id": user, "slot": at, "party_size": party}
    response = await http.post(f"/v1/restaurants/{rid}/holds", json=body)
    assert response.status_code == 201, response.text
    held: dict[str, Any] = response.json()
    return held


async def reserve(
    http: httpx.AsyncClient, rid: str, at: str, name: str = "Grace Hopper", party: int = 2
) -> dict[str, Any]:
    """A reservation made through the API (hold, then confirm); with its manage token."""
    held = await hold(http, rid, at, user=f"api-{name}", party=party)
    confirmed = await http.post(
        f"/v1/restaurants/{rid}/holds/{held['id']}/confirm",
        json={"name": name, "phone": "+1 212 555 0142", "notes": "Window seat if possible"},
        headers={"Hold-Token": held["token"]},
    )
    assert confirmed.status_code == 201, confirmed.text
    reservation: dict[str, Any] = confirmed.json()
    return reservation


async def table_status(http: httpx.AsyncClient, rid: str, at: str) -> dict[str, str]:
    """Each table's status in one slot."""
    view = (await http.get(f"/v1/restaurants/{rid}/slots/{at}")).json()
    return {table["id"]: table["status"] for table in view["tables"]}


async def assert_accessible(page: Page, state: str) -> None:
    """axe-core finds no serious or critical violation on the page once it is at rest (no
    request in flight, no transition running: a half-faded list is not what a guest reads)."""
    # page.evaluate (not wait_for_function, which evals inside the page and meets its CSP).
    for _ in range(100):
        at_rest = await page.evaluate(
            "() => !document.querySelector('.htmx-request')"
            " && document.getAnimations().every((a) => a.playState !== 'running')"
        )
        if at_rest:
            break
        await asyncio.sleep(0.05)
    results = await AXE.run(page, options=AXE_OPTIONS)
    found = [v for v in results.response["violations"] if v["impact"] in BLOCKING]
    report = "; ".join(
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:4]}" for v in found
    )
    assert not found, f"{state}: {report}"


async def test_the_accessibility_check_finds_a_planted_violation(page: Page) -> None:
    """assert_accessible is not a check that always passes: a button named unlike its text,
    and an image without a text alternative, are found."""
    await page.goto("/")
    await assert_accessible(page, "home")
    await page.evaluate(
        "() => { const b = document.createElement('button');"
        " b.textContent = 'Prev'; b.setAttribute('aria-label', 'Earlier day');"
        " document.querySelector('main').append(b); }"
    )
    with pytest.raises(AssertionError, match="label-content-name-mismatch"):
        await assert_accessible(page, "planted")


async def shoot(page: Page, folder: Path, name: str) -> None:
    """A full-page screenshot, the page axe-clean first; the page must not be wider than the
    window (375 px too)."""
    await assert_accessible(page, name)
    width = await page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size
    wide = await page.evaluate(
        "() => [...document.querySelectorAll('body *')].filter((e) =>"
        " e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 6)"
        ".map((e) => `${e.tagName}#${e.id}.${e.className}`)"
    )
    assert viewport is not None and width <= viewport["width"], f"{name}: {width} px wide {wide}"
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


async def pick_day(page: Page, date: str) -> None:
    """Choose the day in the guest form (htmx loads its free times)."""
    await page.get_by_label("Date").fill(date)
    await expect(page.locator("#slots .caption, #slots .empty")).to_contain_text(
        re.compile(r"\d{4}")
    )


async def sign_in(page: Page, server: ServerProcess) -> None:
    """The staff or admin login form."""
    await page.get_by_label("Admin token").fill(server.admin_token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#app")).to_be_visible()


# -- guests -----------------------------------------------------------------------------------


async def test_guest_books_then_manages_and_cancels(page: Page, http: httpx.AsyncClient) -> None:
    rid = await new_restaurant(http, labels=("Window",))
    await page.goto(f"/r/{rid}")
    await page.get_by_label("Guests").fill("2")
    await pick_day(page, day(1))
    await page.locator(f'.slot-btn[data-slot="{slot(19)}"]').click()

    panel = page.locator("#step-hold")
    await expect(panel).to_be_visible()
    await expect(page.locator("#hold-summary")).to_contain_text(SEVEN_PM)
    await expect(page.locator("#hold-summary")).to_contain_text("Window")
    countdown = page.get_by_role("timer")
    await expect(countdown).to_have_text(re.compile(r"^(10:00|9:[0-5]\d)$"))
    first = await countdown.inner_text()
    await expect(countdown).not_to_have_text(first)  # it counts down
    assert (await table_status(http, rid, slot(19)))["T1"] == "held"

    await page.get_by_label("Name").fill(GUEST["name"])
    await page.get_by_label("Phone").fill(GUEST["phone"])
    await page.get_by_label("Notes").fill("A quiet corner, please")
    await page.get_by_role("button", name="Confirm booking").click()

    await expect(page.locator("#step-done")).to_be_visible()
    reference = (await page.locator("#done-ref").inner_text()).strip()
    assert reference
    stored = (await http.get(f"/v1/reservations/{reference}")).json()
    assert stored["status"] == "confirmed" and stored["slot"] == slot(19)
    assert stored["notes"] == "A quiet corner, please"
    await expect(page.locator("#messages")).to_contain_text(reference)

    await page.get_by_role("link", name="Manage my booking").click()
    await page.wait_for_url(re.compile(rf"/manage/{reference}\?token=.+"))
    await expect(page.locator("#res-ref")).to_have_text(reference)
    await expect(page.locator("#res-status")).to_have_text("Confirmed")
    await expect(page.locator("#res-when")).to_contain_text(SEVEN_PM)

    await page.get_by_role("button", name="Cancel this booking").click()
    await page.get_by_role("button", name="Yes, cancel it").click()
    await expect(page.locator("#res-status")).to_have_text("Cancelled")
    await expect(page.locator("#messages")).to_contain_text("cancelled")
    await expect(page.locator("#cancel-section")).to_be_hidden()
    await expect(page.get_by_role("link", name="Book a table again")).to_be_visible()
    assert (await http.get(f"/v1/reservations/{reference}")).json()["status"] == "cancelled"
    assert (await table_status(http, rid, slot(19)))["T1"] == "available"


async def test_a_table_taken_meanwhile_says_so_and_refreshes(
    page: Page, http: httpx.AsyncClient
) -> None:
    rid = await new_restaurant(http, capacities=(4,))
    await page.goto(f"/r/{rid}")
    await pick_day(page, day(1))
    taken = page.locator(f'.slot-btn[data-slot="{slot(19)}"]')
    await expect(taken).to_be_visible()

    await hold(http, rid, slot(19))  # someone else, between viewing and clicking
    await taken.click()
    await expect(page.locator("#messages")).to_contain_text("just taken")
    await expect(taken).to_have_count(0)  # the list was fetched again
    await expect(page.locator(f'.slot-btn[data-slot="{slot(20)}"]')).to_be_visible()
    await expect(page.locator("#step-hold")).to_be_hidden()

    # Back gives the hold up at once.
    await page.locator(f'.slot-btn[data-slot="{slot(20)}"]').click()
    await expect(page.locator("#step-hold")).to_be_visible()
    assert (await table_status(http, rid, slot(20)))["T1"] == "held"
    await page.get_by_role("button", name="Back").click()
    await expect(page.locator("#messages")).to_contain_text("released")
    await expect(page.locator("#step-search")).to_be_visible()
    assert (await table_status(http, rid, slot(20)))["T1"] == "available"


async def test_the_countdown_lapses_and_says_so(page: Page, http: httpx.AsyncClient) -> None:
    rid = await new_restaurant(http, capacities=(2,), hold_seconds=2, max_hold_seconds=2)
    await page.goto(f"/r/{rid}")
    await pick_day(page, day(1))
    await page.locator(f'.slot-btn[data-slot="{slot(12)}"]').click()
    await expect(page.locator("#step-hold")).to_be_visible()
    await expect(page.locator("#hold-note")).to_contain_text("longest we can hold")
    await expect(page.locator("#messages")).to_contain_text("hold has lapsed", timeout=6000)
    await expect(page.get_by_role("timer")).to_have_text("0:00")
    await expect(page.get_by_role("button", name="Confirm booking")).to_be_disabled()
    await page.get_by_role("button", name="Choose again").click()
    await expect(page.locator(f'.slot-btn[data-slot="{slot(12)}"]')).to_be_visible()


async def test_the_manage_page_moves_a_booking(page: Page, http: httpx.AsyncClient) -> None:
    rid = await new_restaurant(http, capacities=(2, 4))
    reservation = await reserve(http, rid, slot(19), party=3)  # the 4-top, T2
    reference = reservation["reference"]
    await page.goto(f"/manage/{reference}?token={reservation['manage_token']}")
    await expect(page.locator("#res-when")).to_contain_text(SEVEN_PM)
    await expect(page.locator("#move-slots .slot-btn.current")).to_contain_text(SEVEN_PM)

    # Only times with a free table that fits the party are offered: at 21:00 the 4-top goes,
    # and the 2-top left is too small for 3.
    await reserve(http, rid, slot(21), name="Other", party=4)
    await page.get_by_role("button", name="Show free times").click()
    await expect(page.locator(f'#move-slots .slot-btn[data-slot="{slot(21)}"]')).to_have_count(0)
    await page.locator(f'#move-slots .slot-btn[data-slot="{slot(20)}"]').click()
    await expect(page.locator("#messages")).to_contain_text("Moved")
    await expect(page.locator("#res-when")).to_contain_text(EIGHT_PM)
    await expect(page.locator("#move-slots .slot-btn.current")).to_contain_text(EIGHT_PM)
    await expect(page.locator(f'#move-slots .slot-btn[data-slot="{slot(19)}"]')).to_be_visible()
    moved = (await http.get(f"/v1/reservations/{reference}")).json()
    assert moved["slot"] == slot(20) and moved["table_id"] == "T2"
    assert (await table_status(http, rid, slot(19)))["T2"] == "available"


async def test_event_best_seats_and_keyboard_selection(page: Page, http: httpx.AsyncClient) -> None:
    created = await http.post(
        "/v1/events",
        json={"name": "String Quartet", "starts_at": f"{day(3)}T19:30:00+00:00", "total_seats": 20},
    )
    assert created.status_code == 201, created.text
    eid = created.json()["id"]
    taken = await http.post(f"/v1/events/{eid}/holds", json={"user_id": "x", "seats": ["S1", "S2"]})
    assert taken.status_code == 201

    await page.goto(f"/e/{eid}")
    await expect(page.locator('[data-seat="S1"]')).to_have_class(re.compile(r"\bheld\b"))
    # Keyboard: one tab stop, arrows move, Space selects.
    await page.locator('[data-seat="S3"]').focus()
    await page.keyboard.press("ArrowRight")
    await page.keyboard.press("Space")
    await expect(page.locator('[data-seat="S4"]')).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("#selected-count")).to_have_text("Selected: 4")
    await page.keyboard.press("Space")
    await expect(page.locator("#selected-count")).to_have_text("No seats selected")

    await page.get_by_label("Number of seats").fill("3")
    await page.get_by_role("button", name="Hold the best seats").click()
    await expect(page.locator("#hold-summary")).to_contain_text("Seats 3, 4, 5")
    await expect(page.get_by_role("timer")).to_have_text(re.compile(r"^\d+:\d\d$"))
    await page.get_by_label("Name").fill(GUEST["name"])
    await page.get_by_label("Phone").fill(GUEST["phone"])
    await page.get_by_role("button", name="Confirm booking").click()
    await expect(page.locator("#done-summary")).to_contain_text("Seats 3, 4, 5")
    reference = (await page.locator("#done-ref").inner_text()).strip()
    assert (await http.get(f"/v1/reservations/{reference}")).json()["seats"] == ["S3", "S4", "S5"]
    for seat in ("S3", "S4", "S5"):
        await expect(page.locator(f'[data-seat="{seat}"]')).to_have_class(re.compile("reserved"))


# -- staff ------------------------------------------------------------------------------------


async def open_staff(page: Page, server: ServerProcess, rid: str) -> None:
    """The staff page, signed in, showing tomorrow's grid, live."""
    await page.goto(f"/staff/{rid}")
    await sign_in(page, server)
    await page.get_by_label("Day shown").fill(day(1))
    await expect(page.locator(f'#grid [data-key^="{day(1)}T"]').first).to_be_visible()
    await expect(page.locator("#conn")).to_contain_text("Live")


async def test_staff_see_a_new_booking_live(
    page: Page, http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await new_restaurant(http, labels=("Window",))
    await open_staff(page, server, rid)
    cell = page.locator(f'[data-key="{slot(19)}|T1"]')
    await expect(cell).to_have_class(re.compile(r"\bavailable\b"))
    await page.evaluate("window.notReloaded = true")

    held = await hold(http, rid, slot(19))
    await expect(cell).to_have_class(re.compile(r"\bheld\b"))
    confirmed = await http.post(
        f"/v1/restaurants/{rid}/holds/{held['id']}/confirm",
        json={"name": "Grace Hopper", "phone": "+1 212 555 0142"},
        headers={"Hold-Token": held["token"]},
    )
    reference = confirmed.json()["reference"]
    await expect(cell).to_contain_text("Grace Hopper")
    await expect(page.locator("#list")).to_contain_text("Grace Hopper")
    await expect(page.locator("#activity")).to_contain_text(f"New booking {reference}")
    assert await page.evaluate("window.notReloaded") is True

    # Staff work on it: notes and tags, no-show, then pause bookings.
    await cell.click()
    await expect(page.locator("#detail")).to_be_visible()
    await page.get_by_label("Business notes (staff only)").fill("Regular; likes the window")
    await page.get_by_label("Tags, comma-separated (up to 10)").fill("vip, regular")
    await page.get_by_role("button", name="Save notes and tags").click()
    await expect(page.locator("#list")).to_contain_text("vip, regular")
    # A no-show is asked twice; before the start the server refuses it (not_started).
    await page.get_by_role("button", name="Mark no-show").click()
    await expect(page.locator("#d-noshow-confirm")).to_be_visible()
    await page.get_by_role("button", name="Yes, mark no-show").click()
    await expect(page.locator("#messages")).to_contain_text("not started yet")
    await page.get_by_role("button", name="Mark seated").click()
    await expect(page.locator("#list")).to_contain_text("Seated")
    await expect(page.locator("#activity")).to_contain_text(f"{reference}")
    await expect(page.locator("#activity")).to_contain_text("seated")
    await page.get_by_role("button", name="Undo: back to confirmed").click()
    await expect(page.locator("#activity")).to_contain_text("back to confirmed")
    await expect(page.locator("#covers")).to_contain_text("Covers on")
    await expect(page.locator("#covers")).to_contain_text(": 2")
    stored = (await http.get(f"/v1/reservations/{reference}")).json()
    assert stored["tags"] == ["vip", "regular"] and stored["status"] == "confirmed"
    assert stored["business_notes"] == "Regular; likes the window"
    await page.get_by_role("button", name="Pause online bookings").click()
    await expect(page.locator("#bookings-state")).to_have_text("Online booking paused")
    assert (await http.get(f"/v1/restaurants/{rid}")).json()["bookings_open"] is False


async def test_staff_phone_booking_move_and_cancel(
    page: Page, http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await new_restaurant(http, capacities=(2, 4))
    await open_staff(page, server, rid)
    await page.locator(f'[data-key="{slot(18)}|T2"]').click()  # a free cell: phone booking
    await expect(page.get_by_label("Booking time")).to_have_value(slot(18))
    await page.locator("#b-name").fill("Alan Turing")
    await page.locator("#b-phone").fill("+1 212 555 0177")
    await page.get_by_role("button", name="Book", exact=True).click()
    await expect(page.locator("#messages")).to_contain_text("Booked")
    await expect(page.locator(f'[data-key="{slot(18)}|T2"]')).to_contain_text("Alan Turing")

    await page.locator("#list .open-btn").first.click()
    await page.locator("#d-move-slot").select_option(slot(20))
    await page.get_by_role("button", name="Move", exact=True).click()
    await expect(page.locator("#messages")).to_contain_text("Moved")
    await expect(page.locator("#activity")).to_contain_text(
        re.compile(r"moved 6:00\sPM → 8:00\sPM")
    )
    await expect(page.locator(f'[data-key="{slot(20)}|T1"]')).to_contain_text("Alan Turing")
    await expect(page.locator(f'[data-key="{slot(18)}|T2"]')).to_have_class(
        re.compile(r"\bavailable\b")
    )
    await page.get_by_role("button", name="Cancel reservation").click()
    await page.get_by_role("button", name="Press again to cancel").click()
    await expect(page.locator("#list")).to_contain_text("Cancelled")
    await expect(page.locator(f'[data-key="{slot(20)}|T1"]')).to_have_class(
        re.compile(r"\bavailable\b")
    )


async def test_staff_offline_show_the_cached_list_then_catch_up(
    page: Page, http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await new_restaurant(http)
    await reserve(http, rid, slot(19), name="Grace Hopper")
    await open_staff(page, server, rid)
    await expect(page.locator("#list")).to_contain_text("Grace Hopper")
    await expect(page.locator("#staff")).to_have_attribute("data-offline-ready", "true")
    synced = await page.locator("#synced").get_attribute("data-synced-at")

    await page.context.set_offline(True)
    await page.reload()
    await expect(page.locator("#conn")).to_contain_text("Offline")
    await expect(page.locator("#list")).to_contain_text("Grace Hopper")
    await expect(page.locator("#synced")).to_contain_text("Last synced at")
    assert await page.locator("#synced").get_attribute("data-synced-at") == synced
    await expect(page.locator("#grid")).to_contain_text("Grace Hopper")

    await reserve(http, rid, slot(20), name="Alan Turing")  # made while the page is offline
    await page.context.set_offline(False)
    await expect(page.locator("#conn")).to_contain_text("Live")
    await expect(page.locator("#list")).to_contain_text("Alan Turing")
    assert await page.locator("#synced").get_attribute("data-synced-at") != synced


# -- admin ------------------------------------------------------------------------------------


async def test_admin_creates_a_restaurant_its_tables_slots_and_an_event(
    page: Page, server: ServerProcess, http: httpx.AsyncClient
) -> None:
    await page.goto("/admin")
    await sign_in(page, server)
    name = f"Osteria {uuid.uuid4().hex[:6]}"
    await page.get_by_label("Name", exact=True).first.fill(name)
    await page.locator("#r-phone").fill("+1 212 555 0123")
    await page.locator("#r-timezone").fill("Europe/Rome")
    await page.get_by_role("button", name="Create restaurant").click()
    await expect(page.locator("#messages")).to_contain_text(f"Created {name}")
    listed = (await http.get("/v1/restaurants")).json()["restaurants"]
    rid = next(r["id"] for r in listed if r["name"] == name)
    await expect(page.locator("#t-restaurant")).to_have_value(rid)

    # Pressed twice: the tables are added once (the same Idempotency-Key), the form reset.
    add = page.get_by_role("button", name="Add these tables")
    await page.evaluate(
        "() => { const f = document.getElementById('tables-form');"
        " f.requestSubmit(); f.requestSubmit(); }"
    )
    await expect(page.locator("#te-cap-T3")).to_have_value("6")
    await expect(add).to_be_enabled()
    await expect(page.locator("#tables-now tbody tr")).to_have_count(3)
    # Fix a table: a new label and capacity, then remove one.
    await page.locator("#te-label-T1").fill("Window")
    await page.locator("#te-cap-T1").fill("4")
    await page.get_by_role("button", name="Save table T1").click()
    await expect(page.locator("#messages")).to_contain_text("Saved table T1: Window, 4 seats")
    await page.get_by_role("button", name="Remove table T2").click()
    await expect(page.locator("#messages")).to_contain_text("Removed table T2")
    await expect(page.locator("#tables-now tbody tr")).to_have_count(2)
    # Edit the restaurant's own fields.
    await page.get_by_label("Restaurant name").fill(f"{name} bis")
    await page.locator("#x-address").fill("Via Roma 1, Roma")
    await page.locator("#x-locale").fill("it-IT")
    await page.get_by_role("button", name="Save restaurant details").click()
    await expect(page.locator("#messages")).to_contain_text(f"Saved the details of {name} bis")
    edited = (await http.get(f"/v1/restaurants/{rid}")).json()
    assert (edited["address"], edited["locale"]) == ("Via Roma 1, Roma", "it-IT")
    await page.get_by_role("button", name="Create slots").click()
    await expect(page.locator("#messages")).to_contain_text("Created 140 slots")
    tables = (await http.get(f"/v1/restaurants/{rid}/tables")).json()["tables"]
    assert [(t["id"], t["label"], t["capacity"]) for t in tables] == [
        ("T1", "Window", 4),
        ("T3", None, 6),
    ]

    show = f"Jazz Night {uuid.uuid4().hex[:6]}"
    await page.locator("#e-name").fill(show)
    await page.locator("#e-starts").fill(f"{day(5)}T20:00")
    await page.locator("#e-timezone").fill("Europe/Rome")
    await page.locator("#e-seats").fill("40")
    await page.get_by_role("button", name="Create event").click()
    await expect(page.locator("#messages")).to_contain_text(f"Created {show}")
    events = (await http.get("/v1/events")).json()["events"]
    jazz = next(e for e in events if e["name"] == show)
    assert jazz["starts_at"].startswith(f"{day(5)}T20:00:00.000+0")  # Rome time, its offset
    assert jazz["total_seats"] == 40
    await expect(page.locator("#venues")).to_contain_text(show)


async def staff_token_of(
    http: httpx.AsyncClient, server: ServerProcess, rid: str, role: str
) -> str:
    """A new staff token of the restaurant, made with the admin token."""
    made = await http.post(
        f"/v1/restaurants/{rid}/staff-tokens",
        json={"name": f"{role.title()} desk", "role": role},
        headers={"Authorization": f"Bearer {server.admin_token}"},
    )
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


async def test_a_host_books_by_phone_and_a_manager_action_is_refused(
    page: Page, http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await new_restaurant(http, capacities=(2, 4))
    host = await staff_token_of(http, server, rid, "host")
    await page.goto(f"/staff/{rid}")
    await page.get_by_label("Staff or admin token").fill(host)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#role-badge")).to_have_text("Signed in as Host · Host desk")
    # What only a manager may do is not offered to a host.
    await expect(page.locator("#staff-tokens")).to_be_hidden()
    await page.get_by_label("Day shown").fill(day(1))
    await page.locator(f'[data-key="{slot(18)}|T2"]').click()
    await page.locator("#b-name").fill("Katherine Johnson")
    await page.locator("#b-phone").fill("+1 212 555 0133")
    await page.get_by_role("button", name="Book", exact=True).click()
    await expect(page.locator("#messages")).to_contain_text("Booked")
    await expect(page.locator(f'[data-key="{slot(18)}|T2"]')).to_contain_text("Katherine")
    # A manager's page, tried with the host's token: refused, and nothing is shown.
    await page.goto("/admin")
    await page.get_by_label("Admin token").fill(host)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#messages")).to_contain_text("does not allow this page")
    await expect(page.locator("#app")).to_be_hidden()
    tables = await http.post(
        f"/v1/restaurants/{rid}/tables",
        json={"tables": [{"capacity": 2}]},
        headers={"Authorization": f"Bearer {host}"},
    )
    assert tables.status_code == 403


async def test_a_manager_creates_a_staff_token_shown_once(
    page: Page, http: httpx.AsyncClient, server: ServerProcess
) -> None:
    rid = await new_restaurant(http)
    manager = await staff_token_of(http, server, rid, "manager")
    await page.goto(f"/staff/{rid}")
    await page.get_by_label("Staff or admin token").fill(manager)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#role-badge")).to_contain_text("Manager")
    panel = page.locator("#staff-tokens")
    await expect(panel).to_be_visible()
    await panel.get_by_label("Token name").fill("Terrace")
    await panel.get_by_label("Role").select_option("host")
    await panel.get_by_role("button", name="Create staff token").click()
    await expect(panel.locator(".st-token")).to_have_text(re.compile(r"^hst\."))
    token = (await panel.locator(".st-token").inner_text()).strip()
    assert (
        await http.get(
            f"/v1/restaurants/{rid}/reservations", headers={"Authorization": f"Bearer {token}"}
        )
    ).status_code == 200
    await panel.get_by_role("button", name="Revoke Terrace").click()
    await expect(page.locator("#messages")).to_contain_text("can no longer sign in")
    gone = await http.get(
        f"/v1/restaurants/{rid}/reservations", headers={"Authorization": f"Bearer {token}"}
    )
    assert gone.status_code == 401


async def test_the_admin_token_is_checked_and_never_in_a_url(
    page: Page, server: ServerProcess
) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    await page.goto("/admin")
    await page.get_by_label("Admin token").fill("wrong-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#messages")).to_contain_text("not accepted")
    await expect(page.locator("#app")).to_be_hidden()
    await sign_in(page, server)
    stored = await page.evaluate("sessionStorage.getItem('holdsvc:admin-token')")
    assert stored == server.admin_token
    assert not [url for url in requests if server.admin_token in url]


# -- every main page on a phone and a desktop (and the README's screenshots) -----------------


@pytest.mark.timeout(300)
async def test_main_pages_fit_a_phone_and_a_desktop(
    browser: Browser, server: ServerProcess, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Every main page at 1100 and 375 px wide, with realistic data, axe-clean in every
    state walked (guest, manage, event, staff, admin; see assert_accessible); the screenshots
    go to HOLDSVC_SCREENSHOTS_DIR (the README's: docs/screenshots) when set."""
    folder = Path(os.environ.get("HOLDSVC_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    rid = await new_restaurant(
        http,
        name="Trattoria Da Luca",
        capacities=(2, 2, 4, 4, 6),
        labels=("Window", "Bar", "Garden", None, "Booth"),
        days=4,
        address="Via dei Coronari 24, Roma",
        description="Roman classics, fresh pasta every morning, a small garden.",
    )
    # A day with every table taken: the page points to the next day with a free one.
    for n in range(5):
        for hour in range(10, 22):
            await reserve(http, rid, slot(hour, 3), name=f"Full {n}", party=[2, 2, 4, 4, 6][n])
    for hour, name, party in [
        (12, "Ada Lovelace", 2),
        (13, "Grace Hopper", 4),
        (19, "Alan Turing", 2),
        (19, "Katherine Johnson", 4),
        (20, "Edsger Dijkstra", 6),
    ]:
        await reserve(http, rid, slot(hour), name=name, party=party)
    await hold(http, rid, slot(19), party=2)
    eid = (
        await http.post(
            "/v1/events",
            json={
                "name": "String Quartet in the Cloister",
                "starts_at": f"{day(4)}T19:30:00+00:00",
                "total_seats": 80,
            },
        )
    ).json()["id"]
    await http.post(f"/v1/events/{eid}/holds", json={"user_id": "s1", "seats": ["S14", "S15"]})
    best = (await http.post(f"/v1/events/{eid}/holds", json={"user_id": "s2", "count": 6})).json()
    await http.post(
        f"/v1/events/{eid}/holds/{best['id']}/confirm",
        json=GUEST,
        headers={"Hold-Token": best["token"]},
    )

    for width, suffix in [(1100, ""), (375, "-mobile")]:
        context = await browser.new_context(
            base_url=server.url, viewport={"width": width, "height": 800}, locale="en-GB"
        )
        shot = await context.new_page()
        await shot.goto("/")
        await assert_accessible(shot, f"home{suffix}")
        await shot.goto(f"/r/{rid}")
        await pick_day(shot, day(3))
        await expect(shot.locator("#slots .next-available")).to_be_visible()
        await assert_accessible(shot, f"guest full day{suffix}")
        await expect(shot.get_by_label("Guests")).to_have_attribute("max", "6")
        await expect(shot.locator("#party-help")).to_contain_text("larger parties please call")
        await shot.goto(f"/r/{rid}?date={day(1)}&party_size=9")
        await expect(shot.locator("#slots")).to_contain_text("please call us")
        await assert_accessible(shot, f"guest party too large{suffix}")
        await shot.get_by_label("Guests").fill("2")
        await pick_day(shot, day(1))
        await assert_accessible(shot, f"guest free times{suffix}")
        await shot.locator(f'.slot-btn[data-slot="{slot(18)}"]').click()
        await expect(shot.locator("#step-hold")).to_be_visible()
        await shot.get_by_label("Name").fill("Barbara Liskov")
        await shoot(shot, folder, f"guest-hold{suffix}")
        await shot.get_by_label("Phone").fill("+1 212 555 0111")
        await shot.get_by_role("button", name="Confirm booking").click()
        await expect(shot.locator("#step-done")).to_be_visible()
        await assert_accessible(shot, f"guest booked{suffix}")

        await shot.goto(f"/e/{eid}")
        await assert_accessible(shot, f"event{suffix}")
        await shot.locator('[data-seat="S21"]').click()
        await shot.locator('[data-seat="S22"]').click()
        await shoot(shot, folder, f"event-seats{suffix}")

        at = slot(14 if suffix else 15, 2)
        reservation = await reserve(http, rid, at, name="Donald Knuth")
        await shot.goto(f"/manage/{reservation['reference']}?token={reservation['manage_token']}")
        await expect(shot.locator("#move-slots .slot-btn").first).to_be_visible()
        await shoot(shot, folder, f"manage{suffix}")
        await shot.get_by_role("button", name="Cancel this booking").click()
        await assert_accessible(shot, f"manage asking to cancel{suffix}")
        await shot.get_by_role("button", name="Yes, cancel it").click()
        await expect(shot.get_by_role("link", name="Book a table again")).to_be_visible()
        await shoot(shot, folder, f"manage-cancelled{suffix}")

        await open_staff(shot, server, rid)
        await expect(shot.locator("#list")).to_contain_text("Edsger Dijkstra")
        await expect(shot.locator("#covers")).to_contain_text("Covers on")
        await shoot(shot, folder, f"staff{suffix}")
        await shot.locator("#list .open-btn").first.click()
        await shot.get_by_role("button", name="Mark no-show").click()
        await expect(shot.locator("#d-noshow-confirm")).to_be_visible()
        await assert_accessible(shot, f"staff asking about a no-show{suffix}")
        await shot.get_by_role("button", name="Keep as it is").click()

        await shot.goto("/admin")
        await expect(shot.locator("#venues")).to_contain_text("Trattoria")
        await shot.locator("#t-restaurant").select_option(rid)
        await expect(shot.locator("#tables-now tbody tr")).to_have_count(5)
        await shoot(shot, folder, f"admin{suffix}")
        await context.close()


# -- schedules and closures -------------------------------------------------------------------


async def test_admin_sets_a_week_a_horizon_and_a_closure_with_the_guests_to_call(
    page: Page, server: ServerProcess, http: httpx.AsyncClient
) -> None:
    rid = await new_restaurant(http, name=f"Bistro {uuid.uuid4().hex[:6]}")
    await reserve(http, rid, slot(19, 2), name="Grace Hopper")
    await page.goto("/admin")
    await sign_in(page, server)
    await page.locator("#t-restaurant").select_option(rid)
    # Without a schedule every day shows opens-closes.
    await expect(page.get_by_label("Sunday service 1 opens")).to_have_value("10:00")

    await page.get_by_role("button", name="Remove Monday service 1").click()
    await expect(page.locator('tr[data-day="mon"] .closed-note')).to_be_visible()
    await page.get_by_label("Tuesday service 1 opens").fill("12:00")
    await page.get_by_label("Tuesday service 1 closes").fill("14:30")
    await page.get_by_role("button", name="Add service on Tuesday").click()
    await page.get_by_label("Tuesday service 2 opens").fill("18:00")
    await page.get_by_label("Tuesday service 2 closes").fill("23:30")
    await page.get_by_role("button", name="Save week").click()
    await expect(page.locator("#messages")).to_contain_text("Saved the week")
    saved = (await http.get(f"/v1/restaurants/{rid}")).json()
    every_day = [{"opens": "10:00", "closes": "22:00"}]
    assert saved["schedule"] == {
        "mon": [],
        "tue": [{"opens": "12:00", "closes": "14:30"}, {"opens": "18:00", "closes": "23:30"}],
        **{key: every_day for key in ("wed", "thu", "fri", "sat", "sun")},
    }
    # What was saved is shown again after the reload.
    await expect(page.get_by_label("Tuesday service 2 closes")).to_have_value("23:30")

    await page.get_by_label("Keep slots this many days ahead").fill("7")
    await page.get_by_role("button", name="Save days ahead").click()
    await expect(page.locator("#messages")).to_contain_text("7 days ahead")
    assert (await http.get(f"/v1/restaurants/{rid}")).json()["horizon_days"] == 7

    await page.get_by_label("Closed from").fill(day(2))
    await page.get_by_label("Closed until").fill(day(2))
    await page.get_by_label("Reason (optional)").fill("Staff party")
    await page.get_by_role("button", name="Close these dates").click()
    await expect(page.locator("#messages")).to_contain_text("removed 11 free slots")
    kept = page.locator("#kept")
    await expect(kept).to_contain_text("Call these guests")
    await expect(kept).to_contain_text(SEVEN_PM)
    await expect(kept).to_contain_text("Grace Hopper")
    await expect(kept.get_by_role("link", name="+12125550142")).to_have_attribute(
        "href", "tel:+12125550142"
    )
    await expect(page.locator("#closures")).to_contain_text("Staff party")
    closures = (await http.get(f"/v1/restaurants/{rid}/closures")).json()["closures"]
    assert closures == [{"from": day(2), "to": day(2), "reason": "Staff party"}]

    await page.get_by_role("button", name=re.compile("^Reopen from")).click()
    await expect(page.locator("#messages")).to_contain_text("Reopened")
    await expect(page.locator("#closures li")).to_have_count(0)
    assert (await http.get(f"/v1/restaurants/{rid}/closures")).json() == {"closures": []}


async def test_the_guest_page_shows_closed_days_as_closed(
    page: Page, http: httpx.AsyncClient
) -> None:
    weekday_off = datetime.fromisoformat(day(3)).weekday()
    keys = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    week = {key: [{"opens": "10:00", "closes": "22:00"}] for key in keys}
    week[keys[weekday_off]] = []
    rid = await new_restaurant(http, capacities=(2,), days=4, schedule=week)
    closing = await http.post(
        f"/v1/restaurants/{rid}/closures", json={"from": day(1), "to": day(1), "reason": "Holiday"}
    )
    assert closing.status_code == 201, closing.text
    await page.goto(f"/r/{rid}")
    await expect(page.get_by_role("list", name="Opening hours")).to_contain_text(
        f"{datetime.fromisoformat(day(3)):%A} closed"
    )
    await pick_day(page, day(1))
    await expect(page.locator("#slots")).to_contain_text("We are closed on")
    await expect(page.locator("#slots")).to_contain_text("(Holiday)")
    await pick_day(page, day(3))
    weekday = f"{datetime.fromisoformat(day(3)):%A}"
    await expect(page.locator("#slots [data-closed]")).to_contain_text(weekday)
    await expect(page.locator("#slots [data-closed]")).to_contain_text(
        "we are closed that day of the week"
    )
    await expect(page.locator("#slots")).not_to_contain_text("No free table")
    await pick_day(page, day(2))
    await expect(page.locator("#slots .slot-btn")).to_have_count(12)
