"""Whether the Redis we write to would evict keys, and the readiness verdict it leads to.

A Redis configured as a cache (any ``maxmemory-policy`` but ``noeviction``) drops keys when it
is full: a hold, a reservation or a venue would vanish without a trace, and a cell whose hold
record was evicted would stay claimed by nobody. holdsvc keeps state, not a cache, so such a
Redis is not ready (``/ready`` answers 503 with the reason, and the server logs it once) unless
``HOLDSVC_ALLOW_EVICTION=true`` says the operator accepts that. On a Redis Cluster every
primary is asked; replicas follow their primary's data. The policy is read from ``INFO
memory`` (allowed on managed Redis services that disable ``CONFIG``) on every check, so a
``CONFIG SET`` at run time is seen at the next ``/ready``.
"""

from __future__ import annotations

import logging

from redis.asyncio.cluster import RedisCluster

from holdsvc.scripts import AnyRedis

log = logging.getLogger(__name__)
SAFE_POLICY = "noeviction"


async def eviction_policies(redis: AnyRedis) -> dict[str, str]:
    """``maxmemory-policy`` of every primary: node name -> policy ("" when not reported)."""
    if isinstance(redis, RedisCluster):
        # Learns the topology on first use (a no-op once known).
        await redis.initialize()
        policies: dict[str, str] = {}
        for node in redis.get_primaries():
            info = await redis.info("memory", target_nodes=node)
            policies[node.name] = str(info.get("maxmemory_policy", ""))
        return policies
    info = await redis.info("memory")
    return {"redis": str(info.get("maxmemory_policy", ""))}


def evicting(policies: dict[str, str]) -> dict[str, str]:
    """The nodes whose policy may evict keys (an unreported policy is not held against one)."""
    return {node: policy for node, policy in policies.items() if policy not in ("", SAFE_POLICY)}


class EvictionCheck:
    """Tells whether Redis would evict keys, and logs it once each time it starts to."""

    def __init__(self, redis: AnyRedis, *, allowed: bool) -> None:
        self._redis = redis
        self._allowed = allowed
        self._logged = False

    async def reason(self) -> str | None:
        """Why this instance is not ready because of eviction, or None.

        Raises:
            RedisError: Redis did not answer (the caller's "unreachable").
        """
        risky = evicting(await eviction_policies(self._redis))
        if not risky:
            self._logged = False
            return None
        named = ", ".join(f"{policy} on {node}" for node, policy in sorted(risky.items()))
        reason = (
            f"Redis would evict keys (maxmemory-policy {named}): holds, reservations and "
            "venues could vanish; set maxmemory-policy noeviction, or HOLDSVC_ALLOW_EVICTION=true"
        )
        if not self._logged:
            # One line when it starts, not one per probe of the load balancer.
            self._logged = True
            if self._allowed:
                log.warning("%s (allowed by HOLDSVC_ALLOW_EVICTION)", reason)
            else:
                log.error("%s", reason)
        return None if self._allowed else reason
