"""What keys, metrics and JSON logs cost CalculateOrder, against the health Check (its floor).

    make bench      (or: pytest bench/test_bench_security.py -s)

Three `arbiter serve` processes on the demo program run at once: `plain` (no auth, no
metrics), `metrics` (`--metrics`), `metrics+auth` (`--metrics` and ARBITER_ADMIN_KEY: every
call sends its bearer key), and `metrics+header` (the metrics server, sent the key it does not
check). One loop interleaves all six calls round by round, so the machine's
drift weighs on every configuration alike; each configuration's ratio is its own CalculateOrder
p50 over its own Check p50 (the Check is neither authenticated nor timed by the server's
wrapper). Reported, not asserted.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from arbiter.v1 import checkout_pb2_grpc
from bench.test_bench_server import DEMO, _example, _free_port, _twenty_lines

ROUNDS = 3000
KEY = "bench-admin-key-0123456789abcdef"
METRICS_PORTS = {"metrics": _free_port(), "metrics+auth": _free_port()}
CONFIGS: dict[str, tuple[list[str], dict[str, str]]] = {
    "plain": ([], {}),
    "metrics": (["--metrics", f"127.0.0.1:{METRICS_PORTS['metrics']}"], {}),
    "metrics+auth": (
        ["--metrics", f"127.0.0.1:{METRICS_PORTS['metrics+auth']}"],
        {"ARBITER_ADMIN_KEY": KEY},
    ),
}
_CALCULATE = "/arbiter.v1.CheckoutService/CalculateOrder"


def _server_side_mean_us(port: int) -> float:
    """The servers' own view: the mean of arbiter_rpc_duration_seconds for CalculateOrder."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("method") == _CALCULATE and sample.labels.get("code") == "OK":
                values[sample.name] = sample.value
    count = values["arbiter_rpc_duration_seconds_count"]
    return values["arbiter_rpc_duration_seconds_sum"] / count * 1e6


@contextmanager
def _server(extra: list[str], extra_env: dict[str, str]) -> Iterator[grpc.Channel]:
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="arbiter-bench-") as data:
        env = {k: v for k, v in os.environ.items() if k != "ARBITER_ADMIN_KEY"}
        env.update(ARBITER_DATA_DIR=data, **extra_env)
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
                *extra,
            ],
            env=env,
        )
        try:
            chan = grpc.insecure_channel(f"127.0.0.1:{port}")
            health = health_pb2_grpc.HealthStub(chan)
            deadline = time.monotonic() + 180
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


def _measure(pairs: dict[str, tuple[Callable[[], Any], Callable[[], Any]]]) -> dict[str, Any]:
    floors: dict[str, list[float]] = {name: [] for name in pairs}
    calls: dict[str, list[float]] = {name: [] for name in pairs}
    for _ in range(300):
        for check, call in pairs.values():
            check()
            call()
    for _ in range(ROUNDS):
        for name, (check, call) in pairs.items():
            t0 = time.perf_counter()
            check()
            t1 = time.perf_counter()
            call()
            t2 = time.perf_counter()
            floors[name].append(t1 - t0)
            calls[name].append(t2 - t1)
    out = {}
    for name in pairs:
        check_us = statistics.median(floors[name]) * 1e6
        calc_us = statistics.median(calls[name]) * 1e6
        out[name] = (round(check_us, 1), round(calc_us, 1), round(calc_us / check_us, 3))
    return out


def test_cost_of_keys_and_metrics(benchmark: Any) -> None:
    with ExitStack() as stack:
        channels = {name: stack.enter_context(_server(*config)) for name, config in CONFIGS.items()}
        ping = health_pb2.HealthCheckRequest()
        for shape, request in (("example", _example()), ("twenty-lines", _twenty_lines())):
            pairs = {}
            # `metrics+header` sends the key to the metrics server, whose auth is off: what the
            # header itself costs on the wire and in grpc, apart from the server's check.
            runs = {**channels, "metrics+header": channels["metrics"]}
            for name, chan in runs.items():
                with_key = "auth" in name or "header" in name
                metadata = (("authorization", f"Bearer {KEY}"),) if with_key else None
                health = health_pb2_grpc.HealthStub(chan)
                checkout = checkout_pb2_grpc.CheckoutServiceStub(chan)
                pairs[name] = (
                    lambda health=health: health.Check(ping),
                    lambda checkout=checkout, metadata=metadata, request=request: (
                        checkout.CalculateOrder(request, metadata=metadata)
                    ),
                )
            results = _measure(pairs)
            for name, (check_us, calc_us, ratio) in results.items():
                benchmark.extra_info[f"{shape}/{name}"] = {
                    "check_p50_us": check_us,
                    "calculate_p50_us": calc_us,
                    "ratio": ratio,
                }
                print(
                    f"\n{shape} {name}: Check p50 {check_us:.0f} us,"
                    f" CalculateOrder p50 {calc_us:.0f} us, ratio {ratio:.3f}"
                )
        for name, port in METRICS_PORTS.items():
            mean_us = _server_side_mean_us(port)
            benchmark.extra_info[f"server_side_mean_us/{name}"] = round(mean_us, 1)
            print(f"\nserver side, {name}: CalculateOrder mean {mean_us:.1f} us")
        checkout = checkout_pb2_grpc.CheckoutServiceStub(channels["metrics+auth"])
        key = (("authorization", f"Bearer {KEY}"),)
        response = benchmark(checkout.CalculateOrder, _example(), metadata=key)
        assert response.totals.subtotal > 0


async def _in_process_medians(rounds: int = 6000) -> dict[str, float]:
    from arbiter.server.api.program_file import load_demo_program
    from arbiter.server.app.settings import Settings
    from arbiter.server.app.wiring import App

    apps = {}
    for name, admin in (("open", None), ("auth", KEY)):
        app = App(Settings(listen="127.0.0.1:0", admin_key=admin, shutdown_grace_s=0))
        await app.open()
        app.programs.publish(load_demo_program())
        await app.ready()
        apps[name] = app
    key = (("authorization", f"Bearer {KEY}"),)
    request = _example()
    seen: dict[str, list[float]] = {name: [] for name in apps}
    try:
        channels = {n: grpc.aio.insecure_channel(f"127.0.0.1:{a.port}") for n, a in apps.items()}
        stubs = {n: checkout_pb2_grpc.CheckoutServiceStub(c) for n, c in channels.items()}
        for index in range(rounds):
            for name, stub in stubs.items():
                t0 = time.perf_counter()
                await stub.CalculateOrder(request, metadata=key)
                if index >= 500:
                    seen[name].append(time.perf_counter() - t0)
        for channel in channels.values():
            await channel.close()
    finally:
        for app in apps.values():
            await app.stop(0)
    return {name: statistics.median(values) * 1e6 for name, values in seen.items()}


def test_cost_of_the_key_check_in_one_process(benchmark: Any) -> None:
    """Two servers in this process, one with auth on, both sent the same key, interleaved call
    by call: the difference of the medians is what the check costs (no process placement)."""
    from arbiter.server.app.runtime import run

    medians = benchmark.pedantic(lambda: run(_in_process_medians()), rounds=1, iterations=1)
    benchmark.extra_info.update({f"{k}_p50_us": round(v, 1) for k, v in medians.items()})
    print(
        f"\nin one process: CalculateOrder p50 {medians['open']:.1f} us without auth,"
        f" {medians['auth']:.1f} us with (+{medians['auth'] - medians['open']:.1f} us)"
    )
