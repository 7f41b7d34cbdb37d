"""The pipelining connection: order under concurrency, errors, reconnects, timeouts."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from holdsvc.pipelined import PipelinedConnection
from holdsvc.redis_server import EmbeddedRedis
from tests.conftest import MakeClient


async def test_concurrent_commands_get_their_own_replies(redis_url: str, redis: Redis) -> None:
    connection = PipelinedConnection(redis_url, timeout=5)
    try:
        await asyncio.gather(*(connection.execute("SET", f"k{i}", i) for i in range(500)))
        values = await asyncio.gather(*(connection.execute("GET", f"k{i}") for i in range(500)))
        assert values == [str(i) for i in range(500)]
        assert await connection.execute("INCRBY", "n", 5) == 5
        assert await connection.execute("HGETALL", "missing") in ({}, [])
    finally:
        await connection.aclose()


async def test_errors_are_redis_py_exceptions_and_the_stream_stays_in_order(
    redis_url: str, redis: Redis
) -> None:
    connection = PipelinedConnection(redis_url, timeout=5)
    try:
        outcomes = await asyncio.gather(
            connection.execute("EVALSHA", "0" * 40, 0),
            connection.execute("SET", "a", "1"),
            connection.execute("INCR", "a_list_is_not_a_number", "extra"),
            connection.execute("GET", "a"),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], NoScriptError)
        assert outcomes[1] == "OK"
        assert isinstance(outcomes[2], ResponseError)
        assert outcomes[3] == "1"
    finally:
        await connection.aclose()


async def test_unix_socket_url(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "r", port=None, unix_socket=True) as server:
        connection = PipelinedConnection(server.url, timeout=5)
        try:
            assert await connection.execute("PING") == "PONG"
        finally:
            await connection.aclose()


async def test_select_database_from_the_url(redis_url: str, redis: Redis) -> None:
    connection = PipelinedConnection(redis_url.rsplit("/", 1)[0] + "/3", timeout=5)
    try:
        await connection.execute("SET", "in-three", "yes")
    finally:
        await connection.aclose()
    assert await redis.get("in-three") is None
    other = Redis.from_url(redis_url.rsplit("/", 1)[0] + "/3")
    try:
        assert await other.get("in-three") == b"yes"
        await other.flushdb()
    finally:
        await other.aclose()


async def test_lost_connection_fails_waiters_and_the_next_call_reconnects(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "r", port=0, unix_socket=False).start()
    connection = PipelinedConnection(server.url, timeout=5)
    try:
        assert await connection.execute("PING") == "PONG"
        blocked = asyncio.create_task(connection.execute("BLPOP", "never", 0))
        await asyncio.sleep(0.1)
        server.kill()
        with pytest.raises(RedisConnectionError):
            await blocked
        with pytest.raises((RedisConnectionError, OSError)):
            await connection.execute("PING")
        server.start()
        assert await connection.execute("PING") == "PONG"
    finally:
        await connection.aclose()
        server.stop()


async def test_an_overdue_reply_times_out_everyone_waiting(redis_url: str, redis: Redis) -> None:
    connection = PipelinedConnection(redis_url, timeout=0.5)
    try:
        slow = asyncio.create_task(connection.execute("BLPOP", "never", 0))
        with pytest.raises(RedisTimeoutError):
            await asyncio.wait_for(slow, 5)
        assert await connection.execute("PING") == "PONG"  # a fresh connection
    finally:
        with contextlib.suppress(Exception):
            await connection.aclose()


async def test_the_app_sends_script_calls_through_the_pipeline(make_client: MakeClient) -> None:
    async with make_client() as client:
        services = client.app.state.services
        assert services.scripts.pipelined
        assert (await client.get("/ready")).status_code == 200
    async with make_client(redis_pipelining=False) as client:
        assert not client.app.state.services.scripts.pipelined
