"""Test helpers for the ledger: small programs, a fake calculator, the ledger's invariants.

The fake calculator is a test double of the engine: it turns a requested redemption and
requested accruals into a CalculationResult shaped like the engine's (rule 17, docs/rules.md),
with 1 point = 1 minor unit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from arbiter.server.engine.money import apportion
from arbiter.server.engine.types import (
    AppliedBenefit,
    CalculationResult,
    CodeUsage,
    LineResult,
    MemberState,
    PointsChange,
    PromoCodeResult,
    Totals,
)
from arbiter.server.ledger import Compute, LedgerProgram, OrderRequest
from arbiter.v1 import program_pb2

T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
# The only point type of the test programs that may go below zero.
NEGATIVE_OK = frozenset({"debt"})


def make_program(
    *,
    initial_bonus: int = 0,
    validity_days: int = 0,
    bonus_refund: bool = True,
    bonus_deactivate_at: datetime | None = None,
    tier_groups: Sequence[program_pb2.TierGroup] = (),
    pools: Sequence[program_pb2.PromoCodePool] = (),
    triggers: Sequence[program_pb2.TriggerPromotion] = (),
    time_zone: str = "UTC",
) -> program_pb2.Program:
    """Types: `bonus` (STANDARD), `miles` (STANDARD, no refund, 1 year), `debt` (STANDARD,
    negative allowed), `status` (QUALIFICATION)."""
    program = program_pb2.Program(id="p1", name="test", time_zone=time_zone)
    bonus = program.point_types.add(
        id="bonus", kind=program_pb2.POINT_KIND_STANDARD, active=True,
        initial_balance=initial_bonus, allow_refund=bonus_refund,
    )
    bonus.ratio.points, bonus.ratio.money = 1, 1
    if validity_days:
        bonus.validity.count = validity_days
        bonus.validity.unit = program_pb2.PERIOD_UNIT_DAY
    if bonus_deactivate_at is not None:
        bonus.deactivate_at.FromDatetime(bonus_deactivate_at)
    miles = program.point_types.add(id="miles", kind=program_pb2.POINT_KIND_STANDARD, active=True,
                                    allow_refund=False)
    miles.validity.count, miles.validity.unit = 1, program_pb2.PERIOD_UNIT_YEAR
    program.point_types.add(id="debt", kind=program_pb2.POINT_KIND_STANDARD, active=True,
                            allow_negative_balance=True, allow_refund=True)
    program.point_types.add(id="status", kind=program_pb2.POINT_KIND_QUALIFICATION, active=True)
    program.tier_groups.extend(tier_groups)
    program.promo_code_pools.extend(pools)
    program.trigger_promotions.extend(triggers)
    return program


def tier_group(model: int, *, gid: str = "g", tiers: Sequence[tuple[str, int]] = (
        ("base", 0), ("silver", 100), ("gold", 500)), **cyclic: object) -> program_pb2.TierGroup:
    group = program_pb2.TierGroup(id=gid, name=gid, model=model, point_type="status")
    for tid, min_balance in tiers:
        group.tiers.add(id=tid, name=tid, min_balance=min_balance)
    for key, value in cyclic.items():
        if key == "period":
            count, unit = value  # type: ignore[misc]
            group.period.count, group.period.unit = count, unit
        elif key == "anchor":
            assert isinstance(value, datetime)
            group.anchor.FromDatetime(value)
        else:
            setattr(group, key, value)
    return group


@dataclass(frozen=True)
class FakeOrder:
    """An order for the fake calculator. Lines are (id, quantity, unit price)."""

    order_id: str
    member_id: str = "m1"
    lines: tuple[tuple[str, int, int], ...] = (("l1", 1, 10_000),)
    redeem: tuple[tuple[str, int], ...] = ()
    accrue: tuple[tuple[str, int], ...] = ()  # ON_CREATE, spread over the lines
    accrue_pending: tuple[tuple[str, int], ...] = ()  # ON_DELIVERY, spread over the lines
    order_accrue: tuple[tuple[str, int], ...] = ()  # ON_CREATE, one order-level row
    codes: tuple[str, ...] = ()
    segments: frozenset[str] = field(default_factory=frozenset)

    def payload_hash(self) -> str:
        body = [self.member_id, self.lines, self.redeem, self.accrue, self.accrue_pending,
                self.order_accrue, self.codes]
        return hashlib.sha256(json.dumps(body).encode()).hexdigest()

    def request(self, expected_total: int | None = None, *, program_version: int | None = None,
                hint: bool = True) -> OrderRequest:
        """The ledger's request; `hint` False leaves out what the order asks to redeem, so the
        ledger reads the lots only once the calculation has said how much it redeems."""
        return OrderRequest(self.order_id, self.member_id, self.payload_hash(), self.codes,
                            self.segments, expected_total, program_version=program_version,
                            redeem=self.redeem if hint else ())

    def compute(self, program: program_pb2.Program,
                calls: list[MemberState | None] | None = None) -> Compute:
        cfg = LedgerProgram.from_proto(program)

        def run(member: MemberState | None, usage: CodeUsage) -> CalculationResult:
            if calls is not None:
                calls.append(member)
            return fake_calculate(self, cfg, member, usage)

        return run


def _portions(final: int, quantity: int) -> tuple[tuple[int, int], ...]:
    r = final % quantity
    out = []
    if r:
        out.append((r, final // quantity + 1))
    if quantity - r:
        out.append((quantity - r, final // quantity))
    return tuple(out)


def fake_calculate(order: FakeOrder, cfg: LedgerProgram, member: MemberState | None,
                   usage: CodeUsage) -> CalculationResult:
    """`member` None is a guest: no points budget and no accruals (rule 3, docs/rules.md)."""
    balances = member.balances if member is not None else {}
    bases = [q * p for _, q, p in order.lines]
    paid = [0] * len(order.lines)
    benefits: list[AppliedBenefit] = []
    changes: dict[str, list[int]] = {}  # type -> [requested, redeemed, accrued, pending]
    for point_type, requested in order.redeem:
        budget = min(requested, max(0, balances.get(point_type, 0)),
                     sum(bases) - sum(paid))
        room = [b - p for b, p in zip(bases, paid, strict=True)]
        shares = apportion(budget, room)
        for i, share in enumerate(shares):
            if share:
                paid[i] += share
                benefits.append(AppliedBenefit(order.lines[i][0], "pwp", "POINTS",
                                               "pay_with_points", share, share, point_type))
        changes.setdefault(point_type, [0, 0, 0, 0])[0:2] = [requested, budget]
    finals = [b - p for b, p in zip(bases, paid, strict=True)]
    weights = finals if sum(finals) else bases
    for kind, items in ((2, order.accrue), (3, order.accrue_pending)):
        if member is None:
            break
        timing = "ON_CREATE" if kind == 2 else "ON_DELIVERY"
        for point_type, points in items:
            for i, share in enumerate(apportion(points, weights)):
                if share:
                    benefits.append(AppliedBenefit(order.lines[i][0], "acc", "POINTS",
                                                   "accrue_points", 0, share, point_type, timing))
            changes.setdefault(point_type, [0, 0, 0, 0])[kind] += points
    for point_type, points in order.order_accrue if member is not None else ():
        benefits.append(AppliedBenefit("", "acc-order", "POINTS", "accrue_points", 0, points,
                                       point_type, "ON_CREATE"))
        changes.setdefault(point_type, [0, 0, 0, 0])[2] += points
    line_order = {line[0]: i for i, line in enumerate(order.lines)}
    benefits.sort(key=lambda b: line_order.get(b.line_id, len(line_order)))
    codes: list[PromoCodeResult] = []
    pools_applied: dict[str, int] = {}
    for code in order.codes:
        upper = code.upper()
        pool_id = cfg.code_pools.get(upper)
        if pool_id is None:
            codes.append(PromoCodeResult(code, "INVALID", "UNKNOWN_CODE"))
            continue
        pool = cfg.pools[pool_id]
        max_uses = pool.codes[upper]
        used = usage.code_uses.get(upper, 0)
        member_used = usage.member_pool_uses.get(pool_id, 0) + pools_applied.get(pool_id, 0)
        if (max_uses and used >= max_uses) or (
            pool.max_uses_per_member and member_used >= pool.max_uses_per_member
        ):
            codes.append(PromoCodeResult(code, "INVALID", "EXHAUSTED", pool_id))
        elif pool_id in pools_applied:
            codes.append(PromoCodeResult(code, "NOT_APPLIED", "ANOTHER_CODE_APPLIED", pool_id))
        else:
            pools_applied[pool_id] = 1
            codes.append(PromoCodeResult(code, "APPLIED", "", pool_id))
    lines = tuple(
        LineResult(line_id, bases[i], 0, paid[i], finals[i], _portions(finals[i], q))
        for i, (line_id, q, _) in enumerate(order.lines)
    )
    ordered_types = [t for t in cfg.point_types if t in changes]
    points = tuple(PointsChange(t, *changes[t]) for t in ordered_types)
    subtotal = sum(bases)
    total_paid = sum(paid)
    return CalculationResult(
        evaluated_at=T0,
        totals=Totals(subtotal, 0, total_paid, 0, 0, subtotal - total_paid,
                      sum(q for _, q, _ in order.lines)),
        lines=lines,
        benefits=tuple(benefits),
        points=points,
        texts=(),
        promo_codes=tuple(codes),
    )


async def check_invariants(conn: asyncpg.Connection) -> None:
    """The ledger's invariants, checked after every ledger test.

    - each (member, type) chain starts at 0, each balance_before is the previous balance_after,
      and the balance row holds the last balance_after (= the sum of the values);
    - balance = sum(remaining of ACTIVE lots) - unbacked;
    - no balance ever went below zero except on a type that allows it;
    - a hold's earmarks add up to the hold; a lot never holds more or less than it can;
    - a promo code use belongs to its order's member (none for a guest order), and a guest
      order has no lots, holds or lot consumptions (it moves no points).
    """
    rows = await conn.fetch(
        "SELECT member_pk, point_type, pk, balance_before, value, balance_after"
        " FROM transactions ORDER BY member_pk, point_type, pk"
    )
    last: dict[tuple[int, str], int] = {}
    count: dict[tuple[int, str], int] = {}
    total: dict[tuple[int, str], int] = {}
    for r in rows:
        key = (r["member_pk"], r["point_type"])
        assert r["balance_before"] == last.get(key, 0), f"chain broken at transaction {r['pk']}"
        assert r["balance_after"] == r["balance_before"] + r["value"]
        if r["point_type"] not in NEGATIVE_OK:
            assert r["balance_after"] >= 0, f"negative balance at transaction {r['pk']}"
        last[key] = r["balance_after"]
        count[key] = count.get(key, 0) + 1
        total[key] = total.get(key, 0) + r["value"]
    balances = await conn.fetch(
        """
        SELECT b.member_pk, b.point_type, b.balance, b.unbacked, b.txn_count,
               COALESCE((SELECT sum(l.remaining) FROM lots l WHERE l.member_pk = b.member_pk
                         AND l.point_type = b.point_type AND l.state = 'ACTIVE'), 0)::bigint
                   AS lots
        FROM balances b
        """
    )
    for b in balances:
        key = (b["member_pk"], b["point_type"])
        assert b["balance"] == last.get(key, 0) == total.get(key, 0), key
        assert b["txn_count"] == count.get(key, 0), key
        assert b["balance"] == b["lots"] - b["unbacked"], (key, b["balance"], b["lots"],
                                                          b["unbacked"])
        if b["point_type"] not in NEGATIVE_OK:
            assert b["unbacked"] == 0, key
    assert len(balances) >= len(last)
    holds = await conn.fetch(
        "SELECT h.pk, h.points, COALESCE(sum(hl.points), 0)::bigint AS earmarked FROM holds h"
        " LEFT JOIN hold_lots hl ON hl.hold_pk = h.pk GROUP BY h.pk, h.points"
    )
    for h in holds:
        assert h["points"] == h["earmarked"], f"hold {h['pk']} earmarks {h['earmarked']}"
    bad_lots = await conn.fetchval(
        "SELECT count(*) FROM lots WHERE remaining > points"
        " OR (state = 'PENDING' AND expires_at IS NOT NULL)"
    )
    assert bad_lots == 0
    foreign_uses = await conn.fetchval(
        "SELECT count(*) FROM promo_code_uses u JOIN orders o ON o.pk = u.order_pk"
        " WHERE u.member_pk IS DISTINCT FROM o.member_pk"
    )
    assert foreign_uses == 0
    guest_points = await conn.fetchval(
        """
        SELECT (SELECT count(*) FROM lots l JOIN orders o ON o.pk = l.order_pk
                WHERE o.member_pk IS NULL)
             + (SELECT count(*) FROM holds h JOIN orders o ON o.pk = h.order_pk
                WHERE o.member_pk IS NULL)
             + (SELECT count(*) FROM lot_consumptions c JOIN orders o ON o.pk = c.order_pk
                WHERE o.member_pk IS NULL)
        """
    )
    assert guest_points == 0
