"""Many ConfirmOrder calls over gRPC spending one member's points at once never overdraw."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from arbiter.v1 import checkout_pb2
from tests.e2e.conftest import E2E, INITIAL_BONUS, order_request
from tests.ledger.ledger_support import check_invariants

pytestmark = pytest.mark.asyncio

CONCURRENT_ORDERS = 24


async def test_concurrent_confirms_never_spend_the_same_points_twice(e2e: E2E) -> None:
    await e2e.enroll("m-1")

    async def confirm(index: int) -> checkout_pb2.ConfirmOrderResponse | grpc.StatusCode:
        try:
            return await e2e.checkout.ConfirmOrder(order_request(f"c-{index}", redeem=150))
        except grpc.aio.AioRpcError as exc:
            return exc.code()

    outcomes = await asyncio.gather(*(confirm(i) for i in range(CONCURRENT_ORDERS)))
    confirmed = [o for o in outcomes if isinstance(o, checkout_pb2.ConfirmOrderResponse)]
    refused = [o for o in outcomes if not isinstance(o, checkout_pb2.ConfirmOrderResponse)]
    # A loser of a race is recalculated under the member's lock (capped), never refused.
    assert refused == []
    redeemed = accrued = 0
    for response in confirmed:
        for points in response.result.points:
            if points.point_type == "bonus":
                redeemed += points.redeemed
                accrued += points.accrued
    assert redeemed <= INITIAL_BONUS + accrued
    assert redeemed >= INITIAL_BONUS  # the points were spent, not left idle
    bonus = await e2e.bonus("m-1")
    assert bonus.balance == INITIAL_BONUS - redeemed + accrued
    assert bonus.available >= 0
    assert e2e.app.ledger is not None
    async with e2e.app.ledger.pool.acquire() as conn:
        await check_invariants(conn)
