"""Selection: which promotions are candidates for an order, and which lines each rule matches.

Everything here is evaluated once per calculation on the order as received (base prices),
never on an intermediate state (docs/rules.md, The program model; The calculation, step 3).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from arbiter.server.engine.compile import (
    CompiledProgram,
    COrderSegment,
    CProductSegment,
    CPromotion,
    SelectionArrays,
    to_us,
)
from arbiter.server.engine.segments import SCOPE_ALL, SCOPE_NOT, RuleTable, field_ok
from arbiter.server.engine.types import CodeUsage, LineInput, MemberState, OrderInput
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


class CodeCheck(NamedTuple):
    """A distinct code of the order: its pool when valid, else why it is invalid."""

    code: str  # as first written on the order
    pool: str  # "" when unknown
    reason: str  # "" when valid, else UNKNOWN_CODE | EXPIRED | NOT_YET_VALID | EXHAUSTED


class Selection:
    """Which promotions and rules apply to an order, and the lines of every rule.

    A product scope's lines are an integer bit set over the order's lines (bit i: line i), the
    union of its segments' lines, computed when first asked for and shared by every rule of
    that scope."""

    __slots__ = (
        "_full",
        "_kinds",
        "_lines",
        "_masks",
        "_n_lines",
        "_rows",
        "_scope_segments",
        "_seg_lines",
        "codes",
        "live",
        "rule_active",
        "scope",
    )

    def __init__(
        self,
        live: list[bool],
        rule_active: list[bool],
        scope: list[int],
        codes: tuple[CodeCheck, ...],
        n_lines: int,
        seg_lines: list[int],
        table: RuleTable,
    ) -> None:
        self.live = live  # per promotion: eligible, and at least one of its rules applies
        self.rule_active = rule_active  # per rule (global rule id): the rule applies
        self.scope = scope  # per rule: its product scope (-1: an order rule)
        self.codes = codes
        self._n_lines = n_lines
        self._full = (1 << n_lines) - 1
        self._seg_lines = seg_lines  # per product segment: its lines, as a bit set
        self._kinds = table.scope_kind
        self._scope_segments = table.scope_segments
        self._masks = [-1] * len(table.scope_kind)  # per scope: its lines (-1: not yet)
        self._lines: dict[int, list[int]] = {}
        self._rows: dict[int, BoolArray] = {}

    def scope_mask(self, sid: int) -> int:
        """The lines product scope `sid` holds, as a bit set."""
        mask = self._masks[sid]
        if mask < 0:
            kind = self._kinds[sid]
            if kind == SCOPE_ALL:
                mask = self._full
            else:
                mask = 0
                seg_lines = self._seg_lines
                for bit in self._scope_segments[sid]:
                    mask |= seg_lines[bit]
                if kind == SCOPE_NOT:
                    mask = self._full & ~mask
            self._masks[sid] = mask
        return mask

    def rule_lines(self, gid: int) -> list[int]:
        """The matching lines of product rule `gid`, ascending."""
        sid = self.scope[gid]
        hit = self._lines.get(sid)
        if hit is None:
            hit = _bits(self.scope_mask(sid))
            self._lines[sid] = hit
        return hit

    def rule_mask(self, gid: int) -> BoolArray:
        """[L] the matching lines of product rule `gid` (for the batched evaluation)."""
        sid = self.scope[gid]
        row = self._rows.get(sid)
        if row is None:
            row = np.zeros(self._n_lines, dtype=np.bool_)
            row[self.rule_lines(gid)] = True
            row.setflags(write=False)
            self._rows[sid] = row
        return row


def _bits(mask: int) -> list[int]:
    """The positions of the set bits of `mask`, ascending."""
    out: list[int] = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


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


# Entries of a program's eligibility cache (CompiledProgram.gates) before it is emptied.
GATE_CACHE: Final = 1024
_NO_BOUND_LOW: Final = -(1 << 63)
_NO_BOUND_HIGH: Final = 1 << 63


def _eligible(
    arrays: SelectionArrays,
    at_us: int,
    local: datetime,
    channel: str,
    point: str,
    valid_pools: frozenset[str],
) -> BoolArray:
    """Status, period, weekday, month, channel and pools of every promotion at once."""
    ok: BoolArray = (
        arrays.active
        & (arrays.start_us <= at_us)
        & (at_us < arrays.end_us)
        & ((arrays.weekday_bits == 0) | ((arrays.weekday_bits >> local.isoweekday()) & 1 == 1))
        & ((arrays.month_bits == 0) | ((arrays.month_bits >> local.month) & 1 == 1))
    )
    channel_ok = arrays.any_channel
    by_channel = arrays.channel.get(channel)
    if by_channel is not None:
        channel_ok = channel_ok | by_channel
    by_point = arrays.channel_point.get((channel, point))
    if by_point is not None:
        channel_ok = channel_ok | by_point
    ok &= channel_ok
    if arrays.pool_ids:
        pool_ok = np.array([pid in valid_pools for pid in arrays.pool_ids] + [True])
        ok &= pool_ok[arrays.pool]  # index -1: no pool, always fine
    else:
        ok &= arrays.pool < 0
    return ok


def _gate(
    program: CompiledProgram,
    at_us: int,
    local: datetime,
    channel: str,
    point: str,
    valid_pools: frozenset[str],
) -> tuple[int, ...]:
    """The promotions passing status, period, weekday, month, channel and pools (ascending).

    The answer only changes when the instant crosses a promotion's start or end, so it is kept
    per (weekday, month, channel, point of contact, valid pools) with the two bounds around
    the instant it was computed for, and reused while an order's instant lies between them."""
    key = (local.isoweekday(), local.month, channel, point, valid_pools)
    gates = program.gates
    hit = gates.get(key)
    if hit is not None and hit[0] <= at_us < hit[1]:
        return hit[2]
    bounds = program.time_bounds
    j = bisect_right(bounds, at_us)
    low = bounds[j - 1] if j else _NO_BOUND_LOW
    high = bounds[j] if j < len(bounds) else _NO_BOUND_HIGH
    ok = _eligible(program.selection, at_us, local, channel, point, valid_pools)
    passing = tuple(np.flatnonzero(ok).tolist())
    if len(gates) >= GATE_CACHE:
        gates.clear()
    gates[key] = (low, high, passing)
    return passing


def select(
    program: CompiledProgram,
    order: OrderInput,
    member: MemberState | None,
    at: datetime,
    zone: ZoneInfo,
    usage: CodeUsage | None,
) -> Selection:
    """Eligibility of every promotion and the matching lines of every rule.

    Status, period, weekday, month, channel and pools are array operations over all promotions
    at once, kept between orders (`_gate`); time windows and audiences are checked one by one
    on the promotions that pass; the rules of those are then walked with lines as bit sets."""
    codes = check_codes(program, order, at, usage)
    valid_pools = frozenset(c.pool for c in codes if c.pool and not c.reason)
    local = at.astimezone(zone)
    passing = _gate(program, to_us(at), local, order.channel, order.point_of_contact, valid_pools)
    lines = order.lines
    n_lines = len(lines)
    seg_index = program.segment_index
    seg_lines = [0] * seg_index.count
    for i, line in enumerate(lines):
        bits = seg_index.line_bits(line)
        line_bit = 1 << i
        while bits:
            low = bits & -bits
            seg_lines[low.bit_length() - 1] |= line_bit
            bits ^= low
    table = program.rules
    rule_active = [False] * table.count
    live = [False] * len(program.promotions)
    sel = Selection(live, rule_active, program.rule_scope, codes, n_lines, seg_lines, table)
    if not passing:
        return sel
    masks = sel._masks
    promotions = program.promotions
    product_rules = table.product
    order_rules = table.order
    everyone: int = pb.AUDIENCE_KIND_EVERYONE
    all_members: int = pb.AUDIENCE_KIND_ALL_MEMBERS
    tiers: frozenset[str] | None = None
    order_hits: dict[str, bool] = {}
    for index in passing:
        p = promotions[index]
        if p.windows and not _in_availability(p, local):
            continue
        if p.audience != everyone:
            if member is None:
                continue
            if p.audience != all_members:
                if tiers is None:
                    # A member state carries its segments: an inline context names them all,
                    # and the member directory adds the static ones for an enrolled member.
                    tiers = resolve_tiers(program, member)
                if not _audience_ok(p, member, member.segments, tiers):
                    continue
        applies = False
        for gid, sid, min_quantity in product_rules[index]:
            mask = masks[sid]
            if mask < 0:
                mask = sel.scope_mask(sid)
            # Quantities are positive (checked at the boundary): a scope holding a line holds
            # a unit.
            if mask and (min_quantity <= 1 or _units(lines, mask) >= min_quantity):
                rule_active[gid] = True
                applies = True
        for gid, scope_all, scope_not, segments in order_rules[index]:
            if (
                scope_all
                or _order_hit(program, order, seg_lines, segments, order_hits) != scope_not
            ):
                rule_active[gid] = True
                applies = True
        live[index] = applies
    return sel


def _units(lines: Sequence[LineInput], mask: int) -> int:
    """Units of the lines in `mask`."""
    return sum(lines[i].quantity for i in _bits(mask))


def _order_hit(
    program: CompiledProgram,
    order: OrderInput,
    seg_lines: list[int],
    segments: tuple[str, ...],
    known: dict[str, bool],
) -> bool:
    """Whether the order is in any of these order segments (each evaluated once per order)."""
    lines = order.lines
    bit = program.segment_index.bit

    def segment_units(product_segment: str) -> int:
        return _units(lines, seg_lines[bit[product_segment]])

    for seg_id in segments:
        hit = known.get(seg_id)
        if hit is None:
            subtotal = items = 0
            for line in lines:
                subtotal += line.unit_price * line.quantity
                items += line.quantity
            hit = order_in_segment(
                program.order_segments[seg_id],
                order,
                subtotal,
                items,
                segment_units,
            )
            known[seg_id] = hit
        if hit:
            return True
    return False
