"""The MAX_BENEFIT search in C (engine/core.pyx): which groups it takes, and answers pinned by
hand and held to the reference evaluator (the property tests draw thousands more)."""

from __future__ import annotations

import pytest

from arbiter.server.api.translate import order_from_proto
from arbiter.server.engine import calculate, compile_program, core
from arbiter.server.engine import single as single_module
from arbiter.v1 import program_pb2 as pb
from tests.property.test_engine_vs_reference import NOW, assert_agree
from tests.reference._programs import (
    MAX,
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
    """Record, per MAX_BENEFIT group, whether the C search answered (False: it declined)."""
    calls: list[bool] = []
    search = core.max_benefit

    class Recording:
        @staticmethod
        def max_benefit(*args: object) -> object:
            out = search(*args)  # type: ignore[arg-type]
            calls.append(out is not None)
            return out

    monkeypatch.setattr(single_module, "core", Recording)
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


def test_a_group_holding_a_kind_it_does_not_handle_is_left_to_the_python_search(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prog = program(
        [
            promo("p1", product_rule(pct(1000))),
            promo("p2", product_rule(round_price(pb.ROUND_MODE_FLOOR_TENS))),
        ],
        make_group(MAX, "p1", "p2", gid="best"),
    )
    req = request(line("a", 10_990))
    calls = _search_calls(monkeypatch)
    _calculate(prog, req)
    assert calls == [False]
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
