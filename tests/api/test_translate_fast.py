"""order_from_proto's fast path against its detailed checks: the fast path accepts a request
exactly when the detailed checks find nothing, and what it builds is the request read plainly."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from arbiter.server.api import translate
from arbiter.server.api.translate import (
    MAX_BALANCES,
    MAX_CATEGORIES_PER_LINE,
    MAX_FIELDS_PER_LINE,
    MAX_MONEY_MINOR,
    MAX_POINTS,
    MAX_REDEMPTIONS,
    MAX_TIERS,
    order_from_proto,
)
from arbiter.server.engine import InvalidOrder, LineInput, MemberState, OrderInput
from arbiter.v1 import checkout_pb2

KNOWN = frozenset({"bonus", "miles"})
Request = checkout_pb2.CalculateOrderRequest
Mutation = Callable[[Request], object]


def full_request() -> Request:
    request = Request(program="demo", member_id="m-1")
    order = request.order
    order.id = "o-1"
    order.channel = "web"
    order.time_zone = "Europe/Moscow"
    order.shipping_cost = 300
    order.created_at.CopyFrom(Timestamp(seconds=1_700_000_000, nanos=5_000))
    line = order.lines.add(id="a", sku="S-A", quantity=3, unit_price=100, brand="B")
    line.categories.extend(["x", "y"])
    line.fields["cost"] = 40
    order.lines.add(id="b", sku="S-B", quantity=1, unit_price=0, partner="p")
    order.promo_codes.append("CODE")
    order.redeem.add(point_type="bonus", points=10)
    context = request.member_context
    context.balances.add(point_type="miles", available=-5)
    context.balances.add(point_type="miles", available=7)
    context.tiers.add(tier_group="g", tier="gold")
    context.segments.extend(["s1", "s2"])
    return request


def test_the_fast_path_builds_the_request_as_read() -> None:
    order, member = order_from_proto(full_request(), KNOWN)
    assert type(order) is OrderInput and type(member) is MemberState
    assert order.lines == (
        LineInput("a", "S-A", 3, 100, ("x", "y"), "B", "", {"cost": 40}),
        LineInput("b", "S-B", 1, 0, (), "", "p"),
    )
    assert all(type(line) is LineInput for line in order.lines)
    assert order.redeem == (("bonus", 10),) and order.promo_codes == ("CODE",)
    assert order.created_at is not None and order.created_at.microsecond == 5
    assert member == MemberState("m-1", {"miles": 2}, {"g": "gold"}, frozenset({"s1", "s2"}))


def _lines_over(name: str, limit: int) -> Mutation:
    def mutate(request: Request) -> None:
        line = request.order.lines[1]
        if name == "categories":
            line.categories.extend(f"c{i}" for i in range(limit + 1))
        else:
            for i in range(limit + 1):
                line.fields[f"f{i}"] = i

    return mutate


BAD: list[tuple[str, Mutation]] = [
    ("line without id", lambda r: setattr(r.order.lines[0], "id", "")),
    ("duplicate line", lambda r: setattr(r.order.lines[1], "id", "a")),
    ("zero quantity", lambda r: setattr(r.order.lines[1], "quantity", 0)),
    ("price over", lambda r: setattr(r.order.lines[1], "unit_price", MAX_MONEY_MINOR + 1)),
    ("subtotal over", lambda r: setattr(r.order.lines[0], "unit_price", MAX_MONEY_MINOR)),
    ("categories over", _lines_over("categories", MAX_CATEGORIES_PER_LINE)),
    ("fields over", _lines_over("fields", MAX_FIELDS_PER_LINE)),
    ("shipping over", lambda r: setattr(r.order, "shipping_cost", MAX_MONEY_MINOR + 1)),
    ("empty code", lambda r: r.order.promo_codes.append("")),
    ("bad zone", lambda r: setattr(r.order, "time_zone", "Nowhere")),
    ("nanos over", lambda r: setattr(r.order.created_at, "nanos", 1_000_000_000)),
    ("redeem twice", lambda r: r.order.redeem.add(point_type="bonus")),
    ("redeem unknown", lambda r: r.order.redeem.add(point_type="stars")),
    ("redeem untyped", lambda r: r.order.redeem.add(points=1)),
    ("redeem over", lambda r: setattr(r.order.redeem[0], "points", MAX_POINTS + 1)),
    (
        "redemptions over",
        lambda r: r.order.redeem.extend(
            checkout_pb2.Redemption(point_type="miles") for _ in range(MAX_REDEMPTIONS)
        ),
    ),
    ("balance unknown", lambda r: r.member_context.balances.add(point_type="stars")),
    ("balance untyped", lambda r: r.member_context.balances.add(available=1)),
    (
        "balance over",
        lambda r: r.member_context.balances.add(point_type="bonus", available=-MAX_POINTS - 1),
    ),
    (
        "balances over",
        lambda r: r.member_context.balances.extend(
            checkout_pb2.Balance(point_type="bonus") for _ in range(MAX_BALANCES)
        ),
    ),
    ("tier group twice", lambda r: r.member_context.tiers.add(tier_group="g", tier="silver")),
    ("tier group missing", lambda r: r.member_context.tiers.add(tier="silver")),
    ("tier missing", lambda r: r.member_context.tiers.add(tier_group="h")),
    (
        "tiers over",
        lambda r: r.member_context.tiers.extend(
            checkout_pb2.TierRef(tier_group=f"g{i}", tier="t") for i in range(MAX_TIERS)
        ),
    ),
]


@pytest.mark.parametrize("mutate", [pytest.param(m, id=name) for name, m in BAD])
def test_a_refused_request_carries_every_violation_of_the_detailed_checks(
    mutate: Mutation,
) -> None:
    request = full_request()
    mutate(request)
    expected = translate._violations(request, KNOWN)
    assert expected
    with pytest.raises(InvalidOrder) as caught:
        order_from_proto(request, KNOWN)
    assert caught.value.violations == tuple(expected)


def test_the_detailed_checks_find_nothing_in_a_valid_request() -> None:
    with pytest.raises(RuntimeError, match="disagree"):
        translate._violations(full_request(), KNOWN)
