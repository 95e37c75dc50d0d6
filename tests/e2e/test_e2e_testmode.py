"""TestCalculateOrder end to end (applied version): the result equals CalculateOrder's byte for
byte, the member's balances around the order, the decision trace, and it writes nothing."""

from __future__ import annotations

import grpc
import pytest

from arbiter.v1 import admin_pb2, admin_pb2_grpc, checkout_pb2, member_pb2
from tests.e2e.conftest import E2E, INITIAL_BONUS, PROGRAM, as_calculate, order_request
from tests.e2e.test_e2e_members import error_of

pytestmark = pytest.mark.asyncio


def as_test(request: checkout_pb2.CalculateOrderRequest) -> admin_pb2.TestCalculateOrderRequest:
    test = admin_pb2.TestCalculateOrderRequest(program=request.program, member_id=request.member_id)
    if request.HasField("member_context"):
        test.member_context.CopyFrom(request.member_context)
    test.order.CopyFrom(request.order)
    return test


def balances(response: admin_pb2.TestCalculateOrderResponse) -> list[tuple[str, int, int, int]]:
    return [(b.point_type, b.before, b.after, b.pending) for b in response.balances]


def trace(response: admin_pb2.TestCalculateOrderResponse) -> list[tuple[str, str, str, int]]:
    return [
        (
            e.node,
            admin_pb2.TraceNodeKind.Name(e.kind),
            admin_pb2.TraceVerdict.Name(e.verdict),
            e.benefit,
        )
        for e in response.trace
    ]


async def test_enrolled_member_result_balances_and_trace(e2e: E2E) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(e2e.channel)
    await e2e.enroll("m-1")
    quote = as_calculate(order_request("o-1", redeem=300))
    calculated = await e2e.checkout.CalculateOrder(quote)
    tested = await admin.TestCalculateOrder(as_test(quote))
    assert tested.result.SerializeToString() == calculated.SerializeToString()
    assert tested.result.program_version == calculated.program_version >= 1
    # P pays 300 of 1000 with bonus; A accrues 10 % of the 700 left (ON_CREATE); M 5 % of it in
    # miles, pending until delivery.
    assert balances(tested) == [
        ("bonus", INITIAL_BONUS, INITIAL_BONUS - 300 + 70, 0),
        ("miles", 0, 0, 35),
    ]
    assert trace(tested) == [
        ("", "TRACE_NODE_KIND_GROUP", "TRACE_VERDICT_APPLIED", 300 + 70 + 35),
        ("P", "TRACE_NODE_KIND_PROMOTION", "TRACE_VERDICT_APPLIED", 300),
        ("A", "TRACE_NODE_KIND_PROMOTION", "TRACE_VERDICT_APPLIED", 70),
        ("M", "TRACE_NODE_KIND_PROMOTION", "TRACE_VERDICT_APPLIED", 35),
    ]
    assert [list(e.line_ids) for e in tested.trace] == [["l1"]] * 4
    assert {e.parent for e in tested.trace} == {""}
    # It wrote nothing: the balance is whole and no transaction was made.
    bonus = await e2e.bonus("m-1")
    assert (bonus.available, bonus.held) == (INITIAL_BONUS, 0)
    listed = await e2e.members.ListTransactions(
        member_pb2.ListTransactionsRequest(program=PROGRAM, member_id="m-1")
    )
    assert listed.transactions  # the enrollment's initial balance
    assert all(t.source_type != member_pb2.SOURCE_TYPE_ORDER for t in listed.transactions)


async def test_member_from_context_and_a_not_selected_reason(e2e: E2E) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(e2e.channel)
    quote = as_calculate(order_request("o-2", member_id="ctx", redeem=500))
    quote.member_context.balances.add(point_type="bonus", available=200)
    calculated = await e2e.checkout.CalculateOrder(quote)
    tested = await admin.TestCalculateOrder(as_test(quote))
    assert tested.result.SerializeToString() == calculated.SerializeToString()
    # 200 points available of the 500 asked; A accrues 10 % of the 800 left.
    assert balances(tested) == [("bonus", 200, 200 - 200 + 80, 0), ("miles", 0, 0, 40)]
    # An anonymous buyer: no balances; the points promotions need a member (rule 3): P pays
    # nothing without a budget, the accruals accrue nothing.
    anonymous = as_calculate(order_request("o-3", member_id=""))
    tested = await admin.TestCalculateOrder(as_test(anonymous))
    assert balances(tested) == []
    assert [admin_pb2.TraceVerdict.Name(e.verdict) for e in tested.trace] == [
        "TRACE_VERDICT_NO_EFFECT",
        "TRACE_VERDICT_NOT_SELECTED",
        "TRACE_VERDICT_NOT_SELECTED",
        "TRACE_VERDICT_NOT_SELECTED",
    ]
    assert {admin_pb2.TraceReason.Name(e.reason) for e in tested.trace[1:]} == {
        "TRACE_REASON_AUDIENCE"
    }


async def test_bad_input_and_unknown_member(e2e: E2E) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(e2e.channel)
    bad = as_test(as_calculate(order_request("o-4")))
    bad.order.lines[0].quantity = 0
    code, fields = await error_of(admin.TestCalculateOrder(bad))
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["order.lines[0].quantity"])
    code, fields = await error_of(
        admin.TestCalculateOrder(admin_pb2.TestCalculateOrderRequest(order=bad.order))
    )
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["program"])
    unknown = as_test(as_calculate(order_request("o-5", member_id="nobody")))
    code, _ = await error_of(admin.TestCalculateOrder(unknown))
    assert code == grpc.StatusCode.NOT_FOUND
