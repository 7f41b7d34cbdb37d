"""The embedded redis-server: starts, persists through stop and kill -9, runs side by side."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis

from holdsvc.redis_server import EmbeddedRedis, EmbeddedRedisError, find_redis_binary
from tests.serverproc import process_alive as alive


def client(server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_timeout=2)


def test_find_binary_is_executable() -> None:
    assert os.access(find_redis_binary(), os.X_OK)


def test_starts_on_unix_socket_and_answers(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        assert server.url == f"unix://{tmp_path / 'redis.sock'}"
        assert server.pid is not None
        assert server.version.split()[0] in {"redis", "valkey"}
        conn = client(server)
        assert conn.ping()
        assert conn.config_get("appendonly") == {"appendonly": "yes"}
        assert conn.config_get("port") == {"port": "0"}
        conn.close()


def test_tcp_port_on_loopback(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path, port=0, unix_socket=False) as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        conn = client(server)
        assert conn.config_get("bind") == {"bind": "127.0.0.1"}
        assert conn.ping()
        conn.close()


def test_persists_across_stop_and_start(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, port=0)
    with server:
        url = server.url
        conn = client(server)
        conn.set("k", "v")
        conn.close()
    assert not server.running
    with server:
        assert server.url == url  # same port after a restart
        conn = client(server)
        assert conn.get("k") == b"v"
        conn.close()


def test_survives_kill_9(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, appendfsync="always").start()
    try:
        conn = client(server)
        conn.rpush("log", *range(100))
        conn.close()
        pid = server.pid
        assert pid is not None
        server.kill()
        assert not alive(pid)
        server.start()
        conn = client(server)
        assert conn.llen("log") == 100
        conn.close()
    finally:
        server.stop()


def test_two_instances_side_by_side(tmp_path: Path) -> None:
    with (
        EmbeddedRedis(tmp_path / "a", port=0) as a,
        EmbeddedRedis(tmp_path / "b", port=0) as b,
    ):
        assert a.url != b.url and a.pid != b.pid
        ca, cb = client(a), client(b)
        ca.set("who", "a")
        cb.set("who", "b")
        assert (ca.get("who"), cb.get("who")) == (b"a", b"b")
        ca.close()
        cb.close()


def test_one_data_dir_one_server(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        with pytest.raises(EmbeddedRedisError, match="in use"):
            EmbeddedRedis(tmp_path).start()
        assert client(server).ping()


def test_no_process_left_after_stop(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path).start()
    pid = server.pid
    assert pid is not None
    server.stop()
    assert not alive(pid)
    assert server.pid is None
    assert not (tmp_path / "redis.sock").exists()


def test_failed_start_shows_the_log(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, port=0)
    server._arguments = lambda: ["--no-such-option", "x"]  # type: ignore[method-assign]
    with pytest.raises(EmbeddedRedisError, match="exited with status"):
        server.start()
    assert not server.running


@pytest.mark.parametrize("how", ["exit", "sigterm", "sigkill"])
def test_server_dies_with_its_parent(tmp_path: Path, how: str) -> None:
    """However the owning Python process ends, its redis-server does not outlive it."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from holdsvc.redis_server import EmbeddedRedis
        server = EmbeddedRedis(Path({str(tmp_path)!r})).start()
        print(server.pid, flush=True)
        if {how!r} == "exit":
            sys.exit(0)
        time.sleep(30)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    if how != "exit":
        parent.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
    parent.wait(10)
    for _ in range(100):
        if not alive(pid):
            break
        subprocess.run(["sleep", "0.02"], check=True)
    assert not alive(pid)
