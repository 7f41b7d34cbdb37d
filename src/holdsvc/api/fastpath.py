"""Serve a route without Litestar's per-request machinery: the hot path of every load test.

``serve_directly`` is route middleware for an ordinary Litestar handler. The handler is the
declaration (its signature gives the OpenAPI entry, its decorator the guards) and its body is
what runs: the middleware runs the route's guards, decodes the body strictly into the
declared ``data`` type, reads the declared headers and the venue id, calls the handler's own
function with them and encodes what it returns. Measured with bench/asgi_cpu.py, Litestar's
parameter parsing, DTO and response building cost more CPU than the whole hold. Handlers
served this way may declare only: ``data``, ``services``, ``venue_id`` and header parameters,
and return what they answer with their declared status (``EarlyAnswer`` for another one).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request, Response
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


class EarlyAnswer(Exception):
    """Raised by a handler for an answer other than its declared one (an idempotent replay's
    200 next to the 201 of a new hold): rare answers leave by exception, so the common one
    is the handler's plain return value and costs no Response object."""

    def __init__(self, content: Any, status_code: int) -> None:
        super().__init__(status_code)
        self.content = content
        self.status_code = status_code


def on_early_answer(_: Request[Any, Any, Any], answer: EarlyAnswer) -> Response[Any]:
    """The same answer when Litestar serves the route itself."""
    return Response(answer.content, status_code=answer.status_code)


# How to find one argument of a handler in a request: (scope, body) -> value.
Source = Callable[[Scope, bytes], Any]


@dataclass(frozen=True, slots=True)
class Plan:
    """How to call one handler: its function, whether it reads the body, its arguments."""

    call: Callable[..., Awaitable[Any]]
    reads_body: bool
    sources: tuple[tuple[str, Source], ...]


# By the handler object's id: its ``handler_id`` is rebuilt from its layers on every access.
_PLANS: dict[int, Plan] = {}


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


def _plan(handler: HTTPRouteHandler) -> Plan:
    plan = _PLANS.get(id(handler))
    if plan is None:
        # The function's own arguments (Litestar's parsed signature may carry more, such as
        # the path parameters a dependency reads), described by Litestar's parse of them.
        parameters = handler.parsed_fn_signature.parameters
        names = tuple(inspect.signature(handler.fn).parameters)
        plan = Plan(
            call=handler.fn,
            reads_body="data" in names,
            sources=tuple((name, _source(handler, name, parameters[name])) for name in names),
        )
        _PLANS[id(handler)] = plan
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
    try:
        # The route's declared checks run here exactly as Litestar would run them.
        if handler.resolve_guards():
            await handler.authorize_connection(ASGIConnection(scope, receive))
        plan = _plan(handler)
        body = b""
        if plan.reads_body:
            body = await _read_body(receive, scope["app"].state.max_body_bytes)
        content = await plan.call(**{name: source(scope, body) for name, source in plan.sources})
        status = handler.status_code
    except EarlyAnswer as answer:
        content, status = answer.content, answer.status_code
    except HoldsvcError as refusal:
        problem, headers = service_problem_parts(refusal)
        await _answer(send, refusal.status_code, _encode(problem), PROBLEM_JSON, headers)
        return
    await _answer(send, status, _encode(content), "application/json", {})


def serve_directly(app: ASGIApp) -> ASGIApp:
    """Route middleware: answer the route by calling its handler directly (see the module)."""
    del app  # Litestar's own handling of the route is what this replaces
    return _serve
