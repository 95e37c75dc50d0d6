"""Settings, the loopback rule (docs/contract.md), and the `arbiter` command end to end."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health, health_pb2_grpc

import arbiter as arbiter_package
from arbiter.server.api.program_file import load_demo_program
from arbiter.server.app.server import SERVICE_NAMES
from arbiter.server.app.settings import (
    DEFAULT_LISTEN,
    Settings,
    SettingsError,
    is_loopback,
    settings_from_args,
)
from arbiter.server.app.wiring import App, ProgramFileError
from arbiter.server.engine import compile_program
from arbiter.v1 import checkout_pb2, program_pb2

MakeProgram = Callable[..., program_pb2.Program]
MakeRequest = Callable[..., checkout_pb2.CalculateOrderRequest]


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("127.1.2.3:1", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("unix:/tmp/arbiter.sock", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        (":50051", False),
        ("10.0.0.7:50051", False),
        ("arbiter.example.com:50051", False),
    ],
)
def test_is_loopback(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback


def test_non_loopback_without_admin_key_refuses_to_start() -> None:
    with pytest.raises(SettingsError, match="ARBITER_ADMIN_KEY"):
        Settings(listen="0.0.0.0:50051").check()
    Settings(listen="0.0.0.0:50051", admin_key="k").check()
    Settings(listen="127.0.0.1:50051").check()


def test_admin_key_is_never_in_repr() -> None:
    assert "hunter2" not in repr(Settings(admin_key="hunter2"))


@pytest.mark.parametrize("listen", ["50051", "host:port", "127.0.0.1:70000", "[::1]"])
def test_malformed_listen_is_refused(listen: str) -> None:
    with pytest.raises(SettingsError):
        settings_from_args(argv=["--listen", listen], env={})


def test_flags_win_over_environment_over_defaults(tmp_path: Path) -> None:
    env = {
        "ARBITER_LISTEN": "127.0.0.1:6000",
        "ARBITER_POSTGRES_URL": "postgresql://env/db",
        "ARBITER_REDIS_URL": "redis://env:6379/0",
        "ARBITER_DATA_DIR": str(tmp_path / "env-data"),
        "ARBITER_ADMIN_KEY": "secret",
    }
    from_env = settings_from_args(argv=[], env=env)
    assert from_env.listen == "127.0.0.1:6000"
    assert from_env.postgres_url == "postgresql://env/db"
    assert from_env.redis_url == "redis://env:6379/0"
    assert from_env.data_dir == tmp_path / "env-data"
    assert from_env.admin_key == "secret"

    from_flags = settings_from_args(
        argv=[
            "--listen",
            "127.0.0.1:7000",
            "--postgres",
            "postgresql://flag/db",
            "--redis",
            "redis://flag:6379/0",
            "--postgres-bin",
            str(tmp_path / "bin"),
            "--program",
            "a.json",
            "--program",
            "b.json",
        ],
        env=env,
    )
    assert from_flags.listen == "127.0.0.1:7000"
    assert from_flags.postgres_url == "postgresql://flag/db"
    assert from_flags.redis_url == "redis://flag:6379/0"
    assert from_flags.postgres_bin == tmp_path / "bin"
    assert from_flags.programs == (Path("a.json"), Path("b.json"))

    defaults = settings_from_args(argv=[], env={"XDG_DATA_HOME": str(tmp_path)})
    assert defaults.listen == DEFAULT_LISTEN
    assert defaults.postgres_url is None
    assert defaults.admin_key is None
    assert defaults.data_dir == tmp_path / "arbiter"


async def test_app_refuses_non_loopback_without_key_before_listening() -> None:
    app = App(Settings(listen="0.0.0.0:0"))
    with pytest.raises(SettingsError):
        await app.open()


async def test_a_busy_port_is_a_settings_error() -> None:
    first = App(Settings(listen="127.0.0.1:0"))
    await first.open()
    try:
        second = App(Settings(listen=f"127.0.0.1:{first.port}"))
        with pytest.raises(SettingsError, match="cannot listen"):
            await second.open()
    finally:
        await first.stop(0)


# --- The `arbiter` command, as a user runs it. ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data folder of the test's own, not under pytest's 0700 base folder: under root the
    account PostgreSQL runs as must traverse it."""
    path = Path(tempfile.mkdtemp(prefix="arbiter-test-serve-"))
    path.chmod(0o711)
    try:
        yield path / "data"
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def arbiter(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arbiter.client.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_serve_calculate_health_and_graceful_stop(
    tmp_path: Path, data_dir: Path, make_program: MakeProgram, make_request: MakeRequest
) -> None:
    program_file = tmp_path / "demo.json"
    program_file.write_text(json_format.MessageToJson(make_program()), encoding="utf-8")
    request_file = tmp_path / "order.json"
    request = make_request()
    request.program = "other"  # --program overrides it
    request_file.write_text(json_format.MessageToJson(request), encoding="utf-8")
    target = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")}
    env["ARBITER_DATA_DIR"] = str(data_dir)

    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arbiter.client.cli",
        "serve",
        "--program",
        str(program_file),
        "--listen",
        target,
        "--log-level",
        "WARNING",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(300):
            code, out, _ = await arbiter("health", "--target", target)
            if code == 0:
                break
            await asyncio.sleep(0.1)
        assert (code, out.strip()) == (0, "SERVING")

        code, out, err = await arbiter(
            "calculate", "--target", target, "--program", "demo", str(request_file)
        )
        assert code == 0, err
        answer = json.loads(out)
        assert answer["program_version"] == "1"
        assert answer["totals"]["total"] == "6800000"

        bad = make_request()
        bad.order.lines[0].quantity = 0
        request_file.write_text(json_format.MessageToJson(bad), encoding="utf-8")
        code, _, err = await arbiter("calculate", "--target", target, str(request_file))
        assert code == 1
        assert "INVALID_ARGUMENT" in err
        assert "order.lines[0].quantity: must be positive" in err
    finally:
        if server.returncode is None:
            server.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(server.communicate(), timeout=30)
    assert server.returncode == 0, stderr.decode()


async def test_serve_refuses_a_public_address_without_admin_key() -> None:
    code, _, err = await arbiter("serve", "--listen", "0.0.0.0:0")
    assert code == 2
    assert "ARBITER_ADMIN_KEY" in err


async def test_health_of_nothing_listening_fails() -> None:
    code, _, err = await arbiter("health", "--target", f"127.0.0.1:{free_port()}")
    assert code == 1
    assert "UNAVAILABLE" in err


async def test_health_of_an_unknown_service_says_what_is_known(served: App) -> None:
    target = f"127.0.0.1:{served.port}"
    code, out, err = await arbiter("health", "--target", target, "--service", "arbiter.v1.Nope")
    assert (code, out) == (1, "")
    assert err.startswith(
        "arbiter health: NOT_FOUND: service 'arbiter.v1.Nope' is not known to this server; "
        "known: 'arbiter.v1.CheckoutService', 'arbiter.v1.MemberService', "
        "'arbiter.v1.AdminService', and '' for the whole server"
    ), err
    for service in SERVICE_NAMES:
        code, out, err = await arbiter("health", "--target", target, "--service", service)
        assert (code, out.strip()) == (0, "SERVING"), err


async def test_version() -> None:
    code, out, _ = await arbiter("--version")
    assert code == 0
    assert out.strip() == f"arbiter {metadata.version('arbiter-loyalty')}"
    assert metadata.version("arbiter-loyalty") == arbiter_package.__version__


async def test_calculate_writes_utf8_whatever_the_locale(served: App, tmp_path: Path) -> None:
    served.programs.publish(load_demo_program())
    demo = Path(__file__).resolve().parents[2] / "server" / "demo" / "example_order.json"
    for encoding in ("utf-8", "latin-1", "ascii"):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "arbiter.client.cli",
            "calculate",
            "--target",
            f"127.0.0.1:{served.port}",
            str(demo),
            env={**os.environ, "PYTHONIOENCODING": encoding},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, stderr.decode()
        assert "You had 50000 bonus points before this order 🎁".encode() in stdout
        assert b"\\ud83c" not in stdout
        assert json.loads(stdout.decode("utf-8"))["texts"][0].endswith("🎁")


def test_every_folder_of_the_package_is_declared() -> None:
    """`pip install .` installs exactly the declared packages: a folder left out warns and
    would be dropped by a future setuptools."""
    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]
    declared = set(config["packages"])
    found = set()
    for name, folder in config["package-dir"].items():
        for sub in [root / folder, *(root / folder).rglob("*")]:
            if not sub.is_dir() or any(
                part.startswith(("_native", "__pycache__", ".")) for part in sub.parts
            ):
                continue
            if not any(f.is_file() for f in sub.iterdir()):
                continue
            relative = sub.relative_to(root / folder).parts
            found.add(".".join((name, *relative)))
    assert found - declared == set()
    assert "arbiter.server.demo" in declared
    assert "arbiter.server.ledger.migrations" in declared


async def test_open_reads_every_program_file_before_the_port_and_storage(
    tmp_path: Path, make_program: MakeProgram
) -> None:
    good = tmp_path / "good.json"
    good.write_text(json_format.MessageToJson(make_program()), encoding="utf-8")
    bad = tmp_path / "bad.json"
    broken = make_program()
    broken.arbitration.children.add(promotion="nope")
    bad.write_text(json_format.MessageToJson(broken), encoding="utf-8")
    with socket.socket() as holder:  # a busy port, which the bad file must fail before
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        settings = Settings(
            listen=f"127.0.0.1:{holder.getsockname()[1]}",
            programs=(good, bad),
            embedded_postgres=True,
            data_dir=tmp_path / "data",
        )
        app = App(settings)
        with pytest.raises(ProgramFileError) as caught:
            await app.open()
        assert caught.value.path == bad
        assert "nope" in str(caught.value)
        assert len(app.programs) == 0  # the good file was not applied either
        # The files fixed, the busy port fails next, still before any storage.
        app = App(dataclasses.replace(settings, programs=(good,)))
        with pytest.raises(SettingsError, match="already in use"):
            await app.open()
    assert not (tmp_path / "data").exists()


async def test_reload_applies_changed_files_and_refuses_bad_ones(
    tmp_path: Path, make_program: MakeProgram
) -> None:
    path = tmp_path / "demo.json"
    path.write_text(json_format.MessageToJson(make_program()), encoding="utf-8")
    app = App(Settings(listen="127.0.0.1:0", programs=(path,)))
    await app.start()
    try:
        assert app.programs.get("demo").version == 1
        assert await app.reload_programs() == [("demo", 1)]  # unchanged
        changed = make_program(program_pb2.ARBITRATION_MODE_SEQUENTIAL, ("B", "A"))
        path.write_text(json_format.MessageToJson(changed), encoding="utf-8")
        assert await app.reload_programs() == [("demo", 2)]
        path.write_text("[]", encoding="utf-8")
        with pytest.raises(ProgramFileError):
            await app.reload_programs()
        assert app.programs.get("demo").version == 2
    finally:
        await app.stop(0)


async def test_a_reload_that_fails_keeps_the_server_serving(
    tmp_path: Path, make_program: MakeProgram, caplog: pytest.LogCaptureFixture
) -> None:
    """serve_until_signal in this process: SIGHUP whose reload raises something unforeseen,
    then SIGTERM."""
    path = tmp_path / "demo.json"
    path.write_text(json_format.MessageToJson(make_program()), encoding="utf-8")
    calls = 0

    def compile_once(program: program_pb2.Program) -> object:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise RuntimeError("the compiler broke")
        return compile_program(program)

    caplog.set_level(logging.INFO, logger="arbiter.app")
    app = App(Settings(listen="127.0.0.1:0", programs=(path,)), compile=compile_once)
    serving = asyncio.create_task(app.serve_until_signal())
    async with asyncio.timeout(60):  # a hang fails, not blocks
        while "serving 1 program(s)" not in caplog.text:
            assert not serving.done()
            await asyncio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGHUP)
        while "reload failed; still serving" not in caplog.text:
            assert not serving.done(), serving
            await asyncio.sleep(0.01)
        assert app.programs.get("demo").version == 1
        os.kill(os.getpid(), signal.SIGTERM)
        await serving
    assert "stopping: draining calls" in caplog.text


async def test_health_of_an_unknown_service_on_a_terse_server() -> None:
    """A server with the standard health service alone: NOT_FOUND with no message."""
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        code, out, err = await arbiter(
            "health", "--target", f"127.0.0.1:{port}", "--service", "x.Y"
        )
    finally:
        await server.stop(0)
    assert (code, out) == (1, "")
    assert err.strip() == "arbiter health: NOT_FOUND: service 'x.Y' is not known to the server"
