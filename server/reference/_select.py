"""Who buys, when, and which promotions and rules apply (docs/rules.md, rules 19-21).

Everything here is evaluated once per calculation on the order as received (base prices).
"""

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from arbiter.v1 import checkout_pb2, program_pb2  # type: ignore[import-not-found, unused-ignore]

from ._program import (
    OrderSegmentInfo,
    PoolInfo,
    ProductSegmentInfo,
    PromotionInfo,
    ReferenceProgram,
    ScopeKind,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class LineView:
    id: str
    sku: str
    quantity: int
    unit_price: int
    base_price: int
    categories: frozenset[str]
    brand: str
    partner: str
    fields: dict[str, int]


@dataclass(frozen=True, slots=True)
class OrderView:
    id: str
    channel: str
    point_of_contact: str
    region: str
    shipping_cost: int
    lines: tuple[LineView, ...]

    @property
    def subtotal(self) -> int:
        return sum(line.base_price for line in self.lines)

    @property
    def items(self) -> int:
        return sum(line.quantity for line in self.lines)


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    balances: dict[str, int]  # point type -> available, a context's entries of one type summed
    tiers: frozenset[str]  # current tier id in every tier group
    segments: frozenset[str]


def order_view(order: checkout_pb2.Order) -> OrderView:
    lines = tuple(
        LineView(
            id=line.id,
            sku=line.sku,
            quantity=line.quantity,
            unit_price=line.unit_price,
            base_price=line.unit_price * line.quantity,
            categories=frozenset(line.categories),
            brand=line.brand,
            partner=line.partner,
            fields=dict(line.fields),
        )
        for line in order.lines
    )
    return OrderView(
        order.id, order.channel, order.point_of_contact, order.region, order.shipping_cost, lines
    )


def resolve_member(
    prog: ReferenceProgram, request: checkout_pb2.CalculateOrderRequest
) -> Member | None:
    """The buyer: a member (context or id) or None for an anonymous buyer (rule 3, rule 20)."""
    has_context = request.HasField("member_context")
    if not has_context and not request.member_id:
        return None
    context = request.member_context
    balances: dict[str, int] = {}
    for balance in context.balances:
        balances[balance.point_type] = balances.get(balance.point_type, 0) + balance.available
    if has_context:
        segments = frozenset(context.segments)
    else:
        segments = frozenset(
            segment_id
            for segment_id, members in prog.member_segments.items()
            if request.member_id in members
        )
    given: dict[str, str] = {}
    for tier_ref in context.tiers:
        given.setdefault(tier_ref.tier_group, tier_ref.tier)
    tiers: set[str] = set()
    for group in prog.tier_groups:
        if group.id in given:
            tiers.add(given[group.id])
            continue
        if not group.tiers:
            continue
        held = balances.get(group.point_type)
        current = group.tiers[0][0]
        if held is not None:
            for tier_id, min_balance in group.tiers:
                if min_balance <= held:
                    current = tier_id
        tiers.add(current)
    return Member(request.member_id, balances, frozenset(tiers), segments)


# --- time -------------------------------------------------------------------------------------


def zone(prog: ReferenceProgram, order: checkout_pb2.Order) -> ZoneInfo:
    for name in (order.time_zone, prog.time_zone):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def datetime_to_ns(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND * 1000


def ns_to_local(ns: int, tz: ZoneInfo) -> datetime:
    return (_EPOCH + timedelta(microseconds=ns // 1000)).astimezone(tz)


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_period(start_ns: int, count: int, unit: int, tz: ZoneInfo) -> int:
    """``start + count units`` on the local wall clock of ``tz`` (calendar days and months)."""
    wall = ns_to_local(start_ns, tz).replace(tzinfo=None)
    if unit == program_pb2.PERIOD_UNIT_WEEK:
        wall = wall + timedelta(days=7 * count)
    elif unit == program_pb2.PERIOD_UNIT_MONTH:
        wall = _add_months(wall, count)
    elif unit == program_pb2.PERIOD_UNIT_YEAR:
        wall = _add_months(wall, 12 * count)
    else:
        wall = wall + timedelta(days=count)
    return datetime_to_ns(wall.replace(tzinfo=tz)) + start_ns % 1000


# --- selection (docs/rules.md, The calculation, step 3) -----------------------------------------


def in_period(promotion: PromotionInfo, now_ns: int, tz: ZoneInfo) -> bool:
    if promotion.start_ns is not None and now_ns < promotion.start_ns:
        return False
    if promotion.end_ns is not None:
        return now_ns < promotion.end_ns
    if promotion.duration is not None and promotion.start_ns is not None:
        count, unit = promotion.duration
        return now_ns < add_period(promotion.start_ns, count, unit, tz)
    return True


def _in_window(minute: int, start: int, end: int) -> bool:
    if start == end:
        return True
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def available(promotion: PromotionInfo, local: datetime) -> bool:
    if promotion.weekdays and local.isoweekday() not in promotion.weekdays:
        return False
    if promotion.months and local.month not in promotion.months:
        return False
    if promotion.time_windows:
        minute = local.hour * 60 + local.minute
        return any(_in_window(minute, s, e) for s, e in promotion.time_windows)
    return True


def audience_ok(promotion: PromotionInfo, member: Member | None) -> bool:
    kind = promotion.audience_kind
    if kind == program_pb2.AUDIENCE_KIND_EVERYONE:
        return True
    if member is None:
        return False
    if kind == program_pb2.AUDIENCE_KIND_IN_SEGMENTS:
        return any(s in member.segments for s in promotion.audience_segments)
    if kind == program_pb2.AUDIENCE_KIND_NOT_IN_SEGMENTS:
        return not any(s in member.segments for s in promotion.audience_segments)
    if kind == program_pb2.AUDIENCE_KIND_TIERS:
        return any(t in member.tiers for t in promotion.audience_tiers)
    return True  # ALL_MEMBERS


def channels_ok(promotion: PromotionInfo, order: OrderView) -> bool:
    if not promotion.channels:
        return True
    return any(
        channel == order.channel and (not points or order.point_of_contact in points)
        for channel, points in promotion.channels
    )


def code_problem(
    pool: PoolInfo,
    code: str,
    max_uses: int,
    now_ns: int,
    code_uses: Mapping[str, int] | None,
    member_pool_uses: Mapping[str, int] | None,
) -> checkout_pb2.PromoCodeReason | None:
    """The PromoCodeReason making a known code INVALID, or None when the code is valid."""
    if pool.valid_from_ns is not None and now_ns < pool.valid_from_ns:
        return checkout_pb2.PROMO_CODE_REASON_NOT_YET_VALID
    if pool.valid_to_ns is not None and now_ns >= pool.valid_to_ns:
        return checkout_pb2.PROMO_CODE_REASON_EXPIRED
    if code_uses is not None and max_uses > 0 and code_uses.get(code, 0) >= max_uses:
        return checkout_pb2.PROMO_CODE_REASON_EXHAUSTED
    if (
        member_pool_uses is not None
        and pool.max_uses_per_member > 0
        and member_pool_uses.get(pool.id, 0) >= pool.max_uses_per_member
    ):
        return checkout_pb2.PROMO_CODE_REASON_EXHAUSTED
    return None


# --- segments and scopes (docs/rules.md, rule 21) -----------------------------------------------


def _field_matches(op: int, actual: int, value: int, values: frozenset[int]) -> bool:
    if op == program_pb2.FIELD_OP_NE:
        return actual != value
    if op == program_pb2.FIELD_OP_LT:
        return actual < value
    if op == program_pb2.FIELD_OP_LE:
        return actual <= value
    if op == program_pb2.FIELD_OP_GT:
        return actual > value
    if op == program_pb2.FIELD_OP_GE:
        return actual >= value
    if op == program_pb2.FIELD_OP_IN:
        return actual in values
    return actual == value  # EQ


def product_segment_matches(segment: ProductSegmentInfo, line: LineView) -> bool:
    if segment.skus and line.sku not in segment.skus:
        return False
    if segment.categories and not (segment.categories & line.categories):
        return False
    if segment.brands and line.brand not in segment.brands:
        return False
    if segment.partners and line.partner not in segment.partners:
        return False
    if segment.min_unit_price > 0 and line.unit_price < segment.min_unit_price:
        return False
    if segment.max_unit_price > 0 and line.unit_price > segment.max_unit_price:
        return False
    if segment.fields:
        # "within a list, any": one matching predicate of the list is enough (decision 5).
        return any(
            p.field in line.fields and _field_matches(p.op, line.fields[p.field], p.value, p.values)
            for p in segment.fields
        )
    return True


def line_in_segment(prog: ReferenceProgram, segment_id: str, line: LineView) -> bool:
    segment = prog.product_segments.get(segment_id)
    return segment is not None and product_segment_matches(segment, line)


def order_segment_matches(
    prog: ReferenceProgram, segment: OrderSegmentInfo, order: OrderView
) -> bool:
    subtotal = order.subtotal
    if segment.min_subtotal > 0 and subtotal < segment.min_subtotal:
        return False
    if segment.max_subtotal > 0 and subtotal > segment.max_subtotal:
        return False
    if segment.min_items > 0 and order.items < segment.min_items:
        return False
    if segment.channels and order.channel not in segment.channels:
        return False
    if segment.regions and order.region not in segment.regions:
        return False
    for product_segment, min_quantity in segment.contains:
        units = sum(
            line.quantity for line in order.lines if line_in_segment(prog, product_segment, line)
        )
        if units < max(1, min_quantity):
            return False
    return True


def product_scope_lines(
    prog: ReferenceProgram, scope: ScopeKind, segments: tuple[str, ...], order: OrderView
) -> tuple[int, ...]:
    matching: list[int] = []
    for position, line in enumerate(order.lines):
        inside = any(line_in_segment(prog, s, line) for s in segments)
        if scope == "all" or (scope == "in" and inside) or (scope == "not_in" and not inside):
            matching.append(position)
    return tuple(matching)


def order_scope_matches(
    prog: ReferenceProgram, scope: ScopeKind, segments: tuple[str, ...], order: OrderView
) -> bool:
    if scope == "all":
        return True
    inside = any(
        s in prog.order_segments and order_segment_matches(prog, prog.order_segments[s], order)
        for s in segments
    )
    return inside if scope == "in" else not inside
