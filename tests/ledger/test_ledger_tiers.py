"""Tiers (docs/contract.md): DYNAMIC, CUMULATIVE, CYCLIC (reset, upgrade_immediately,
extend_to_month_end, fixed anchor), history and events, with a moved clock."""

from __future__ import annotations

from datetime import UTC, datetime

from arbiter.server.engine.types import MemberState
from arbiter.server.ledger import Ledger
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import DAY, T0, FakeOrder, make_program, tier_group

MONTH = (1, program_pb2.PERIOD_UNIT_MONTH)
FEB15 = datetime(2025, 2, 15, 12, 0, tzinfo=UTC)
MAR15 = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)
APR1 = datetime(2025, 4, 1, tzinfo=UTC)


async def _status(ledger: Ledger, program: program_pb2.Program, points: int, key: str,
                  now: datetime, op: str = "ACCRUAL") -> None:
    await ledger.create_transaction(program, member_id="m1", point_type="status", operation=op,
                                    points=points, external_id=key, now=now)


async def _tier(ledger: Ledger, program: program_pb2.Program, now: datetime) -> tuple[str, int]:
    status = (await ledger.get_member(program, "m1", now=now)).tier("g")
    return status.tier, status.points


async def test_dynamic_goes_up_and_down(ledger: Ledger) -> None:
    program = make_program(tier_groups=[tier_group(program_pb2.TIER_MODEL_DYNAMIC)])
    await ledger.enroll(program, "m1", now=T0)
    status = (await ledger.get_member(program, "m1", now=T0)).tier("g")
    assert (status.tier, status.next_tier, status.to_next, status.period_end) == (
        "base", "silver", 100, None)
    await _status(ledger, program, 150, "a", T0)
    status = (await ledger.get_member(program, "m1", now=T0)).tier("g")
    assert (status.tier, status.points, status.next_tier, status.to_next) == (
        "silver", 150, "gold", 350)
    await _status(ledger, program, 100, "b", T0 + DAY, op="DEDUCTION")
    assert await _tier(ledger, program, T0 + DAY) == ("base", 50)
    history = await ledger.tier_history(program, "m1")
    assert [(h.from_tier, h.to_tier, h.reason) for h in history] == [
        ("base", "silver", "UPGRADE"), ("silver", "base", "DOWNGRADE")]
    events = [e.payload for e in await ledger.outbox_events() if e.topic == "tier.changed"]
    assert [(e["from_tier"], e["to_tier"]) for e in events] == [("base", "silver"),
                                                              ("silver", "base")]


async def test_cumulative_keeps_a_reached_tier(ledger: Ledger) -> None:
    program = make_program(tier_groups=[tier_group(program_pb2.TIER_MODEL_CUMULATIVE)])
    await ledger.enroll(program, "m1", now=T0)
    await _status(ledger, program, 600, "a", T0)
    assert await _tier(ledger, program, T0) == ("gold", 600)
    await _status(ledger, program, 600, "b", T0, op="DEDUCTION")
    status = (await ledger.get_member(program, "m1", now=T0)).tier("g")
    assert (status.tier, status.points, status.next_tier, status.to_next) == ("gold", 0, "", 0)


async def test_tiers_reach_the_calculation(ledger: Ledger) -> None:
    program = make_program(tier_groups=[tier_group(program_pb2.TIER_MODEL_DYNAMIC)])
    await ledger.enroll(program, "m1", now=T0)
    await _status(ledger, program, 500, "a", T0)
    calls: list[MemberState] = []
    order = FakeOrder("o1", segments=frozenset({"vip"}))
    await ledger.confirm_order(program, order.request(), order.compute(program, calls), now=T0)
    assert calls[0].tiers == {"g": "gold"} and calls[0].segments == {"vip"}
    state = await ledger.member_state(program, "m1", now=T0)
    assert state.tiers == {"g": "gold"} and state.balances["status"] == 500


async def test_cyclic_moves_at_period_ends_and_resets(ledger: Ledger) -> None:
    group = tier_group(program_pb2.TIER_MODEL_CYCLIC, period=MONTH, reset=True)
    program = make_program(tier_groups=[group])
    await ledger.enroll(program, "m1", now=T0)
    await _status(ledger, program, 150, "a", T0 + 5 * DAY)
    status = (await ledger.get_member(program, "m1", now=T0 + 5 * DAY)).tier("g")
    assert (status.tier, status.points, status.period_end) == ("base", 150, FEB15)
    report = await ledger.run_tier_periods(program, now=FEB15)
    assert report.members == 1
    assert [(c.from_tier, c.to_tier, c.reason) for c in report.changes] == [
        ("base", "silver", "PERIOD_END")]
    assert (await ledger.run_tier_periods(program, now=FEB15)).members == 0
    status = (await ledger.get_member(program, "m1", now=FEB15)).tier("g")
    assert (status.tier, status.points, status.period_end) == ("silver", 0, MAR15)
    info = await ledger.get_member(program, "m1", now=FEB15)
    assert info.balance("status").balance == 0
    txns = (await ledger.list_transactions(program, "m1", point_type="status")).transactions
    assert [(t.type, t.source_type, t.value) for t in txns] == [
        ("ACCRUAL", "MANUAL", 150), ("RESET", "TIER_RESET", -150)]
    # A period with no points drops back to the first tier.
    await ledger.run_tier_periods(program, now=MAR15)
    assert await _tier(ledger, program, MAR15) == ("base", 0)


async def test_cyclic_reset_keeps_points_earned_after_the_period_end(ledger: Ledger) -> None:
    group = tier_group(program_pb2.TIER_MODEL_CYCLIC, period=MONTH, reset=True)
    program = make_program(tier_groups=[group])
    await ledger.enroll(program, "m1", now=T0)
    await _status(ledger, program, 120, "a", T0 + DAY)
    # The next write comes after the period end: it closes the period first.
    await _status(ledger, program, 30, "b", FEB15 + DAY)
    info = await ledger.get_member(program, "m1", now=FEB15 + DAY)
    assert info.balance("status").balance == 30
    assert (info.tier("g").tier, info.tier("g").points) == ("silver", 30)


async def test_cyclic_upgrade_immediately(ledger: Ledger) -> None:
    group = tier_group(program_pb2.TIER_MODEL_CYCLIC, period=MONTH, upgrade_immediately=True)
    program = make_program(tier_groups=[group])
    await ledger.enroll(program, "m1", now=T0)
    await _status(ledger, program, 600, "a", T0 + DAY)
    assert await _tier(ledger, program, T0 + DAY) == ("gold", 600)
    # Moving down happens only at period ends.
    await _status(ledger, program, 550, "b", T0 + 2 * DAY, op="DEDUCTION")
    assert await _tier(ledger, program, T0 + 2 * DAY) == ("gold", 50)
    await ledger.run_tier_periods(program, now=FEB15)
    assert await _tier(ledger, program, FEB15) == ("base", 0)


async def test_cyclic_extend_to_month_end(ledger: Ledger) -> None:
    group = tier_group(program_pb2.TIER_MODEL_CYCLIC, period=MONTH, upgrade_immediately=True,
                       extend_to_month_end=True)
    program = make_program(tier_groups=[group])
    await ledger.enroll(program, "m1", now=T0)
    await _status(ledger, program, 150, "a", T0 + DAY)
    await ledger.run_tier_periods(program, now=FEB15)
    assert (await _tier(ledger, program, FEB15))[0] == "silver"
    # The period ending Mar 15 earned nothing: silver lapses then, kept until the month's end.
    await ledger.run_tier_periods(program, now=MAR15)
    assert (await _tier(ledger, program, MAR15 + 5 * DAY))[0] == "silver"
    report = await ledger.run_tier_periods(program, now=APR1)
    assert [(c.from_tier, c.to_tier, c.reason, c.changed_at) for c in report.changes] == [
        ("silver", "base", "EXTENDED_END", APR1)]


async def test_cyclic_fixed_anchor_and_catch_up_on_read(ledger: Ledger) -> None:
    anchor = datetime(2024, 1, 1, tzinfo=UTC)
    group = tier_group(program_pb2.TIER_MODEL_CYCLIC, period=(1, program_pb2.PERIOD_UNIT_YEAR),
                       anchor=anchor)
    program = make_program(tier_groups=[group])
    await ledger.enroll(program, "m1", now=T0)
    status = (await ledger.get_member(program, "m1", now=T0)).tier("g")
    assert status.period_end == datetime(2026, 1, 1, tzinfo=UTC)
    await _status(ledger, program, 500, "a", T0)
    # No job has run, yet a read after the period end shows the closed period.
    later = datetime(2026, 1, 2, tzinfo=UTC)
    status = (await ledger.get_member(program, "m1", now=later)).tier("g")
    assert (status.tier, status.period_end) == ("gold", datetime(2027, 1, 1, tzinfo=UTC))
    # Years with nothing earned are skipped in one step.
    far = datetime(2031, 6, 1, tzinfo=UTC)
    status = (await ledger.get_member(program, "m1", now=far)).tier("g")
    assert (status.tier, status.period_end) == ("base", datetime(2032, 1, 1, tzinfo=UTC))
    history = await ledger.tier_history(program, "m1")
    assert [(h.to_tier, h.changed_at) for h in history] == [
        ("gold", datetime(2026, 1, 1, tzinfo=UTC)), ("base", datetime(2027, 1, 1, tzinfo=UTC))]


async def test_cyclic_extension_is_cancelled_by_points_earned_meanwhile(ledger: Ledger) -> None:
    group = tier_group(program_pb2.TIER_MODEL_CYCLIC, period=MONTH, upgrade_immediately=True,
                       extend_to_month_end=True)
    program = make_program(tier_groups=[group])
    await ledger.enroll(program, "m1", now=T0)
    await _status(ledger, program, 150, "a", T0 + DAY)
    await ledger.run_tier_periods(program, now=MAR15)  # closes Feb 15 (silver), Mar 15 (none)
    assert (await _tier(ledger, program, MAR15))[0] == "silver"
    await _status(ledger, program, 120, "b", MAR15 + DAY)  # silver reached again this period
    report = await ledger.run_tier_periods(program, now=APR1)
    assert report.changes == ()
    assert await _tier(ledger, program, APR1) == ("silver", 120)
