"""`holdsvc serve` and `holdsvc demo` as real processes."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from holdsvc.cli import main
from holdsvc.redis_server import free_tcp_port
from tests.serverproc import TEST_ADMIN_TOKEN, ServerProcess, run_server
from tests.serverproc import process_alive as alive


def test_demo_fills_a_running_server(redis_url: str) -> None:
    with run_server(redis_url) as url:
        command = [sys.executable, "-m", "holdsvc", "demo", "--url", url]
        demo = subprocess.run(
            [*command, "--admin-token", TEST_ADMIN_TOKEN],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert demo.returncode == 0, demo.stderr
        assert f"Admin token: {TEST_ADMIN_TOKEN}" in demo.stdout
        availability = next(
            line.split()[-1] for line in demo.stdout.splitlines() if "availability" in line
        )
        slots = httpx.get(availability).json()["slots"]
        assert slots
        assert sorted(t["capacity"] for t in slots[-1]["tables"]) == [2, 2, 4, 4, 6, 8]
        pages = {
            line.split()[0]: line.split()[-1]
            for line in demo.stdout.split("Pages:")[1].split("Try:")[0].strip().splitlines()
        }
        assert set(pages) == {"home", "guest", "event", "staff", "admin"}
        for page in pages.values():
            assert httpx.get(page).status_code == 200, page
        assert len(httpx.get(f"{url}/v1/events").json()["events"]) == 1
        assert f"{url}/schema/openapi.json" in demo.stdout


def test_serve_without_url_runs_and_stops_an_embedded_redis() -> None:
    server = ServerProcess(None, env={"HOLDSVC_ADMIN_TOKENS": ""}).start()
    try:
        first = server.output().splitlines()[0]
        assert "started embedded redis-server" in first
        assert f"unix://{server.data_dir}/redis.sock" in first
        assert httpx.get(f"{server.url}/ready").status_code == 200
        token = (server.data_dir / "admin_token").read_text().strip()
        assert token in server.output()
        assert (server.data_dir / "admin_token").stat().st_mode & 0o777 == 0o600
        redis_pid = int((server.data_dir / "redis.lock").read_text())
        assert alive(redis_pid)
    finally:
        server.stop()
    assert not alive(redis_pid)


def test_demo_says_when_the_server_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_tcp_port()}"
    assert main(["demo", "--url", url, "--admin-token", "x"]) == 1
    assert f"cannot reach {url}" in capsys.readouterr().err


def test_demo_without_any_token(
    tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HOLDSVC_ADMIN_TOKENS", raising=False)
    monkeypatch.setenv("HOLDSVC_DATA_DIR", str(tmp_path))
    assert main(["demo"]) == 1
    assert "no admin token" in capsys.readouterr().err
