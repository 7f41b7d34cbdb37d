"""Crash tests on real processes: kill -9 an app worker or Redis in the middle of a load.

Clients may see errors while a process is down; afterwards every reservation a client saw
confirmed must exist (and those it saw cancelled be cancelled), the audit must be clean, no
cell may stay stuck, and the app must recover by itself. Run alone with ``-m crash``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from holdsvc.redis_server import EmbeddedRedis
from tests.helpers import tomorrow
from tests.loadgen import Outcome, load_venue, run_load
from tests.serverproc import ServerProcess

pytestmark = [pytest.mark.crash, pytest.mark.slow]
HOLD_SECONDS = 2


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


async def wait_ready(base: str, seconds: float = 20) -> float:
    """Seconds until /ready answers 200."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base, timeout=2) as http:
        while time.monotonic() - started < seconds:
            try:
                if (await http.get("/ready")).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"/ready did not come back within {seconds} s")


async def verify(base: str, admin: dict[str, str], rid: str, outcome: Outcome) -> dict[str, Any]:
    """Everything acknowledged is there, the audit is clean, no cell stays held."""
    await asyncio.sleep(
        HOLD_SECONDS + 1.5
    )  # every hold a dead client left has lapsed and been swept
    missing, wrong = [], []
    async with httpx.AsyncClient(base_url=base, headers=admin, timeout=10) as http:
        for reference in sorted(outcome.confirmed):
            answer = await http.get(f"/v1/reservations/{reference}")
            if answer.status_code != 200:
                missing.append(reference)
                continue
            expected = "cancelled" if reference in outcome.cancelled else None
            if expected and answer.json()["status"] != expected:
                wrong.append(reference)
        audit = (await http.get(f"/v1/restaurants/{rid}/audit")).json()
        slots = (
            await http.get(
                f"/v1/restaurants/{rid}/slots", params={"from": tomorrow(), "to": tomorrow()}
            )
        ).json()
    held = [t for s in slots["slots"] for t in s["tables"] if t["status"] == "held"]
    return {"missing": missing, "wrong": wrong, "audit": audit, "stuck_held": held}


@pytest.fixture
def redis_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "redis"


def test_kill_an_app_worker_mid_load(redis_url: str) -> None:
    with ServerProcess(redis_url, workers=2) as server:
        admin = {"Authorization": f"Bearer {server.admin_token}"}

        async def scenario() -> dict[str, Any]:
            rid, slots = await load_venue(
                server.url, admin, name="Crash", tables=60, hold_seconds=HOLD_SECONDS
            )
            load = asyncio.create_task(run_load(server.url, rid, slots, users=16, seconds=4))
            await asyncio.sleep(1.5)
            workers = children(int(server.pid or 0))
            assert len(workers) >= 2, workers
            os.kill(workers[0], signal.SIGKILL)
            outcome = await load
            result = await verify(server.url, admin, rid, outcome)
            return {"outcome": outcome, **result}

        result = asyncio.run(scenario())
    outcome: Outcome = result["outcome"]
    summary = {
        "requests": outcome.requests,
        "confirmed": len(outcome.confirmed),
        "statuses": dict(outcome.statuses),
        "transport_errors": outcome.transport_errors,
    }
    print(f"\nworker kill: {summary}")
    assert len(outcome.confirmed) > 20
    assert result["missing"] == [] and result["wrong"] == []
    assert result["audit"]["ok"], result["audit"]["violations"]
    assert result["stuck_held"] == []


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_kill_redis_mid_load_and_restart_from_its_files(redis_dir: Path, fsync: str) -> None:
    redis = EmbeddedRedis(redis_dir, port=0, unix_socket=False, appendfsync=fsync).start()
    try:
        with ServerProcess(redis.url, workers=1) as server:
            admin = {"Authorization": f"Bearer {server.admin_token}"}

            async def scenario() -> dict[str, Any]:
                rid, slots = await load_venue(
                    server.url, admin, name="Crash", tables=60, hold_seconds=HOLD_SECONDS
                )
                load = asyncio.create_task(run_load(server.url, rid, slots, users=16, seconds=5))
                await asyncio.sleep(2)
                redis.kill()
                killed_at = time.monotonic()
                await asyncio.sleep(0.5)
                async with httpx.AsyncClient(base_url=server.url) as http:
                    down = (await http.get("/ready")).status_code
                redis.start()  # same port, replays the AOF
                recovered = await wait_ready(server.url)
                outcome = await load
                result = await verify(server.url, admin, rid, outcome)
                in_last_second = sum(
                    1 for t in outcome.confirm_times if killed_at - 1 <= t <= killed_at
                )
                return {
                    "outcome": outcome,
                    "down": down,
                    "recovered": recovered,
                    "last_second": in_last_second,
                    **result,
                }

            result = asyncio.run(scenario())
    finally:
        redis.stop()
    outcome: Outcome = result["outcome"]
    summary = {
        "requests": outcome.requests,
        "confirmed_acks": len(outcome.confirmed),
        "lost": len(result["missing"]),
        "acks_in_last_second": result["last_second"],
        "ready_while_down": result["down"],
        "ready_again_after_s": round(result["recovered"], 2),
        "statuses": dict(outcome.statuses),
    }
    print(f"\nredis kill ({fsync}): {summary}")
    assert result["down"] == 503
    assert len(outcome.confirmed) > 20
    if fsync == "always":
        assert result["missing"] == []
    else:
        # A process crash loses nothing Redis already wrote to the AOF (the kernel keeps it);
        # everysec only risks the last second on a crash of the machine itself.
        assert len(result["missing"]) <= max(result["last_second"], 1)
    assert result["wrong"] == []
    assert result["audit"]["ok"], result["audit"]["violations"]
    assert result["stuck_held"] == []
