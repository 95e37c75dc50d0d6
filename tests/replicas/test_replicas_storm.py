"""A redemption storm split over three replicas: no overdraft, and every event of it on the
program's Redis stream once, in commit order per member, with the contract's fields."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import grpc
import pytest

from arbiter.v1 import checkout_pb2, member_pb2
from tests.e2e.conftest import INITIAL_BONUS, PROGRAM, order_request
from tests.ledger.ledger_support import check_invariants
from tests.replicas.conftest import MakeReplicas, eventually, stream_entries

pytestmark = pytest.mark.asyncio

CLIENTS = 24
ORDERS_PER_CLIENT = 3
MEMBERS = ("m-1", "m-2", "m-3")


def _member_of(client: int) -> str:
    """Clients 0-2 spend m-1's points, 3-5 m-2's...: each member's orders come through every
    replica (client i uses replica i % 3)."""
    return MEMBERS[(client // 3) % len(MEMBERS)]


async def test_a_storm_over_three_replicas_never_overdraws_and_streams_every_event_in_order(
    replicas: MakeReplicas, redis_url: str
) -> None:
    replica_set = await replicas(3, redis=redis_url)
    a = replica_set[0]
    assert a.app.bus is not None and a.app.ledger is not None
    await a.app.bus.client.delete(f"arbiter:events:{PROGRAM}")
    for member_id in MEMBERS:
        await a.members.EnrollMember(
            member_pb2.EnrollMemberRequest(program=PROGRAM, member_id=member_id)
        )

    async def client(index: int) -> list[checkout_pb2.ConfirmOrderResponse | grpc.StatusCode]:
        outcomes: list[checkout_pb2.ConfirmOrderResponse | grpc.StatusCode] = []
        replica = replica_set[index % len(replica_set)]
        member_id = _member_of(index)
        for n in range(ORDERS_PER_CLIENT):
            request = order_request(f"s-{index}-{n}", member_id, redeem=150)
            try:
                outcomes.append(await replica.checkout.ConfirmOrder(request))
            except grpc.aio.AioRpcError as exc:
                outcomes.append(exc.code())
        return outcomes

    results = await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    redeemed: dict[str, int] = defaultdict(int)
    accrued: dict[str, int] = defaultdict(int)
    for index, outcomes in enumerate(results):
        member_id = _member_of(index)
        for outcome in outcomes:
            assert isinstance(outcome, checkout_pb2.ConfirmOrderResponse), outcome
            for points in outcome.result.points:
                if points.point_type == "bonus":
                    redeemed[member_id] += points.redeemed
                    accrued[member_id] += points.accrued
    for member_id in MEMBERS:
        # What was spent was there: never more than the enrollment gift and what was accrued.
        assert redeemed[member_id] <= INITIAL_BONUS + accrued[member_id]
        assert redeemed[member_id] >= INITIAL_BONUS  # spent, not left idle
        for replica in replica_set:
            balance = await replica.balance(member_id)
            assert balance == INITIAL_BONUS - redeemed[member_id] + accrued[member_id]
            assert balance >= 0
    async with a.app.ledger.pool.acquire() as conn:
        await check_invariants(conn)

    # Every event of the storm reaches the stream (the relays of the three replicas run on
    # their own; one at a time).
    outbox = await a.app.ledger.outbox_events(program=PROGRAM, limit=100_000)
    assert len(outbox) >= len(MEMBERS) + CLIENTS * ORDERS_PER_CLIENT
    client = a.app.bus.client

    async def all_streamed() -> bool:
        return len(await stream_entries(client)) >= len(outbox)

    await eventually(all_streamed, "every outbox event is on the stream")
    entries = await stream_entries(client)
    ids = [int(entry["id"]) for entry in entries]
    assert sorted(ids) == [event.id for event in outbox]  # each once: none lost, none doubled
    by_id = {event.id: event for event in outbox}
    for entry in entries:
        event = by_id[int(entry["id"])]
        assert set(entry) == {"id", "type", "member_id", "occurred_at", "data"}
        assert entry["type"] == event.topic
        assert entry["member_id"] == event.member_id
        assert entry["occurred_at"] == event.created_at.isoformat()
        assert entry["data"] == dict(event.payload)
    per_member: dict[str, list[int]] = defaultdict(list)
    for entry in entries:
        per_member[entry["member_id"]].append(int(entry["id"]))
    for member_id, member_ids in per_member.items():
        assert member_ids == sorted(member_ids), member_id  # commit order per member

    async def retired() -> bool:
        assert a.app.ledger is not None
        async with a.app.ledger.pool.acquire() as conn:
            left = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        return bool(left == 0)

    await eventually(retired, "every relayed row is retired")
