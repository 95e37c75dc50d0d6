"""The vectorised engine and the plain reference evaluator agree exactly (docs/rules.md).

Random programs (every group mode nested up to 3 levels, every benefit kind, limits, pools,
audiences) and random orders, and flat MAX_BENEFIT groups up to 16 wide on orders up to 50 lines;
the whole response is compared, field by field. The number of cases comes from
ARBITER_PROPERTY_EXAMPLES (CI runs 2,000 in the first test and 2,600 in all).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from datetime import UTC, datetime

from google.protobuf import text_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbiter.server.api.translate import order_from_proto, result_to_proto
from arbiter.server.engine import CompiledProgram, calculate, compile_program
from arbiter.server.reference import evaluate, prepare
from arbiter.v1 import checkout_pb2 as cpb
from arbiter.v1 import program_pb2 as pb
from tests.property.strategies import programs, requests

EXAMPLES = int(os.environ.get("ARBITER_PROPERTY_EXAMPLES", "2000"))
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _cases(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Deterministic hypothesis settings for `examples` generated cases."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def engine_response(
    program: pb.Program,
    request: cpb.CalculateOrderRequest,
    compiled: CompiledProgram | None = None,
) -> cpb.CalculateOrderResponse:
    if compiled is None:
        compiled = compile_program(program)
    order, member = order_from_proto(request, compiled.point_type_ids)
    return result_to_proto(calculate(compiled, order, member, now=NOW), 0)


def reference_response(
    program: pb.Program, request: cpb.CalculateOrderRequest
) -> cpb.CalculateOrderResponse:
    return evaluate(prepare(program), request, now=NOW)


def assert_agree(
    program: pb.Program,
    request: cpb.CalculateOrderRequest,
    compiled: CompiledProgram | None = None,
) -> None:
    got = engine_response(program, request, compiled)
    want = reference_response(program, request)
    if got != want:
        diff = "\n".join(
            difflib.unified_diff(
                text_format.MessageToString(want).splitlines(),
                text_format.MessageToString(got).splitlines(),
                "reference",
                "engine",
                lineterm="",
            )
        )
        raise AssertionError(
            "engine and reference disagree\n"
            + diff
            + "\n--- program\n"
            + text_format.MessageToString(program)
            + "--- request\n"
            + text_format.MessageToString(request)
            + "--- engine\n"
            + text_format.MessageToString(got)
            + "--- reference\n"
            + text_format.MessageToString(want)
        )


@_cases(EXAMPLES)
@given(program=programs(), request=requests())
def test_engine_agrees_with_reference(
    program: pb.Program, request: cpb.CalculateOrderRequest
) -> None:
    assert_agree(program, request)


def _flat_max_benefit(program: pb.Program, data: st.DataObject) -> None:
    """The program's tree replaced by one MAX_BENEFIT group of every promotion, with limits."""
    program.arbitration.Clear()
    program.arbitration.id = "main"
    program.arbitration.mode = pb.ARBITRATION_MODE_MAX_BENEFIT
    limits = program.arbitration.limits
    if data.draw(st.booleans()):
        limits.max_discount_bp = data.draw(st.integers(1, 10000))
    if data.draw(st.booleans()):
        limits.max_discount_amount = data.draw(st.integers(1, 200000))
    if data.draw(st.booleans()):
        limits.min_unit_price = data.draw(st.integers(1, 50000))
    if data.draw(st.booleans()):
        limits.min_unit_price_bp = data.draw(st.integers(1, 10000))
    for p in program.promotions:
        program.arbitration.children.add(promotion=p.id)


@_cases(max(EXAMPLES // 10, 50))
@given(program=programs(max_promotions=10), request=requests(), data=st.data())
def test_engine_agrees_on_wide_max_benefit(
    program: pb.Program, request: cpb.CalculateOrderRequest, data: st.DataObject
) -> None:
    # A flat MAX_BENEFIT main arbitration over every promotion: the widest candidate sets.
    _flat_max_benefit(program, data)
    assert_agree(program, request)


# A price rise (round_price) makes the search value every candidate (engine/core.pyx): kept out
# of the widest groups so that a case stays fast; the generated trees above hold it.
_NOT_SEARCHED = {"round_price"}


def _every_promotion_applies(program: pb.Program) -> None:
    """Every promotion selected and with a rule, its kinds those the search bounds: so that a
    wide group has many children with an effect."""
    for p in program.promotions:
        p.status = pb.PROMOTION_STATUS_ACTIVE
        p.audience.Clear()
        p.audience.kind = pb.AUDIENCE_KIND_EVERYONE
        p.promo_code_pool = ""
        del p.channels[:]
        p.ClearField("availability")
        p.ClearField("period")
        for rule in [*p.product_rules, *p.order_rules]:
            for b in rule.benefits:
                if b.WhichOneof("benefit") in _NOT_SEARCHED:
                    b.Clear()
                    b.discount.percent_bp = 1000
        if not p.product_rules and not p.order_rules:
            p.product_rules.add().benefits.add().discount.percent_bp = 500


@_cases(max(EXAMPLES // 10, 50))
@given(
    program=programs(max_promotions=16),
    request=requests(max_lines=50),
    data=st.data(),
)
def test_engine_agrees_on_max_benefit_up_to_16_wide_and_50_lines(
    program: pb.Program, request: cpb.CalculateOrderRequest, data: st.DataObject
) -> None:
    # The widest group the validator allows, on long orders: the depth-first search of
    # engine/core.pyx, its bounds and its cuts against the reference's plain enumeration.
    _every_promotion_applies(program)
    _flat_max_benefit(program, data)
    assert_agree(program, request)


@_cases(max(EXAMPLES // 10, 50))
@given(program=programs(), orders=st.lists(requests(), min_size=2, max_size=6))
def test_engine_agrees_on_many_orders_of_one_compiled_program(
    program: pb.Program, orders: list[cpb.CalculateOrderRequest]
) -> None:
    # A server compiles a program once and quotes many orders on it: what the compiled program
    # keeps between orders (the promotions passing period, weekday, month, channel and pools,
    # by instant and key) must never carry one order's answer into another's.
    compiled = compile_program(program)
    for request in orders:
        assert_agree(program, request, compiled)
