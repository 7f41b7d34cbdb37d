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

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

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
def staff_guard(role: Role) -> Guard:
    """Guard for a venue's staff endpoints: an admin, or a staff token of that venue whose
    role covers ``role`` (one guard per role, so BEARER_GUARDS stays as small as the roles)."""

    async def guard(connection: Connection, _: BaseRouteHandler) -> None:
        actor = await admit(connection, venue_in_path(connection), role)
        if role is Role.HOST and connection.scope.get("method") == "PATCH":
            await _host_patches_only_what_hosts_may(connection, actor)
        await accepted(connection, actor)

    guard.__name__ = f"{role}_guard"
    BEARER_GUARDS[guard] = str(role)
    return guard


async def _host_patches_only_what_hosts_may(connection: Connection, actor: Actor) -> None:
    """A host may PATCH ``bookings_open`` alone; checked before the body is validated."""
    if actor.admin or actor.role is not Role.HOST:
        return
    request: Request[Any, Any, Any] = connection  # type: ignore[assignment]
    try:
        decoded = msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        decoded = None
    fields = set(decoded) if isinstance(decoded, dict) else set()
    others = sorted(fields - HOST_PATCHABLE)
    if others:
        raise Forbidden(f"A host may change only bookings_open (not {', '.join(others)})")


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
