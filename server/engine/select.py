"""Selection: which promotions are candidates for an order, and which lines each rule matches.

Everything here is evaluated once per calculation on the order as received (base prices),
never on an intermediate state (SPEC 2, 3 step 3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from arbiter.server.engine.compile import (
    CompiledProgram,
    COrderSegment,
    CProductSegment,
    CPromotion,
    to_us,
)
from arbiter.server.engine.segments import field_ok, segment_matrix
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

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """A distinct code of the order: its pool when valid, else why it is invalid."""

    code: str  # as first written on the order
    pool: str  # "" when unknown
    reason: str  # "" when valid, else UNKNOWN_CODE | EXPIRED | NOT_YET_VALID | EXHAUSTED


@dataclass(slots=True)
class Selection:
    """Which promotions and rules apply to an order, and the lines of every rule."""

    live: list[bool]  # per promotion: eligible, and at least one of its rules applies
    rule_active: list[bool]  # per rule (global rule id): the rule applies
    scope: list[int]  # per rule: its product scope (-1: an order rule)
    matrix: BoolArray  # [scope, line] the lines each product scope holds
    codes: tuple[CodeCheck, ...]
    _lines: dict[int, list[int]] = field(default_factory=dict)

    def rule_mask(self, gid: int) -> BoolArray:
        """[L] the matching lines of product rule `gid`."""
        out: BoolArray = self.matrix[self.scope[gid]]
        return out

    def rule_lines(self, gid: int) -> list[int]:
        """The matching lines of product rule `gid`, ascending."""
        sid = self.scope[gid]
        hit = self._lines.get(sid)
        if hit is None:
            hit = np.flatnonzero(self.matrix[sid]).tolist()
            self._lines[sid] = hit
        return hit


def line_in_segment(seg: CProductSegment, order: OrderInput, i: int) -> bool:
    """Whether line `i` is in product segment `seg` (SPEC 2), criterion by criterion."""
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
        field_ok(line.fields.get(name), op, ref, values) for name, op, ref, values in seg.fields
    )


def order_in_segment(
    seg: COrderSegment,
    order: OrderInput,
    subtotal: int,
    items: int,
    segment_units: Callable[[str], int],
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
    return all(segment_units(seg_id) >= min_quantity for seg_id, min_quantity in seg.contains)


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
    return replace(member, segments=member.segments | static)


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
    """Eligibility of every promotion and the matching lines of every rule, as array operations
    over all promotions and rules at once."""
    local = at.astimezone(zone)
    codes = check_codes(program, order, at, usage)
    valid_pools = {c.pool for c in codes if c.pool and not c.reason}
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
        checked = ok & arrays.has_windows
    else:
        checked = ok & (arrays.has_windows | arrays.audience_named)
    if checked.any():
        # Time windows and audiences naming segments or tiers: one by one, the few that have them.
        segments: frozenset[str] = frozenset()
        tiers: frozenset[str] = frozenset()
        if member is not None:
            # A member state carries its segments: an inline context names them all, and the
            # member directory adds the static ones for an enrolled member.
            segments = member.segments
            tiers = resolve_tiers(program, member)
        ok = ok.copy()
        for index in np.flatnonzero(checked).tolist():
            p = program.promotions[index]
            if (p.windows and not _in_availability(p, local)) or (
                member is not None and not _audience_ok(p, member, segments, tiers)
            ):
                ok[index] = False
    lines = order.lines
    n_lines = len(lines)
    rules = program.rules
    n_rules = rules.promotion.size
    quantities = np.array([line.quantity for line in lines], dtype=np.int64)
    seg_index = program.segment_index
    held = segment_matrix(seg_index, [seg_index.line_bits(line) for line in lines])  # [S, L]
    if n_rules:
        hits = (rules.scopes @ held) > 0  # [scope, L]: in any of the scope's segments
        matrix = rules.scopes_all[:, None] | (hits != rules.scopes_not[:, None])
        scope_units = np.append(matrix.astype(np.int64) @ quantities, 0)  # [-1]: order rules
        units = scope_units[rules.scope]
        product_active = (units > 0) & (units >= rules.min_quantity)
        order_hit = np.zeros(n_rules, dtype=np.bool_)
        if rules.order_segments:
            seg_units = held.astype(np.int64) @ quantities  # [S]
            subtotal = sum(line.unit_price * line.quantity for line in lines)
            items = sum(line.quantity for line in lines)

            def segment_units(seg_id: str) -> int:
                return int(seg_units[seg_index.bit[seg_id]])

            matched = np.array(
                [
                    order_in_segment(
                        program.order_segments[seg_id], order, subtotal, items, segment_units
                    )
                    for seg_id in rules.order_segments
                ],
                dtype=np.float32,
            )
            order_hit = (rules.order_scope @ matched) > 0
        order_active = rules.scope_all | (order_hit != rules.scope_not)
        active = np.where(rules.product, product_active, order_active) & ok[rules.promotion]
        live = np.bincount(rules.promotion[active], minlength=ok.size) > 0
    else:
        matrix = np.zeros((0, n_lines), dtype=np.bool_)
        active = np.zeros(0, dtype=np.bool_)
        live = np.zeros(ok.size, dtype=np.bool_)
    return Selection(live.tolist(), active.tolist(), program.rule_scope, matrix, codes)
