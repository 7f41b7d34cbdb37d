"""CPU cost of one request inside the app (no HTTP server, no network client): the ASGI app
is called directly, many requests at once, on a real Redis; prints microseconds of this
process's CPU per request for /health and for POST hold (random cells of one slot), with the
script calls on the pipelined connection (without, then with the rate limit counting every
hold), and then on redis-py's pool, side by side.

    .venv/bin/python -m bench.asgi_cpu [--requests 20000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from holdsvc.app import create_app
from holdsvc.redis_server import EmbeddedRedis
from holdsvc.settings import Settings

TABLES = 100_000  # most holds find their table free: the success path


def scope(method: str, path: str, body: bytes) -> dict[str, Any]:
    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


async def call(app: Any, method: str, path: str, body: bytes) -> int:
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope(method, path, body), receive, send)
    return status


async def measure(
    app: Any, requests: int, concurrency: int, make: Any
) -> tuple[float, dict[int, int]]:
    statuses: dict[int, int] = {}
    queue = iter(range(requests))

    async def worker() -> None:
        for _ in queue:
            method, path, body = make()
            code = await call(app, method, path, body)
            statuses[code] = statuses.get(code, 0) + 1

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) / requests * 1e6, statuses


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Run the app's lifespan on this loop (the test client runs its own on another)."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


async def main(
    requests: int, concurrency: int, url: str, pipelining: bool, rate_limit: int = 0
) -> None:
    settings = Settings(
        _env_file=None,
        redis_url=url,
        admin_tokens=["b"],
        secret_key="b",
        rate_limit_per_minute=rate_limit,
        log_level="warning",
        redis_pipelining=pipelining,
        max_tables_per_venue=TABLES,  # one huge pool: mostly successes, no expiry work
    )
    app = create_app(settings)
    # httpx types the ASGI callable more narrowly than Litestar declares its __call__.
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with (
        lifespan(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
    ):
        admin = {"Authorization": "Bearer b"}
        body = {
            "name": "B",
            "phone": "+12125550100",
            "timezone": "UTC",
            "opens": "00:00",
            "closes": "23:00",
            "hold_seconds": 600,
            "max_hold_seconds": 600,
            "max_holds_per_user": 1000,
        }
        rid = (await client.post("/v1/restaurants", json=body, headers=admin)).json()["id"]
        for _ in range(TABLES // 500):
            tables = {"tables": [{"capacity": 2}] * 500}
            await client.post(f"/v1/restaurants/{rid}/tables", json=tables, headers=admin)
        day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
        await client.post(
            f"/v1/restaurants/{rid}/slots", json={"from": day, "to": day}, headers=admin
        )
        counter = iter(range(10**9))

        def health() -> tuple[str, str, bytes]:
            return "GET", "/health", b""

        def hold() -> tuple[str, str, bytes]:
            payload = {
                "user_id": f"u{next(counter)}",
                "slot": f"{day}T20:00",
                "party_size": 2,
                "table_id": f"T{random.randint(1, TABLES)}",
            }
            return "POST", f"/v1/restaurants/{rid}/holds", json.dumps(payload).encode()

        for name, make in (("GET /health", health), ("POST hold", hold)):
            await measure(app, 2000, concurrency, make)  # warm up
            cpu, statuses = await measure(app, requests, concurrency, make)
            how = "pipelined" if pipelining else "pooled redis-py"
            if rate_limit:
                how += " + rate limit"
            print(f"{name:<12} {how:<28} {cpu:7.1f} us CPU per request   {statuses}")


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        EmbeddedRedis(Path(folder), port=0, unix_socket=False) as server,
    ):
        # Side by side in one run: script calls on the pipelined connection, the same with
        # the per-client rate limit on (a limit no request reaches: the cost of counting),
        # then on redis-py's pool.
        for pipelining, rate_limit in ((True, 0), (True, 1_000_000), (False, 0)):
            asyncio.run(main(args.requests, args.concurrency, server.url, pipelining, rate_limit))


if __name__ == "__main__":
    run()
