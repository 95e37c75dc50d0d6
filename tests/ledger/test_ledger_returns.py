"""ReturnOrder: proportional reversal under the stored result, refunds, idempotency."""

from __future__ import annotations

import pytest

from arbiter.server.ledger import (
    Conflict,
    InvalidArgument,
    Ledger,
    OrderStateError,
    PointsMovement,
    line_points,
)
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import T0, FakeOrder, fake_calculate, make_program


async def _member(ledger: Ledger, program: program_pb2.Program, bonus: int = 0,
                  miles: int = 0) -> None:
    await ledger.enroll(program, "m1", now=T0)
    for point_type, points in (("bonus", bonus), ("miles", miles)):
        if points:
            await ledger.create_transaction(program, member_id="m1", point_type=point_type,
                                            operation="ACCRUAL", points=points,
                                            external_id=f"fund-{point_type}", now=T0)


ORDER = FakeOrder(
    "o1",
    lines=(("a", 3, 1_000), ("b", 1, 7_000)),
    redeem=(("bonus", 1_000),),
    accrue=(("bonus", 100),),
    order_accrue=(("bonus", 11),),
)


def test_line_points_apportion_order_level_accruals_by_final_price() -> None:
    from arbiter.server.engine.types import CodeUsage, MemberState
    from arbiter.server.ledger import LedgerProgram

    cfg = LedgerProgram.from_proto(make_program())
    result = fake_calculate(ORDER, cfg, MemberState("m1", {"bonus": 5_000}), CodeUsage())
    per_line = line_points(result)
    # finals: a 2700, b 6300; line rows 30 and 70; the order row of 11 splits 3.3 / 7.7 -> 3 / 8.
    assert per_line["a"] == {("bonus", "REDEEMED"): 300, ("bonus", "ON_CREATE"): 33}
    assert per_line["b"] == {("bonus", "REDEEMED"): 700, ("bonus", "ON_CREATE"): 78}


async def test_returns_reverse_in_proportion_and_the_last_takes_the_rest(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await _member(ledger, program, bonus=1_000)
    await ledger.confirm_order(program, ORDER.request(), ORDER.compute(program), now=T0)
    bal = (await ledger.get_member(program, "m1", now=T0)).balance("bonus").balance
    assert bal == 111
    moves = []
    for i in range(3):
        moves.append(await ledger.return_order(program, "o1", f"r{i}", [("a", 1)], now=T0))
    assert moves == [[PointsMovement("bonus", accrual_reversed=11, redemption_refunded=100)]] * 3
    last = await ledger.return_order(program, "o1", "rb", [("b", 1)], now=T0)
    assert last == [PointsMovement("bonus", accrual_reversed=78, redemption_refunded=700)]
    info = await ledger.get_member(program, "m1", now=T0)
    assert info.balance("bonus").balance == 1_000  # everything undone
    events = [e for e in await ledger.outbox_events() if e.topic == "order.returned"]
    assert len(events) == 4
    # Cancelling a fully returned order has nothing left to move.
    assert await ledger.cancel_order(program, "o1", now=T0) == []


async def test_half_up_per_return_and_capped_by_what_is_left(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await _member(ledger, program)
    order = FakeOrder("o1", lines=(("a", 4, 100),), accrue=(("bonus", 10),))
    await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
    got = []
    for i, q in enumerate((1, 2, 1)):
        res = await ledger.return_order(program, "o1", f"r{i}", [("a", q)], now=T0)
        got.append(res[0].accrual_reversed)
    assert got == [3, 5, 2]  # 2.5 -> 3, 5, then exactly what is left
    order = FakeOrder("o2", lines=(("a", 10, 100),), accrue=(("bonus", 5),))
    await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
    got = []
    for i in range(10):
        res = await ledger.return_order(program, "o2", f"s{i}", [("a", 1)], now=T0)
        got.append(res[0].accrual_reversed if res else 0)
    assert got == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0] and sum(got) == 5


async def test_refund_only_where_the_type_allows_it(ledger: Ledger,
                                                    program: program_pb2.Program) -> None:
    await _member(ledger, program, bonus=500, miles=500)
    order = FakeOrder("o1", lines=(("a", 2, 1_000),), redeem=(("bonus", 200), ("miles", 400)))
    await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
    moves = await ledger.return_order(program, "o1", "r1", [("a", 1)], now=T0)
    assert moves == [PointsMovement("bonus", redemption_refunded=100)]
    info = await ledger.get_member(program, "m1", now=T0)
    assert (info.balance("bonus").balance, info.balance("miles").balance) == (400, 100)
    # Cancelling gives back the rest whatever allow_refund says.
    moves = await ledger.cancel_order(program, "o1", now=T0)
    assert sorted(moves, key=lambda m: m.point_type) == [
        PointsMovement("bonus", redemption_refunded=100),
        PointsMovement("miles", redemption_refunded=400)]
    info = await ledger.get_member(program, "m1", now=T0)
    assert (info.balance("bonus").balance, info.balance("miles").balance) == (500, 500)
    refund = [t for t in (await ledger.list_transactions(program, "m1")).transactions
              if t.type == "REFUND"]
    assert [(t.value, t.external_id) for t in refund] == [(100, "r1")]


async def test_return_is_idempotent_by_return_id_and_validated(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await _member(ledger, program)
    order = FakeOrder("o1", lines=(("a", 2, 100), ("b", 1, 100)), accrue=(("bonus", 30),))
    await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
    first = await ledger.return_order(program, "o1", "r1", [("a", 1)], now=T0)
    assert await ledger.return_order(program, "o1", "r1", [("a", 1)], now=T0) == first
    with pytest.raises(Conflict):
        await ledger.return_order(program, "o1", "r1", [("a", 2)], now=T0)
    with pytest.raises(InvalidArgument) as err:
        await ledger.return_order(program, "o1", "r2", [("a", 2)], now=T0)
    assert err.value.fields == ("lines[0].quantity",)
    with pytest.raises(InvalidArgument) as err:
        await ledger.return_order(program, "o1", "r2", [("zz", 1), ("b", 0), ("b", 1)], now=T0)
    assert err.value.fields == ("lines[0].line_id", "lines[1].quantity", "lines[2].line_id")
    with pytest.raises(InvalidArgument):
        await ledger.return_order(program, "o1", "r2", [], now=T0)
    txns = (await ledger.list_transactions(program, "m1")).transactions
    assert [t.value for t in txns] == [30, -10]
    # Cancelling after a return reverses only what is left.
    assert await ledger.cancel_order(program, "o1", now=T0) == [
        PointsMovement("bonus", accrual_reversed=20)]
    with pytest.raises(OrderStateError):
        await ledger.return_order(program, "o1", "r3", [("b", 1)], now=T0)
    # ...but the earlier return still replays.
    assert await ledger.return_order(program, "o1", "r1", [("a", 1)], now=T0) == first


async def test_return_before_delivery_reduces_pending_points(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await _member(ledger, program)
    order = FakeOrder("o1", lines=(("a", 2, 100),), accrue_pending=(("bonus", 40),))
    await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
    moves = await ledger.return_order(program, "o1", "r1", [("a", 1)], now=T0)
    assert moves == [PointsMovement("bonus", accrual_reversed=20)]
    info = await ledger.get_member(program, "m1", now=T0)
    assert (info.balance("bonus").pending, info.balance("bonus").balance) == (20, 0)
    assert await ledger.deliver_order(program, "o1", now=T0) == [
        PointsMovement("bonus", activated=20)]
    moves = await ledger.return_order(program, "o1", "r2", [("a", 1)], now=T0)
    assert moves == [PointsMovement("bonus", accrual_reversed=20)]
    assert (await ledger.get_member(program, "m1", now=T0)).balance("bonus").balance == 0


async def test_return_shortfall_is_reported_and_never_goes_negative(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await _member(ledger, program)
    order = FakeOrder("o1", lines=(("a", 2, 100),), accrue=(("bonus", 40), ("debt", 40)))
    await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
    for point_type in ("bonus", "debt"):
        await ledger.create_transaction(program, member_id="m1", point_type=point_type,
                                        operation="DEDUCTION", points=35,
                                        external_id=f"spend-{point_type}", now=T0)
    moves = await ledger.return_order(program, "o1", "r1", [("a", 2)], now=T0)
    assert sorted(moves, key=lambda m: m.point_type) == [
        PointsMovement("bonus", accrual_reversed=5, shortfall=35),
        PointsMovement("debt", accrual_reversed=40)]
    info = await ledger.get_member(program, "m1", now=T0)
    assert (info.balance("bonus").balance, info.balance("debt").balance) == (0, -35)
