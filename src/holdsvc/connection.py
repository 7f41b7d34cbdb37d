"""Redis clients: the one place they are built (one node, a cluster, the pipelining
connection of the hot path), for the app and the command line alike.

redis-py's asyncio connection is also guarded here: a write that races a disconnect is
reported as the disconnect it is.

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
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError

from holdsvc.pipelined import ClusterPipelines, PipelinedConnection
from holdsvc.scripts import AnyRedis
from holdsvc.settings import Settings

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


# Connections a cluster client may open to each node (redis-py's RedisCluster fails when it
# finds none free instead of waiting, as the single node's blocking pool does).
CLUSTER_CONNECTIONS = 1024


def connect_redis(
    settings: Settings, *, for_streams: bool = False, pool_size: int | None = None
) -> AnyRedis:
    """A Redis client for the configured URL: one node, or a cluster.

    ``for_streams``: a separate pool for blocking feed reads, one connection per open stream,
    with a socket timeout longer than a blocking read.
    """
    url = settings.redis_url or "redis://127.0.0.1:6379/0"
    timeout = settings.redis_timeout_seconds
    if for_streams:
        timeout += settings.sse_heartbeat_seconds
    if is_cluster(settings):
        first, others = split_cluster_url(url)
        cluster = RedisCluster.from_url(
            first,
            startup_nodes=[ClusterNode(host, port) for host, port in others],
            decode_responses=True,
            # Per node. A cluster client cannot wait for a free connection (it fails at the
            # limit), so it gets room for bursts rather than the single node's pool size.
            max_connections=settings.sse_max_streams if for_streams else CLUSTER_CONNECTIONS,
            socket_timeout=timeout,
            socket_connect_timeout=settings.redis_timeout_seconds,
        )
        return guard_cluster(cluster)
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=pool_size
        or (settings.sse_max_streams if for_streams else settings.redis_pool_size),
        timeout=settings.redis_timeout_seconds,
        socket_timeout=timeout,
        socket_connect_timeout=settings.redis_timeout_seconds,
    )
    return Redis(connection_pool=guard_pool(pool))


def is_cluster(settings: Settings) -> bool:
    """Whether the configured Redis is a Redis Cluster (a setting, or the URL's scheme)."""
    return settings.redis_cluster or "+cluster://" in (settings.redis_url or "")


def split_cluster_url(url: str) -> tuple[str, list[tuple[str, int]]]:
    """``redis+cluster://[user:pass@]h1:p1,h2:p2/0``: the first node's URL and the others.

    Every node listed is a startup node: the client learns the topology from any one that
    answers, so the app starts even while the first one is down.
    """
    scheme, _, rest = url.partition("://")
    cuts = [i for i in (rest.find("/"), rest.find("?")) if i >= 0]
    cut = min(cuts) if cuts else len(rest)
    netloc, tail = rest[:cut], rest[cut:]
    userinfo, at, hosts = netloc.rpartition("@")
    first, *others = hosts.split(",")
    nodes = []
    for other in others:
        host, _, port = other.rpartition(":")
        nodes.append((host, int(port)) if host else (port, 6379))
    return f"{scheme.removesuffix('+cluster')}://{userinfo}{at}{first}{tail}", nodes


def pipelined_connection(
    settings: Settings, redis: AnyRedis
) -> PipelinedConnection | ClusterPipelines | None:
    """The hot path's pipelining connection: one for a single node, one per primary for a
    cluster (None when turned off, or for TLS and other schemes: the pooled client)."""
    url = settings.redis_url or "redis://127.0.0.1:6379/0"
    if not settings.redis_pipelining:
        return None
    if is_cluster(settings):
        if "rediss" in url.split("://", 1)[0]:
            return None
        # "user:password" exactly as the URL spells it (still percent-encoded), for every node.
        userinfo = urlsplit(split_cluster_url(url)[0]).netloc.rpartition("@")[0]
        return ClusterPipelines(redis, timeout=settings.redis_timeout_seconds, userinfo=userinfo)
    if not url.startswith(("redis://", "unix://")):
        return None
    return PipelinedConnection(url, timeout=settings.redis_timeout_seconds)
