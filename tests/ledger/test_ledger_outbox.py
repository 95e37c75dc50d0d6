"""The transactional outbox: one event per committed change, relayed at least once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from arbiter.server.ledger import Ledger, OutboxEvent, TotalMismatch
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import T0, FakeOrder


async def test_events_follow_the_lifecycle_and_nothing_is_invented(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await ledger.enroll(program, "m1", now=T0)
    await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                    operation="ACCRUAL", points=100, external_id="a", now=T0)
    order = FakeOrder("o1", lines=(("a", 2, 100),), redeem=(("bonus", 50),),
                      accrue=(("bonus", 4),))
    with pytest.raises(TotalMismatch):  # a refused order emits nothing
        await ledger.confirm_order(program, order.request(expected_total=1),
                                   order.compute(program), now=T0)
    await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
    await ledger.return_order(program, "o1", "r1", [("a", 1)], now=T0)
    await ledger.cancel_order(program, "o1", now=T0)
    await ledger.cancel_order(program, "o1", now=T0)  # idempotent: no second event
    events = await ledger.outbox_events(program="p1")
    assert [e.topic for e in events] == [
        "member.enrolled", "points.accrued", "points.redeemed", "points.accrued",
        "order.confirmed", "points.refunded", "order.returned", "points.refunded",
        "order.cancelled"]
    assert all(e.member_id == "m1" and e.payload["program"] == "p1" for e in events)
    confirmed = events[4].payload
    assert confirmed["order_id"] == "o1" and confirmed["points"] == [
        {"point_type": "bonus", "redeemed": 50, "accrued": 4, "accrued_pending": 0}]


async def test_relay_marks_published_only_after_send_succeeds(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    for i in range(5):
        await ledger.enroll(program, f"m{i}", now=T0)
    sent: list[int] = []

    async def failing(events: Sequence[OutboxEvent]) -> None:
        raise ConnectionError("redis down")

    with pytest.raises(ConnectionError):
        await ledger.relay_outbox(failing, limit=3, now=T0)

    async def send(events: Sequence[OutboxEvent]) -> None:
        sent.extend(e.id for e in events)

    assert await ledger.relay_outbox(send, limit=3, now=T0) == 3
    assert await ledger.relay_outbox(send, limit=3, now=T0) == 2
    assert await ledger.relay_outbox(send, limit=3, now=T0) == 0
    assert sent == sorted(sent) and len(set(sent)) == 5


async def test_concurrent_relays_take_disjoint_batches(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await ledger.enroll_many(program, [f"m{i}" for i in range(40)], now=T0)
    sent: list[int] = []

    async def send(events: Sequence[OutboxEvent]) -> None:
        await asyncio.sleep(0.01)
        sent.extend(e.id for e in events)

    async def drain() -> None:
        while await ledger.relay_outbox(send, limit=4, now=T0):
            pass

    await asyncio.gather(*(drain() for _ in range(4)))
    assert len(sent) == len(set(sent)) == 40


async def test_one_relay_at_a_time_so_events_leave_in_id_order(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await ledger.enroll_many(program, [f"m{i}" for i in range(12)], now=T0)
    sent: list[int] = []
    inside = asyncio.Event()
    release = asyncio.Event()

    async def slow(events: Sequence[OutboxEvent]) -> None:
        inside.set()
        await release.wait()
        sent.extend(e.id for e in events)

    async def quick(events: Sequence[OutboxEvent]) -> None:
        sent.extend(e.id for e in events)

    holder = asyncio.ensure_future(ledger.relay_outbox(slow, limit=4, now=T0))
    await inside.wait()
    try:
        # Another replica's relay finds the claim taken: it relays nothing, even later rows.
        assert await ledger.relay_outbox(quick, limit=4, now=T0) == 0
    finally:
        release.set()
    assert await holder == 4
    while await ledger.relay_outbox(quick, limit=4, now=T0):
        pass
    assert len(sent) == 12 and sent == sorted(sent)
