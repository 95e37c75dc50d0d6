"""Deterministic benchmark workloads built as protobuf programs and requests."""

from __future__ import annotations

import random

from arbiter.v1 import checkout_pb2 as cpb
from arbiter.v1 import program_pb2 as pb

CATEGORIES = [f"cat{i}" for i in range(20)]


def _base_program(pid: str) -> pb.Program:
    p = pb.Program(id=pid, name=pid, currency="RUB", time_zone="Europe/Moscow")
    p.point_types.add(
        id="bonus",
        name="Bonus",
        kind=pb.POINT_KIND_STANDARD,
        active=True,
        ratio=pb.Ratio(points=1, money=100),
    )
    p.point_types.add(
        id="qual",
        name="Qual",
        kind=pb.POINT_KIND_QUALIFICATION,
        active=True,
        ratio=pb.Ratio(points=1, money=100),
    )
    return p


def _benefit(rng: random.Random, level: str) -> pb.Benefit:
    b = pb.Benefit()
    choice = rng.randrange(6)
    if choice == 0:
        b.discount.percent_bp = rng.choice([500, 1000, 1500, 2000])
    elif choice == 1:
        b.discount.amount = rng.choice([1000, 5000, 10000])
    elif choice == 2:
        b.pay_with_points.point_type = "bonus"
        b.pay_with_points.percent_bp = rng.choice([1000, 1500, 3000])
    elif choice == 3:
        b.accrue_points.point_type = "bonus"
        b.accrue_points.percent_bp = rng.choice([300, 500, 1000])
    elif choice == 4:
        b.accrue_per_spent.point_type = "qual"
        b.accrue_per_spent.points = 10
        b.accrue_per_spent.per_amount = 100000
    else:
        b.discount.percent_bp = 700 if level == "order" else 1200
    return b


def reference_workload(seed: int = 7) -> tuple[pb.Program, cpb.CalculateOrderRequest]:
    """200 promotions, 40 product segments, a 3-level tree with an 8-wide MAX_BENEFIT group,
    and a 20-line order for a member redeeming points."""
    rng = random.Random(seed)
    p = _base_program("bench")
    for i in range(40):
        p.product_segments.add(
            id=f"seg{i}", categories=[CATEGORIES[i % 20]], min_unit_price=0 if i < 20 else 50000
        )
    for i in range(200):
        promo = p.promotions.add(
            id=f"promo{i}",
            name=f"Promotion {i}",
            status=pb.PROMOTION_STATUS_ACTIVE,
            kind=pb.PROMOTION_KIND_DISCOUNT,
        )
        rule = promo.product_rules.add()
        rule.scope.kind = pb.SCOPE_KIND_IN_SEGMENTS
        rule.scope.segments.append(f"seg{rng.randrange(40)}")
        rule.benefits.append(_benefit(rng, "product"))
        if i % 10 == 0:
            promo.order_rules.add().benefits.append(_benefit(rng, "order"))
        if i % 3 == 0:
            # Most promotions of a real program are out of season, or for other channels.
            promo.channels.add(channel="web")
    root = p.arbitration
    root.id, root.mode = "main", pb.ARBITRATION_MODE_SEQUENTIAL
    level1 = root.children.add().group
    level1.id, level1.mode = "level1", pb.ARBITRATION_MODE_SUMMATION
    level1.limits.max_discount_bp = 5000
    best = level1.children.add().group
    best.id, best.mode = "best", pb.ARBITRATION_MODE_MAX_BENEFIT
    for i in range(8):
        best.children.add(promotion=f"promo{i}")
    inner = level1.children.add().group
    inner.id, inner.mode = "inner", pb.ARBITRATION_MODE_INCOMPATIBLE
    for i in range(8, 40):
        inner.children.add(promotion=f"promo{i}")
    # promo40..199 sit at the end of the main arbitration (the default placement, docs/rules.md).
    return p, _order(rng, "bench", 20)


def max_benefit_workload(
    width: int, lines: int = 50, seed: int = 11
) -> tuple[pb.Program, cpb.CalculateOrderRequest]:
    """A MAX_BENEFIT main arbitration of `width` promotions, each non-empty on the order."""
    rng = random.Random(seed)
    p = _base_program(f"max{width}")
    for i in range(width):
        promo = p.promotions.add(id=f"m{i}", name=f"M{i}", status=pb.PROMOTION_STATUS_ACTIVE)
        rule = promo.product_rules.add()
        if i % 2:
            rule.scope.kind = pb.SCOPE_KIND_IN_SEGMENTS
            rule.scope.segments.append(f"s{i % 4}")
        benefit = rule.benefits.add()
        kind = i % 4
        if kind == 0:
            benefit.discount.percent_bp = 500 + 100 * i
        elif kind == 1:
            benefit.pay_with_points.point_type = "bonus"
            benefit.pay_with_points.percent_bp = 1000 + 50 * i
        elif kind == 2:
            benefit.accrue_points.point_type = "bonus"
            benefit.accrue_points.percent_bp = 300 + 20 * i
        else:
            benefit.discount.amount = 1000 + 10 * i
    for i in range(4):
        p.product_segments.add(id=f"s{i}", categories=[CATEGORIES[i]])
    p.arbitration.id = "main"
    p.arbitration.mode = pb.ARBITRATION_MODE_MAX_BENEFIT
    p.arbitration.limits.max_discount_bp = 4000
    for i in range(width):
        p.arbitration.children.add(promotion=f"m{i}")
    return p, _order(rng, p.id, lines)


def dense_workload(seed: int = 5) -> tuple[pb.Program, cpb.CalculateOrderRequest]:
    """200 promotions of which nearly all apply to a 20-line order: a SUMMATION of 100
    accruals, a SEQUENTIAL of 50 discounts, an INCOMPATIBLE of 40 amount discounts with
    max_items, an 8-wide MAX_BENEFIT of percentage discounts, and an order rule paying with
    points; every rule scoped over 2 of 40 product segments."""
    rng = random.Random(seed)
    p = _base_program("dense")
    for i in range(40):
        p.product_segments.add(
            id=f"seg{i}", categories=[CATEGORIES[i % 20]], min_unit_price=0 if i < 20 else 10000
        )

    def promotion(pid: str) -> pb.Rule:
        promo = p.promotions.add(
            id=pid, name=pid, status=pb.PROMOTION_STATUS_ACTIVE, kind=pb.PROMOTION_KIND_DISCOUNT
        )
        rule = promo.product_rules.add()
        rule.scope.kind = pb.SCOPE_KIND_IN_SEGMENTS
        rule.scope.segments.extend(f"seg{x}" for x in rng.sample(range(40), 2))
        return rule

    root = p.arbitration
    root.id, root.mode = "main", pb.ARBITRATION_MODE_SEQUENTIAL
    best = root.children.add().group
    best.id, best.mode = "best", pb.ARBITRATION_MODE_MAX_BENEFIT
    for i in range(8):
        promotion(f"best{i}").benefits.add().discount.percent_bp = 500 + 250 * i
        best.children.add(promotion=f"best{i}")
    seq = root.children.add().group
    seq.id, seq.mode = "discounts", pb.ARBITRATION_MODE_SEQUENTIAL
    for i in range(50):
        b = promotion(f"seq{i}").benefits.add()
        if i % 2:
            b.discount.percent_bp = rng.choice([300, 500, 700])
        else:
            b.discount.amount = rng.choice([500, 1000, 2000])
        seq.children.add(promotion=f"seq{i}")
    inc = root.children.add().group
    inc.id, inc.mode = "exclusive", pb.ARBITRATION_MODE_INCOMPATIBLE
    for i in range(40):
        b = promotion(f"inc{i}").benefits.add()
        b.discount.amount = rng.choice([300, 700, 1500])
        b.discount.max_items = rng.choice([1, 2, 3])
        inc.children.add(promotion=f"inc{i}")
    acc = root.children.add().group
    acc.id, acc.mode = "accruals", pb.ARBITRATION_MODE_SUMMATION
    for i in range(100):
        b = promotion(f"acc{i}").benefits.add()
        b.accrue_points.point_type = "bonus" if i % 3 else "qual"
        b.accrue_points.percent_bp = rng.choice([100, 200, 300])
        acc.children.add(promotion=f"acc{i}")
    pay = p.promotions.add(
        id="pay", name="pay", status=pb.PROMOTION_STATUS_ACTIVE, kind=pb.PROMOTION_KIND_DISCOUNT
    )
    b = pay.order_rules.add().benefits.add()
    b.pay_with_points.point_type = "bonus"
    b.pay_with_points.percent_bp = 3000
    text = p.promotions.add(
        id="hello", name="hello", status=pb.PROMOTION_STATUS_ACTIVE, kind=pb.PROMOTION_KIND_DISCOUNT
    )
    text.order_rules.add().benefits.add().text.template = "Thank you, {{member.id}}"
    # pay and hello sit at the end of the main arbitration (the default placement).
    return p, _order(rng, "dense", 20)


def large_program(promotions: int, seed: int = 3) -> pb.Program:
    """A program of `promotions` promotions (the reference workload's kinds, one product rule
    each, every tenth with an order rule), in groups of 50 alternating SUMMATION, INCOMPATIBLE
    and SEQUENTIAL, every twentieth group an 8-wide MAX_BENEFIT: what apply compiles."""
    rng = random.Random(seed)
    p = _base_program("large")
    for i in range(40):
        p.product_segments.add(id=f"seg{i}", categories=[CATEGORIES[i % 20]])
    root = p.arbitration
    root.id, root.mode = "main", pb.ARBITRATION_MODE_SEQUENTIAL
    modes = [
        pb.ARBITRATION_MODE_SUMMATION,
        pb.ARBITRATION_MODE_INCOMPATIBLE,
        pb.ARBITRATION_MODE_SEQUENTIAL,
    ]
    group = root
    for i in range(promotions):
        promo = p.promotions.add(
            id=f"promo{i}", name=f"Promotion {i}", status=pb.PROMOTION_STATUS_ACTIVE
        )
        rule = promo.product_rules.add()
        rule.scope.kind = pb.SCOPE_KIND_IN_SEGMENTS
        rule.scope.segments.extend(f"seg{x}" for x in rng.sample(range(40), 2))
        rule.benefits.append(_benefit(rng, "product"))
        if i % 10 == 0:
            promo.order_rules.add().benefits.append(_benefit(rng, "order"))
        g = i // 50
        if i % 50 == 0:
            group = root.children.add().group
            group.id = f"g{g}"
            group.mode = modes[g % 3]
        if i % 50 < 8 and g % 20 == 0:
            if i % 50 == 0:
                best = group.children.add().group
                best.id, best.mode = f"best{g}", pb.ARBITRATION_MODE_MAX_BENEFIT
            best.children.add(promotion=promo.id)
        else:
            group.children.add(promotion=promo.id)
    return p


def _order(rng: random.Random, program: str, lines: int) -> cpb.CalculateOrderRequest:
    r = cpb.CalculateOrderRequest(program=program, member_id="m-1")
    r.member_context.balances.add(point_type="bonus", available=20000)
    o = r.order
    o.id = "bench-order"
    o.channel = "pos"
    o.created_at.FromSeconds(1_790_000_000)
    for i in range(lines):
        line = o.lines.add(
            id=f"l{i}",
            sku=f"sku{i}",
            quantity=rng.randint(1, 4),
            unit_price=rng.choice([4990, 12900, 59900, 149900, 2490]),
        )
        line.categories.append(CATEGORIES[rng.randrange(20)])
    o.redeem.add(point_type="bonus", points=15000)
    return r


def sized_workload(
    promotions: int, *, variant: int = 0, seed: int = 7, program_id: str = "sized"
) -> tuple[pb.Program, cpb.CalculateOrderRequest]:
    """`promotions` promotions over 40 product segments, as `reference_workload` builds them
    (every third for another channel), the first 40 in a SUMMATION group under a 50 % limit, the
    rest at the end of the main SEQUENTIAL arbitration; and its 20-line order. `variant` changes
    one promotion's name only, so that each variant is a new version of one program whose
    calculation is the same."""
    rng = random.Random(seed)
    p = _base_program(program_id)
    for i in range(40):
        p.product_segments.add(
            id=f"seg{i}", categories=[CATEGORIES[i % 20]], min_unit_price=0 if i < 20 else 50000
        )
    for i in range(promotions):
        promo = p.promotions.add(
            id=f"promo{i}",
            name=f"Promotion {i}",
            status=pb.PROMOTION_STATUS_ACTIVE,
            kind=pb.PROMOTION_KIND_DISCOUNT,
        )
        rule = promo.product_rules.add()
        rule.scope.kind = pb.SCOPE_KIND_IN_SEGMENTS
        rule.scope.segments.append(f"seg{rng.randrange(40)}")
        rule.benefits.append(_benefit(rng, "product"))
        if i % 10 == 0:
            promo.order_rules.add().benefits.append(_benefit(rng, "order"))
        if i % 3 == 0:
            promo.channels.add(channel="web")
    p.promotions[0].name = f"Promotion 0 (variant {variant})"
    root = p.arbitration
    root.id, root.mode = "main", pb.ARBITRATION_MODE_SEQUENTIAL
    group = root.children.add().group
    group.id, group.mode = "first", pb.ARBITRATION_MODE_SUMMATION
    group.limits.max_discount_bp = 5000
    for i in range(min(40, promotions)):
        group.children.add(promotion=f"promo{i}")
    return p, _order(rng, program_id, 20)
