"""The program report (docs/reports.md): the hourly rollups give what the ledger's rows give,
for any window (whole hours from the rollups, the edges from the rows), in any time zone."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from arbiter.server.ledger import Ledger, LedgerProgram, _reports
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import DAY, T0, FakeOrder

HOUR = timedelta(hours=1)


async def _activity(ledger: Ledger, program: program_pb2.Program) -> None:
    """Members, manual points and orders spread over three days at odd minutes."""
    for i in range(3):
        await ledger.enroll(program, f"m{i}", now=T0 + i * HOUR)
    calls: list[object] = []
    for n in range(12):
        at = T0 + n * 5 * HOUR + timedelta(minutes=7 * n)
        member = f"m{n % 3}"
        await ledger.create_transaction(program, member_id=member, point_type="bonus",
                                        operation="ACCRUAL", points=100 + n,
                                        external_id=f"e{n}", now=at)
        order = FakeOrder(f"o{n}", member_id=member, lines=(("l1", 1, 1_000 + n),),
                          redeem=(("bonus", 50),) if n % 2 else (), accrue=(("bonus", 10),))
        await ledger.confirm_order(program, order.request(), order.compute(program, calls),
                                   now=at + timedelta(minutes=1))


@pytest.mark.parametrize("zone", ["UTC", "Europe/Moscow", "Asia/Kolkata"])
async def test_rollups_give_what_the_rows_give(ledger: Ledger, program: program_pb2.Program,
                                               zone: str) -> None:
    program.time_zone = zone
    await _activity(ledger, program)
    later = T0 + 4 * DAY
    whole = await ledger.program_report(program, None, None, now=later)
    cfg = LedgerProgram.from_proto(program)
    async with ledger.pool.acquire() as conn:
        rolled = await _reports.rolled_to(conn, program.id)
        assert rolled == later.replace(minute=0) - _reports.ROLLUP_DELAY
        assert await conn.fetchval("SELECT count(*) FROM report_hours") > 0
        windows: list[tuple[datetime, datetime]] = [
            (T0 - DAY, later),
            (T0 + timedelta(minutes=13), T0 + DAY + timedelta(minutes=41)),
            (T0 + 2 * HOUR, T0 + 2 * DAY),
            (T0 + 30 * HOUR + timedelta(seconds=1), T0 + 31 * HOUR),
        ]
        for start, end in windows:
            with_rollups = await _reports.program_report(conn, cfg, start, end, rolled)
            from_rows = await _reports.program_report(conn, cfg, start, end, None)
            assert with_rollups == from_rows, (start, end)
    assert whole.confirmed == 12
    assert sum(d.orders for d in whole.days) == 12
    bonus = next(t for t in whole.point_types if t.point_type == "bonus")
    assert bonus.redeemed == 6 * 50


async def test_rows_after_the_rollup_still_count(ledger: Ledger,
                                                 program: program_pb2.Program) -> None:
    await _activity(ledger, program)
    first = await ledger.program_report(program, None, None, now=T0 + 4 * DAY)
    order = FakeOrder("late", member_id="m0", accrue=(("bonus", 10),))
    await ledger.confirm_order(program, order.request(), order.compute(program, []),
                               now=T0 + 4 * DAY)
    second = await ledger.program_report(program, None, None, now=T0 + 4 * DAY + HOUR)
    assert second.confirmed == first.confirmed + 1
    # Rolled again an hour later: the same figures.
    third = await ledger.program_report(program, None, None, now=T0 + 6 * DAY)
    assert [(d.day, d.orders, d.revenue) for d in third.days] == [
        (d.day, d.orders, d.revenue) for d in second.days]
