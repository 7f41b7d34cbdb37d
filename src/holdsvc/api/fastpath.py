"""Serve a route without Litestar's per-request machinery: the hot path of every load test.

``serve_directly`` is route middleware for an ordinary Litestar handler. The handler is the
declaration (its signature gives the OpenAPI entry, its decorator the guards) and its body is
what runs: the middleware runs the route's guards, decodes the body strictly into the
declared ``data`` type, reads the declared headers and the venue id, calls the handler's own
function with them and encodes what it returns. Measured with bench/asgi_cpu.py, Litestar's
parameter parsing, DTO and response building cost more CPU than the whole hold. Handlers
served this way may declare only: ``data``, ``services``, ``venue_id`` and header parameters.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Response
from litestar.connection import ASGIConnection
from litestar.exceptions import ImproperlyConfiguredException
from litestar.handlers import HTTPRouteHandler
from litestar.params import HeaderParameter
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

_encode = msgspec.json.Encoder().encode
# How to find one argument of a handler in a request: (scope, body) -> value.
Source = Callable[[Scope, bytes], Any]
_PLANS: dict[str, list[tuple[str, Source]]] = {}


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


def _source(handler: HTTPRouteHandler, name: str, field: Any) -> Source:
    """Where one declared argument comes from (checked once, when the route is first used)."""
    if name == "data":
        # The DTO's model, as Litestar itself would decode it (strictly: see api/dto.py).
        model = handler.resolve_data_dto().model_type  # type: ignore[union-attr]
        return lambda _, body: decode_strict(body, model)
    if name == "services":
        return lambda scope, _: scope["app"].state.services
    if name == "venue_id":
        param = handler.opt["venue_param"]
        return lambda scope, _: str(scope["path_params"][param])
    definition = field.kwarg_definition
    if isinstance(definition, HeaderParameter) and definition.name:
        header = definition.name.lower().encode()
        return lambda scope, _: _header(scope, header)
    raise ImproperlyConfiguredException(f"{handler.handler_name} cannot be served directly: {name}")


def _plan(handler: HTTPRouteHandler) -> list[tuple[str, Source]]:
    plan = _PLANS.get(handler.handler_id)
    if plan is None:
        # The function's own arguments (Litestar's parsed signature may carry more, such as
        # the path parameters a dependency reads), described by Litestar's parse of them.
        parameters = handler.parsed_fn_signature.parameters
        plan = [
            (name, _source(handler, name, parameters[name]))
            for name in inspect.signature(handler.fn).parameters
        ]
        _PLANS[handler.handler_id] = plan
    return plan


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


async def _serve(scope: Scope, receive: Receive, send: Send) -> None:
    handler: HTTPRouteHandler = scope["route_handler"]  # type: ignore[assignment]
    call: Callable[..., Awaitable[Response[Any]]] = handler.fn
    try:
        # The route's declared checks run here exactly as Litestar would run them.
        if handler.resolve_guards():
            await handler.authorize_connection(ASGIConnection(scope, receive))
        plan = _plan(handler)
        body = b""
        if any(name == "data" for name, _ in plan):
            body = await _read_body(receive, scope["app"].state.max_body_bytes)
        response = await call(**{name: source(scope, body) for name, source in plan})
    except HoldsvcError as refusal:
        problem, headers = service_problem_parts(refusal)
        await _answer(send, refusal.status_code, _encode(problem), PROBLEM_JSON, headers)
        return
    await _answer(
        send,
        response.status_code or 200,
        _encode(response.content),
        "application/json",
        dict(response.headers),
    )


def serve_directly(app: ASGIApp) -> ASGIApp:
    """Route middleware: answer the route by calling its handler directly (see the module)."""
    del app  # Litestar's own handling of the route is what this replaces
    return _serve
