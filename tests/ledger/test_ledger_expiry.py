"""Lots and expiry: expired points never count, the job writes them off once, in batches."""

from __future__ import annotations

import pytest

from arbiter.server.ledger import Ledger
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import DAY, T0, FakeOrder, make_program


@pytest.fixture
def short_program() -> program_pb2.Program:
    return make_program(validity_days=10)


async def _accrue(ledger: Ledger, program: program_pb2.Program, member: str, points: int,
                  key: str, now=T0) -> None:  # type: ignore[no-untyped-def]
    await ledger.create_transaction(program, member_id=member, point_type="bonus",
                                    operation="ACCRUAL", points=points, external_id=key, now=now)


async def test_expired_points_never_count_even_before_the_job(
    ledger: Ledger, short_program: program_pb2.Program
) -> None:
    program = short_program
    await ledger.enroll(program, "m1", now=T0)
    await _accrue(ledger, program, "m1", 100, "a")
    await _accrue(ledger, program, "m1", 50, "b", now=T0 + 5 * DAY)
    before = await ledger.get_member(program, "m1", now=T0 + 10 * DAY - DAY / 24)
    assert before.balance("bonus").available == 150
    after = await ledger.get_member(program, "m1", now=T0 + 10 * DAY)
    assert (after.balance("bonus").available, after.balance("bonus").balance) == (50, 150)
    # A redemption at that instant sees only the live lot.
    order = FakeOrder("o1", redeem=(("bonus", 500),))
    out = await ledger.confirm_order(program, order.request(), order.compute(program),
                                     now=T0 + 10 * DAY)
    assert out.result.points[0].redeemed == 50
    # A manual deduction too.
    from arbiter.server.ledger import InsufficientPoints

    with pytest.raises(InsufficientPoints):
        await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                        operation="DEDUCTION", points=1, external_id="d",
                                        now=T0 + 10 * DAY)


async def test_expiry_job_writes_off_once_and_is_idempotent(
    ledger: Ledger, short_program: program_pb2.Program
) -> None:
    program = short_program
    for m in ("m1", "m2", "m3"):
        await ledger.enroll(program, m, now=T0)
        await _accrue(ledger, program, m, 100, f"{m}-a")
        await _accrue(ledger, program, m, 30, f"{m}-b", now=T0 + 3 * DAY)
    # m2 spent 40 of the first lot.
    await ledger.create_transaction(program, member_id="m2", point_type="bonus",
                                    operation="DEDUCTION", points=40, external_id="spend",
                                    now=T0 + DAY)
    report = await ledger.expire_lots(program, now=T0 + 11 * DAY, batch_size=2)
    assert (report.lots, report.points, report.batches) == (3, 260, 2)
    again = await ledger.expire_lots(program, now=T0 + 11 * DAY, batch_size=2)
    assert (again.lots, again.points) == (0, 0)
    m2 = await ledger.list_transactions(program, "m2")
    last = m2.transactions[-1]
    assert (last.type, last.source_type, last.value, last.balance_after) == (
        "EXPIRATION", "EXPIRATION", -60, 30)
    info = await ledger.get_member(program, "m2", now=T0 + 11 * DAY)
    assert (info.balance("bonus").available, info.balance("bonus").balance) == (30, 30)
    expired = [e for e in await ledger.outbox_events() if e.topic == "points.expired"]
    assert sorted(e.payload["points"] for e in expired) == [60, 100, 100]
    # Later the second lots expire too.
    late = await ledger.expire_lots(program, now=T0 + 13 * DAY)
    assert (late.lots, late.points) == (3, 90)


async def test_expiry_job_skips_a_member_a_request_is_writing(
    ledger: Ledger, short_program: program_pb2.Program
) -> None:
    program = short_program
    for m in ("m1", "m2"):
        await ledger.enroll(program, m, now=T0)
        await _accrue(ledger, program, m, 100, f"{m}-a")
    async with ledger.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT 1 FROM balances b JOIN members m ON m.pk = b.member_pk"
            " WHERE m.member_id = 'm1' FOR UPDATE OF b"
        )
        report = await ledger.expire_lots(program, now=T0 + 20 * DAY)
        assert (report.lots, report.points, report.skipped_locked) == (1, 100, 1)
    report = await ledger.expire_lots(program, now=T0 + 20 * DAY)
    assert (report.lots, report.points, report.skipped_locked) == (1, 100, 0)


async def test_deactivate_at_bounds_lot_expiry(ledger: Ledger) -> None:
    program = make_program(validity_days=30, bonus_deactivate_at=T0 + 5 * DAY)
    await ledger.enroll(program, "m1", now=T0)
    await _accrue(ledger, program, "m1", 100, "a")
    lots = await ledger.expiring_points(program, "m1", within_days=60, now=T0)
    assert [lot.expires_at for lot in lots] == [T0 + 5 * DAY]
    info = await ledger.get_member(program, "m1", now=T0 + 5 * DAY)
    assert info.balance("bonus").available == 0
    report = await ledger.expire_lots(program, now=T0 + 5 * DAY)
    assert report.points == 100


async def test_miles_validity_counts_calendar_years(ledger: Ledger,
                                                    program: program_pb2.Program) -> None:
    await ledger.enroll(program, "m1", now=T0)
    await ledger.create_transaction(program, member_id="m1", point_type="miles",
                                    operation="ACCRUAL", points=5, external_id="a", now=T0)
    lots = await ledger.expiring_points(program, "m1", within_days=400, now=T0)
    assert [lot.expires_at for lot in lots] == [T0.replace(year=2026)]
