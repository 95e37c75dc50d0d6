"""validate_program: one test per configuration error (docs/configuration.md, rule 23).

Each test breaks one thing in a valid program and asserts that exactly that issue is reported,
on the right object (kind, id) and field.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from arbiter.server.engine.errors import ConfigError, ConfigIssue
from arbiter.server.engine.validate import (
    MAX_BENEFIT_CHILDREN,
    MAX_ISSUES,
    TemplatePart,
    split_template,
    validate_program,
)
from arbiter.v1 import program_pb2 as pb

P = "shop"  # the program id of every test program


def valid_program() -> pb.Program:
    """A small program that uses every kind of object and passes validation."""
    return pb.Program(
        id=P,
        name="Shop",
        currency="RUB",
        time_zone="Europe/Moscow",
        point_types=[
            pb.PointType(
                id="bonus",
                kind=pb.POINT_KIND_STANDARD,
                active=True,
                ratio=pb.Ratio(points=1, money=100),
            ),
            pb.PointType(id="qual", kind=pb.POINT_KIND_QUALIFICATION, active=True),
        ],
        tier_groups=[
            pb.TierGroup(
                id="status",
                model=pb.TIER_MODEL_CUMULATIVE,
                point_type="qual",
                tiers=[
                    pb.Tier(id="bronze", min_balance=0),
                    pb.Tier(id="silver", min_balance=1000),
                    pb.Tier(id="gold", min_balance=5000),
                ],
            )
        ],
        partners=[pb.Partner(id="acme", discount_bp=500, points_bp=300)],
        member_segments=[pb.MemberSegment(id="vip", members=["m1"])],
        product_segments=[pb.ProductSegment(id="tech", categories=["tech"])],
        order_segments=[pb.OrderSegment(id="big", min_subtotal=100000)],
        promo_code_pools=[pb.PromoCodePool(id="pool", codes=[pb.PromoCode(code="SAVE")])],
        trigger_promotions=[
            pb.TriggerPromotion(
                id="install",
                rules=[pb.TriggerRule(point_type="bonus", accrual=pb.AmountRule(fixed=200))],
            )
        ],
        promotions=[
            pb.Promotion(
                id="p1",
                status=pb.PROMOTION_STATUS_ACTIVE,
                product_rules=[
                    pb.ProductRule(benefits=[pb.Benefit(discount=pb.Discount(percent_bp=1000))])
                ],
            ),
            pb.Promotion(
                id="p2",
                status=pb.PROMOTION_STATUS_ACTIVE,
                order_rules=[
                    pb.OrderRule(
                        benefits=[
                            pb.Benefit(
                                accrue_points=pb.AccruePoints(point_type="bonus", percent_bp=500)
                            )
                        ]
                    )
                ],
            ),
        ],
        arbitration=pb.Group(
            mode=pb.ARBITRATION_MODE_SEQUENTIAL,
            children=[
                pb.Child(promotion="p1"),
                pb.Child(
                    group=pb.Group(
                        id="g1",
                        mode=pb.ARBITRATION_MODE_SUMMATION,
                        children=[pb.Child(promotion="p2")],
                    )
                ),
            ],
        ),
    )


def issues_of(program: pb.Program) -> list[ConfigIssue]:
    try:
        validate_program(program)
    except ConfigError as exc:
        return list(exc.issues)
    return []


def where(issue: ConfigIssue) -> tuple[str, str, str]:
    return (issue.object_kind, issue.object_id, issue.field)


def only_issue(program: pb.Program, kind: str, object_id: str, field: str) -> ConfigIssue:
    """Assert that the program has exactly one issue, at (kind, id, field); return it."""
    issues = issues_of(program)
    assert [where(i) for i in issues] == [(kind, object_id, field)], issues
    return issues[0]


def promotion(program: pb.Program, promotion_id: str) -> pb.Promotion:
    return next(p for p in program.promotions if p.id == promotion_id)


def product_benefit(program: pb.Program) -> pb.Benefit:
    """The first benefit of p1's first product rule, cleared, for a test to fill."""
    benefit = promotion(program, "p1").product_rules[0].benefits[0]
    benefit.Clear()
    return benefit


def order_benefit(program: pb.Program) -> pb.Benefit:
    """The first benefit of p2's first order rule, cleared, for a test to fill."""
    benefit = promotion(program, "p2").order_rules[0].benefits[0]
    benefit.Clear()
    return benefit


PB0 = "product_rules[0].benefits[0]"
OB0 = "order_rules[0].benefits[0]"


def test_valid_program_passes() -> None:
    validate_program(valid_program())


def test_empty_program_passes() -> None:
    validate_program(pb.Program(id=P))


# ---------------------------------------------------------------------------------- program


def test_program_needs_an_id() -> None:
    program = valid_program()
    program.id = ""
    only_issue(program, "program", "", "id")


def test_unknown_time_zone() -> None:
    program = valid_program()
    program.time_zone = "Mars/Olympus_Mons"
    issue = only_issue(program, "program", P, "time_zone")
    assert "Mars/Olympus_Mons" in issue.message


@pytest.mark.parametrize("zone", ["Europe", "../etc/passwd", "europe/moscow", " UTC"])
def test_malformed_time_zones(zone: str) -> None:
    program = valid_program()
    program.time_zone = zone
    only_issue(program, "program", P, "time_zone")


def test_empty_time_zone_is_utc() -> None:
    program = valid_program()
    program.time_zone = ""
    validate_program(program)


def test_currency_is_three_letters() -> None:
    program = valid_program()
    program.currency = "RUBLE"
    only_issue(program, "program", P, "currency")


def test_main_arbitration_needs_a_mode() -> None:
    program = valid_program()
    program.arbitration.mode = pb.ARBITRATION_MODE_UNSPECIFIED
    issue = only_issue(program, "program", P, "arbitration.mode")
    assert "MAX_BENEFIT" in issue.message


def test_missing_main_arbitration_needs_a_mode_when_there_are_promotions() -> None:
    program = valid_program()
    program.ClearField("arbitration")
    only_issue(program, "program", P, "arbitration.mode")


def test_main_arbitration_needs_no_mode_without_promotions() -> None:
    program = valid_program()
    program.ClearField("promotions")
    program.ClearField("arbitration")
    validate_program(program)


def test_group_needs_a_mode() -> None:
    program = valid_program()
    program.arbitration.children[1].group.mode = pb.ARBITRATION_MODE_UNSPECIFIED
    only_issue(program, "group", "g1", "mode")


def test_anonymous_group_is_reported_on_the_program_by_path() -> None:
    program = valid_program()
    group = program.arbitration.children[1].group
    group.id = ""
    group.mode = pb.ARBITRATION_MODE_UNSPECIFIED
    only_issue(program, "program", P, "arbitration.children[1].group.mode")


def test_unknown_mode_number() -> None:
    program = valid_program()
    program.arbitration.children[1].group.mode = 42  # type: ignore[assignment]
    only_issue(program, "group", "g1", "mode")


# ------------------------------------------------------------------------------ point types


def test_standard_type_needs_a_ratio() -> None:
    program = valid_program()
    program.point_types[0].ClearField("ratio")
    only_issue(program, "point_type", "bonus", "ratio")


def test_unspecified_kind_is_standard_and_needs_a_ratio() -> None:
    program = valid_program()
    program.point_types[0].kind = pb.POINT_KIND_UNSPECIFIED
    program.point_types[0].ClearField("ratio")
    only_issue(program, "point_type", "bonus", "ratio")


@pytest.mark.parametrize(
    ("points", "money", "field"),
    [(0, 100, "ratio.points"), (1, 0, "ratio.money"), (-1, 100, "ratio.points")],
)
def test_ratio_needs_positive_points_and_money(points: int, money: int, field: str) -> None:
    program = valid_program()
    program.point_types[0].ratio.CopyFrom(pb.Ratio(points=points, money=money))
    only_issue(program, "point_type", "bonus", field)


def test_qualification_type_needs_no_ratio_but_a_given_one_is_checked() -> None:
    program = valid_program()
    validate_program(program)  # "qual" has none
    program.point_types[1].ratio.CopyFrom(pb.Ratio(points=1, money=0))
    only_issue(program, "point_type", "qual", "ratio.money")


def test_negative_initial_balance() -> None:
    program = valid_program()
    program.point_types[0].initial_balance = -5
    only_issue(program, "point_type", "bonus", "initial_balance")


def test_initial_balance_is_standard_only() -> None:
    program = valid_program()
    program.point_types[1].initial_balance = 10
    only_issue(program, "point_type", "qual", "initial_balance")


def test_validity_with_a_unit_needs_a_count() -> None:
    program = valid_program()
    program.point_types[0].validity.CopyFrom(pb.Period(unit=pb.PERIOD_UNIT_YEAR))
    only_issue(program, "point_type", "bonus", "validity.count")


def test_empty_validity_means_never_expires() -> None:
    program = valid_program()
    program.point_types[0].validity.CopyFrom(pb.Period())
    validate_program(program)


def test_two_point_types_with_one_id() -> None:
    program = valid_program()
    program.point_types.append(
        pb.PointType(id="bonus", kind=pb.POINT_KIND_STANDARD, ratio=pb.Ratio(points=1, money=1))
    )
    issue = only_issue(program, "point_type", "bonus", "id")
    assert "point_types[0]" in issue.message


def test_point_type_needs_an_id() -> None:
    program = valid_program()
    program.point_types.append(pb.PointType(ratio=pb.Ratio(points=1, money=1)))
    only_issue(program, "program", P, "point_types[2].id")


def test_unknown_point_kind_number() -> None:
    program = valid_program()
    program.point_types[0].kind = 7  # type: ignore[assignment]
    only_issue(program, "point_type", "bonus", "kind")


# ------------------------------------------------------------------------------ tier groups


def test_tier_group_needs_a_model() -> None:
    program = valid_program()
    program.tier_groups[0].model = pb.TIER_MODEL_UNSPECIFIED
    only_issue(program, "tier_group", "status", "model")


@pytest.mark.parametrize("point_type", ["", "nope"])
def test_tier_group_point_type_must_exist(point_type: str) -> None:
    program = valid_program()
    program.tier_groups[0].point_type = point_type
    only_issue(program, "tier_group", "status", "point_type")


def test_tier_group_may_use_a_standard_type() -> None:
    program = valid_program()
    program.tier_groups[0].point_type = "bonus"
    validate_program(program)


def test_tier_group_needs_tiers() -> None:
    program = valid_program()
    del program.tier_groups[0].tiers[:]
    only_issue(program, "tier_group", "status", "tiers")


def test_first_tier_starts_at_zero() -> None:
    program = valid_program()
    program.tier_groups[0].tiers[0].min_balance = 10
    only_issue(program, "tier_group", "status", "tiers[0].min_balance")


@pytest.mark.parametrize("min_balance", [1000, 999])
def test_tiers_ordered_by_min_balance(min_balance: int) -> None:
    program = valid_program()
    program.tier_groups[0].tiers[2].min_balance = min_balance
    only_issue(program, "tier_group", "status", "tiers[2].min_balance")


def test_tier_ids_unique_within_the_program() -> None:
    program = valid_program()
    program.tier_groups.append(
        pb.TierGroup(
            id="other",
            model=pb.TIER_MODEL_DYNAMIC,
            point_type="qual",
            tiers=[pb.Tier(id="gold", min_balance=0)],
        )
    )
    issue = only_issue(program, "tier_group", "other", "tiers[0].id")
    assert "tier_groups[0].tiers[2]" in issue.message


def test_tier_needs_an_id() -> None:
    program = valid_program()
    program.tier_groups[0].tiers[1].id = ""
    only_issue(program, "tier_group", "status", "tiers[1].id")


def test_cyclic_tier_group_needs_a_period() -> None:
    program = valid_program()
    program.tier_groups[0].model = pb.TIER_MODEL_CYCLIC
    only_issue(program, "tier_group", "status", "period")
    program.tier_groups[0].period.CopyFrom(pb.Period(count=0, unit=pb.PERIOD_UNIT_MONTH))
    only_issue(program, "tier_group", "status", "period.count")
    program.tier_groups[0].period.count = 6
    validate_program(program)


def test_cyclic_settings_on_another_model() -> None:
    program = valid_program()
    program.tier_groups[0].reset = True
    only_issue(program, "tier_group", "status", "reset")


# --------------------------------------------------------------------------------- partners


def test_partner_discount_share_at_most_100_percent() -> None:
    program = valid_program()
    program.partners[0].discount_bp = 10001
    only_issue(program, "partner", "acme", "discount_bp")


def test_partner_points_share_may_exceed_100_percent_but_not_be_negative() -> None:
    program = valid_program()
    program.partners[0].points_bp = 20000
    validate_program(program)
    program.partners[0].points_bp = -1
    only_issue(program, "partner", "acme", "points_bp")


def test_two_partners_with_one_id() -> None:
    program = valid_program()
    program.partners.append(pb.Partner(id="acme"))
    only_issue(program, "partner", "acme", "id")


# ------------------------------------------------------------------------------- segments


def test_member_segment_member_ids_not_empty() -> None:
    program = valid_program()
    program.member_segments[0].members.append("")
    only_issue(program, "member_segment", "vip", "members[1]")


def test_product_segment_partner_must_exist() -> None:
    program = valid_program()
    program.product_segments[0].partners.append("globex")
    only_issue(program, "product_segment", "tech", "partners[0]")


def test_product_segment_price_bounds() -> None:
    program = valid_program()
    segment = program.product_segments[0]
    segment.min_unit_price, segment.max_unit_price = 500, 100
    only_issue(program, "product_segment", "tech", "max_unit_price")
    segment.min_unit_price, segment.max_unit_price = -1, 0
    only_issue(program, "product_segment", "tech", "min_unit_price")


def test_field_predicate_in_needs_values() -> None:
    program = valid_program()
    program.product_segments[0].fields.append(pb.FieldPredicate(field="x", op=pb.FIELD_OP_IN))
    only_issue(program, "product_segment", "tech", "fields[0].values")


def test_field_predicate_values_only_with_in() -> None:
    program = valid_program()
    program.product_segments[0].fields.append(
        pb.FieldPredicate(field="x", op=pb.FIELD_OP_GT, values=[1])
    )
    only_issue(program, "product_segment", "tech", "fields[0].values")


def test_field_predicate_names_a_field() -> None:
    program = valid_program()
    program.product_segments[0].fields.append(pb.FieldPredicate(value=3))
    only_issue(program, "product_segment", "tech", "fields[0].field")


def test_contains_product_segment_must_exist() -> None:
    program = valid_program()
    program.order_segments[0].contains.append(pb.Contains(product_segment="food"))
    only_issue(program, "order_segment", "big", "contains[0].product_segment")


def test_contains_names_a_product_segment_not_an_order_segment() -> None:
    program = valid_program()
    program.order_segments[0].contains.append(pb.Contains(product_segment="big"))
    issue = only_issue(program, "order_segment", "big", "contains[0].product_segment")
    assert "order segment" in issue.message


def test_order_segment_bounds() -> None:
    program = valid_program()
    program.order_segments[0].max_subtotal = 5000
    only_issue(program, "order_segment", "big", "max_subtotal")
    program.order_segments[0].max_subtotal = 0
    program.order_segments[0].min_items = -2
    only_issue(program, "order_segment", "big", "min_items")


def test_two_segments_of_one_kind_with_one_id() -> None:
    program = valid_program()
    program.product_segments.append(pb.ProductSegment(id="tech"))
    only_issue(program, "product_segment", "tech", "id")


def test_segments_of_different_kinds_may_share_an_id() -> None:
    program = valid_program()
    program.order_segments.append(pb.OrderSegment(id="tech"))
    validate_program(program)


# --------------------------------------------------------------------------------- pools


def test_promo_code_unique_case_insensitively_across_pools() -> None:
    program = valid_program()
    program.promo_code_pools.append(pb.PromoCodePool(id="pool2", codes=[pb.PromoCode(code="save")]))
    issue = only_issue(program, "promo_code_pool", "pool2", "codes[0].code")
    assert "promo_code_pools[0].codes[0]" in issue.message


@pytest.mark.parametrize("code", ["", "SAVE 10"])
def test_promo_code_text(code: str) -> None:
    program = valid_program()
    program.promo_code_pools[0].codes[0].code = code
    only_issue(program, "promo_code_pool", "pool", "codes[0].code")


def test_promo_code_limits_not_negative() -> None:
    program = valid_program()
    program.promo_code_pools[0].codes[0].max_uses = -1
    only_issue(program, "promo_code_pool", "pool", "codes[0].max_uses")


def test_pool_valid_to_after_valid_from() -> None:
    program = valid_program()
    pool = program.promo_code_pools[0]
    pool.valid_from.FromSeconds(2000)
    pool.valid_to.FromSeconds(1000)
    only_issue(program, "promo_code_pool", "pool", "valid_to")


# ------------------------------------------------------------------------ trigger promotions


def test_trigger_rule_point_type_must_exist() -> None:
    program = valid_program()
    program.trigger_promotions[0].rules[0].point_type = "miles"
    only_issue(program, "trigger_promotion", "install", "rules[0].point_type")


def test_trigger_rule_fixed_or_range_not_both() -> None:
    program = valid_program()
    program.trigger_promotions[0].rules[0].accrual.max = 500
    only_issue(program, "trigger_promotion", "install", "rules[0].accrual.fixed")


def test_trigger_range_max_not_below_min() -> None:
    program = valid_program()
    program.trigger_promotions[0].rules[0].deduction.CopyFrom(pb.AmountRule(min=50, max=10))
    only_issue(program, "trigger_promotion", "install", "rules[0].deduction.max")


def test_trigger_rule_needs_an_accrual_or_a_deduction() -> None:
    program = valid_program()
    program.trigger_promotions[0].rules[0].ClearField("accrual")
    only_issue(program, "trigger_promotion", "install", "rules[0]")


def test_trigger_amount_rule_needs_a_value() -> None:
    program = valid_program()
    program.trigger_promotions[0].rules[0].accrual.CopyFrom(pb.AmountRule())
    program.trigger_promotions[0].rules[0].accrual.SetInParent()
    only_issue(program, "trigger_promotion", "install", "rules[0].accrual")


def test_trigger_one_rule_per_point_type() -> None:
    program = valid_program()
    program.trigger_promotions[0].rules.append(
        pb.TriggerRule(point_type="bonus", deduction=pb.AmountRule(fixed=1))
    )
    only_issue(program, "trigger_promotion", "install", "rules[1].point_type")


def test_trigger_period_is_checked() -> None:
    program = valid_program()
    program.trigger_promotions[0].period.duration.CopyFrom(
        pb.Period(count=1, unit=pb.PERIOD_UNIT_MONTH)
    )
    only_issue(program, "trigger_promotion", "install", "period.duration")


# ------------------------------------------------------------------------------ promotions


def test_two_promotions_with_one_id() -> None:
    program = valid_program()
    program.promotions.append(pb.Promotion(id="p1"))
    issue = only_issue(program, "promotion", "p1", "id")
    assert "promotions[0]" in issue.message


def test_promotion_needs_an_id() -> None:
    program = valid_program()
    program.promotions.append(pb.Promotion())
    only_issue(program, "program", P, "promotions[2].id")


def test_period_with_end_and_duration() -> None:
    program = valid_program()
    period = promotion(program, "p1").period
    period.start.FromSeconds(1000)
    period.end.FromSeconds(5000)
    period.duration.CopyFrom(pb.Period(count=7, unit=pb.PERIOD_UNIT_DAY))
    issue = only_issue(program, "promotion", "p1", "period.duration")
    assert "not both" in issue.message


def test_duration_needs_a_start() -> None:
    program = valid_program()
    promotion(program, "p1").period.duration.CopyFrom(pb.Period(count=7))
    only_issue(program, "promotion", "p1", "period.duration")


def test_duration_needs_a_count() -> None:
    program = valid_program()
    period = promotion(program, "p1").period
    period.start.FromSeconds(1000)
    period.duration.CopyFrom(pb.Period(unit=pb.PERIOD_UNIT_WEEK))
    only_issue(program, "promotion", "p1", "period.duration.count")


def test_period_end_after_start() -> None:
    program = valid_program()
    period = promotion(program, "p1").period
    period.start.FromSeconds(5000)
    period.end.FromSeconds(5000)
    only_issue(program, "promotion", "p1", "period.end")


@pytest.mark.parametrize("month", [0, 13])
def test_months_are_1_to_12(month: int) -> None:
    program = valid_program()
    promotion(program, "p1").availability.months.extend([1, month])
    only_issue(program, "promotion", "p1", "availability.months[1]")


def test_weekday_unspecified_is_not_a_day() -> None:
    program = valid_program()
    promotion(program, "p1").availability.weekdays.append(pb.WEEKDAY_UNSPECIFIED)
    only_issue(program, "promotion", "p1", "availability.weekdays[0]")


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("9:00", "18:00", "start"),
        ("09:00", "24:00", "end"),
        ("09:60", "18:00", "start"),
        ("", "18:00", "start"),
        ("0900", "18:00", "start"),
    ],
)
def test_time_windows_are_hh_mm(start: str, end: str, field: str) -> None:
    program = valid_program()
    promotion(program, "p1").availability.time_windows.append(pb.TimeWindow(start=start, end=end))
    only_issue(program, "promotion", "p1", f"availability.time_windows[0].{field}")


def test_time_windows_may_wrap_midnight() -> None:
    program = valid_program()
    promotion(program, "p1").availability.time_windows.append(
        pb.TimeWindow(start="22:00", end="06:00")
    )
    validate_program(program)


def test_promo_code_pool_must_exist() -> None:
    program = valid_program()
    promotion(program, "p1").promo_code_pool = "summer"
    only_issue(program, "promotion", "p1", "promo_code_pool")


def test_audience_member_segment_must_exist() -> None:
    program = valid_program()
    promotion(program, "p1").audience.CopyFrom(
        pb.Audience(kind=pb.AUDIENCE_KIND_IN_SEGMENTS, segments=["vip", "tech"])
    )
    issue = only_issue(program, "promotion", "p1", "audience.segments[1]")
    assert "product segment" in issue.message  # "tech" is a segment of another kind


def test_audience_tiers_by_tier_id() -> None:
    program = valid_program()
    audience = promotion(program, "p1").audience
    audience.CopyFrom(pb.Audience(kind=pb.AUDIENCE_KIND_TIERS, tiers=["gold"]))
    validate_program(program)
    audience.tiers.append("status")  # a tier group id is not a tier id
    only_issue(program, "promotion", "p1", "audience.tiers[1]")


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        (pb.AUDIENCE_KIND_IN_SEGMENTS, "audience.segments"),
        (pb.AUDIENCE_KIND_NOT_IN_SEGMENTS, "audience.segments"),
        (pb.AUDIENCE_KIND_TIERS, "audience.tiers"),
    ],
)
def test_audience_kind_needs_its_list(kind: pb.AudienceKind, field: str) -> None:
    program = valid_program()
    promotion(program, "p1").audience.kind = kind
    only_issue(program, "promotion", "p1", field)


def test_audience_segments_without_a_segment_kind() -> None:
    program = valid_program()
    promotion(program, "p1").audience.segments.append("vip")  # kind unspecified: ALL_MEMBERS
    only_issue(program, "promotion", "p1", "audience.segments")


def test_product_scope_segment_must_be_a_product_segment() -> None:
    program = valid_program()
    promotion(program, "p1").product_rules[0].scope.CopyFrom(
        pb.Scope(kind=pb.SCOPE_KIND_IN_SEGMENTS, segments=["big"])
    )
    only_issue(program, "promotion", "p1", "product_rules[0].scope.segments[0]")


def test_order_scope_segment_must_be_an_order_segment() -> None:
    program = valid_program()
    promotion(program, "p2").order_rules[0].scope.CopyFrom(
        pb.Scope(kind=pb.SCOPE_KIND_NOT_IN_SEGMENTS, segments=["tech"])
    )
    only_issue(program, "promotion", "p2", "order_rules[0].scope.segments[0]")


def test_scope_in_segments_needs_segments() -> None:
    program = valid_program()
    promotion(program, "p1").product_rules[0].scope.kind = pb.SCOPE_KIND_IN_SEGMENTS
    only_issue(program, "promotion", "p1", "product_rules[0].scope.segments")


def test_min_quantity_not_negative() -> None:
    program = valid_program()
    promotion(program, "p1").product_rules[0].min_quantity = -1
    only_issue(program, "promotion", "p1", "product_rules[0].min_quantity")


def test_channel_needs_a_name() -> None:
    program = valid_program()
    promotion(program, "p1").channels.append(pb.ChannelRef(points_of_contact=["till-1"]))
    only_issue(program, "promotion", "p1", "channels[0].channel")


# -------------------------------------------------------------------------------- benefits


def test_benefit_without_its_oneof() -> None:
    program = valid_program()
    product_benefit(program)
    issue = only_issue(program, "promotion", "p1", PB0)
    assert "discount" in issue.message


@pytest.mark.parametrize(
    ("fill", "rule", "field"),
    [
        (lambda b: b.discount.SetInParent(), "product", "discount"),
        (
            lambda b: b.pay_with_points.CopyFrom(pb.PayWithPoints(point_type="bonus")),
            "product",
            "pay_with_points",
        ),
        (
            lambda b: b.accrue_points.CopyFrom(pb.AccruePoints(point_type="bonus")),
            "product",
            "accrue_points",
        ),
        (lambda b: b.shipping_discount.SetInParent(), "order", "shipping_discount"),
    ],
)
def test_benefit_message_without_its_own_oneof(
    fill: Callable[[pb.Benefit], None], rule: str, field: str
) -> None:
    program = valid_program()
    if rule == "product":
        fill(product_benefit(program))
        only_issue(program, "promotion", "p1", f"{PB0}.{field}")
    else:
        fill(order_benefit(program))
        only_issue(program, "promotion", "p2", f"{OB0}.{field}")


def test_factor_bp_of_zero() -> None:
    program = valid_program()
    product_benefit(program).price_from_field.CopyFrom(pb.PriceFromField(field="rrp"))
    only_issue(program, "promotion", "p1", f"{PB0}.price_from_field.factor_bp")


def test_price_from_field_names_a_field() -> None:
    program = valid_program()
    product_benefit(program).price_from_field.CopyFrom(pb.PriceFromField(factor_bp=7500))
    only_issue(program, "promotion", "p1", f"{PB0}.price_from_field.field")


def test_per_amount_of_zero() -> None:
    program = valid_program()
    product_benefit(program).accrue_per_spent.CopyFrom(
        pb.AccruePerSpent(point_type="bonus", points=200)
    )
    only_issue(program, "promotion", "p1", f"{PB0}.accrue_per_spent.per_amount")


def test_discount_above_100_percent() -> None:
    program = valid_program()
    product_benefit(program).discount.percent_bp = 10001
    only_issue(program, "promotion", "p1", f"{PB0}.discount.percent_bp")


def test_points_payment_above_100_percent() -> None:
    program = valid_program()
    product_benefit(program).pay_with_points.CopyFrom(
        pb.PayWithPoints(point_type="bonus", percent_bp=10001)
    )
    only_issue(program, "promotion", "p1", f"{PB0}.pay_with_points.percent_bp")


def test_shipping_discount_above_100_percent() -> None:
    program = valid_program()
    order_benefit(program).shipping_discount.percent_bp = 10001
    only_issue(program, "promotion", "p2", f"{OB0}.shipping_discount.percent_bp")


def test_accrual_may_exceed_100_percent() -> None:
    program = valid_program()
    promotion(program, "p2").order_rules[0].benefits[0].accrue_points.percent_bp = 20000
    validate_program(program)


@pytest.mark.parametrize(
    ("fill", "field"),
    [
        (lambda b: b.discount.CopyFrom(pb.Discount(amount=-1)), "discount.amount"),
        (lambda b: b.discount.CopyFrom(pb.Discount(fixed_price=-1)), "discount.fixed_price"),
        (lambda b: b.discount.CopyFrom(pb.Discount(percent_bp=-1)), "discount.percent_bp"),
        (
            lambda b: b.discount.CopyFrom(pb.Discount(percent_bp=1, max_items=-1)),
            "discount.max_items",
        ),
        (
            lambda b: b.pay_with_points.CopyFrom(pb.PayWithPoints(point_type="bonus", points=-3)),
            "pay_with_points.points",
        ),
        (
            lambda b: b.pay_with_points.CopyFrom(pb.PayWithPoints(point_type="bonus", amount=-3)),
            "pay_with_points.amount",
        ),
        (
            lambda b: b.accrue_points.CopyFrom(pb.AccruePoints(point_type="bonus", points=-3)),
            "accrue_points.points",
        ),
        (
            lambda b: b.accrue_points.CopyFrom(pb.AccruePoints(point_type="bonus", percent_bp=-3)),
            "accrue_points.percent_bp",
        ),
        (
            lambda b: b.accrue_per_spent.CopyFrom(
                pb.AccruePerSpent(point_type="bonus", points=-1, per_amount=100)
            ),
            "accrue_per_spent.points",
        ),
        (
            lambda b: b.accrue_per_spent.CopyFrom(
                pb.AccruePerSpent(point_type="bonus", points=1, per_amount=-100)
            ),
            "accrue_per_spent.per_amount",
        ),
    ],
)
def test_negative_values(fill: Callable[[pb.Benefit], None], field: str) -> None:
    program = valid_program()
    fill(product_benefit(program))
    only_issue(program, "promotion", "p1", f"{PB0}.{field}")


def test_fixed_price_of_zero_is_valid() -> None:
    program = valid_program()
    product_benefit(program).discount.fixed_price = 0
    validate_program(program)


@pytest.mark.parametrize(
    ("fill", "field"),
    [
        (lambda b: b.discount.CopyFrom(pb.Discount(fixed_price=100)), "discount.fixed_price"),
        (
            lambda b: b.discount.CopyFrom(pb.Discount(percent_bp=100, max_items=2)),
            "discount.max_items",
        ),
        (
            lambda b: b.pay_with_points.CopyFrom(
                pb.PayWithPoints(point_type="bonus", percent_bp=100, max_items=1)
            ),
            "pay_with_points.max_items",
        ),
        (
            lambda b: b.price_from_field.CopyFrom(pb.PriceFromField(field="rrp", factor_bp=9000)),
            "price_from_field",
        ),
        (
            lambda b: b.round_price.CopyFrom(pb.RoundPrice(mode=pb.ROUND_MODE_FLOOR_TENS)),
            "round_price",
        ),
        (
            lambda b: b.partner_discount.CopyFrom(pb.PartnerDiscount(partners=["acme"])),
            "partner_discount",
        ),
        (
            lambda b: b.partner_points.CopyFrom(
                pb.PartnerPoints(partners=["acme"], point_type="bonus")
            ),
            "partner_points",
        ),
        (
            lambda b: b.accrue_from_field.CopyFrom(
                pb.AccrueFromField(point_type="bonus", field="pts")
            ),
            "accrue_from_field",
        ),
    ],
)
def test_per_unit_benefits_outside_product_rules(
    fill: Callable[[pb.Benefit], None], field: str
) -> None:
    program = valid_program()
    fill(order_benefit(program))
    issue = only_issue(program, "promotion", "p2", f"{OB0}.{field}")
    assert "product rule" in issue.message


def test_per_unit_benefits_are_fine_in_product_rules() -> None:
    program = valid_program()
    benefits = promotion(program, "p1").product_rules[0].benefits
    benefits.extend(
        [
            pb.Benefit(discount=pb.Discount(fixed_price=100, max_items=2)),
            pb.Benefit(price_from_field=pb.PriceFromField(field="rrp", factor_bp=9000)),
            pb.Benefit(round_price=pb.RoundPrice()),
            pb.Benefit(partner_discount=pb.PartnerDiscount(partners=["acme"])),
            pb.Benefit(partner_points=pb.PartnerPoints(partners=["acme"], point_type="bonus")),
            pb.Benefit(accrue_from_field=pb.AccrueFromField(point_type="qual", field="pts")),
            pb.Benefit(
                pay_with_points=pb.PayWithPoints(point_type="bonus", points=10, max_items=1)
            ),
        ]
    )
    validate_program(program)


def test_shipping_discount_outside_order_rules() -> None:
    program = valid_program()
    product_benefit(program).shipping_discount.amount = 100
    issue = only_issue(program, "promotion", "p1", f"{PB0}.shipping_discount")
    assert "order rule" in issue.message


def test_pay_with_points_of_a_qualification_type() -> None:
    program = valid_program()
    product_benefit(program).pay_with_points.CopyFrom(
        pb.PayWithPoints(point_type="qual", percent_bp=1000)
    )
    only_issue(program, "promotion", "p1", f"{PB0}.pay_with_points.point_type")


def test_accruing_qualification_points_is_fine() -> None:
    program = valid_program()
    product_benefit(program).accrue_points.CopyFrom(
        pb.AccruePoints(point_type="qual", percent_bp=10000)
    )
    validate_program(program)


@pytest.mark.parametrize(
    ("fill", "field"),
    [
        (
            lambda b: b.accrue_points.CopyFrom(pb.AccruePoints(point_type="miles", points=1)),
            "accrue_points.point_type",
        ),
        (
            lambda b: b.pay_with_points.CopyFrom(pb.PayWithPoints(percent_bp=1)),
            "pay_with_points.point_type",
        ),
        (
            lambda b: b.accrue_per_spent.CopyFrom(
                pb.AccruePerSpent(point_type="miles", points=1, per_amount=1)
            ),
            "accrue_per_spent.point_type",
        ),
        (
            lambda b: b.accrue_from_field.CopyFrom(
                pb.AccrueFromField(point_type="miles", field="x")
            ),
            "accrue_from_field.point_type",
        ),
        (
            lambda b: b.partner_points.CopyFrom(
                pb.PartnerPoints(partners=["acme"], point_type="miles")
            ),
            "partner_points.point_type",
        ),
        (
            lambda b: b.partner_points.CopyFrom(
                pb.PartnerPoints(partners=["globex"], point_type="bonus")
            ),
            "partner_points.partners[0]",
        ),
        (
            lambda b: b.partner_discount.CopyFrom(pb.PartnerDiscount(partners=["acme", "globex"])),
            "partner_discount.partners[1]",
        ),
        (lambda b: b.partner_discount.SetInParent(), "partner_discount.partners"),
    ],
)
def test_benefit_references_must_exist(fill: Callable[[pb.Benefit], None], field: str) -> None:
    program = valid_program()
    fill(product_benefit(program))
    only_issue(program, "promotion", "p1", f"{PB0}.{field}")


def test_unknown_round_mode_number() -> None:
    program = valid_program()
    product_benefit(program).round_price.mode = 9  # type: ignore[assignment]
    only_issue(program, "promotion", "p1", f"{PB0}.round_price.mode")


def test_unknown_timing_number() -> None:
    program = valid_program()
    product_benefit(program).accrue_points.CopyFrom(
        pb.AccruePoints(point_type="bonus", points=1, timing=5)  # type: ignore[arg-type]
    )
    only_issue(program, "promotion", "p1", f"{PB0}.accrue_points.timing")


# ------------------------------------------------------------------------------ templates


def test_every_placeholder_of_rule_16_is_known() -> None:
    program = valid_program()
    product_benefit(program).text.template = (
        "{member.id} {order.id} {order.subtotal} {order.discount} {order.total} {order.items} "
        "{order.shipping} {points.accrued.bonus} {points.redeemed.bonus} {balance.qual} "
        "{promotion.name} 🎉 {{literal}}"
    )
    validate_program(program)


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("Hi {member.name}", "unknown placeholder {member.name}"),
        ("You earn {points.accrued.miles}", "unknown point type 'miles'"),
        ("Balance {balance.}", "unknown point type ''"),
        ("{points.accrued}", "unknown placeholder"),
        ("Total {order.total", "never closed"),
        ("Total order.total}", "closes nothing"),
        ("{}", "unknown placeholder {}"),
        ("", "needs a template"),
    ],
)
def test_bad_text_templates(template: str, fragment: str) -> None:
    program = valid_program()
    product_benefit(program).text.template = template
    issue = only_issue(program, "promotion", "p1", f"{PB0}.text.template")
    assert fragment in issue.message


def test_split_template() -> None:
    assert split_template("Hi {member.id}, {{x}} 🎉") == [
        TemplatePart("Hi ", False),
        TemplatePart("member.id", True),
        TemplatePart(", {x} 🎉", False),
    ]
    assert split_template("") == []
    with pytest.raises(ValueError, match="never closed"):
        split_template("{a{b}")


# -------------------------------------------------------------------------------- the tree


def test_unknown_promotion_in_the_tree() -> None:
    program = valid_program()
    program.arbitration.children.append(pb.Child(promotion="ghost"))
    issue = only_issue(program, "program", P, "arbitration.children[2].promotion")
    assert "ghost" in issue.message


def test_unknown_promotion_in_a_nested_group() -> None:
    program = valid_program()
    program.arbitration.children[1].group.children.append(pb.Child(promotion="ghost"))
    only_issue(program, "group", "g1", "children[1].promotion")


def test_promotion_listed_twice() -> None:
    program = valid_program()
    program.arbitration.children[1].group.children.append(pb.Child(promotion="p1"))
    issue = only_issue(program, "group", "g1", "children[1].promotion")
    assert "arbitration.children[0].promotion" in issue.message


def test_child_without_a_node() -> None:
    program = valid_program()
    program.arbitration.children.append(pb.Child())
    only_issue(program, "program", P, "arbitration.children[2]")


def test_duplicated_group_ids() -> None:
    program = valid_program()
    program.arbitration.children.append(
        pb.Child(group=pb.Group(id="g1", mode=pb.ARBITRATION_MODE_SEQUENTIAL))
    )
    only_issue(program, "group", "g1", "id")


def test_unlisted_promotions_are_fine() -> None:
    program = valid_program()
    del program.arbitration.children[:]
    validate_program(program)


def _max_benefit_program(listed: int, unlisted: int) -> pb.Program:
    program = valid_program()
    ids = [f"x{i}" for i in range(listed + unlisted)]
    for promotion_id in ids:
        program.promotions.append(pb.Promotion(id=promotion_id))
    program.arbitration.children.append(
        pb.Child(
            group=pb.Group(
                id="best",
                mode=pb.ARBITRATION_MODE_MAX_BENEFIT,
                children=[pb.Child(promotion=i) for i in ids[:listed]],
            )
        )
    )
    return program


def test_max_benefit_group_of_16_children() -> None:
    validate_program(_max_benefit_program(MAX_BENEFIT_CHILDREN, 0))


def test_max_benefit_group_of_17_children() -> None:
    issue = only_issue(
        _max_benefit_program(MAX_BENEFIT_CHILDREN + 1, 0), "group", "best", "children"
    )
    assert "17" in issue.message


def test_max_benefit_main_arbitration_counts_unlisted_promotions() -> None:
    program = valid_program()
    program.arbitration.mode = pb.ARBITRATION_MODE_MAX_BENEFIT
    for i in range(MAX_BENEFIT_CHILDREN - 2):  # 2 children listed + 14 unlisted = 16
        program.promotions.append(pb.Promotion(id=f"x{i}"))
    validate_program(program)
    program.promotions.append(pb.Promotion(id="one-more"))
    only_issue(program, "program", P, "arbitration.children")


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        (pb.Limits(max_discount_bp=10001), "max_discount_bp"),
        (pb.Limits(max_discount_bp=-1), "max_discount_bp"),
        (pb.Limits(max_discount_amount=-1), "max_discount_amount"),
        (pb.Limits(min_unit_price=-1), "min_unit_price"),
        (pb.Limits(min_unit_price_bp=10001), "min_unit_price_bp"),
    ],
)
def test_limits(limits: pb.Limits, field: str) -> None:
    program = valid_program()
    program.arbitration.limits.CopyFrom(limits)
    only_issue(program, "program", P, f"arbitration.limits.{field}")
    program.arbitration.ClearField("limits")
    program.arbitration.children[1].group.limits.CopyFrom(limits)
    only_issue(program, "group", "g1", f"limits.{field}")


# ------------------------------------------------------------------------- many at once


def test_every_issue_is_reported_in_a_stable_order() -> None:
    program = valid_program()
    program.time_zone = "Nowhere/Land"
    program.point_types[0].ClearField("ratio")
    promotion(program, "p1").product_rules[0].benefits[0].discount.percent_bp = 12000
    promotion(program, "p2").order_rules[0].benefits.append(pb.Benefit())
    program.arbitration.children.append(pb.Child(promotion="ghost"))
    program.arbitration.children[1].group.mode = pb.ARBITRATION_MODE_UNSPECIFIED
    expected = [
        ("program", P, "time_zone"),
        ("point_type", "bonus", "ratio"),
        ("promotion", "p1", f"{PB0}.discount.percent_bp"),
        ("promotion", "p2", "order_rules[0].benefits[1]"),
        ("group", "g1", "mode"),
        ("program", P, "arbitration.children[2].promotion"),
    ]
    first = issues_of(program)
    assert [where(i) for i in first] == expected
    assert issues_of(program) == first


def test_error_message_names_object_and_field() -> None:
    program = valid_program()
    program.point_types[0].ClearField("ratio")
    with pytest.raises(ConfigError) as caught:
        validate_program(program)
    assert "point_type 'bonus': ratio:" in str(caught.value)


def test_issue_count_is_bounded() -> None:
    program = valid_program()
    for i in range(MAX_ISSUES + 50):
        program.arbitration.children.append(pb.Child(promotion=f"ghost{i}"))
    issues = issues_of(program)
    assert len(issues) == MAX_ISSUES
    assert issues[-1].message == "51 more issues not listed"
