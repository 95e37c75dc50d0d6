"""CalculateOrder through a whole server, against the same server's health Check (its floor).

    make bench      (the server runs as `arbiter serve` on the demo program and the dense
                     program of bench/workloads.py, embedded PostgreSQL)
    .venv/bin/pytest -q -p no:cacheprovider bench/test_bench_server.py --benchmark-only -s

Goals (reported, not asserted), on the dense workload: CalculateOrder p50 within 1.25x and p99
within 1.5x the health Check's, both measured in the same run, interleaved, from one client;
and the server's CPU per CalculateOrder within 1.5x its CPU per health Check (read from
/proc/<pid>/stat over windows of each call alone). The figures are printed and stored in the
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

from arbiter.server.api.program_file import program_to_json
from arbiter.v1 import checkout_pb2, checkout_pb2_grpc
from bench.workloads import dense_workload

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "server" / "demo"
ROUNDS = 2000
CPU_CALLS = 1000
CPU_WINDOWS = 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[grpc.Channel, int]]:
    """A channel to `arbiter serve` (demo and dense programs) and the server's process id."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="arbiter-bench-") as data:
        env = dict(os.environ, ARBITER_DATA_DIR=data)
        dense = Path(data) / "dense_program.json"
        dense.write_text(program_to_json(dense_workload()[0]))
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from arbiter.client.cli import main; raise SystemExit(main())",
                "serve",
                "--program",
                str(DEMO / "demo_program.json"),
                "--program",
                str(dense),
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
            yield chan, server.pid
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


def _dense() -> checkout_pb2.CalculateOrderRequest:
    return dense_workload()[1]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in microseconds."""
    cuts = statistics.quantiles(samples, n=100)
    return statistics.median(samples) * 1e6, cuts[98] * 1e6


def _interleaved(
    check: Callable[[], Any], call: Callable[[], Any]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Interleaved (p50, p99) in microseconds of the floor and of the call."""
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
    return _percentiles(floor), _percentiles(measured)


def _cpu_s(pid: int) -> float:
    """CPU seconds of a process, every thread (utime + stime of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu_us(
    pid: int, check: Callable[[], Any], call: Callable[[], Any]
) -> tuple[float, float]:
    """The server's CPU per check and per call (microseconds): windows of CPU_CALLS of each in
    a row, alternated CPU_WINDOWS times; the median window of each (the machine is shared, so
    single windows drift)."""
    per_window: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(CPU_WINDOWS):
        for which, fn in enumerate((check, call)):
            before = _cpu_s(pid)
            for _ in range(CPU_CALLS):
                fn()
            per_window[which].append((_cpu_s(pid) - before) / CPU_CALLS * 1e6)
    return statistics.median(per_window[0]), statistics.median(per_window[1])


SHAPES = {"example": _example, "twenty-lines": _twenty_lines, "dense": _dense}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.benchmark(group="server")
def test_calculate_order_against_health_check(
    benchmark: Any, server: tuple[grpc.Channel, int], shape: str
) -> None:
    channel, pid = server
    request = SHAPES[shape]()
    checkout = checkout_pb2_grpc.CheckoutServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    ping = health_pb2.HealthCheckRequest()

    def check() -> Any:
        return health.Check(ping)

    def call() -> Any:
        return checkout.CalculateOrder(request)

    (check_p50, check_p99), (calc_p50, calc_p99) = _interleaved(check, call)
    check_cpu, calc_cpu = _server_cpu_us(pid, check, call)
    benchmark.extra_info.update(
        check_p50_us=round(check_p50, 1),
        check_p99_us=round(check_p99, 1),
        calculate_p50_us=round(calc_p50, 1),
        calculate_p99_us=round(calc_p99, 1),
        p50_ratio=round(calc_p50 / check_p50, 3),
        p99_ratio=round(calc_p99 / check_p99, 3),
        check_server_cpu_us=round(check_cpu, 1),
        calculate_server_cpu_us=round(calc_cpu, 1),
        cpu_ratio=round(calc_cpu / check_cpu, 3),
    )
    print(
        f"\n{shape}: Check p50 {check_p50:.0f} us p99 {check_p99:.0f} us;"
        f" CalculateOrder p50 {calc_p50:.0f} us p99 {calc_p99:.0f} us;"
        f" ratios p50 {calc_p50 / check_p50:.2f} (goal 1.25), p99 {calc_p99 / check_p99:.2f}"
        f" (goal 1.5); server CPU per call: Check {check_cpu:.0f} us, CalculateOrder"
        f" {calc_cpu:.0f} us, ratio {calc_cpu / check_cpu:.2f} (goal 1.5)"
    )
    response = benchmark(call)
    assert response.totals.subtotal > 0
