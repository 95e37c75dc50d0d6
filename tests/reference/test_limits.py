"""Limits of a node (rules 11 and 23, docs/rules.md), each kind, with hand-computed values."""

from arbiter.v1 import program_pb2 as pb

from ._programs import (
    SEQ,
    SUM,
    check_invariants,
    discounts,
    finals,
    group,
    line,
    off,
    pct,
    product_rule,
    program,
    promo,
    request,
    round_price,
    rows,
    run,
)


def test_max_discount_bp_cuts_in_proportion() -> None:
    # 20 % + 15 % of 100.00 = 35.00 over a 30 % cap: 500 cut by 2000:1500 -> 285.7, 214.3 ->
    # 285, 214 and the unit left to .7: a keeps 1714, b 1286.
    prog = program(
        [promo("a", product_rule(pct(2000))), promo("b", product_rule(pct(1500)))],
        group(SUM, "a", "b", limits=pb.Limits(max_discount_bp=3000)),
    )
    response = run(prog, request(line("l", 10_000)))
    check_invariants(response)
    assert rows(response) == [("l", "a", "discount", 1714, 0), ("l", "b", "discount", 1286, 0)]


def test_max_discount_amount_spreads_the_excess_by_what_each_line_adds() -> None:
    # 10 % of 10.00 and 20.00 = 100 + 200 over a 250 cap: 50 by 100:200 -> 16.7, 33.3 -> 16, 33
    # and the unit left to .7: 83 and 167.
    prog = program(
        [promo("a", product_rule(pct(1000)))],
        group(SEQ, "a", limits=pb.Limits(max_discount_amount=250)),
    )
    response = run(prog, request(line("x", 1000), line("y", 2000)))
    check_invariants(response)
    assert discounts(response) == [83, 167]


def test_min_unit_price() -> None:
    # 2 units of 10.00, none below 9.00: at most 2000 - 1800 = 200 of the 400.
    prog = program(
        [promo("a", product_rule(pct(2000)))],
        group(SEQ, "a", limits=pb.Limits(min_unit_price=900)),
    )
    response = run(prog, request(line("l", 1000, 2)))
    assert discounts(response) == [200]


def test_min_unit_price_bp() -> None:
    # none below 85 % of 10.00 = 8.50: at most 2000 - 1700 = 300.
    prog = program(
        [promo("a", product_rule(pct(2000)))],
        group(SEQ, "a", limits=pb.Limits(min_unit_price_bp=8500)),
    )
    response = run(prog, request(line("l", 1000, 2)))
    assert discounts(response) == [300]


def test_a_line_that_entered_below_the_floor_gets_nothing_more() -> None:
    # a halves 10.00 before the group; the group's floor 9.00 is already broken: b adds nothing,
    # and a's discount is not undone.
    prog = program(
        [promo("a", product_rule(pct(5000))), promo("b", product_rule(pct(1000)))],
        group(SEQ, "a", group(SEQ, "b", limits=pb.Limits(min_unit_price=900))),
    )
    response = run(prog, request(line("l", 1000)))
    assert rows(response) == [("l", "a", "discount", 500, 0)]
    assert finals(response) == [500]


def test_per_line_limits_come_before_the_amount() -> None:
    # 60 % of two 10.00 lines, at most 50 % each -> 500 + 500; then at most 700 in all: 300 by
    # 500:500 -> 150 each: 350 and 350.
    prog = program(
        [promo("a", product_rule(pct(6000)))],
        group(SEQ, "a", limits=pb.Limits(max_discount_bp=5000, max_discount_amount=700)),
    )
    response = run(prog, request(line("x", 1000), line("y", 1000)))
    assert discounts(response) == [350, 350]


def test_a_price_rise_weighs_nothing_in_the_amount_spread() -> None:
    # a: 5.00 off x (100.00 -> 95.00). In the group, r rounds x back to 100.00 (-500) and d takes
    # all of y (1000): the group adds -500 + 1000 = 500 net, 100 over its 400 cap; x weighs 0
    # (it adds a negative amount), so y gives up the 100: d = 900.
    prog = program(
        [
            promo("a", product_rule(off(500), segments=["x"])),
            promo("r", product_rule(round_price(pb.ROUND_MODE_ROUND_TENS), segments=["x"])),
            promo("d", product_rule(pct(10000), segments=["x"], not_in=True)),
        ],
        group(SEQ, "a", group(SUM, "r", "d", limits=pb.Limits(max_discount_amount=400))),
        product_segments=[pb.ProductSegment(id="x", skus=["x"])],
    )
    response = run(prog, request(line("x", 10_000), line("y", 1000)))
    check_invariants(response)
    assert rows(response) == [
        ("x", "a", "discount", 500, 0),
        ("x", "r", "round_price", -500, 0),
        ("y", "d", "discount", 900, 0),
    ]


def test_root_limit_bounds_the_whole_calculation() -> None:
    # a: 10.00 off 25.00 -> 15.00; b: 50 % of 15.00 = 750; 1750 added against a root cap of
    # 40 % of 25.00 = 1000: 750 cut by 1000:750 -> 428.6, 321.4 -> 428, 321 and the unit left to
    # .6 -> a keeps 571, b 429.
    prog = program(
        [promo("a", product_rule(off(1000))), promo("b", product_rule(pct(5000)))],
        group(SEQ, "a", "b", limits=pb.Limits(max_discount_bp=4000)),
    )
    response = run(prog, request(line("l", 2500)))
    check_invariants(response)
    assert rows(response) == [("l", "a", "discount", 571, 0), ("l", "b", "discount", 429, 0)]
