"""The web pages without a browser: routes, fragments, errors, headers, static files, markup.

The browser tests (test_web_browser.py) drive the same pages in Chromium; these check what a
browser cannot see cheaply: every response header, every error page, that no template has an
inline script or handler (the Content-Security-Policy would block it), that every input has a
label, and that the service worker lists every module the staff page imports.
"""

from __future__ import annotations

import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from holdsvc.web.pages import CONTENT_SECURITY_POLICY
from tests.helpers import (
    ADMIN,
    Client,
    day_after,
    new_reservation,
    new_venue,
    slot_tomorrow,
    tomorrow,
)

WEB = Path(__file__).parent.parent / "src" / "holdsvc" / "web"
STATIC = WEB / "static"
TEMPLATES = WEB / "templates"
SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


class Markup(HTMLParser):
    """Collects form controls, labels, scripts and inline handlers of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.append(str(attributes["id"]))
        for name, _ in attrs:
            if name.startswith("on") or name == "style" or name.startswith("hx-on"):
                self.inline.append(f"<{tag} {name}>")
        if tag in {"input", "select", "textarea"} and attributes.get("type") != "hidden":
            self.controls.append(attributes)
        elif tag == "label" and attributes.get("for"):
            self.label_for.add(str(attributes["for"]))
        elif tag == "script":
            self.scripts.append(attributes)


def check_markup(html: str) -> Markup:
    """Every control has a label, ids are unique, no inline script, handler or style."""
    markup = Markup()
    markup.feed(html)
    unlabeled = [c for c in markup.controls if c.get("id") not in markup.label_for]
    assert not unlabeled, f"inputs without a <label for>: {unlabeled}"
    assert not markup.inline, f"inline handlers or styles: {markup.inline}"
    assert all((s.get("src") or "").startswith("/static/") for s in markup.scripts), markup.scripts
    duplicated = {i for i in markup.ids if markup.ids.count(i) > 1}
    assert not duplicated, f"duplicate ids: {duplicated}"
    return markup


def visible(html: str) -> str:
    """The text a reader sees: no tags, attributes or scripts."""
    return re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", " ", html, flags=re.S))


def assert_page(response: Any, status: int = 200) -> str:
    """An HTML page with the security headers; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    for name, value in SECURITY.items():
        assert response.headers[name] == value
    policy = response.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    body: str = response.text
    return body


async def test_every_page_renders_with_labels_and_security_headers(client: Client) -> None:
    rid = await new_venue(client, capacities=(2, 4))
    event = await client.post(
        "/v1/events",
        json={"name": "Quartet", "starts_at": f"{tomorrow()}T19:30:00+00:00", "total_seats": 12},
        headers=ADMIN,
    )
    eid = event.json()["id"]
    reservation = await new_reservation(client, rid)
    manage = f"/manage/{reservation['reference']}?token={reservation['manage_token']}"
    for path in ["/", f"/r/{rid}", f"/e/{eid}", manage, f"/staff/{rid}", "/admin"]:
        check_markup(assert_page(await client.get(path)))


async def test_guest_page_lists_free_times_of_the_day(client: Client) -> None:
    rid = await new_venue(client, capacities=(2, 4))
    body = assert_page(await client.get(f"/r/{rid}?date={tomorrow()}&party_size=3"))
    assert "Book a table at Test Bistro" in body
    assert f'data-slot="{slot_tomorrow(19)}"' in body
    assert body.count('class="slot-btn"') == 12  # 10:00..21:00, the 4-seat table fits 3


async def test_slots_fragment_answers_each_case_in_words(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,))
    fragment = {"HX-Request": "true"}

    async def slots(query: str) -> str:
        response = await client.get(f"/r/{rid}/slots?{query}", headers=fragment)
        assert response.status_code == 200
        assert "<html" not in response.text
        text: str = response.text
        return text

    assert f'data-slot="{slot_tomorrow(10)}"' in await slots(f"date={tomorrow()}&party_size=2")
    too_many = await slots(f"date={tomorrow()}&party_size=5")
    assert "We seat up to 2 guests online" in too_many and "(212) 555-0100" in too_many
    assert "Please pick a valid date" in await slots("date=2026-02-30&party_size=2")
    assert "whole number from 1 to 50" in await slots(f"date={tomorrow()}&party_size=x")
    assert "in the past" in await slots("date=2000-01-01&party_size=2")
    assert "up to 90 days ahead" in await slots("date=2999-01-01&party_size=2")
    moving = await slots(f"date={tomorrow()}&party_size=2&purpose=move&current={slot_tomorrow(19)}")
    assert "your time now" in moving
    assert 'Move to </span><span class="time">8:00\u202fPM<span class="until">' in moving

    paused = await client.patch(
        f"/v1/restaurants/{rid}", json={"bookings_open": False}, headers=ADMIN
    )
    assert paused.status_code == 200
    assert "Online booking is paused" in await slots(f"date={tomorrow()}&party_size=2")


async def test_pages_speak_the_venues_locale_and_show_no_inventory(client: Client) -> None:
    rid = await new_venue(client, capacities=(2, 4))
    details = {"address": "Hauptstraße 1, Berlin", "description": "Kleine Teller."}
    await client.patch(f"/v1/restaurants/{rid}", json=details, headers=ADMIN)
    page = assert_page(await client.get(f"/r/{rid}?date={tomorrow()}&party_size=2"))
    assert 'class="brand" href="/r/' in page and ">Test Bistro</a>" in page
    us = visible(page)
    assert "7:00\u202fPM" in us and "19:00" not in us
    assert "(212) 555-0100" in us and "Hauptstraße 1, Berlin" in us and "Kleine Teller." in us
    assert "UTC" not in us  # no raw time-zone name
    assert "tables" not in us.lower() and " T1" not in us  # no inventory
    day = date.fromisoformat(tomorrow())
    assert f"{day.year}" in us and day.strftime("%A") in us
    await client.patch(f"/v1/restaurants/{rid}", json={"locale": "de-DE"}, headers=ADMIN)
    de = visible(assert_page(await client.get(f"/r/{rid}?date={tomorrow()}&party_size=2")))
    assert "19:00" in de and "PM" not in de
    german_days = ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"]
    assert german_days[day.weekday()] in de


async def test_a_full_day_shows_the_next_available_date(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,))
    await client.post(
        f"/v1/restaurants/{rid}/slots",
        json={"from": tomorrow(), "to": day_after(3)},
        headers=ADMIN,
    )
    for hour in range(10, 22):
        await new_reservation(client, rid, slot=slot_tomorrow(hour))
    body = (await client.get(f"/r/{rid}/slots?date={tomorrow()}&party_size=2")).text
    assert f'data-next="{day_after(2)}"' in body and "next day with a free table" in body
    page = assert_page(await client.get(f"/r/{rid}?date={tomorrow()}&party_size=2"))
    assert f'max="{day_after(3)}"' in page  # the date picker stops where the grid stops
    assert 'max="2"' in page  # the party size stops at the largest table


async def test_a_cancelled_booking_offers_to_book_again(client: Client) -> None:
    rid = await new_venue(client)
    reservation = await new_reservation(client, rid)
    reference = reservation["reference"]
    token = {"Manage-Token": reservation["manage_token"]}
    await client.delete(f"/v1/reservations/{reference}", headers=token)
    page = assert_page(await client.get(f"/manage/{reference}?token={reservation['manage_token']}"))
    again = re.search(r'<section id="again-section"[^>]*>', page)
    assert again and "hidden" not in again.group(0)
    assert f'href="/r/{rid}?date=' in page and "Book a table again" in page


async def test_a_taken_table_leaves_the_list(client: Client) -> None:
    rid = await new_venue(client, capacities=(2,))
    await new_reservation(client, rid, slot=slot_tomorrow(19))
    body = (await client.get(f"/r/{rid}/slots?date={tomorrow()}&party_size=2")).text
    assert f'data-slot="{slot_tomorrow(19)}"' not in body
    assert f'data-slot="{slot_tomorrow(20)}"' in body


async def test_seat_map_shows_each_status(client: Client) -> None:
    created = await client.post(
        "/v1/events",
        json={"name": "Quartet", "starts_at": f"{tomorrow()}T19:30:00+00:00", "total_seats": 10},
        headers=ADMIN,
    )
    eid = created.json()["id"]
    held = await client.post(f"/v1/events/{eid}/holds", json={"user_id": "u", "seats": ["S2"]})
    assert held.status_code == 201
    body = (await client.get(f"/e/{eid}/seats", headers={"HX-Request": "true"})).text
    assert re.search(r'class="seat available" data-seat="S1"', body)
    assert re.search(r'class="seat held" data-seat="S2"', body)
    assert "9 of 10 seats free" in body


async def test_manage_page_needs_the_right_token(client: Client) -> None:
    rid = await new_venue(client)
    reservation = await new_reservation(client, rid)
    reference = reservation["reference"]
    page = await client.get(f"/manage/{reference}?token={reservation['manage_token']}")
    body = assert_page(page)
    assert reference in body and "Confirmed" in body
    assert page.headers["cache-control"] == "no-store"
    wrong = assert_page(await client.get(f"/manage/{reference}?token=nope"), 403)
    assert "token is wrong or missing" in wrong
    assert_page(await client.get(f"/manage/{reference}"), 403)
    assert_page(await client.get(f"/manage/{rid}-NOSUCH?token=x"), 404)
    card = await client.get(
        f"/manage/{reference}/card",
        headers={"HX-Request": "true", "Manage-Token": reservation["manage_token"]},
    )
    assert card.status_code == 200 and reference in card.text and "<html" not in card.text
    refused = await client.get(f"/manage/{reference}/card", headers={"HX-Request": "true"})
    assert refused.status_code == 403 and "<html" not in refused.text


async def test_unknown_venue_is_an_html_404(client: Client) -> None:
    for path in ["/r/NOSUCH", "/e/NOSUCH", "/staff/NOSUCH"]:
        body = assert_page(await client.get(path), 404)
        assert "We could not find that" in body


async def test_static_files_and_service_worker(client: Client) -> None:
    htmx = await client.get("/static/htmx.min.js")
    assert htmx.status_code == 200
    assert htmx.headers["x-content-type-options"] == "nosniff"
    assert "javascript" in htmx.headers["content-type"]
    assert htmx.text.startswith("/*! htmx 2.")
    assert "0BSD" in htmx.text.splitlines()[0]
    css = await client.get("/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    worker = await client.get("/staff/sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert "holdsvc-staff-v1" in worker.text


def test_the_service_worker_caches_every_module_of_the_staff_page() -> None:
    worker = (STATIC / "js" / "staff-sw.js").read_text()
    cached = set(re.findall(r'"(/static/[^"]+)"', worker))
    for path in cached:
        assert (STATIC / path.removeprefix("/static/")).is_file(), path
    needed = {"/static/app.css", "/static/js/staff.js"}
    pending = ["staff.js"]
    while pending:
        source = (STATIC / "js" / pending.pop()).read_text()
        for module in re.findall(r'from "\./([\w-]+\.js)"', source):
            if f"/static/js/{module}" not in needed:
                needed.add(f"/static/js/{module}")
                pending.append(module)
    assert needed <= cached, needed - cached
    # The staff page and the worker agree on the cache's name.
    assert '"holdsvc-staff-v1"' in (STATIC / "js" / "staff.js").read_text()


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.rglob("*.html")))
def test_templates_have_no_inline_script_or_style(template: str) -> None:
    path = next(TEMPLATES.rglob(template))
    text = path.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "inline <script>"
    assert not re.search(r"\son[a-z]+=", text), "inline event handler"
    assert not re.search(r"\sstyle=", text), "inline style attribute"
    assert "<style" not in text


def test_js_modules_import_only_existing_files() -> None:
    for module in (STATIC / "js").glob("*.js"):
        for name in re.findall(r'from "\./([\w-]+\.js)"', module.read_text()):
            assert (STATIC / "js" / name).is_file(), f"{module.name} imports {name}"


async def test_pages_stay_out_of_the_openapi_document(client: Client) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith(("/r/", "/e/", "/manage", "/staff", "/admin"))]
    assert "/" not in paths and not [p for p in paths if p.startswith("/static")]
