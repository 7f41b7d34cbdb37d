"""The one clock: Redis's ``TIME`` (invariant 6), for the Python side's reads."""

from __future__ import annotations

from typing import Any


async def redis_now_ms(redis: Any) -> int:
    """Redis's clock in epoch milliseconds, the only clock (invariant 6)."""
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000
