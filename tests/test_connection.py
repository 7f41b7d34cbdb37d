"""A write racing a disconnect is a ConnectionError (an outage), never a stray AttributeError.

This is what failed CI once: during a cluster failover redis-py's cluster client closed a
node's connections while a request was writing on one, and the request answered 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError

from holdsvc.connection import GuardedConnection, connect_redis
from holdsvc.redis_server import EmbeddedRedis
from tests.conftest import app_settings


@pytest.fixture
def tcp_redis(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A real server on a TCP port (whatever HOLDSVC_TEST_REDIS_URL points at)."""
    with EmbeddedRedis(tmp_path, port=0, unix_socket=False) as server:
        assert server.port is not None
        yield "127.0.0.1", server.port


async def send_while_disconnecting(connection: Connection) -> None:
    """Start a command, and close the connection while its write is scheduled but not run,
    as the cluster client does to every connection of a node it drops."""
    await connection.connect()  # type: ignore[no-untyped-call]
    sending = asyncio.create_task(connection.send_command("PING", check_health=False))
    # The send checked the connection and now waits for its write task (socket_timeout).
    await asyncio.sleep(0)
    await connection.disconnect(nowait=True)
    await sending


async def test_redis_py_leaks_an_attribute_error_the_guarded_connection_does_not(
    tcp_redis: tuple[str, int],
) -> None:
    host, port = tcp_redis
    plain = Connection(host=host, port=port, socket_timeout=1.0)
    # redis/redis-py#4287. When this stops raising, the pinned redis-py has the fix (#4288)
    # and holdsvc/connection.py can go.
    with pytest.raises(AttributeError):
        await send_while_disconnecting(plain)
    guarded = GuardedConnection(host=host, port=port, socket_timeout=1.0)
    with pytest.raises(RedisConnectionError, match="closed while sending"):
        await send_while_disconnecting(guarded)
    # Still a working connection for the next command: it reconnects.
    await guarded.send_command("PING")
    assert await guarded.read_response() in ("PONG", b"PONG")
    await guarded.disconnect()


async def test_the_app_clients_use_the_guarded_connection(single_redis_url: str) -> None:
    client = connect_redis(app_settings(single_redis_url))
    try:
        if single_redis_url.startswith("redis://"):
            assert client.connection_pool.connection_class is GuardedConnection
        assert await client.ping()
    finally:
        await client.aclose()


@pytest.mark.cluster
async def test_every_cluster_node_uses_the_guarded_connection(cluster_url: str) -> None:
    client = connect_redis(app_settings(cluster_url))
    assert isinstance(client, RedisCluster)
    try:
        await client.initialize()
        nodes = [*client.get_nodes(), *client.nodes_manager.startup_nodes.values()]
        assert len(client.get_primaries()) == 3
        assert {node.connection_class for node in nodes} == {GuardedConnection}
    finally:
        await client.aclose()
