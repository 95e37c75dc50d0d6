"""Static member segments of the program file count for enrolled members, in quotes and in
confirmed orders (docs/rules.md: member segments are static sets of member ids)."""

from __future__ import annotations

import pytest

from arbiter.v1 import program_pb2
from tests.e2e.conftest import E2E, as_calculate, order_request, shop_program

pytestmark = pytest.mark.asyncio


def vip_program() -> program_pb2.Program:
    """The shop plus V: 10 % off for the members of the static segment `vip` (m-vip)."""
    program = shop_program()
    program.member_segments.add(id="vip", name="VIP", members=["m-vip"])
    promotion = program.promotions.add(
        id="V",
        name="VIP discount",
        status=program_pb2.PROMOTION_STATUS_ACTIVE,
        audience=program_pb2.Audience(kind=program_pb2.AUDIENCE_KIND_IN_SEGMENTS, segments=["vip"]),
    )
    rule = promotion.product_rules.add(scope=program_pb2.Scope(kind=program_pb2.SCOPE_KIND_ALL))
    rule.benefits.add(discount=program_pb2.Discount(percent_bp=1000))
    program.arbitration.children.insert(0, program_pb2.Child(promotion="V"))
    return program


def vip_rows(result: object) -> list[str]:
    return [b.promotion for b in result.benefits if b.promotion == "V"]  # type: ignore[attr-defined]


async def test_a_static_segment_counts_for_an_enrolled_member(e2e: E2E) -> None:
    await e2e.app.apply_program(vip_program())
    await e2e.enroll("m-vip")
    await e2e.enroll("m-other")

    vip = await e2e.checkout.CalculateOrder(as_calculate(order_request("q", "m-vip")))
    other = await e2e.checkout.CalculateOrder(as_calculate(order_request("q", "m-other")))
    assert vip_rows(vip) == ["V"]
    assert vip.totals.discount == 100  # 10 % of 1,000
    assert vip_rows(other) == []

    confirmed = await e2e.checkout.ConfirmOrder(order_request("o-vip", "m-vip"))
    assert vip_rows(confirmed.result) == ["V"]
    assert confirmed.result.totals.discount == 100


async def test_an_inline_member_context_names_all_its_segments(e2e: E2E) -> None:
    await e2e.app.apply_program(vip_program())
    request = as_calculate(order_request("q", "m-vip"))
    request.member_context.SetInParent()  # test mode: the context is the whole member state
    assert vip_rows(await e2e.checkout.CalculateOrder(request)) == []
    request.member_context.segments.append("vip")
    assert vip_rows(await e2e.checkout.CalculateOrder(request)) == ["V"]
