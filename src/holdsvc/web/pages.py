"""Page routes: thin handlers that read through the services and render Jinja templates.

Every state change a page makes (holds, confirms, moves, cancels, staff work) goes through the
JSON API from the browser, with the secret in a header; these routes only render. The htmx
fragments (free times of a day, the seat map, a reservation card) are the same templates the
full pages include.
"""

from __future__ import annotations

import functools
import logging
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency, Provide
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.params import FromPath, Parameter, QueryParameter
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from holdsvc.api.deps import provide_services
from holdsvc.errors import HoldsvcError
from holdsvc.models import AvailableSlot, Reservation, Restaurant, SeatStatus
from holdsvc.services import Services
from holdsvc.venues import VenueKind
from holdsvc.web.views import (
    MESSAGES,
    local_day,
    local_phone,
    message_for,
    parse_day,
    week_day,
)

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# Scripts and styles only from this origin: no inline script, no inline handler, no inline
# style attribute (htmx is told not to inject its indicator style: see base.html).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
# A guest's reservation is nobody else's: no shared or browser cache keeps it.
PRIVATE = {"Cache-Control": "no-store"}
MAX_PARTY = 50
DEFAULT_PARTY = 2


def security_headers(app: ASGIApp) -> ASGIApp:
    """Adds the security headers to every response of the web router (errors included)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await app(scope, receive, with_headers)

    return middleware


def is_fragment(request: Request[Any, Any, Any]) -> bool:
    """An htmx request wants a fragment, not a whole page."""
    return request.headers.get("hx-request") == "true"


def on_page_error(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """Errors of page routes are pages (or fragments for htmx), never JSON."""
    if isinstance(error, HoldsvcError):
        status, code, detail = error.status_code, error.code, error.detail
    elif isinstance(error, HTTPException):
        status = error.status_code
        code = {404: "not_found", 401: "unauthorized", 403: "forbidden"}.get(
            status, "validation_error" if status < 500 else "unavailable"
        )
        detail = str(error.detail)
    elif isinstance(error, RedisConnectionError | RedisTimeoutError):
        status, code, detail = 503, "unavailable", ""
    else:
        log.exception("unhandled error on a page", exc_info=error)
        status, code, detail = 500, "internal_error", ""
    context = {"status": status, "code": code, "message": message_for(code, detail)}
    name = "fragments/error.html" if is_fragment(request) else "error.html"
    return Template(name, context=context, status_code=status)


def venue_today(tz: tzinfo) -> date:
    """Today in the venue's zone (the app's clock is fine for a form's default)."""
    return datetime.now(tz).date()


def party_from(text: str | None) -> int | None:
    """A party size 1..50 from a query value, or None when it is not one."""
    if text is None or text == "":
        return DEFAULT_PARTY
    if not text.isdigit():
        return None
    value = int(text)
    return value if 1 <= value <= MAX_PARTY else None


async def slot_choices(
    services: Services,
    restaurant: Restaurant,
    day_text: str | None,
    party_text: str | None,
) -> dict[str, Any]:
    """The free times of one day for one party: the context of fragments/slots.html."""
    profile = await services.venues.profile(restaurant.id, VenueKind.RESTAURANT)
    today = venue_today(profile.tz)
    day = parse_day(day_text) if day_text else today
    party = party_from(party_text)
    locale = restaurant.locale
    max_party = await services.restaurants.max_party_size(restaurant.id)
    context: dict[str, Any] = {
        "restaurant": restaurant,
        "locale": locale,
        "phone": local_phone(restaurant.phone),
        "day": day.isoformat() if day else "",
        "day_label": local_day(day, locale) if day else "",
        "party": party,
        "max_party": max_party,
        "too_many": False,
        "slots": [],
        "problem": None,
        "current": None,
        "closed": None,
        "next_available": None,
    }
    last_day = today + timedelta(days=restaurant.max_days_ahead)
    if day is None:
        context["problem"] = "Please pick a valid date."
    elif party is None:
        context["problem"] = f"The number of guests must be a whole number from 1 to {MAX_PARTY}."
    elif party > max_party:
        # No table seats them online: the venue arranges larger parties by phone.
        context["too_many"] = True
    elif day < today:
        context["problem"] = "That day is in the past. Please pick today or a later day."
    elif day > last_day:
        context["problem"] = (
            f"We take bookings up to {restaurant.max_days_ahead} days ahead "
            f"(until {local_day(last_day, locale)})."
        )
    else:
        iso = day.isoformat()
        # One day: always one page (HOLDSVC_MAX_CELLS_PER_PAGE holds a day at the most tables).
        found: list[AvailableSlot] = (
            await services.restaurants.availability(restaurant.id, iso, iso, party)
        ).items
        context["slots"] = found
        if not found:
            context["closed"] = await closed_note(services, restaurant, day)
            following = await services.restaurants.next_available(restaurant.id, iso, party)
            if following is not None:
                context["next_available"] = following
                context["next_label"] = local_day(following, locale)
    return context


async def closed_note(services: Services, restaurant: Restaurant, day: date) -> str | None:
    """Why a day with no free time is closed (a closure, or no service that weekday), or
    None when it is open (and simply full)."""
    closed = await services.grid.closed_dates(restaurant.id, day, day)
    closure = closed.get(day.isoformat())
    label = local_day(day, restaurant.locale)
    if closure is not None:
        reason = f" ({closure.reason})" if closure.reason else ""
        return f"We are closed on {label}{reason}. Please pick another day."
    if restaurant.schedule is not None and not week_day(restaurant.schedule, day.weekday()):
        return f"{label}: we are closed that day of the week. Please pick another day."
    return None


def seat_columns(total: int) -> int:
    """Seats per row of the seat map."""
    return 10 if total <= 100 else 20


@get("/", name="web_home")
async def home(services: NamedDependency[Services]) -> Template:
    """Every restaurant and event, with links to their pages."""
    restaurants = await services.restaurants.list_all()
    events = await services.events.list_all()
    return Template("home.html", context={"restaurants": restaurants, "events": events})


@get("/r/{rid:str}", name="web_guest")
async def guest(
    rid: FromPath[str],
    services: NamedDependency[Services],
    day: Annotated[str | None, QueryParameter(name="date", required=False)] = None,
    party_size: Annotated[str | None, Parameter(required=False)] = None,
) -> Template:
    """The guest booking page: a day and a party size, then free times, hold, confirm."""
    restaurant = await services.restaurants.get(rid)
    profile = await services.venues.profile(rid, VenueKind.RESTAURANT)
    today = venue_today(profile.tz)
    context = await slot_choices(services, restaurant, day, party_size)
    tables = await services.restaurants.tables(rid)
    context.update(
        # Only labels reach the guest's page: no table ids, counts or capacities.
        labels={t.id: t.label for t in tables if t.label},
        today=today.isoformat(),
        last_day=await booking_horizon(services, restaurant, today),
        purpose="book",
    )
    return Template("guest.html", context=context)


async def booking_horizon(services: Services, restaurant: Restaurant, today: date) -> str:
    """The last day a guest can pick: the booking window's, or the grid's last slot's day
    when the grid stops sooner (a later day could only ever be empty)."""
    window_end = (today + timedelta(days=restaurant.max_days_ahead)).isoformat()
    grid_end = await services.restaurants.last_grid_day(restaurant.id)
    if grid_end is None:
        return today.isoformat()
    return max(today.isoformat(), min(window_end, grid_end))


@get("/r/{rid:str}/slots", name="web_guest_slots")
async def guest_slots(
    rid: FromPath[str],
    services: NamedDependency[Services],
    day: Annotated[str | None, QueryParameter(name="date", required=False)] = None,
    party_size: Annotated[str | None, Parameter(required=False)] = None,
    purpose: Annotated[str | None, Parameter(required=False)] = None,
    current: Annotated[str | None, Parameter(required=False, max_length=16)] = None,
) -> Template:
    """Fragment: the free times of a day that fit the party (booking, or moving a booking
    whose ``current`` slot is marked)."""
    restaurant = await services.restaurants.get(rid)
    context = await slot_choices(services, restaurant, day, party_size)
    context["purpose"] = "move" if purpose == "move" else "book"
    if purpose == "move" and current and current[:10] == context["day"]:
        # The booking's own time is always shown (marked), even with no other table free.
        context["current"] = current
        listed: list[AvailableSlot] = context["slots"]
        if all(s.slot != current for s in listed):
            here = AvailableSlot(slot=current, starts_at="", ends_at="", tables=[])
            context["slots"] = sorted([*listed, here], key=lambda s: s.slot)
    return Template("fragments/slots.html", context=context)


async def event_context(services: Services, eid: str) -> dict[str, Any]:
    """An event with its seats, for the page and the seat-map fragment."""
    event = await services.events.get(eid)
    seats: list[SeatStatus] = await services.events.seats(eid, None)
    return {
        "event": event,
        "seats": seats,
        "cols": seat_columns(len(seats)),
        "locale": event.locale,
    }


@get("/e/{eid:str}", name="web_event")
async def event_page(eid: FromPath[str], services: NamedDependency[Services]) -> Template:
    """The event page: a seat map, pick seats or the best N, then hold and confirm. A
    seat-map event's page is light: the browser draws the map from ``/e/{eid}/map``."""
    event = await services.events.get(eid)
    if event.sections:
        return Template("event_map.html", context={"event": event})
    return Template("event.html", context=await event_context(services, eid))


@get("/e/{eid:str}/map", name="web_event_map", cache_control=CacheControlHeader(no_store=True))
async def event_map(eid: FromPath[str], services: NamedDependency[Services]) -> dict[str, Any]:
    """The seat map as compact JSON, for the page to draw (sections, rows, seat states)."""
    return await services.events.map_data(eid)


@get("/e/{eid:str}/seats", name="web_event_seats")
async def event_seats(eid: FromPath[str], services: NamedDependency[Services]) -> Template:
    """Fragment: the seat map with each seat's status."""
    return Template("fragments/seats.html", context=await event_context(services, eid))


async def manage_context(services: Services, reference: str, token: str | None) -> dict[str, Any]:
    """A reservation for its guest, with the venue's name and the table's label."""
    reservation: Reservation = await services.reservations.get(
        reference, admin=False, manage_token=token
    )
    profile = await services.venues.profile(reservation.venue_id)
    context: dict[str, Any] = {"r": reservation, "kind": profile.kind, "table": None}
    if profile.kind is VenueKind.RESTAURANT:
        restaurant = await services.restaurants.get(reservation.venue_id)
        tables = {t.id: t for t in await services.restaurants.tables(reservation.venue_id)}
        today = venue_today(profile.tz)
        context.update(
            venue_name=restaurant.name,
            venue_phone=local_phone(restaurant.phone),
            venue_address=restaurant.address,
            locale=restaurant.locale,
            restaurant=restaurant,
            table=tables.get(str(reservation.table_id)) if reservation.table_id else None,
            today=today.isoformat(),
            last_day=await booking_horizon(services, restaurant, today),
            day=reservation.slot[:10],
            max_party=await services.restaurants.max_party_size(reservation.venue_id),
        )
    else:
        event = await services.events.get(reservation.venue_id)
        context.update(
            venue_name=event.name,
            venue_phone=None,
            venue_address=event.address,
            locale=event.locale,
            event=event,
        )
    return context


@get("/manage/{reference:str}", name="web_manage")
async def manage(
    reference: FromPath[str],
    services: NamedDependency[Services],
    token: Annotated[str | None, QueryParameter(name="token", required=False)] = None,
) -> Template:
    """The guest's own reservation: see it, move it, cancel it (the link carries the token)."""
    context = await manage_context(services, reference, token)
    return Template("manage.html", context=context, headers=PRIVATE)


@get("/manage/{reference:str}/card", name="web_manage_card")
async def manage_card(
    request: Request[Any, Any, Any], reference: FromPath[str], services: NamedDependency[Services]
) -> Template:
    """Fragment: the reservation card again after a change (token in the Manage-Token header)."""
    token = request.headers.get("manage-token")
    context = await manage_context(services, reference, token)
    return Template("fragments/reservation.html", context=context, headers=PRIVATE)


@get("/staff/{rid:str}", name="web_staff")
async def staff(rid: FromPath[str], services: NamedDependency[Services]) -> Template:
    """The staff page shell; the data comes from the JSON API with the admin token."""
    restaurant = await services.restaurants.get(rid)
    return Template("staff.html", context={"restaurant": restaurant, "locale": restaurant.locale})


@functools.cache
def service_worker_source() -> bytes:
    """The staff pages' service worker (read once)."""
    return (STATIC / "js" / "staff-sw.js").read_bytes()


@get("/staff/sw.js", name="web_staff_worker")
async def staff_worker() -> Response[bytes]:
    """The service worker that keeps the staff page readable offline (scope ``/staff/``)."""
    return Response(
        service_worker_source(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )


@functools.cache
def codes_module() -> bytes:
    """``/js/codes.js``: the guest sentence of every API code, from the table of codes."""
    table = msgspec.json.encode(MESSAGES).decode()
    header = "// Generated from holdsvc.errors.Problem: do not copy."
    return f"{header}\nexport const MESSAGES = {table};\n".encode()


@get("/js/codes.js", name="web_codes")
async def codes() -> Response[bytes]:
    """The pages' error sentences as a JavaScript module (messages.js imports it)."""
    return Response(
        codes_module(), media_type="text/javascript", headers={"Cache-Control": "no-cache"}
    )


async def waitlist_venue(services: Services, kind: str, venue_id: str) -> dict[str, Any]:
    """What the waitlist pages show of a venue: its kind, id, name and offer length."""
    if kind == VenueKind.RESTAURANT:
        restaurant = await services.restaurants.get(venue_id)
        return {
            "kind": kind,
            "venue_id": venue_id,
            "venue_name": restaurant.name,
            "offer_seconds": restaurant.offer_seconds,
            "step": restaurant.slot_minutes * 60,
        }
    if kind == VenueKind.EVENT:
        event = await services.events.get(venue_id)
        plan = await services.events.seat_map(venue_id)
        return {
            "kind": kind,
            "venue_id": venue_id,
            "venue_name": event.name,
            "offer_seconds": event.offer_seconds,
            "step": 60,
            # A seat-map event's entry may wait for one section (default: any seated one).
            "sections": plan.sections if plan else [],
        }
    raise HTTPException(status_code=404, detail="No such page")


@get("/r/{rid:str}/waitlist", name="web_waitlist_join")
async def waitlist_join(
    rid: FromPath[str],
    services: NamedDependency[Services],
    slot: Annotated[str | None, Parameter(required=False, max_length=16)] = None,
    party_size: Annotated[str | None, Parameter(required=False)] = None,
) -> Template:
    """Join a restaurant's waitlist for a full time (posted to the API by the page)."""
    context = await waitlist_venue(services, VenueKind.RESTAURANT, rid)
    context.update(slot=slot, party=party_from(party_size))
    return Template("waitlist_join.html", context=context)


@get("/e/{eid:str}/waitlist", name="web_event_waitlist_join")
async def event_waitlist_join(eid: FromPath[str], services: NamedDependency[Services]) -> Template:
    """Join a sold-out event's waitlist."""
    context = await waitlist_venue(services, VenueKind.EVENT, eid)
    context.update(slot=None, party=DEFAULT_PARTY)
    return Template("waitlist_join.html", context=context)


@get("/w/{kind:str}/{vid:str}/{entry_id:str}", name="web_waitlist_entry")
async def waitlist_entry(
    kind: FromPath[str],
    vid: FromPath[str],
    entry_id: FromPath[str],
    services: NamedDependency[Services],
) -> Template:
    """A waitlist entry (the link carries its token): its position, then the offer to
    confirm, read from the API by the page."""
    context = await waitlist_venue(services, kind, vid)
    context["entry_id"] = entry_id
    return Template("waitlist_entry.html", context=context, headers=PRIVATE)


@get("/admin", name="web_admin")
async def admin() -> Template:
    """Admin forms: restaurants, tables, slot grids, events (posted with the admin token)."""
    return Template("admin.html")


def web_router() -> Router:
    """Every page, fragment and static file, with security headers and HTML errors."""
    static = create_static_files_router(
        path="/static",
        directories=[STATIC],
        name="static",
        cache_control=CacheControlHeader(no_cache=True),
        include_in_schema=False,
    )
    return Router(
        path="/",
        route_handlers=[
            home,
            guest,
            guest_slots,
            event_page,
            event_map,
            event_seats,
            manage,
            manage_card,
            waitlist_join,
            event_waitlist_join,
            waitlist_entry,
            staff_worker,
            codes,
            staff,
            admin,
            static,
        ],
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
        middleware=[security_headers],
        exception_handlers={
            HoldsvcError: on_page_error,
            HTTPException: on_page_error,
            RedisConnectionError: on_page_error,
            RedisTimeoutError: on_page_error,
            Exception: on_page_error,
        },
        include_in_schema=False,
    )
