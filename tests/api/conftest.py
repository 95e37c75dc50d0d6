"""A real in-process grpc.aio server on a free loopback port, and the programs the tests use.

Fixtures:
- `app` (function): an `App` listening on 127.0.0.1:<free port>, health NOT_SERVING, no program;
  its clock is fixed at FIXED_NOW.
- `served` (function): the same with the golden-example program `demo` (SEQUENTIAL, A before B)
  published and health SERVING.
- `channel`, `checkout`: an aio channel to the app and a CheckoutService stub on it.
- `make_program`: the golden-example program builder, `make_program(mode, order=("A", "B"))`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from arbiter.server.app.settings import Settings
from arbiter.server.app.wiring import App
from arbiter.v1 import checkout_pb2, checkout_pb2_grpc, program_pb2

FIXED_NOW = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)

# The golden examples (docs/contract.md): an all-in-one PC at 100,000.00 RUB; 1 point = 1 RUB;
# 50,000 points held and asked.
PC_PRICE_MINOR = 10_000_000
BALANCE_POINTS = 50_000


def golden_program(
    mode: program_pb2.ArbitrationMode.ValueType = program_pb2.ARBITRATION_MODE_SEQUENTIAL,
    order: Sequence[str] = ("A", "B"),
) -> program_pb2.Program:
    """Golden example: A (20 % discount) and B (pay 15 % with points) under the main arbitration."""
    program = program_pb2.Program(id="demo", name="Demo", currency="RUB", time_zone="Europe/Moscow")
    program.point_types.add(
        id="bonus",
        name="Bonus points",
        kind=program_pb2.POINT_KIND_STANDARD,
        active=True,
        ratio=program_pb2.Ratio(points=1, money=100),
    )
    a = program.promotions.add(
        id="A",
        name="Birthday discount",
        kind=program_pb2.PROMOTION_KIND_DISCOUNT,
        status=program_pb2.PROMOTION_STATUS_ACTIVE,
    )
    a.product_rules.add(scope=program_pb2.Scope(kind=program_pb2.SCOPE_KIND_ALL)).benefits.add(
        discount=program_pb2.Discount(percent_bp=2000)
    )
    b = program.promotions.add(
        id="B",
        name="Pay with points",
        kind=program_pb2.PROMOTION_KIND_POINTS,
        status=program_pb2.PROMOTION_STATUS_ACTIVE,
    )
    b.product_rules.add(scope=program_pb2.Scope(kind=program_pb2.SCOPE_KIND_ALL)).benefits.add(
        pay_with_points=program_pb2.PayWithPoints(point_type="bonus", percent_bp=1500)
    )
    program.arbitration.mode = mode
    for promotion in order:
        program.arbitration.children.add(promotion=promotion)
    return program


def golden_request(**order_fields: Any) -> checkout_pb2.CalculateOrderRequest:
    """The golden order: one PC, a member context holding 50,000 points, all of them asked."""
    request = checkout_pb2.CalculateOrderRequest(program="demo", member_id="m-1")
    request.member_context.balances.add(point_type="bonus", available=BALANCE_POINTS)
    request.order.id = "order-1"
    request.order.lines.add(id="1", sku="PC-1", quantity=1, unit_price=PC_PRICE_MINOR)
    request.order.redeem.add(point_type="bonus", points=BALANCE_POINTS)
    for name, value in order_fields.items():
        setattr(request.order, name, value)
    return request


@pytest.fixture
def make_program() -> Callable[..., program_pb2.Program]:
    return golden_program


@pytest.fixture
async def app() -> AsyncIterator[App]:
    app = App(Settings(listen="127.0.0.1:0", shutdown_grace_s=0.0), clock=lambda: FIXED_NOW)
    await app.open()
    try:
        yield app
    finally:
        await app.stop(0)


@pytest.fixture
async def served(app: App) -> App:
    app.programs.publish(golden_program())
    await app.ready()
    return app


@pytest.fixture
async def channel(app: App) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield channel


@pytest.fixture
def checkout(channel: grpc.aio.Channel) -> Any:
    return checkout_pb2_grpc.CheckoutServiceStub(channel)


@pytest.fixture
def make_request() -> Callable[..., checkout_pb2.CalculateOrderRequest]:
    return golden_request
