"""The response: portions, rows and their order (rule 17), points (18), texts (16), totals."""

from arbiter.v1 import checkout_pb2 as ck
from arbiter.v1 import program_pb2 as pb

from ._programs import (
    INC,
    SEQ,
    accrue_fixed,
    accrue_pct,
    check_invariants,
    group,
    line,
    off,
    order_rule,
    pay_pct,
    pct,
    point_type,
    points_changes,
    product_rule,
    program,
    promo,
    request,
    rows,
    run,
    ship_off,
    text,
)


def _portions(response: ck.CalculateOrderResponse) -> list[list[tuple[int, int]]]:
    return [[(p.quantity, p.unit_price) for p in r.portions] for r in response.lines]


def test_portions() -> None:
    # 20.00 off the order, shared by 3000:999 -> 1500.4, 499.6 -> 1500, 499 and the unit left to
    # .6: a pays 1500 (3 units at 500), b 499 for 3 units: 499 % 3 = 1 unit at 167, 2 at 166.
    prog = program([promo("o", order_rules=[order_rule(off(2000))])], group(SEQ, "o"))
    response = run(prog, request(line("a", 1000, 3), line("b", 333, 3)))
    check_invariants(response)
    assert [r.final_price for r in response.lines] == [1500, 499]
    assert _portions(response) == [[(3, 500)], [(1, 167), (2, 166)]]


def test_portions_of_an_untouched_line() -> None:
    response = run(program([]), request(line("a", 999, 3)))
    assert [r.final_price for r in response.lines] == [2997]
    assert _portions(response) == [[(3, 999)]]
    assert response.totals.items == 3


def test_rows_sorted_by_line_then_order_wide_then_tree_order() -> None:
    # tree order: s (order-wide shipping), then t (per line). Rows: per line in the order's
    # line order, t's product row before s's order-level share; order-wide rows last.
    prog = program(
        [
            promo("s", order_rules=[order_rule(ship_off(100), off(30), accrue_fixed("bonus", 5))]),
            promo("t", product_rule(pct(1000)), kind=pb.PROMOTION_KIND_DISCOUNT),
        ],
        group(SEQ, "s", "t"),
    )
    response = run(prog, request(line("b", 1000), line("a", 2000), shipping=300))
    check_invariants(response)
    # s: 30 over 1000:2000 -> 10, 20; t: 10 % of 990 = 99, of 1980 = 198.
    assert rows(response) == [
        ("b", "s", "discount", 10, 0),
        ("b", "t", "discount", 99, 0),
        ("a", "s", "discount", 20, 0),
        ("a", "t", "discount", 198, 0),
        ("", "s", "shipping_discount", 100, 0),
        ("", "s", "accrue_points", 0, 5),
    ]
    totals = response.totals
    assert (totals.subtotal, totals.discount, totals.shipping, totals.shipping_discount) == (
        3000,
        327,
        300,
        100,
    )
    assert totals.total == 3000 - 327 + 300 - 100
    assert [b.timing for b in response.benefits] == [0, 0, 0, 0, 0, pb.TIMING_ON_CREATE]


def test_points_changes_in_program_order() -> None:
    # program order: alpha, bonus, gamma. bonus is asked and redeemed, alpha accrues on delivery,
    # gamma is only asked (nothing to pay with it).
    prog = program(
        [
            promo(
                "p",
                product_rule(
                    pay_pct("bonus", 1000), accrue_pct("alpha", 1000, pb.TIMING_ON_DELIVERY)
                ),
            )
        ],
        group(SEQ, "p"),
        point_types=[point_type("alpha"), point_type("bonus"), point_type("gamma")],
    )
    response = run(
        prog,
        request(
            line("a", 10_000),
            balances={"bonus": 30, "gamma": 10},
            redeem={"gamma": 5, "bonus": 40},
        ),
    )
    # bonus: 10 % of 100.00 = 10 points; alpha: 10 % of 100.00 = 10 points pending.
    assert points_changes(response) == [
        ("alpha", 0, 0, 0, 10),
        ("bonus", 40, 10, 0, 0),
        ("gamma", 5, 0, 0, 0),
    ]


def test_text_placeholders_and_emoji() -> None:
    template = (
        "Hi {member.id} {order.id}: {promotion.name} {order.subtotal}-{order.discount}="
        "{order.total} items {order.items} ship {order.shipping} +{points.accrued.bonus} "
        "-{points.redeemed.bonus} bal {balance.bonus} {unknown} 🎉"
    )
    prog = program(
        [
            promo(
                "p",
                product_rule(pct(1000), accrue_pct("bonus", 1000), text(template)),
                name="Spring ☀",
            )
        ],
        group(SEQ, "p"),
    )
    # 10 % of 123.45 = 12.345 -> 12.35; 10 % of 123.45 in points (PARALLEL, on the base):
    # 1235 kopecks -> 12.35 points -> 12; total 111.10 + 5.00 shipping.
    response = run(prog, request(line("a", 12345), shipping=500, balances={"bonus": 70}))
    assert list(response.texts) == [
        "Hi m1 o1: Spring ☀ 123.45-12.35=116.10 items 1 ship 5.00 +12 -0 bal 70 {unknown} 🎉"
    ]


def test_doubled_braces_in_a_template_are_literal_braces() -> None:
    # `{{` and `}}` write a brace (docs/configuration.md), also right beside a placeholder; the
    # engine (tests/engine runs this module through it) and the reference read one grammar.
    prog = program(
        [promo("p", order_rules=[order_rule(text("{{x}} {{{member.id}}} }}{order.id}{{"))])],
        group(SEQ, "p"),
    )
    response = run(prog, request(line("a", 1000)))
    assert list(response.texts) == ["{x} {m1} }o1{"]


def test_texts_once_per_benefit_in_tree_order_and_only_when_they_survive() -> None:
    # a product text over two lines renders once; b's text loses INCOMPATIBLE to a on every line.
    prog = program(
        [
            promo("z", order_rules=[order_rule(text("last {order.total}"))]),
            promo("a", product_rule(text("a"), pct(1000))),
            promo("b", product_rule(text("b"), pct(2000))),
        ],
        group(SEQ, group(INC, "a", "b"), "z"),
    )
    response = run(prog, request(line("x", 1000), line("y", 1000)))
    assert list(response.texts) == ["a", "last 18.00"]


def test_text_makes_its_pool_code_applied() -> None:
    pool = pb.PromoCodePool(id="hello", codes=[pb.PromoCode(code="HELLO")])
    prog = program(
        [promo("t", order_rules=[order_rule(text("welcome"))], pool="hello")],
        group(SEQ, "t"),
        promo_code_pools=[pool],
    )
    response = run(prog, request(line("a", 1000), codes=["Hello"]))
    assert list(response.texts) == ["welcome"]
    assert [(c.code, c.status) for c in response.promo_codes] == [
        ("Hello", ck.PROMO_CODE_STATUS_APPLIED)
    ]


def test_empty_order() -> None:
    prog = program(
        [promo("p", product_rule(pct(1000)), order_rules=[order_rule(ship_off(100))])],
        group(SEQ, "p"),
    )
    response = run(prog, request(shipping=300))
    check_invariants(response)
    assert list(response.lines) == []
    assert response.totals.total == 200
    assert rows(response) == [("", "p", "shipping_discount", 100, 0)]


def test_same_request_same_bytes() -> None:
    prog = program([promo("p", product_rule(pct(1000), accrue_pct("bonus", 500)))], group(SEQ, "p"))
    req = request(line("a", 12345, 2), line("b", 999))
    first = run(prog, req).SerializeToString(deterministic=True)
    assert run(prog, req).SerializeToString(deterministic=True) == first
