"""redis-py's asyncio connection, with a write that races a disconnect reported as one.

redis-py 8.1 writes through ``self._writer`` without binding it. When another task
disconnects the connection meanwhile (the cluster client closes every connection of a node
it drops during a failover), or the peer reset it and the event loop tore the transport
down, the write fails with ``AttributeError`` ('NoneType' has no attribute 'writelines'),
uvloop's ``RuntimeError`` (unable to perform operation on a closed transport) or CPython
3.12's ``TypeError``: none is a ``RedisError``, so they bypass redis-py's retries and would
reach the app as a 500. Upstream tracks it as redis/redis-py#4287 (fixed by #4288, not in a
release yet). This module makes each of them the ``ConnectionError`` it is; drop it once
the pinned redis-py carries the fix.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError

# What a write raises when the transport was torn down under it, by event loop and version.
TORN_DOWN = (AttributeError, RuntimeError, TypeError)


class GuardedConnection(Connection):
    """A TCP connection whose writes fail with ``ConnectionError`` once it is closed."""

    async def _send_packed_command(self, command: Iterable[bytes]) -> None:
        # Bind the writer once: a concurrent disconnect() sets the attribute to None, and
        # nothing can run between this check and writelines() (no await in between).
        writer = self._writer
        if writer is None:
            raise RedisConnectionError("the connection was closed while sending a command")
        try:
            writer.writelines(command)
        except TORN_DOWN as error:
            raise RedisConnectionError(
                f"the connection was closed while sending a command: {error}"
            ) from error
        await writer.drain()


def guard_pool(pool: ConnectionPool) -> ConnectionPool:
    """Use :class:`GuardedConnection` for a plain TCP pool (TLS and unix sockets unchanged)."""
    if pool.connection_class is Connection:
        pool.connection_class = GuardedConnection
    return pool


def guard_cluster(client: RedisCluster) -> RedisCluster:
    """Use :class:`GuardedConnection` for every node a cluster client knows or will learn.

    redis-py's RedisCluster takes no connection class of its own (it sets ``Connection``
    unless TLS), so this swaps it before the client opens anything.
    """
    manager = client.nodes_manager
    if manager.connection_kwargs.get("connection_class") is not Connection:
        return client
    # The manager creates the nodes it discovers from these kwargs (the client's own dict).
    manager.connection_kwargs["connection_class"] = GuardedConnection
    for node in manager.startup_nodes.values():
        node.connection_class = GuardedConnection
    return client
