"""Selection: which promotions are candidates for an order, and which lines each rule matches.

Everything here is evaluated once per calculation on the order as received (base prices),
never on an intermediate state (SPEC 2, 3 step 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from arbiter.server.engine.compile import (
    PRODUCT,
    CompiledProgram,
    COrderSegment,
    CProductSegment,
    CPromotion,
    to_us,
)
from arbiter.server.engine.types import CodeUsage, MemberState, OrderInput
from arbiter.v1 import program_pb2 as pb

__all__ = [
    "CodeCheck",
    "Selection",
    "check_codes",
    "resolve_tiers",
    "select",
    "static_segments",
]

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """A distinct code of the order: its pool when valid, else why it is invalid."""

    code: str  # as first written on the order
    pool: str  # "" when unknown
    reason: str  # "" when valid, else UNKNOWN_CODE | EXPIRED | NOT_YET_VALID | EXHAUSTED


@dataclass(frozen=True, slots=True)
class Selection:
    eligible: tuple[bool, ...]  # per promotion
    rule_lines: dict[tuple[int, int], BoolArray]  # (promotion, rule) -> matching lines [L]
    rule_active: dict[tuple[int, int], bool]  # (promotion, rule) -> the rule applies
    codes: tuple[CodeCheck, ...]


def _field_ok(value: int | None, op: int, ref: int, values: frozenset[int]) -> bool:
    if value is None:
        return False  # a line without the field never matches (rule 21)
    if op == pb.FIELD_OP_EQ:
        return value == ref
    if op == pb.FIELD_OP_NE:
        return value != ref
    if op == pb.FIELD_OP_LT:
        return value < ref
    if op == pb.FIELD_OP_LE:
        return value <= ref
    if op == pb.FIELD_OP_GT:
        return value > ref
    if op == pb.FIELD_OP_GE:
        return value >= ref
    return value in values  # IN


def line_in_segment(seg: CProductSegment, order: OrderInput, i: int) -> bool:
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
    # `fields` is a list like the others: within it, any predicate matching is enough (SPEC 2).
    return not seg.fields or any(
        _field_ok(line.fields.get(name), op, ref, values) for name, op, ref, values in seg.fields
    )


def order_in_segment(
    seg: COrderSegment,
    order: OrderInput,
    subtotal: int,
    items: int,
    product_match: dict[str, BoolArray],
    program: CompiledProgram,
) -> bool:
    if seg.min_subtotal and subtotal < seg.min_subtotal:
        return False
    if seg.max_subtotal and subtotal > seg.max_subtotal:
        return False
    if seg.min_items and items < seg.min_items:
        return False
    if seg.channels and order.channel not in seg.channels:
        return False
    if seg.regions and order.region not in seg.regions:
        return False
    for seg_id, min_quantity in seg.contains:
        mask = _product_mask(seg_id, order, product_match, program)
        units = sum(line.quantity for line, hit in zip(order.lines, mask, strict=True) if hit)
        if units < min_quantity:
            return False
    return True


def _product_mask(
    seg_id: str, order: OrderInput, cache: dict[str, BoolArray], program: CompiledProgram
) -> BoolArray:
    mask = cache.get(seg_id)
    if mask is None:
        seg = program.product_segments[seg_id]
        mask = np.array(
            [line_in_segment(seg, order, i) for i in range(len(order.lines))], dtype=np.bool_
        )
        cache[seg_id] = mask
    return mask


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
    return frozenset(
        seg_id for seg_id, members in program.member_segments.items() if member_id in members
    )


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


def select(
    program: CompiledProgram,
    order: OrderInput,
    member: MemberState | None,
    at: datetime,
    zone: ZoneInfo,
    usage: CodeUsage | None,
) -> Selection:
    """Eligibility of every promotion and the matching lines of every rule."""
    local = at.astimezone(zone)
    codes = check_codes(program, order, at, usage)
    valid_pools = {c.pool for c in codes if c.pool and not c.reason}
    segments: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()
    if member is not None:
        # A member state carries its segments: an inline context names them all, and the
        # member directory adds the static ones for an enrolled member.
        segments = member.segments
        tiers = resolve_tiers(program, member)
    subtotal = sum(line.unit_price * line.quantity for line in order.lines)
    items = sum(line.quantity for line in order.lines)
    n_lines = len(order.lines)
    product_match: dict[str, BoolArray] = {}
    order_match: dict[str, bool] = {}
    all_lines = np.ones(n_lines, dtype=np.bool_)
    quantities = np.array([line.quantity for line in order.lines], dtype=np.int64)
    arrays = program.selection
    at_us = to_us(at)
    ok = (
        arrays.active
        & (arrays.start_us <= at_us)
        & (at_us < arrays.end_us)
        & ((arrays.weekday_bits == 0) | ((arrays.weekday_bits >> local.isoweekday()) & 1 == 1))
        & ((arrays.month_bits == 0) | ((arrays.month_bits >> local.month) & 1 == 1))
    )
    channel_ok = arrays.any_channel
    by_channel = arrays.channel.get(order.channel)
    if by_channel is not None:
        channel_ok = channel_ok | by_channel
    by_point = arrays.channel_point.get((order.channel, order.point_of_contact))
    if by_point is not None:
        channel_ok = channel_ok | by_point
    ok &= channel_ok
    if arrays.pool_ids:
        pool_ok = np.array([pid in valid_pools for pid in arrays.pool_ids] + [True])
        ok &= pool_ok[arrays.pool]  # index -1: no pool, always fine
    else:
        ok &= arrays.pool < 0
    if member is None:
        ok &= arrays.audience == pb.AUDIENCE_KIND_EVERYONE
    eligible: list[bool] = ok.tolist()
    rule_lines: dict[tuple[int, int], BoolArray] = {}
    rule_active: dict[tuple[int, int], bool] = {}
    for index in np.flatnonzero(ok).tolist():
        p = program.promotions[index]
        if (p.windows and not _in_availability(p, local)) or (
            member is not None and not _audience_ok(p, member, segments, tiers)
        ):
            eligible[index] = False
            continue
        for r, rule in enumerate(p.rules):
            if rule.level == PRODUCT:
                if rule.scope_kind == pb.SCOPE_KIND_ALL:
                    mask = all_lines
                else:
                    mask = np.zeros(n_lines, dtype=np.bool_)
                    for seg_id in rule.segments:
                        mask = mask | _product_mask(seg_id, order, product_match, program)
                    if rule.scope_kind == pb.SCOPE_KIND_NOT_IN_SEGMENTS:
                        mask = ~mask
                units = int(quantities[mask].sum())
                active = units > 0 and units >= rule.min_quantity
                rule_lines[(p.index, r)] = mask if active else np.zeros(n_lines, dtype=np.bool_)
                rule_active[(p.index, r)] = active
            else:
                if rule.scope_kind == pb.SCOPE_KIND_ALL:
                    hit = True
                else:
                    hit = False
                    for seg_id in rule.segments:
                        if seg_id not in order_match:
                            order_match[seg_id] = order_in_segment(
                                program.order_segments[seg_id],
                                order,
                                subtotal,
                                items,
                                product_match,
                                program,
                            )
                        hit = hit or order_match[seg_id]
                    if rule.scope_kind == pb.SCOPE_KIND_NOT_IN_SEGMENTS:
                        hit = not hit
                rule_active[(p.index, r)] = hit
    return Selection(tuple(eligible), rule_lines, rule_active, codes)


def _channel_ok(p: CPromotion, order: OrderInput) -> bool:
    points = p.channels.get(order.channel)
    if points is None:
        return False
    return not points or order.point_of_contact in points
