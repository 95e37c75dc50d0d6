"""The golden examples (docs/contract.md), through the gRPC API.

A PC at 100,000.00 RUB; A: 20 % discount; B: pay 15 % of the price with points (1 point =
1 RUB); the member holds 50,000 points and asks to redeem them all. Both are product rules over
all products with PARALLEL benefit arbitration, placed under the main arbitration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from arbiter.server.app.wiring import App
from arbiter.v1 import checkout_pb2, program_pb2

MakeProgram = Callable[..., program_pb2.Program]
MakeRequest = Callable[..., checkout_pb2.CalculateOrderRequest]

RUB = 100  # minor units per rouble


# (mode, order of A and B, to pay in money, paid with points, total discount incl. points)
GOLDEN = [
    ("SEQUENTIAL", ("A", "B"), 68_000, 12_000, 32_000),
    ("INCOMPATIBLE", ("A", "B"), 80_000, 0, 20_000),
    ("SUMMATION", ("A", "B"), 65_000, 15_000, 35_000),
    ("MAX_BENEFIT", ("A", "B"), 65_000, 15_000, 35_000),
    ("INCOMPATIBLE", ("B", "A"), 85_000, 15_000, 15_000),
]


@pytest.mark.parametrize(
    ("mode", "order", "money_rub", "points_rub", "discount_rub"),
    [pytest.param(*row, id=f"{row[0]}-{''.join(row[1])}") for row in GOLDEN],
)
async def test_golden_table(
    app: App,
    checkout: Any,
    make_program: MakeProgram,
    make_request: MakeRequest,
    mode: str,
    order: tuple[str, str],
    money_rub: int,
    points_rub: int,
    discount_rub: int,
) -> None:
    app.programs.publish(
        make_program(program_pb2.ArbitrationMode.Value(f"ARBITRATION_MODE_{mode}"), order)
    )
    await app.ready()
    response = await checkout.CalculateOrder(make_request())

    totals = response.totals
    assert totals.subtotal == 100_000 * RUB
    assert totals.total == money_rub * RUB
    assert totals.paid_with_points == points_rub * RUB
    assert totals.discount + totals.paid_with_points == discount_rub * RUB
    assert totals.items == 1

    (line,) = response.lines
    assert (line.line_id, line.base_price) == ("1", 100_000 * RUB)
    assert line.final_price == money_rub * RUB
    assert line.paid_with_points == points_rub * RUB
    assert sum(p.quantity * p.unit_price for p in line.portions) == line.final_price

    # 1 point = 1 RUB: the points used are the roubles paid with points.
    (points,) = response.points
    assert (points.point_type, points.requested, points.redeemed) == ("bonus", 50_000, points_rub)

    # Rule 17 (docs/rules.md): the benefit rows add up to the line.
    discount_rows = [b for b in response.benefits if b.benefit == "discount"]
    points_rows = [b for b in response.benefits if b.benefit == "pay_with_points"]
    assert sum(b.amount for b in discount_rows) == line.discount
    assert sum(b.amount for b in points_rows) == line.paid_with_points
    assert {b.promotion for b in discount_rows} <= {"A"}
    assert all(
        (b.promotion, b.promotion_kind, b.point_type) == ("B", "POINTS", "bonus")
        for b in points_rows
    )


async def test_the_same_request_twice_gives_byte_identical_responses(
    served: App, channel: grpc.aio.Channel, make_request: MakeRequest
) -> None:
    # Raw bytes both ways: no client-side parsing can hide a difference.
    calculate = channel.unary_unary("/arbiter.v1.CheckoutService/CalculateOrder")
    dated = make_request()
    dated.order.created_at.CopyFrom(Timestamp(seconds=1_741_944_413, nanos=589_793_000))
    for request in (make_request(), dated):
        payload = request.SerializeToString()
        first = await calculate(payload)
        second = await calculate(payload)
        assert isinstance(first, bytes)
        assert first == second
        response = checkout_pb2.CalculateOrderResponse.FromString(first)
        assert response.totals.total == 68_000 * RUB
