"""ReserveOrder: holds, their lapse with a moved clock, and confirming or cancelling them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from arbiter.server.ledger import (
    Conflict,
    FailedPrecondition,
    HoldNotActive,
    InvalidArgument,
    Ledger,
    OrderStateError,
    TotalMismatch,
)
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import DAY, T0, FakeOrder, make_program

SEC = timedelta(seconds=1)


async def _setup(ledger: Ledger, program: program_pb2.Program, points: int = 1_000) -> None:
    await ledger.enroll(program, "m1", now=T0)
    await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                    operation="ACCRUAL", points=points, external_id="fund",
                                    now=T0)


def _pool() -> program_pb2.PromoCodePool:
    pool = program_pb2.PromoCodePool(id="single", name="single")
    pool.codes.add(code="ONCE", max_uses=1)
    return pool


async def test_reserve_holds_and_confirm_posts_exactly_the_hold(ledger: Ledger) -> None:
    program = make_program(pools=[_pool()])
    await _setup(ledger, program)
    order = FakeOrder("o1", redeem=(("bonus", 600),), accrue=(("bonus", 20),), codes=("once",))
    out = await ledger.reserve_order(program, order.request(), order.compute(program), now=T0)
    assert out.state == "RESERVED" and out.hold_until == T0 + 900 * SEC
    info = await ledger.get_member(program, "m1", now=T0)
    bonus = info.balance("bonus")
    assert (bonus.available, bonus.held, bonus.balance) == (400, 600, 1_000)
    # Nothing is spent yet: no transaction besides the funding.
    assert len((await ledger.list_transactions(program, "m1")).transactions) == 1
    # The held points cannot be spent by another order meanwhile.
    greedy = FakeOrder("o2", redeem=(("bonus", 1_000),))
    other = await ledger.confirm_order(program, greedy.request(), greedy.compute(program),
                                       now=T0 + SEC)
    assert other.result.points[0].redeemed == 400
    # The code is held: another order sees it used up.
    coded = FakeOrder("o3", codes=("ONCE",))
    res = await ledger.confirm_order(program, coded.request(), coded.compute(program), now=T0)
    assert res.result.promo_codes[0].reason == "EXHAUSTED"
    # Replaying the reservation returns it as stored.
    again = await ledger.reserve_order(program, order.request(), order.compute(program),
                                       now=T0 + 2 * SEC)
    assert again.replayed and again.result == out.result and again.hold_until == out.hold_until
    with pytest.raises(TotalMismatch):
        await ledger.confirm_order(program, order.request(expected_total=1),
                                   order.compute(program), now=T0 + 10 * SEC)
    done = await ledger.confirm_order(program, order.request(expected_total=9_400),
                                      order.compute(program), now=T0 + 10 * SEC)
    assert done.state == "CONFIRMED" and done.result == out.result and not done.replayed
    info = await ledger.get_member(program, "m1", now=T0 + 10 * SEC)
    bonus = info.balance("bonus")
    assert (bonus.available, bonus.held, bonus.balance) == (20, 0, 20)
    # Posted once: confirming again replays, cancelling after posting reverses the posting.
    replay = await ledger.confirm_order(program, order.request(), order.compute(program),
                                        now=T0 + 20 * SEC)
    assert replay.replayed
    redemptions = [t for t in (await ledger.list_transactions(program, "m1")).transactions
                   if t.type == "REDEMPTION" and t.source_id == "o1"]
    assert [t.value for t in redemptions] == [-600]
    held = await ledger.pool.fetch("SELECT state FROM holds")
    assert [r["state"] for r in held] == ["POSTED"]


async def test_a_lapsed_hold_stops_counting_at_once_and_cannot_be_confirmed(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await _setup(ledger, program)
    order = FakeOrder("o1", redeem=(("bonus", 700),))
    out = await ledger.reserve_order(program, order.request(), order.compute(program),
                                     hold_seconds=60, now=T0)
    assert out.hold_until == T0 + 60 * SEC
    just_before = await ledger.get_member(program, "m1", now=T0 + 59 * SEC)
    assert just_before.balance("bonus").available == 300
    at_lapse = await ledger.get_member(program, "m1", now=T0 + 60 * SEC)
    assert (at_lapse.balance("bonus").available, at_lapse.balance("bonus").held) == (1_000, 0)
    with pytest.raises(HoldNotActive, match="lapsed"):
        await ledger.confirm_order(program, order.request(), order.compute(program),
                                   now=T0 + 60 * SEC)
    # The lapsed hold's points are spendable by another order.
    other = FakeOrder("o2", redeem=(("bonus", 1_000),))
    res = await ledger.confirm_order(program, other.request(), other.compute(program),
                                     now=T0 + 61 * SEC)
    assert res.result.points[0].redeemed == 1_000
    with pytest.raises(HoldNotActive):
        await ledger.confirm_order(program, order.request(), order.compute(program),
                                   now=T0 + 62 * SEC)
    # A hold is never both posted and voided: cancelling the lapsed reservation voids it.
    assert await ledger.cancel_order(program, "o1", now=T0 + 70 * SEC) == []
    states = await ledger.pool.fetch("SELECT state FROM holds")
    assert [r["state"] for r in states] == ["VOIDED"]


async def test_cancelled_reservation_cannot_be_confirmed(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await _setup(ledger, program)
    order = FakeOrder("o1", redeem=(("bonus", 100),))
    await ledger.reserve_order(program, order.request(), order.compute(program), now=T0)
    assert await ledger.cancel_order(program, "o1", now=T0 + SEC) == []
    assert (await ledger.get_member(program, "m1", now=T0 + SEC)).balance("bonus").held == 0
    with pytest.raises(OrderStateError):
        await ledger.confirm_order(program, order.request(), order.compute(program),
                                   now=T0 + 2 * SEC)
    with pytest.raises(OrderStateError):
        await ledger.reserve_order(program, order.request(), order.compute(program),
                                   now=T0 + 2 * SEC)


async def test_hold_until_never_outlives_the_earmarked_lots(ledger: Ledger) -> None:
    program = make_program(validity_days=1)
    await ledger.enroll(program, "m1", now=T0)
    await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                    operation="ACCRUAL", points=100, external_id="a", now=T0)
    now = T0 + DAY - 100 * SEC  # the lot expires in 100 s
    order = FakeOrder("o1", redeem=(("bonus", 50),))
    out = await ledger.reserve_order(program, order.request(), order.compute(program),
                                     hold_seconds=3_600, now=now)
    assert out.hold_until == T0 + DAY


async def test_hold_seconds_bounds(ledger: Ledger, program: program_pb2.Program) -> None:
    await _setup(ledger, program)
    order = FakeOrder("o1", redeem=(("bonus", 10),))
    for bad in (-1, 86_401):
        with pytest.raises(InvalidArgument) as err:
            await ledger.reserve_order(program, order.request(), order.compute(program),
                                       hold_seconds=bad, now=T0)
        assert err.value.fields == ("hold_seconds",)
    out = await ledger.reserve_order(program, order.request(), order.compute(program),
                                     hold_seconds=86_400, now=T0)
    assert out.hold_until == T0 + DAY
    changed = FakeOrder("o1", redeem=(("bonus", 11),))
    with pytest.raises(Conflict):
        await ledger.reserve_order(program, changed.request(), changed.compute(program), now=T0)


async def test_member_snapshot_says_when_time_alone_changes_it(ledger: Ledger) -> None:
    program = make_program(validity_days=30, pools=[_pool()])
    await _setup(ledger, program)
    snap = await ledger.member_snapshot(program, "m1", now=T0)
    assert snap.state.balances["bonus"] == 1_000 and snap.stale_at == T0 + 30 * DAY
    order = FakeOrder("o1", redeem=(("bonus", 100),), codes=("ONCE",))
    await ledger.reserve_order(program, order.request(), order.compute(program),
                               hold_seconds=60, now=T0)
    snap = await ledger.member_snapshot(program, "m1", segments=frozenset({"s"}), now=T0)
    assert snap.state.balances["bonus"] == 900 and snap.state.segments == {"s"}
    assert snap.usage.member_pool_uses == {"single": 1}
    assert snap.stale_at == T0 + 60 * SEC
    later = await ledger.member_snapshot(program, "m1", now=T0 + 60 * SEC)
    assert later.state.balances["bonus"] == 1_000 and later.usage.member_pool_uses == {}


async def test_posting_a_members_hold_counts_its_code_again_under_the_lock(
    ledger: Ledger,
) -> None:
    """A confirm whose clock was read before its hold lapsed, run after another order took the
    code the lapsed hold let go, refuses rather than use the code twice."""
    program = make_program(pools=[_pool()])
    await _setup(ledger, program)
    await ledger.enroll(program, "m2", now=T0)
    order = FakeOrder("o1", redeem=(("bonus", 100),), codes=("once",))
    await ledger.reserve_order(program, order.request(), order.compute(program),
                               hold_seconds=60, now=T0)
    rival = FakeOrder("o2", member_id="m2", codes=("once",))
    taken = await ledger.confirm_order(program, rival.request(), rival.compute(program),
                                       now=T0 + 61 * SEC)
    assert taken.result.promo_codes[0].status == "APPLIED"
    with pytest.raises(FailedPrecondition, match="ONCE"):
        await ledger.confirm_order(program, order.request(), order.compute(program),
                                   now=T0 + 30 * SEC)
    states = await ledger.pool.fetch("SELECT state FROM holds")
    assert [r["state"] for r in states] == ["HELD"]  # nothing was posted
    assert len((await ledger.list_transactions(program, "m1")).transactions) == 1
