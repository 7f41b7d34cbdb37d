"""Pages of the lists that can grow without bound (no HTTP here).

Every such list is read in (score, member) order of a sorted set (venues by creation, a
venue's reservations by start) or in a fixed order (seats, slots). A page is at most
``limit`` items; its ``next_cursor`` (absent on the last page) names where the next page
starts, as an opaque string. A cursor is a position, not an offset: items added or removed
meanwhile never make a page repeat or skip the items around it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from holdsvc.errors import ValidationFailed
from holdsvc.scripts import AnyRedis

T = TypeVar("T")
# The score and member of the last item a page looked at.
Position = tuple[int, str]
RANK_TRIES = 3


@dataclass(frozen=True, slots=True)
class PageRequest:
    """How many items a page may hold, and where it starts (None: at the beginning)."""

    limit: int
    after: Position | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page: its items, and the cursor of the next page (None on the last one)."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(position: Position) -> str:
    """An opaque cursor for a position."""
    raw = json.dumps([position[0], position[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Position:
    """The position a cursor names; ValidationFailed when it is not one we made."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        score, member = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise ValidationFailed("'cursor' is not a cursor this list handed out") from None
    if not isinstance(score, int) or isinstance(score, bool) or not isinstance(member, str):
        raise ValidationFailed("'cursor' is not a cursor this list handed out")
    return score, member


def page_request(limit: int | None, cursor: str | None, *, size: int) -> PageRequest:
    """A page of ``limit`` items (at most ``size``, the configured page size) after
    ``cursor``."""
    wanted = size if limit is None else max(1, min(limit, size))
    return PageRequest(limit=wanted, after=decode_cursor(cursor) if cursor else None)


def next_cursor(more: bool, last: Position | None) -> str | None:
    """The cursor after ``last`` when more items follow."""
    return encode_cursor(last) if more and last is not None else None


def within(score: int, low: int | str, high: int | str) -> bool:
    """``low`` <= score < ``high``, where either may be unbounded ("-inf", "+inf")."""
    return (low == "-inf" or score >= int(low)) and (high == "+inf" or score < int(high))


def _score(value: float) -> int:
    return int(value)


async def zset_window(
    redis: AnyRedis,
    key: str,
    *,
    count: int,
    after: Position | None = None,
    low: int | str = "-inf",
    high: int | str = "+inf",
) -> list[tuple[str, int]]:
    """Up to ``count`` (member, score) of a sorted set in (score, member) order, after the
    position ``after``, with ``low`` <= score < ``high`` (``high`` may be "+inf")."""
    if after is None:
        rows = await redis.zrangebyscore(
            key, low, _below(high), start=0, num=count, withscores=True
        )
        return [(member, _score(score)) for member, score in rows]
    found = await _after_rank(redis, key, after, count)
    if found is None:
        found = await _after_score(redis, key, after, count, high)
    bound = None if high == "+inf" else int(high)
    return [(m, s) for m, s in found if bound is None or s < bound][:count]


def _below(high: int | str) -> str:
    return high if high == "+inf" else f"({high}"


async def _after_rank(
    redis: AnyRedis, key: str, after: Position, count: int
) -> list[tuple[str, int]] | None:
    """The items after ``after`` by its rank, while it is still in the set at that score.

    Rank and range are two reads: the range starts at the cursor's own member, so a write
    that shifted the ranks in between is seen (and the pair read again)."""
    score, member = after
    for _ in range(RANK_TRIES):
        rank = await redis.zrank(key, member)
        if rank is None:
            return None
        rows = await redis.zrange(key, rank, rank + count, withscores=True)
        if rows and rows[0][0] == member:
            if _score(rows[0][1]) != score:
                return None  # it moved (a changed start): continue by the score instead
            return [(m, _score(s)) for m, s in rows[1:]]
    return None


async def _after_score(
    redis: AnyRedis, key: str, after: Position, count: int, high: int | str
) -> list[tuple[str, int]]:
    """The items after ``after`` by score, when its member left the set: those of the same
    score that sort after it, then those of higher scores."""
    score, member = after
    same = [
        (m, _score(s))
        for m, s in await redis.zrangebyscore(key, score, score, withscores=True)
        if m > member
    ]
    rest = await redis.zrangebyscore(
        key, f"({score}", _below(high), start=0, num=count, withscores=True
    )
    return (same + [(m, _score(s)) for m, s in rest])[:count]


Window = Callable[[Position | None, int], Awaitable[list[tuple[str, int]]]]
# Loads the items of a window's members, in order: None for one the page leaves out.
Load = Callable[[list[tuple[str, int]]], Awaitable[list[T | None]]]
# How many entries one page may look at, per item it may hold (filters leave entries out).
SCAN_FACTOR = 10


async def scan_page(window: Window, load: Load[T], request: PageRequest) -> Page[T]:
    """One page of a list read window by window in position order, keeping what ``load``
    keeps: at most ``limit`` items, after looking at no more than SCAN_FACTOR * limit
    entries (a page may then hold fewer, with a cursor to go on from)."""
    kept: list[tuple[Position, T]] = []
    position = request.after
    looked = 0
    while looked < SCAN_FACTOR * request.limit:
        entries = await window(position, request.limit + 1)
        for (member, score), item in zip(entries, await load(entries), strict=True):
            position = (score, member)
            looked += 1
            if item is not None:
                kept.append((position, item))
            if len(kept) > request.limit:
                # One more than a page: the page ends at the item before it.
                return Page([i for _, i in kept[:-1]], encode_cursor(kept[-2][0]))
        if len(entries) <= request.limit:
            return Page([i for _, i in kept])  # the end of the list
    return Page([i for _, i in kept], next_cursor(True, position))


def numbered_window(total: int, name: Callable[[int], str]) -> Window:
    """A window over items numbered 1..total (seats): member ``name(n)``, score n."""

    async def window(after: Position | None, count: int) -> list[tuple[str, int]]:
        start = (after[0] if after else 0) + 1
        return [(name(n), n) for n in range(start, min(total, start + count - 1) + 1)]

    return window
