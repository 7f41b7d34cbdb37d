"""``holdsvc loadtest`` and ``holdsvc audit`` against a real server: bounded, honest, clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from redis.asyncio import Redis

from tests.serverproc import ServerProcess

pytestmark = pytest.mark.slow


def holdsvc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "holdsvc", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def loadtest(server: ServerProcess, *options: str) -> subprocess.CompletedProcess[str]:
    """``holdsvc loadtest --json`` against a running server, with these options."""
    return holdsvc(
        "loadtest", "--url", server.url, "--admin-token", server.admin_token, "--json", *options
    )


@pytest.mark.parametrize("mode", [[], ["--hotspot", "--hot-cells", "2"]])
def test_loadtest_reports_and_checks_invariants(
    redis_url: str, redis: Redis, mode: list[str]
) -> None:
    with ServerProcess(redis_url, workers=2) as server:
        done = loadtest(server, "--users", "20", "--duration", "3", *mode)
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert report["ok"] and report["invariants"]["audit_ok"]
    assert (
        report["requests"] > 100
        and report["statuses"].get(201, report["statuses"].get("201", 0)) > 0
    )
    assert (
        report["invariants"]["missing"] == [] and report["invariants"]["cancel_not_applied"] == []
    )
    assert report["p99_ms"] >= report["p50_ms"] > 0
    if mode:
        assert "unit_unavailable" in report["error_codes"]


def test_loadtest_stays_on_loopback_and_within_budget(redis_url: str, redis: Redis) -> None:
    refused = holdsvc("loadtest", "--url", "http://192.0.2.10:8000", "--admin-token", "x")
    assert refused.returncode == 1 and "loopback" in refused.stderr
    with ServerProcess(redis_url) as server:
        done = loadtest(server, "--users", "5", "--duration", "30", "--max-requests", "60")
    report = json.loads(done.stdout)
    assert report["requests"] <= 60 + 5 * 4 and report["seconds"] < 25


async def test_audit_command_reads_redis_directly(redis_url: str, redis: Redis) -> None:
    with ServerProcess(redis_url) as server:
        loadtest(server, "--users", "5", "--duration", "1")
    env = {**os.environ, "HOLDSVC_REDIS_URL": redis_url}
    clean = holdsvc("audit", env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert ": ok" in clean.stdout
    venue = clean.stdout.split(":")[0]
    # Plant a fault: a cell held by a hold that does not exist.
    await redis.hset(f"hs:{{{venue}}}:cells:2030-01-01T10:00", "T1", "h|ghost|99999999999999")
    broken = holdsvc("audit", venue, env=env)
    assert (
        broken.returncode == 1 and "VIOLATIONS" in broken.stdout and "cell_owner" in broken.stdout
    )
    assert holdsvc("audit", "NOSUCH", env=env).returncode == 1


def test_loadtest_says_when_the_server_rate_limits_it(redis_url: str, redis: Redis) -> None:
    """A load test from one address against the default limit: the refusals are explained."""
    env = {"HOLDSVC_RATE_LIMIT_PER_MINUTE": "30"}
    with ServerProcess(redis_url, env=env) as server:
        done = loadtest(server, "--users", "5", "--duration", "2")
    report = json.loads(done.stdout)
    assert report["error_codes"]["rate_limited"] > 0
    assert any("HOLDSVC_RATE_LIMIT_PER_MINUTE" in hint for hint in report["hints"])
    assert report["invariants"]["audit_ok"] and report["invariants"]["missing"] == []
