"""Webhook lag under load: `holdsvc loadtest` against a real 2-worker server while an admin
webhook (every venue, every event) delivers to a receiver on 127.0.0.1 (its own process,
bench/receiver_proc.py).

Every 0.25 s it samples the lag in entries (feed entries of the load-test venue not yet
delivered); each delivery's delay is its arrival time minus the entry's ``at``. Prints the
load test's throughput, the lag (max, p50, p99 over samples), the delivery delay (p50, p99,
max), the time to drain after the load stops, and whether every entry arrived once, in order.
Usage: .venv/bin/python -m bench.webhook_lag [--users N] [--duration S]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from holdsvc.keys import Keys
from holdsvc.loadtest import LoadConfig, LoadTest
from holdsvc.redis_server import EmbeddedRedis
from tests.serverproc import ServerProcess


def nearest(values: list[float], share: float) -> float:
    """The ``share`` percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def run(users: int, duration: float, url: str) -> None:
    env = {"HOLDSVC_WEBHOOK_ALLOW_PRIVATE": "true", "HOLDSVC_WEBHOOK_POLL_SECONDS": "0.1"}
    log = Path(tempfile.mkdtemp(prefix="wh-receiver-")) / "arrivals.txt"
    log.touch()
    # The receiver runs in its own process: the load generator must not starve it.
    receiver = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measured part
        [sys.executable, "-m", "bench.receiver_proc", str(log)], stdout=subprocess.PIPE, text=True
    )
    assert receiver.stdout is not None
    hook_url = f"http://127.0.0.1:{receiver.stdout.readline().strip()}/hook"

    def arrivals() -> list[list[str]]:
        return [line.split() for line in log.read_text().splitlines()]

    raw = Redis.from_url(url, decode_responses=True)
    with ServerProcess(url, workers=2, env=env, startup_timeout=90) as server:
        admin = {"Authorization": f"Bearer {server.admin_token}"}
        async with httpx.AsyncClient(base_url=server.url) as http:
            made = await http.post("/v1/webhooks", json={"url": hook_url}, headers=admin)
            assert made.status_code == 201, made.text
            load = LoadTest(
                LoadConfig(server.url, server.admin_token, users=users, duration=duration)
            )
            load.config.progress = False
            lags: list[int] = []

            async def sample() -> None:
                while True:
                    await asyncio.sleep(0.25)
                    if load.venue:
                        length = await raw.xlen(Keys().of(load.venue).feed)
                        lags.append(length - len(arrivals()))

            sampler = asyncio.create_task(sample())
            report = await load.run()
            stopped = time.monotonic()
            total = await raw.xlen(Keys().of(load.venue).feed)
            while len(arrivals()) < total and time.monotonic() - stopped < 120:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            drained = time.monotonic() - stopped
            sampler.cancel()
            entries: Any = await raw.xrange(Keys().of(load.venue).feed, "-", "+")
    receiver.terminate()
    rows = arrivals()
    delays = [float(at) - datetime.fromisoformat(stamp).timestamp() for at, _, stamp in rows]
    ids = [f"msg_{load.venue}_{entry_id!s}" for entry_id, _ in entries]
    got = [message_id for _, message_id, _ in rows]
    print(f"webhook lag: {users} users for {duration:g} s, 2 workers, one admin webhook")
    print(
        f"  load: {report['requests']} requests, {report['throughput_rps']:.0f} req/s, "
        f"p99 {report['p99_ms']} ms, invariants ok: {report['ok']}"
    )
    print(f"  feed entries: {total}; delivered: {len(got)}; in feed order, once each: {got == ids}")
    print(
        f"  lag (entries not yet delivered, sampled every 0.25 s): max {max(lags)}, "
        f"p50 {statistics.median(lags):.0f}, p99 {nearest([float(x) for x in lags], 0.99):.0f}"
    )
    print(
        f"  delivery delay after the change: p50 {statistics.median(delays) * 1000:.0f} ms, "
        f"p99 {nearest(delays, 0.99) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
    )
    print(f"  drained {drained:.2f} s after the load stopped")
    await raw.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=15.0)
    args = parser.parse_args()
    with EmbeddedRedis(Path(tempfile.mkdtemp(prefix="wh-bench-")), port=0, unix_socket=False) as r:
        asyncio.run(run(args.users, args.duration, r.url))


if __name__ == "__main__":
    main()
