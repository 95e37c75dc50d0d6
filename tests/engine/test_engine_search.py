"""The MAX_BENEFIT search in C (engine/core.pyx): which groups it takes, and answers pinned by
hand and held to the reference evaluator (the property tests draw thousands more)."""

from __future__ import annotations

import pytest

from arbiter.server.api.translate import order_from_proto
from arbiter.server.engine import calculate, compile_program, core
from arbiter.server.engine import evaluate as evaluate_module
from arbiter.server.engine.trace import calculate_traced
from arbiter.v1 import program_pb2 as pb
from tests.property.test_engine_vs_reference import NOW, assert_agree
from tests.reference._programs import (
    MAX,
    SEQ,
    accrue_pct,
    line,
    off,
    order_rule,
    pay_pct,
    pct,
    product_rule,
    program,
    promo,
    request,
    round_price,
)
from tests.reference._programs import group as make_group


def _search_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, per calculation, whether the C core evaluated its tree (False: it declined)."""
    calls: list[bool] = []
    tree = core.evaluate

    class Recording:
        overflowed = staticmethod(core.overflowed)

        @staticmethod
        def evaluate(*args: object) -> object:
            out = tree(*args)  # type: ignore[arg-type]
            calls.append(out is not None)
            return out

    monkeypatch.setattr(evaluate_module, "core", Recording)
    return calls


def _calculate(prog: pb.Program, req: object) -> object:
    compiled = compile_program(prog)
    order, member = order_from_proto(req, compiled.point_type_ids)  # type: ignore[arg-type]
    return calculate(compiled, order, member, now=NOW)


def test_a_child_whose_order_rule_does_not_apply_pays_nothing_by_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # P2's order rule (pay 50 % with points) is for big orders only: the order is not one, so
    # the searched candidates never pay with points (a rule that does not apply does nothing).
    prog = program(
        [
            promo("p1", product_rule(pct(1000))),
            promo(
                "p2",
                product_rule(off(300)),
                order_rules=[order_rule(pay_pct("bonus", 5000), segments=["big"])],
            ),
            promo("p3", product_rule(accrue_pct("bonus", 500))),
        ],
        make_group(MAX, "p1", "p2", "p3", gid="best"),
        order_segments=[pb.OrderSegment(id="big", min_subtotal=10_000_000)],
    )
    req = request(line("a", 10_000, 2), balances={"bonus": 5_000}, redeem={"bonus": 5_000})
    calls = _search_calls(monkeypatch)
    result = _calculate(prog, req)
    assert calls == [True]
    assert result.totals.paid_with_points == 0  # type: ignore[attr-defined]
    # The best candidate is the three summed: 10 % (2,000) and 300 off each unit (600), and
    # 5 % of 20,000 accrued (in sequence the accrual would see 17,400).
    assert result.totals.discount == 2_600  # type: ignore[attr-defined]
    assert_agree(prog, req)


def test_a_group_where_round_price_may_raise_a_price_is_valued_exhaustively_in_c(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # After 20 % off, 10,990 pays 8,792: rounding to tens raises it to 9,000 (a negative
    # effect, rule 14), so no bound holds and every candidate is valued: 10 % alone (879)
    # beats the sum (879 - 208) and the sequence (879, then 7,913 rounded up to 8,000).
    prog = program(
        [
            promo("p0", product_rule(pct(2000))),
            promo("p1", product_rule(pct(1000))),
            promo("p2", product_rule(round_price(pb.ROUND_MODE_ROUND_TENS))),
        ],
        make_group(SEQ, "p0", make_group(MAX, "p1", "p2", gid="best"), gid="main"),
    )
    req = request(line("a", 10_990))
    calls = _search_calls(monkeypatch)
    result = _calculate(prog, req)
    assert calls == [True]
    assert result.totals.discount == 2_198 + 879  # type: ignore[attr-defined]
    assert_agree(prog, req)


def test_a_group_as_a_max_benefit_child_is_searched_in_c(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The second child is a SEQUENTIAL group: on the first child's state it is evaluated as a
    # whole (its own children in sequence, its limits), like a promotion.
    prog = program(
        [
            promo("p1", product_rule(pct(1000))),
            promo("p2", product_rule(off(500))),
            promo("p3", product_rule(accrue_pct("bonus", 500))),
        ],
        make_group(
            MAX,
            "p1",
            make_group(SEQ, "p2", "p3", gid="inner", limits=pb.Limits(max_discount_bp=400)),
            gid="best",
        ),
    )
    req = request(line("a", 10_000, 2), balances={"bonus": 0})
    calls = _search_calls(monkeypatch)
    _calculate(prog, req)
    assert calls == [True]
    assert_agree(prog, req)


def test_an_amount_above_two_to_the_forty_is_evaluated_by_the_core() -> None:
    # There is no other evaluator: every amount the API accepts is the core's.
    prog = program([promo("p1", product_rule(pct(1000)))], make_group(SEQ, "p1", gid="main"))
    req = request(line("a", 1 << 41))
    compiled = compile_program(prog)
    order, member = order_from_proto(req, compiled.point_type_ids)
    _at, _zone, _sel, _requested, single = evaluate_module.start(
        compiled, order, member, NOW, None
    )
    assert core.evaluate(single, compiled.root) is not None
    assert_agree(prog, req)


@pytest.mark.parametrize("width", [6, 10])
def test_a_wide_group_with_limits_on_a_long_order_agrees_with_the_reference(width: int) -> None:
    promotions = []
    for i in range(width):
        benefit = [pct(300 + 150 * i), off(500 + 100 * i), pay_pct("bonus", 2000 + 500 * i),
                   accrue_pct("bonus", 200 + 100 * i)][i % 4]
        promotions.append(promo(f"p{i}", product_rule(benefit)))
    limits = pb.Limits(max_discount_bp=3500, max_discount_amount=40_000)
    prog = program(
        promotions,
        make_group(MAX, *(p.id for p in promotions), limits=limits, gid="best"),
    )
    lines = [line(f"l{i}", [4990, 12900, 59900, 2490][i % 4], 1 + i % 3) for i in range(30)]
    req = request(*lines, balances={"bonus": 20_000}, redeem={"bonus": 15_000})
    assert_agree(prog, req)


def test_apportioning_large_amounts_multiplies_in_128_bits() -> None:
    # 45 % of 1.7e12 apportioned over two lines near 2^40: each share's product (amount times
    # weight, ~7e23) is far beyond int64; the core divides it in 128 bits.
    prog = program(
        [promo("p1", order_rules=[order_rule(pct(4500))])],
        make_group(SEQ, "p1", gid="main"),
    )
    req = request(line("a", 900_000_000_001), line("b", 799_999_999_999))
    compiled = compile_program(prog)
    order, member = order_from_proto(req, compiled.point_type_ids)
    _at, _zone, _sel, _requested, single = evaluate_module.start(
        compiled, order, member, NOW, None
    )
    assert core.evaluate(single, compiled.root) is not None
    assert_agree(prog, req)


def test_a_group_on_a_large_order_is_traced_as_on_a_small_one() -> None:
    # Above 2^40 the trace values the group with the same search: the same detail as on a
    # small order.
    prog = program(
        [promo("p1", product_rule(pct(1000))), promo("p2", product_rule(off(500)))],
        make_group(MAX, "p1", "p2", gid="best"),
    )
    details = []
    for price in (1 << 41, 10_000):
        compiled = compile_program(prog)
        order, member = order_from_proto(request(line("a", price)), compiled.point_type_ids)
        result, trace = calculate_traced(compiled, order, member, now=NOW)
        assert result == calculate(compiled, order, member, now=NOW)
        details.append(trace[0].detail)
    # 10 % and 500 off summed, tied with their sequence (the summation first, rule 12).
    chosen = "chosen: p1, p2; mode: SUMMATION; candidates valued: 4; runner-up benefit: "
    assert details[0] == chosen + str((1 << 41) // 10 + 500)
    assert details[1] == chosen + "1500"
