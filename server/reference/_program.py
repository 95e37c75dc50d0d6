"""``prepare``: the program proto turned into plain, frozen Python data (no numpy, no engine)."""

from dataclasses import dataclass, field
from typing import Literal

from google.protobuf.timestamp_pb2 import Timestamp

from arbiter.v1 import program_pb2  # type: ignore[import-not-found, unused-ignore]

Level = Literal["product", "order"]
Category = Literal["disc", "pay", "accrue", "ship", "text"]
ScopeKind = Literal["all", "in", "not_in"]

# The Benefit oneof field names, and what each one does to a state.
BENEFIT_CATEGORY: dict[str, Category] = {
    "discount": "disc",
    "price_from_field": "disc",
    "round_price": "disc",
    "partner_discount": "disc",
    "text": "text",
    "shipping_discount": "ship",
    "pay_with_points": "pay",
    "accrue_points": "accrue",
    "accrue_per_spent": "accrue",
    "accrue_from_field": "accrue",
    "partner_points": "accrue",
}

MODE_SEQUENTIAL = program_pb2.ARBITRATION_MODE_SEQUENTIAL
MODE_INCOMPATIBLE = program_pb2.ARBITRATION_MODE_INCOMPATIBLE
MODE_SUMMATION = program_pb2.ARBITRATION_MODE_SUMMATION
MODE_MAX_BENEFIT = program_pb2.ARBITRATION_MODE_MAX_BENEFIT


def timestamp_ns(ts: Timestamp) -> int:
    """A google.protobuf.Timestamp as integer nanoseconds since the epoch."""
    return ts.seconds * 1_000_000_000 + ts.nanos


@dataclass(frozen=True, slots=True)
class PointTypeInfo:
    id: str
    qualification: bool
    active: bool
    deactivate_at_ns: int | None
    ratio_points: int
    ratio_money: int


@dataclass(frozen=True, slots=True)
class TierGroupInfo:
    id: str
    point_type: str
    tiers: tuple[tuple[str, int], ...]  # (tier id, min_balance), ascending min_balance


@dataclass(frozen=True, slots=True)
class FieldPredicateInfo:
    field: str
    op: int  # FieldOp, UNSPECIFIED already mapped to EQ
    value: int
    values: frozenset[int]


@dataclass(frozen=True, slots=True)
class ProductSegmentInfo:
    id: str
    skus: frozenset[str]
    categories: frozenset[str]
    brands: frozenset[str]
    partners: frozenset[str]
    min_unit_price: int
    max_unit_price: int
    fields: tuple[FieldPredicateInfo, ...]


@dataclass(frozen=True, slots=True)
class OrderSegmentInfo:
    id: str
    min_subtotal: int
    max_subtotal: int
    min_items: int
    channels: frozenset[str]
    regions: frozenset[str]
    contains: tuple[tuple[str, int], ...]  # (product segment, min units; 0 means 1)


@dataclass(frozen=True, slots=True)
class PoolInfo:
    id: str
    valid_from_ns: int | None
    valid_to_ns: int | None
    max_uses_per_member: int


@dataclass(frozen=True, slots=True)
class BenefitInfo:
    """One benefit, numbered in tree order (``index``)."""

    index: int
    promotion: int  # index into ReferenceProgram.promotions
    level: Level
    name: str  # the Benefit oneof field name
    category: Category
    value_kind: str  # the inner oneof chosen ("percent_bp", "amount", ...), "" when none
    value: int
    max_items: int = 0
    field: str = ""
    factor_bp: int = 0
    round_mode: int = program_pb2.ROUND_MODE_ROUND_INTEGER
    template: str = ""
    partners: tuple[str, ...] = ()
    point_type: str = ""
    points: int = 0
    per_amount: int = 0
    timing: program_pb2.Timing = program_pb2.TIMING_ON_CREATE


@dataclass(frozen=True, slots=True)
class ProductRuleInfo:
    scope: ScopeKind
    segments: tuple[str, ...]
    min_quantity: int
    benefits: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class OrderRuleInfo:
    scope: ScopeKind
    segments: tuple[str, ...]
    benefits: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PromotionInfo:
    index: int
    id: str
    name: str
    kind_label: str  # "DISCOUNT" | "POINTS"
    active: bool
    audience_kind: int  # AudienceKind, UNSPECIFIED mapped to ALL_MEMBERS
    audience_segments: tuple[str, ...]
    audience_tiers: frozenset[str]
    start_ns: int | None
    end_ns: int | None
    duration: tuple[int, int] | None  # (count, PeriodUnit); only with a start
    weekdays: frozenset[int]
    months: frozenset[int]
    time_windows: tuple[tuple[int, int], ...]  # minutes of the day, [start, end)
    pool: str
    channels: tuple[tuple[str, frozenset[str]], ...]
    sequential: bool
    product_rules: tuple[ProductRuleInfo, ...]
    order_rules: tuple[OrderRuleInfo, ...]

    @property
    def benefits(self) -> tuple[int, ...]:
        """Rule 13 order: product rules, then order rules, each in list order."""
        out: list[int] = []
        for product_rule in self.product_rules:
            out.extend(product_rule.benefits)
        for order_rule in self.order_rules:
            out.extend(order_rule.benefits)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class LimitsInfo:
    max_discount_bp: int = 0
    max_discount_amount: int = 0
    min_unit_price: int = 0
    min_unit_price_bp: int = 0

    @property
    def empty(self) -> bool:
        return not (
            self.max_discount_bp > 0
            or self.max_discount_amount > 0
            or self.min_unit_price > 0
            or self.min_unit_price_bp > 0
        )


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: str
    mode: int  # ArbitrationMode
    limits: LimitsInfo
    children: tuple["int | GroupInfo", ...]  # a promotion index or a nested group


@dataclass(frozen=True, slots=True)
class ReferenceProgram:
    """A valid program, preprocessed once into plain data."""

    id: str
    time_zone: str
    point_types: tuple[PointTypeInfo, ...]  # program order
    point_type_by_id: dict[str, PointTypeInfo]
    tier_groups: tuple[TierGroupInfo, ...]
    partners: dict[str, tuple[int, int]]  # id -> (discount_bp, points_bp)
    member_segments: dict[str, frozenset[str]]
    product_segments: dict[str, ProductSegmentInfo]
    order_segments: dict[str, OrderSegmentInfo]
    pools: dict[str, PoolInfo]
    codes: dict[str, tuple[str, int]]  # upper-case code -> (pool id, max_uses)
    promotions: tuple[PromotionInfo, ...]  # program order
    benefits: tuple[BenefitInfo, ...]  # tree order: benefits[i].index == i
    root: GroupInfo
    pool_promotions: dict[str, frozenset[int]] = field(default_factory=dict)


def _scope_kind(kind: int) -> ScopeKind:
    if kind == program_pb2.SCOPE_KIND_IN_SEGMENTS:
        return "in"
    if kind == program_pb2.SCOPE_KIND_NOT_IN_SEGMENTS:
        return "not_in"
    return "all"


def _parse_hhmm(text: str) -> int:
    hours, _, minutes = text.strip().partition(":")
    return int(hours) * 60 + int(minutes or "0")


def _limits(group: program_pb2.Group) -> LimitsInfo:
    if not group.HasField("limits"):
        return LimitsInfo()
    limits = group.limits
    return LimitsInfo(
        max_discount_bp=max(0, limits.max_discount_bp),
        max_discount_amount=max(0, limits.max_discount_amount),
        min_unit_price=max(0, limits.min_unit_price),
        min_unit_price_bp=max(0, limits.min_unit_price_bp),
    )


def _benefit(
    message: program_pb2.Benefit, index: int, promotion: int, level: Level
) -> BenefitInfo:
    name = message.WhichOneof("benefit") or ""
    category = BENEFIT_CATEGORY[name]
    if name == "discount":
        inner = message.discount
        value_kind = inner.WhichOneof("value") or ""
        return BenefitInfo(
            index, promotion, level, name, category, value_kind,
            getattr(inner, value_kind) if value_kind else 0, max_items=max(0, inner.max_items),
        )
    if name == "price_from_field":
        pff = message.price_from_field
        return BenefitInfo(
            index, promotion, level, name, category, "", 0,
            field=pff.field, factor_bp=pff.factor_bp,
        )
    if name == "round_price":
        mode = message.round_price.mode or program_pb2.ROUND_MODE_ROUND_INTEGER
        return BenefitInfo(index, promotion, level, name, category, "", 0, round_mode=mode)
    if name == "text":
        return BenefitInfo(
            index, promotion, level, name, category, "", 0, template=message.text.template
        )
    if name == "partner_discount":
        return BenefitInfo(
            index, promotion, level, name, category, "", 0,
            partners=tuple(message.partner_discount.partners),
        )
    if name == "shipping_discount":
        ship = message.shipping_discount
        value_kind = ship.WhichOneof("value") or ""
        return BenefitInfo(
            index, promotion, level, name, category, value_kind,
            getattr(ship, value_kind) if value_kind else 0,
        )
    if name == "pay_with_points":
        pay = message.pay_with_points
        value_kind = pay.WhichOneof("value") or ""
        return BenefitInfo(
            index, promotion, level, name, category, value_kind,
            getattr(pay, value_kind) if value_kind else 0,
            max_items=max(0, pay.max_items), point_type=pay.point_type,
        )
    if name == "accrue_points":
        acc = message.accrue_points
        value_kind = acc.WhichOneof("value") or ""
        return BenefitInfo(
            index, promotion, level, name, category, value_kind,
            getattr(acc, value_kind) if value_kind else 0,
            point_type=acc.point_type, timing=acc.timing or program_pb2.TIMING_ON_CREATE,
        )
    if name == "accrue_per_spent":
        aps = message.accrue_per_spent
        return BenefitInfo(
            index, promotion, level, name, category, "", 0,
            point_type=aps.point_type, points=aps.points, per_amount=aps.per_amount,
            timing=aps.timing or program_pb2.TIMING_ON_CREATE,
        )
    if name == "accrue_from_field":
        aff = message.accrue_from_field
        return BenefitInfo(
            index, promotion, level, name, category, "", 0,
            field=aff.field, point_type=aff.point_type,
            timing=aff.timing or program_pb2.TIMING_ON_CREATE,
        )
    assert name == "partner_points", name
    pp = message.partner_points
    return BenefitInfo(
        index, promotion, level, name, category, "", 0,
        partners=tuple(pp.partners), point_type=pp.point_type,
        timing=pp.timing or program_pb2.TIMING_ON_CREATE,
    )


def _tree_order(
    group: program_pb2.Group, promotion_index: dict[str, int], out: list[int]
) -> None:
    for child in group.children:
        which = child.WhichOneof("node")
        if which == "promotion":
            position = promotion_index.get(child.promotion)
            if position is not None and position not in out:
                out.append(position)
        elif which == "group":
            _tree_order(child.group, promotion_index, out)


def _group(
    group: program_pb2.Group, promotion_index: dict[str, int], seen: set[int]
) -> GroupInfo:
    children: list[int | GroupInfo] = []
    for child in group.children:
        which = child.WhichOneof("node")
        if which == "promotion":
            position = promotion_index.get(child.promotion)
            if position is not None and position not in seen:
                seen.add(position)
                children.append(position)
        elif which == "group":
            children.append(_group(child.group, promotion_index, seen))
    return GroupInfo(group.id, group.mode, _limits(group), tuple(children))


def prepare(program: program_pb2.Program) -> "ReferenceProgram":
    """Preprocess a valid program into plain data (dicts, tuples, frozen dataclasses)."""
    point_types = tuple(
        PointTypeInfo(
            id=pt.id,
            qualification=pt.kind == program_pb2.POINT_KIND_QUALIFICATION,
            active=pt.active,
            deactivate_at_ns=timestamp_ns(pt.deactivate_at) if pt.HasField("deactivate_at")
            else None,
            ratio_points=pt.ratio.points if pt.ratio.points > 0 else 1,
            ratio_money=pt.ratio.money if pt.ratio.money > 0 else 1,
        )
        for pt in program.point_types
    )
    tier_groups = tuple(
        TierGroupInfo(
            tg.id,
            tg.point_type,
            tuple(sorted(((t.id, t.min_balance) for t in tg.tiers), key=lambda t: t[1])),
        )
        for tg in program.tier_groups
    )
    product_segments = {
        ps.id: ProductSegmentInfo(
            ps.id,
            frozenset(ps.skus),
            frozenset(ps.categories),
            frozenset(ps.brands),
            frozenset(ps.partners),
            max(0, ps.min_unit_price),
            max(0, ps.max_unit_price),
            tuple(
                FieldPredicateInfo(
                    fp.field, fp.op or program_pb2.FIELD_OP_EQ, fp.value, frozenset(fp.values)
                )
                for fp in ps.fields
            ),
        )
        for ps in program.product_segments
    }
    order_segments = {
        os_.id: OrderSegmentInfo(
            os_.id,
            max(0, os_.min_subtotal),
            max(0, os_.max_subtotal),
            max(0, os_.min_items),
            frozenset(os_.channels),
            frozenset(os_.regions),
            tuple((c.product_segment, c.min_quantity) for c in os_.contains),
        )
        for os_ in program.order_segments
    }
    pools: dict[str, PoolInfo] = {}
    codes: dict[str, tuple[str, int]] = {}
    for pool in program.promo_code_pools:
        pools[pool.id] = PoolInfo(
            pool.id,
            timestamp_ns(pool.valid_from) if pool.HasField("valid_from") else None,
            timestamp_ns(pool.valid_to) if pool.HasField("valid_to") else None,
            pool.max_uses_per_member,
        )
        for code in pool.codes:
            codes.setdefault(code.code.upper(), (pool.id, code.max_uses))

    promotion_index: dict[str, int] = {}
    for position, promotion in enumerate(program.promotions):
        promotion_index.setdefault(promotion.id, position)

    # Tree order: the arbitration tree depth first, then unlisted promotions in program order.
    order: list[int] = []
    if program.HasField("arbitration"):
        _tree_order(program.arbitration, promotion_index, order)
    listed = set(order)
    unlisted = [p for p in range(len(program.promotions)) if p not in listed]
    order.extend(unlisted)

    benefits: list[BenefitInfo] = []
    promotions: dict[int, PromotionInfo] = {}
    for position in order:
        promotion = program.promotions[position]
        product_rules: list[ProductRuleInfo] = []
        for product_rule in promotion.product_rules:
            indices = []
            for message in product_rule.benefits:
                benefits.append(_benefit(message, len(benefits), position, "product"))
                indices.append(len(benefits) - 1)
            product_rules.append(
                ProductRuleInfo(
                    _scope_kind(product_rule.scope.kind),
                    tuple(product_rule.scope.segments),
                    max(0, product_rule.min_quantity),
                    tuple(indices),
                )
            )
        order_rules: list[OrderRuleInfo] = []
        for order_rule in promotion.order_rules:
            indices = []
            for message in order_rule.benefits:
                benefits.append(_benefit(message, len(benefits), position, "order"))
                indices.append(len(benefits) - 1)
            order_rules.append(
                OrderRuleInfo(
                    _scope_kind(order_rule.scope.kind),
                    tuple(order_rule.scope.segments),
                    tuple(indices),
                )
            )
        period = promotion.period
        duration: tuple[int, int] | None = None
        if period.HasField("duration") and period.duration.count > 0:
            duration = (
                period.duration.count, period.duration.unit or program_pb2.PERIOD_UNIT_DAY
            )
        promotions[position] = PromotionInfo(
            index=position,
            id=promotion.id,
            name=promotion.name,
            kind_label="POINTS" if promotion.kind == program_pb2.PROMOTION_KIND_POINTS
            else "DISCOUNT",
            active=promotion.status == program_pb2.PROMOTION_STATUS_ACTIVE,
            audience_kind=promotion.audience.kind or program_pb2.AUDIENCE_KIND_ALL_MEMBERS,
            audience_segments=tuple(promotion.audience.segments),
            audience_tiers=frozenset(promotion.audience.tiers),
            start_ns=timestamp_ns(period.start) if period.HasField("start") else None,
            end_ns=timestamp_ns(period.end) if period.HasField("end") else None,
            duration=duration,
            weekdays=frozenset(int(w) for w in promotion.availability.weekdays),
            months=frozenset(promotion.availability.months),
            time_windows=tuple(
                (_parse_hhmm(w.start), _parse_hhmm(w.end))
                for w in promotion.availability.time_windows
            ),
            pool=promotion.promo_code_pool,
            channels=tuple(
                (c.channel, frozenset(c.points_of_contact)) for c in promotion.channels
            ),
            sequential=promotion.benefit_arbitration
            == program_pb2.BENEFIT_ARBITRATION_SEQUENTIAL,
            product_rules=tuple(product_rules),
            order_rules=tuple(order_rules),
        )

    seen: set[int] = set()
    if program.HasField("arbitration"):
        root = _group(program.arbitration, promotion_index, seen)
    else:
        root = GroupInfo("", MODE_SEQUENTIAL, LimitsInfo(), ())
    if unlisted:
        root = GroupInfo(root.id, root.mode, root.limits, root.children + tuple(unlisted))

    pool_promotions: dict[str, set[int]] = {}
    for position, info in promotions.items():
        if info.pool:
            pool_promotions.setdefault(info.pool, set()).add(position)

    return ReferenceProgram(
        id=program.id,
        time_zone=program.time_zone,
        point_types=point_types,
        point_type_by_id={pt.id: pt for pt in point_types},
        tier_groups=tier_groups,
        partners={p.id: (p.discount_bp, p.points_bp) for p in program.partners},
        member_segments={s.id: frozenset(s.members) for s in program.member_segments},
        product_segments=product_segments,
        order_segments=order_segments,
        pools=pools,
        codes=codes,
        promotions=tuple(promotions[p] for p in range(len(program.promotions))),
        benefits=tuple(benefits),
        root=root,
        pool_promotions={k: frozenset(v) for k, v in pool_promotions.items()},
    )
