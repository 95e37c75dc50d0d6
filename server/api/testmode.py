"""Test mode: an order calculated on the draft or an applied version, with the member's balances
around it and the decision trace (docs/engine.md, "The decision trace"). It writes nothing.

The AdminService servicer picks the compiled program (the draft's, version 0, or the applied
one) and calls `test_calculation`; the order and the member go through the same quote path as
CheckoutService.CalculateOrder (`checkout.quote_inputs`), and `result` is built by the same
`result_to_proto`, so it equals what CalculateOrder answers on that version, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from arbiter.server.api.checkout import Clock, quote_inputs
from arbiter.server.api.translate import result_to_proto
from arbiter.server.engine import (
    CalculationResult,
    CompiledProgram,
    FieldViolation,
    InvalidOrder,
    MemberState,
)
from arbiter.server.engine.trace import (
    APPLIED,
    CUT,
    GROUP,
    NO_EFFECT,
    NOT_SELECTED,
    OUTRANKED,
    PROMOTION,
    REASONS,
    TraceEntry,
    calculate_traced,
)
from arbiter.server.state import MemberDirectory
from arbiter.v1 import admin_pb2, checkout_pb2

__all__ = ["test_calculation"]


async def test_calculation(
    request: admin_pb2.TestCalculateOrderRequest,
    compiled: CompiledProgram,
    version: int,
    members: MemberDirectory,
    clock: Clock,
) -> admin_pb2.TestCalculateOrderResponse:
    """The traced calculation of `request` on `compiled` (`version`: 0 for the draft)."""
    if not request.program:
        raise InvalidOrder([FieldViolation("program", "required")])
    quote = checkout_pb2.CalculateOrderRequest(program=request.program, member_id=request.member_id)
    if request.HasField("member_context"):
        quote.member_context.CopyFrom(request.member_context)
    if request.HasField("order"):
        quote.order.CopyFrom(request.order)
    order, member, usage = await quote_inputs(quote, compiled, members)
    result, trace = calculate_traced(compiled, order, member, now=clock(), usage=usage)
    response = admin_pb2.TestCalculateOrderResponse()
    response.result.CopyFrom(result_to_proto(result, version))
    if member is not None:
        _balances(compiled, member, result, response.balances)
    _trace(trace, response.trace)
    return response


# Its name is the contract's wording, not a test: pytest must not collect it where imported.
test_calculation.__test__ = False  # type: ignore[attr-defined]


def _balances(
    compiled: CompiledProgram,
    member: MemberState,
    result: CalculationResult,
    out: RepeatedCompositeFieldContainer[admin_pb2.BalanceChange],
) -> None:
    """Every point type of the program, in program order: available before the order, after its
    redemptions and ON_CREATE accruals, and its ON_DELIVERY points still pending."""
    changes = {change.point_type: change for change in result.points}
    for t in compiled.point_types:
        before = member.balances.get(t.id, 0)
        change = changes.get(t.id)
        item = out.add()
        item.point_type = t.id
        item.before = before
        if change is None:
            item.after = before
            continue
        item.after = before - change.redeemed + change.accrued
        item.pending = change.accrued_pending


# The engine's names of kinds, verdicts and reasons, as the contract's enum values.
_KINDS = {
    PROMOTION: admin_pb2.TRACE_NODE_KIND_PROMOTION,
    GROUP: admin_pb2.TRACE_NODE_KIND_GROUP,
}
_VERDICTS = {
    APPLIED: admin_pb2.TRACE_VERDICT_APPLIED,
    CUT: admin_pb2.TRACE_VERDICT_CUT,
    NOT_SELECTED: admin_pb2.TRACE_VERDICT_NOT_SELECTED,
    NO_EFFECT: admin_pb2.TRACE_VERDICT_NO_EFFECT,
    OUTRANKED: admin_pb2.TRACE_VERDICT_OUTRANKED,
}
_REASONS = {
    "": admin_pb2.TRACE_REASON_UNSPECIFIED,
    "STATUS": admin_pb2.TRACE_REASON_STATUS,
    "PERIOD": admin_pb2.TRACE_REASON_PERIOD,
    "AVAILABILITY": admin_pb2.TRACE_REASON_AVAILABILITY,
    "AUDIENCE": admin_pb2.TRACE_REASON_AUDIENCE,
    "CHANNEL": admin_pb2.TRACE_REASON_CHANNEL,
    "PROMO_CODE": admin_pb2.TRACE_REASON_PROMO_CODE,
}
assert set(_REASONS) == {"", *REASONS}


def _trace(
    trace: Sequence[TraceEntry], out: RepeatedCompositeFieldContainer[admin_pb2.TraceEntry]
) -> None:
    for e in trace:
        item = out.add()
        item.node = e.node
        item.parent = e.parent
        item.kind = _KINDS[e.kind]
        item.verdict = _VERDICTS[e.verdict]
        item.reason = _REASONS[e.reason]
        item.benefit = e.benefit
        item.cut = e.cut
        item.line_ids.extend(e.line_ids)
        item.detail = e.detail
