"""order_from_proto (docs/contract.md, Errors) and result_to_proto, in process, no server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from arbiter.server.api.translate import (
    MAX_LINES,
    MAX_MONEY_MINOR,
    MAX_PROMO_CODES,
    MAX_QUANTITY,
    order_from_proto,
    result_to_proto,
)
from arbiter.server.engine import (
    AppliedBenefit,
    CalculationResult,
    InvalidOrder,
    LineResult,
    PointsChange,
    PromoCodeResult,
    Totals,
)
from arbiter.v1 import checkout_pb2, program_pb2

KNOWN = frozenset({"bonus", "miles"})
Request = checkout_pb2.CalculateOrderRequest


def base_request() -> Request:
    request = Request(program="demo")
    order = request.order
    order.id = "o-1"
    order.channel = "POS"
    order.point_of_contact = "till-3"
    order.region = "77"
    order.time_zone = "Europe/Moscow"
    order.shipping_cost = 500
    line = order.lines.add(id="l1", sku="SKU-1", quantity=2, unit_price=1250)
    line.categories.extend(["pc", "sale"])
    line.brand = "Acme"
    line.partner = "p1"
    line.fields["cashback"] = 7
    order.lines.add(id="l2", sku="SKU-2", quantity=1, unit_price=0)
    order.promo_codes.extend(["SPRING", "spring"])
    order.redeem.add(point_type="bonus", points=100)
    order.redeem.add(point_type="miles", points=0)
    return request


def violations(request: Request) -> dict[str, str]:
    with pytest.raises(InvalidOrder) as caught:
        order_from_proto(request, KNOWN)
    return {v.field: v.description for v in caught.value.violations}


# --- What a valid request becomes. -------------------------------------------------------------


def test_valid_order_is_copied_field_by_field() -> None:
    order, member = order_from_proto(base_request(), KNOWN)
    assert member is None
    assert (order.id, order.channel, order.point_of_contact, order.region) == (
        "o-1",
        "POS",
        "till-3",
        "77",
    )
    assert order.time_zone == "Europe/Moscow"
    assert order.created_at is None
    assert order.shipping_cost == 500
    assert order.promo_codes == ("SPRING", "spring")
    assert order.redeem == (("bonus", 100), ("miles", 0))
    first, second = order.lines
    assert (first.id, first.sku, first.quantity, first.unit_price) == ("l1", "SKU-1", 2, 1250)
    assert first.categories == ("pc", "sale")
    assert (first.brand, first.partner) == ("Acme", "p1")
    assert dict(first.fields) == {"cashback": 7}
    assert (second.categories, dict(second.fields)) == ((), {})


def test_created_at_becomes_an_aware_utc_datetime() -> None:
    request = base_request()
    request.order.created_at.CopyFrom(Timestamp(seconds=1_700_000_000, nanos=123_456_789))
    order, _ = order_from_proto(request, KNOWN)
    assert order.created_at == datetime(2023, 11, 14, 22, 13, 20, 123_456, tzinfo=UTC)


def test_member_context_becomes_member_state_named_by_member_id() -> None:
    request = base_request()
    request.member_id = "m-7"
    context = request.member_context
    context.balances.add(point_type="bonus", available=300)
    context.balances.add(point_type="miles", available=5)
    context.balances.add(point_type="bonus", available=-100)  # summed (rule 23, docs/rules.md)
    context.tiers.add(tier_group="status", tier="gold")
    context.segments.extend(["vip", "staff", "vip"])
    _, member = order_from_proto(request, KNOWN)
    assert member is not None
    assert member.member_id == "m-7"
    assert dict(member.balances) == {"bonus": 200, "miles": 5}
    assert dict(member.tiers) == {"status": "gold"}
    assert member.segments == frozenset({"vip", "staff"})


def test_empty_member_context_is_a_member_without_balances() -> None:
    request = base_request()
    request.member_context.SetInParent()
    _, member = order_from_proto(request, KNOWN)
    assert member is not None
    assert (member.member_id, dict(member.balances), member.segments) == ("", {}, frozenset())


def test_member_id_alone_is_left_to_the_caller_and_neither_is_anonymous() -> None:
    request = base_request()
    request.member_id = "m-7"
    assert order_from_proto(request, KNOWN)[1] is None
    assert order_from_proto(base_request(), KNOWN)[1] is None


def test_an_order_without_lines_is_valid() -> None:
    order, _ = order_from_proto(Request(program="demo"), KNOWN)
    assert order.lines == ()


# --- docs/contract.md, Errors: each bad field, by name. ----------------------------------------

Mutation = Callable[[Request], object]


def _set_line(index: int, **fields: object) -> Mutation:
    def mutate(request: Request) -> None:
        for name, value in fields.items():
            setattr(request.order.lines[index], name, value)

    return mutate


CASES: list[tuple[str, Mutation, str, str]] = [
    ("zero quantity", _set_line(1, quantity=0), "order.lines[1].quantity", "positive"),
    ("negative quantity", _set_line(0, quantity=-3), "order.lines[0].quantity", "positive"),
    (
        "quantity over the limit",
        _set_line(0, quantity=MAX_QUANTITY + 1),
        "order.lines[0].quantity",
        "at most",
    ),
    ("negative price", _set_line(1, unit_price=-1), "order.lines[1].unit_price", "negative"),
    (
        "price over the limit",
        _set_line(1, unit_price=MAX_MONEY_MINOR + 1),
        "order.lines[1].unit_price",
        "at most",
    ),
    ("empty line id", _set_line(1, id=""), "order.lines[1].id", "required"),
    ("duplicate line id", _set_line(1, id="l1"), "order.lines[1].id", "duplicate"),
    (
        "negative shipping",
        lambda r: setattr(r.order, "shipping_cost", -1),
        "order.shipping_cost",
        "negative",
    ),
    (
        "point type redeemed twice",
        lambda r: r.order.redeem.add(point_type="bonus", points=1),
        "order.redeem[2].point_type",
        "twice",
    ),
    (
        "negative redemption",
        lambda r: setattr(r.order.redeem[0], "points", -5),
        "order.redeem[0].points",
        "negative",
    ),
    (
        "unknown point type redeemed",
        lambda r: r.order.redeem.add(point_type="stars", points=1),
        "order.redeem[2].point_type",
        "unknown point type",
    ),
    (
        "redemption without a point type",
        lambda r: r.order.redeem.add(points=1),
        "order.redeem[2].point_type",
        "required",
    ),
    (
        "unknown point type in a member context",
        lambda r: r.member_context.balances.add(point_type="stars", available=1),
        "member_context.balances[0].point_type",
        "unknown point type",
    ),
    (
        "unknown time zone",
        lambda r: setattr(r.order, "time_zone", "Mars/Olympus_Mons"),
        "order.time_zone",
        "unknown time zone",
    ),
    (
        "malformed time zone",
        lambda r: setattr(r.order, "time_zone", "../../etc/passwd"),
        "order.time_zone",
        "unknown time zone",
    ),
    (
        "a time zone folder, not a zone",
        lambda r: setattr(r.order, "time_zone", "Europe"),
        "order.time_zone",
        "unknown time zone",
    ),
    (
        "empty promo code",
        lambda r: r.order.promo_codes.append(""),
        "order.promo_codes[2]",
        "empty",
    ),
    (
        "created_at out of range",
        lambda r: r.order.created_at.CopyFrom(Timestamp(seconds=-62_135_596_800)),
        "order.created_at",
        "outside",
    ),
    (
        "tier group given twice",
        lambda r: r.member_context.tiers.extend(
            [
                checkout_pb2.TierRef(tier_group="g", tier="a"),
                checkout_pb2.TierRef(tier_group="g", tier="b"),
            ]
        ),
        "member_context.tiers[1].tier_group",
        "twice",
    ),
    (
        "tier without a tier",
        lambda r: r.member_context.tiers.add(tier_group="g"),
        "member_context.tiers[0].tier",
        "required",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [pytest.param(m, f, w, id=name) for name, m, f, w in CASES],
)
def test_each_bad_field_is_named(mutate: Mutation, field: str, words: str) -> None:
    request = base_request()
    mutate(request)
    found = violations(request)
    assert list(found) == [field]
    assert words in found[field]


def test_every_bad_field_is_reported_together() -> None:
    request = base_request()
    request.order.lines[0].quantity = 0
    request.order.lines[0].unit_price = -5
    request.order.lines[1].id = "l1"
    request.order.lines.add(id="", quantity=1, unit_price=1)
    request.order.shipping_cost = -10
    request.order.time_zone = "Nowhere/Town"
    request.order.redeem.add(point_type="bonus", points=-1)
    request.order.redeem.add(point_type="ghost", points=1)
    request.member_context.balances.add(point_type="ghost", available=1)
    assert set(violations(request)) == {
        "order.lines[0].quantity",
        "order.lines[0].unit_price",
        "order.lines[1].id",
        "order.lines[2].id",
        "order.shipping_cost",
        "order.time_zone",
        "order.redeem[2].point_type",
        "order.redeem[2].points",
        "order.redeem[3].point_type",
        "member_context.balances[0].point_type",
    }


def test_a_redemption_above_the_balance_is_not_an_error() -> None:
    # docs/contract.md, Errors: it is capped by the calculation and reported, not refused.
    request = base_request()
    request.member_context.balances.add(point_type="bonus", available=1)
    request.order.redeem[0].points = 1_000_000
    order_from_proto(request, KNOWN)


def test_too_many_lines_is_one_violation_without_per_line_checks() -> None:
    request = Request(program="demo")
    for _ in range(MAX_LINES + 1):
        request.order.lines.add(id="same", quantity=0, unit_price=-1)
    assert list(violations(request)) == ["order.lines"]


def test_the_limits_themselves_are_accepted() -> None:
    request = Request(program="demo")
    for index in range(MAX_LINES):
        request.order.lines.add(id=str(index), quantity=1, unit_price=1)
    request.order.promo_codes.extend(f"C{index}" for index in range(MAX_PROMO_CODES))
    order, _ = order_from_proto(request, KNOWN)
    assert len(order.lines) == MAX_LINES


def test_too_many_promo_codes() -> None:
    request = base_request()
    request.order.promo_codes.extend(f"C{index}" for index in range(MAX_PROMO_CODES))
    assert list(violations(request)) == ["order.promo_codes"]


def test_subtotal_bound_keeps_engine_arithmetic_in_int64() -> None:
    request = Request(program="demo")
    for index in range(11):
        request.order.lines.add(id=str(index), quantity=1, unit_price=MAX_MONEY_MINOR // 10)
    assert list(violations(request)) == ["order.lines"]


def test_echoed_values_are_clipped() -> None:
    request = base_request()
    request.order.time_zone = "Z" * 10_000
    (description,) = violations(request).values()
    assert len(description) < 100


# --- result_to_proto. --------------------------------------------------------------------------


def sample_result() -> CalculationResult:
    return CalculationResult(
        evaluated_at=datetime(2025, 3, 14, 9, 26, 53, 589_793, tzinfo=UTC),
        totals=Totals(
            subtotal=3000,
            discount=400,
            paid_with_points=100,
            shipping=500,
            shipping_discount=500,
            total=2500,
            items=3,
        ),
        lines=(
            LineResult("l1", 2500, 400, 100, 2000, ((2, 1000),)),
            LineResult("l2", 500, 0, 0, 500, ((1, 251), (1, 249))),
        ),
        benefits=(
            AppliedBenefit("l1", "A", "DISCOUNT", "discount", 400, 0, ""),
            AppliedBenefit("l1", "B", "POINTS", "pay_with_points", 100, 1, "bonus"),
            AppliedBenefit("", "C", "POINTS", "accrue_points", 0, 25, "bonus", "ON_DELIVERY"),
            AppliedBenefit("", "D", "DISCOUNT", "shipping_discount", 500, 0, ""),
        ),
        points=(PointsChange("bonus", 5, 1, 0, 25),),
        texts=("Happy birthday 🎂",),
        promo_codes=(
            PromoCodeResult("spring", "APPLIED", "", "pool-1"),
            PromoCodeResult("OLD", "INVALID", "EXPIRED", "pool-2"),
            PromoCodeResult("nope", "INVALID", "UNKNOWN_CODE"),
        ),
    )


def test_result_to_proto_maps_every_field() -> None:
    response = result_to_proto(sample_result(), program_version=7)
    expected = checkout_pb2.CalculateOrderResponse(
        program_version=7,
        evaluated_at=Timestamp(seconds=1_741_944_413, nanos=589_793_000),
        totals=checkout_pb2.Totals(
            subtotal=3000,
            discount=400,
            paid_with_points=100,
            shipping=500,
            shipping_discount=500,
            total=2500,
            items=3,
        ),
        lines=[
            checkout_pb2.LineResult(
                line_id="l1",
                base_price=2500,
                discount=400,
                paid_with_points=100,
                final_price=2000,
                portions=[checkout_pb2.Portion(quantity=2, unit_price=1000)],
            ),
            checkout_pb2.LineResult(
                line_id="l2",
                base_price=500,
                final_price=500,
                portions=[
                    checkout_pb2.Portion(quantity=1, unit_price=251),
                    checkout_pb2.Portion(quantity=1, unit_price=249),
                ],
            ),
        ],
        benefits=[
            checkout_pb2.AppliedBenefit(
                line_id="l1",
                promotion="A",
                promotion_kind="DISCOUNT",
                benefit="discount",
                amount=400,
            ),
            checkout_pb2.AppliedBenefit(
                line_id="l1",
                promotion="B",
                promotion_kind="POINTS",
                benefit="pay_with_points",
                amount=100,
                points=1,
                point_type="bonus",
            ),
            checkout_pb2.AppliedBenefit(
                promotion="C",
                promotion_kind="POINTS",
                benefit="accrue_points",
                points=25,
                point_type="bonus",
                timing=program_pb2.TIMING_ON_DELIVERY,
            ),
            checkout_pb2.AppliedBenefit(
                promotion="D",
                promotion_kind="DISCOUNT",
                benefit="shipping_discount",
                amount=500,
            ),
        ],
        points=[
            checkout_pb2.PointsChange(
                point_type="bonus", requested=5, redeemed=1, accrued=0, accrued_pending=25
            )
        ],
        texts=["Happy birthday 🎂"],
        promo_codes=[
            checkout_pb2.PromoCodeResult(
                code="spring",
                status=checkout_pb2.PROMO_CODE_STATUS_APPLIED,
                promo_code_pool="pool-1",
            ),
            checkout_pb2.PromoCodeResult(
                code="OLD",
                status=checkout_pb2.PROMO_CODE_STATUS_INVALID,
                reason=checkout_pb2.PROMO_CODE_REASON_EXPIRED,
                promo_code_pool="pool-2",
            ),
            checkout_pb2.PromoCodeResult(
                code="nope",
                status=checkout_pb2.PROMO_CODE_STATUS_INVALID,
                reason=checkout_pb2.PROMO_CODE_REASON_UNKNOWN_CODE,
            ),
        ],
    )
    assert response == expected


def test_evaluated_at_in_another_zone_is_the_same_instant() -> None:
    result = sample_result()
    moscow = result.evaluated_at.astimezone(timezone_plus3())
    shifted = CalculationResult(
        moscow,
        result.totals,
        result.lines,
        result.benefits,
        result.points,
        result.texts,
        result.promo_codes,
    )
    assert result_to_proto(shifted, 1).evaluated_at == result_to_proto(result, 1).evaluated_at


def timezone_plus3() -> object:
    from datetime import timezone

    return timezone(timedelta(hours=3))


def test_every_engine_enum_name_has_a_wire_value() -> None:
    names = program_pb2.Timing.keys() + checkout_pb2.PromoCodeReason.keys()
    assert "TIMING_ON_CREATE" in names
    for timing in ("ON_CREATE", "ON_DELIVERY"):
        benefit = AppliedBenefit("", "P", "POINTS", "accrue_points", 0, 1, "bonus", timing)
        result = sample_result()
        response = result_to_proto(
            CalculationResult(
                result.evaluated_at,
                result.totals,
                (),
                (benefit,),
                (),
                (),
                (),
            ),
            1,
        )
        assert program_pb2.Timing.Name(response.benefits[0].timing) == f"TIMING_{timing}"
    for reason in (
        "UNKNOWN_CODE",
        "EXPIRED",
        "NOT_YET_VALID",
        "EXHAUSTED",
        "NO_PROMOTION_APPLIED",
        "ANOTHER_CODE_APPLIED",
    ):
        code = PromoCodeResult("X", "NOT_APPLIED", reason)
        result = sample_result()
        response = result_to_proto(
            CalculationResult(result.evaluated_at, result.totals, (), (), (), (), (code,)), 1
        )
        assert checkout_pb2.PromoCodeReason.Name(response.promo_codes[0].reason) == (
            f"PROMO_CODE_REASON_{reason}"
        )
