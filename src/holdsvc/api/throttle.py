"""The per-client rate limit of the hold endpoints: one throttle.lua call per request.

Counted in Redis with GCRA, so the limit is exact across every worker and node: a client
gets ``rate_limit_per_minute`` requests at once, then one every minute / limit. The client
is the connection's address as the ASGI server reports it (uvicorn rewrites it from
X-Forwarded-For only for proxies listed in its ``forwarded_allow_ips``), never a header the
client could change. Allowed answers carry the IETF draft RateLimit headers; a refusal is
the ``rate_limited`` problem with Retry-After, raised inside Litestar's exception handling.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from holdsvc.keys import Keys
from holdsvc.services import Services

WINDOW_US = 60_000_000  # the limit is per minute
# The headers every answer of a limited endpoint carries (but the 429 itself, which carries
# Retry-After), as the OpenAPI document describes them (api/openapi.py).
RATE_LIMIT_HEADERS = {
    "RateLimit-Policy": "The limit and its window: `<requests>;w=60`",
    "RateLimit-Limit": "Requests allowed per minute from this client address",
    "RateLimit-Remaining": "Requests this client may still send right away",
    "RateLimit-Reset": "Seconds until the whole limit is available again",
}


def is_hold_path(path: str) -> bool:
    """The hold endpoints (place, get, refresh, release, confirm) are the ones limited."""
    return "/holds" in path


def client_address(scope: Scope) -> str:
    """The address the ASGI server saw the request come from."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def throttle_holds(keys: Keys, per_minute: int) -> Callable[[ASGIApp], ASGIApp]:
    """Litestar middleware limiting each client to ``per_minute`` hold requests a minute."""
    interval_us = WINDOW_US // per_minute
    policy = f"{per_minute};w=60".encode()
    limit = str(per_minute).encode()

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or not is_hold_path(scope["path"]):
                await app(scope, receive, send)
                return
            services: Services = scope["app"].state.services
            # Raises RateLimited (429 problem + Retry-After) before the request is read.
            throttled = await services.scripts.throttle(
                keys.rate(client_address(scope)), interval_us=interval_us, window_us=WINDOW_US
            )
            headers = [
                (b"ratelimit-policy", policy),
                (b"ratelimit-limit", limit),
                (b"ratelimit-remaining", str(throttled.remaining).encode()),
                (b"ratelimit-reset", str(math.ceil(throttled.reset_us / 1_000_000)).encode()),
            ]

            async def with_headers(message: Any) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), *headers]
                await send(message)

            await app(scope, receive, with_headers)

        return middleware

    return wrap
