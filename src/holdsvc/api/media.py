"""One rule for every route that takes a JSON body: its body must be sent as JSON.

A plain HTML form on any site can POST to us (``application/x-www-form-urlencoded``,
``multipart/form-data`` or ``text/plain``) without a CORS preflight, with the visitor's browser
as the sender; only a script can set ``Content-Type: application/json``, and a cross-site
script must ask the browser's CORS preflight first. So a body whose Content-Type is not
``application/json`` is refused with 415 ``unsupported_media_type`` before anything runs (no
guard, no rate-limit count, no Redis call), on every route whose handler declares ``data``,
the hold fast path included. A request without a body passes (its handler answers 400 for the
missing body); a body with no Content-Type at all is refused too.

``api/openapi.py`` lists the 415 answer of exactly those routes by the same test
(``takes_json_body``), so the document and the rule cannot drift apart.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from holdsvc.errors import UnsupportedMediaType

JSON = "application/json"
# JSON is UTF-8 (RFC 8259): any other declared charset is not the JSON we decode.
UTF8 = frozenset({"utf-8", "utf8"})
# By the handler object's id: its ``handler_id`` is rebuilt from its layers on every access
# (measured: that alone cost more than the rest of this check on the hold path).
_TAKES_JSON: dict[int, bool] = {}


def takes_json_body(handler: HTTPRouteHandler) -> bool:
    """Whether a route handler reads a JSON body (it declares a ``data`` argument)."""
    known = _TAKES_JSON.get(id(handler))
    if known is None:
        known = "data" in handler.parsed_fn_signature.parameters
        _TAKES_JSON[id(handler)] = known
    return known


def is_json(content_type: str | None) -> bool:
    """``application/json``, optionally with a UTF-8 charset (any case, any spacing)."""
    if content_type is None:
        return False
    media_type, *params = (part.strip().lower() for part in content_type.split(";"))
    if media_type != JSON:
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in UTF8:
            return False
    return True


def _has_body(headers: dict[bytes, bytes]) -> bool:
    """A body is announced by a non-zero Content-Length or any Transfer-Encoding."""
    if b"transfer-encoding" in headers:
        return True
    length = headers.get(b"content-length", b"0").strip()
    return length not in (b"", b"0")


def json_bodies_only(app: ASGIApp) -> ASGIApp:
    """Middleware: 415 for a body that is not ``application/json`` on a JSON-body route."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            handler = scope.get("route_handler")
            if isinstance(handler, HTTPRouteHandler) and takes_json_body(handler):
                headers = dict(scope["headers"])
                content_type = headers.get(b"content-type")
                if _has_body(headers) and not is_json(
                    content_type.decode("latin-1") if content_type is not None else None
                ):
                    # Raised before the guards, the rate limit and the body are touched.
                    raise UnsupportedMediaType(
                        "Send the body as JSON with 'Content-Type: application/json'"
                    )
        await app(scope, receive, send)

    return middleware
