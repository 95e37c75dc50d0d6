"""Selection: which promotions are candidates for an order, and which lines each rule matches.

Everything here is evaluated once per calculation on the order as received (base prices),
never on an intermediate state (docs/rules.md, The program model; The calculation, step 3).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

from arbiter.server.engine._select import Selection
from arbiter.server.engine.compile import CompiledProgram, CProductSegment, CPromotion, to_us
from arbiter.server.engine.segments import field_ok
from arbiter.server.engine.types import CodeUsage, MemberState, OrderInput
from arbiter.v1 import program_pb2 as pb

__all__ = [
    "CodeCheck",
    "Selection",
    "check_codes",
    "resolve_tiers",
    "select",
    "static_segments",
    "with_static_segments",
]


class CodeCheck(NamedTuple):
    """A distinct code of the order: its pool when valid, else why it is invalid."""

    code: str  # as first written on the order
    pool: str  # "" when unknown
    reason: str  # "" when valid, else UNKNOWN_CODE | EXPIRED | NOT_YET_VALID | EXHAUSTED


def line_in_segment(seg: CProductSegment, order: OrderInput, i: int) -> bool:
    """Whether line `i` is in product segment `seg` (docs/rules.md), criterion by criterion."""
    line = order.lines[i]
    if seg.skus and line.sku not in seg.skus:
        return False
    if seg.categories and seg.categories.isdisjoint(line.categories):
        return False
    if seg.brands and line.brand not in seg.brands:
        return False
    if seg.partners and line.partner not in seg.partners:
        return False
    if seg.min_unit_price and line.unit_price < seg.min_unit_price:
        return False
    if seg.max_unit_price and line.unit_price > seg.max_unit_price:
        return False
    # `fields` is a list like the others: within it, any predicate matching is enough.
    return not seg.fields or any(
        field_ok(line.fields.get(name), op, ref, values) for name, op, ref, values in seg.fields
    )


def resolve_tiers(program: CompiledProgram, member: MemberState) -> frozenset[str]:
    """The member's tier ids: given ones, else the tier its balance reaches (rule 20)."""
    tiers: set[str] = set()
    for group in program.tier_groups:
        tier = member.tiers.get(group.id)
        if tier is None:
            balance = member.balances.get(group.point_type, 0)
            tier = group.tiers[0][0] if group.tiers else ""
            for tier_id, min_balance in group.tiers:
                if balance >= min_balance:
                    tier = tier_id
        if tier:
            tiers.add(tier)
    return frozenset(tiers)


def _in_availability(p: CPromotion, local: datetime) -> bool:
    if p.weekdays and local.isoweekday() not in p.weekdays:
        return False
    if p.months and local.month not in p.months:
        return False
    if p.windows:
        minute = local.hour * 60 + local.minute
        for start, end in p.windows:
            if start == end:
                return True
            if start < end and start <= minute < end:
                return True
            if start > end and (minute >= start or minute < end):
                return True
        return False
    return True


def _audience_ok(
    p: CPromotion, member: MemberState | None, segments: frozenset[str], tiers: frozenset[str]
) -> bool:
    if p.audience == pb.AUDIENCE_KIND_EVERYONE:
        return True
    if member is None:
        return False
    if p.audience == pb.AUDIENCE_KIND_ALL_MEMBERS:
        return True
    if p.audience == pb.AUDIENCE_KIND_IN_SEGMENTS:
        return not p.audience_segments.isdisjoint(segments)
    if p.audience == pb.AUDIENCE_KIND_NOT_IN_SEGMENTS:
        return p.audience_segments.isdisjoint(segments)
    return not p.audience_tiers.isdisjoint(tiers)  # TIERS


def static_segments(program: CompiledProgram, member_id: str) -> frozenset[str]:
    """The program's static member segments that list `member_id` (for an enrolled member)."""
    return program.segments_of_member.get(member_id, frozenset())


def with_static_segments(program: CompiledProgram, member: MemberState) -> MemberState:
    """An enrolled member as the calculation sees it: its state plus the program's static
    member segments that list it (an inline member context names all its segments itself)."""
    static = program.segments_of_member.get(member.member_id)
    if not static or static <= member.segments:
        return member
    return member._replace(segments=member.segments | static)


def check_codes(
    program: CompiledProgram, order: OrderInput, at: datetime, usage: CodeUsage | None
) -> tuple[CodeCheck, ...]:
    """One check per distinct code (case-insensitive), in the order's order (rule 19)."""
    seen: set[str] = set()
    checks: list[CodeCheck] = []
    for written in order.promo_codes:
        upper = written.upper()
        if upper in seen:
            continue
        seen.add(upper)
        pool_id = program.code_pool.get(upper)
        if pool_id is None:
            checks.append(CodeCheck(written, "", "UNKNOWN_CODE"))
            continue
        pool = program.pools[pool_id]
        reason = ""
        if pool.valid_from is not None and at < pool.valid_from:
            reason = "NOT_YET_VALID"
        elif pool.valid_to is not None and at >= pool.valid_to:
            reason = "EXPIRED"
        elif usage is not None:
            max_uses = pool.codes[upper]
            if (max_uses and usage.code_uses.get(upper, 0) >= max_uses) or (
                pool.max_uses_per_member
                and (usage.member_pool_uses.get(pool_id, 0) >= pool.max_uses_per_member)
            ):
                reason = "EXHAUSTED"
        checks.append(CodeCheck(written, pool_id, reason))
    return tuple(checks)


_NO_POOLS: Final[frozenset[str]] = frozenset()


def select(
    program: CompiledProgram,
    order: OrderInput,
    member: MemberState | None,
    at: datetime,
    zone: ZoneInfo,
    usage: CodeUsage | None,
) -> Selection:
    """Eligibility of every promotion and the matching lines of every rule.

    The promo codes are checked here; the rest is the typed selection (_select.pyx) over the
    program's tables: status, period, weekday, month, channel and pools of every promotion,
    kept between orders (the gate), then time windows and audiences of those that pass, then
    their rules with lines as bit sets."""
    codes = check_codes(program, order, at, usage) if order.promo_codes else ()
    valid_pools = (
        frozenset(c.pool for c in codes if c.pool and not c.reason) if codes else _NO_POOLS
    )
    return program.select_tables.select(
        program.gates,
        order,
        member,
        to_us(at),
        at.astimezone(zone),
        codes,
        valid_pools,
        resolve_tiers,
        program,
    )
