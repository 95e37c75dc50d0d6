"""A calculation whose result leaves int64 answers INVALID_ARGUMENT naming `order`, through a
real server, in every method that calculates (docs/rules.md, "The range of the arithmetic")."""

from __future__ import annotations

from typing import Any

import grpc

from arbiter.server.app.wiring import App
from arbiter.v1 import checkout_pb2
from arbiter.v1 import program_pb2 as pb
from tests.api.test_api_server import bad_request_of
from tests.reference._programs import (
    SEQ,
    line,
    per_spent,
    product_rule,
    program,
    promo,
    request,
)
from tests.reference._programs import group as make_group


def _program() -> pb.Program:
    # 10^6 points per kopeck spent.
    promotion = promo("p1", product_rule(per_spent("bonus", 1_000_000, 1)),
                      kind=pb.PROMOTION_KIND_POINTS)
    return program([promotion], make_group(SEQ, "p1", gid="main"))


async def test_a_result_beyond_int64_is_invalid_argument(app: App, checkout: Any) -> None:
    app.programs.publish(_program())
    await app.ready()
    # ~10^13 kopecks: 10^19 points, more than int64 holds.
    big = request(*[line(f"l{i}", 999_999_999_999) for i in range(10)])  # a member context
    error, violations = await bad_request_of(checkout.CalculateOrder(big))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations] == ["order"]
    assert "64-bit" in violations[0][1]
    # Within the range the same program answers.
    answered = await checkout.CalculateOrder(request(line("a", 10_000)))
    assert isinstance(answered, checkout_pb2.CalculateOrderResponse)
    assert answered.points[0].accrued == 10**10
