"""PostgreSQL stopped under two replicas, then started again on its port: calls that need it
are UNAVAILABLE with nothing half-written, and both replicas recover by themselves (confirms,
an Apply spreading, the events relayed)."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest

from arbiter.server.ledger import StorageUnavailable
from arbiter.v1 import checkout_pb2, member_pb2
from tests.e2e.conftest import PROGRAM, order_request, shop_program
from tests.e2e.test_e2e_quote_cache import Stoppable, stoppable_pg, unavailable
from tests.replicas.conftest import MakeReplicas, Replica, eventually

__all__ = ["stoppable_pg"]  # the fixture, used by name

pytestmark = pytest.mark.asyncio


async def _confirm_retrying(replica: Replica, order_id: str) -> checkout_pb2.ConfirmOrderResponse:
    # A pooled connection that died with the old server may fail one call (UNAVAILABLE).
    for _ in range(50):
        try:
            return await replica.checkout.ConfirmOrder(order_request(order_id, "m-1", redeem=10))
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc.details()
            await asyncio.sleep(0.05)
    raise AssertionError("the replica never recovered")


async def test_postgresql_restarted_under_two_replicas(
    replicas: MakeReplicas, stoppable_pg: Stoppable, redis_url: str
) -> None:
    dsn = stoppable_pg.cluster.dsn
    a, b = await replicas(2, redis=redis_url, dsn=dsn, config_poll_s=0.2)
    await a.members.EnrollMember(member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="m-1"))
    await _confirm_retrying(b, "before")

    stoppable_pg.stop()
    for index, replica in enumerate((a, b)):
        await unavailable(replica.checkout.ConfirmOrder(order_request(f"down-{index}", "m-1")))
    with pytest.raises(StorageUnavailable):
        await a.app.apply_program(shop_program(pay_bp=1000))

    stoppable_pg.start()
    for index, replica in enumerate((a, b)):
        await _confirm_retrying(replica, f"after-{index}")
    version = await a.app.apply_program(shop_program(pay_bp=1000))

    async def spread() -> bool:
        return b.version() == version

    await eventually(spread, "b serves the Apply made after the restart")
    conn = await asyncpg.connect(dsn)
    try:
        orders = {r["order_id"] for r in await conn.fetch("SELECT order_id FROM orders")}

        async def relayed() -> bool:
            left = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            return bool(left == 0)

        await eventually(relayed, "the relay works again")
    finally:
        await conn.close()
    # Nothing of the refused confirms was written; everything acknowledged was.
    assert orders == {"before", "after-0", "after-1"}
