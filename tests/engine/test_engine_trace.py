"""The decision trace (docs/engine.md, "The decision trace"): every verdict and reason on a
case of its own, and the choices made where the contract is silent."""

from __future__ import annotations

from datetime import timedelta

from arbiter.server.api.translate import order_from_proto, result_to_proto
from arbiter.server.engine import MemberState, calculate, compile_program
from arbiter.server.engine.trace import TraceEntry, calculate_traced
from arbiter.v1 import checkout_pb2 as ck
from arbiter.v1 import program_pb2 as pb
from tests.reference._programs import (
    INC,
    MAX,
    NOON,
    SEQ,
    SUM,
    accrue_pct,
    group,
    line,
    order_rule,
    pay_pct,
    pct,
    product_rule,
    program,
    promo,
    request,
    round_price,
    text,
)


def traced(prog: pb.Program, req: ck.CalculateOrderRequest) -> list[TraceEntry]:
    compiled = compile_program(prog)
    order, member = order_from_proto(req, compiled.point_type_ids)
    if member is None and req.member_id:
        member = MemberState(req.member_id)
    result, trace = calculate_traced(compiled, order, member, now=NOON)
    plain = calculate(compiled, order, member, now=NOON)
    assert result_to_proto(result, 1).SerializeToString() == (
        result_to_proto(plain, 1).SerializeToString()
    )
    return list(trace)


def by_node(trace: list[TraceEntry]) -> dict[str, TraceEntry]:
    return {e.node: e for e in trace}


def verdicts(trace: list[TraceEntry]) -> list[tuple[str, str, str]]:
    return [(e.node, e.verdict, e.reason) for e in trace]


SEGMENTS = [pb.ProductSegment(id="only_x", skus=["x"])]


# --- APPLIED, CUT -----------------------------------------------------------------------------


def test_applied_names_its_benefit_and_lines_and_the_root_comes_first() -> None:
    prog = program(
        [promo("p", product_rule(pct(1000), segments=["only_x"]))],
        group(SEQ, "p", gid="main"),
        product_segments=SEGMENTS,
    )
    trace = traced(prog, request(line("x", 1000), line("y", 500)))
    assert trace == [
        TraceEntry("main", "", "GROUP", "APPLIED", "", 100, 0, ("x",), ""),
        TraceEntry("p", "main", "PROMOTION", "APPLIED", "", 100, 0, ("x",), ""),
    ]


def test_points_count_in_benefit_at_their_ratio() -> None:
    # 10 % of 1000 in points at 1 point = 1.00 (100 minor units): 1 point, worth 100.
    prog = program([promo("p", product_rule(accrue_pct("bonus", 1000)))], group(SEQ, "p"))
    entry = by_node(traced(prog, request(line("x", 1000))))["p"]
    assert (entry.verdict, entry.benefit, entry.line_ids) == ("APPLIED", 100, ("x",))


def test_cut_by_the_limits_of_its_group_names_the_cut_and_the_group() -> None:
    # p takes 20 % of 1000 = 200; its group allows 150 over the order: 50 cut. The root kept
    # what the group gave it whole: APPLIED.
    limited = group(SEQ, "p", gid="g", limits=pb.Limits(max_discount_amount=150))
    prog = program([promo("p", product_rule(pct(2000)))], group(SEQ, limited, gid="main"))
    trace = by_node(traced(prog, request(line("x", 1000))))
    assert (trace["p"].verdict, trace["p"].cut, trace["p"].benefit) == ("CUT", 50, 150)
    assert "its limits (group 'g')" in trace["p"].detail
    assert (trace["g"].verdict, trace["g"].cut, trace["g"].benefit) == ("CUT", 50, 150)
    assert (trace["main"].verdict, trace["main"].cut) == ("APPLIED", 0)


def test_cut_by_an_ancestor_limit() -> None:
    prog = program(
        [promo("p", product_rule(pct(2000))), promo("q", product_rule(pct(1000)))],
        group(
            SEQ, group(SUM, "p", "q", gid="g"), gid="main", limits=pb.Limits(max_discount_bp=1500)
        ),
    )
    trace = by_node(traced(prog, request(line("x", 1000))))
    # p 200 and q 100 summed, 150 allowed: 150 cut, apportioned 100 / 50.
    assert [(trace[n].verdict, trace[n].cut) for n in ("main", "g", "p", "q")] == [
        ("CUT", 150),
        ("CUT", 150),
        ("CUT", 100),
        ("CUT", 50),
    ]
    assert trace["p"].benefit + trace["q"].benefit == trace["main"].benefit == 150


# --- NOT_SELECTED and its reasons -------------------------------------------------------------


def _selection_program(**extra: object) -> pb.Program:
    return program(
        [promo("p", product_rule(pct(1000)), **extra)],  # type: ignore[arg-type]
        group(SEQ, "p"),
        member_segments=[pb.MemberSegment(id="vip", name="VIP")],
        promo_code_pools=[pb.PromoCodePool(id="pool", codes=[pb.PromoCode(code="HI")])],
    )


def _reason(prog: pb.Program, **req: object) -> tuple[str, str]:
    entry = by_node(traced(prog, request(line("x", 1000), **req)))["p"]  # type: ignore[arg-type]
    if entry.verdict == "NOT_SELECTED":
        assert entry.benefit == 0 and entry.line_ids == () and entry.cut == 0
    return entry.verdict, entry.reason


def _period(start_days: int) -> pb.ActivePeriod:
    period = pb.ActivePeriod()
    period.start.FromDatetime(NOON + timedelta(days=start_days))
    return period


def test_not_selected_status() -> None:
    prog = _selection_program(status=pb.PROMOTION_STATUS_INACTIVE)
    assert _reason(prog) == ("NOT_SELECTED", "STATUS")


def test_not_selected_period() -> None:
    assert _reason(_selection_program(period=_period(1))) == ("NOT_SELECTED", "PERIOD")


def test_not_selected_availability() -> None:
    # NOON is a Wednesday.
    prog = _selection_program(availability=pb.Availability(weekdays=[pb.WEEKDAY_MONDAY]))
    assert _reason(prog) == ("NOT_SELECTED", "AVAILABILITY")


def test_not_selected_audience() -> None:
    vip = pb.Audience(kind=pb.AUDIENCE_KIND_IN_SEGMENTS, segments=["vip"])
    assert _reason(_selection_program(audience=vip)) == ("NOT_SELECTED", "AUDIENCE")
    # An anonymous buyer is outside every audience but EVERYONE.
    members = pb.Audience(kind=pb.AUDIENCE_KIND_ALL_MEMBERS)
    assert _reason(_selection_program(audience=members), member=None) == (
        "NOT_SELECTED",
        "AUDIENCE",
    )


def test_not_selected_channel() -> None:
    prog = _selection_program(channels=[pb.ChannelRef(channel="web")])
    assert _reason(prog, channel="pos") == ("NOT_SELECTED", "CHANNEL")
    shop = [pb.ChannelRef(channel="pos", points_of_contact=["shop-1"])]
    assert _reason(_selection_program(channels=shop), channel="pos", point_of_contact="shop-2") == (
        "NOT_SELECTED",
        "CHANNEL",
    )
    assert _reason(_selection_program(channels=shop), channel="pos", point_of_contact="shop-1") == (
        "APPLIED",
        "",
    )


def test_not_selected_promo_code() -> None:
    assert _reason(_selection_program(pool="pool")) == ("NOT_SELECTED", "PROMO_CODE")
    assert _reason(_selection_program(pool="pool"), codes=["nope"]) == (
        "NOT_SELECTED",
        "PROMO_CODE",
    )
    assert _reason(_selection_program(pool="pool"), codes=["hi"]) == ("APPLIED", "")


def test_the_reason_is_the_first_failed_check_in_the_listed_order() -> None:
    everything_wrong = dict(
        status=pb.PROMOTION_STATUS_INACTIVE,
        period=_period(1),
        availability=pb.Availability(weekdays=[pb.WEEKDAY_MONDAY]),
        audience=pb.Audience(kind=pb.AUDIENCE_KIND_IN_SEGMENTS, segments=["vip"]),
        channels=[pb.ChannelRef(channel="web")],
        pool="pool",
    )
    expected = ["STATUS", "PERIOD", "AVAILABILITY", "AUDIENCE", "CHANNEL", "PROMO_CODE"]
    for fixed, reason in enumerate(expected):
        # Every check before `reason` passes.
        extra = dict(list(everything_wrong.items())[fixed:])
        if fixed > 0:
            extra.setdefault("status", pb.PROMOTION_STATUS_ACTIVE)
        assert _reason(_selection_program(**extra), channel="pos") == ("NOT_SELECTED", reason)


# --- NO_EFFECT --------------------------------------------------------------------------------


def test_no_effect_no_matching_line() -> None:
    prog = program(
        [promo("p", product_rule(pct(1000), segments=["only_x"]))],
        group(SEQ, "p", gid="main"),
        product_segments=SEGMENTS,
    )
    trace = by_node(traced(prog, request(line("y", 1000))))
    assert (trace["p"].verdict, trace["p"].reason, trace["p"].benefit) == ("NO_EFFECT", "", 0)
    assert "no rule applies" in trace["p"].detail
    # A group none of whose children has an effect has none either.
    assert trace["main"].verdict == "NO_EFFECT"


def test_no_effect_min_quantity_not_met() -> None:
    prog = program([promo("p", product_rule(pct(1000), min_quantity=3))], group(SEQ, "p"))
    assert by_node(traced(prog, request(line("x", 1000, 2))))["p"].verdict == "NO_EFFECT"
    assert by_node(traced(prog, request(line("x", 1000, 3))))["p"].verdict == "APPLIED"


def test_no_effect_no_points_budget_and_nothing_left_to_pay() -> None:
    prog = program(
        [
            promo("free", product_rule(pct(10000))),
            promo("pts", product_rule(pay_pct("bonus", 5000)), kind=pb.PROMOTION_KIND_POINTS),
        ],
        group(SEQ, "free", "pts"),
    )
    # After `free` nothing is left to pay: `pts` is selected but changes nothing.
    trace = by_node(
        traced(prog, request(line("x", 1000), balances={"bonus": 50}, redeem={"bonus": 5}))
    )
    assert trace["pts"].verdict == "NO_EFFECT"
    assert "change nothing" in trace["pts"].detail
    alone = program(
        [promo("pts", product_rule(pay_pct("bonus", 5000)), kind=pb.PROMOTION_KIND_POINTS)],
        group(SEQ, "pts"),
    )
    # No redemption asked: no budget.
    assert by_node(traced(alone, request(line("x", 1000), balances={"bonus": 50})))[
        "pts"
    ].verdict == ("NO_EFFECT")


def test_no_effect_order_segment_not_matched() -> None:
    prog = program(
        [promo("p", order_rules=[order_rule(pct(1000), segments=["big"])])],
        group(SEQ, "p"),
        order_segments=[pb.OrderSegment(id="big", min_subtotal=5000)],
    )
    assert by_node(traced(prog, request(line("x", 1000))))["p"].verdict == "NO_EFFECT"


# --- OUTRANKED --------------------------------------------------------------------------------


def test_outranked_in_incompatible_names_the_earlier_child() -> None:
    prog = program(
        [promo("a", product_rule(pct(1000))), promo("b", product_rule(pct(2000)))],
        group(SEQ, group(INC, "a", "b", gid="g"), gid="main"),
    )
    trace = by_node(traced(prog, request(line("x", 1000))))
    assert (trace["b"].verdict, trace["b"].benefit, trace["b"].line_ids) == ("OUTRANKED", 0, ())
    assert trace["b"].detail == "outranked by a in INCOMPATIBLE group 'g'"
    assert (trace["a"].verdict, trace["g"].verdict, trace["g"].benefit) == (
        "APPLIED",
        "APPLIED",
        100,
    )


def test_outranked_at_the_order_level() -> None:
    prog = program(
        [
            promo("a", order_rules=[order_rule(pct(1000))]),
            promo("b", order_rules=[order_rule(pct(500))]),
        ],
        group(INC, "a", "b", gid="g"),
    )
    trace = by_node(traced(prog, request(line("x", 1000), line("y", 1000))))
    assert (trace["a"].verdict, trace["a"].line_ids) == ("APPLIED", ("x", "y"))
    assert trace["b"].verdict == "OUTRANKED"


def test_partly_outranked_in_incompatible_keeps_the_lines_it_won() -> None:
    # a takes line x; b keeps line y and says what it lost.
    prog = program(
        [
            promo("a", product_rule(pct(1000), segments=["only_x"])),
            promo("b", product_rule(pct(2000))),
        ],
        group(INC, "a", "b", gid="g"),
        product_segments=SEGMENTS,
    )
    trace = by_node(traced(prog, request(line("x", 1000), line("y", 500))))
    assert (trace["b"].verdict, trace["b"].benefit, trace["b"].line_ids) == ("APPLIED", 100, ("y",))
    assert trace["b"].detail == "x lost to a in INCOMPATIBLE group 'g'"


def test_children_of_an_outranked_group_are_outranked_too() -> None:
    prog = program(
        [promo("a", product_rule(pct(1000))), promo("b", product_rule(pct(2000)))],
        group(INC, "a", group(SEQ, "b", gid="inner"), gid="g"),
    )
    trace = by_node(traced(prog, request(line("x", 1000))))
    assert trace["inner"].verdict == "OUTRANKED"
    assert trace["b"].verdict == "OUTRANKED"
    assert "INCOMPATIBLE group 'g'" in trace["b"].detail


def test_max_benefit_names_the_chosen_subset_mode_candidates_and_runner_up() -> None:
    prog = program(
        [
            promo("a", product_rule(pct(1000))),
            promo("b", product_rule(pct(2000))),
            promo("c", product_rule(pct(500))),
        ],
        group(MAX, "a", "b", "c", gid="m"),
    )
    trace = by_node(traced(prog, request(line("x", 1000))))
    # All three summed (350) beat them in sequence (100 + 180 + 36 = 316); 3 + 3 * 2 + 2
    # candidates.
    assert trace["m"].detail == (
        "chosen: a, b, c; mode: SUMMATION; candidates valued: 11; runner-up benefit: 316"
    )
    assert [trace[n].verdict for n in "abc"] == ["APPLIED"] * 3
    assert trace["m"].benefit == 350


def test_max_benefit_left_out_children_are_outranked_and_name_the_winner() -> None:
    # Every candidate is capped at 20 %: b alone reaches it, and fewer children win the tie.
    prog = program(
        [
            promo("a", product_rule(pct(1000))),
            promo("b", product_rule(pct(2000))),
            promo("off", product_rule(pct(1000)), status=pb.PROMOTION_STATUS_INACTIVE),
        ],
        group(
            MAX,
            group(SEQ, "a", gid="inner"),
            "b",
            "off",
            gid="m",
            limits=pb.Limits(max_discount_bp=2000),
        ),
    )
    trace = by_node(traced(prog, request(line("x", 1000))))
    assert trace["m"].detail == (
        "chosen: b; mode: SINGLE; candidates valued: 4; runner-up benefit: 200"
    )
    assert (trace["b"].verdict, trace["b"].benefit) == ("APPLIED", 200)
    assert trace["inner"].verdict == trace["a"].verdict == "OUTRANKED"
    assert trace["a"].detail == "outranked: MAX_BENEFIT group 'm' chose b"
    assert (trace["off"].verdict, trace["off"].reason) == ("NOT_SELECTED", "STATUS")


def test_max_benefit_sequential_winner_evaluates_children_on_the_prefix_state() -> None:
    # 10.50: a takes 5 % (53) and leaves 9.97, which b floors to 9.00 (97 more): 150 in
    # sequence; summed, b floors 10.50 to 10.00 (50): 103.
    prog = program(
        [
            promo("a", product_rule(pct(500))),
            promo("b", product_rule(round_price(pb.ROUND_MODE_FLOOR_INTEGER))),
        ],
        group(MAX, "a", "b", gid="m"),
    )
    trace = by_node(traced(prog, request(line("x", 1050))))
    assert trace["m"].detail == (
        "chosen: a, b; mode: SEQUENTIAL; candidates valued: 4; runner-up benefit: 103"
    )
    assert (trace["a"].benefit, trace["b"].benefit, trace["m"].benefit) == (53, 97, 150)


# --- texts ------------------------------------------------------------------------------------


def test_a_text_only_promotion_is_applied_with_no_benefit() -> None:
    prog = program([promo("t", order_rules=[order_rule(text("hello {{world}}"))])], group(SEQ, "t"))
    compiled = compile_program(prog)
    order, member = order_from_proto(request(line("x", 1000)), compiled.point_type_ids)
    result, trace = calculate_traced(compiled, order, member, now=NOON)
    assert result.texts == ("hello {world}",)
    assert [(e.node, e.verdict, e.benefit, e.line_ids) for e in trace] == [
        ("", "APPLIED", 0, ()),
        ("t", "APPLIED", 0, ()),
    ]
