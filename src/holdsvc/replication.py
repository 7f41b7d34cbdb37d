"""Durable writes: run a script, then ``WAIT`` for replicas on the very same connection.

``WAIT n timeout`` counts the replicas that acknowledged every write *the calling connection*
sent before it; on a connection that wrote nothing it returns at once, whatever other clients
wrote. So the script and its WAIT must share one connection:

- one node: a connection taken from the pool for the two commands (never the shared
  pipelining connection, which a blocked WAIT would stall for every other request);
- a cluster: a connection of the primary that owns the keys' slot, taken from that node's
  pool in redis-py's RedisCluster. A MOVED, ASK, TRYAGAIN or CLUSTERDOWN answer means the
  script did not run: the topology is refreshed and the call tried again. A connection that
  breaks is not retried (the script may have run); it surfaces as a Redis outage (503).

Only used when ``confirm_wait_replicas`` > 0; the default path never comes here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# MovedError is an AskError: both say "not here", the script did not run.
NOT_RUN = (AskError, TryAgainError, ClusterDownError)
BROKEN = (RedisConnectionError, RedisTimeoutError, OSError)
REDIRECT_TRIES = 5

Command = tuple[str | int, ...]
# Gets the script's reply; raises for a refusal, else says whether the script wrote anything.
Check = Callable[[list[Any]], bool]


@dataclass(frozen=True, slots=True)
class Replication:
    """How many replicas acknowledged a write, of how many asked for (0: none asked)."""

    wanted: int = 0
    acknowledged: int = 0

    @property
    def short(self) -> bool:
        """Fewer replicas acknowledged than asked for: the write may not survive a failover."""
        return self.acknowledged < self.wanted


NO_WAIT = Replication()


async def eval_then_wait(
    redis: Any,  # Redis | RedisCluster
    evalsha: Command,
    *,
    slot_key: str,
    replicas: int,
    timeout_ms: int,
    load: Callable[[], Awaitable[None]],
    check: Check,
) -> tuple[list[Any], int]:
    """Run ``evalsha`` (EVALSHA and its arguments), then WAIT on the same connection.

    Args:
        redis: The app's client: ``Redis`` (one node) or ``RedisCluster``.
        evalsha: The whole EVALSHA command.
        slot_key: One of the script's keys (picks the cluster node).
        replicas: How many replicas must acknowledge.
        timeout_ms: How long WAIT blocks at most.
        load: Loads every script (on NOSCRIPT, then the call is sent once more).
        check: Called with the reply: raises for a refusal (no WAIT then), returns whether
            the script wrote anything (WAIT only then).

    Returns:
        The reply, and how many replicas acknowledged it (``replicas`` when nothing was
        written; 0 when the connection broke during WAIT: the write is on the primary only).
    """
    if isinstance(redis, RedisCluster):
        return await _on_cluster(redis, evalsha, slot_key, replicas, timeout_ms, load, check)
    async with redis.client() as connection:  # one pooled connection for both commands
        try:
            reply = list(await connection.execute_command(*evalsha))
        except NoScriptError:
            await load()
            reply = list(await connection.execute_command(*evalsha))
        if not check(reply):
            return reply, replicas
        try:
            acknowledged = int(await connection.execute_command("WAIT", replicas, timeout_ms))
        except BROKEN:
            acknowledged = 0
        return reply, acknowledged


async def _on_cluster(
    redis: RedisCluster,
    evalsha: Command,
    slot_key: str,
    replicas: int,
    timeout_ms: int,
    load: Callable[[], Awaitable[None]],
    check: Check,
) -> tuple[list[Any], int]:
    await redis.initialize()  # the slot map (no-op once known)
    for attempt in range(REDIRECT_TRIES):
        node = redis.get_node_from_key(slot_key)
        if node is None:  # pragma: no cover - only for replica=True
            raise ClusterDownError(f"no node serves {slot_key}")
        connection = node.acquire_connection()
        try:
            await node.disconnect_if_needed(connection)
            try:
                reply = await _send_script(node, connection, evalsha, load)
            except NOT_RUN:
                await _refresh(redis)
                await asyncio.sleep(0.05 * (attempt + 1))
                continue
            except BROKEN:
                await connection.disconnect()
                await _refresh(redis)
                raise
            if not check(reply):
                return reply, replicas
            try:
                acknowledged = int(await _send(node, connection, ("WAIT", replicas, timeout_ms)))
            except (*BROKEN, RedisError):
                # Written on the primary, which is gone or demoted: not known to be replicated.
                await connection.disconnect()
                acknowledged = 0
            return reply, acknowledged
        finally:
            node.release(connection)
    raise ClusterDownError("the slot kept moving; try again")


async def _send_script(
    node: Any, connection: Any, evalsha: Command, load: Callable[[], Awaitable[None]]
) -> list[Any]:
    try:
        return list(await _send(node, connection, evalsha))
    except NoScriptError:
        # A promoted replica has an empty script cache: load on every primary, send again.
        await load()
        return list(await _send(node, connection, evalsha))


async def _send(node: Any, connection: Any, command: Command) -> Any:
    await connection.send_packed_command(connection.pack_command(*command))
    return await node.parse_response(connection, str(command[0]))


async def _refresh(redis: RedisCluster) -> None:
    """Ask the cluster for its slot map again (after a redirect or a lost node)."""
    with contextlib.suppress(RedisError, RedisClusterException, OSError):
        await redis.nodes_manager.initialize()
