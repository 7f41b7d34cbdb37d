"""One Redis connection per worker that pipelines concurrent commands (the hot path).

Every coroutine that calls :meth:`PipelinedConnection.execute` appends its packed command to
one buffer; the buffer goes out in a single write per event-loop turn, and replies come back
in order on one reader task that resolves each caller's future. Under load that is one
syscall for many requests instead of a pooled connection (and its checkout) per request.

Built on redis-py's own pieces: hiredis packs the commands and parses the replies, and Redis
errors become redis-py's exception types (NOSCRIPT stays ``NoScriptError``). No command is
ever retried here: a caller whose reply is lost gets a ``ConnectionError`` and the next
command opens a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import AskError, ClusterDownError, MovedError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

REDIRECT_TRIES = 5


class _ReplyError(Exception):
    """What hiredis makes of an error reply; turned into redis-py's class on delivery."""


def _pack(args: tuple[str | int | float | bytes, ...]) -> bytes:
    """One command in RESP, packed by hiredis (its stub types the tuple too narrowly)."""
    packed: bytes = hiredis.pack_command(args)  # type: ignore[arg-type]
    return packed


def _redis_error(reply: _ReplyError) -> Exception:
    """redis-py's exception for an error reply (NOSCRIPT -> NoScriptError, and so on)."""
    error: Exception = BaseParser.parse_error(str(reply))  # type: ignore[no-untyped-call]
    return error


class PipelinedConnection:
    """A single auto-pipelining connection to one Redis node (never to a cluster)."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self._url = url
        parts = urlsplit(url)
        self._url_for_errors = (
            parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port}"
        )
        self._timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        # Callers waiting for a reply, in the order their commands went out, with when.
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._buffer: list[bytes] = []
        self._flush_scheduled = False
        self._connecting: asyncio.Lock | None = None

    async def execute(self, *args: str | int | float | bytes) -> Any:
        """Send one command and wait for its reply (errors raised as redis-py exceptions)."""
        if self._writer is None or self._writer.is_closing():
            await self._connect()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((future, loop.time()))
        self._buffer.append(_pack(args))
        if not self._flush_scheduled:
            # Everything queued during this turn of the loop leaves in one write.
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._writer is None or not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        try:
            self._writer.write(data)
        except (OSError, RuntimeError) as error:
            # The transport closed under us (uvloop raises RuntimeError): fail the waiters now
            # rather than leave them to the watchdog.
            self._fail_all(error)

    async def _connect(self) -> None:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._writer is not None and not self._writer.is_closing():
                return
            try:
                reader, writer = await asyncio.wait_for(self._open(), self._timeout)
            except (OSError, TimeoutError) as error:
                # Refused, unreachable, too slow: the same error type as redis-py's (503).
                raise RedisConnectionError(
                    f"cannot connect to {self._url_for_errors}: {error}"
                ) from error
            self._reader, self._writer = reader, writer
            await self._select_database(reader, writer)
            self._reader_task = asyncio.create_task(self._read_replies(reader))
            if self._watchdog is None or self._watchdog.done():
                self._watchdog = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        """One timer for all callers: when the oldest reply is overdue, give up the connection
        (cheaper than a timeout per command on the hot path)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self._timeout / 2))
            if self._waiting and loop.time() - self._waiting[0][1] > self._timeout:
                self._fail_all(RedisTimeoutError("Redis did not answer in time"))
                if self._reader_task is not None:
                    self._reader_task.cancel()

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        parts = urlsplit(self._url)
        if parts.scheme == "unix":
            return await asyncio.open_unix_connection(unquote(parts.path))
        if parts.scheme != "redis":
            raise RedisConnectionError(
                f"pipelining supports redis:// and unix:// URLs, not {parts.scheme}"
            )
        return await asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 6379)

    async def _select_database(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """AUTH and SELECT as the URL says, before any caller's command."""
        parts = urlsplit(self._url)
        commands: list[tuple[str | int, ...]] = []
        if parts.password:
            user = unquote(parts.username) if parts.username else "default"
            commands.append(("AUTH", user, unquote(parts.password)))
        database = parts.path.strip("/") if parts.scheme == "redis" else ""
        if database and database != "0":
            commands.append(("SELECT", int(database)))
        if not commands:
            return
        parser = hiredis.Reader(encoding="utf-8", replyError=_ReplyError)
        writer.write(b"".join(_pack(c) for c in commands))
        answered = 0
        while answered < len(commands):
            parser.feed(await reader.read(4096))
            while (reply := parser.gets()) is not False:
                answered += 1
                if isinstance(reply, _ReplyError):
                    raise _redis_error(reply)

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        parser = hiredis.Reader(encoding="utf-8", replyError=_ReplyError)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    raise RedisConnectionError("Redis closed the connection")
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    future, _ = self._waiting.popleft()
                    if future.done():
                        continue  # its caller was cancelled and left
                    if isinstance(reply, _ReplyError):
                        future.set_exception(_redis_error(reply))
                    else:
                        future.set_result(reply)
        except (OSError, RedisConnectionError, hiredis.ProtocolError) as error:
            self._fail_all(error)
        except asyncio.CancelledError:
            self._fail_all(RedisConnectionError("connection closed"))
            raise

    def _fail_all(self, error: BaseException) -> None:
        """The connection is gone: every caller still waiting gets the error."""
        if self._writer is not None:
            self._writer.close()
        self._writer = None
        self._buffer.clear()
        failure = (
            error
            if isinstance(error, RedisTimeoutError)
            else RedisConnectionError(f"lost the Redis connection: {error}")
        )
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(failure)

    async def aclose(self) -> None:
        """Close the connection; waiting callers get a ConnectionError."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisConnectionError):
                await self._reader_task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._writer = None


class ClusterPipelines:
    """One pipelining connection per cluster primary, each command sent to the primary that
    owns its first key's slot (every key of a script shares the venue's hash tag).

    The slot map is redis-py's own (RedisCluster's nodes manager). A MOVED or ASK answer
    means the command did not run there: the map is refreshed and the command sent again.
    """

    def __init__(self, cluster: RedisCluster, *, timeout: float, userinfo: str = "") -> None:
        """``userinfo``: the cluster URL's ``user:password`` (percent-encoded, as in a URL),
        used for every node; empty when the cluster needs no AUTH."""
        self._cluster = cluster
        self._timeout = timeout
        self._auth = f"{userinfo}@" if userinfo else ""
        self._connections: dict[str, PipelinedConnection] = {}

    def _connection_for(self, key: str) -> PipelinedConnection:
        node = self._cluster.nodes_manager.get_node_from_slot(key_slot(key.encode()))
        connection = self._connections.get(node.name)
        if connection is None:
            url = f"redis://{self._auth}{node.host}:{node.port}/0"
            connection = self._connections[node.name] = PipelinedConnection(
                url, timeout=self._timeout
            )
        return connection

    async def execute(self, *args: str | int | float | bytes) -> Any:
        """EVALSHA sha numkeys key ...: run it on the primary of the first key's slot."""
        key = str(args[3])
        if not self._cluster.nodes_manager.slots_cache:
            await self._cluster.initialize()  # Redis was down when the app started
        for attempt in range(REDIRECT_TRIES):
            try:
                return await self._connection_for(key).execute(*args)
            except (MovedError, AskError, TryAgainError, ClusterDownError):
                # Not run there (a failover or a resharding moved the slot): learn the new map.
                if attempt == REDIRECT_TRIES - 1:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
                await self._cluster.nodes_manager.initialize()
            except (RedisConnectionError, RedisTimeoutError, OSError):
                # The node may be gone (failover): learn the map for the next call, but never
                # resend this one (it may have run).
                with contextlib.suppress(Exception):
                    await self._cluster.nodes_manager.initialize()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        """Close every node's connection."""
        for connection in self._connections.values():
            await connection.aclose()
        self._connections.clear()
