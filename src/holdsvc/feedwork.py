"""The one engine behind everything that acts on venues' change feeds: webhooks and mail.

A *consumer* (``webhooks.WebhookSender``, ``mail.Mailer``) names the feeds it follows, one
*position* per (venue, consumer name), and says what to do with each entry. This module moves
the positions, the same way for every consumer:

- A position is the id of the last entry handled (sent, or given up), the failed tries of the
  entry after it, and when the next try may start. It lives in Redis (the venue's
  ``consumers`` hash), so any worker carries on where another stopped.
- One worker moves a position at a time: it takes the position's *lease* (``SET NX PX``, a
  random token, a TTL longer than one delivery may take) and every save goes through
  ``consumer_save.lua``, which writes only while the caller's token still holds the lease. A
  worker killed mid-delivery loses nothing: its lease lapses, another worker takes it and sends
  the same entry again (at least once). Two workers never send entries of one position in
  parallel, and entries go out in feed order: the position moves past an entry only when the
  consumer answered it (done, or given up), never past a failed one.
- Why not ``XREADGROUP``: a consumer group hands *different* entries to different consumers
  (parallelism across entries). Here each subscription must see *every* entry in order, one at
  a time, with retries that block the ones after it: a group per subscription would be used
  with a single reader anyway, its pending list holding at most one entry, and would still need
  the lease to stop a second reader. A cursor plus a lease is that, with less state and the
  retry schedule kept next to the cursor.
- A feed trimmed (``MAXLEN ~``) past entries a position never handled is told to the consumer
  (``reset``) and the position jumps over the gap: never silently skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.exceptions import RedisClusterException, RedisError, ResponseError

from holdsvc.clock import redis_now_ms
from holdsvc.errors import LeaseLost
from holdsvc.keys import Keys
from holdsvc.metrics import Metrics
from holdsvc.scripts import AnyRedis, Scripts

log = logging.getLogger("holdsvc.feedwork")

BATCH = 100  # entries read per lease: a busy feed yields the worker between batches


@dataclass(frozen=True, slots=True)
class Position:
    """Where one consumer stands in one venue's feed."""

    cursor: str  # the last entry handled; "0-0" before the first
    attempt: int = 0  # failed tries of the entry after ``cursor``
    next_ms: int = 0  # the next try starts no earlier (a retry's delay)

    def dump(self) -> str:
        """The JSON kept in the venue's ``consumers`` hash."""
        return json.dumps({"cursor": self.cursor, "attempt": self.attempt, "next": self.next_ms})

    @classmethod
    def load(cls, text: str | bytes) -> Position:
        """A position read back from Redis."""
        row = json.loads(text)
        return cls(str(row["cursor"]), int(row["attempt"]), int(row["next"]))


@dataclass(frozen=True, slots=True)
class Target:
    """One position to move: a consumer's name in one venue's feed."""

    venue_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One feed entry, as the consumer gets it."""

    venue_id: str
    id: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class Done:
    """The entry was handled: move on."""


@dataclass(frozen=True, slots=True)
class Retry:
    """The entry failed: try it again after ``delay`` seconds; nothing after it before."""

    delay: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The entry failed for good: move past it and stop this position (the consumer has
    recorded why, e.g. disabled the subscription)."""


Outcome = Done | Retry | GiveUp


class Consumer(Protocol):
    """What a feed consumer tells the engine."""

    label: str  # the metrics label ("webhook", "mail")
    lease_ms: int  # longer than one ``handle`` may take

    async def targets(self) -> Sequence[Target]:
        """The positions to move in this pass (enabled subscriptions only)."""

    async def start(self, target: Target) -> str:
        """The cursor of a position seen for the first time (entries after it are handled)."""

    def wants(self, target: Target, fields: dict[str, str]) -> bool:
        """Whether an entry concerns this position (else it is passed over)."""

    async def handle(self, target: Target, entry: Entry, attempt: int) -> Outcome:
        """Act on one entry; ``attempt`` is 1 for the first try."""

    async def reset(self, target: Target, last_lost: str) -> None:
        """Entries up to ``last_lost`` were trimmed from the feed before they were handled."""


class FeedWorkers:
    """Moves every consumer's positions, bounded in concurrency; runs in every worker."""

    def __init__(
        self,
        redis: AnyRedis,
        keys: Keys,
        scripts: Scripts,
        metrics: Metrics,
        *,
        concurrency: int,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._metrics = metrics
        self._limit = asyncio.Semaphore(concurrency)

    async def run(self, consumers: Sequence[Consumer], interval: float) -> None:
        """Pass over every position every ``interval`` seconds, until cancelled."""
        while True:
            try:
                await self.pass_once(consumers)
            except (RedisError, RedisClusterException, OSError) as error:
                # Redis away: try again next pass; nothing was lost, positions live in Redis.
                log.warning("feed consumers: redis error (%s)", type(error).__name__)
            await asyncio.sleep(interval)

    async def pass_once(self, consumers: Sequence[Consumer]) -> int:
        """One pass over every position of every consumer; the entries handled."""
        jobs = [
            self._bounded(consumer, target)
            for consumer in consumers
            for target in await consumer.targets()
        ]
        return sum(await asyncio.gather(*jobs))

    async def _bounded(self, consumer: Consumer, target: Target) -> int:
        async with self._limit:
            return await self.work(consumer, target)

    async def work(self, consumer: Consumer, target: Target) -> int:
        """Move one position as far as it goes now, under its lease; the entries handled."""
        keys = self._keys.of(target.venue_id)
        if await self._idle(consumer, keys.consumers, keys.feed, target):
            return 0
        token = secrets.token_hex(16)
        # Only one worker moves a position at a time: whoever sets the lease first.
        taken = await self._redis.set(
            keys.consumer_lease(target.name), token, nx=True, px=consumer.lease_ms
        )
        if not taken:
            return 0
        try:
            return await self._advance(consumer, target, token)
        except LeaseLost:
            return 0
        finally:
            with contextlib.suppress(LeaseLost, RedisError, RedisClusterException, OSError):
                await self._scripts.consumer_save(
                    keys, target.name, token=token, position="", lease_ms=0
                )

    async def _idle(self, consumer: Consumer, consumers: str, feed: str, target: Target) -> bool:
        """Whether a known position has nothing to do (no newer entry, or a retry not yet
        due): decided on reads alone, so an idle pass writes nothing."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(consumers, target.name)
        pipe.xrevrange(feed, "+", "-", count=1)
        raw, newest = await pipe.execute()
        if raw is None:
            return False
        position = Position.load(raw)
        if position.next_ms and position.next_ms > await redis_now_ms(self._redis):
            return True
        if not newest or _stream_id(str(newest[0][0])) <= _stream_id(position.cursor):
            self._metrics.feed_lag(consumer.label, target.venue_id, 0)
            return True
        return False

    async def _advance(self, consumer: Consumer, target: Target, token: str) -> int:
        keys = self._keys.of(target.venue_id)

        async def save(position: Position) -> None:
            await self._scripts.consumer_save(
                keys, target.name, token=token, position=position.dump(), lease_ms=consumer.lease_ms
            )

        raw = await self._redis.hget(keys.consumers, target.name)
        if raw is None:
            # First sight: saved at once, so that a gap is only ever judged from a position
            # this consumer really held.
            position = Position(await consumer.start(target))
            await save(position)
        else:
            position = Position.load(raw)
        if position.next_ms > await redis_now_ms(self._redis):
            return 0
        entries = await self._redis.xrange(keys.feed, f"({position.cursor}", "+", count=BATCH)
        self._metrics.feed_lag(consumer.label, target.venue_id, len(entries))
        if not entries:
            return 0
        lost = None if raw is None else await self._lost_after(keys.feed, position.cursor)
        if lost is not None:
            await consumer.reset(target, lost)
            position = Position(lost)
            await save(position)
            entries = [(i, f) for i, f in entries if _stream_id(str(i)) > _stream_id(lost)]
        handled = 0
        passed_over = False
        for entry_id, fields in entries:
            entry = Entry(target.venue_id, str(entry_id), fields)
            if not consumer.wants(target, fields):
                position = Position(entry.id)
                passed_over = True
                continue
            if passed_over:
                # Progress over passed-over entries is kept before a try that may fail. (The
                # lease was renewed by the last save: it outlives this one delivery.)
                await save(position)
                passed_over = False
            outcome = await consumer.handle(target, entry, position.attempt + 1)
            handled += 1
            if isinstance(outcome, Retry):
                now = await redis_now_ms(self._redis)
                delay_ms = int(outcome.delay * 1000)
                await save(Position(position.cursor, position.attempt + 1, now + delay_ms))
                return handled
            position = Position(entry.id)
            await save(position)
            if isinstance(outcome, GiveUp):
                return handled
        await save(position)
        return handled

    async def _lost_after(self, feed: str, cursor: str) -> str | None:
        """When the feed was trimmed past ``cursor`` (its oldest entry is newer than the
        entry after the cursor could be), the id just before the oldest one; else None.

        A position exactly at the last trimmed entry counts as a gap too (nothing tells the
        two apart): a reset reported needlessly, never a gap hidden.
        """
        try:
            info = await self._redis.xinfo_stream(feed)
        except ResponseError:
            return None
        first = info.get("first-entry")
        if int(info.get("entries-added", 0)) <= int(info.get("length", 0)) or not first:
            return None
        first_id = _stream_id(str(first[0]))
        if first_id <= _stream_id(cursor):
            return None
        before = _before(first_id)
        return None if before <= _stream_id(cursor) else f"{before[0]}-{before[1]}"


def _stream_id(text: str) -> tuple[int, int]:
    milliseconds, _, sequence = text.partition("-")
    return int(milliseconds), int(sequence or 0)


def _before(entry: tuple[int, int]) -> tuple[int, int]:
    """The greatest stream id below ``entry``."""
    milliseconds, sequence = entry
    return (milliseconds, sequence - 1) if sequence else (milliseconds - 1, 2**64 - 1)
