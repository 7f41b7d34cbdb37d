"""POST …/holds without Litestar's per-request machinery: the hot path of every load test.

The two place-hold routes stay ordinary Litestar handlers (their OpenAPI, their guards and
every middleware around them: metrics, rate limit, CORS, exception handling), but a
route-level middleware answers the request itself: read the body, decode it strictly into
the same model, build the same ``HoldRequest`` with the same functions the handlers use,
call the same service, encode the ``Hold`` or the problem. Measured with bench/asgi_cpu.py,
Litestar's parameter parsing, DTO and response building cost more CPU than the whole hold.
"""

from __future__ import annotations

import msgspec
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from holdsvc.api.dto import decode_strict
from holdsvc.api.problems import PROBLEM_JSON, service_problem_parts
from holdsvc.errors import HoldsvcError, ValidationFailed
from holdsvc.holds import HoldRequest
from holdsvc.models import HoldInput, SeatHoldInput
from holdsvc.services import Services

MAX_IDEMPOTENCY_KEY = 255
_encode = msgspec.json.Encoder().encode


def check_idempotency_key(key: str | None) -> None:
    """An Idempotency-Key is 1..255 printable ASCII characters."""
    if key is not None and (
        not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable() or not key.isascii()
    ):
        raise ValidationFailed("Idempotency-Key must be 1..255 printable ASCII characters")


def table_hold_request(data: HoldInput, idempotency_key: str | None) -> HoldRequest:
    """A restaurant hold: the named table, or the best fit for the party."""
    check_idempotency_key(idempotency_key)
    return HoldRequest(
        user_id=data.user_id,
        slot=data.slot,
        party_size=data.party_size,
        units=[data.table_id] if data.table_id is not None else [],
        count=1,
        idempotency_key=idempotency_key,
    )


async def seat_hold_request(
    services: Services,
    event_id: str,
    data: SeatHoldInput,
    idempotency_key: str | None,
) -> HoldRequest:
    """An event hold: named seats (no repeats), or the best ``count``; exactly one of them."""
    check_idempotency_key(idempotency_key)
    if (data.seats is None) == (data.count is None):
        raise ValidationFailed("Give either 'seats' or 'count', not both and not neither")
    if data.seats is not None and len(set(data.seats)) != len(data.seats):
        raise ValidationFailed("'seats' names a seat more than once")
    profile = await services.venues.profile(event_id, "event")
    seats = data.seats or []
    return HoldRequest(
        user_id=data.user_id,
        slot=str(profile.event_slot),
        party_size=1,
        units=seats,
        count=data.count or len(seats),
        idempotency_key=idempotency_key,
    )


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ValidationFailed("The client went away before the body arrived")
        chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
        size += len(chunk)
        if size > limit:
            raise ValidationFailed(f"The body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _answer(
    send: Send, status: int, body: bytes, media_type: str, headers: dict[str, str]
) -> None:
    raw = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": raw,
    }
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)


async def _place(scope: Scope, receive: Receive, send: Send, kind: str) -> None:
    app = scope["app"]
    services: Services = app.state.services
    venue_id = str(scope["path_params"]["rid" if kind == "restaurant" else "eid"])
    try:
        body = await _read_body(receive, app.state.max_body_bytes)
        key = _header(scope, b"idempotency-key")
        if kind == "restaurant":
            request = table_hold_request(decode_strict(body, HoldInput), key)
        else:
            request = await seat_hold_request(
                services, venue_id, decode_strict(body, SeatHoldInput), key
            )
        hold, replayed = await services.holds.place(venue_id, kind, request)
    except HoldsvcError as refusal:
        problem, headers = service_problem_parts(refusal)
        await _answer(send, refusal.status_code, _encode(problem), PROBLEM_JSON, headers)
        return
    await _answer(send, 200 if replayed else 201, _encode(hold), "application/json", {})


def place_table_hold(app: ASGIApp) -> ASGIApp:
    """Route middleware of POST /v1/restaurants/{rid}/holds: answers it directly (the
    handler ``app`` behind it is only there for its OpenAPI entry)."""
    del app

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        await _place(scope, receive, send, "restaurant")

    return middleware


def place_seat_hold(app: ASGIApp) -> ASGIApp:
    """Route middleware of POST /v1/events/{eid}/holds: answers it directly (the handler
    ``app`` behind it is only there for its OpenAPI entry)."""
    del app

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        await _place(scope, receive, send, "event")

    return middleware
