"""The reference evaluator on the golden examples (docs/contract.md) and the four group modes.

Every expected number is computed by hand in the comment beside it. Money is in kopecks.
"""

import pytest

from arbiter.server import reference
from arbiter.v1 import program_pb2 as pb

from ._programs import (
    INC,
    MAX,
    SEQ,
    SUM,
    check_invariants,
    discounts,
    finals,
    group,
    line,
    off,
    order_rule,
    pay_pct,
    pct,
    points_changes,
    points_paid,
    product_rule,
    program,
    promo,
    request,
    rows,
    run,
)


def test_public_names() -> None:
    assert reference.__all__ == ["ReferenceProgram", "evaluate", "prepare"]


# --- The golden examples: the all-in-one PC at 100,000.00 RUB -------------------------------------

PC = 10_000_000  # 100,000.00 RUB in kopecks


def _golden_program(arbitration: pb.Group | None) -> pb.Program:
    birthday = promo("a", product_rule(pct(2000)), name="Birthday 20 %")
    points = promo(
        "b", product_rule(pay_pct("bonus", 1500)), kind=pb.PROMOTION_KIND_POINTS, name="15 %"
    )
    return program([birthday, points], arbitration)


def _golden_request() -> object:
    # 1 point = 1 RUB; the member holds 50,000 points and asks to redeem 50,000.
    return request(line("pc", PC), balances={"bonus": 50_000}, redeem={"bonus": 50_000})


@pytest.mark.parametrize(
    ("mode", "money", "with_points", "total_discount"),
    [
        # 100,000 -20 % = 80,000; 15 % of 80,000 = 12,000 in points; 68,000 in money.
        (SEQ, 6_800_000, 1_200_000, 3_200_000),
        # A is first and has an effect: B is not applied.
        (INC, 8_000_000, 0, 2_000_000),
        # 20 % and 15 % both of 100,000.
        (SUM, 6_500_000, 1_500_000, 3_500_000),
        # candidates 80,000 / 85,000 / 65,000 (sum) / 68,000 (sequential): 65,000.
        (MAX, 6_500_000, 1_500_000, 3_500_000),
    ],
)
def test_golden_table(mode: int, money: int, with_points: int, total_discount: int) -> None:
    response = run(_golden_program(group(mode, "a", "b")), _golden_request())  # type: ignore[arg-type]
    check_invariants(response)
    assert response.totals.total == money
    assert response.totals.paid_with_points == with_points
    assert response.totals.discount + response.totals.paid_with_points == total_discount
    assert finals(response) == [money]
    assert points_changes(response) == [("bonus", 50_000, with_points // 100, 0, 0)]


def test_golden_sequential_rows() -> None:
    response = run(_golden_program(group(SEQ, "a", "b")), _golden_request())  # type: ignore[arg-type]
    assert rows(response) == [
        ("pc", "a", "discount", 2_000_000, 0),
        ("pc", "b", "pay_with_points", 1_200_000, 12_000),
    ]
    assert [b.promotion_kind for b in response.benefits] == ["DISCOUNT", "POINTS"]
    assert response.benefits[1].point_type == "bonus"
    assert response.program_version == 7


def test_golden_incompatible_b_before_a() -> None:
    response = run(_golden_program(group(INC, "b", "a")), _golden_request())  # type: ignore[arg-type]
    check_invariants(response)
    assert response.totals.total == 8_500_000
    assert response.totals.paid_with_points == 1_500_000
    assert response.totals.discount == 0
    assert points_changes(response) == [("bonus", 50_000, 15_000, 0, 0)]
    assert rows(response) == [("pc", "b", "pay_with_points", 1_500_000, 15_000)]


def test_unlisted_promotions_sit_at_the_end_of_the_main_arbitration() -> None:
    # b is listed by no group: it comes after a, as in the SEQUENTIAL golden row.
    response = run(_golden_program(group(SEQ, "a")), _golden_request())  # type: ignore[arg-type]
    assert response.totals.total == 6_800_000
    # a unlisted: it comes after b, so INCOMPATIBLE keeps b.
    response = run(_golden_program(group(INC, "b")), _golden_request())  # type: ignore[arg-type]
    assert response.totals.total == 8_500_000


def test_golden_sum_under_a_30_percent_root_limit_cuts_points_first() -> None:
    # cap = 30 % of 100,000 = 30,000; the sum adds 35,000: 5,000 comes off the points (rule 11),
    # which keep floor(10,000.00 / 1 RUB) = 10,000 points.
    limited = group(SUM, "a", "b", limits=pb.Limits(max_discount_bp=3000))
    response = run(_golden_program(limited), _golden_request())  # type: ignore[arg-type]
    check_invariants(response)
    assert discounts(response) == [2_000_000]
    assert points_paid(response) == [1_000_000]
    assert points_changes(response) == [("bonus", 50_000, 10_000, 0, 0)]


# --- SEQUENTIAL ---------------------------------------------------------------------------------


def test_sequential_discounts_compound_and_share_the_budget() -> None:
    # a: 10 % of 1000 = 100 -> 900; b: 50 of every unit -> 850; c pays 300 per unit in points but
    # the budget is 5 points (5.00): c takes 3 points = 300, d the 2 left = 200.
    prog = program(
        [
            promo("a", product_rule(pct(1000))),
            promo("b", product_rule(off(50))),
            promo("c", product_rule(_pay_amount(300))),
            promo("d", product_rule(_pay_amount(300))),
        ],
        group(SEQ, "a", "b", "c", "d"),
    )
    response = run(prog, request(line("l", 1000), balances={"bonus": 5}, redeem={"bonus": 9}))
    check_invariants(response)
    assert rows(response) == [
        ("l", "a", "discount", 100, 0),
        ("l", "b", "discount", 50, 0),
        ("l", "c", "pay_with_points", 300, 3),
        ("l", "d", "pay_with_points", 200, 2),
    ]
    assert finals(response) == [350]
    assert points_changes(response) == [("bonus", 9, 5, 0, 0)]


def _pay_amount(amount: int) -> pb.Benefit:
    return pb.Benefit(pay_with_points=pb.PayWithPoints(point_type="bonus", amount=amount))


# --- INCOMPATIBLE -------------------------------------------------------------------------------

SEGMENT_X = pb.ProductSegment(id="x", skus=["x"])


def _incompatible_program(*order: str) -> pb.Program:
    # a: 10 % on line x only; b: 20 % on every line and 50 points for the order.
    return program(
        [
            promo("a", product_rule(pct(1000), segments=["x"])),
            promo(
                "b",
                product_rule(pct(2000)),
                order_rules=[order_rule(_accrue(50))],
            ),
        ],
        group(INC, *order),
        product_segments=[SEGMENT_X],
    )


def _accrue(points: int) -> pb.Benefit:
    return pb.Benefit(accrue_points=pb.AccruePoints(point_type="bonus", points=points))


def test_incompatible_is_decided_per_line_and_order_level_apart() -> None:
    # line x: a is the first child with a PRODUCT effect on it (100); line y: only b (400);
    # ORDER level: only b has one (50 points): rule 5, the winners may differ.
    response = run(_incompatible_program("a", "b"), request(line("x", 1000), line("y", 2000)))
    check_invariants(response)
    assert rows(response) == [
        ("x", "a", "discount", 100, 0),
        ("y", "b", "discount", 400, 0),
        ("", "b", "accrue_points", 0, 50),
    ]
    assert points_changes(response) == [("bonus", 0, 0, 50, 0)]


def test_incompatible_b_first_takes_every_line() -> None:
    response = run(_incompatible_program("b", "a"), request(line("x", 1000), line("y", 2000)))
    assert rows(response) == [
        ("x", "b", "discount", 200, 0),
        ("y", "b", "discount", 400, 0),
        ("", "b", "accrue_points", 0, 50),
    ]


def test_incompatible_product_and_order_winners_share_the_budget() -> None:
    # a pays 100 % of line x (1000 -> 10 points); b pays 100 % of the order (3000 -> 30, bounded
    # by the budget: 10), spread 1000:2000 -> 3.33/6.67 -> 3 and 7. The sum (20) is cut to the
    # budget (10) in proportion to the entries 10, 3, 7 -> 5, 1.5, 3.5 -> 5, 1, 3 and the unit
    # left goes to the tie at .5 earlier in tree order (b on x): cuts 5, 2, 3 (rule 6a).
    prog = program(
        [
            promo("a", product_rule(pay_pct("bonus", 10000), segments=["x"])),
            promo("b", order_rules=[order_rule(pay_pct("bonus", 10000))]),
        ],
        group(INC, "a", "b"),
        product_segments=[SEGMENT_X],
    )
    response = run(
        prog,
        request(line("x", 1000), line("y", 2000), balances={"bonus": 10}, redeem={"bonus": 10}),
    )
    check_invariants(response)
    assert rows(response) == [
        ("x", "a", "pay_with_points", 500, 5),
        ("x", "b", "pay_with_points", 100, 1),
        ("y", "b", "pay_with_points", 400, 4),
    ]
    assert points_changes(response) == [("bonus", 10, 10, 0, 0)]


def test_incompatible_child_without_change_does_not_block() -> None:
    # z is eligible but asks for points nobody redeems: no effect, so a applies (rule 4).
    prog = program(
        [promo("z", product_rule(pay_pct("bonus", 5000))), promo("a", product_rule(pct(1000)))],
        group(INC, "z", "a"),
    )
    response = run(prog, request(line("l", 1000), balances={"bonus": 100}))
    assert rows(response) == [("l", "a", "discount", 100, 0)]


def test_incompatible_text_is_an_effect_and_blocks() -> None:
    prog = program(
        [
            promo("t", product_rule(_text("hello"))),
            promo("a", product_rule(pct(1000))),
        ],
        group(INC, "t", "a"),
    )
    response = run(prog, request(line("l", 1000)))
    assert rows(response) == []
    assert list(response.texts) == ["hello"]


def _text(template: str) -> pb.Benefit:
    return pb.Benefit(text=pb.Text(template=template))


# --- SUMMATION and rule 6 -------------------------------------------------------------------------


def test_summation_over_the_price_is_cut_in_proportion() -> None:
    # 600 + 600 on 1000: 200 too much, cut 100 from each (rule 6b).
    prog = program(
        [promo("a", product_rule(pct(6000))), promo("b", product_rule(pct(6000)))],
        group(SUM, "a", "b"),
    )
    response = run(prog, request(line("l", 1000)))
    check_invariants(response)
    assert rows(response) == [("l", "a", "discount", 500, 0), ("l", "b", "discount", 500, 0)]
    assert finals(response) == [0]


def test_summation_cuts_points_first() -> None:
    # p pays the whole 1000 (10 points), d takes 50 % (500): 500 too much comes off the points,
    # which keep floor(500 / 100) = 5 points.
    prog = program(
        [promo("p", product_rule(pay_pct("bonus", 10000))), promo("d", product_rule(pct(5000)))],
        group(SUM, "p", "d"),
    )
    response = run(prog, request(line("l", 1000), balances={"bonus": 100}, redeem={"bonus": 100}))
    check_invariants(response)
    assert rows(response) == [
        ("l", "p", "pay_with_points", 500, 5),
        ("l", "d", "discount", 500, 0),
    ]


def test_cutting_points_keeps_whole_points_and_does_not_give_back_the_overshoot() -> None:
    # 1 point = 3.00: p's cap 1000 buys 3 points = 900; d takes 500; 400 too much. The points keep
    # floor((900 - 400) / 300) = 1 point = 300, removing 600; the 200 overshoot stays (rule 7).
    prog = program(
        [promo("p", product_rule(pay_pct("b3", 10000))), promo("d", product_rule(pct(5000)))],
        group(SUM, "p", "d"),
        point_types=[pb.PointType(id="b3", active=True, ratio=pb.Ratio(points=1, money=300))],
    )
    response = run(prog, request(line("l", 1000), balances={"b3": 10}, redeem={"b3": 10}))
    check_invariants(response)
    assert rows(response) == [
        ("l", "p", "pay_with_points", 300, 1),
        ("l", "d", "discount", 500, 0),
    ]
    assert finals(response) == [200]


# --- MAX_BENEFIT --------------------------------------------------------------------------------


def test_max_benefit_prefers_fewer_children_on_a_tie() -> None:
    # c1 and c2 give 50 each, c3 gives 100; under a 100 cap {c1, c2} and {c3} (and every larger
    # subset) are worth 100: {c3} wins with fewer children although (1, 2) sorts before (3,).
    prog = program(
        [
            promo("c1", product_rule(off(50))),
            promo("c2", product_rule(off(50))),
            promo("c3", product_rule(pct(1000))),
        ],
        group(MAX, "c1", "c2", "c3", limits=pb.Limits(max_discount_amount=100)),
    )
    response = run(prog, request(line("l", 1000)))
    assert rows(response) == [("l", "c3", "discount", 100, 0)]


def test_max_benefit_prefers_the_lexicographically_smaller_subset() -> None:
    # 10, 45, 55, 90 under a 100 cap: no single child reaches 100; the pairs {c1,c4}, {c2,c3},
    # {c2,c4}, {c3,c4} do; {c1,c4} = (1, 4) comes before (2, 3).
    prog = program(
        [promo(f"c{i}", product_rule(off(a))) for i, a in ((1, 10), (2, 45), (3, 55), (4, 90))],
        group(MAX, "c1", "c2", "c3", "c4", limits=pb.Limits(max_discount_amount=100)),
    )
    response = run(prog, request(line("l", 1000)))
    assert rows(response) == [("l", "c1", "discount", 10, 0), ("l", "c4", "discount", 90, 0)]


def test_max_benefit_prefers_summation_to_sequential_on_a_tie() -> None:
    # sum 100 + 100, sequential 100 + 90; both capped at 150. Sum: 50 cut 25/25 -> 75, 75.
    # (Sequential would have been 79, 71.)
    prog = program(
        [promo("c1", product_rule(pct(1000))), promo("c2", product_rule(pct(1000)))],
        group(MAX, "c1", "c2", limits=pb.Limits(max_discount_amount=150)),
    )
    response = run(prog, request(line("l", 1000)))
    assert rows(response) == [("l", "c1", "discount", 75, 0), ("l", "c2", "discount", 75, 0)]


def test_max_benefit_can_choose_the_sequential_candidate() -> None:
    # 1 point = 3.00. p pays 3 points (900) of 1000; d takes 50 %.
    # sum: 900 + 500 -> cut 400 from the points: 1 point (300) + 500 = 800;
    # sequential p then d: 900 + 50 % of 100 = 950: the best.
    prog = program(
        [promo("p", product_rule(pay_pct("b3", 10000))), promo("d", product_rule(pct(5000)))],
        group(MAX, "p", "d"),
        point_types=[pb.PointType(id="b3", active=True, ratio=pb.Ratio(points=1, money=300))],
    )
    response = run(prog, request(line("l", 1000), balances={"b3": 10}, redeem={"b3": 10}))
    check_invariants(response)
    assert rows(response) == [
        ("l", "p", "pay_with_points", 900, 3),
        ("l", "d", "discount", 50, 0),
    ]


def test_max_benefit_counts_a_price_rise_negatively() -> None:
    # a takes 40 off 100.00; then r would round 99.60 back up to 100.00 (-40) and c takes 10.
    # {r} = -40, {c} = 10, {r, c} = -30: c alone wins.
    prog = program(
        [
            promo("a", product_rule(off(40))),
            promo("r", product_rule(_round(pb.ROUND_MODE_ROUND_INTEGER))),
            promo("c", product_rule(off(10))),
        ],
        group(SEQ, "a", group(MAX, "r", "c")),
    )
    response = run(prog, request(line("l", 10_000)))
    assert rows(response) == [("l", "a", "discount", 40, 0), ("l", "c", "discount", 10, 0)]


def _round(mode: int) -> pb.Benefit:
    return pb.Benefit(round_price=pb.RoundPrice(mode=mode))  # type: ignore[arg-type]


def test_max_benefit_values_accruals_at_the_ratio() -> None:
    # 1 point = 0.01. d: 10 % = 100; q: 50 % of the base in points. Sum: 100 + 500 points (5.00)
    # = 600; sequential: 100 + 450 = 550. The sum wins, with its 500 points.
    prog = program(
        [
            promo("d", product_rule(pct(1000))),
            promo(
                "q",
                product_rule(
                    pb.Benefit(accrue_points=pb.AccruePoints(point_type="q", percent_bp=5000))
                ),
            ),
        ],
        group(MAX, "d", "q"),
        point_types=[
            pb.PointType(
                id="q",
                kind=pb.POINT_KIND_QUALIFICATION,
                active=True,
                ratio=pb.Ratio(points=1, money=1),
            )
        ],
    )
    response = run(prog, request(line("l", 1000)))
    assert rows(response) == [("l", "d", "discount", 100, 0), ("l", "q", "accrue_points", 0, 500)]


# --- nested groups ------------------------------------------------------------------------------


def test_nested_max_benefit_inside_sequential() -> None:
    # MAX{a 10 % = 100, b 150 off}: sum 250 = sequential 250 -> summation; then c accrues 10 % of
    # what is left (750 -> 75 -> 0.75 points -> 1 point, half up).
    prog = program(
        [
            promo("a", product_rule(pct(1000))),
            promo("b", product_rule(off(150))),
            promo("c", product_rule(pb.Benefit(
                accrue_points=pb.AccruePoints(point_type="bonus", percent_bp=1000)
            ))),
        ],
        group(SEQ, group(MAX, "a", "b"), "c"),
    )
    response = run(prog, request(line("l", 1000)))
    assert rows(response) == [
        ("l", "a", "discount", 100, 0),
        ("l", "b", "discount", 150, 0),
        ("l", "c", "accrue_points", 0, 1),
    ]


def test_nested_incompatible_and_sequential_under_summation() -> None:
    # INC{a 10 % on x, b 20 %}: x -> a 100, y -> b 400. SEQ{c 100 off, d 10 %} on the base:
    # x: 100, then 10 % of 900 = 90; y: 100, then 10 % of 1900 = 190. Summed: x 290, y 690.
    prog = program(
        [
            promo("a", product_rule(pct(1000), segments=["x"])),
            promo("b", product_rule(pct(2000))),
            promo("c", product_rule(off(100))),
            promo("d", product_rule(pct(1000))),
        ],
        group(SUM, group(INC, "a", "b"), group(SEQ, "c", "d")),
        product_segments=[SEGMENT_X],
    )
    response = run(prog, request(line("x", 1000), line("y", 2000)))
    check_invariants(response)
    assert discounts(response) == [290, 690]
    assert rows(response) == [
        ("x", "a", "discount", 100, 0),
        ("x", "c", "discount", 100, 0),
        ("x", "d", "discount", 90, 0),
        ("y", "b", "discount", 400, 0),
        ("y", "c", "discount", 100, 0),
        ("y", "d", "discount", 190, 0),
    ]
