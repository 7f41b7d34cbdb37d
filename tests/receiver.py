"""Real network peers for the delivery tests: a webhook receiver on 127.0.0.1 (plain asyncio,
HTTP/1.1), and which process is on the other end of a loopback connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self


@dataclass
class Received:
    """One request the receiver got, and what it answered."""

    headers: dict[str, str]
    body: bytes
    status: int
    peer_port: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]


Answer = Callable[[Received], Awaitable[int]]


async def always_ok(_: Received) -> int:
    return 200


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers what ``answer`` says
    (it may also wait, to hold a delivery open)."""

    answer: Answer = always_ok
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_port = int(writer.get_extra_info("peername")[1])
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                received = Received(headers, body, 0, peer_port)
                received.status = await self.answer(received)
                self.requests.append(received)
                writer.write(
                    f"HTTP/1.1 {received.status} X\r\ncontent-length: 4\r\n\r\nnope".encode()
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    def delivered(self) -> list[Received]:
        """The requests answered 2xx, in the order they came."""
        return [r for r in self.requests if 200 <= r.status < 300]


async def until(check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Wait until ``check()`` is true (polled), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


def pid_with_local_port(port: int, candidates: list[int]) -> int | None:
    """Which of ``candidates`` owns the TCP socket bound locally to ``port`` (loopback), from
    /proc: the socket's inode in /proc/net/tcp, then the process holding it."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inode = parts[9]
    if inode is None:
        return None
    for pid in candidates:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                        return pid
    return None


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (the uvicorn workers of a ``holdsvc serve``)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(") ", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return found
