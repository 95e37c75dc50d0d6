"""Redis killed under two replicas, then restarted on its port: quotes, confirms, writes and
Applies go on; events wait in the outbox; health's `arbiter.redis` says NOT_SERVING while the
server stays SERVING; back, every event waiting reaches the stream once."""

from __future__ import annotations

import asyncio

import pytest
from grpc_health.v1 import health_pb2

from arbiter.server.app.embedded_redis import RedisServer
from arbiter.server.app.server import HEALTH_NAMES
from arbiter.v1 import checkout_pb2, member_pb2
from tests.e2e.conftest import PROGRAM, as_calculate, order_request, shop_program
from tests.replicas.conftest import MakeReplicas, Replica, eventually, stream_entries

pytestmark = pytest.mark.asyncio

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
CONFIRMS_PER_REPLICA = 12


async def _unpublished(replica: Replica) -> int:
    assert replica.app.ledger is not None
    async with replica.app.ledger.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


async def _redis_health(replicas: list[Replica], status: int) -> None:
    async def condition() -> bool:
        states = [await r.health_of("arbiter.redis") for r in replicas]
        return all(s == status for s in states)

    await eventually(condition, f"arbiter.redis is {status} on every replica")


def _redeemed(response: checkout_pb2.CalculateOrderResponse) -> int:
    return sum(p.redeemed for p in response.points if p.point_type == "bonus")


async def test_redis_down_then_back_loses_nothing_and_doubles_nothing(
    replicas: MakeReplicas, own_redis: RedisServer
) -> None:
    port = own_redis.port
    a, b = await replicas(2, redis=own_redis.url, config_poll_s=0.2)
    await _redis_health([a, b], SERVING)
    await a.members.EnrollMember(member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="m-1"))
    quote = as_calculate(order_request("q", "m-1", redeem=5_000, lines=(("l1", 1, 10_000),)))
    assert _redeemed(await b.checkout.CalculateOrder(quote)) == 1_000  # b caches m-1

    async def relayed() -> bool:
        return await _unpublished(a) == 0

    await eventually(relayed, "the enrollment relayed")
    assert a.app.ledger is not None
    mark = max(e.id for e in await a.app.ledger.outbox_events(program=PROGRAM, limit=1000))

    own_redis.stop()
    await _redis_health([a, b], NOT_SERVING)
    for replica in (a, b):
        for service in HEALTH_NAMES:  # the server and each of its services
            assert await replica.health_of(service) == SERVING

    # A write on a reaches b's quotes although no invalidation can travel.
    await a.members.CreateTransaction(
        member_pb2.CreateTransactionRequest(
            program=PROGRAM, member_id="m-1", point_type="bonus",
            operation=member_pb2.OPERATION_ACCRUAL, points=500, external_id="gift-1",
        )
    )
    assert _redeemed(await b.checkout.CalculateOrder(quote)) == 1_500
    # Confirms on both replicas are acknowledged.
    orders = [f"down-{r}-{n}" for r in range(2) for n in range(CONFIRMS_PER_REPLICA)]
    acknowledged = await asyncio.gather(
        *(
            (a, b)[index % 2].checkout.ConfirmOrder(order_request(order_id, "m-1", redeem=50))
            for index, order_id in enumerate(orders)
        )
    )
    assert len(acknowledged) == len(orders)
    # An Apply on a is served by b (by its check of PostgreSQL).
    version = await a.app.apply_program(shop_program(pay_bp=4000))

    async def b_follows() -> bool:
        return b.version() == version

    await eventually(b_follows, "b serves the version applied while Redis is down")
    waiting = await _unpublished(a)
    assert waiting >= len(orders)  # the events wait in the outbox

    again = RedisServer(port=port)
    again.start()
    try:
        await _redis_health([a, b], SERVING)
        client = a.app.bus
        assert client is not None
        written = [e.id for e in await a.app.ledger.outbox_events(program=PROGRAM, limit=10_000)]
        after_mark = [i for i in written if i > mark]

        async def delivered() -> bool:
            return len(await stream_entries(client.client)) >= len(after_mark)

        await eventually(delivered, "the waiting events delivered")
        await eventually(relayed, "every relayed row retired")
        ids = [int(entry["id"]) for entry in await stream_entries(client.client)]
        assert sorted(ids) == after_mark  # each once
        async with a.app.ledger.pool.acquire() as conn:
            found = await conn.fetchval(
                "SELECT count(*) FROM orders WHERE program = $1 AND order_id = ANY($2::text[])",
                PROGRAM, orders,
            )
        assert found == len(orders)
        print(
            f"\nredis down: confirms acknowledged {len(acknowledged)}, found {found}; "
            f"events waiting {waiting}, written {len(after_mark)}, delivered {len(ids)}"
        )
        # And the bus carries invalidations again: b drops m-1 after a's write.
        await b.checkout.CalculateOrder(quote)
        await a.members.CreateTransaction(
            member_pb2.CreateTransactionRequest(
                program=PROGRAM, member_id="m-1", point_type="bonus",
                operation=member_pb2.OPERATION_ACCRUAL, points=1, external_id="gift-2",
            )
        )
        expected = await a.balance("m-1")

        async def b_sees() -> bool:
            return await b.balance("m-1") == expected and b.app.members.cached(PROGRAM) == 0

        await eventually(b_sees, "b dropped m-1 after the write")
    finally:
        again.stop()
