"""Amounts at the edge of what the API accepts (docs/rules.md, "The range of the arithmetic"):
products that leave int64 before their division are computed through 128 bits, so the results
agree with the reference evaluator's; a result that does not fit int64 is refused, naming the
order."""

from __future__ import annotations

import random
from typing import Any

import pytest

from arbiter.server.api.translate import MAX_MONEY_MINOR, order_from_proto
from arbiter.server.engine import calculate, compile_program, core
from arbiter.server.engine import evaluate as evaluate_module
from arbiter.server.engine.errors import InvalidOrder
from arbiter.server.engine.trace import calculate_traced
from arbiter.v1 import program_pb2 as pb
from tests.property.test_engine_vs_reference import NOW, assert_agree
from tests.reference._programs import (
    INC,
    MAX,
    SEQ,
    SUM,
    accrue_fixed,
    accrue_pct,
    line,
    off,
    order_rule,
    pay_amount,
    pay_pct,
    pay_points,
    pct,
    per_spent,
    point_type,
    product_rule,
    program,
    promo,
    request,
    run,
    ship_off,
)
from tests.reference._programs import group as make_group

# Ten lines just under 10^12 minor units each: every line below the core's 2^40, the subtotal
# (9,999,999,999,990) within MAX_MONEY_MINOR.
LINES = [line(f"l{i}", 999_999_999_999) for i in range(10)]
SUBTOTAL = 10 * 999_999_999_999


def _accrued(benefit_rule: pb.ProductRule | None, order_benefit: pb.Benefit | None) -> int:
    rules = {"order_rules": [order_rule(order_benefit)]} if order_benefit is not None else {}
    promotion = promo("p1", *([benefit_rule] if benefit_rule else []),
                      kind=pb.PROMOTION_KIND_POINTS, **rules)  # type: ignore[arg-type]
    compiled = compile_program(program([promotion], make_group(SEQ, "p1", gid="main")))
    order, member = order_from_proto(request(*LINES), compiled.point_type_ids)
    result = calculate(compiled, order, member, now=NOW)
    return sum(p.accrued for p in result.points)


def test_the_order_is_within_the_apis_bounds() -> None:
    assert SUBTOTAL <= MAX_MONEY_MINOR


def test_a_100x_accrual_on_a_large_order_is_exact() -> None:
    # 100x the subtotal at one point per 100 kopecks fits int64; the subtotal times 10^6 bp
    # does not: round_bp multiplies through 128 bits there (it came out negative before).
    assert _accrued(None, accrue_pct("bonus", 1_000_000)) == SUBTOTAL


@pytest.mark.parametrize("ratio", [(1, 100), (1_000, 1), (999_983, 7), (1, 999_983)])
@pytest.mark.parametrize("promotion", ["accrue", "pay"])
@pytest.mark.parametrize("mode", [SEQ, MAX])
@pytest.mark.parametrize(
    "lines",
    [LINES, [line(f"l{i}", 2_400_000_000_000) for i in range(4)]],
    ids=["below-2^40", "above-2^40"],
)
def test_ratios_times_large_amounts_agree_with_the_reference(
    ratio: tuple[int, int], promotion: str, mode: int, lines: list[Any]
) -> None:
    # A point ratio near 2^20 times an amount near 10^13 leaves int64 before its division:
    # the products go through 128 bits (mul_floor, mul_half_up in core.pyx).
    points, money = ratio
    benefit = (accrue_pct("bonus", 20_000) if promotion == "accrue"
               else pay_pct("bonus", 5_000))
    kind = pb.PROMOTION_KIND_POINTS if promotion == "accrue" else pb.PROMOTION_KIND_DISCOUNT
    prog = program(
        [promo("p1", order_rules=[order_rule(benefit)], kind=kind),
         promo("p2", product_rule(benefit), kind=kind)],
        make_group(mode, "p1", "p2", gid="main"),
        point_types=[point_type("bonus", points, money)],
    )
    # 10^15 points asked and held: the core reads a budget that large whole.
    req = request(*lines, balances={"bonus": 10**15}, redeem={"bonus": 10**15})
    compiled = compile_program(prog)
    order, member = order_from_proto(req, compiled.point_type_ids)
    single = evaluate_module.start(compiled, order, member, NOW, None)[4]
    assert core.evaluate(single, compiled.root) is not None
    assert_agree(prog, req)


@pytest.mark.parametrize("level", ["product", "order"])
@pytest.mark.parametrize("path", ["below-2^40", "above-2^40"])
def test_a_result_beyond_int64_is_refused_naming_the_order(level: str, path: str) -> None:
    # 10^6 points per kopeck spent on ~10^13 kopecks: 10^19 points, more than int64 holds.
    benefit = per_spent("bonus", 1_000_000, 1)
    rules: dict[str, Any] = (
        {"order_rules": [order_rule(benefit)]} if level == "order" else {}
    )
    promotion = promo("p1", *([product_rule(benefit)] if level == "product" else []),
                      kind=pb.PROMOTION_KIND_POINTS, **rules)
    compiled = compile_program(program([promotion], make_group(SEQ, "p1", gid="main")))
    lines = LINES if path == "below-2^40" else [line(f"l{i}", 2_400_000_000_000) for i in range(4)]
    order, member = order_from_proto(request(*lines), compiled.point_type_ids)
    with pytest.raises(InvalidOrder) as refused:
        calculate(compiled, order, member, now=NOW)
    assert [v.field for v in refused.value.violations] == ["order"]
    assert "64-bit" in refused.value.violations[0].description
    with pytest.raises(InvalidOrder):
        calculate_traced(compiled, order, member, now=NOW)
    # The next calculation, within range, is not refused by what the last one left.
    small, member = order_from_proto(request(line("a", 100)), compiled.point_type_ids)
    assert sum(p.accrued for p in calculate(compiled, small, member, now=NOW).points) > 0


def _extreme_benefit(rng: random.Random) -> tuple[pb.Benefit, bool]:
    """A benefit with a value drawn toward the edges of the range, and whether it accrues."""
    value = rng.choice([1, 7, 5_000, 10**6, 10**9, 10**12, 2**41, 2**50])
    bp = rng.choice([1, 3_333, 5_000, 10_000])
    makers = [
        lambda: (pct(bp), False),
        lambda: (off(value), False),
        lambda: (pay_pct("bonus", bp), False),
        lambda: (pay_amount("bonus", value), False),
        lambda: (pay_points("bonus", value), False),
        lambda: (accrue_pct("bonus", rng.choice([100, 20_000, 1_000_000])), True),
        lambda: (accrue_fixed("bonus", value), True),
        lambda: (per_spent("bonus", rng.choice([1, 100, 10**4]), rng.choice([1, 100, 10**6])),
                 True),
        lambda: (ship_off(value), False),
    ]
    return rng.choice(makers)()


@pytest.mark.parametrize("seed", range(3))
def test_random_programs_at_the_edges_agree_or_are_refused_as_the_reference_fails(
    seed: int,
) -> None:
    # Amounts up to 10^13, values up to 2^50, ratios up to a million, in every group mode:
    # the engine agrees with the reference evaluator, or refuses exactly when the reference's
    # result does not fit int64 (its response cannot be encoded).
    rng = random.Random(seed)
    agreed = refused = 0
    for _ in range(120):
        promotions = []
        for i in range(rng.randrange(1, 5)):
            benefit, accrues = _extreme_benefit(rng)
            at_order = benefit.HasField("shipping_discount") or rng.random() < 0.3
            kind = pb.PROMOTION_KIND_POINTS if accrues else pb.PROMOTION_KIND_DISCOUNT
            promotions.append(promo(
                f"p{i}", *([] if at_order else [product_rule(benefit)]),
                order_rules=[order_rule(benefit)] if at_order else [], kind=kind,
            ))
        limits = (pb.Limits(max_discount_bp=5_000, max_discount_amount=10**12)
                  if rng.random() < 0.3 else None)
        prog = program(
            promotions,
            make_group(rng.choice([SEQ, SUM, INC, MAX]), *(p.id for p in promotions),
                       gid="main", limits=limits),
            point_types=[point_type("bonus", rng.choice([1, 7, 999_983]),
                                    rng.choice([1, 100, 999_983]))],
        )
        price = rng.choice([10**13 // 7, 10**12, 2**40 + 7, 10**9, 12_345])
        req = request(
            line("a", price, 7 if price == 10**13 // 7 else rng.choice([1, 3])),
            balances={"bonus": rng.choice([0, 10**6, 10**15])},
            redeem={"bonus": rng.choice([0, 10**15])},
            shipping=rng.choice([0, 10**12]),
        )
        try:
            assert_agree(prog, req)
            agreed += 1
        except InvalidOrder:
            with pytest.raises(ValueError, match="out of range"):
                run(prog, req)  # the reference's result does not fit int64 either
            refused += 1
    assert agreed > 100
