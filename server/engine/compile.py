"""Program -> CompiledProgram: everything order-independent, computed once at apply time.

The tree becomes nodes with contiguous benefit ranges in tree order (promotions in tree order;
within one, product rules then order rules, each rule's benefits in list order: rule 13,
docs/rules.md), so that a node's effect is a slice [lo, hi) of the benefit axis.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import combinations
from typing import Any, Final
from zoneinfo import ZoneInfo

from arbiter.server.engine._select import SelectTables, build_tables
from arbiter.server.engine.errors import ConfigError, ConfigIssue
from arbiter.server.engine.render import template_parts
from arbiter.server.engine.segments import (
    RuleTable,
    SegmentIndex,
    build_rule_table,
    build_segment_index,
)
from arbiter.v1 import program_pb2 as pb

__all__ = [
    "MAX_BENEFIT_CHILDREN",
    "ROUND_STEP",
    "CBenefit",
    "CNode",
    "CPointType",
    "CPromotion",
    "CRule",
    "CompiledProgram",
    "compile_program",
]

# docs/rules.md: a MAX_BENEFIT group values every subset of its children; 2^16 is the ceiling.
MAX_BENEFIT_CHILDREN: Final = 16

# round_price (rule 14): per mode, the step in minor units and whether it floors (else nearest).
ROUND_STEP: dict[int, tuple[int, bool]] = {
    pb.ROUND_MODE_ROUND_INTEGER: (100, False),
    pb.ROUND_MODE_ROUND_HALF: (50, False),
    pb.ROUND_MODE_FLOOR_INTEGER: (100, True),
    pb.ROUND_MODE_FLOOR_TENS: (1000, True),
    pb.ROUND_MODE_ROUND_TENS: (1000, False),
}

# Group modes and benefit levels as small ints.
SEQUENTIAL: Final = 1
INCOMPATIBLE: Final = 2
SUMMATION: Final = 3
MAX_BENEFIT: Final = 4
PRODUCT: Final = 0
ORDER: Final = 1
ON_CREATE: Final = 0
ON_DELIVERY: Final = 1

ACCRUAL_KINDS: Final = frozenset(
    {"accrue_points", "accrue_per_spent", "accrue_from_field", "partner_points"}
)


@dataclass(frozen=True, slots=True)
class CPointType:
    id: str
    index: int
    kind: int  # pb.PointKind
    active: bool
    ratio_points: int
    ratio_money: int
    deactivate_at: datetime | None


@dataclass(frozen=True, slots=True)
class CTierGroup:
    id: str
    point_type: str
    tiers: tuple[tuple[str, int], ...]  # (tier id, min_balance) ascending


@dataclass(frozen=True, slots=True)
class CProductSegment:
    id: str
    skus: frozenset[str]
    categories: frozenset[str]
    brands: frozenset[str]
    partners: frozenset[str]
    min_unit_price: int
    max_unit_price: int
    fields: tuple[tuple[str, int, int, frozenset[int]], ...]  # (field, op, value, values)


@dataclass(frozen=True, slots=True)
class COrderSegment:
    id: str
    min_subtotal: int
    max_subtotal: int
    min_items: int
    channels: frozenset[str]
    regions: frozenset[str]
    contains: tuple[tuple[str, int], ...]  # (product segment id, min quantity >= 1)


@dataclass(frozen=True, slots=True)
class CPool:
    id: str
    codes: dict[str, int]  # upper-case code -> max_uses (0: unlimited)
    max_uses_per_member: int
    valid_from: datetime | None
    valid_to: datetime | None


@dataclass(frozen=True, slots=True)
class CBenefit:
    """One benefit of one rule of one promotion; `index` is its place on the benefit axis."""

    index: int
    promotion: int
    level: int  # PRODUCT | ORDER
    rule: int  # index into the promotion's rules (product rules first)
    rule_gid: int  # the rule on the program's rule axis (RuleTable)
    kind: str  # the Benefit oneof field name
    value_kind: str = ""  # the inner oneof: percent_bp | amount | fixed_price | points
    value: int = 0
    max_items: int = 0
    point_type: int = -1
    timing: int = ON_CREATE
    field: str = ""
    factor_bp: int = 0
    per_amount: int = 0
    round_mode: int = 0
    template_parts: tuple[str, ...] = ()  # render.template_parts of the text's template
    partners: frozenset[str] = frozenset()

    @property
    def is_accrual(self) -> bool:
        return self.kind in ACCRUAL_KINDS


@dataclass(frozen=True, slots=True)
class CRule:
    level: int
    scope_kind: int  # pb.ScopeKind (ALL for unspecified)
    segments: tuple[str, ...]
    min_quantity: int
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class CPromotion:
    index: int
    id: str
    name: str
    kind: str  # "DISCOUNT" | "POINTS"
    active: bool
    start: datetime | None
    end: datetime | None
    weekdays: frozenset[int]  # ISO 1..7
    months: frozenset[int]
    windows: tuple[tuple[int, int], ...]  # minutes of the day [start, end)
    audience: int  # pb.AudienceKind (ALL_MEMBERS for unspecified)
    audience_segments: frozenset[str]
    audience_tiers: frozenset[str]
    pool: str
    channels: dict[str, frozenset[str]]  # channel -> points of contact (empty: all)
    sequential: bool
    rules: tuple[CRule, ...]
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class CNode:
    """A node of the arbitration tree: a promotion (`promotion` >= 0) or a group."""

    lo: int
    hi: int
    promotion: int = -1
    group_id: str = ""
    mode: int = 0
    max_discount_bp: int = 0
    max_discount_amount: int = 0
    min_unit_price: int = 0
    min_unit_price_bp: int = 0
    children: tuple[CNode, ...] = ()
    has_limits: bool = field(init=False, default=False)  # any of the four limits set

    def __post_init__(self) -> None:
        limited = bool(
            self.max_discount_bp
            or self.max_discount_amount
            or self.min_unit_price
            or self.min_unit_price_bp
        )
        object.__setattr__(self, "has_limits", limited)


@dataclass(frozen=True, slots=True)
class CandidatePlan:
    """The MAX_BENEFIT candidates of an n-child group in tie-break order (docs/rules.md)."""

    masks: tuple[int, ...]  # subset bitmask per candidate
    sequential: tuple[bool, ...]  # False: summation candidate


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_us(dt: datetime) -> int:
    """Microseconds since the epoch of an aware instant (exact: a timedelta's floor division)."""
    return (dt - _EPOCH) // _MICROSECOND


def _time_bounds(promotions: list[CPromotion]) -> tuple[int, ...]:
    bounds: set[int] = set()
    for p in promotions:
        if p.start is not None:
            bounds.add(to_us(p.start))
        if p.end is not None:
            bounds.add(to_us(p.end))
    return tuple(sorted(bounds))


@dataclass(frozen=True, slots=True)
class CompiledProgram:
    """An immutable compiled program: lookups, arrays and the flattened tree."""

    id: str
    time_zone: str
    zone: ZoneInfo
    point_type_ids: frozenset[str]
    point_types: tuple[CPointType, ...]
    point_type_index: dict[str, int]
    tier_groups: tuple[CTierGroup, ...]
    tier_group_of_tier: dict[str, str]
    partner_discount_bp: dict[str, int]
    partner_points_bp: dict[str, int]
    member_segments: dict[str, frozenset[str]]
    segments_of_member: dict[str, frozenset[str]]  # member id -> static segments listing it
    product_segments: dict[str, CProductSegment]
    order_segments: dict[str, COrderSegment]
    pools: dict[str, CPool]
    code_pool: dict[str, str]  # upper-case code -> pool id
    promotions: tuple[CPromotion, ...]
    benefits: tuple[CBenefit, ...]
    root: CNode
    benefit_levels: list[int]  # per benefit: PRODUCT or ORDER (read per entry on one state)
    pay_types: list[int]  # per benefit: the point type a points payment spends (else 0)
    segment_index: SegmentIndex
    rules: RuleTable
    rule_scope: list[int]  # rules.scope as a list (read per benefit evaluated)
    # Every promotion's start and end, ascending (microseconds since the epoch): between two
    # of them no promotion enters or leaves its period.
    time_bounds: tuple[int, ...]
    # What selection reads, as C arrays (_select.pyx): promotions, rules, scopes, segments.
    select_tables: SelectTables
    # Promotions passing status, period, weekday, month, channel and pools (int32 indices as
    # bytes), by (weekday, month, channel, point of contact, valid pools), with the period
    # bounds they hold between (_select.pyx); bounded, filled as orders come.
    gates: dict[tuple[object, ...], tuple[int, int, bytes]] = field(
        default_factory=dict, compare=False, repr=False
    )
    source: pb.Program = field(default_factory=pb.Program)
    # The typed core's tables of this program (engine/core.pyx), built on first use.
    native: dict[str, object] = field(default_factory=dict, compare=False, repr=False)


def _ts(msg: Any, has: bool) -> datetime | None:
    if not has:
        return None
    dt: datetime = msg.ToDatetime(tzinfo=UTC)
    return dt


def add_period(start: datetime, count: int, unit: int, zone: ZoneInfo) -> datetime:
    """`start` plus `count` units; months and years are calendar ones in `zone` (docs/rules.md)."""
    if unit in (pb.PERIOD_UNIT_DAY, pb.PERIOD_UNIT_UNSPECIFIED):
        return start + timedelta(days=count)
    if unit == pb.PERIOD_UNIT_WEEK:
        return start + timedelta(weeks=count)
    months = count * (12 if unit == pb.PERIOD_UNIT_YEAR else 1)
    local = start.astimezone(zone)
    total = local.month - 1 + months
    year, month = local.year + total // 12, total % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    moved = local.replace(year=year, month=month, day=day, tzinfo=None)
    return moved.replace(tzinfo=zone).astimezone(UTC)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@lru_cache(maxsize=MAX_BENEFIT_CHILDREN + 1)
def candidate_plan(n: int) -> CandidatePlan:
    """Every non-empty subset of n children, summation and sequential, in tie-break order."""
    order: list[tuple[int, bool]] = []
    for size in range(1, n + 1):
        for combo in combinations(range(n), size):  # lexicographic on sorted positions
            mask = sum(1 << c for c in combo)
            order.append((mask, False))
            if size > 1:
                order.append((mask, True))
    return CandidatePlan(masks=tuple(m for m, _ in order), sequential=tuple(s for _, s in order))


class _Builder:
    def __init__(self, program: pb.Program, zone: ZoneInfo, type_index: dict[str, int]) -> None:
        self.program = program
        self.zone = zone
        self.type_index = type_index
        self.promotions: list[CPromotion] = []
        self.benefits: list[CBenefit] = []
        self.by_id = {p.id: p for p in program.promotions}
        self.rule_count = 0  # rules of the promotions built so far (global rule ids)

    def node(self, group: pb.Group) -> CNode:
        lo = len(self.benefits)
        children: list[CNode] = []
        for child in group.children:
            if child.WhichOneof("node") == "group":
                children.append(self.node(child.group))
            else:
                children.append(self.promotion_node(self.by_id[child.promotion]))
        return self._group(group, lo, children)

    def _group(self, group: pb.Group, lo: int, children: list[CNode]) -> CNode:
        if group.mode == pb.ARBITRATION_MODE_MAX_BENEFIT:
            if len(children) > MAX_BENEFIT_CHILDREN:
                raise ConfigError(
                    [
                        ConfigIssue(
                            "group",
                            group.id,
                            "children",
                            f"a MAX_BENEFIT group has at most {MAX_BENEFIT_CHILDREN} children,"
                            f" this one has {len(children)}",
                        )
                    ]
                )
            if children:
                candidate_plan(len(children))  # built once per width, at compile time
        lim = group.limits
        return CNode(
            lo=lo,
            hi=len(self.benefits),
            group_id=group.id,
            mode=int(group.mode),
            max_discount_bp=lim.max_discount_bp,
            max_discount_amount=lim.max_discount_amount,
            min_unit_price=lim.min_unit_price,
            min_unit_price_bp=lim.min_unit_price_bp,
            children=tuple(children),
        )

    def promotion_node(self, p: pb.Promotion) -> CNode:
        index = len(self.promotions)
        lo = len(self.benefits)
        rules: list[CRule] = []
        for rule_list, level in ((p.product_rules, PRODUCT), (p.order_rules, ORDER)):
            for rule in rule_list:
                rlo = len(self.benefits)
                for b in rule.benefits:
                    self.benefits.append(self.benefit(b, index, level, len(rules)))
                min_q = rule.min_quantity if level == PRODUCT else 0  # type: ignore[union-attr]
                rules.append(
                    CRule(
                        level=level,
                        scope_kind=int(rule.scope.kind) or pb.SCOPE_KIND_ALL,
                        segments=tuple(rule.scope.segments),
                        min_quantity=int(min_q),
                        lo=rlo,
                        hi=len(self.benefits),
                    )
                )
        start = _ts(p.period.start, p.period.HasField("start"))
        if p.period.HasField("end"):
            end = _ts(p.period.end, True)
        elif p.period.HasField("duration") and start is not None and p.period.duration.count:
            end = add_period(start, p.period.duration.count, p.period.duration.unit, self.zone)
        else:
            end = None
        channels: dict[str, frozenset[str]] = {}
        for ref in p.channels:
            channels[ref.channel] = channels.get(ref.channel, frozenset()) | frozenset(
                ref.points_of_contact
            )
            if not ref.points_of_contact:
                channels[ref.channel] = frozenset()
        promotion = CPromotion(
            index=index,
            id=p.id,
            name=p.name,
            kind="POINTS" if p.kind == pb.PROMOTION_KIND_POINTS else "DISCOUNT",
            active=p.status == pb.PROMOTION_STATUS_ACTIVE,
            start=start,
            end=end,
            weekdays=frozenset(int(w) for w in p.availability.weekdays),
            months=frozenset(int(m) for m in p.availability.months),
            windows=tuple(
                (_minutes(w.start), _minutes(w.end)) for w in p.availability.time_windows
            ),
            audience=int(p.audience.kind) or pb.AUDIENCE_KIND_ALL_MEMBERS,
            audience_segments=frozenset(p.audience.segments),
            audience_tiers=frozenset(p.audience.tiers),
            pool=p.promo_code_pool,
            channels=channels,
            sequential=p.benefit_arbitration == pb.BENEFIT_ARBITRATION_SEQUENTIAL,
            rules=tuple(rules),
            lo=lo,
            hi=len(self.benefits),
        )
        self.promotions.append(promotion)
        self.rule_count += len(rules)
        return CNode(lo=lo, hi=len(self.benefits), promotion=index)

    def benefit(self, b: pb.Benefit, promotion: int, level: int, rule: int) -> CBenefit:
        kind = b.WhichOneof("benefit") or ""
        msg = getattr(b, kind)
        index = len(self.benefits)
        common: dict[str, Any] = {
            "index": index,
            "promotion": promotion,
            "level": level,
            "rule": rule,
            "rule_gid": self.rule_count + rule,
            "kind": kind,
        }
        if kind in ("discount", "shipping_discount", "pay_with_points", "accrue_points"):
            value_kind = msg.WhichOneof("value") or ""
            common["value_kind"] = value_kind
            common["value"] = int(getattr(msg, value_kind)) if value_kind else 0
        if kind in ("discount", "pay_with_points"):
            common["max_items"] = int(msg.max_items)
        if kind in (
            "pay_with_points",
            "accrue_points",
            "accrue_per_spent",
            "accrue_from_field",
            "partner_points",
        ):
            common["point_type"] = self.type_index[msg.point_type]
        if kind in ("accrue_points", "accrue_per_spent", "accrue_from_field", "partner_points"):
            common["timing"] = ON_DELIVERY if msg.timing == pb.TIMING_ON_DELIVERY else ON_CREATE
        if kind == "price_from_field":
            common["field"] = msg.field
            common["factor_bp"] = int(msg.factor_bp)
        elif kind == "accrue_from_field":
            common["field"] = msg.field
        elif kind == "accrue_per_spent":
            common["value"] = int(msg.points)
            common["per_amount"] = int(msg.per_amount)
        elif kind == "round_price":
            common["round_mode"] = int(msg.mode) or pb.ROUND_MODE_ROUND_INTEGER
        elif kind == "text":
            common["template_parts"] = template_parts(msg.template)
        elif kind in ("partner_discount", "partner_points"):
            common["partners"] = frozenset(msg.partners)
        return CBenefit(**common)


def _validate(program: pb.Program) -> None:
    try:
        from arbiter.server.engine.validate import validate_program
    except ImportError:  # pragma: no cover - the validator lands separately
        return
    validate_program(program)


def _segments_of_member(program: pb.Program) -> dict[str, frozenset[str]]:
    listed: dict[str, set[str]] = {}
    for segment in program.member_segments:
        for member_id in segment.members:
            listed.setdefault(member_id, set()).add(segment.id)
    return {member_id: frozenset(ids) for member_id, ids in listed.items()}


def compile_program(program: pb.Program) -> CompiledProgram:
    """Validate and compile `program`; raises ConfigError naming every bad object and field."""
    _validate(program)
    zone = ZoneInfo(program.time_zone or "UTC")
    point_types = tuple(
        CPointType(
            id=t.id,
            index=i,
            kind=int(t.kind) or pb.POINT_KIND_STANDARD,
            active=t.active,
            ratio_points=int(t.ratio.points) or 1,
            ratio_money=int(t.ratio.money) or 1,
            deactivate_at=_ts(t.deactivate_at, t.HasField("deactivate_at")),
        )
        for i, t in enumerate(program.point_types)
    )
    type_index = {t.id: t.index for t in point_types}
    builder = _Builder(program, zone, type_index)
    listed: set[str] = set()

    def collect(group: pb.Group) -> None:
        for child in group.children:
            if child.WhichOneof("node") == "group":
                collect(child.group)
            else:
                listed.add(child.promotion)

    collect(program.arbitration)
    root_lo = 0
    children = [
        builder.node(g.group)
        if g.WhichOneof("node") == "group"
        else builder.promotion_node(builder.by_id[g.promotion])
        for g in program.arbitration.children
    ]
    # Promotions that no group lists sit at the end of the main arbitration (docs/rules.md).
    for p in program.promotions:
        if p.id not in listed:
            children.append(builder.promotion_node(p))
    root_group = program.arbitration
    if not root_group.mode and children:
        root_group = pb.Group()
        root_group.CopyFrom(program.arbitration)
        root_group.mode = pb.ARBITRATION_MODE_SEQUENTIAL
    root = builder._group(root_group, root_lo, children)
    benefits = tuple(builder.benefits)
    pay_types = [b.point_type if b.kind == "pay_with_points" else 0 for b in benefits]
    pools = {
        pool.id: CPool(
            id=pool.id,
            codes={c.code.upper(): int(c.max_uses) for c in pool.codes},
            max_uses_per_member=int(pool.max_uses_per_member),
            valid_from=_ts(pool.valid_from, pool.HasField("valid_from")),
            valid_to=_ts(pool.valid_to, pool.HasField("valid_to")),
        )
        for pool in program.promo_code_pools
    }
    code_pool: dict[str, str] = {}
    for pool_c in pools.values():
        for code in pool_c.codes:
            code_pool.setdefault(code, pool_c.id)
    tier_groups = tuple(
        CTierGroup(
            id=g.id,
            point_type=g.point_type,
            tiers=tuple(sorted(((t.id, int(t.min_balance)) for t in g.tiers), key=lambda x: x[1])),
        )
        for g in program.tier_groups
    )
    source = pb.Program()
    source.CopyFrom(program)
    product_segments = {
        s.id: CProductSegment(
            id=s.id,
            skus=frozenset(s.skus),
            categories=frozenset(s.categories),
            brands=frozenset(s.brands),
            partners=frozenset(s.partners),
            min_unit_price=int(s.min_unit_price),
            max_unit_price=int(s.max_unit_price),
            fields=tuple(
                (f.field, int(f.op) or pb.FIELD_OP_EQ, int(f.value), frozenset(f.values))
                for f in s.fields
            ),
        )
        for s in program.product_segments
    }
    segment_index = build_segment_index(list(product_segments.values()))
    rules = build_rule_table(builder.promotions, segment_index, PRODUCT)
    order_segments = {
        s.id: COrderSegment(
            id=s.id,
            min_subtotal=int(s.min_subtotal),
            max_subtotal=int(s.max_subtotal),
            min_items=int(s.min_items),
            channels=frozenset(s.channels),
            regions=frozenset(s.regions),
            contains=tuple((c.product_segment, int(c.min_quantity) or 1) for c in s.contains),
        )
        for s in program.order_segments
    }
    time_bounds = _time_bounds(builder.promotions)
    return CompiledProgram(
        id=program.id,
        time_zone=program.time_zone or "UTC",
        zone=zone,
        point_type_ids=frozenset(type_index),
        point_types=point_types,
        point_type_index=type_index,
        tier_groups=tier_groups,
        tier_group_of_tier={t[0]: g.id for g in tier_groups for t in g.tiers},
        partner_discount_bp={p.id: int(p.discount_bp) for p in program.partners},
        partner_points_bp={p.id: int(p.points_bp) for p in program.partners},
        member_segments={s.id: frozenset(s.members) for s in program.member_segments},
        segments_of_member=_segments_of_member(program),
        product_segments=product_segments,
        order_segments=order_segments,
        pools=pools,
        code_pool=code_pool,
        promotions=tuple(builder.promotions),
        benefits=benefits,
        root=root,
        benefit_levels=[b.level for b in benefits],
        pay_types=pay_types,
        segment_index=segment_index,
        rules=rules,
        rule_scope=list(rules.scope),
        time_bounds=time_bounds,
        select_tables=build_tables(
            builder.promotions, segment_index, rules, order_segments, tuple(pools), time_bounds
        ),
        source=source,
    )
