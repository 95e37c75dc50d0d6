"""CalculateOrder through a whole server, against the same server's health Check (its floor).

    make bench      (the server runs as `arbiter serve` on the demo program, embedded PostgreSQL)

Goal (reported, not asserted): CalculateOrder p50 within 1.25x the health Check p50, both
measured in the same run, interleaved, from one client. The ratio is printed and stored in the
benchmark's extra_info.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arbiter.v1 import checkout_pb2, checkout_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "server" / "demo"
ROUNDS = 2000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def channel() -> Iterator[grpc.Channel]:
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="arbiter-bench-") as data:
        env = dict(os.environ, ARBITER_DATA_DIR=data)
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from arbiter.client.cli import main; raise SystemExit(main())",
                "serve",
                "--program",
                str(DEMO / "demo_program.json"),
                "--listen",
                f"127.0.0.1:{port}",
                "--jobs-interval",
                "0",
                "--log-level",
                "WARNING",
            ],
            env=env,
        )
        try:
            chan = grpc.insecure_channel(f"127.0.0.1:{port}")
            health = health_pb2_grpc.HealthStub(chan)
            deadline = time.monotonic() + 120
            while True:
                try:
                    status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not come up")
                time.sleep(0.2)
            yield chan
            chan.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)


def _example() -> checkout_pb2.CalculateOrderRequest:
    request = checkout_pb2.CalculateOrderRequest()
    json_format.Parse((DEMO / "example_order.json").read_text(), request)
    return request


def _twenty_lines() -> checkout_pb2.CalculateOrderRequest:
    request = _example()
    first = json.loads(json_format.MessageToJson(request.order.lines[0]))
    del request.order.lines[:]
    for i in range(20):
        line = request.order.lines.add()
        json_format.ParseDict(dict(first, id=f"l{i}", sku=f"SKU-{i}", unitPrice=1000 + i), line)
    return request


def _p50_ratio(check: Callable[[], Any], call: Callable[[], Any]) -> tuple[float, float]:
    """Interleaved p50s (microseconds) of the floor and of the call."""
    floor: list[float] = []
    measured: list[float] = []
    for _ in range(200):  # warm both paths
        check()
        call()
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        check()
        t1 = time.perf_counter()
        call()
        t2 = time.perf_counter()
        floor.append(t1 - t0)
        measured.append(t2 - t1)
    return statistics.median(floor) * 1e6, statistics.median(measured) * 1e6


@pytest.mark.parametrize("shape", ["example", "twenty-lines"])
@pytest.mark.benchmark(group="server")
def test_calculate_order_against_health_check(
    benchmark: Any, channel: grpc.Channel, shape: str
) -> None:
    request = _example() if shape == "example" else _twenty_lines()
    checkout = checkout_pb2_grpc.CheckoutServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    ping = health_pb2.HealthCheckRequest()
    check_us, calc_us = _p50_ratio(
        lambda: health.Check(ping), lambda: checkout.CalculateOrder(request)
    )
    benchmark.extra_info.update(
        check_p50_us=round(check_us, 1),
        calculate_p50_us=round(calc_us, 1),
        ratio=round(calc_us / check_us, 3),
    )
    print(
        f"\n{shape}: Check p50 {check_us:.0f} us, CalculateOrder p50 {calc_us:.0f} us,"
        f" ratio {calc_us / check_us:.2f} (goal 1.25)"
    )
    response = benchmark(checkout.CalculateOrder, request)
    assert response.totals.subtotal > 0
