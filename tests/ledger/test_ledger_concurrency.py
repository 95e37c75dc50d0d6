"""Concurrent requests on separate connections never spend the same points twice, never
overdraw and never lose an accrual (docs/contract.md, The order lifecycle)."""

from __future__ import annotations

import asyncio

import pytest

from arbiter.server.ledger import Conflict, InsufficientPoints, Ledger, NotFound
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import T0, FakeOrder, make_program

N = 24


async def _fund(ledger: Ledger, program: program_pb2.Program, points: int) -> None:
    await ledger.enroll(program, "m1", now=T0)
    await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                    operation="ACCRUAL", points=points, external_id="fund",
                                    now=T0)


async def test_concurrent_confirms_never_overdraw_nor_lose_accruals(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await _fund(ledger, program, 1_000)
    orders = [FakeOrder(f"o{i}", redeem=(("bonus", 100),), accrue=(("bonus", 5),))
              for i in range(N)]
    outs = await asyncio.gather(*(
        ledger.confirm_order(program, o.request(), o.compute(program), now=T0) for o in orders
    ))
    redeemed = sum(out.result.points[0].redeemed for out in outs)
    info = await ledger.get_member(program, "m1", now=T0)
    assert info.balance("bonus").balance == 1_000 + N * 5 - redeemed >= 0
    assert redeemed <= 1_000 + N * 5
    txns = (await ledger.list_transactions(program, "m1", page_size=1_000)).transactions
    assert sum(1 for t in txns if t.type == "ACCRUAL" and t.source_type == "ORDER") == N
    # Each order saw the balance the previous ones left: no two spent the same points.
    assert sorted(out.result.points[0].redeemed for out in outs)[-10:] == [100] * 10


async def test_concurrent_reserves_never_hold_more_than_available(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await _fund(ledger, program, 1_000)
    orders = [FakeOrder(f"r{i}", redeem=(("bonus", 150),)) for i in range(N)]
    outs = await asyncio.gather(*(
        ledger.reserve_order(program, o.request(), o.compute(program), now=T0) for o in orders
    ))
    held = sum(out.result.points[0].redeemed for out in outs)
    assert held == 1_000
    info = await ledger.get_member(program, "m1", now=T0)
    assert (info.balance("bonus").available, info.balance("bonus").held) == (0, 1_000)
    # Confirming every reservation concurrently posts exactly the holds.
    await asyncio.gather(*(
        ledger.confirm_order(program, o.request(), o.compute(program), now=T0) for o in orders
    ))
    info = await ledger.get_member(program, "m1", now=T0)
    assert (info.balance("bonus").balance, info.balance("bonus").held) == (0, 0)


async def test_concurrent_manual_postings_lose_nothing(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await _fund(ledger, program, 100)

    async def accrue(i: int) -> None:
        await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                        operation="ACCRUAL", points=10, external_id=f"a{i}",
                                        now=T0)

    async def deduct(i: int) -> bool:
        try:
            await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                            operation="DEDUCTION", points=30,
                                            external_id=f"d{i}", now=T0)
        except InsufficientPoints:
            return False
        return True

    results = await asyncio.gather(*(accrue(i) for i in range(N)), *(deduct(i) for i in range(N)))
    deducted = sum(1 for r in results[N:] if r)
    info = await ledger.get_member(program, "m1", now=T0)
    assert info.balance("bonus").balance == 100 + 10 * N - 30 * deducted >= 0


async def test_one_external_id_posts_once_under_concurrency(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    for m in ("m1", "m2"):
        await ledger.enroll(program, m, now=T0)

    async def post(member: str) -> str:
        try:
            txn = await ledger.create_transaction(program, member_id=member, point_type="bonus",
                                                  operation="ACCRUAL", points=7,
                                                  external_id="same", now=T0)
        except Conflict:
            return "conflict"
        return txn.id

    results = await asyncio.gather(*(post("m1" if i % 2 else "m2") for i in range(N)))
    ids = {r for r in results if r != "conflict"}
    assert len(ids) == 1
    total = 0
    for m in ("m1", "m2"):
        total += (await ledger.get_member(program, m, now=T0)).balance("bonus").balance
    assert total == 7


async def test_a_single_use_code_is_taken_once_across_members(ledger: Ledger) -> None:
    pool = program_pb2.PromoCodePool(id="single", name="single")
    pool.codes.add(code="ONCE", max_uses=1)
    program = make_program(pools=[pool])
    members = [f"m{i}" for i in range(N)]
    await ledger.enroll_many(program, members, now=T0)
    orders = [FakeOrder(f"o{i}", member_id=m, codes=("once",)) for i, m in enumerate(members)]
    outs = await asyncio.gather(*(
        ledger.confirm_order(program, o.request(), o.compute(program), now=T0) for o in orders
    ))
    assert sum(out.result.promo_codes[0].status == "APPLIED" for out in outs) == 1


async def test_concurrent_enrollment_creates_one_member(
    ledger: Ledger
) -> None:
    program = make_program(initial_bonus=50)
    results = await asyncio.gather(*(ledger.enroll(program, "m1", now=T0) for _ in range(N)))
    assert sum(r.created for r in results) == 1
    assert (await ledger.get_member(program, "m1", now=T0)).balance("bonus").balance == 50


async def test_mixed_lifecycle_under_concurrency_keeps_every_invariant(ledger: Ledger) -> None:
    """Confirms, reservations, their confirmation, cancels, returns, deliveries, manual postings
    and both jobs at once on two members: no deadlock escapes, and the invariants (checked by the
    fixture afterwards) hold."""
    from arbiter.server.ledger import FailedPrecondition
    from tests.ledger.ledger_support import DAY, tier_group

    program = make_program(validity_days=3, tier_groups=[
        tier_group(program_pb2.TIER_MODEL_DYNAMIC)])
    for m in ("m1", "m2"):
        await ledger.enroll(program, m, now=T0)
        for i in range(4):
            await ledger.create_transaction(program, member_id=m, point_type="bonus",
                                            operation="ACCRUAL", points=300,
                                            external_id=f"{m}-f{i}", now=T0 + i * DAY)
    now = T0 + 3 * DAY + DAY / 2  # the first lot of each member has expired unwritten
    orders = [
        FakeOrder(f"o{i}", member_id=("m1", "m2")[i % 2], lines=(("a", 2, 500), ("b", 1, 300)),
                  redeem=(("bonus", 120),), accrue=(("bonus", 9), ("status", 60)),
                  accrue_pending=(("bonus", 4),))
        for i in range(16)
    ]
    await asyncio.gather(*(
        (ledger.reserve_order if i % 3 == 0 else ledger.confirm_order)(
            program, o.request(), o.compute(program), now=now)
        for i, o in enumerate(orders)
    ))

    async def step(i: int) -> None:
        o = orders[i]
        try:
            if i % 3 == 0:
                await ledger.confirm_order(program, o.request(), o.compute(program), now=now)
            if i % 4 == 1:
                await ledger.cancel_order(program, o.order_id, now=now)
            elif i % 4 == 2:
                await ledger.deliver_order(program, o.order_id, now=now)
                await ledger.return_order(program, o.order_id, "r1", [("a", 1)], now=now)
            else:
                await ledger.return_order(program, o.order_id, "r1", [("a", 2), ("b", 1)],
                                          now=now)
        except FailedPrecondition:
            pass
        await ledger.create_transaction(program, member_id=o.member_id, point_type="status",
                                        operation="ACCRUAL", points=10,
                                        external_id=f"s{i}", now=now)

    await asyncio.gather(
        *(step(i) for i in range(len(orders))),
        ledger.expire_lots(program, now=now),
        ledger.run_tier_periods(program, now=now),
    )
    await ledger.expire_lots(program, now=now)
    for m in ("m1", "m2"):
        info = await ledger.get_member(program, m, now=now)
        assert info.balance("bonus").available >= 0
        assert info.balance("bonus").available == info.balance("bonus").balance


async def test_a_confirm_reads_what_the_lock_it_waited_for_committed(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    """Lock and read are one call (migration 0004) but two snapshots: a confirm that waits for the
    member's lock reads the member as the holder left it (here: removed), not as it was when the
    call started."""
    await _fund(ledger, program, 1_000)
    order = FakeOrder("late", redeem=(("bonus", 100),))
    async with ledger.pool.acquire() as holder, holder.transaction():
        member_pk = await holder.fetchval("SELECT pk FROM members WHERE member_id = 'm1'")
        await holder.execute(
            "SELECT 1 FROM balances WHERE member_pk = $1 ORDER BY point_type FOR UPDATE",
            member_pk,
        )
        confirm = asyncio.ensure_future(
            ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
        )
        for _ in range(500):  # until the confirm waits for the lock (another connection: a
            # transaction sees pg_stat_activity as it was at its first look)
            waiting = await ledger.pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND query LIKE '%ledger_lock_prefetch%'"
            )
            if waiting:
                break
            await asyncio.sleep(0.01)
        assert waiting == 1
        await holder.execute("UPDATE members SET removed = true, removed_at = $2 WHERE pk = $1",
                             member_pk, T0)
    with pytest.raises(NotFound):
        await confirm
    assert await ledger.pool.fetchval("SELECT count(*) FROM orders") == 0


async def test_the_lock_and_read_function_is_volatile(ledger: Ledger) -> None:
    """Only a VOLATILE function takes a new snapshot for each of its statements (READ
    COMMITTED): STABLE would read in the snapshot of the call, taken before the lock."""
    for name in ("ledger_lock_member", "ledger_lock_prefetch"):
        volatility = await ledger.pool.fetchval(
            "SELECT provolatile::text FROM pg_proc WHERE proname = $1", name
        )
        assert volatility == "v", name
