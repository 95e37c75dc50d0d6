"""GetProgramReport and BacktestDraft end to end (docs/reports.md): real server, real
PostgreSQL, orders confirmed through gRPC."""

from __future__ import annotations

from datetime import datetime, timedelta

import grpc
import pytest
from google.protobuf import timestamp_pb2

from arbiter.v1 import admin_pb2, admin_pb2_grpc, checkout_pb2, member_pb2, program_pb2
from tests.e2e.admin_support import bad_request_of, status_of
from tests.e2e.conftest import DAY, E2E, PROGRAM, T0, as_reserve, order_request, shop_program
from tests.ledger.ledger_support import check_invariants

pytestmark = pytest.mark.asyncio

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT


def stamp(at: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(at)
    return out


def admin_of(e2e: E2E) -> admin_pb2_grpc.AdminServiceStub:
    return admin_pb2_grpc.AdminServiceStub(e2e.channel)


def draft_with(*, accrue_bp: int = 1000, pay_bp: int = 5000) -> program_pb2.Program:
    """The shop with promotion A accruing `accrue_bp` and P paying up to `pay_bp`."""
    program = shop_program(pay_bp=pay_bp)
    for promotion in program.promotions:
        if promotion.id == "A":
            promotion.product_rules[0].benefits[0].accrue_points.percent_bp = accrue_bp
    return program


async def some_orders(e2e: E2E) -> dict[str, checkout_pb2.CalculationResult]:
    """m-1 and m-2 buy (m-2 redeems), a guest buys, m-1 reserves then confirms."""
    await e2e.enroll("m-1")
    await e2e.enroll("m-2")
    results = {}
    for request in (
        order_request("o1", "m-1"),
        order_request("o2", "m-2", redeem=500, lines=(("l1", 2, 1_000),)),
        order_request("g1", ""),
    ):
        results[request.order.id] = (await e2e.checkout.ConfirmOrder(request)).result
        e2e.clock.advance(timedelta(minutes=1))
    await e2e.checkout.ReserveOrder(as_reserve(order_request("o3", "m-1", redeem=100)))
    results["o3"] = (await e2e.checkout.ConfirmOrder(order_request("o3", "m-1", redeem=100))
                     ).result
    return results


async def backtest(e2e: E2E, **fields: object) -> tuple[list[admin_pb2.BacktestProgress],
                                                        admin_pb2.BacktestSummary]:
    progress: list[admin_pb2.BacktestProgress] = []
    summaries: list[admin_pb2.BacktestSummary] = []
    request = admin_pb2.BacktestDraftRequest(program=PROGRAM, **fields)  # type: ignore[arg-type]
    async for message in admin_of(e2e).BacktestDraft(request):
        if message.HasField("progress"):
            assert not summaries, "progress after the summary"
            progress.append(message.progress)
        else:
            summaries.append(message.summary)
    assert len(summaries) == 1
    return progress, summaries[0]


def accrued(result: checkout_pb2.CalculationResult, point_type: str) -> int:
    return sum(p.accrued + p.accrued_pending for p in result.points if p.point_type == point_type)


async def counts(e2e: E2E) -> tuple[int, ...]:
    assert e2e.app.ledger is not None
    row = await e2e.app.ledger.pool.fetchrow(
        "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM transactions),"
        " (SELECT count(*) FROM order_inputs), (SELECT count(*) FROM lots)"
    )
    assert row is not None
    return tuple(row)


# --- BacktestDraft ------------------------------------------------------------------------------


async def test_a_backtest_reproduces_every_order_and_sums_the_draft(e2e: E2E) -> None:
    results = await some_orders(e2e)
    await admin_of(e2e).ImportProgram(admin_pb2.ImportProgramRequest(
        program=draft_with(accrue_bp=2000)))
    before_counts = await counts(e2e)
    progress, summary = await backtest(e2e)
    assert summary.orders == 4
    assert summary.reproduced == 4
    assert summary.without_member_state == 0
    # The guest accrues nothing either way; every member order accrues twice as much bonus.
    assert summary.changed == 3
    bonus_before = sum(accrued(r, "bonus") for r in results.values())
    assert bonus_before > 0
    points = {p.point_type: (p.before, p.after) for p in summary.points}
    assert points["bonus"] == (bonus_before, 2 * bonus_before)
    miles = sum(accrued(r, "miles") for r in results.values())
    assert points["miles"] == (miles, miles)
    total = sum(r.totals.total for r in results.values())
    assert (summary.before.total, summary.after.total) == (total, total)
    paid = sum(r.totals.paid_with_points for r in results.values())
    assert (summary.before.paid_with_points, summary.after.paid_with_points) == (paid, paid)
    promotions = {p.promotion: p for p in summary.promotions}
    assert promotions["A"].before.orders == promotions["A"].after.orders == 3
    assert promotions["A"].after.points == 2 * promotions["A"].before.points
    assert list(summary.examples) == []  # no total changed
    assert progress and progress[-1].done == progress[-1].total == 4
    assert await counts(e2e) == before_counts  # it writes nothing
    assert e2e.app.ledger is not None
    async with e2e.app.ledger.pool.acquire() as conn:
        await check_invariants(conn)


async def test_the_orders_whose_total_changed_most_are_the_examples(e2e: E2E) -> None:
    results = await some_orders(e2e)
    await admin_of(e2e).ImportProgram(admin_pb2.ImportProgramRequest(
        program=draft_with(pay_bp=2000)))
    _, summary = await backtest(e2e)
    # o2 (2,000, redeeming 500 of a 50 % cap) now pays at most 400 with points: 1,600.
    assert results["o2"].totals.total == 1_500
    examples = [(e.order_id, e.total_before, e.total_after) for e in summary.examples]
    assert examples == [("o2", 1_500, 1_600)]
    assert summary.before.total + 100 == summary.after.total
    assert summary.reproduced == 4


async def test_an_order_without_stored_inputs_is_counted_not_recalculated(e2e: E2E) -> None:
    await some_orders(e2e)
    assert e2e.app.ledger is not None
    await e2e.app.ledger.pool.execute(
        "DELETE FROM order_inputs WHERE order_pk = (SELECT pk FROM orders WHERE order_id = 'o1')"
    )
    _, summary = await backtest(e2e)
    assert (summary.orders, summary.reproduced, summary.without_member_state) == (4, 3, 1)


async def test_a_backtest_takes_the_window_and_the_limit_oldest_first(e2e: E2E) -> None:
    await some_orders(e2e)
    _, summary = await backtest(e2e, limit=2)
    assert summary.orders == 2
    # An unchanged draft changes nothing.
    assert (summary.reproduced, summary.changed) == (2, 0)
    _, windowed = await backtest(e2e, **{"from": stamp(T0 + timedelta(seconds=30))})
    assert windowed.orders == 3  # o1 was confirmed at T0
    _, empty = await backtest(e2e, **{"from": stamp(T0 + DAY)})
    assert (empty.orders, empty.reproduced) == (0, 0)


async def test_backtest_errors_name_the_field(e2e: E2E) -> None:
    admin = admin_of(e2e)

    async def first(request: admin_pb2.BacktestDraftRequest) -> None:
        async for _ in admin.BacktestDraft(request):
            pass

    assert await bad_request_of(first(admin_pb2.BacktestDraftRequest())) == (
        INVALID_ARGUMENT, [("program", "required: a program id")])
    code, violations = await bad_request_of(first(
        admin_pb2.BacktestDraftRequest(program=PROGRAM, limit=-1)))
    assert code == INVALID_ARGUMENT and [f for f, _ in violations] == ["limit"]
    code, violations = await bad_request_of(first(admin_pb2.BacktestDraftRequest(
        program=PROGRAM, **{"from": stamp(T0), "to": stamp(T0)})))
    assert code == INVALID_ARGUMENT and [f for f, _ in violations] == ["to"]
    assert await status_of(first(admin_pb2.BacktestDraftRequest(program="nope"))) == (
        grpc.StatusCode.NOT_FOUND)


# --- GetProgramReport ---------------------------------------------------------------------------


async def test_the_report_sums_the_ledger_by_day_type_and_promotion(e2e: E2E) -> None:
    results = await some_orders(e2e)
    e2e.clock.advance(DAY)
    await e2e.enroll("m-3")
    day2 = (await e2e.checkout.ConfirmOrder(order_request("o4", "m-1"))).result
    await e2e.checkout.CancelOrder(checkout_pb2.CancelOrderRequest(program=PROGRAM,
                                                                   order_id="o1"))
    ret = checkout_pb2.ReturnOrderRequest(program=PROGRAM, order_id="o2", return_id="r1")
    ret.lines.add(line_id="l1", quantity=1)
    await e2e.checkout.ReturnOrder(ret)
    e2e.clock.advance(timedelta(hours=1))

    report = await admin_of(e2e).GetProgramReport(admin_pb2.GetProgramReportRequest(
        program=PROGRAM))
    assert report.members == report.member_counts.enrolled == 3
    assert report.member_counts.active == 3  # m-3 got its enrollment bonus in the window
    assert report.orders == report.order_counts.confirmed == 5
    assert (report.order_counts.cancelled, report.order_counts.returned) == (1, 1)
    days = {d.date: d for d in report.days}
    assert sorted(days) == ["2025-06-02", "2025-06-03"]
    first = days["2025-06-02"]
    assert first.orders == 4
    assert first.revenue == sum(r.totals.total for r in results.values())
    assert first.paid_with_points == sum(r.totals.paid_with_points for r in results.values())
    assert days["2025-06-03"].revenue == day2.totals.total
    # Day one: two enrollment bonuses and each member order's bonus accrual.
    assert first.accrued == 2 * 1_000 + sum(accrued(r, "bonus") for r in results.values()
                                            if r is not results["g1"])
    assert first.redeemed == 500 + 100
    by_type = {t.point_type: t for t in report.point_types}
    member = await e2e.members.GetMember(
        member_pb2.GetMemberRequest(program=PROGRAM, member_id="m-1"))
    outstanding = by_type["bonus"].outstanding
    assert outstanding >= next(b.balance for b in member.balances if b.point_type == "bonus")
    assert by_type["bonus"].redeemed == 600
    promotions = {p.promotion: p for p in report.promotions}
    assert promotions["A"].orders == 4  # o1..o4 by members; the guest has none
    assert promotions["P"].orders == 2 and promotions["P"].discount == 600

    window = await admin_of(e2e).GetProgramReport(admin_pb2.GetProgramReportRequest(
        program=PROGRAM, **{"from": stamp(T0 + DAY), "to": stamp(T0 + 2 * DAY)}))
    assert window.orders == 1
    assert [d.date for d in window.days] == ["2025-06-03"]
    assert (window.order_counts.cancelled, window.order_counts.returned) == (1, 1)


async def test_the_report_days_are_the_programs_time_zone(e2e: E2E) -> None:
    program = shop_program()
    program.time_zone = "Asia/Vladivostok"  # UTC+10: T0 (10:00 UTC) is 20:00 local
    await admin_of(e2e).ImportProgram(admin_pb2.ImportProgramRequest(program=program))
    await admin_of(e2e).Apply(admin_pb2.ApplyRequest(program=PROGRAM))
    await e2e.enroll("m-1")
    e2e.clock.advance(timedelta(hours=5))  # 15:00 UTC: the next day in Vladivostok
    await e2e.checkout.ConfirmOrder(order_request("o1", "m-1"))
    report = await admin_of(e2e).GetProgramReport(admin_pb2.GetProgramReportRequest(
        program=PROGRAM))
    assert [(d.date, d.orders) for d in report.days] == [("2025-06-02", 0), ("2025-06-03", 1)]


async def test_report_errors_name_the_field(e2e: E2E) -> None:
    admin = admin_of(e2e)
    assert await bad_request_of(admin.GetProgramReport(admin_pb2.GetProgramReportRequest())) == (
        INVALID_ARGUMENT, [("program", "required: a program id")])
    code, violations = await bad_request_of(admin.GetProgramReport(
        admin_pb2.GetProgramReportRequest(program=PROGRAM,
                                          **{"from": stamp(T0 + DAY), "to": stamp(T0)})))
    assert code == INVALID_ARGUMENT and [f for f, _ in violations] == ["to"]
    assert await status_of(admin.GetProgramReport(
        admin_pb2.GetProgramReportRequest(program="nope"))) == grpc.StatusCode.NOT_FOUND
