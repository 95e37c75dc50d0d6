"""Each of the eleven benefit kinds (docs/rules.md, rules 1, 2, 8-10, 14, 15), with
hand-computed values.
"""

from typing import Any

import pytest

from arbiter.v1 import program_pb2 as pb

from ._programs import (
    SEQ,
    accrue_fixed,
    accrue_pct,
    check_invariants,
    discounts,
    finals,
    fixed,
    from_field,
    from_field_points,
    group,
    line,
    off,
    order_rule,
    partner_discount,
    partner_points,
    pay_amount,
    pay_pct,
    pay_points,
    pct,
    per_spent,
    point_type,
    points_changes,
    product_rule,
    program,
    promo,
    request,
    round_price,
    rows,
    run,
    ship_off,
    ship_pct,
)


def _one(benefit: pb.Benefit, *, order_level: bool = False, **extra: Any) -> pb.Program:
    if order_level:
        p = promo("p", order_rules=[order_rule(benefit)])
    else:
        p = promo("p", product_rule(benefit))
    return program([p], group(SEQ, "p"), **extra)


# --- discount -----------------------------------------------------------------------------------


def test_discount_percent_rounds_half_up_once_per_line() -> None:
    # 10 % of 10.05 = 1.005 -> 1.01 (100.5 kopecks, half up); 10 % of 3 x 9.99 = 299.7 -> 300.
    response = run(_one(pct(1000)), request(line("a", 1005), line("b", 999, 3)))
    check_invariants(response)
    assert discounts(response) == [101, 300]
    assert finals(response) == [904, 2697]


def test_discount_amount_is_per_unit_and_bounded_by_the_price() -> None:
    # 1.50 off each of 3 units = 450; 2 units of 1.00: min(300, 200) = 200.
    response = run(_one(off(150)), request(line("a", 1000, 3), line("b", 100, 2)))
    check_invariants(response)
    assert discounts(response) == [450, 200]


def test_discount_fixed_price_only_where_lower() -> None:
    # 3 units at 10.00 set to 7.00: 900 off; 2 units at 5.00 stay.
    response = run(_one(fixed(700)), request(line("a", 1000, 3), line("b", 500, 2)))
    assert rows(response) == [("a", "p", "discount", 900, 0)]


def test_discount_fixed_price_zero_means_zero() -> None:
    response = run(_one(fixed(0)), request(line("a", 1234, 2)))
    assert finals(response) == [0]


def test_order_discount_amount_is_apportioned_by_largest_remainder() -> None:
    # 1.00 over three equal lines: 33.33 each -> 33, 33, 33 and the unit left to the first line.
    response = run(
        _one(off(100), order_level=True), request(line("a", 1000), line("b", 1000), line("c", 1000))
    )
    check_invariants(response)
    assert discounts(response) == [34, 33, 33]
    # 7 over 500:300:200 -> 3.5, 2.1, 1.4 -> 3, 2, 1 and the unit left to .5.
    response = run(
        _one(off(7), order_level=True), request(line("a", 500), line("b", 300), line("c", 200))
    )
    assert discounts(response) == [4, 2, 1]
    assert [r[:3] for r in rows(response)] == [("a", "p", "discount")] * 1 + [
        ("b", "p", "discount"),
        ("c", "p", "discount"),
    ]


def test_order_discount_percent_of_the_sum() -> None:
    # 10 % of 10.00 = 100, spread 999:1 -> 99.9, 0.1 -> 99, 0 + 1 to the larger remainder.
    response = run(_one(pct(1000), order_level=True), request(line("a", 999), line("b", 1)))
    assert discounts(response) == [100, 0]
    # an amount above the order is bounded by it
    response = run(_one(off(5000), order_level=True), request(line("a", 999), line("b", 1)))
    assert discounts(response) == [999, 1]


# --- price_from_field (rule 15) -----------------------------------------------------------------


def test_price_from_field() -> None:
    # a: field 7.50 x 100 % -> 2 x 7.50 = 15.00 instead of 20.00; c: no field; d: 7.50 > 4.00.
    response = run(
        _one(from_field("pp")),
        request(
            line("a", 1000, 2, fields={"pp": 750}),
            line("c", 1000),
            line("d", 400, fields={"pp": 750}),
        ),
    )
    assert rows(response) == [("a", "p", "price_from_field", 500, 0)]


def test_price_from_field_factor_rounds_half_up() -> None:
    # round_bp(1001, 5000) = 500.5 -> 501; 600 - 501 = 99.
    response = run(_one(from_field("pp", 5000)), request(line("b", 600, fields={"pp": 1001})))
    assert discounts(response) == [99]


# --- round_price (rule 14) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "unit_price", "quantity", "discount"),
    [
        (pb.ROUND_MODE_FLOOR_INTEGER, 12345, 1, 45),  # 123.45 -> 123.00
        (pb.ROUND_MODE_ROUND_INTEGER, 12349, 1, 49),  # 123.49 -> 123.00
        (pb.ROUND_MODE_ROUND_INTEGER, 12350, 1, 0),  # 123.50 -> 124.00, above the base
        (pb.ROUND_MODE_ROUND_INTEGER, 1049, 3, 147),  # 10.49 -> 10.00, x 3
        (pb.ROUND_MODE_ROUND_HALF, 9960, 1, 10),  # 99.60 -> 99.50
        (pb.ROUND_MODE_ROUND_HALF, 9920, 1, 20),  # 99.20 -> 99.00
        (pb.ROUND_MODE_FLOOR_TENS, 12345, 2, 690),  # 123.45 -> 120.00, x 2
        (pb.ROUND_MODE_ROUND_TENS, 1499, 1, 499),  # 14.99 -> 10.00
        (pb.ROUND_MODE_ROUND_TENS, 1500, 1, 0),  # 15.00 -> 20.00, above the base
        (pb.ROUND_MODE_UNSPECIFIED, 12349, 1, 49),  # unspecified = ROUND_INTEGER
    ],
)
def test_round_price_modes(mode: int, unit_price: int, quantity: int, discount: int) -> None:
    response = run(_one(round_price(mode)), request(line("l", unit_price, quantity)))
    check_invariants(response)
    assert discounts(response) == [discount]


def test_round_price_may_take_back_an_earlier_discount() -> None:
    # 100.00 - 0.40 = 99.60 -> 100.00: the rounding row is -40, the line's discount 0.
    prog = program(
        [
            promo(
                "p",
                product_rule(off(40), round_price(pb.ROUND_MODE_ROUND_INTEGER)),
                sequential=True,
            )
        ],
        group(SEQ, "p"),
    )
    response = run(prog, request(line("l", 10_000)))
    check_invariants(response)
    assert rows(response) == [("l", "p", "discount", 40, 0), ("l", "p", "round_price", -40, 0)]
    assert finals(response) == [10_000]


def test_round_price_never_above_the_base_less_the_points_paid() -> None:
    # 100.00 - 2.00 - 3 points (3.00) = 95.00 -> nearest ten: 100.00, but at most 100.00 - 3.00:
    # the price to pay becomes 97.00 (a rise of 200 that takes the 2.00 discount back).
    prog = program(
        [
            promo(
                "p",
                product_rule(
                    off(200), pay_amount("bonus", 300), round_price(pb.ROUND_MODE_ROUND_TENS)
                ),
                sequential=True,
            )
        ],
        group(SEQ, "p"),
    )
    response = run(prog, request(line("l", 10_000), balances={"bonus": 10}, redeem={"bonus": 10}))
    check_invariants(response)
    assert rows(response) == [
        ("l", "p", "discount", 200, 0),
        ("l", "p", "pay_with_points", 300, 3),
        ("l", "p", "round_price", -200, 0),
    ]
    assert finals(response) == [9700]


def test_parallel_price_rises_are_cut_to_the_base() -> None:
    # a: 5.00 off 100.00 -> 95.00; b's two roundings (PARALLEL) each go back to 100.00 (-500):
    # -1000 would leave the price above the base; 500 cut in proportion -> -250 each (rule 6b).
    prog = program(
        [
            promo("a", product_rule(off(500))),
            promo(
                "b",
                product_rule(
                    round_price(pb.ROUND_MODE_ROUND_TENS), round_price(pb.ROUND_MODE_ROUND_TENS)
                ),
            ),
        ],
        group(SEQ, "a", "b"),
    )
    response = run(prog, request(line("l", 10_000)))
    check_invariants(response)
    assert rows(response) == [
        ("l", "a", "discount", 500, 0),
        ("l", "b", "round_price", -250, 0),
        ("l", "b", "round_price", -250, 0),
    ]
    assert finals(response) == [10_000]


# --- partner_discount, partner_points -----------------------------------------------------------

PARTNERS = [
    pb.Partner(id="acme", name="Acme", discount_bp=1500, points_bp=200),
    pb.Partner(id="zeta", name="Zeta", discount_bp=1000, points_bp=100),
]


def test_partner_discount_only_for_listed_partners() -> None:
    response = run(
        _one(partner_discount("acme"), partners=PARTNERS),
        request(line("a", 1000, partner="acme"), line("b", 1000, partner="zeta"), line("c", 1000)),
    )
    assert rows(response) == [("a", "p", "partner_discount", 150, 0)]


def test_partner_points() -> None:
    # 2 % of 50.00 = 1.00 -> 1 point; 2 % of 123.45 = 2.469 -> 2.47 -> 2 points.
    response = run(
        _one(partner_points("bonus", "acme", "zeta"), partners=PARTNERS),
        request(line("a", 5000, partner="acme"), line("b", 12345, partner="acme")),
    )
    assert rows(response) == [
        ("a", "p", "partner_points", 0, 1),
        ("b", "p", "partner_points", 0, 2),
    ]


# --- shipping_discount --------------------------------------------------------------------------


def test_shipping_discount_percent_and_amount() -> None:
    response = run(_one(ship_pct(5000), order_level=True), request(line("a", 1000), shipping=500))
    check_invariants(response)
    assert rows(response) == [("", "p", "shipping_discount", 250, 0)]
    assert response.totals.total == 1250
    response = run(_one(ship_off(800), order_level=True), request(line("a", 1000), shipping=500))
    assert response.totals.shipping_discount == 500
    assert response.totals.total == 1000


def test_parallel_shipping_discounts_are_cut_to_the_shipping_cost() -> None:
    # 400 + 300 on 500: 200 cut by 400:300 -> 114.29, 85.71 -> 114, 85 + 1 to .71 -> 286, 214.
    prog = program(
        [promo("p", order_rules=[order_rule(ship_off(400), ship_off(300))])], group(SEQ, "p")
    )
    response = run(prog, request(line("a", 1000), shipping=500))
    check_invariants(response)
    assert rows(response) == [
        ("", "p", "shipping_discount", 286, 0),
        ("", "p", "shipping_discount", 214, 0),
    ]


# --- pay_with_points (rule 8) -------------------------------------------------------------------

MEMBER_POINTS = {"balances": {"bonus": 100}, "redeem": {"bonus": 100}}


def test_pay_with_points_amount_and_points_per_unit() -> None:
    # 3.00 per unit x 2 = 6.00 -> 6 points.
    response = run(_one(pay_amount("bonus", 300)), request(line("a", 1000, 2), **MEMBER_POINTS))  # type: ignore[arg-type]
    assert rows(response) == [("a", "p", "pay_with_points", 600, 6)]
    # 5 points per unit x 2 = 10 points = 10.00.
    response = run(_one(pay_points("bonus", 5)), request(line("a", 1000, 2), **MEMBER_POINTS))  # type: ignore[arg-type]
    assert rows(response) == [("a", "p", "pay_with_points", 1000, 10)]
    # 50 points, but the line's 10.00 holds only 10.
    response = run(_one(pay_points("bonus", 50)), request(line("a", 1000), **MEMBER_POINTS))  # type: ignore[arg-type]
    assert rows(response) == [("a", "p", "pay_with_points", 1000, 10)]


def test_pay_with_points_budget_apportioned_by_the_caps() -> None:
    # caps 6 and 4 points, budget 7: 4.2, 2.8 -> 4, 2 and the unit left to .8.
    response = run(
        _one(pay_amount("bonus", 600)),
        request(line("a", 1000), line("b", 400), balances={"bonus": 7}, redeem={"bonus": 50}),
    )
    check_invariants(response)
    assert rows(response) == [
        ("a", "p", "pay_with_points", 400, 4),
        ("b", "p", "pay_with_points", 300, 3),
    ]
    assert points_changes(response) == [("bonus", 50, 7, 0, 0)]


def test_pay_with_points_needs_a_redemption() -> None:
    response = run(_one(pay_pct("bonus", 5000)), request(line("a", 1000), balances={"bonus": 7}))
    assert rows(response) == []
    assert points_changes(response) == []


def test_pay_with_points_at_an_uneven_ratio() -> None:
    # 3 points = 2 kopecks: 50 % of 1001 = 500.5 -> 501 -> floor(751.5) = 751 points, worth
    # 500.67 -> 501.
    prog = _one(pay_pct("odd", 5000), point_types=[point_type("odd", 3, 2)])
    response = run(prog, request(line("a", 1001), balances={"odd": 1000}, redeem={"odd": 1000}))
    assert rows(response) == [("a", "p", "pay_with_points", 501, 751)]


def test_pay_with_points_at_order_level() -> None:
    # 50 % of 10.03 = 5.015 -> 5.02 -> 5 points, spread 1000:3 -> 4.99, 0.01 -> 4, 0, +1 to the
    # first line: 5 points = 5.00 on line a.
    response = run(
        _one(pay_pct("bonus", 5000), order_level=True),
        request(line("a", 1000), line("b", 3), **MEMBER_POINTS),  # type: ignore[arg-type]
    )
    check_invariants(response)
    assert rows(response) == [("a", "p", "pay_with_points", 500, 5)]


def test_pay_with_points_at_order_level_drops_what_a_line_cannot_hold() -> None:
    # 20 points per order of 20.00: spread 1990:10 -> 19.9, 0.1 -> 19, 0, +1 to a = 20; line a
    # holds only floor(19.90) = 19 points; the last one is dropped, not spread again.
    response = run(
        _one(pay_points("bonus", 20), order_level=True),
        request(line("a", 1990), line("b", 10), **MEMBER_POINTS),  # type: ignore[arg-type]
    )
    assert rows(response) == [("a", "p", "pay_with_points", 1900, 19)]
    assert points_changes(response) == [("bonus", 100, 19, 0, 0)]


# --- max_items (rule 10) ------------------------------------------------------------------------


def test_max_items_takes_the_dearest_units_first() -> None:
    # 50 % on 3 units: b (30.00) first, then a and c tie at 10.00: a (lower line) gives 2 units.
    order = (line("a", 1000, 2), line("b", 3000), line("c", 1000, 2), line("d", 500, 5))
    response = run(_one(pct(5000, max_items=3)), request(*order))
    check_invariants(response)
    assert discounts(response) == [1000, 1500, 0, 0]
    # 4 units: b, both of a, one of c (10.00 of 20.00 -> 5.00).
    response = run(_one(pct(5000, max_items=4)), request(*order))
    assert discounts(response) == [1000, 1500, 500, 0]


def test_max_items_of_a_partial_line_rounds_once() -> None:
    # o leaves 10.00 to pay for 3 units; 1 unit of it is round(1000 / 3) = 333, 50 % = 166.5
    # -> 167 (rule 1: one rounding per line, no per-unit price rounded and multiplied).
    prog = program(
        [
            promo("o", order_rules=[order_rule(off(2000))]),
            promo("p", product_rule(pct(5000, max_items=1))),
        ],
        group(SEQ, "o", "p"),
    )
    response = run(prog, request(line("a", 1000, 3)))
    assert rows(response) == [("a", "o", "discount", 2000, 0), ("a", "p", "discount", 167, 0)]
    # amount per unit on the chosen units: 2 x 1.00
    response = run(_one(off(100, max_items=2)), request(line("a", 1000, 3)))
    assert discounts(response) == [200]


def test_pay_with_points_max_items() -> None:
    # 2 points per unit on the 3 dearest units: b (30.00) x 1, a x 2 -> 2 and 4 points.
    response = run(
        _one(pay_points("bonus", 2, max_items=3)),
        request(line("a", 1000, 2), line("b", 3000), line("c", 500), **MEMBER_POINTS),  # type: ignore[arg-type]
    )
    assert rows(response) == [
        ("a", "p", "pay_with_points", 400, 4),
        ("b", "p", "pay_with_points", 200, 2),
    ]


# --- accruals (rule 2) --------------------------------------------------------------------------


def test_accrue_points_percent_converted_at_the_ratio() -> None:
    # 5 % of 123.45 = 6.1725 -> 617 kopecks; bonus: 6.17 -> 6 points; miles (10 per 1.00): 61.7
    # -> 62.
    prog = program(
        [promo("p", product_rule(accrue_pct("bonus", 500), accrue_pct("miles", 500)))],
        group(SEQ, "p"),
        point_types=[point_type("bonus"), point_type("miles", 10, 100)],
    )
    response = run(prog, request(line("a", 12345)))
    assert rows(response) == [("a", "p", "accrue_points", 0, 6), ("a", "p", "accrue_points", 0, 62)]
    assert [b.timing for b in response.benefits] == [pb.TIMING_ON_CREATE] * 2
    assert points_changes(response) == [("bonus", 0, 0, 6, 0), ("miles", 0, 0, 62, 0)]


def test_accrue_points_fixed_per_unit_and_per_order() -> None:
    prog = program(
        [
            promo(
                "p",
                product_rule(accrue_fixed("bonus", 7)),
                order_rules=[order_rule(accrue_fixed("bonus", 50, pb.TIMING_ON_DELIVERY))],
            )
        ],
        group(SEQ, "p"),
    )
    response = run(prog, request(line("a", 1000, 3)))
    assert rows(response) == [("a", "p", "accrue_points", 0, 21), ("", "p", "accrue_points", 0, 50)]
    assert [b.timing for b in response.benefits] == [pb.TIMING_ON_CREATE, pb.TIMING_ON_DELIVERY]
    assert points_changes(response) == [("bonus", 0, 0, 21, 50)]


def test_accrual_base_is_the_price_left_by_earlier_steps_only() -> None:
    # SEQUENTIAL: 20 % off 100.00 then 10 % of 80.00 = 8 points; PARALLEL: 10 % of 100.00 = 10.
    for sequential, expected in ((True, 8), (False, 10)):
        prog = program(
            [
                promo(
                    "p",
                    product_rule(pct(2000), accrue_pct("bonus", 1000)),
                    sequential=sequential,
                )
            ],
            group(SEQ, "p"),
        )
        response = run(prog, request(line("a", 10_000)))
        assert points_changes(response) == [("bonus", 0, 0, expected, 0)]


def test_accrue_per_spent_pools_the_rule_lines() -> None:
    # 200 points per 1,500.00: 1,000.00 + 1,200.00 -> 1 step -> 200 points, back by 10:12 ->
    # 90.9, 109.1 -> 90, 109 and the unit left to .9.
    response = run(
        _one(per_spent("bonus", 200, 150_000)), request(line("a", 100_000), line("b", 120_000))
    )
    assert rows(response) == [
        ("a", "p", "accrue_per_spent", 0, 91),
        ("b", "p", "accrue_per_spent", 0, 109),
    ]
    response = run(
        _one(per_spent("bonus", 200, 150_000), order_level=True),
        request(line("a", 100_000), line("b", 120_000)),
    )
    assert rows(response) == [("", "p", "accrue_per_spent", 0, 200)]


def test_accrue_from_field() -> None:
    response = run(
        _one(from_field_points("bonus", "pts")),
        request(line("a", 1000, 2, fields={"pts": 15}), line("b", 1000)),
    )
    assert rows(response) == [("a", "p", "accrue_from_field", 0, 30)]


def test_no_member_no_points() -> None:
    # rule 3: an anonymous buyer accrues nothing and redeems nothing (the audience is EVERYONE).
    everyone = pb.Audience(kind=pb.AUDIENCE_KIND_EVERYONE)
    prog = program(
        [
            promo(
                "p",
                product_rule(accrue_pct("bonus", 1000), pay_pct("bonus", 5000), pct(1000)),
                audience=everyone,
            )
        ],
        group(SEQ, "p"),
    )
    response = run(prog, request(line("a", 1000), member=None, redeem={"bonus": 5}))
    assert rows(response) == [("a", "p", "discount", 100, 0)]
    assert points_changes(response) == [("bonus", 5, 0, 0, 0)]


def test_points_worth_no_money_still_make_a_row() -> None:
    # 10 points per kopeck: 4 points are worth round_half_up(0.4) = 0 kopecks (decision 21).
    prog = _one(pay_points("tiny", 4), point_types=[point_type("tiny", 10, 1)])
    response = run(prog, request(line("a", 1000), balances={"tiny": 50}, redeem={"tiny": 50}))
    check_invariants(response)
    assert rows(response) == [("a", "p", "pay_with_points", 0, 4)]
    assert points_changes(response) == [("tiny", 50, 4, 0, 0)]


def test_member_named_by_id_alone_has_no_balance_to_spend() -> None:
    # Without a member context the reference knows no balance: the budget is 0 (decision 4),
    # but the member still accrues.
    prog = _one(pay_pct("bonus", 5000))
    response = run(prog, request(line("a", 1000), context=False, redeem={"bonus": 10}))
    assert rows(response) == []
    response = run(_one(accrue_pct("bonus", 1000)), request(line("a", 1000), context=False))
    assert rows(response) == [("a", "p", "accrue_points", 0, 1)]
