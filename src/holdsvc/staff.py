"""Staff tokens: per-venue bearer tokens with a role, and who is asking (no HTTP here).

A staff token is ``hst.<venue id>.<secret>``: the venue id inside it finds the one hash the
token can live in (no scan of all tokens, no global index across cluster slots). Redis keeps
only the token's SHA-256 digest, and a presented token is found by its digest (the lookup
learns nothing of the secret: a timing difference could only tell about digests, which are
preimage-resistant). Nothing about a token is cached in the process, so a revoke is refused
at once by every worker and host.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from enum import StrEnum

from holdsvc.clock import redis_now_ms
from holdsvc.errors import NotFound
from holdsvc.identifiers import UNAMBIGUOUS, VENUE_ID_LENGTH, digest, new_staff_token_id
from holdsvc.keys import Keys
from holdsvc.scripts import AnyRedis
from holdsvc.venues import Venues

TOKEN_PREFIX = "hst"  # noqa: S105 - a marker, not a secret


class Role(StrEnum):
    """What a staff token may do in its venue; each role may do all the ones before it."""

    HOST = "host"
    MANAGER = "manager"

    def allows(self, needed: Role) -> bool:
        """Whether this role covers what ``needed`` may do."""
        return ROLES.index(self) >= ROLES.index(needed)


ROLES = tuple(Role)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who a request acts as: an admin, or one venue's staff token with its role."""

    admin: bool
    venue_id: str | None = None
    token_id: str | None = None
    role: Role | None = None
    name: str | None = None

    @property
    def feed_name(self) -> str:
        """What the feed's ``actor`` shows: ``admin`` or the staff token's id."""
        return "admin" if self.admin else str(self.token_id)

    def may(self, venue_id: str, needed: Role) -> bool:
        """Whether this actor may act on ``venue_id`` with the rights of ``needed``."""
        if self.admin:
            return True
        return self.venue_id == venue_id and self.role is not None and self.role.allows(needed)


ADMIN = Actor(admin=True)


@dataclass(frozen=True, slots=True)
class StaffToken:
    """A staff token as listed (never the token itself)."""

    id: str
    name: str
    role: Role
    created_ms: int
    last_used_ms: int | None


def venue_of_token(token: str) -> str | None:
    """The venue id a staff token names, or None when it is not shaped like one."""
    prefix, _, rest = token.partition(".")
    venue_id, _, secret = rest.partition(".")
    if prefix != TOKEN_PREFIX or len(venue_id) != VENUE_ID_LENGTH or not secret:
        return None
    if any(ch not in UNAMBIGUOUS for ch in venue_id):
        return None
    return venue_id


class StaffTokens:
    """Create, list, revoke and check the staff tokens of venues."""

    def __init__(self, redis: AnyRedis, keys: Keys, venues: Venues) -> None:
        self._redis = redis
        self._keys = keys
        self._venues = venues

    async def create(self, venue_id: str, name: str, role: Role) -> tuple[StaffToken, str]:
        """A new token for a venue: (its listing, the token itself, shown only now)."""
        await self._venues.profile(venue_id)
        token = f"{TOKEN_PREFIX}.{venue_id}.{secrets.token_urlsafe(32)}"
        token_id = new_staff_token_id()
        created = await redis_now_ms(self._redis)
        record = {"id": token_id, "name": name, "role": role.value, "created": created}
        keys = self._keys.of(venue_id)
        pipe = self._redis.pipeline(transaction=True)
        # The record and its id index are written together: a token is listed iff it works.
        pipe.hset(keys.staff_tokens, digest(token), json.dumps(record))
        pipe.hset(keys.staff_ids, token_id, digest(token))
        await pipe.execute()
        return StaffToken(token_id, name, role, created, None), token

    async def list(self, venue_id: str) -> list[StaffToken]:
        """A venue's tokens, oldest first."""
        await self._venues.profile(venue_id)
        keys = self._keys.of(venue_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(keys.staff_tokens)
        pipe.hgetall(keys.staff_used)
        records, used = await pipe.execute()
        tokens = [
            StaffToken(
                id=row["id"],
                name=row["name"],
                role=Role(row["role"]),
                created_ms=int(row["created"]),
                last_used_ms=int(used[row["id"]]) if row["id"] in used else None,
            )
            for row in (json.loads(text) for text in records.values())
        ]
        return sorted(tokens, key=lambda token: (token.created_ms, token.id))

    async def revoke(self, venue_id: str, token_id: str) -> None:
        """Revoke a token: refused from the next request on, everywhere."""
        await self._venues.profile(venue_id)
        keys = self._keys.of(venue_id)
        token_digest = await self._redis.hget(keys.staff_ids, token_id)
        if token_digest is None:
            raise NotFound("No such staff token")
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(keys.staff_tokens, token_digest)
        pipe.hdel(keys.staff_ids, token_id)
        pipe.hdel(keys.staff_used, token_id)
        await pipe.execute()

    async def authenticate(self, token: str) -> Actor | None:
        """The staff actor a bearer token is, or None when it is unknown or revoked."""
        venue_id = venue_of_token(token)
        if venue_id is None:
            return None
        presented = digest(token)
        text = await self._redis.hget(self._keys.of(venue_id).staff_tokens, presented)
        if text is None:
            return None
        record = json.loads(text)
        return Actor(
            admin=False,
            venue_id=venue_id,
            token_id=record["id"],
            role=Role(record["role"]),
            name=record["name"],
        )

    async def used(self, actor: Actor) -> None:
        """Record that a token was accepted (``last_used_at``)."""
        if actor.admin or actor.venue_id is None or actor.token_id is None:
            return
        keys = self._keys.of(actor.venue_id)
        await self._redis.hset(keys.staff_used, actor.token_id, await redis_now_ms(self._redis))
