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
from arbiter.server.engine.compile import CNode, candidate_plan
from arbiter.server.engine.evaluate import start
from arbiter.server.engine.single import Entry, Single, State
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


def enumerated(
    compiled: CompiledProgram, single: Single, node: CNode, s: State
) -> tuple[int, int, int, bool, list[str]]:
    """A MAX_BENEFIT group's candidates built and valued one by one, plainly (docs/rules.md): their
    number, the winner's value, the best value of the others, whether the winner is a
    sequence, and the winner's children (the tracer's detail must agree)."""
    children = [(c, single.evaluate(c, s)) for c in node.children if single.live(c)]
    children = [(c, e) for c, e in children if e]
    values: list[int] = []
    after: dict[int, list[Entry]] = {}
    plan = candidate_plan(len(children))
    for mask, sequential in zip(plan.masks, plan.sequential, strict=True):
        members = [i for i in range(len(children)) if mask >> i & 1]
        if sequential:
            entries = after[mask & ~(1 << members[-1])]
            step = single.evaluate(children[members[-1]][0], single.apply(s, entries))
            candidate = entries + step
            after[mask] = candidate
        elif len(members) == 1:
            candidate = after[mask] = children[members[0]][1]
        else:
            candidate = single.valid([x for i in members for x in children[i][1]], s)
        if node.has_limits and candidate:
            candidate = single.limits(node, candidate, s)
        values.append(single._benefit_of(candidate))
    best = max(range(len(values)), key=lambda i: (values[i], -i))
    others = [v for i, v in enumerate(values) if i != best]
    mask = plan.masks[best]
    names = [
        compiled.promotions[child.promotion].id if child.promotion >= 0 else child.group_id
        for i, (child, _) in enumerate(children)
        if mask >> i & 1
    ]
    return (
        len(values),
        values[best],
        max(others) if others else 0,
        bool(plan.sequential[best]),
        names,
    )


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
    _at, _zone, sel, _requested, single = start(compiled, order, member, NOW, None)
    entries = single.evaluate(compiled.root, single.initial())
    walked = Tracer(compiled, single, len(order.lines)).walk(compiled.root, single.initial(), "")
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
    root_node = compiled.root
    if root_node.mode == pb.ARBITRATION_MODE_MAX_BENEFIT and trace[0].verdict in (APPLIED, CUT):
        count, value, runner_up, sequential, names = enumerated(
            compiled, single, root_node, single.initial()
        )
        detail = trace[0].detail
        assert detail.startswith(f"chosen: {', '.join(names)}; "), (detail, names)
        assert f"candidates valued: {count};" in detail, (detail, count)
        assert f"runner-up benefit: {runner_up if count > 1 else 'none'}" in detail
        assert (" SEQUENTIAL;" in detail) == (sequential and len(names) > 1)
        assert trace[0].benefit == value
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


@settings(CASES, max_examples=max(EXAMPLES // 4, 50))
@given(
    children=st.lists(
        st.tuples(
            st.integers(100, 6000),  # percent_bp
            st.sampled_from(["all", "s1", "s2", "order", "points"]),
        ),
        min_size=4,
        max_size=7,
    ),
    cap=st.sampled_from([0, 0, 5000, 20000]),
    prices=st.lists(st.sampled_from([999, 4999, 10000, 33333]), min_size=1, max_size=4),
)
def test_runner_up_of_a_pruned_max_benefit_search_is_exact(
    children: list[tuple[int, str]], cap: int, prices: list[int]
) -> None:
    # At least four children with an effect: more than 16 candidates, so the batched search
    # prunes by bounds; the traced search must still find the exact runner-up.
    program = pb.Program(id="w", name="W", currency="RUB", time_zone="UTC")
    program.point_types.add(
        id="bonus",
        name="B",
        kind=pb.POINT_KIND_STANDARD,
        active=True,
        ratio=pb.Ratio(points=1, money=100),
    )
    program.product_segments.add(id="s1", skus=["s1"])
    program.product_segments.add(id="s2", skus=["s2"])
    program.arbitration.id = "main"
    program.arbitration.mode = pb.ARBITRATION_MODE_MAX_BENEFIT
    program.arbitration.limits.max_discount_amount = cap
    for i, (bp, where) in enumerate(children):
        p = program.promotions.add(id=f"c{i}", name=f"c{i}", status=pb.PROMOTION_STATUS_ACTIVE)
        p.audience.kind = pb.AUDIENCE_KIND_EVERYONE
        program.arbitration.children.add(promotion=p.id)
        if where == "order":
            p.order_rules.add().benefits.add().discount.percent_bp = bp
            continue
        rule = p.product_rules.add()
        if where in ("s1", "s2"):
            rule.scope.kind = pb.SCOPE_KIND_IN_SEGMENTS
            rule.scope.segments.append(where)
        benefit = rule.benefits.add()
        if where == "points":
            benefit.accrue_points.point_type = "bonus"
            benefit.accrue_points.percent_bp = bp
        else:
            benefit.discount.percent_bp = bp
    request = cpb.CalculateOrderRequest(program="w", member_id="m")
    request.member_context.SetInParent()
    request.order.id = "o"
    request.order.created_at.FromSeconds(1_800_000_000)
    for i, price in enumerate(prices):
        request.order.lines.add(
            id=f"l{i}", sku=["s1", "s2", "x"][i % 3], quantity=1, unit_price=price
        )
    check_trace(program, request)
