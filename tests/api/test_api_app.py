"""Settings, the loopback rule (docs/contract.md), and the `arbiter` command end to end."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from google.protobuf import json_format

from arbiter.server.app.settings import (
    DEFAULT_LISTEN,
    Settings,
    SettingsError,
    is_loopback,
    settings_from_args,
)
from arbiter.server.app.wiring import App
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
    tmp_path: Path, make_program: MakeProgram, make_request: MakeRequest
) -> None:
    program_file = tmp_path / "demo.json"
    program_file.write_text(json_format.MessageToJson(make_program()), encoding="utf-8")
    request_file = tmp_path / "order.json"
    request = make_request()
    request.program = "other"  # --program overrides it
    request_file.write_text(json_format.MessageToJson(request), encoding="utf-8")
    target = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")}

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
