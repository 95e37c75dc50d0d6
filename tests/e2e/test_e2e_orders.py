"""The order lifecycle end to end: quote, confirm, reserve, cancel, return, deliver."""

from __future__ import annotations

import grpc
import pytest

from arbiter.v1 import checkout_pb2, member_pb2
from tests.e2e.conftest import (
    E2E,
    INITIAL_BONUS,
    PROGRAM,
    as_calculate,
    as_reserve,
    order_request,
)
from tests.e2e.test_e2e_members import error_of

pytestmark = pytest.mark.asyncio


def points_of(
    result: checkout_pb2.CalculateOrderResponse, point_type: str
) -> checkout_pb2.PointsChange:
    return next(p for p in result.points if p.point_type == point_type)


async def test_a_quote_uses_the_ledger_balance_and_caps_the_redemption(e2e: E2E) -> None:
    await e2e.enroll("m-1")
    request = order_request("q-1", redeem=5_000, lines=(("l1", 1, 100_000),))
    quote = await e2e.checkout.CalculateOrder(as_calculate(request))
    bonus = points_of(quote, "bonus")
    assert (bonus.requested, bonus.redeemed) == (5_000, INITIAL_BONUS)
    assert quote.program_version == 1
    unknown = as_calculate(order_request("q-2", member_id="stranger"))
    code, _ = await error_of(e2e.checkout.CalculateOrder(unknown))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_confirm_debits_accrues_and_is_idempotent(e2e: E2E) -> None:
    await e2e.enroll("m-1")
    request = order_request("o-1", redeem=500)
    first = await e2e.checkout.ConfirmOrder(request)
    bonus = points_of(first.result, "bonus")
    assert bonus.redeemed == 500 and bonus.accrued > 0
    assert first.result.totals.total == 500
    after = await e2e.bonus("m-1")
    assert after.available == INITIAL_BONUS - 500 + bonus.accrued
    assert (await e2e.balance("m-1", "miles")).pending == points_of(
        first.result, "miles"
    ).accrued_pending
    # The same order again: the stored response, byte for byte, even on a later version.
    program = e2e.app.programs.get(PROGRAM).source
    assert program is not None
    changed = type(program)()
    changed.CopyFrom(program)
    changed.name = "Shop v2"
    assert await e2e.app.apply_program(changed) == 2
    again = await e2e.checkout.ConfirmOrder(request)
    assert again == first
    assert again.result.program_version == 1
    # The same id with another payload.
    other = order_request("o-1", redeem=400)
    code, _ = await error_of(e2e.checkout.ConfirmOrder(other))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert (await e2e.bonus("m-1")).available == after.available


async def test_expected_total_mismatch_fails_and_writes_nothing(e2e: E2E) -> None:
    await e2e.enroll("m-1")
    request = order_request("o-2", redeem=500)
    request.expected_total = 999
    code, _ = await error_of(e2e.checkout.ConfirmOrder(request))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert (await e2e.bonus("m-1")).available == INITIAL_BONUS
    page = await e2e.members.ListTransactions(
        member_pb2.ListTransactionsRequest(program=PROGRAM, member_id="m-1")
    )
    assert len(page.transactions) == 1  # the enrollment only
    request.expected_total = 500
    confirmed = await e2e.checkout.ConfirmOrder(request)
    assert confirmed.result.totals.total == 500


async def test_member_context_and_hold_seconds_are_refused(e2e: E2E) -> None:
    await e2e.enroll("m-1")
    request = order_request("o-3")
    request.member_context.balances.add(point_type="bonus", available=10)
    assert await error_of(e2e.checkout.ConfirmOrder(request)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["member_context"],
    )
    for seconds in (-1, 86_401):
        reserve = as_reserve(order_request("o-3"), hold_seconds=seconds)
        assert await error_of(e2e.checkout.ReserveOrder(reserve)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            ["hold_seconds"],
        )


async def test_reserve_holds_confirm_posts_cancel_reverses(e2e: E2E) -> None:
    await e2e.enroll("m-1")
    reserve = as_reserve(order_request("r-1", redeem=300), hold_seconds=600)
    held = await e2e.checkout.ReserveOrder(reserve)
    assert held.hold_until.ToDatetime().timestamp() == pytest.approx(
        e2e.clock.now.timestamp() + 600
    )
    bonus = await e2e.bonus("m-1")
    assert (bonus.available, bonus.held) == (INITIAL_BONUS - 300, 300)
    # A quote for the same member sees the hold.
    quote = await e2e.checkout.CalculateOrder(
        as_calculate(order_request("q", redeem=5_000, lines=(("l1", 1, 100_000),)))
    )
    assert points_of(quote, "bonus").redeemed == INITIAL_BONUS - 300
    confirmed = await e2e.checkout.ConfirmOrder(order_request("r-1", redeem=300))
    assert confirmed.result == held.result
    accrued = points_of(confirmed.result, "bonus").accrued
    bonus = await e2e.bonus("m-1")
    assert (bonus.available, bonus.held) == (INITIAL_BONUS - 300 + accrued, 0)
    cancelled = await e2e.checkout.CancelOrder(
        checkout_pb2.CancelOrderRequest(program=PROGRAM, order_id="r-1")
    )
    moved = {m.point_type: m for m in cancelled.reversed}
    assert moved["bonus"].redemption_refunded == 300
    assert moved["bonus"].accrual_reversed == accrued
    assert (await e2e.bonus("m-1")).available == INITIAL_BONUS


async def test_cancel_of_a_reservation_voids_the_hold(e2e: E2E) -> None:
    await e2e.enroll("m-1")
    await e2e.checkout.ReserveOrder(as_reserve(order_request("r-2", redeem=200)))
    assert (await e2e.bonus("m-1")).held == 200
    await e2e.checkout.CancelOrder(checkout_pb2.CancelOrderRequest(program=PROGRAM, order_id="r-2"))
    bonus = await e2e.bonus("m-1")
    assert (bonus.available, bonus.held) == (INITIAL_BONUS, 0)
    code, _ = await error_of(e2e.checkout.ConfirmOrder(order_request("r-2", redeem=200)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION


async def test_return_is_proportional_and_deliver_activates_pending(e2e: E2E) -> None:
    await e2e.enroll("m-1")
    request = order_request("o-4", redeem=1_000, lines=(("l1", 4, 1_000),))
    confirmed = await e2e.checkout.ConfirmOrder(request)
    accrued = points_of(confirmed.result, "bonus").accrued
    pending = points_of(confirmed.result, "miles").accrued_pending
    assert accrued > 0 and pending > 0
    delivered = await e2e.checkout.DeliverOrder(
        checkout_pb2.DeliverOrderRequest(program=PROGRAM, order_id="o-4")
    )
    assert {m.point_type: m.activated for m in delivered.activated} == {"miles": pending}
    miles = await e2e.balance("m-1", "miles")
    assert (miles.available, miles.pending) == (pending, 0)
    returned = await e2e.checkout.ReturnOrder(
        checkout_pb2.ReturnOrderRequest(
            program=PROGRAM,
            order_id="o-4",
            return_id="ret-1",
            lines=[checkout_pb2.ReturnLine(line_id="l1", quantity=1)],
        )
    )
    moved = {m.point_type: m for m in returned.reversed}
    assert moved["bonus"].accrual_reversed == (accrued + 2) // 4
    assert moved["bonus"].redemption_refunded == 250
    assert moved["miles"].accrual_reversed == (pending + 2) // 4
    bonus = await e2e.bonus("m-1")
    assert bonus.available == INITIAL_BONUS - 1_000 + accrued - (accrued + 2) // 4 + 250


async def test_a_quote_after_a_confirm_sees_the_new_balance(e2e: E2E) -> None:
    await e2e.enroll("m-1")
    big = as_calculate(order_request("q", redeem=5_000, lines=(("l1", 1, 100_000),)))
    assert points_of(await e2e.checkout.CalculateOrder(big), "bonus").redeemed == INITIAL_BONUS
    directory = e2e.app.members
    misses_before = getattr(directory, "misses", 0)
    assert points_of(await e2e.checkout.CalculateOrder(big), "bonus").redeemed == INITIAL_BONUS
    assert getattr(directory, "misses", 0) == misses_before  # served from memory
    confirmed = await e2e.checkout.ConfirmOrder(order_request("o-5", redeem=400))
    accrued = points_of(confirmed.result, "bonus").accrued
    quote = await e2e.checkout.CalculateOrder(big)
    assert points_of(quote, "bonus").redeemed == INITIAL_BONUS - 400 + accrued
    await e2e.members.CreateTransaction(
        member_pb2.CreateTransactionRequest(
            program=PROGRAM,
            member_id="m-1",
            point_type="bonus",
            operation=member_pb2.OPERATION_ACCRUAL,
            points=7,
            external_id="t-1",
        )
    )
    quote = await e2e.checkout.CalculateOrder(big)
    assert points_of(quote, "bonus").redeemed == INITIAL_BONUS - 400 + accrued + 7


async def test_the_program_version_is_stored_in_the_order_row_itself(e2e: E2E) -> None:
    """The version an order ran on is written by the order's own transaction (never after the
    commit into a table of its own, which a crash in between could lose)."""
    await e2e.enroll("m-1")
    confirmed = await e2e.checkout.ConfirmOrder(order_request("o-1", redeem=100))
    reserved = await e2e.checkout.ReserveOrder(as_reserve(order_request("r-1", redeem=100)))
    assert confirmed.result.program_version == reserved.result.program_version == 1
    ledger = e2e.app.ledger
    assert ledger is not None
    rows = await ledger.pool.fetch(
        "SELECT order_id, state, program_version FROM orders ORDER BY order_id"
    )
    assert [tuple(r) for r in rows] == [("o-1", "CONFIRMED", 1), ("r-1", "RESERVED", 1)]
    assert await ledger.pool.fetchval("SELECT to_regclass('order_versions')") is None
    # A new version meanwhile: posting the reservation answers the version it was held on.
    program = e2e.app.programs.get(PROGRAM).source
    assert program is not None
    changed = type(program)()
    changed.CopyFrom(program)
    changed.name = "Shop v2"
    assert await e2e.app.apply_program(changed) == 2
    posted = await e2e.checkout.ConfirmOrder(order_request("r-1", redeem=100))
    assert posted.result.program_version == 1
    later = await e2e.checkout.ConfirmOrder(order_request("o-2", redeem=100))
    assert later.result.program_version == 2
    assert await ledger.pool.fetchval(
        "SELECT program_version FROM orders WHERE order_id = 'o-2'"
    ) == 2
