"""The traced calculation answers what CalculateOrder answers, byte for byte, and its trace
holds together (docs/engine.md, "The decision trace"), over the generated programs and orders
of the engine-versus-reference tests. Cases: ARBITER_PROPERTY_EXAMPLES / 4 (at least 100).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbiter.server.api.translate import order_from_proto, result_to_proto
from arbiter.server.engine import CompiledProgram, calculate, compile_program
from arbiter.server.engine.compile import CNode
from arbiter.server.engine.evaluate import start
from arbiter.server.engine.single import State
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
    Tracer,
    calculate_traced,
)
from arbiter.v1 import checkout_pb2 as cpb
from arbiter.v1 import program_pb2 as pb
from tests.property.strategies import programs, requests

EXAMPLES = max(int(os.environ.get("ARBITER_PROPERTY_EXAMPLES", "2000")) // 4, 100)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

CASES = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _tree_order(compiled: CompiledProgram) -> list[tuple[str, str, str]]:
    """(node, parent, kind) of every node, depth first, a group before its children."""
    out: list[tuple[str, str, str]] = []

    def visit(node: CNode, parent: str) -> None:
        if node.promotion >= 0:
            out.append((compiled.promotions[node.promotion].id, parent, PROMOTION))
            return
        out.append((node.group_id, parent, GROUP))
        for child in node.children:
            visit(child, node.group_id)

    visit(compiled.root, "")
    return out


def check_trace(program: pb.Program, request: cpb.CalculateOrderRequest) -> None:
    compiled = compile_program(program)
    order, member = order_from_proto(request, compiled.point_type_ids)
    plain = calculate(compiled, order, member, now=NOW)
    traced, trace = calculate_traced(compiled, order, member, now=NOW)
    # The result, byte for byte.
    assert (
        result_to_proto(traced, 7).SerializeToString()
        == result_to_proto(plain, 7).SerializeToString()
    )
    # One entry per node, in tree order.
    assert [(e.node, e.parent, e.kind) for e in trace] == _tree_order(compiled)
    # The tracer's own walk of the tree reaches the calculation's entries.
    _at, _zone, sel, _requested, single, state = start(compiled, order, member, NOW, None)
    initial = State(list(state.pay), list(state.pm), list(state.budget), state.ship)
    entries = single.evaluate(compiled.root, state)
    walked = Tracer(compiled, single, len(order.lines)).walk(compiled.root, initial, "")
    assert sorted(walked) == sorted(entries)

    by_promotion: dict[str, TraceEntry] = {e.node: e for e in trace if e.kind == PROMOTION}
    live = {p.id: sel.live[p.index] for p in compiled.promotions}
    in_result = {row.promotion for row in plain.benefits}
    for e in trace:
        assert e.cut >= 0
        assert (e.verdict == CUT) == (e.cut > 0), e
        assert bool(e.reason) == (e.verdict == NOT_SELECTED), e
        if e.verdict == NOT_SELECTED:
            assert e.kind == PROMOTION and e.reason in REASONS and not live[e.node]
        if e.verdict in (NOT_SELECTED, NO_EFFECT, OUTRANKED):
            assert e.benefit == 0 and not e.line_ids, e
        if e.verdict == OUTRANKED:
            assert e.detail, e
    for pid in in_result:
        assert by_promotion[pid].verdict in (APPLIED, CUT), (pid, by_promotion[pid])
    line_order = [line.id for line in order.lines]
    for pid, e in by_promotion.items():
        rows = {row.line_id for row in plain.benefits if row.promotion == pid and row.line_id}
        assert set(e.line_ids) >= rows
        assert list(e.line_ids) == [i for i in line_order if i in e.line_ids]
    # The root holds the whole result: its benefit is the result's money and points.
    root = trace[0]
    money = plain.totals.discount + plain.totals.paid_with_points + plain.totals.shipping_discount
    points_money = 0
    for change in plain.points:
        t = compiled.point_types[compiled.point_type_index[change.point_type]]
        pts = change.accrued + change.accrued_pending
        points_money += (2 * pts * t.ratio_money + t.ratio_points) // (2 * t.ratio_points)
    if root.verdict in (APPLIED, CUT):
        assert root.benefit == money + points_money
    else:
        assert money == 0 and not plain.benefits


@CASES
@given(program=programs(), request=requests())
def test_traced_result_equals_calculate_and_the_trace_holds(
    program: pb.Program, request: cpb.CalculateOrderRequest
) -> None:
    check_trace(program, request)


@settings(CASES, max_examples=max(EXAMPLES // 4, 50))
@given(program=programs(max_promotions=8), request=requests(), data=st.data())
def test_trace_of_a_wide_max_benefit_group(
    program: pb.Program, request: cpb.CalculateOrderRequest, data: st.DataObject
) -> None:
    # Every promotion in one MAX_BENEFIT main arbitration: the batched search decides the
    # result, the tracer values every candidate; both must pick the same one.
    program.arbitration.Clear()
    program.arbitration.id = "main"
    program.arbitration.mode = pb.ARBITRATION_MODE_MAX_BENEFIT
    if data.draw(st.booleans()):
        program.arbitration.limits.max_discount_amount = data.draw(st.integers(1, 200000))
    for p in program.promotions:
        program.arbitration.children.add(promotion=p.id)
    check_trace(program, request)
