"""Bursts of concurrent quotes against a whole server: throughput and the mix of answers.

    python bench/bench_overload.py [--levels 100,500,1000,2000,5000] [--channels 1]
                                   [--quote context|enrolled] [--deadline 30]
                                   [--serve-arg=--max-concurrent-rpcs=500]

Starts `arbiter serve` as a separate process on loopback (the demo program, the embedded
PostgreSQL in a fresh temporary folder), then for each level N sends N CalculateOrder calls at
once, spread round-robin over `--channels` connections, and waits for every answer. The calls
quote the demo order: with `--quote context` (the default) it carries its member context, so no
call waits on anything; with `--quote enrolled` each call names a member enrolled beforehand and
not yet cached, so the server reads PostgreSQL and the calls wait in flight. Meanwhile two
probes send a health Check every 50 ms with a 1 s deadline: one on a connection of its own, as a
load balancer would ("own"), one on the burst's first connection ("shared"). For each level it
prints the wall time, the answers per second, the latency (p50/p99/max) of the successful calls,
each status code with its count and first message, and each probe's answers and failures. At
the end it prints the server's log lines about overload.

Bounded: every call has a deadline (`--deadline`, seconds) and the whole run stops after the last
level. Nothing is asserted: this is a measurement (docs/api.md, "Overload").
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from arbiter.server.app.runtime import EVENT_LOOPS, run
from arbiter.v1 import checkout_pb2, checkout_pb2_grpc, member_pb2, member_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "server" / "demo"
HEALTH_EVERY_S = 0.05
HEALTH_DEADLINE_S = 1.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _example() -> checkout_pb2.CalculateOrderRequest:
    request = checkout_pb2.CalculateOrderRequest()
    json_format.Parse((DEMO / "example_order.json").read_text(), request)
    return request


async def _wait_serving(target: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the server did not report SERVING")


async def _enroll(target: str, program: str, ids: list[str]) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = member_pb2_grpc.MemberServiceStub(channel)

        async def requests() -> AsyncIterator[member_pb2.EnrollMemberRequest]:
            for member_id in ids:
                yield member_pb2.EnrollMemberRequest(program=program, member_id=member_id)

        await stub.EnrollMembers(requests())


def _member_ids(calls: int, round_: int) -> list[str]:
    return [f"m-{round_}-{i}" for i in range(calls)]


def _requests(quote: str, calls: int, round_: int) -> list[checkout_pb2.CalculateOrderRequest]:
    example = _example()
    if quote == "context":
        return [example] * calls
    example.ClearField("member_context")
    requests = []
    for member_id in _member_ids(calls, round_):
        request = checkout_pb2.CalculateOrderRequest()
        request.CopyFrom(example)
        request.member_id = member_id
        requests.append(request)
    return requests


@dataclass
class _Level:
    calls: int
    wall_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    first_message: dict[str, str] = field(default_factory=dict)
    # Per probe ("own": a connection of its own, as a load balancer's; "shared": the first
    # connection of the burst): SERVING answers, and the failures by status.
    health_ok: collections.Counter[str] = field(default_factory=collections.Counter)
    health_failed: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )


async def _one(
    stub: checkout_pb2_grpc.CheckoutServiceStub,
    request: checkout_pb2.CalculateOrderRequest,
    deadline_s: float,
    level: _Level,
) -> None:
    started = time.perf_counter()
    try:
        await stub.CalculateOrder(request, timeout=deadline_s)
    except grpc.aio.AioRpcError as exc:
        name = exc.code().name
        level.codes[name] += 1
        level.first_message.setdefault(name, exc.details() or "")
        return
    level.latencies.append(time.perf_counter() - started)
    level.codes["OK"] += 1


async def _probe(channel: grpc.aio.Channel, name: str, stop: asyncio.Event, level: _Level) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    ping = health_pb2.HealthCheckRequest()
    while not stop.is_set():
        try:
            reply = await health.Check(ping, timeout=HEALTH_DEADLINE_S)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                level.health_ok[name] += 1
            else:
                level.health_failed[name]["NOT_SERVING"] += 1
        except grpc.aio.AioRpcError as exc:
            level.health_failed[name][exc.code().name] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEALTH_EVERY_S)


async def _burst(
    channels: list[grpc.aio.Channel],
    target: str,
    requests: list[checkout_pb2.CalculateOrderRequest],
    deadline_s: float,
) -> _Level:
    calls = len(requests)
    level = _Level(calls)
    stubs = [checkout_pb2_grpc.CheckoutServiceStub(c) for c in channels]
    stop = asyncio.Event()
    own = grpc.aio.insecure_channel(target)
    probes = [
        asyncio.create_task(_probe(own, "own", stop, level)),
        asyncio.create_task(_probe(channels[0], "shared", stop, level)),
    ]
    await asyncio.sleep(HEALTH_EVERY_S)
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _one(stubs[i % len(stubs)], request, deadline_s, level)
            for i, request in enumerate(requests)
        )
    )
    level.wall_s = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*probes)
    await own.close()
    return level


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _report(level: _Level) -> str:
    ok = level.codes["OK"]
    ms = [v * 1000 for v in level.latencies]
    errors = ", ".join(
        f"{name} {count} ({level.first_message[name]!r})"
        for name, count in level.codes.most_common()
        if name != "OK"
    )
    health = " ".join(
        f"{probe}: ok={level.health_ok[probe]} failed="
        + (",".join(f"{n} {c}" for n, c in level.health_failed[probe].most_common()) or "none")
        for probe in ("own", "shared")
    )
    return (
        f"N={level.calls:5d} wall={level.wall_s:6.2f}s ok={ok:5d} ok/s={ok / level.wall_s:7.0f}"
        f" p50={_percentile(ms, 0.5):7.1f}ms p99={_percentile(ms, 0.99):7.1f}ms"
        f" max={max(ms, default=float('nan')):7.1f}ms"
        f" | health {health}"
        f" | errors: {errors or 'none'}"
    )


async def _run(args: argparse.Namespace, workdir: Path) -> None:
    target = f"127.0.0.1:{_free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")}
    env["ARBITER_DATA_DIR"] = str(workdir / "data")
    log_path = workdir / "serve.log"
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "arbiter.client.cli",
                "serve",
                "--listen",
                target,
                "--program",
                str(DEMO / "demo_program.json"),
                "--jobs-interval",
                "0",
                "--log-level",
                "INFO",
                "--event-loop",
                args.event_loop,
                *args.serve_arg,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                await _wait_serving(target)
            except SystemExit:
                print(log_path.read_text(errors="replace")[-2000:], file=sys.stderr)
                raise
            program = _example().program
            rounds = [200, *args.levels]  # the warm-up, then each level
            if args.quote == "enrolled":
                for round_, calls in enumerate(rounds):
                    await _enroll(target, program, _member_ids(calls, round_))
            channels = [grpc.aio.insecure_channel(target) for _ in range(args.channels)]
            try:
                for round_, calls in enumerate(rounds):
                    requests = _requests(args.quote, calls, round_)
                    level = await _burst(channels, target, requests, args.deadline)
                    if round_:  # round 0 warms up
                        print(_report(level), flush=True)
                    await asyncio.sleep(1.0)
            finally:
                for channel in channels:
                    await channel.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    lines = log_path.read_text(errors="replace").splitlines()
    overload = [line for line in lines if "overloaded" in line]
    print(f"server log: {len(lines)} lines, {len(overload)} about overload")
    for line in overload[:10]:
        print("  " + line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--levels",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[100, 500, 1000, 2000, 5000],
        help="concurrent calls per burst, comma-separated",
    )
    parser.add_argument("--channels", type=int, default=1, help="connections the calls share")
    parser.add_argument(
        "--quote",
        choices=("context", "enrolled"),
        default="context",
        help="context: the member travels with the call; enrolled: read from PostgreSQL",
    )
    parser.add_argument("--deadline", type=float, default=30.0, help="each call's deadline, s")
    parser.add_argument("--event-loop", choices=EVENT_LOOPS, default="auto")
    parser.add_argument(
        "--serve-arg", action="append", default=[], help="an extra flag for `arbiter serve`"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="arbiter-burst-"))
    workdir.chmod(0o755)  # as root, the embedded cluster runs as `nobody`
    try:
        run(_run(args, workdir), args.event_loop)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
