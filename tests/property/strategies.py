"""Hypothesis strategies: random valid programs (every mode, nesting up to 3 levels, every
benefit kind, limits) and random orders with members, redemptions and promo codes."""

from __future__ import annotations

from hypothesis import strategies as st

from arbiter.v1 import checkout_pb2 as cpb
from arbiter.v1 import program_pb2 as pb

POINT_TYPES = ("bonus", "extra", "qual")
CATEGORIES = ("a", "b", "c")
SKUS = ("s1", "s2", "s3", "s4")
PARTNERS = ("p1", "p2")
PRODUCT_SEGMENTS = ("cat_a", "sku_12", "cheap", "field_x", "partner_p1")
ORDER_SEGMENTS = ("big", "web", "has_a")
CODES = ("SAVE10", "SAVE20", "ONCE")
MODES = (
    pb.ARBITRATION_MODE_SEQUENTIAL,
    pb.ARBITRATION_MODE_INCOMPATIBLE,
    pb.ARBITRATION_MODE_SUMMATION,
    pb.ARBITRATION_MODE_MAX_BENEFIT,
)
TIMINGS = (pb.TIMING_ON_CREATE, pb.TIMING_ON_DELIVERY)
TEMPLATES = (
    "Hi {member.id}: {order.total} to pay, {points.accrued.bonus} points",
    "{promotion.name}: saved {order.discount} on {order.items} items",
    "Balance {balance.bonus}, used {points.redeemed.bonus}, shipping {order.shipping}",
    # Escaped braces are literal: "{x} {order.id} {" after rendering.
    "{{x}} {{{order.id}}} {{",
)


def _ratio(draw: st.DrawFn) -> pb.Ratio:
    return pb.Ratio(points=draw(st.integers(1, 10)), money=draw(st.sampled_from([1, 50, 100, 150])))


@st.composite
def product_benefit(draw: st.DrawFn) -> pb.Benefit:
    kind = draw(
        st.sampled_from(
            [
                "discount_pct",
                "discount_amount",
                "fixed_price",
                "price_from_field",
                "round_price",
                "text",
                "partner_discount",
                "pay_pct",
                "pay_amount",
                "pay_points",
                "accrue_pct",
                "accrue_fixed",
                "per_spent",
                "from_field",
                "partner_points",
            ]
        )
    )
    b = pb.Benefit()
    max_items = draw(st.sampled_from([0, 0, 0, 1, 2, 3]))
    if kind == "discount_pct":
        b.discount.percent_bp = draw(st.integers(1, 10000))
        b.discount.max_items = max_items
    elif kind == "discount_amount":
        b.discount.amount = draw(st.integers(1, 5000))
        b.discount.max_items = max_items
    elif kind == "fixed_price":
        b.discount.fixed_price = draw(st.integers(0, 20000))
        b.discount.max_items = max_items
    elif kind == "price_from_field":
        b.price_from_field.field = "cost"
        b.price_from_field.factor_bp = draw(st.integers(1, 20000))
    elif kind == "round_price":
        b.round_price.mode = draw(st.sampled_from(list(range(1, 6))))
    elif kind == "text":
        b.text.template = draw(st.sampled_from(TEMPLATES))
    elif kind == "partner_discount":
        b.partner_discount.partners.extend(
            draw(st.lists(st.sampled_from(PARTNERS), min_size=1, max_size=2, unique=True))
        )
    elif kind.startswith("pay_"):
        b.pay_with_points.point_type = draw(st.sampled_from(["bonus", "extra"]))
        if kind == "pay_pct":
            b.pay_with_points.percent_bp = draw(st.integers(1, 10000))
        elif kind == "pay_amount":
            b.pay_with_points.amount = draw(st.integers(1, 5000))
        else:
            b.pay_with_points.points = draw(st.integers(1, 500))
        b.pay_with_points.max_items = max_items
    elif kind == "accrue_pct":
        b.accrue_points.point_type = draw(st.sampled_from(POINT_TYPES))
        b.accrue_points.percent_bp = draw(st.integers(1, 20000))
        b.accrue_points.timing = draw(st.sampled_from(TIMINGS))
    elif kind == "accrue_fixed":
        b.accrue_points.point_type = draw(st.sampled_from(POINT_TYPES))
        b.accrue_points.points = draw(st.integers(1, 100))
        b.accrue_points.timing = draw(st.sampled_from(TIMINGS))
    elif kind == "per_spent":
        b.accrue_per_spent.point_type = draw(st.sampled_from(POINT_TYPES))
        b.accrue_per_spent.points = draw(st.integers(1, 300))
        b.accrue_per_spent.per_amount = draw(st.integers(1, 50000))
        b.accrue_per_spent.timing = draw(st.sampled_from(TIMINGS))
    elif kind == "from_field":
        b.accrue_from_field.point_type = draw(st.sampled_from(POINT_TYPES))
        b.accrue_from_field.field = "pts"
        b.accrue_from_field.timing = draw(st.sampled_from(TIMINGS))
    else:
        b.partner_points.point_type = draw(st.sampled_from(POINT_TYPES))
        b.partner_points.partners.extend(
            draw(st.lists(st.sampled_from(PARTNERS), min_size=1, max_size=2, unique=True))
        )
        b.partner_points.timing = draw(st.sampled_from(TIMINGS))
    return b


@st.composite
def order_benefit(draw: st.DrawFn) -> pb.Benefit:
    kind = draw(
        st.sampled_from(
            [
                "discount_pct",
                "discount_amount",
                "text",
                "shipping_pct",
                "shipping_amount",
                "pay_pct",
                "pay_amount",
                "pay_points",
                "accrue_pct",
                "accrue_fixed",
                "per_spent",
            ]
        )
    )
    b = pb.Benefit()
    if kind == "discount_pct":
        b.discount.percent_bp = draw(st.integers(1, 10000))
    elif kind == "discount_amount":
        b.discount.amount = draw(st.integers(1, 50000))
    elif kind == "text":
        b.text.template = draw(st.sampled_from(TEMPLATES))
    elif kind == "shipping_pct":
        b.shipping_discount.percent_bp = draw(st.integers(1, 10000))
    elif kind == "shipping_amount":
        b.shipping_discount.amount = draw(st.integers(1, 2000))
    elif kind.startswith("pay_"):
        b.pay_with_points.point_type = draw(st.sampled_from(["bonus", "extra"]))
        if kind == "pay_pct":
            b.pay_with_points.percent_bp = draw(st.integers(1, 10000))
        elif kind == "pay_amount":
            b.pay_with_points.amount = draw(st.integers(1, 50000))
        else:
            b.pay_with_points.points = draw(st.integers(1, 2000))
    elif kind == "accrue_pct":
        b.accrue_points.point_type = draw(st.sampled_from(POINT_TYPES))
        b.accrue_points.percent_bp = draw(st.integers(1, 20000))
        b.accrue_points.timing = draw(st.sampled_from(TIMINGS))
    elif kind == "accrue_fixed":
        b.accrue_points.point_type = draw(st.sampled_from(POINT_TYPES))
        b.accrue_points.points = draw(st.integers(1, 100))
    else:
        b.accrue_per_spent.point_type = draw(st.sampled_from(POINT_TYPES))
        b.accrue_per_spent.points = draw(st.integers(1, 300))
        b.accrue_per_spent.per_amount = draw(st.integers(1, 50000))
    return b


def _scope(draw: st.DrawFn, segments: tuple[str, ...]) -> pb.Scope:
    kind = draw(
        st.sampled_from(
            [
                pb.SCOPE_KIND_UNSPECIFIED,
                pb.SCOPE_KIND_ALL,
                pb.SCOPE_KIND_IN_SEGMENTS,
                pb.SCOPE_KIND_NOT_IN_SEGMENTS,
            ]
        )
    )
    scope = pb.Scope(kind=kind)
    if kind in (pb.SCOPE_KIND_IN_SEGMENTS, pb.SCOPE_KIND_NOT_IN_SEGMENTS):
        scope.segments.extend(
            draw(st.lists(st.sampled_from(segments), min_size=1, max_size=2, unique=True))
        )
    return scope


@st.composite
def promotion(draw: st.DrawFn, pid: str) -> pb.Promotion:
    p = pb.Promotion(id=pid, name=f"Promo {pid}")
    p.kind = draw(st.sampled_from([pb.PROMOTION_KIND_DISCOUNT, pb.PROMOTION_KIND_POINTS]))
    p.status = draw(
        st.sampled_from(
            [pb.PROMOTION_STATUS_ACTIVE] * 8
            + [pb.PROMOTION_STATUS_INACTIVE, pb.PROMOTION_STATUS_DRAFT]
        )
    )
    p.audience.kind = draw(
        st.sampled_from(
            [
                pb.AUDIENCE_KIND_UNSPECIFIED,
                pb.AUDIENCE_KIND_EVERYONE,
                pb.AUDIENCE_KIND_EVERYONE,
                pb.AUDIENCE_KIND_IN_SEGMENTS,
                pb.AUDIENCE_KIND_NOT_IN_SEGMENTS,
                pb.AUDIENCE_KIND_TIERS,
            ]
        )
    )
    if p.audience.kind in (pb.AUDIENCE_KIND_IN_SEGMENTS, pb.AUDIENCE_KIND_NOT_IN_SEGMENTS):
        p.audience.segments.append("vip")
    elif p.audience.kind == pb.AUDIENCE_KIND_TIERS:
        p.audience.tiers.append(draw(st.sampled_from(["silver", "gold"])))
    if draw(st.integers(0, 3)) == 0:
        p.promo_code_pool = draw(st.sampled_from(["pool1", "pool2"]))
    if draw(st.integers(0, 9)) == 0:
        p.channels.add(channel="web")
    _when(draw, p)
    p.benefit_arbitration = draw(
        st.sampled_from(
            [
                pb.BENEFIT_ARBITRATION_UNSPECIFIED,
                pb.BENEFIT_ARBITRATION_PARALLEL,
                pb.BENEFIT_ARBITRATION_SEQUENTIAL,
            ]
        )
    )
    for _ in range(draw(st.integers(0, 2))):
        rule = p.product_rules.add()
        rule.scope.CopyFrom(_scope(draw, PRODUCT_SEGMENTS))
        rule.min_quantity = draw(st.sampled_from([0, 0, 1, 2, 4]))
        rule.benefits.extend(draw(st.lists(product_benefit(), min_size=1, max_size=3)))
    for _ in range(draw(st.integers(0, 1))):
        rule = p.order_rules.add()
        rule.scope.CopyFrom(_scope(draw, ORDER_SEGMENTS))
        rule.benefits.extend(draw(st.lists(order_benefit(), min_size=1, max_size=2)))
    if not p.product_rules and not p.order_rules:
        rule = p.product_rules.add()
        rule.benefits.append(draw(product_benefit()))
    return p


# Orders are placed in the week from this instant (2026-09-21, a Monday, 12:53 UTC).
ORDER_WEEK_START = 1_790_000_000


def _when(draw: st.DrawFn, p: pb.Promotion) -> None:
    """Sometimes a period, weekdays, months or a time window, around the orders' week."""
    if draw(st.integers(0, 4)) == 0:
        start = ORDER_WEEK_START + draw(st.integers(-86400, 86400 * 7))
        if draw(st.booleans()):
            p.period.start.FromSeconds(start)
        if draw(st.booleans()):
            p.period.end.FromSeconds(start + draw(st.integers(1, 86400 * 4)))
    if draw(st.integers(0, 5)) == 0:
        p.availability.weekdays.extend(
            draw(st.lists(st.integers(1, 7), min_size=1, max_size=3, unique=True))  # type: ignore[arg-type]
        )
    if draw(st.integers(0, 7)) == 0:
        p.availability.months.extend(
            draw(st.lists(st.sampled_from([8, 9, 10]), min_size=1, max_size=2, unique=True))
        )
    if draw(st.integers(0, 7)) == 0:
        p.availability.time_windows.add(
            start=draw(st.sampled_from(["00:00", "09:00", "15:30", "22:00"])),
            end=draw(st.sampled_from(["00:00", "12:00", "15:30", "06:00"])),
        )


def _limits(draw: st.DrawFn) -> pb.Limits:
    lim = pb.Limits()
    if draw(st.integers(0, 2)) == 0:
        lim.max_discount_bp = draw(st.integers(1, 10000))
    if draw(st.integers(0, 3)) == 0:
        lim.max_discount_amount = draw(st.integers(1, 100000))
    if draw(st.integers(0, 4)) == 0:
        lim.min_unit_price = draw(st.integers(1, 20000))
    if draw(st.integers(0, 4)) == 0:
        lim.min_unit_price_bp = draw(st.integers(1, 10000))
    return lim


@st.composite
def tree(draw: st.DrawFn, ids: list[str], depth: int, counter: list[int]) -> pb.Group:
    """A group holding `ids` (in some order), sub-groups down to `depth` levels."""
    g = pb.Group(id=f"g{counter[0]}", mode=draw(st.sampled_from(MODES + MODES[-1:])))
    counter[0] += 1
    if draw(st.booleans()):
        g.limits.CopyFrom(_limits(draw))
    rest = list(ids)
    while rest:
        if depth > 1 and len(rest) >= 2 and draw(st.integers(0, 2)) == 0:
            take = draw(st.integers(1, len(rest)))
            g.children.add().group.CopyFrom(draw(tree(rest[:take], depth - 1, counter)))
            rest = rest[take:]
        else:
            g.children.add(promotion=rest.pop(0))
    return g


@st.composite
def programs(draw: st.DrawFn, max_promotions: int = 6) -> pb.Program:
    p = pb.Program(id="prop", name="Property program", currency="RUB", time_zone="Europe/Moscow")
    p.point_types.add(
        id="bonus", name="Bonus", kind=pb.POINT_KIND_STANDARD, active=True, ratio=_ratio(draw)
    )
    extra = p.point_types.add(
        id="extra",
        name="Extra",
        kind=pb.POINT_KIND_STANDARD,
        active=draw(st.booleans()),
        ratio=_ratio(draw),
    )
    if draw(st.integers(0, 3)) == 0:
        extra.deactivate_at.FromSeconds(1_700_000_000)
    p.point_types.add(
        id="qual", name="Qual", kind=pb.POINT_KIND_QUALIFICATION, active=True, ratio=_ratio(draw)
    )
    tg = p.tier_groups.add(
        id="levels", name="Levels", model=pb.TIER_MODEL_DYNAMIC, point_type="qual"
    )
    tg.tiers.add(id="bronze", name="Bronze", min_balance=0)
    tg.tiers.add(id="silver", name="Silver", min_balance=1000)
    tg.tiers.add(id="gold", name="Gold", min_balance=5000)
    p.partners.add(
        id="p1",
        name="P1",
        discount_bp=draw(st.integers(0, 5000)),
        points_bp=draw(st.integers(0, 5000)),
    )
    p.partners.add(
        id="p2",
        name="P2",
        discount_bp=draw(st.integers(0, 5000)),
        points_bp=draw(st.integers(0, 5000)),
    )
    p.member_segments.add(id="vip", name="VIP", members=["m-vip"])
    p.product_segments.add(id="cat_a", categories=["a"])
    p.product_segments.add(id="sku_12", skus=["s1", "s2"])
    p.product_segments.add(id="cheap", max_unit_price=draw(st.integers(1000, 50000)))
    op = draw(st.sampled_from(list(range(1, 8))))
    predicate = p.product_segments.add(id="field_x").fields.add(field="x", op=op)
    if op == pb.FIELD_OP_IN:
        predicate.values.extend([1, 3])
    else:
        predicate.value = draw(st.integers(0, 5))
    if draw(st.booleans()):
        p.product_segments[-1].fields.add(field="cost", op=pb.FIELD_OP_GT, value=20000)
    p.product_segments.add(id="partner_p1", partners=["p1"])
    p.order_segments.add(id="big", min_subtotal=draw(st.integers(1000, 200000)))
    p.order_segments.add(id="web", channels=["web"])
    p.order_segments.add(id="has_a").contains.add(
        product_segment="cat_a", min_quantity=draw(st.integers(0, 3))
    )
    pool1 = p.promo_code_pools.add(id="pool1", max_uses_per_member=draw(st.integers(0, 2)))
    pool1.codes.add(code="SAVE10", max_uses=0)
    pool1.codes.add(code="ONCE", max_uses=1)
    pool2 = p.promo_code_pools.add(id="pool2")
    pool2.codes.add(code="save20", max_uses=5)
    if draw(st.booleans()):
        pool2.valid_to.FromSeconds(1_800_000_000)
    n = draw(st.integers(1, max_promotions))
    ids = [f"P{i}" for i in range(n)]
    for pid in ids:
        p.promotions.append(draw(promotion(pid)))
    listed = draw(st.lists(st.sampled_from(ids), unique=True, max_size=n))
    listed = [i for i in ids if i in listed]
    if draw(st.booleans()):
        listed = list(reversed(listed))
    root = draw(tree(listed, 3, [0]))
    root.id = "main"
    p.arbitration.CopyFrom(root)
    if not p.arbitration.mode:
        p.arbitration.mode = pb.ARBITRATION_MODE_SEQUENTIAL
    return p


@st.composite
def requests(draw: st.DrawFn, max_lines: int = 5) -> cpb.CalculateOrderRequest:
    r = cpb.CalculateOrderRequest(program="prop")
    o = r.order
    o.id = "order-1"
    o.channel = draw(st.sampled_from(["pos", "web"]))
    o.created_at.FromSeconds(ORDER_WEEK_START + draw(st.integers(0, 86400 * 7)))
    o.shipping_cost = draw(st.sampled_from([0, 0, 500, 30000]))
    for i in range(draw(st.integers(1, max_lines))):
        line = o.lines.add(
            id=f"l{i}",
            sku=draw(st.sampled_from(SKUS)),
            quantity=draw(st.integers(1, 5)),
            unit_price=draw(st.sampled_from([1, 99, 150, 999, 1250, 4999, 10000, 33333, 100000])),
        )
        line.categories.extend(draw(st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True)))
        line.partner = draw(st.sampled_from(["", "p1", "p2"]))
        if draw(st.booleans()):
            line.fields["cost"] = draw(st.integers(0, 50000))
        if draw(st.booleans()):
            line.fields["pts"] = draw(st.integers(-5, 50))
        if draw(st.booleans()):
            line.fields["x"] = draw(st.integers(0, 5))
    o.promo_codes.extend(
        draw(st.lists(st.sampled_from(["save10", "SAVE20", "ONCE", "nope"]), max_size=3))
    )
    who = draw(st.sampled_from(["anon", "member", "member", "vip"]))
    if who != "anon":
        r.member_id = "m-vip" if who == "vip" else "m-1"
        ctx = r.member_context
        ctx.balances.add(point_type="bonus", available=draw(st.integers(0, 3000)))
        if draw(st.booleans()):
            ctx.balances.add(point_type="extra", available=draw(st.integers(0, 3000)))
        if draw(st.booleans()):
            ctx.balances.add(point_type="qual", available=draw(st.integers(0, 8000)))
        if draw(st.integers(0, 3)) == 0:
            ctx.tiers.add(tier_group="levels", tier=draw(st.sampled_from(["bronze", "gold"])))
        if draw(st.integers(0, 3)) == 0:
            # A context names all its segments; the static segment listing m-vip does not add.
            ctx.segments.append("vip")
        for t in draw(
            st.lists(
                st.sampled_from(["bonus", "bonus", "extra"]), unique=True, min_size=1, max_size=2
            )
        ):
            r.order.redeem.add(point_type=t, points=draw(st.integers(0, 3000)))
    return r
