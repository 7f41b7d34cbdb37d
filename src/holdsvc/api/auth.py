"""Who is asking: admin bearer tokens, Hold-Token and Manage-Token headers."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from holdsvc.errors import Unauthorized
from holdsvc.identifiers import digest


def bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The bearer token of the Authorization header, if any."""
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def is_admin(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """True when the request carries a valid admin token (compared in constant time)."""
    token = bearer(connection)
    if not token:
        return False
    presented = digest(token)
    allowed: frozenset[str] = connection.app.state.admin_digests
    # Compare against every digest, never stopping early, so timing says nothing.
    matches = [hmac.compare_digest(presented, candidate) for candidate in allowed]
    return any(matches)


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard for admin endpoints: 401 without a valid admin token."""
    if not is_admin(connection):
        raise Unauthorized()


def caller_is_admin(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """For endpoints open to a manage token or an admin: a wrong admin token is a 401."""
    if is_admin(connection):
        return True
    if bearer(connection) is not None and not connection.headers.get("manage-token"):
        raise Unauthorized()
    return False
