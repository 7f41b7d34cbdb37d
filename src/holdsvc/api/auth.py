"""Who is asking, and what they may do: admin and staff bearer tokens, roles per venue.

Every route that needs a token declares it with a guard (``admin_guard``, ``staff_guard(role)``)
and this module is where they are enforced. Admin tokens come from settings and may do
everything; a staff token acts only on its own venue, within its role (DESIGN.md
invariant 11). No token, or an unknown or revoked one: 401. A valid token that does not grant
the call (another venue, a host asking for a manager action, staff on an admin-only route): 403.
"""

from __future__ import annotations

import functools
import hmac
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from holdsvc.api.dto import decode_untyped
from holdsvc.api.faces import FACES
from holdsvc.errors import Forbidden, Unauthorized
from holdsvc.identifiers import digest
from holdsvc.services import Services
from holdsvc.staff import ADMIN, Actor, Role

Connection = ASGIConnection[Any, Any, Any, Any]
# What a host may change of its venue (API.md: "PATCH of bookings_open alone").
HOST_PATCHABLE = frozenset({"bookings_open"})
# The least role a bearer token needs on a reservation route, as the alternative to the
# reservation's manage token (reservation_actor).
RESERVATION_STAFF = Role.HOST
# Every guard that asks for a bearer token, with the role it needs ("" for any valid token):
# the OpenAPI document's security requirements are read from it (api/openapi.py).
BEARER_GUARDS: dict[Guard, str] = {}


def bearer_role(guard: Guard) -> str | None:
    """The role a guard's bearer token needs ("" for any valid one); None for a guard that
    asks for no bearer token."""
    return BEARER_GUARDS.get(guard)


def bearer(connection: Connection) -> str | None:
    """The bearer token of the Authorization header, if any."""
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def is_admin(connection: Connection) -> bool:
    """True when the request carries a valid admin token (compared in constant time)."""
    token = bearer(connection)
    if not token:
        return False
    presented = digest(token)
    allowed: frozenset[str] = connection.app.state.admin_digests
    # Compare against every digest, never stopping early, so timing says nothing.
    matches = [hmac.compare_digest(presented, candidate) for candidate in allowed]
    return any(matches)


async def actor_of(connection: Connection) -> Actor | None:
    """The admin or staff actor of a request; None without a bearer token.

    Raises:
        Unauthorized: a bearer token that is neither an admin token nor a live staff token.
    """
    if is_admin(connection):
        return ADMIN
    token = bearer(connection)
    if token is None:
        return None
    services: Services = connection.app.state.services
    actor = await services.staff.authenticate(token)
    if actor is None:
        raise Unauthorized("The token is not valid (unknown, or revoked)")
    return actor


def venue_in_path(connection: Connection) -> str:
    """The venue a route under ``/v1/restaurants/{rid}`` or ``/v1/events/{eid}`` addresses."""
    for face in FACES:
        if face.param in connection.path_params:
            return str(connection.path_params[face.param])
    raise RuntimeError("a venue guard on a route without a venue")  # pragma: no cover


async def admit(connection: Connection, venue_id: str, role: Role) -> Actor:
    """The actor, if it may act on ``venue_id`` as ``role``."""
    actor = await actor_of(connection)
    if actor is None:
        raise Unauthorized("A staff or admin token is required")
    if not actor.may(venue_id, role):
        raise Forbidden(f"This token may not do this here (needs {role} of this venue)")
    return actor


async def accepted(connection: Connection, actor: Actor) -> Actor:
    """Remember who acts on the request, and when the token was last used (only once every
    check passed: a refused call changes nothing)."""
    connection.state.actor = actor
    services: Services = connection.app.state.services
    await services.staff.used(actor)
    return actor


async def admin_guard(connection: Connection, _: BaseRouteHandler) -> None:
    """Guard for admin-only endpoints: 401 without a valid token, 403 for a staff token."""
    actor = await actor_of(connection)
    if actor is None:
        raise Unauthorized("An admin token is required")
    if not actor.admin:
        raise Forbidden("Only an admin token may do this")
    connection.state.actor = actor


BEARER_GUARDS[admin_guard] = "admin"


async def signed_in_guard(connection: Connection, _: BaseRouteHandler) -> None:
    """Guard for routes any valid admin or staff token may call: 401 without one."""
    actor = await actor_of(connection)
    if actor is None:
        raise Unauthorized("A staff or admin token is required")
    connection.state.actor = actor


BEARER_GUARDS[signed_in_guard] = ""


@functools.cache
def staff_guard(role: Role, *, host_may_set: frozenset[str] | None = None) -> Guard:
    """Guard for a venue's staff endpoints: an admin, or a staff token of that venue whose
    role covers ``role``. ``host_may_set``: a host may call the route only with a body that
    sets no other field (a manager or an admin may set any). One guard per distinct call, so
    BEARER_GUARDS stays as small as the roles."""

    async def guard(connection: Connection, _: BaseRouteHandler) -> None:
        actor = await admit(connection, venue_in_path(connection), role)
        if host_may_set is not None and actor.role is Role.HOST:
            await _only_fields(connection, host_may_set)
        await accepted(connection, actor)

    guard.__name__ = f"{role}_guard"
    BEARER_GUARDS[guard] = str(role)
    return guard


async def _only_fields(connection: Connection, allowed: frozenset[str]) -> None:
    """Refuse a body that sets a field outside ``allowed``; checked before it is validated."""
    request: Request[Any, Any, Any] = connection  # type: ignore[assignment]
    decoded = decode_untyped(await request.body())
    others = sorted(set(decoded) - allowed) if isinstance(decoded, dict) else []
    if others:
        raise Forbidden(
            f"A host may change only {', '.join(sorted(allowed))} (not {', '.join(others)})"
        )


async def reservation_actor(connection: Connection, venue_id: str | None) -> Actor | None:
    """For endpoints open to a manage token or staff: the admin or a host (or manager) of the
    reservation's venue; None for a guest with no bearer token.

    Raises:
        Unauthorized: a bearer token that is not valid.
        Forbidden: a staff token of another venue.
    """
    if bearer(connection) is None:
        return None
    try:
        if venue_id is None:
            # A reference that names no venue: the service answers 404 for it.
            return await actor_of(connection)
        return await accepted(connection, await admit(connection, venue_id, RESERVATION_STAFF))
    except Unauthorized:
        # A bearer token that is not valid next to a manage token: the guest's way in.
        if connection.headers.get("manage-token"):
            return None
        raise
