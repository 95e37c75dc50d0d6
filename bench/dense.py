"""A dense workload: 200 promotions, every one of them live on a 20-line order.

Until the shared workloads (bench/workloads.py) carry a dense program, this one is built here:
each promotion scopes one of 20 category segments and gives a discount or accrues points, all
summed in the main arbitration, so each line collects about ten benefit rows (some 200 rows in
the response: what the response encoder is measured on).
"""

from __future__ import annotations

import random

from arbiter.v1 import checkout_pb2 as cpb
from arbiter.v1 import program_pb2 as pb

CATEGORIES = [f"cat{i}" for i in range(20)]
PROGRAM = "dense"


def dense_workload(
    promotions: int = 200, lines: int = 20, seed: int = 5
) -> tuple[pb.Program, cpb.CalculateOrderRequest]:
    rng = random.Random(seed)
    p = pb.Program(id=PROGRAM, name="Dense", currency="RUB", time_zone="Europe/Moscow")
    p.point_types.add(
        id="bonus",
        name="Bonus",
        kind=pb.POINT_KIND_STANDARD,
        active=True,
        ratio=pb.Ratio(points=1, money=100),
    )
    for i, category in enumerate(CATEGORIES):
        p.product_segments.add(id=f"seg{i}", categories=[category])
    p.arbitration.id = "main"
    p.arbitration.mode = pb.ARBITRATION_MODE_SUMMATION
    p.arbitration.limits.max_discount_bp = 5000
    for i in range(promotions):
        kind = pb.PROMOTION_KIND_DISCOUNT if i % 2 else pb.PROMOTION_KIND_POINTS
        promo = p.promotions.add(
            id=f"d{i}", name=f"Dense {i}", status=pb.PROMOTION_STATUS_ACTIVE, kind=kind
        )
        rule = promo.product_rules.add()
        rule.scope.kind = pb.SCOPE_KIND_IN_SEGMENTS
        rule.scope.segments.append(f"seg{i % len(CATEGORIES)}")
        benefit = rule.benefits.add()
        if i % 2:
            benefit.discount.percent_bp = rng.choice([100, 200, 300])
        else:
            benefit.accrue_points.point_type = "bonus"
            benefit.accrue_points.percent_bp = rng.choice([100, 300, 500])
        p.arbitration.children.add(promotion=promo.id)

    r = cpb.CalculateOrderRequest(program=PROGRAM, member_id="m-1")
    r.member_context.balances.add(point_type="bonus", available=20000)
    o = r.order
    o.id = "dense-order"
    o.channel = "pos"
    o.created_at.FromSeconds(1_790_000_000)
    for i in range(lines):
        line = o.lines.add(
            id=f"l{i}",
            sku=f"sku{i}",
            quantity=rng.randint(1, 4),
            unit_price=rng.choice([4990, 12900, 59900, 149900, 2490]),
        )
        line.categories.append(CATEGORIES[i % len(CATEGORIES)])
    return p, r
