"""The change feed: a page for polling clients, or a resumable live stream (no HTTP here).

Entries are written by the scripts, one per state change, in the same atomic step. A reader
resumes after an entry id; if that id fell out of the retained window (``MAXLEN ~``), the
reader is told to reset (reload its state) instead of silently missing changes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from redis.exceptions import ResponseError

from holdsvc import slots as timegrid
from holdsvc.errors import Unavailable, ValidationFailed
from holdsvc.keys import Keys
from holdsvc.models import OMIT, Cell, Change, ChangePage
from holdsvc.scripts import AnyRedis
from holdsvc.venues import VenueKind, VenueProfile, Venues

STREAM_ID_PATTERN = r"^\d{1,20}-\d{1,20}$"
PAGE_MAX = 1000
# Both parts of a stream id are unsigned 64-bit numbers; Redis refuses anything larger.
ID_PART_MAX = 2**64 - 1
LAST_POSSIBLE_ID = f"{ID_PART_MAX}-{ID_PART_MAX}"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Nothing happened for a while: a keep-alive for proxies."""


@dataclass(frozen=True, slots=True)
class Reset:
    """The reader's position fell out of the retained feed: it must reload its state, then
    carry on from ``last_id``."""

    last_id: str | None


def _stream_id(text: str) -> tuple[int, int]:
    milliseconds, _, sequence = text.partition("-")
    return int(milliseconds), int(sequence or 0)


NOW = "$"


def check_since(since: str | None) -> str | None:
    """A feed position is a stream id (``<ms>-<seq>``), or ``$`` for "from now on"; anything
    else is a 400."""
    if since is None or since == "":
        return None
    if since == NOW:
        return NOW
    milliseconds, sep, sequence = since.partition("-")
    if (
        len(since) > 41
        or not (milliseconds.isascii() and milliseconds.isdigit())
        or (sep and not (sequence.isascii() and sequence.isdigit()))
        or int(milliseconds) > ID_PART_MAX
        or (sep and int(sequence) > ID_PART_MAX)
    ):
        raise ValidationFailed(
            "'since' / Last-Event-ID must be a feed entry id like 1764000000000-0 "
            f"(each part at most {ID_PART_MAX})"
        )
    # Canonical digits ("007" is 7): the same position however it was written.
    return f"{int(milliseconds)}-{int(sequence) if sep else 0}"


class Feed:
    """Reads a venue's feed."""

    def __init__(
        self,
        redis: AnyRedis,
        stream_redis: AnyRedis,
        keys: Keys,
        venues: Venues,
        *,
        max_streams: int,
        heartbeat_seconds: float,
    ) -> None:
        self._redis = redis
        self._stream_redis = stream_redis
        self._keys = keys
        self._venues = venues
        self._max_streams = max_streams
        self._heartbeat_ms = int(heartbeat_seconds * 1000)
        self.open_streams = 0

    async def page(
        self, venue_id: str, kind: VenueKind, since: str | None, limit: int
    ) -> ChangePage:
        """Up to ``limit`` changes after ``since`` (from the oldest retained without it)."""
        profile = await self._venues.profile(venue_id, kind)
        since = check_since(since)
        key = self._keys.of(venue_id).feed
        if since == NOW:
            # Only the current position: a client that loaded its state now starts here.
            return ChangePage(changes=[], last_id=await self._last_id(key))
        if since is not None and await self._fell_out(key, since):
            return ChangePage(changes=[], last_id=await self._last_id(key), reset=True)
        if since == LAST_POSSIBLE_ID:
            # No entry can come after it (and Redis refuses it as an exclusive start).
            return ChangePage(changes=[], last_id=since)
        start = f"({since}" if since else "-"
        entries = await self._redis.xrange(key, start, "+", count=min(limit, PAGE_MAX))
        changes = [change_view(profile, entry_id, fields) for entry_id, fields in entries]
        last_id = changes[-1].id if changes else (since or await self._last_id(key))
        return ChangePage(changes=changes, last_id=last_id)

    async def _last_id(self, key: str) -> str | None:
        newest = await self._redis.xrevrange(key, "+", "-", count=1)
        return str(newest[0][0]) if newest else None

    async def _fell_out(self, key: str, since: str) -> bool:
        """True when entries after ``since`` may have been trimmed away (a gap to report).

        Trimming removes the oldest entries: a reader whose position is older than the first
        retained entry, in a feed that has lost entries, may have missed some. (When it had
        read exactly up to the last trimmed one, this resets it needlessly: never a gap.)
        """
        try:
            info = await self._redis.xinfo_stream(key)
        except ResponseError:  # no stream yet: nothing was ever trimmed
            return False
        if int(info.get("entries-added", 0)) <= int(info.get("length", 0)):
            return False
        first = info.get("first-entry")
        return first is None or _stream_id(since) < _stream_id(str(first[0]))

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        """Count an open stream; refuse past the per-process bound."""
        if self.open_streams >= self._max_streams:
            raise Unavailable("Too many open change streams; try again shortly", retry_after=5)
        self.open_streams += 1
        try:
            yield
        finally:
            self.open_streams -= 1

    async def reserve(
        self, venue_id: str, kind: VenueKind, since: str | None
    ) -> tuple[VenueProfile, str | None]:
        """Check a stream request before the response starts (404, 400, 503 answered early)."""
        profile = await self._venues.profile(venue_id, kind)
        if self.open_streams >= self._max_streams:
            raise Unavailable("Too many open change streams; try again shortly", retry_after=5)
        return profile, check_since(since)

    async def stream(
        self, profile: VenueProfile, since: str | None
    ) -> AsyncIterator[Change | Heartbeat | Reset]:
        """Every change after ``since``, then live ones as they happen, until the reader leaves."""
        key = self._keys.of(profile.id).feed
        with self._slot():
            position = since or "0-0"
            if since == NOW:
                position = await self._last_id(key) or "0-0"
            elif since is not None and await self._fell_out(key, since):
                newest = await self._last_id(key)
                yield Reset(last_id=newest)
                position = newest or "0-0"
            while True:
                # One blocking read at a time on the streams' own pool; a cancelled read
                # (the reader left) drops its connection rather than returning it half-read.
                reply = await self._stream_redis.xread(
                    {key: position}, count=500, block=self._heartbeat_ms
                )
                if not reply:
                    yield Heartbeat()
                    continue
                for entry_id, fields in reply[0][1]:
                    position = entry_id
                    yield change_view(profile, entry_id, fields)


def change_view(profile: VenueProfile, entry_id: str, fields: dict[str, str]) -> Change:
    """A feed entry as the API shows it."""
    return Change(
        id=entry_id,
        event=fields["event"],
        at=timegrid.rfc3339(int(fields["at"]), profile.tz),
        user_id=fields.get("user") or None,
        hold_id=fields.get("hold") or None,
        reference=fields.get("ref") or None,
        cells=[Cell(slot=c["slot"], unit=c["unit"]) for c in json.loads(fields["cells"])],
        actor=fields.get("actor") or None,
        status=fields.get("status", OMIT),
        waitlist_id=fields.get("wl") or OMIT,
    )
