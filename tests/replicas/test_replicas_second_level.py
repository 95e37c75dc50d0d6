"""Redis as the members' shared second level (docs/replicas.md, "Member state"): a member one
replica loaded is served to another from Redis; a write drops the entry; a load that overlapped
a write does not store; the entry expires at its stale_at; without Redis, PostgreSQL answers.

Reads of PostgreSQL are counted by wrapping each replica's real `Ledger.member_snapshot` (the
call still reaches PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from arbiter.server.app.embedded_redis import RedisServer
from arbiter.server.state.second import RedisMemberLevel, entry_key
from arbiter.server.state.shared import SharedMemberDirectory
from arbiter.v1 import checkout_pb2, member_pb2
from tests.e2e.conftest import PROGRAM, MovableClock, as_calculate, order_request, shop_program
from tests.replicas.conftest import MakeReplicas, Replica, eventually

pytestmark = pytest.mark.asyncio

KEY = entry_key(PROGRAM, "m-1")


def _level(replica: Replica) -> RedisMemberLevel:
    members = replica.app.members
    assert isinstance(members, SharedMemberDirectory) and members.level is not None
    return members.level


def _clock(replica: Replica) -> MovableClock:
    clock = replica.app._clock
    assert isinstance(clock, MovableClock)
    return clock


def count_ledger_reads(replica: Replica) -> Callable[[], int]:
    """How many member snapshots the replica reads from PostgreSQL from now on."""
    ledger = replica.app.ledger
    assert ledger is not None
    real = ledger.member_snapshot
    reads = 0

    async def member_snapshot(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return await real(*args, **kwargs)

    ledger.member_snapshot = member_snapshot  # type: ignore[method-assign]
    return lambda: reads


def _true(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def condition() -> bool:
        return check()

    return condition


async def _settled(*replicas: Replica) -> None:
    for replica in replicas:
        level = _level(replica)
        await eventually(_true(level.settled), "the replica's invalidations reached Redis")


async def _redeemable(replica: Replica, member_id: str = "m-1") -> int:
    quote = as_calculate(order_request("q", member_id, redeem=100_000, lines=(("l1", 1, 200_000),)))
    response: checkout_pb2.CalculateOrderResponse = await replica.checkout.CalculateOrder(quote)
    return sum(p.redeemed for p in response.points if p.point_type == "bonus")


async def _enroll(replica: Replica, member_id: str = "m-1") -> None:
    await replica.members.EnrollMember(
        member_pb2.EnrollMemberRequest(program=PROGRAM, member_id=member_id)
    )


async def _accrue(replica: Replica, points: int, member_id: str = "m-1") -> None:
    await replica.members.CreateTransaction(
        member_pb2.CreateTransactionRequest(
            program=PROGRAM, member_id=member_id, point_type="bonus",
            operation=member_pb2.OPERATION_ACCRUAL, points=points,
            external_id=f"gift-{points}",
        )
    )


async def test_a_member_loaded_by_one_replica_is_served_to_another_from_redis(
    replicas: MakeReplicas, redis_url: str
) -> None:
    a, b = await replicas(2, redis=redis_url)
    client = aioredis.from_url(redis_url)
    try:
        await _enroll(a)
        await _settled(a, b)
        reads_a, reads_b = count_ledger_reads(a), count_ledger_reads(b)
        assert await _redeemable(a) == 1_000
        assert reads_a() == 1 and _level(a).stored == 1
        assert await client.exists(KEY) == 1
        assert await _redeemable(b) == 1_000
        assert reads_b() == 0  # from Redis, not PostgreSQL
        assert _level(b).hits == 1
        assert b.app.members.cached(PROGRAM) == 1  # and now from b's memory
        assert await _redeemable(b) == 1_000
        assert reads_b() == 0 and _level(b).hits == 1

        # A write on a drops the entry; b's next quotes show the new balance.
        await _accrue(a, 500)
        await _settled(a, b)
        assert await client.exists(KEY) == 0

        async def b_sees_it() -> bool:
            return await _redeemable(b) == 1_500

        await eventually(b_sees_it, "b quotes the new balance")
        assert reads_b() == 1
        # b stored what it read; a, whose memory lost the member, now reads it from Redis.
        assert await client.exists(KEY) == 1
        assert await _redeemable(a) == 1_500
        assert reads_a() == 1 and _level(a).hits == 1
    finally:
        await client.aclose()


async def test_a_load_that_overlapped_a_write_does_not_store(
    replicas: MakeReplicas, redis_url: str
) -> None:
    a, b = await replicas(2, redis=redis_url)
    client = aioredis.from_url(redis_url)
    try:
        await _enroll(a)
        await _settled(a, b)
        paused, release = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            paused.set()
            await release.wait()

        level = _level(b)
        level.before_store = hold
        # b reads 1,000 points from PostgreSQL, then pauses before storing them.
        load = asyncio.create_task(_redeemable(b))
        await paused.wait()
        await _accrue(a, 500)  # committed, and a's invalidation sent
        await _settled(a, b)
        release.set()
        await load  # answered with what it read
        level.before_store = None
        assert level.refused == 1 and level.stored == 0
        assert await client.exists(KEY) == 0

        async def b_sees_it() -> bool:
            return await _redeemable(b) == 1_500

        await eventually(b_sees_it, "b quotes the new balance")
        # Without an overlapping write the same load stores.
        assert level.stored == 1
    finally:
        await client.aclose()


async def test_an_entry_expires_at_its_stale_at(replicas: MakeReplicas, redis_url: str) -> None:
    a, b = await replicas(2, redis=redis_url)
    await a.app.apply_program(shop_program(bonus_validity_days=30))

    async def b_follows() -> bool:
        return b.version() == a.version()

    await eventually(b_follows, "b serves the new version")
    client = aioredis.from_url(redis_url)
    try:
        await _enroll(a)  # 1,000 points expiring in 30 days
        await _settled(a, b)
        _clock(a).advance(timedelta(days=30) - timedelta(seconds=5))
        assert await _redeemable(a) == 1_000
        ttl_ms = await client.pttl(KEY)
        assert 0 < ttl_ms <= 5_000  # no later than the lot's expiry

        # b, whose clock is past that instant, does not take the entry.
        reads_b = count_ledger_reads(b)
        _clock(b).advance(timedelta(days=30))
        assert await _redeemable(b) == 0
        assert reads_b() == 1 and _level(b).hits == 0
    finally:
        await client.aclose()


async def test_redis_stopped_quotes_answer_from_postgresql(
    replicas: MakeReplicas, own_redis: RedisServer
) -> None:
    a, b = await replicas(2, redis=own_redis.url)
    await _enroll(a)
    await _settled(a, b)
    assert await _redeemable(a) == 1_000  # stored in Redis
    own_redis.stop()
    for replica in (a, b):
        bus = replica.app.bus
        assert bus is not None
        await eventually(_true(lambda bus=bus: not bus.subscribed), "Redis noticed down")
    reads_b = count_ledger_reads(b)
    assert await _redeemable(b) == 1_000
    assert reads_b() == 1
    await _accrue(a, 700)
    assert await _redeemable(b) == 1_700
    assert await _redeemable(a) == 1_700
