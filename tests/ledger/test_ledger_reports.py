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
        assert rolled is not None
        assert rolled.hours == later.replace(minute=0) - _reports.ROLLUP_DELAY
        assert rolled.days == later.replace(hour=0, minute=0)
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


# Who is active when: (member, instant, by an order rather than a transaction). "" is a guest.
_MIDNIGHT = datetime(2025, 1, 16, tzinfo=T0.tzinfo)
_EARLY = [
    ("g", _MIDNIGHT - 2 * DAY, False),
    ("a", _MIDNIGHT + HOUR, False),
    ("b", _MIDNIGHT + 23 * HOUR + timedelta(minutes=30), True),
    ("c", _MIDNIGHT + DAY + 12 * HOUR, True),
    ("", _MIDNIGHT + DAY + 13 * HOUR, True),
    ("a", _MIDNIGHT + 2 * DAY + 5 * HOUR, True),
    ("d", _MIDNIGHT + 2 * DAY + 23 * HOUR, False),
]
# Written after a report has rolled up the days before _MIDNIGHT + 3 days.
_LATE = [
    ("b", _MIDNIGHT + 3 * DAY + HOUR, False),
    ("e", _MIDNIGHT + 4 * DAY + 6 * HOUR, True),
    ("d", _MIDNIGHT + 5 * DAY + 2 * HOUR, True),
    ("g", _MIDNIGHT + 5 * DAY + 20 * HOUR, False),
    ("a", _MIDNIGHT + 6 * DAY, False),
    ("e", _MIDNIGHT + 15 * DAY + 23 * HOUR, False),  # January 31st
    ("c", _MIDNIGHT + 16 * DAY + 10 * HOUR, True),  # February 1st
    ("g", _MIDNIGHT + 17 * DAY + HOUR, False),
]


async def _act(ledger: Ledger, program: program_pb2.Program,
               events: list[tuple[str, datetime, bool]]) -> None:
    for n, (member, at, by_order) in enumerate(events):
        if by_order:
            order = FakeOrder(f"o-{member}-{at:%d%H%M}", member_id=member)
            await ledger.confirm_order(program, order.request(), order.compute(program, []),
                                       now=at)
        else:
            await ledger.create_transaction(program, member_id=member, point_type="bonus",
                                            operation="ACCRUAL", points=10 + n,
                                            external_id=f"t-{member}-{at:%d%H%M}", now=at)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata"])
async def test_active_members_from_the_active_days(ledger: Ledger, program: program_pb2.Program,
                                                   zone: str) -> None:
    """The active days (rolled in two batches, the second linking members to their active days
    of the first) count each member once, whatever the window: as the rows do, as listed."""
    program.time_zone = zone
    for member in "abcdeg":
        await ledger.enroll(program, member, now=_MIDNIGHT - 3 * DAY)
    await _act(ledger, program, _EARLY)
    await ledger.program_report(program, None, None, now=_MIDNIGHT + 3 * DAY + 2 * HOUR)
    await _act(ledger, program, _LATE)
    await ledger.program_report(program, None, None, now=_MIDNIGHT + 22 * DAY)
    cfg = LedgerProgram.from_proto(program)
    bounds = [_MIDNIGHT + offset for offset in (
        -3 * DAY, timedelta(0), timedelta(minutes=30), DAY, DAY + 13 * HOUR, 2 * DAY, 3 * DAY,
        3 * DAY + 90 * timedelta(minutes=1), 5 * DAY, 5 * DAY + 21 * HOUR, 8 * DAY, 15 * DAY,
        15 * DAY + 23 * HOUR + timedelta(minutes=30), 16 * DAY, 17 * DAY, 22 * DAY)]
    async with ledger.pool.acquire() as conn:
        rolled = await _reports.rolled_to(conn, program.id)
        assert rolled is not None and rolled.days == _MIDNIGHT + 21 * DAY
        # Member a's January: the 16th and 18th from the first roll-up, the 22nd from the second.
        assert await conn.fetchval(
            "SELECT days FROM report_member_months m JOIN members ON members.pk = m.member_pk"
            " WHERE member_id = 'a'") == (1 << 15) | (1 << 17) | (1 << 21)
        assert await conn.fetchval("SELECT count(*) FROM report_member_months") == 8
        for i, start in enumerate(bounds):
            for end in bounds[i + 1:]:
                listed = {m for m, at, _ in _EARLY + _LATE if m and start <= at < end}
                with_rollups = await _reports.program_report(conn, cfg, start, end, rolled)
                from_rows = await _reports.program_report(conn, cfg, start, end, None)
                assert with_rollups.active == from_rows.active == len(listed), (start, end)


async def test_outstanding_is_the_live_members_balances(ledger: Ledger,
                                                        program: program_pb2.Program) -> None:
    """`outstanding` sums this program's live members' balances: not a removed member's, not
    another program's members' (nor a type only they have)."""
    other = program_pb2.Program()
    other.CopyFrom(program)
    other.id = "p2"
    other.point_types.add(id="stars", kind=program_pb2.POINT_KIND_STANDARD, active=True)
    for member, points in (("m1", 100), ("m2", 40), ("m3", 5)):
        await ledger.enroll(program, member, now=T0)
        await ledger.create_transaction(program, member_id=member, point_type="bonus",
                                        operation="ACCRUAL", points=points,
                                        external_id=f"x-{member}", now=T0)
    await ledger.enroll(other, "m1", now=T0)
    for point_type, points in (("bonus", 1_000), ("stars", 7)):
        await ledger.create_transaction(other, member_id="m1", point_type=point_type,
                                        operation="ACCRUAL", points=points,
                                        external_id=f"y-{point_type}", now=T0)
    await ledger.remove_member(program, "m2", now=T0 + HOUR)
    report = await ledger.program_report(program, None, None, now=T0 + DAY)
    outstanding = {t.point_type: t.outstanding for t in report.point_types}
    assert outstanding["bonus"] == 105
    assert "stars" not in outstanding
    report = await ledger.program_report(other, None, None, now=T0 + DAY)
    assert {t.point_type: t.outstanding for t in report.point_types}["bonus"] == 1_000
