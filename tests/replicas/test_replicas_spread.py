"""Configuration and member state spread between replicas: by the Redis bus within moments of a
write, and by the check of PostgreSQL when there is no bus."""

from __future__ import annotations

import pytest

from arbiter.v1 import checkout_pb2, member_pb2
from tests.e2e.conftest import PROGRAM, as_calculate, order_request, shop_program
from tests.replicas.conftest import MakeReplicas, Replica, eventually

pytestmark = pytest.mark.asyncio


def _served(replicas: list[Replica], version: int):  # type: ignore[no-untyped-def]
    async def condition() -> bool:
        return all(r.version() == version for r in replicas)

    return condition


async def test_an_apply_on_one_replica_is_served_by_every_replica_through_the_bus(
    replicas: MakeReplicas, redis_url: str
) -> None:
    # The check of PostgreSQL is off: only the bus can carry the version.
    a, b, c = await replicas(3, redis=redis_url, config_poll_s=0)
    first = a.version()
    assert b.version() == c.version() == first
    version = await a.app.apply_program(shop_program(pay_bp=3000))
    assert version == first + 1
    await eventually(_served([a, b, c], version), "every replica serves the new version")
    # What they serve is the applied program, not only its number.
    for replica in (b, c):
        served = replica.app.programs.get(PROGRAM).source
        assert served is not None
        assert served == shop_program(pay_bp=3000)


async def test_without_redis_the_check_of_postgresql_spreads_an_apply(
    replicas: MakeReplicas,
) -> None:
    a, b = await replicas(2, redis=None, config_poll_s=0.1)
    assert a.app.bus is None
    version = await a.app.apply_program(shop_program(pay_bp=2000))
    await eventually(_served([a, b], version), "the other replica follows by its check")


async def test_an_apply_that_made_no_version_tells_nobody_and_changes_nothing(
    replicas: MakeReplicas, redis_url: str
) -> None:
    a, b = await replicas(2, redis=redis_url, config_poll_s=0)
    before = a.version()
    assert await a.app.apply_program(shop_program()) == before  # unchanged program
    assert b.app.follower is not None
    assert await b.app.follower.check() == []
    assert b.version() == before


def _quote_redeeming(points: int) -> checkout_pb2.CalculateOrderRequest:
    return as_calculate(order_request("q", "m-1", redeem=points, lines=(("l1", 1, 10_000),)))


def _redeemed(response: checkout_pb2.CalculateOrderResponse) -> int:
    return sum(p.redeemed for p in response.points if p.point_type == "bonus")


async def test_a_write_on_one_replica_reaches_the_quotes_of_another(
    replicas: MakeReplicas, redis_url: str
) -> None:
    a, b = await replicas(2, redis=redis_url)
    await a.members.EnrollMember(member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="m-1"))
    # b caches the member with its 1,000 points.
    assert _redeemed(await b.checkout.CalculateOrder(_quote_redeeming(1_500))) == 1_000
    assert b.app.members.cached(PROGRAM) == 1
    await a.members.CreateTransaction(
        member_pb2.CreateTransactionRequest(
            program=PROGRAM,
            member_id="m-1",
            point_type="bonus",
            operation=member_pb2.OPERATION_ACCRUAL,
            points=500,
            external_id="gift-1",
        )
    )

    async def dropped() -> bool:
        return bool(b.app.members.cached(PROGRAM) == 0)

    await eventually(dropped, "the other replica dropped the member")
    assert _redeemed(await b.checkout.CalculateOrder(_quote_redeeming(1_500))) == 1_500
    assert await b.balance("m-1") == 1_500


async def test_a_remote_write_drops_promo_code_uses_as_a_local_one_does(
    replicas: MakeReplicas, redis_url: str
) -> None:
    from tests.e2e.test_e2e_quote_cache import (
        APPLIED,
        EXHAUSTED,
        LAST,
        code_status,
        coded_program,
        with_codes,
    )
    from tests.e2e.test_e2e_quote_cache import quote as coded_quote

    a, b = await replicas(2, redis=redis_url)
    version = await a.app.apply_program(coded_program())
    await eventually(_served([a, b], version), "both serve the coded program")
    for member_id in ("m-1", "m-2"):
        await a.members.EnrollMember(
            member_pb2.EnrollMemberRequest(program=PROGRAM, member_id=member_id)
        )
    # b caches the use count of LAST (unused).
    assert code_status(await b.checkout.CalculateOrder(coded_quote("m-2", LAST)), LAST) == APPLIED
    await a.checkout.ConfirmOrder(with_codes(order_request("o-1", "m-1"), LAST))

    async def exhausted() -> bool:
        response = await b.checkout.CalculateOrder(coded_quote("m-2", LAST))
        return code_status(response, LAST) == EXHAUSTED

    await eventually(exhausted, "the other replica sees the code used up")
