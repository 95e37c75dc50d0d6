"""One real `arbiter serve` per test module for the command-line tests, and a runner of the
`arbiter` command as a user runs it (a subprocess, stdout a pipe)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arbiter.server.app.embedded_pg import dsn_with_database, run_psql

ROOT = Path(__file__).resolve().parents[2]
DEMO_PROGRAM = ROOT / "server" / "demo" / "demo_program.json"
DEMO_ORDER = ROOT / "server" / "demo" / "example_order.json"
WAIT_S = 120.0
COMMAND_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def client_env(**extra: str) -> dict[str, str]:
    """The environment of a command: no ARBITER_* of the caller's but the calculation's form."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("ARBITER_") or k == "ARBITER_NATIVE"
    }
    env.update(extra)
    return env


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str


def run_arbiter(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Done:
    done = subprocess.run(
        [sys.executable, "-m", "arbiter.client.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=COMMAND_TIMEOUT_S,
        env=env if env is not None else client_env(),
    )
    return Done(done.returncode, done.stdout, done.stderr)


@dataclass
class Server:
    """A served program and the `arbiter` command pointed at it."""

    target: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def arbiter(self, *args: str, stdin: str | None = None, **env: str) -> Done:
        return run_arbiter(*args, "--target", self.target, stdin=stdin, env=client_env(**env))

    def ok(self, *args: str, stdin: str | None = None) -> str:
        """The command's stdout; the test fails unless it exits 0 without a traceback."""
        done = self.arbiter(*args, stdin=stdin)
        assert done.code == 0, f"arbiter {' '.join(args)} exited {done.code}:\n{done.err}"
        assert "Traceback" not in done.err, done.err
        return done.out

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.target)


def _wait_serving(target: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while True:
        if process.poll() is not None:
            raise AssertionError(f"arbiter serve exited:\n{log_path.read_text()[-3000:]}")
        with grpc.insecure_channel(target) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=2
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not SERVING in time:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)


def start_server(
    pg_dsn: str, folder: Path, *serve_args: str, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """`arbiter serve` on a fresh database of the session's cluster (`env`: more variables)."""
    name = f"t_{secrets.token_hex(8)}"
    run_psql(pg_dsn, f'CREATE DATABASE "{name}"')
    target = f"127.0.0.1:{free_port()}"
    log_path = folder / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "arbiter.client.cli",
                "serve",
                "--postgres",
                dsn_with_database(pg_dsn, name),
                "--listen",
                target,
                "--log-level",
                "WARNING",
                *serve_args,
            ],
            env=client_env(ARBITER_DATA_DIR=str(folder / "data"), **(env or {})),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_serving(target, process, log_path)
        yield Server(target, process, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        run_psql(pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def server(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo program served (one server for the whole test module)."""
    yield from start_server(pg_dsn, tmp_path_factory.mktemp("cli"), "--program", str(DEMO_PROGRAM))
