"""Guest checkout end to end: an anonymous buyer's order (no member_id) through gRPC commits,
holds and releases its promo code uses, and nothing else."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

from arbiter.server.ledger import Ledger
from arbiter.server.state import LedgerMemberDirectory
from arbiter.v1 import checkout_pb2, program_pb2
from tests.e2e.conftest import (
    E2E,
    INITIAL_BONUS,
    PROGRAM,
    as_calculate,
    as_reserve,
    order_request,
    shop_program,
)
from tests.e2e.test_e2e_members import error_of
from tests.ledger.ledger_support import check_invariants

pytestmark = pytest.mark.asyncio

ONCE = "ONCE"  # single use, 10 % off, for everyone
EACH = "EACH"  # unlimited, one use per member, 5 % off, for everyone
PRICE = 1_000
RACERS = 8

APPLIED = (checkout_pb2.PROMO_CODE_STATUS_APPLIED, checkout_pb2.PROMO_CODE_REASON_UNSPECIFIED)
EXHAUSTED = (checkout_pb2.PROMO_CODE_STATUS_INVALID, checkout_pb2.PROMO_CODE_REASON_EXHAUSTED)


def guest_program() -> program_pb2.Program:
    """The shop (its points promotions are for members), plus two coded discounts whose audience
    is EVERYONE: D (pool `once`: ONCE, max_uses 1, 10 %) and E (pool `each`: EACH, one use per
    member, 5 %)."""
    program = shop_program()
    once = program.promo_code_pools.add(id="once", name="once")
    once.codes.add(code=ONCE, max_uses=1)
    each = program.promo_code_pools.add(id="each", name="each", max_uses_per_member=1)
    each.codes.add(code=EACH)
    for promotion_id, pool, percent_bp in (("D", "once", 1_000), ("E", "each", 500)):
        promotion = program.promotions.add(
            id=promotion_id,
            name=promotion_id,
            kind=program_pb2.PROMOTION_KIND_DISCOUNT,
            status=program_pb2.PROMOTION_STATUS_ACTIVE,
            promo_code_pool=pool,
            audience=program_pb2.Audience(kind=program_pb2.AUDIENCE_KIND_EVERYONE),
        )
        rule = promotion.product_rules.add(scope=program_pb2.Scope(kind=program_pb2.SCOPE_KIND_ALL))
        rule.benefits.add(discount=program_pb2.Discount(percent_bp=percent_bp))
        program.arbitration.children.add(promotion=promotion_id)
    return program


def guest_order(order_id: str, *codes: str, quantity: int = 1) -> checkout_pb2.ConfirmOrderRequest:
    request = order_request(order_id, member_id="", lines=(("l1", quantity, PRICE),))
    request.order.promo_codes.extend(codes)
    return request


def code_status(response: checkout_pb2.CalculateOrderResponse, code: str) -> tuple[int, int]:
    result = next(r for r in response.promo_codes if r.code == code)
    return result.status, result.reason


def ledger_of(e2e: E2E) -> Ledger:
    assert e2e.app.ledger is not None
    return e2e.app.ledger


async def _uses(e2e: E2E) -> list[tuple[str, str, bool]]:
    rows = await ledger_of(e2e).pool.fetch(
        "SELECT o.order_id, u.state, u.member_pk IS NULL AS guest FROM promo_code_uses u"
        " JOIN orders o ON o.pk = u.order_pk ORDER BY u.pk"
    )
    return [(r["order_id"], r["state"], r["guest"]) for r in rows]


async def _cancel(e2e: E2E, order_id: str) -> checkout_pb2.CancelOrderResponse:
    return await e2e.checkout.CancelOrder(
        checkout_pb2.CancelOrderRequest(program=PROGRAM, order_id=order_id)
    )


@pytest.fixture
async def shop(e2e: E2E) -> E2E:
    await e2e.app.apply_program(guest_program())
    await e2e.enroll("m-1")
    return e2e


async def test_a_guest_uses_a_single_use_code_and_the_next_finds_it_exhausted(shop: E2E) -> None:
    first = await shop.checkout.ConfirmOrder(guest_order("g-1", "once"))
    assert code_status(first.result, "once") == APPLIED
    assert first.result.totals.total == PRICE - 100
    assert list(first.result.points) == []  # an anonymous buyer neither earns nor spends
    assert await _uses(shop) == [("g-1", "CONFIRMED", True)]

    second = await shop.checkout.ConfirmOrder(guest_order("g-2", ONCE))
    assert code_status(second.result, ONCE) == EXHAUSTED
    assert second.result.totals.total == PRICE
    # A quote for a member, and for another guest, see the code used up.
    member_quote = as_calculate(order_request("q", "m-1"))
    member_quote.order.promo_codes.append(ONCE)
    assert code_status(await shop.checkout.CalculateOrder(member_quote), ONCE) == EXHAUSTED
    guest_quote = as_calculate(guest_order("q", ONCE))
    assert code_status(await shop.checkout.CalculateOrder(guest_quote), ONCE) == EXHAUSTED
    member = order_request("o-1", "m-1")
    member.order.promo_codes.append(ONCE)
    assert code_status((await shop.checkout.ConfirmOrder(member)).result, ONCE) == EXHAUSTED
    assert (await shop.bonus("m-1")).available > INITIAL_BONUS  # the member's order still earns

    # Idempotent by order id: the stored response, byte for byte; another payload is refused.
    assert await shop.checkout.ConfirmOrder(guest_order("g-1", "once")) == first
    assert await error_of(shop.checkout.ConfirmOrder(guest_order("g-1", "once", quantity=2))) == (
        grpc.StatusCode.ALREADY_EXISTS, [])
    # The same order id for a member is another payload too.
    as_member = guest_order("g-1", "once")
    as_member.member_id = "m-1"
    code, _ = await error_of(shop.checkout.ConfirmOrder(as_member))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert [u[0] for u in await _uses(shop)] == ["g-1"]

    events = [e for e in await ledger_of(shop).outbox_events(limit=1_000)
              if e.topic == "order.confirmed"]
    assert [(e.member_id, e.payload["order_id"], e.payload["promo_codes"]) for e in events] == [
        ("", "g-1", [ONCE]), ("", "g-2", []), ("m-1", "o-1", [])]


async def test_expected_total_still_applies_to_a_guest(shop: E2E) -> None:
    request = guest_order("g-1", ONCE)
    request.expected_total = PRICE  # what the till saw before the code
    code, _ = await error_of(shop.checkout.ConfirmOrder(request))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert await ledger_of(shop).pool.fetchval("SELECT count(*) FROM orders") == 0
    request.expected_total = PRICE - 100
    confirmed = await shop.checkout.ConfirmOrder(request)
    assert confirmed.result.totals.total == PRICE - 100
    request.expected_total = 1
    code, _ = await error_of(shop.checkout.ConfirmOrder(request))
    assert code == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_member_context_on_a_guest_order_is_refused(shop: E2E) -> None:
    request = guest_order("g-1", ONCE)
    request.member_context.balances.add(point_type="bonus", available=10)
    assert await error_of(shop.checkout.ConfirmOrder(request)) == (
        grpc.StatusCode.INVALID_ARGUMENT, ["member_context"])
    reserve = as_reserve(guest_order("g-1", ONCE))
    reserve.member_context.SetInParent()
    assert await error_of(shop.checkout.ReserveOrder(reserve)) == (
        grpc.StatusCode.INVALID_ARGUMENT, ["member_context"])
    assert await ledger_of(shop).pool.fetchval("SELECT count(*) FROM orders") == 0


async def test_a_guest_reservation_holds_the_code_and_a_cancel_releases_it(shop: E2E) -> None:
    held = await shop.checkout.ReserveOrder(as_reserve(guest_order("g-1", ONCE), 600))
    assert code_status(held.result, ONCE) == APPLIED
    assert held.hold_until.ToDatetime().timestamp() == pytest.approx(
        (shop.clock.now + timedelta(seconds=600)).timestamp())
    rival = await shop.checkout.ConfirmOrder(guest_order("g-2", ONCE))
    assert code_status(rival.result, ONCE) == EXHAUSTED
    cancelled = await _cancel(shop, "g-1")
    assert list(cancelled.reversed) == []
    assert await _cancel(shop, "g-1") == cancelled  # idempotent
    quote = await shop.checkout.CalculateOrder(as_calculate(guest_order("q", ONCE)))
    assert code_status(quote, ONCE) == APPLIED
    code, _ = await error_of(shop.checkout.ConfirmOrder(guest_order("g-1", ONCE)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION

    # Reserve, then confirm: the hold is posted as reserved, expected_total checked.
    reserved = await shop.checkout.ReserveOrder(as_reserve(guest_order("g-3", ONCE)))
    assert code_status(reserved.result, ONCE) == APPLIED
    assert (await shop.checkout.ReserveOrder(as_reserve(guest_order("g-3", ONCE)))) == reserved
    shop.clock.advance(timedelta(seconds=60))
    wrong = guest_order("g-3", ONCE)
    wrong.expected_total = PRICE
    code, _ = await error_of(shop.checkout.ConfirmOrder(wrong))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    posted = await shop.checkout.ConfirmOrder(guest_order("g-3", ONCE))
    assert posted.result == reserved.result
    assert [u[:2] for u in await _uses(shop)] == [
        ("g-1", "RELEASED"), ("g-3", "CONFIRMED")]
    topics = [(e.topic, e.member_id) for e in await ledger_of(shop).outbox_events(limit=1_000)
              if e.topic.startswith("order.")]
    assert topics == [("order.confirmed", ""), ("order.cancelled", ""), ("order.confirmed", "")]


async def test_a_lapsed_guest_hold_cannot_be_confirmed(shop: E2E) -> None:
    await shop.checkout.ReserveOrder(as_reserve(guest_order("g-1", ONCE), 60))
    shop.clock.advance(timedelta(seconds=60))
    quote = await shop.checkout.CalculateOrder(as_calculate(guest_order("q", ONCE)))
    assert code_status(quote, ONCE) == APPLIED  # the lapsed hold no longer counts
    code, _ = await error_of(shop.checkout.ConfirmOrder(guest_order("g-1", ONCE)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    taken = await shop.checkout.ConfirmOrder(guest_order("g-2", ONCE))
    assert code_status(taken.result, ONCE) == APPLIED


async def test_a_guest_order_is_delivered_and_returned_without_points(shop: E2E) -> None:
    await shop.checkout.ConfirmOrder(guest_order("g-1", ONCE, quantity=2))
    # A quote caches the member; the guest order's steps leave it cached.
    await shop.checkout.CalculateOrder(as_calculate(order_request("q", "m-1")))
    directory = shop.app.members
    assert isinstance(directory, LedgerMemberDirectory)
    assert directory.cached(PROGRAM) == 1
    delivered = await shop.checkout.DeliverOrder(
        checkout_pb2.DeliverOrderRequest(program=PROGRAM, order_id="g-1"))
    assert list(delivered.activated) == []
    returned = await shop.checkout.ReturnOrder(checkout_pb2.ReturnOrderRequest(
        program=PROGRAM, order_id="g-1", return_id="r-1",
        lines=[checkout_pb2.ReturnLine(line_id="l1", quantity=1)]))
    assert list(returned.reversed) == []
    assert await ledger_of(shop).pool.fetchval("SELECT count(*) FROM returns") == 1
    too_many = checkout_pb2.ReturnOrderRequest(
        program=PROGRAM, order_id="g-1", return_id="r-2",
        lines=[checkout_pb2.ReturnLine(line_id="l1", quantity=2)])
    assert await error_of(shop.checkout.ReturnOrder(too_many)) == (
        grpc.StatusCode.INVALID_ARGUMENT, ["lines[0].quantity"])
    # The code stays used after a return; a cancel releases it.
    again = await shop.checkout.ConfirmOrder(guest_order("g-2", ONCE))
    assert code_status(again.result, ONCE) == EXHAUSTED
    assert directory.cached(PROGRAM) == 1
    await _cancel(shop, "g-1")
    assert directory.cached(PROGRAM) == 1
    quote = await shop.checkout.CalculateOrder(as_calculate(guest_order("q", ONCE)))
    assert code_status(quote, ONCE) == APPLIED


async def test_max_uses_per_member_has_no_member_to_count_for_guests(shop: E2E) -> None:
    for index in range(3):
        confirmed = await shop.checkout.ConfirmOrder(guest_order(f"g-{index}", EACH))
        assert code_status(confirmed.result, EACH) == APPLIED
    member_orders = []
    for index in range(2):
        request = order_request(f"o-{index}", "m-1")
        request.order.promo_codes.append(EACH)
        member_orders.append(await shop.checkout.ConfirmOrder(request))
    assert [code_status(o.result, EACH) for o in member_orders] == [APPLIED, EXHAUSTED]


async def test_guests_racing_for_a_single_use_code_one_gets_it(shop: E2E) -> None:
    async def confirm(index: int) -> checkout_pb2.ConfirmOrderResponse:
        return await shop.checkout.ConfirmOrder(guest_order(f"g-{index}", ONCE))

    outcomes = await asyncio.gather(*(confirm(i) for i in range(RACERS)))
    statuses = [code_status(o.result, ONCE) for o in outcomes]
    assert statuses.count(APPLIED) == 1
    assert statuses.count(EXHAUSTED) == RACERS - 1
    assert sorted(o.result.totals.total for o in outcomes) == [PRICE - 100] + [PRICE] * (
        RACERS - 1)
    assert [u[1] for u in await _uses(shop)] == ["CONFIRMED"]
    async with ledger_of(shop).pool.acquire() as conn:
        await check_invariants(conn)
