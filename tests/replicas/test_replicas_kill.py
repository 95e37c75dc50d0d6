"""`arbiter serve` replicas as processes: one SIGKILLed in the middle of a storm of confirms
loses nothing it acknowledged, the other goes on, and the restarted one rejoins (it serves, its
writes reach the other, the events of all reach the stream)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest

from arbiter.server.api.program_file import program_to_json
from arbiter.server.app.embedded_redis import RedisServer
from arbiter.v1 import checkout_pb2, checkout_pb2_grpc, member_pb2, member_pb2_grpc
from tests.app.test_serve_process import Served
from tests.e2e.conftest import PROGRAM, order_request, shop_program
from tests.ledger.ledger_support import check_invariants
from tests.replicas.conftest import eventually, stream_entries

pytestmark = pytest.mark.asyncio

CLIENTS = 24
ORDERS_PER_CLIENT = 8
MEMBERS = ("m-1", "m-2")
# Points given each member up front, so that the storm does not run dry.
GIFT = 100_000


@pytest.fixture
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="arbiter-test-replicas-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _serve(folder: Path, dsn: str, redis: str, program: Path) -> Served:
    folder.mkdir(exist_ok=True)
    return Served(folder, "--postgres", dsn, "--redis", redis, "--program", str(program))


async def test_a_replica_killed_mid_storm_loses_nothing_it_confirmed_and_rejoins(
    scratch: Path, pg_database: str, own_redis: RedisServer
) -> None:
    program = scratch / "shop.json"
    program.write_text(program_to_json(shop_program()), encoding="utf-8")
    first = _serve(scratch / "r1", pg_database, own_redis.url, program)
    second = _serve(scratch / "r2", pg_database, own_redis.url, program)
    servers = [first, second]
    third: Served | None = None
    try:
        await asyncio.gather(*(asyncio.to_thread(s.wait_serving) for s in servers))
        channels = [grpc.aio.insecure_channel(s.listen) for s in servers]
        checkouts = [checkout_pb2_grpc.CheckoutServiceStub(c) for c in channels]
        members = member_pb2_grpc.MemberServiceStub(channels[1])
        for member_id in MEMBERS:
            await members.EnrollMember(
                member_pb2.EnrollMemberRequest(program=PROGRAM, member_id=member_id)
            )
            await members.CreateTransaction(
                member_pb2.CreateTransactionRequest(
                    program=PROGRAM, member_id=member_id, point_type="bonus",
                    operation=member_pb2.OPERATION_ACCRUAL, points=GIFT,
                    external_id=f"gift-{member_id}",
                )
            )
        acknowledged: list[str] = []
        refused: list[grpc.StatusCode] = []
        killed = asyncio.Event()

        async def client(index: int) -> None:
            for n in range(ORDERS_PER_CLIENT):
                order_id = f"k-{index}-{n}"
                target = checkouts[index % 2]
                request = order_request(order_id, MEMBERS[(index // 2) % 2], redeem=150)
                try:
                    await target.ConfirmOrder(request, timeout=30)
                except grpc.aio.AioRpcError as exc:
                    refused.append(exc.code())
                    continue
                acknowledged.append(order_id)
                if len(acknowledged) == CLIENTS * ORDERS_PER_CLIENT // 4 and not killed.is_set():
                    killed.set()
                    first.process.send_signal(signal.SIGKILL)

        await asyncio.gather(*(client(i) for i in range(CLIENTS)))
        assert killed.is_set()
        first.process.wait(timeout=30)
        assert first.process.returncode == -signal.SIGKILL
        # The survivor took its half of the storm whole.
        assert len(acknowledged) >= CLIENTS * ORDERS_PER_CLIENT // 2

        # The killed replica comes back and rejoins.
        third = _serve(scratch / "r3", pg_database, own_redis.url, program)
        await asyncio.to_thread(third.wait_serving)
        async with grpc.aio.insecure_channel(third.listen) as channel:
            stub = checkout_pb2_grpc.CheckoutServiceStub(channel)
            response = await stub.ConfirmOrder(order_request("after", "m-1", redeem=150))
            assert isinstance(response, checkout_pb2.ConfirmOrderResponse)
        acknowledged.append("after")

        conn = await asyncpg.connect(pg_database)
        try:
            found = await conn.fetchval(
                "SELECT count(*) FROM orders WHERE program = $1 AND order_id = ANY($2::text[])",
                PROGRAM, acknowledged,
            )
            assert found == len(acknowledged)  # every acknowledged confirm is in the ledger
            await check_invariants(conn)
            negative = await conn.fetchval("SELECT count(*) FROM balances WHERE balance < 0")
            assert negative == 0
            written = [r["pk"] for r in await conn.fetch(
                "SELECT pk FROM outbox WHERE program = $1 ORDER BY pk", PROGRAM
            )]
        finally:
            await conn.close()

        # The events of all three, the killed one's included, reach the stream.
        import redis.asyncio as aioredis

        client_ = aioredis.from_url(own_redis.url)
        try:
            async def delivered() -> bool:
                ids = {int(e["id"]) for e in await stream_entries(client_)}
                return ids >= set(written)

            await eventually(delivered, "every event written is on the stream")
            ids = [int(e["id"]) for e in await stream_entries(client_)]
        finally:
            await client_.aclose()
        print(
            f"\nSIGKILL: confirms acknowledged {len(acknowledged)}, found {found}, refused "
            f"{len(refused)} ({sorted({c.name for c in refused})}); events written "
            f"{len(written)}, delivered {len(set(ids))} (entries {len(ids)})"
        )
        for channel_ in channels:
            await channel_.close()
    finally:
        for served in (*servers, *([third] if third else [])):
            if served.process.poll() is None:
                served.stop()
