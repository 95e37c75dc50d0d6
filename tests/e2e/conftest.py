"""End to end: a real in-process grpc.aio server on a free port over a real PostgreSQL.

Fixtures:
- `clock`: a settable clock shared by the server (and its ledger calls); starts at T0.
- `e2e`: an `App` on `pg_database` (a fresh database), the program `shop` applied, SERVING,
  periodic jobs off (tests run them by hand with a moved clock); with stubs on one channel.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from arbiter.server.app.settings import Settings
from arbiter.server.app.wiring import App
from arbiter.v1 import (
    checkout_pb2,
    checkout_pb2_grpc,
    member_pb2,
    member_pb2_grpc,
    program_pb2,
)

T0 = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
PROGRAM = "shop"
INITIAL_BONUS = 1_000


class MovableClock:
    """The server's clock in these tests: fixed, moved by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def shop_program(*, pay_bp: int = 5000, bonus_validity_days: int = 0) -> program_pb2.Program:
    """`bonus` (1 point = 1 kopeck, 1000 at enrollment, refundable) and `miles` (ON_DELIVERY).

    SEQUENTIAL: P pays up to `pay_bp` of each line with bonus, then A accrues 10 % bonus on
    what is left (ON_CREATE), then M accrues 5 % miles (ON_DELIVERY).
    """
    program = program_pb2.Program(id=PROGRAM, name="Shop", currency="RUB", time_zone="UTC")
    bonus = program.point_types.add(
        id="bonus",
        name="Bonus",
        kind=program_pb2.POINT_KIND_STANDARD,
        active=True,
        initial_balance=INITIAL_BONUS,
        allow_refund=True,
        ratio=program_pb2.Ratio(points=1, money=1),
    )
    if bonus_validity_days:
        bonus.validity.count = bonus_validity_days
        bonus.validity.unit = program_pb2.PERIOD_UNIT_DAY
    program.point_types.add(
        id="miles",
        name="Miles",
        kind=program_pb2.POINT_KIND_STANDARD,
        active=True,
        allow_refund=True,
        ratio=program_pb2.Ratio(points=1, money=1),
    )
    rules = (
        (
            "P",
            program_pb2.Benefit(
                pay_with_points=program_pb2.PayWithPoints(point_type="bonus", percent_bp=pay_bp)
            ),
        ),
        (
            "A",
            program_pb2.Benefit(
                accrue_points=program_pb2.AccruePoints(
                    point_type="bonus", percent_bp=1000, timing=program_pb2.TIMING_ON_CREATE
                )
            ),
        ),
        (
            "M",
            program_pb2.Benefit(
                accrue_points=program_pb2.AccruePoints(
                    point_type="miles", percent_bp=500, timing=program_pb2.TIMING_ON_DELIVERY
                )
            ),
        ),
    )
    for promotion_id, benefit in rules:
        promotion = program.promotions.add(
            id=promotion_id,
            name=promotion_id,
            kind=program_pb2.PROMOTION_KIND_POINTS,
            status=program_pb2.PROMOTION_STATUS_ACTIVE,
        )
        rule = promotion.product_rules.add(scope=program_pb2.Scope(kind=program_pb2.SCOPE_KIND_ALL))
        rule.benefits.append(benefit)
        program.arbitration.children.add(promotion=promotion_id)
    program.arbitration.mode = program_pb2.ARBITRATION_MODE_SEQUENTIAL
    return program


def order_request(
    order_id: str,
    member_id: str = "m-1",
    *,
    redeem: int = 0,
    lines: tuple[tuple[str, int, int], ...] = (("l1", 1, 1_000),),
) -> checkout_pb2.ConfirmOrderRequest:
    """A ConfirmOrderRequest (its fields are CalculateOrder's plus expected_total)."""
    request = checkout_pb2.ConfirmOrderRequest(program=PROGRAM, member_id=member_id)
    request.order.id = order_id
    for line_id, quantity, unit_price in lines:
        request.order.lines.add(
            id=line_id, sku=f"sku-{line_id}", quantity=quantity, unit_price=unit_price
        )
    if redeem:
        request.order.redeem.add(point_type="bonus", points=redeem)
    return request


def as_calculate(request: checkout_pb2.ConfirmOrderRequest) -> checkout_pb2.CalculateOrderRequest:
    calculate = checkout_pb2.CalculateOrderRequest(
        program=request.program, member_id=request.member_id
    )
    calculate.order.CopyFrom(request.order)
    return calculate


def as_reserve(
    request: checkout_pb2.ConfirmOrderRequest, hold_seconds: int = 0
) -> checkout_pb2.ReserveOrderRequest:
    reserve = checkout_pb2.ReserveOrderRequest(
        program=request.program, member_id=request.member_id, hold_seconds=hold_seconds
    )
    reserve.order.CopyFrom(request.order)
    return reserve


@dataclass
class E2E:
    app: App
    clock: MovableClock
    channel: grpc.aio.Channel
    checkout: checkout_pb2_grpc.CheckoutServiceStub
    members: member_pb2_grpc.MemberServiceStub

    async def enroll(self, member_id: str = "m-1") -> member_pb2.EnrollMemberResponse:
        return await self.members.EnrollMember(
            member_pb2.EnrollMemberRequest(program=PROGRAM, member_id=member_id)
        )

    async def bonus(self, member_id: str = "m-1") -> member_pb2.BalanceInfo:
        response = await self.members.GetMember(
            member_pb2.GetMemberRequest(program=PROGRAM, member_id=member_id)
        )
        return next(b for b in response.balances if b.point_type == "bonus")

    async def balance(self, member_id: str, point_type: str) -> member_pb2.BalanceInfo:
        response = await self.members.GetMember(
            member_pb2.GetMemberRequest(program=PROGRAM, member_id=member_id)
        )
        return next(b for b in response.balances if b.point_type == point_type)


def e2e_settings(dsn: str) -> Settings:
    return Settings(listen="127.0.0.1:0", postgres_url=dsn, jobs_interval_s=0, shutdown_grace_s=1.0)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def e2e(pg_database: str, clock: MovableClock) -> AsyncIterator[E2E]:
    app = App(e2e_settings(pg_database), clock=clock)
    await app.open()
    try:
        await app.apply_program(shop_program())
        await app.ready()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            yield E2E(
                app,
                clock,
                channel,
                checkout_pb2_grpc.CheckoutServiceStub(channel),
                member_pb2_grpc.MemberServiceStub(channel),
            )
    finally:
        await app.stop(0)
