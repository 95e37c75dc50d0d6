"""Small builders of Program and CalculateOrderRequest messages for the reference tests."""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from arbiter.server.reference import evaluate, prepare
from arbiter.v1 import checkout_pb2 as ck
from arbiter.v1 import program_pb2 as pb

# A Wednesday noon, UTC: the default instant of every test order.
NOON = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)

Child = str | pb.Group


# --- benefits -----------------------------------------------------------------------------------


def pct(bp: int, max_items: int = 0) -> pb.Benefit:
    return pb.Benefit(discount=pb.Discount(percent_bp=bp, max_items=max_items))


def off(amount: int, max_items: int = 0) -> pb.Benefit:
    return pb.Benefit(discount=pb.Discount(amount=amount, max_items=max_items))


def fixed(price: int, max_items: int = 0) -> pb.Benefit:
    return pb.Benefit(discount=pb.Discount(fixed_price=price, max_items=max_items))


def from_field(field: str, factor_bp: int = 10000) -> pb.Benefit:
    return pb.Benefit(price_from_field=pb.PriceFromField(field=field, factor_bp=factor_bp))


def round_price(mode: int) -> pb.Benefit:
    return pb.Benefit(round_price=pb.RoundPrice(mode=mode))  # type: ignore[arg-type]


def text(template: str) -> pb.Benefit:
    return pb.Benefit(text=pb.Text(template=template))


def partner_discount(*partners: str) -> pb.Benefit:
    return pb.Benefit(partner_discount=pb.PartnerDiscount(partners=partners))


def ship_pct(bp: int) -> pb.Benefit:
    return pb.Benefit(shipping_discount=pb.ShippingDiscount(percent_bp=bp))


def ship_off(amount: int) -> pb.Benefit:
    return pb.Benefit(shipping_discount=pb.ShippingDiscount(amount=amount))


def pay_pct(point_type: str, bp: int, max_items: int = 0) -> pb.Benefit:
    return pb.Benefit(
        pay_with_points=pb.PayWithPoints(point_type=point_type, percent_bp=bp, max_items=max_items)
    )


def pay_amount(point_type: str, amount: int, max_items: int = 0) -> pb.Benefit:
    return pb.Benefit(
        pay_with_points=pb.PayWithPoints(point_type=point_type, amount=amount, max_items=max_items)
    )


def pay_points(point_type: str, points: int, max_items: int = 0) -> pb.Benefit:
    return pb.Benefit(
        pay_with_points=pb.PayWithPoints(point_type=point_type, points=points, max_items=max_items)
    )


def accrue_pct(point_type: str, bp: int, timing: int = 0) -> pb.Benefit:
    return pb.Benefit(
        accrue_points=pb.AccruePoints(
            point_type=point_type, percent_bp=bp, timing=timing  # type: ignore[arg-type]
        )
    )


def accrue_fixed(point_type: str, points: int, timing: int = 0) -> pb.Benefit:
    return pb.Benefit(
        accrue_points=pb.AccruePoints(
            point_type=point_type, points=points, timing=timing  # type: ignore[arg-type]
        )
    )


def per_spent(point_type: str, points: int, per_amount: int) -> pb.Benefit:
    return pb.Benefit(
        accrue_per_spent=pb.AccruePerSpent(
            point_type=point_type, points=points, per_amount=per_amount
        )
    )


def from_field_points(point_type: str, field: str) -> pb.Benefit:
    return pb.Benefit(accrue_from_field=pb.AccrueFromField(point_type=point_type, field=field))


def partner_points(point_type: str, *partners: str) -> pb.Benefit:
    return pb.Benefit(
        partner_points=pb.PartnerPoints(partners=partners, point_type=point_type)
    )


# --- rules, promotions, groups ------------------------------------------------------------------


def product_rule(
    *benefits: pb.Benefit,
    segments: Iterable[str] = (),
    not_in: bool = False,
    min_quantity: int = 0,
) -> pb.ProductRule:
    segments = list(segments)
    kind = pb.SCOPE_KIND_ALL
    if segments:
        kind = pb.SCOPE_KIND_NOT_IN_SEGMENTS if not_in else pb.SCOPE_KIND_IN_SEGMENTS
    return pb.ProductRule(
        scope=pb.Scope(kind=kind, segments=segments),
        min_quantity=min_quantity,
        benefits=benefits,
    )


def order_rule(
    *benefits: pb.Benefit, segments: Iterable[str] = (), not_in: bool = False
) -> pb.OrderRule:
    segments = list(segments)
    kind = pb.SCOPE_KIND_ALL
    if segments:
        kind = pb.SCOPE_KIND_NOT_IN_SEGMENTS if not_in else pb.SCOPE_KIND_IN_SEGMENTS
    return pb.OrderRule(scope=pb.Scope(kind=kind, segments=segments), benefits=benefits)


def promo(
    promotion_id: str,
    *product_rules: pb.ProductRule,
    order_rules: Iterable[pb.OrderRule] = (),
    kind: int = pb.PROMOTION_KIND_DISCOUNT,
    sequential: bool = False,
    status: int = pb.PROMOTION_STATUS_ACTIVE,
    audience: pb.Audience | None = None,
    pool: str = "",
    name: str = "",
    **extra: Any,
) -> pb.Promotion:
    message = pb.Promotion(
        id=promotion_id,
        name=name or promotion_id.upper(),
        kind=kind,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        benefit_arbitration=pb.BENEFIT_ARBITRATION_SEQUENTIAL
        if sequential
        else pb.BENEFIT_ARBITRATION_PARALLEL,
        product_rules=product_rules,
        order_rules=list(order_rules),
        promo_code_pool=pool,
        **extra,
    )
    if audience is not None:
        message.audience.CopyFrom(audience)
    return message


def group(mode: int, *children: Child, limits: pb.Limits | None = None, gid: str = "") -> pb.Group:
    message = pb.Group(id=gid, mode=mode)  # type: ignore[arg-type]
    for child in children:
        if isinstance(child, str):
            message.children.add(promotion=child)
        else:
            message.children.add(group=child)
    if limits is not None:
        message.limits.CopyFrom(limits)
    return message


SEQ = pb.ARBITRATION_MODE_SEQUENTIAL
INC = pb.ARBITRATION_MODE_INCOMPATIBLE
SUM = pb.ARBITRATION_MODE_SUMMATION
MAX = pb.ARBITRATION_MODE_MAX_BENEFIT


def point_type(
    type_id: str,
    points: int = 1,
    money: int = 100,
    *,
    qualification: bool = False,
    active: bool = True,
) -> pb.PointType:
    return pb.PointType(
        id=type_id,
        name=type_id,
        kind=pb.POINT_KIND_QUALIFICATION if qualification else pb.POINT_KIND_STANDARD,
        active=active,
        ratio=pb.Ratio(points=points, money=money),
    )


def program(
    promotions: Iterable[pb.Promotion],
    arbitration: pb.Group | None = None,
    *,
    point_types: Iterable[pb.PointType] = (),
    time_zone: str = "UTC",
    **extra: Any,
) -> pb.Program:
    message = pb.Program(
        id="prog",
        name="Program",
        database="db",
        currency="RUB",
        time_zone=time_zone,
        point_types=list(point_types) or [point_type("bonus")],
        promotions=list(promotions),
        **extra,
    )
    if arbitration is not None:
        message.arbitration.CopyFrom(arbitration)
    return message


# --- orders -------------------------------------------------------------------------------------


def line(
    line_id: str,
    unit_price: int,
    quantity: int = 1,
    *,
    sku: str = "",
    categories: Iterable[str] = (),
    brand: str = "",
    partner: str = "",
    fields: Mapping[str, int] | None = None,
) -> ck.Line:
    return ck.Line(
        id=line_id,
        sku=sku or line_id,
        quantity=quantity,
        unit_price=unit_price,
        categories=list(categories),
        brand=brand,
        partner=partner,
        fields=dict(fields or {}),
    )


def request(
    *lines: ck.Line,
    member: str | None = "m1",
    balances: Mapping[str, int] | None = None,
    tiers: Mapping[str, str] | None = None,
    segments: Iterable[str] = (),
    redeem: Mapping[str, int] | None = None,
    codes: Iterable[str] = (),
    shipping: int = 0,
    when: datetime | None = NOON,
    time_zone: str = "",
    channel: str = "",
    point_of_contact: str = "",
    region: str = "",
    context: bool = True,
) -> ck.CalculateOrderRequest:
    order = ck.Order(
        id="o1",
        channel=channel,
        point_of_contact=point_of_contact,
        region=region,
        time_zone=time_zone,
        shipping_cost=shipping,
        lines=lines,
        promo_codes=list(codes),
        redeem=[ck.Redemption(point_type=t, points=p) for t, p in (redeem or {}).items()],
    )
    if when is not None:
        order.created_at.FromDatetime(when)
    message = ck.CalculateOrderRequest(program="prog", order=order)
    if member is not None:
        message.member_id = member
    if member is not None and context:
        member_context = message.member_context
        member_context.SetInParent()
        for t, available in (balances or {}).items():
            member_context.balances.add(point_type=t, available=available)
        for g, tier in (tiers or {}).items():
            member_context.tiers.add(tier_group=g, tier=tier)
        member_context.segments.extend(segments)
    return message


def run(
    prog: pb.Program,
    req: ck.CalculateOrderRequest,
    *,
    now: datetime = NOON,
    code_uses: Mapping[str, int] | None = None,
    member_pool_uses: Mapping[str, int] | None = None,
) -> ck.CalculateOrderResponse:
    return evaluate(
        prepare(prog),
        req,
        now=now,
        code_uses=code_uses,
        member_pool_uses=member_pool_uses,
        program_version=7,
    )


# --- reading a response -------------------------------------------------------------------------

DISCOUNT_BENEFITS = frozenset({"discount", "price_from_field", "round_price", "partner_discount"})


def rows(response: ck.CalculateOrderResponse) -> list[tuple[str, str, str, int, int]]:
    """(line_id, promotion, benefit, amount, points) of every AppliedBenefit row, in order."""
    return [(b.line_id, b.promotion, b.benefit, b.amount, b.points) for b in response.benefits]


def finals(response: ck.CalculateOrderResponse) -> list[int]:
    return [result.final_price for result in response.lines]


def discounts(response: ck.CalculateOrderResponse) -> list[int]:
    return [result.discount for result in response.lines]


def points_paid(response: ck.CalculateOrderResponse) -> list[int]:
    return [result.paid_with_points for result in response.lines]


def points_changes(response: ck.CalculateOrderResponse) -> list[tuple[str, int, int, int, int]]:
    return [
        (p.point_type, p.requested, p.redeemed, p.accrued, p.accrued_pending)
        for p in response.points
    ]


def check_invariants(response: ck.CalculateOrderResponse) -> None:
    """What every response must satisfy: lines add up, rows add up, portions add up, totals."""
    totals = response.totals
    assert totals.total == (
        totals.subtotal
        - totals.discount
        - totals.paid_with_points
        + totals.shipping
        - totals.shipping_discount
    )
    assert totals.subtotal == sum(r.base_price for r in response.lines)
    assert totals.discount == sum(r.discount for r in response.lines)
    assert totals.paid_with_points == sum(r.paid_with_points for r in response.lines)
    for result in response.lines:
        assert 0 <= result.final_price <= result.base_price
        assert result.final_price == result.base_price - result.discount - result.paid_with_points
        assert result.discount >= 0
        assert len(result.portions) <= 2
        assert sum(p.quantity * p.unit_price for p in result.portions) == result.final_price
        disc_rows = [
            b.amount
            for b in response.benefits
            if b.line_id == result.line_id and b.benefit in DISCOUNT_BENEFITS
        ]
        pay_rows = [
            b.amount
            for b in response.benefits
            if b.line_id == result.line_id and b.benefit == "pay_with_points"
        ]
        assert sum(disc_rows) == result.discount
        assert sum(pay_rows) == result.paid_with_points
    ship_rows = [b.amount for b in response.benefits if b.benefit == "shipping_discount"]
    assert sum(ship_rows) == totals.shipping_discount
    assert 0 <= totals.shipping_discount <= totals.shipping
