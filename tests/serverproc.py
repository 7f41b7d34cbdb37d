"""Real ``holdsvc serve`` processes, for tests that go through HTTP and several processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import NoReturn, Self

import httpx

from holdsvc.redis_server import free_tcp_port

TEST_ADMIN_TOKEN = "test-admin-token"
TEST_SECRET_KEY = "test-secret-key-not-for-production"


def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie nobody has reaped yet counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(") ", 1)[1][0] != "Z"
    return True


class ServerProcess:
    """One ``python -m holdsvc serve`` process group on a loopback port.

    The environment is hermetic: no ``HOLDSVC_*`` variable of the test run leaks in; the
    server gets `redis_url`, `TEST_ADMIN_TOKEN`, `TEST_SECRET_KEY` and a private data dir,
    then whatever `env` says on top.

    Args:
        redis_url: The Redis the server uses (``HOLDSVC_REDIS_URL``); None: its embedded one.
        port: The TCP port on 127.0.0.1; a free one when None.
        workers: uvicorn worker processes.
        env: Extra or overriding environment variables.
        startup_timeout: Seconds to wait for ``GET /health`` to answer 200.
    """

    def __init__(
        self,
        redis_url: str | None,
        *,
        port: int | None = None,
        workers: int = 1,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        self.port = port or free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.startup_timeout = startup_timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="holdsvc-server-")
        self.log_path = Path(self._tmp.name) / "output.log"
        self.data_dir = Path(self._tmp.name) / "data"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDSVC_")}
        self.env.update(
            PYTHONUNBUFFERED="1",
            HOLDSVC_ADMIN_TOKENS=TEST_ADMIN_TOKEN,
            HOLDSVC_SECRET_KEY=TEST_SECRET_KEY,
            HOLDSVC_DATA_DIR=str(self.data_dir),
            HOLDSVC_LOG_LEVEL="warning",
            HOLDSVC_RATE_LIMIT_PER_MINUTE="0",  # races send hundreds of holds from one address
        )
        if redis_url is not None:
            self.env["HOLDSVC_REDIS_URL"] = redis_url
        self.env.update(env or {})
        self.admin_token = self.env["HOLDSVC_ADMIN_TOKENS"].split(",")[0]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's main process id while it runs."""
        return self.process.pid if self.process and self.process.poll() is None else None

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> Self:
        """Start the server and wait until ``GET /health`` answers 200.

        Returns:
            This instance.

        Raises:
            RuntimeError: When the server exits or does not answer in time (with its output).
        """
        command = [sys.executable, "-m", "holdsvc", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", str(self.workers)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self._tmp.name,  # no .env of the checkout is read
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: workers included in kill()
            )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                self._fail(f"exited with status {self.process.returncode} at start-up")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                self._fail(f"did not answer GET /health with 200 in {self.startup_timeout:g} s")
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a graceful shutdown), SIGKILL to the whole group after `timeout`.

        Args:
            timeout: Seconds to wait for the graceful shutdown.
        """
        process = self.process
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout)
            self._kill_group(process)
        self._tmp.cleanup()

    def kill(self) -> None:
        """SIGKILL the server and its workers at once, as a crash would."""
        if self.process is not None:
            self._kill_group(self.process)

    def _kill_group(self, process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # also any worker left behind
        process.wait()

    def _fail(self, what: str) -> NoReturn:
        output = self.output()
        self.stop(timeout=2.0)
        raise RuntimeError(f"holdsvc serve on {self.url} {what}; its output:\n{output}")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def run_server(
    redis_url: str,
    port: int | None = None,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Run ``holdsvc serve`` against `redis_url` for the duration of a ``with`` block.

    Args:
        redis_url: The Redis the server uses.
        port: The loopback port; a free one when None.
        workers: uvicorn worker processes.
        env: Extra environment variables for the server (they win over the defaults).

    Yields:
        The base URL, ``http://127.0.0.1:PORT``. The admin token is `TEST_ADMIN_TOKEN`
        unless `env` sets ``HOLDSVC_ADMIN_TOKENS``. Use `ServerProcess` to kill it mid-test.
    """
    with ServerProcess(redis_url, port=port, workers=workers, env=env) as server:
        yield server.url
