"""Program validation: every configuration error of a `Program`, each named by object and field.

`validate_program` is PURE: it reads the message and nothing else (the one exception is the
time zone database, read through `zoneinfo`, which is data shipped with the project). It
collects every issue it finds, in a stable order (program fields, then each section in the
order of `Program`'s fields, each object in list order, each object's fields in proto order,
the arbitration tree last, depth first), and raises one `ConfigError` listing them all.

Where an issue is reported: on the nearest enclosing object that has an id. A promotion with
an id is `("promotion", id, "product_rules[0].benefits[1].discount.percent_bp")`; a nested group
with an id is `("group", id, "children[2].promotion")`; the main arbitration, an anonymous
group and any top-level object without an id are reported on the program itself with the full
path (`("program", "demo", "arbitration.mode")`, `("program", "demo", "promotions[3].id")`).
docs/configuration.md lists every rule.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.timestamp_pb2 import Timestamp

from arbiter.server.engine.compile import MAX_BENEFIT_CHILDREN
from arbiter.server.engine.errors import ConfigError, ConfigIssue
from arbiter.server.engine.money import BP as BP_WHOLE
from arbiter.server.engine.render import TemplatePart, split_template  # the one grammar
from arbiter.v1 import program_pb2

__all__ = [
    "BP_WHOLE",
    "MAX_BENEFIT_CHILDREN",
    "MAX_ISSUES",
    "FieldPath",
    "TemplatePart",
    "TooManyIssues",
    "join_path",
    "split_template",
    "template_placeholder_error",
    "validate_program",
]

# A limit on what one error carries: a broken generated file must not yield a megabyte message.
MAX_ISSUES = 500

_Level = Literal["product", "order"]

# Rule 16 (docs/rules.md): the placeholders a text template may use.
_FIXED_PLACEHOLDERS = frozenset(
    {
        "member.id",
        "order.id",
        "order.subtotal",
        "order.discount",
        "order.total",
        "order.items",
        "order.shipping",
        "promotion.name",
    }
)
# Placeholders that end with a point type id.
_TYPED_PLACEHOLDER_PREFIXES = ("points.accrued.", "points.redeemed.", "balance.")

# Benefits that act per unit (docs/rules.md, The benefits): only product rules may hold them.
_PRODUCT_ONLY_BENEFITS = frozenset(
    {"price_from_field", "round_price", "partner_discount", "partner_points", "accrue_from_field"}
)
_BENEFIT_NAMES = tuple(
    f.name for f in program_pb2.Benefit.DESCRIPTOR.oneofs_by_name["benefit"].fields
)

_TIME_OF_DAY = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")

_STANDARD = program_pb2.POINT_KIND_STANDARD
_QUALIFICATION = program_pb2.POINT_KIND_QUALIFICATION


# --------------------------------------------------------------------------------------------
# Where issues land


def join_path(prefix: str, path: str) -> str:
    """`prefix.path`, or `prefix[i]` for an index; either may be empty."""
    if not prefix:
        return path
    if not path:
        return prefix
    if path.startswith("["):
        return prefix + path
    return f"{prefix}.{path}"


class TooManyIssues(Exception):
    """Raised by FieldPath.add once its issue list reaches the path's `limit`."""


@dataclass(frozen=True, slots=True)
class FieldPath:
    """An object (kind and id) and a field path inside it; issues added here land there.

    `limit` (0: none) stops a walk once that many issues are collected (TooManyIssues).
    """

    issues: list[ConfigIssue]
    kind: str
    id: str
    prefix: str = ""
    limit: int = 0

    def at(self, path: str) -> FieldPath:
        return FieldPath(self.issues, self.kind, self.id, join_path(self.prefix, path), self.limit)

    def object(self, kind: str, object_id: str) -> FieldPath:
        """Another object, collecting into the same list under the same limit."""
        return FieldPath(self.issues, kind, object_id, "", self.limit)

    def add(self, path: str, message: str) -> None:
        self.issues.append(ConfigIssue(self.kind, self.id, join_path(self.prefix, path), message))
        if self.limit and len(self.issues) >= self.limit:
            raise TooManyIssues


def _object_at(program_at: FieldPath, kind: str, object_id: str, position: str) -> FieldPath:
    """The place for an object's issues: itself when it has an id, else the program + path."""
    if object_id:
        return FieldPath(program_at.issues, kind, object_id)
    return program_at.at(position)


# --------------------------------------------------------------------------------------------
# The ids a program defines


@dataclass(frozen=True, slots=True)
class _Index:
    """Every id the program defines, per kind; first definition wins for duplicated ids."""

    point_kinds: Mapping[str, int]
    tiers: frozenset[str]
    partners: frozenset[str]
    member_segments: frozenset[str]
    product_segments: frozenset[str]
    order_segments: frozenset[str]
    pools: frozenset[str]
    promotions: frozenset[str]

    @staticmethod
    def of(program: program_pb2.Program) -> _Index:
        point_kinds: dict[str, int] = {}
        for point_type in program.point_types:
            if point_type.id:
                kind = point_type.kind or _STANDARD  # rule 23: unspecified is STANDARD
                point_kinds.setdefault(point_type.id, kind)
        return _Index(
            point_kinds=point_kinds,
            tiers=frozenset(t.id for g in program.tier_groups for t in g.tiers),
            partners=frozenset(p.id for p in program.partners),
            member_segments=frozenset(s.id for s in program.member_segments),
            product_segments=frozenset(s.id for s in program.product_segments),
            order_segments=frozenset(s.id for s in program.order_segments),
            pools=frozenset(p.id for p in program.promo_code_pools),
            promotions=frozenset(p.id for p in program.promotions),
        )

    def segment_kinds_of(self, segment_id: str) -> list[str]:
        kinds = []
        if segment_id in self.member_segments:
            kinds.append("member segment")
        if segment_id in self.product_segments:
            kinds.append("product segment")
        if segment_id in self.order_segments:
            kinds.append("order segment")
        return kinds


@dataclass(slots=True)
class _Seen:
    """Ids met so far in one namespace, with where each was first defined."""

    what: str
    first: dict[str, str] = field(default_factory=dict)

    def check(self, at: FieldPath, object_id: str, position: str, path: str = "id") -> None:
        if not object_id:
            return
        earlier = self.first.get(object_id)
        if earlier is None:
            self.first[object_id] = position
        else:
            at.add(path, f"another {self.what} already has the id {object_id!r} (at {earlier})")


# --------------------------------------------------------------------------------------------
# Small checks


def _enum_name(enum: EnumDescriptor, value: int) -> str:
    found = enum.values_by_number.get(value)
    return found.name if found is not None else str(value)


def _check_enum(at: FieldPath, path: str, value: int, enum: EnumDescriptor) -> bool:
    if value in enum.values_by_number:
        return True
    at.add(path, f"{value} is not a {enum.name} value")
    return False


def _short_names(enum: EnumDescriptor) -> str:
    names = [v.name for v in enum.values if v.number != 0]
    prefix = enum.values_by_number[0].name.removesuffix("UNSPECIFIED")
    return ", ".join(n.removeprefix(prefix) for n in names)


def _require_id(at: FieldPath, value: str, what: str) -> None:
    if not value:
        at.add("id", f"a {what} needs an id")


def _non_negative(at: FieldPath, path: str, value: int) -> None:
    if value < 0:
        at.add(path, f"must not be negative (got {value})")


def _positive(at: FieldPath, path: str, value: int) -> None:
    if value <= 0:
        at.add(path, f"must be positive (got {value})")


def _share_bp(at: FieldPath, path: str, value: int) -> None:
    """A share of a price: 0 to 10000 basis points."""
    if value < 0:
        at.add(path, f"must not be negative (got {value})")
    elif value > BP_WHOLE:
        at.add(path, f"must be at most 10000 bp (100 %), got {value}")


def _non_empty_entries(at: FieldPath, path: str, values: Sequence[str]) -> None:
    for i, value in enumerate(values):
        if not value.strip():
            at.add(f"{path}[{i}]", "must not be empty")


def _ts_key(ts: Timestamp) -> tuple[int, int]:
    return (ts.seconds, ts.nanos)


def _ref(at: FieldPath, path: str, value: str, known: frozenset[str], what: str) -> None:
    if not value:
        at.add(path, f"must name a {what}")
    elif value not in known:
        at.add(path, f"unknown {what} {value!r}")


def _segment_ref(
    at: FieldPath, path: str, value: str, index: _Index, known: frozenset[str], what: str
) -> None:
    if not value:
        at.add(path, f"must name a {what}")
    elif value not in known:
        others = index.segment_kinds_of(value)
        hint = f" (it is a {' and a '.join(others)})" if others else ""
        at.add(path, f"unknown {what} {value!r}{hint}")


def _point_type_ref(at: FieldPath, path: str, value: str, index: _Index) -> int | None:
    """Checks a point type reference; returns the type's kind when it exists."""
    if not value:
        at.add(path, "must name a point type")
        return None
    kind = index.point_kinds.get(value)
    if kind is None:
        at.add(path, f"unknown point type {value!r}")
    return kind


def _check_count_period(
    at: FieldPath, period: program_pb2.Period, *, required: bool, what: str
) -> None:
    """A `Period {count, unit}`; `required`: count must be positive."""
    _check_enum(at, "unit", period.unit, program_pb2.PeriodUnit.DESCRIPTOR)
    if period.count < 0:
        at.add("count", f"must not be negative (got {period.count})")
    elif period.count == 0 and (required or period.unit != program_pb2.PERIOD_UNIT_UNSPECIFIED):
        at.add("count", f"{what} needs a positive count")


def _check_active_period(at: FieldPath, period: program_pb2.ActivePeriod) -> None:
    has_start = period.HasField("start")
    has_end = period.HasField("end")
    if period.HasField("duration"):
        if has_end:
            at.add("duration", "give either end or duration, not both")
        if not has_start:
            at.add("duration", "a duration counts from start: set start too")
        _check_count_period(at.at("duration"), period.duration, required=True, what="a duration")
    if has_start and has_end and _ts_key(period.end) <= _ts_key(period.start):
        at.add("end", "must be after start")


# --------------------------------------------------------------------------------------------
# Text templates (rule 16, docs/rules.md)


def template_placeholder_error(name: str, point_types: Mapping[str, object]) -> str | None:
    """Why `{name}` is not a placeholder of rule 16 (docs/rules.md), or None when it is one."""
    if name in _FIXED_PLACEHOLDERS:
        return None
    for prefix in _TYPED_PLACEHOLDER_PREFIXES:
        if name.startswith(prefix):
            type_id = name.removeprefix(prefix)
            if type_id in point_types:
                return None
            return f"placeholder {{{name}}} names an unknown point type {type_id!r}"
    return f"unknown placeholder {{{name}}}"


def _check_template(at: FieldPath, template: str, index: _Index) -> None:
    if not template:
        at.add("", "a text needs a template")
        return
    try:
        parts = split_template(template)
    except ValueError as exc:
        at.add("", str(exc))
        return
    for part in parts:
        if part.placeholder:
            problem = template_placeholder_error(part.text, index.point_kinds)
            if problem is not None:
                at.add("", problem)


# --------------------------------------------------------------------------------------------
# Sections of the program


def _check_program_fields(at: FieldPath, program: program_pb2.Program) -> None:
    if not program.id:
        at.add("id", "a program needs an id")
    if program.currency and not re.fullmatch(r"[A-Za-z]{3}", program.currency):
        at.add("currency", f"{program.currency!r} is not a three-letter currency code")
    if program.time_zone:
        try:
            zoneinfo.ZoneInfo(program.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            at.add("time_zone", f"unknown time zone {program.time_zone!r} (an IANA name)")


def _check_point_types(program_at: FieldPath, program: program_pb2.Program) -> None:
    seen = _Seen("point type")
    for i, point_type in enumerate(program.point_types):
        position = f"point_types[{i}]"
        at = _object_at(program_at, "point_type", point_type.id, position)
        _require_id(at, point_type.id, "point type")
        seen.check(at, point_type.id, position)
        if not _check_enum(at, "kind", point_type.kind, program_pb2.PointKind.DESCRIPTOR):
            continue
        qualification = point_type.kind == _QUALIFICATION
        _non_negative(at, "initial_balance", point_type.initial_balance)
        if qualification and point_type.initial_balance:
            at.add("initial_balance", "only STANDARD types grant an initial balance")
        if point_type.HasField("validity"):
            _check_count_period(
                at.at("validity"), point_type.validity, required=False, what="a validity"
            )
        if point_type.HasField("ratio"):
            ratio = point_type.ratio
            _positive(at, "ratio.points", ratio.points)
            _positive(at, "ratio.money", ratio.money)
        elif not qualification:
            at.add("ratio", "a STANDARD type needs a ratio {points, money}")


def _check_tier_groups(program_at: FieldPath, program: program_pb2.Program, index: _Index) -> None:
    seen = _Seen("tier group")
    seen_tiers = _Seen("tier")
    for i, group in enumerate(program.tier_groups):
        position = f"tier_groups[{i}]"
        at = _object_at(program_at, "tier_group", group.id, position)
        _require_id(at, group.id, "tier group")
        seen.check(at, group.id, position)
        model = group.model
        if model == program_pb2.TIER_MODEL_UNSPECIFIED:
            at.add("model", "a tier group needs a model: CUMULATIVE, CYCLIC or DYNAMIC")
        elif not _check_enum(at, "model", model, program_pb2.TierModel.DESCRIPTOR):
            model = program_pb2.TIER_MODEL_UNSPECIFIED
        _point_type_ref(at, "point_type", group.point_type, index)
        if not group.tiers:
            at.add("tiers", "a tier group needs at least one tier (the first with min_balance 0)")
        previous_min: int | None = None
        for j, tier in enumerate(group.tiers):
            tier_position = f"{position}.tiers[{j}]"
            if not tier.id:
                at.add(f"tiers[{j}].id", "a tier needs an id")
            seen_tiers.check(at, tier.id, tier_position, f"tiers[{j}].id")
            if previous_min is None:
                if tier.min_balance != 0:
                    at.add(
                        f"tiers[{j}].min_balance",
                        f"the first tier must have min_balance 0 (got {tier.min_balance}): "
                        "every member starts in it",
                    )
            elif tier.min_balance <= previous_min:
                at.add(
                    f"tiers[{j}].min_balance",
                    f"tiers must be ordered by min_balance, each above the previous "
                    f"({tier.min_balance} after {previous_min})",
                )
            previous_min = tier.min_balance
        if model == program_pb2.TIER_MODEL_CYCLIC:
            if group.HasField("period"):
                _check_count_period(at.at("period"), group.period, required=True, what="a period")
            else:
                at.add("period", "a CYCLIC tier group needs a period")
        elif model != program_pb2.TIER_MODEL_UNSPECIFIED:
            model_name = _enum_name(program_pb2.TierModel.DESCRIPTOR, model)
            cyclic_only = (
                ("period", group.HasField("period")),
                ("anchor", group.HasField("anchor")),
                ("reset", group.reset),
                ("upgrade_immediately", group.upgrade_immediately),
                ("extend_to_month_end", group.extend_to_month_end),
            )
            for name, given in cyclic_only:
                if given:
                    at.add(name, f"only a CYCLIC tier group uses {name} (this one is {model_name})")


def _check_partners(program_at: FieldPath, program: program_pb2.Program) -> None:
    seen = _Seen("partner")
    for i, partner in enumerate(program.partners):
        position = f"partners[{i}]"
        at = _object_at(program_at, "partner", partner.id, position)
        _require_id(at, partner.id, "partner")
        seen.check(at, partner.id, position)
        _share_bp(at, "discount_bp", partner.discount_bp)
        # An accrual share may exceed 100 % (double points).
        _non_negative(at, "points_bp", partner.points_bp)


def _check_member_segments(program_at: FieldPath, program: program_pb2.Program) -> None:
    seen = _Seen("member segment")
    for i, segment in enumerate(program.member_segments):
        position = f"member_segments[{i}]"
        at = _object_at(program_at, "member_segment", segment.id, position)
        _require_id(at, segment.id, "member segment")
        seen.check(at, segment.id, position)
        _non_empty_entries(at, "members", segment.members)


def _check_bounds(at: FieldPath, low_path: str, low: int, high_path: str, high: int) -> None:
    """Inclusive bounds where 0 means unset."""
    _non_negative(at, low_path, low)
    _non_negative(at, high_path, high)
    if low > 0 and high > 0 and low > high:
        at.add(high_path, f"must not be below {low_path} ({high} < {low})")


def _check_product_segments(
    program_at: FieldPath, program: program_pb2.Program, index: _Index
) -> None:
    seen = _Seen("product segment")
    for i, segment in enumerate(program.product_segments):
        position = f"product_segments[{i}]"
        at = _object_at(program_at, "product_segment", segment.id, position)
        _require_id(at, segment.id, "product segment")
        seen.check(at, segment.id, position)
        _non_empty_entries(at, "skus", segment.skus)
        _non_empty_entries(at, "categories", segment.categories)
        _non_empty_entries(at, "brands", segment.brands)
        for j, partner in enumerate(segment.partners):
            _ref(at, f"partners[{j}]", partner, index.partners, "partner")
        _check_bounds(
            at, "min_unit_price", segment.min_unit_price, "max_unit_price", segment.max_unit_price
        )
        for j, predicate in enumerate(segment.fields):
            p_at = at.at(f"fields[{j}]")
            if not predicate.field:
                p_at.add("field", "must name a line field")
            if not _check_enum(p_at, "op", predicate.op, program_pb2.FieldOp.DESCRIPTOR):
                continue
            if predicate.op == program_pb2.FIELD_OP_IN:
                if not predicate.values:
                    p_at.add("values", "IN needs at least one value")
            elif predicate.values:
                p_at.add("values", "values are only used by IN (the other operators use value)")


def _check_order_segments(
    program_at: FieldPath, program: program_pb2.Program, index: _Index
) -> None:
    seen = _Seen("order segment")
    for i, segment in enumerate(program.order_segments):
        position = f"order_segments[{i}]"
        at = _object_at(program_at, "order_segment", segment.id, position)
        _require_id(at, segment.id, "order segment")
        seen.check(at, segment.id, position)
        _check_bounds(
            at, "min_subtotal", segment.min_subtotal, "max_subtotal", segment.max_subtotal
        )
        _non_negative(at, "min_items", segment.min_items)
        _non_empty_entries(at, "channels", segment.channels)
        _non_empty_entries(at, "regions", segment.regions)
        for j, contains in enumerate(segment.contains):
            _segment_ref(
                at,
                f"contains[{j}].product_segment",
                contains.product_segment,
                index,
                index.product_segments,
                "product segment",
            )
            _non_negative(at, f"contains[{j}].min_quantity", contains.min_quantity)


def _check_promo_code_pools(program_at: FieldPath, program: program_pb2.Program) -> None:
    seen = _Seen("promo code pool")
    # Codes match case-insensitively, so one code may live in one pool only.
    seen_codes = _Seen("promo code")
    for i, pool in enumerate(program.promo_code_pools):
        position = f"promo_code_pools[{i}]"
        at = _object_at(program_at, "promo_code_pool", pool.id, position)
        _require_id(at, pool.id, "promo code pool")
        seen.check(at, pool.id, position)
        for j, code in enumerate(pool.codes):
            c_at = at.at(f"codes[{j}]")
            if not code.code or any(ch.isspace() for ch in code.code):
                c_at.add("code", f"a code must be non-empty and hold no spaces (got {code.code!r})")
            else:
                earlier = seen_codes.first.get(code.code.upper())
                if earlier is None:
                    seen_codes.first[code.code.upper()] = f"{position}.codes[{j}]"
                else:
                    c_at.add("code", f"the code {code.code!r} is already defined (at {earlier})")
            _non_negative(c_at, "max_uses", code.max_uses)
        _non_negative(at, "max_uses_per_member", pool.max_uses_per_member)
        if (
            pool.HasField("valid_from")
            and pool.HasField("valid_to")
            and _ts_key(pool.valid_to) <= _ts_key(pool.valid_from)
        ):
            at.add("valid_to", "must be after valid_from")


def _check_amount_rule(at: FieldPath, rule: program_pb2.AmountRule) -> None:
    _non_negative(at, "fixed", rule.fixed)
    _non_negative(at, "min", rule.min)
    _non_negative(at, "max", rule.max)
    if rule.fixed and (rule.min or rule.max):
        at.add("fixed", "give a fixed value or a range [min, max], not both")
    elif not rule.fixed and not rule.min and not rule.max:
        at.add("", "needs a fixed value or a range [min, max]")
    elif not rule.fixed and rule.max < rule.min:
        at.add("max", f"must not be below min ({rule.max} < {rule.min})")


def _check_trigger_promotions(
    program_at: FieldPath, program: program_pb2.Program, index: _Index
) -> None:
    seen = _Seen("trigger promotion")
    for i, trigger in enumerate(program.trigger_promotions):
        position = f"trigger_promotions[{i}]"
        at = _object_at(program_at, "trigger_promotion", trigger.id, position)
        _require_id(at, trigger.id, "trigger promotion")
        seen.check(at, trigger.id, position)
        if trigger.HasField("period"):
            _check_active_period(at.at("period"), trigger.period)
        rule_of_type: dict[str, int] = {}
        for j, rule in enumerate(trigger.rules):
            r_at = at.at(f"rules[{j}]")
            _point_type_ref(r_at, "point_type", rule.point_type, index)
            if rule.point_type in rule_of_type:
                r_at.add(
                    "point_type",
                    f"another rule already covers {rule.point_type!r} "
                    f"(at rules[{rule_of_type[rule.point_type]}])",
                )
            elif rule.point_type:
                rule_of_type[rule.point_type] = j
            if not rule.HasField("accrual") and not rule.HasField("deduction"):
                r_at.add("", "a rule needs an accrual or a deduction")
            if rule.HasField("accrual"):
                _check_amount_rule(r_at.at("accrual"), rule.accrual)
            if rule.HasField("deduction"):
                _check_amount_rule(r_at.at("deduction"), rule.deduction)


def _check_audience(at: FieldPath, audience: program_pb2.Audience, index: _Index) -> None:
    if not _check_enum(at, "kind", audience.kind, program_pb2.AudienceKind.DESCRIPTOR):
        return
    by_segments = audience.kind in (
        program_pb2.AUDIENCE_KIND_IN_SEGMENTS,
        program_pb2.AUDIENCE_KIND_NOT_IN_SEGMENTS,
    )
    by_tiers = audience.kind == program_pb2.AUDIENCE_KIND_TIERS
    kind_name = _enum_name(program_pb2.AudienceKind.DESCRIPTOR, audience.kind)
    if by_segments and not audience.segments:
        at.add("segments", f"{kind_name} needs at least one member segment")
    if audience.segments and not by_segments:
        at.add("segments", f"segments are used by IN_SEGMENTS or NOT_IN_SEGMENTS, not {kind_name}")
    if by_tiers and not audience.tiers:
        at.add("tiers", "AUDIENCE_KIND_TIERS needs at least one tier")
    if audience.tiers and not by_tiers:
        at.add("tiers", f"tiers are used by TIERS, not {kind_name}")
    for j, segment in enumerate(audience.segments):
        _segment_ref(at, f"segments[{j}]", segment, index, index.member_segments, "member segment")
    for j, tier in enumerate(audience.tiers):
        _ref(at, f"tiers[{j}]", tier, index.tiers, "tier")


def _check_availability(at: FieldPath, availability: program_pb2.Availability) -> None:
    for j, weekday in enumerate(availability.weekdays):
        if weekday == program_pb2.WEEKDAY_UNSPECIFIED:
            at.add(f"weekdays[{j}]", "WEEKDAY_UNSPECIFIED is not a day")
        else:
            _check_enum(at, f"weekdays[{j}]", weekday, program_pb2.Weekday.DESCRIPTOR)
    for j, month in enumerate(availability.months):
        if not 1 <= month <= 12:
            at.add(f"months[{j}]", f"a month is 1 to 12 (got {month})")
    for j, window in enumerate(availability.time_windows):
        for name, value in (("start", window.start), ("end", window.end)):
            if not _TIME_OF_DAY.fullmatch(value):
                at.add(f"time_windows[{j}].{name}", f"{value!r} is not a time of day HH:MM")


def _check_scope(
    at: FieldPath, scope: program_pb2.Scope, index: _Index, known: frozenset[str], what: str
) -> None:
    if not _check_enum(at, "kind", scope.kind, program_pb2.ScopeKind.DESCRIPTOR):
        return
    by_segments = scope.kind in (
        program_pb2.SCOPE_KIND_IN_SEGMENTS,
        program_pb2.SCOPE_KIND_NOT_IN_SEGMENTS,
    )
    kind_name = _enum_name(program_pb2.ScopeKind.DESCRIPTOR, scope.kind)
    if by_segments and not scope.segments:
        at.add("segments", f"{kind_name} needs at least one {what}")
    if scope.segments and not by_segments:
        at.add("segments", f"segments are used by IN_SEGMENTS or NOT_IN_SEGMENTS, not {kind_name}")
    for j, segment in enumerate(scope.segments):
        _segment_ref(at, f"segments[{j}]", segment, index, known, what)


def _check_partner_list(at: FieldPath, partners: Sequence[str], index: _Index) -> None:
    if not partners:
        at.add("partners", "needs at least one partner")
    for j, partner in enumerate(partners):
        _ref(at, f"partners[{j}]", partner, index.partners, "partner")


def _check_timing(at: FieldPath, timing: int) -> None:
    _check_enum(at, "timing", timing, program_pb2.Timing.DESCRIPTOR)


def _check_max_items(at: FieldPath, max_items: int, level: _Level) -> None:
    _non_negative(at, "max_items", max_items)
    if max_items and level == "order":
        at.add("max_items", "max_items counts units: it belongs in a product rule")


def _check_benefit(
    at: FieldPath, benefit: program_pb2.Benefit, level: _Level, index: _Index
) -> None:
    which = benefit.WhichOneof("benefit")
    if which is None:
        at.add("", f"a benefit needs one of: {', '.join(_BENEFIT_NAMES)}")
        return
    if level == "order" and which in _PRODUCT_ONLY_BENEFITS:
        at.add(which, f"{which} acts per unit: it belongs in a product rule")
    if level == "product" and which == "shipping_discount":
        at.add(which, "shipping_discount acts on the order: it belongs in an order rule")
    b_at = at.at(which)
    if which == "discount":
        discount = benefit.discount
        value = discount.WhichOneof("value")
        if value is None:
            b_at.add("", "a discount needs percent_bp, amount or fixed_price")
        elif value == "percent_bp":
            _share_bp(b_at, "percent_bp", discount.percent_bp)
        elif value == "amount":
            _non_negative(b_at, "amount", discount.amount)
        else:
            _non_negative(b_at, "fixed_price", discount.fixed_price)
            if level == "order":
                b_at.add("fixed_price", "a fixed unit price belongs in a product rule")
        _check_max_items(b_at, discount.max_items, level)
    elif which == "price_from_field":
        if not benefit.price_from_field.field:
            b_at.add("field", "must name a line field")
        _positive(b_at, "factor_bp", benefit.price_from_field.factor_bp)
    elif which == "round_price":
        _check_enum(b_at, "mode", benefit.round_price.mode, program_pb2.RoundMode.DESCRIPTOR)
    elif which == "text":
        _check_template(b_at.at("template"), benefit.text.template, index)
    elif which == "partner_discount":
        _check_partner_list(b_at, benefit.partner_discount.partners, index)
    elif which == "shipping_discount":
        shipping = benefit.shipping_discount
        value = shipping.WhichOneof("value")
        if value is None:
            b_at.add("", "a shipping discount needs percent_bp or amount")
        elif value == "percent_bp":
            _share_bp(b_at, "percent_bp", shipping.percent_bp)
        else:
            _non_negative(b_at, "amount", shipping.amount)
    elif which == "pay_with_points":
        pay = benefit.pay_with_points
        kind = _point_type_ref(b_at, "point_type", pay.point_type, index)
        if kind == _QUALIFICATION:
            b_at.add(
                "point_type",
                f"{pay.point_type!r} is a QUALIFICATION type: qualification points are not spent",
            )
        value = pay.WhichOneof("value")
        if value is None:
            b_at.add("", "a points payment needs percent_bp, amount or points")
        elif value == "percent_bp":
            _share_bp(b_at, "percent_bp", pay.percent_bp)
        elif value == "amount":
            _non_negative(b_at, "amount", pay.amount)
        else:
            _non_negative(b_at, "points", pay.points)
        _check_max_items(b_at, pay.max_items, level)
    elif which == "accrue_points":
        accrue = benefit.accrue_points
        _point_type_ref(b_at, "point_type", accrue.point_type, index)
        value = accrue.WhichOneof("value")
        if value is None:
            b_at.add("", "an accrual needs percent_bp or points")
        elif value == "percent_bp":
            # Accruals may exceed 100 % (double points).
            _non_negative(b_at, "percent_bp", accrue.percent_bp)
        else:
            _non_negative(b_at, "points", accrue.points)
        _check_timing(b_at, accrue.timing)
    elif which == "accrue_per_spent":
        per_spent = benefit.accrue_per_spent
        _point_type_ref(b_at, "point_type", per_spent.point_type, index)
        _non_negative(b_at, "points", per_spent.points)
        _positive(b_at, "per_amount", per_spent.per_amount)
        _check_timing(b_at, per_spent.timing)
    elif which == "accrue_from_field":
        from_field = benefit.accrue_from_field
        _point_type_ref(b_at, "point_type", from_field.point_type, index)
        if not from_field.field:
            b_at.add("field", "must name a line field")
        _check_timing(b_at, from_field.timing)
    elif which == "partner_points":
        partner_points = benefit.partner_points
        _check_partner_list(b_at, partner_points.partners, index)
        _point_type_ref(b_at, "point_type", partner_points.point_type, index)
        _check_timing(b_at, partner_points.timing)
    else:  # pragma: no cover - a new oneof member must get its checks here
        raise AssertionError(f"unhandled benefit {which}")


def _check_promotions(program_at: FieldPath, program: program_pb2.Program, index: _Index) -> None:
    seen = _Seen("promotion")
    for i, promotion in enumerate(program.promotions):
        position = f"promotions[{i}]"
        at = _object_at(program_at, "promotion", promotion.id, position)
        _require_id(at, promotion.id, "promotion")
        seen.check(at, promotion.id, position)
        _check_enum(at, "kind", promotion.kind, program_pb2.PromotionKind.DESCRIPTOR)
        _check_enum(at, "status", promotion.status, program_pb2.PromotionStatus.DESCRIPTOR)
        if promotion.HasField("audience"):
            _check_audience(at.at("audience"), promotion.audience, index)
        if promotion.HasField("period"):
            _check_active_period(at.at("period"), promotion.period)
        if promotion.HasField("availability"):
            _check_availability(at.at("availability"), promotion.availability)
        if promotion.promo_code_pool and promotion.promo_code_pool not in index.pools:
            at.add("promo_code_pool", f"unknown promo code pool {promotion.promo_code_pool!r}")
        for j, channel in enumerate(promotion.channels):
            if not channel.channel:
                at.add(f"channels[{j}].channel", "must name a channel")
            _non_empty_entries(at, f"channels[{j}].points_of_contact", channel.points_of_contact)
        _check_enum(
            at,
            "benefit_arbitration",
            promotion.benefit_arbitration,
            program_pb2.BenefitArbitration.DESCRIPTOR,
        )
        for j, product_rule in enumerate(promotion.product_rules):
            r_at = at.at(f"product_rules[{j}]")
            if product_rule.HasField("scope"):
                _check_scope(
                    r_at.at("scope"),
                    product_rule.scope,
                    index,
                    index.product_segments,
                    "product segment",
                )
            _non_negative(r_at, "min_quantity", product_rule.min_quantity)
            for k, benefit in enumerate(product_rule.benefits):
                _check_benefit(r_at.at(f"benefits[{k}]"), benefit, "product", index)
        for j, order_rule in enumerate(promotion.order_rules):
            r_at = at.at(f"order_rules[{j}]")
            if order_rule.HasField("scope"):
                _check_scope(
                    r_at.at("scope"), order_rule.scope, index, index.order_segments, "order segment"
                )
            for k, benefit in enumerate(order_rule.benefits):
                _check_benefit(r_at.at(f"benefits[{k}]"), benefit, "order", index)


# --------------------------------------------------------------------------------------------
# The arbitration tree (docs/rules.md, Arbitration)


def _listed_promotions(group: program_pb2.Group) -> Iterator[str]:
    for child in group.children:
        which = child.WhichOneof("node")
        if which == "promotion":
            yield child.promotion
        elif which == "group":
            yield from _listed_promotions(child.group)


@dataclass(slots=True)
class _Tree:
    """What the walk of the tree has met so far."""

    index: _Index
    listed: dict[str, str] = field(default_factory=dict)  # promotion id -> where listed
    groups: _Seen = field(default_factory=lambda: _Seen("group"))


def _check_limits(at: FieldPath, limits: program_pb2.Limits) -> None:
    _share_bp(at, "max_discount_bp", limits.max_discount_bp)
    _non_negative(at, "max_discount_amount", limits.max_discount_amount)
    _non_negative(at, "min_unit_price", limits.min_unit_price)
    _share_bp(at, "min_unit_price_bp", limits.min_unit_price_bp)


def _check_group(
    at: FieldPath,
    group: program_pb2.Group,
    tree: _Tree,
    *,
    position: str,
    mode_required: bool,
    extra_children: int,
) -> None:
    """Check a group and its subtree; `extra_children` are the promotions the root gains."""
    tree.groups.check(at, group.id, position)
    if group.mode == program_pb2.ARBITRATION_MODE_UNSPECIFIED:
        if mode_required:
            modes = _short_names(program_pb2.ArbitrationMode.DESCRIPTOR)
            at.add("mode", f"a group needs a mode: {modes}")
    elif _check_enum(at, "mode", group.mode, program_pb2.ArbitrationMode.DESCRIPTOR):
        children = len(group.children) + extra_children
        if (
            group.mode == program_pb2.ARBITRATION_MODE_MAX_BENEFIT
            and children > MAX_BENEFIT_CHILDREN
        ):
            unlisted = f", {extra_children} of them unlisted promotions" if extra_children else ""
            at.add(
                "children",
                f"a MAX_BENEFIT group may have at most {MAX_BENEFIT_CHILDREN} children "
                f"(it has {children}{unlisted})",
            )
    if group.HasField("limits"):
        _check_limits(at.at("limits"), group.limits)
    for i, child in enumerate(group.children):
        child_path = f"children[{i}]"
        which = child.WhichOneof("node")
        if which is None:
            at.add(child_path, "a child needs a promotion or a group")
        elif which == "promotion":
            promotion_id = child.promotion
            path = f"{child_path}.promotion"
            if not promotion_id:
                at.add(path, "must name a promotion")
            elif promotion_id not in tree.index.promotions:
                at.add(path, f"unknown promotion {promotion_id!r}")
            elif promotion_id in tree.listed:
                at.add(
                    path,
                    f"promotion {promotion_id!r} is listed twice in the tree "
                    f"(first at {tree.listed[promotion_id]})",
                )
            else:
                tree.listed[promotion_id] = join_path(position, path)
        else:
            sub = child.group
            sub_position = join_path(position, f"{child_path}.group")
            sub_at = (
                FieldPath(at.issues, "group", sub.id) if sub.id else at.at(f"{child_path}.group")
            )
            _check_group(
                sub_at,
                sub,
                tree,
                position=sub_position,
                mode_required=True,
                extra_children=0,
            )


def _check_tree(program_at: FieldPath, program: program_pb2.Program, index: _Index) -> None:
    root = program.arbitration
    listed = set(_listed_promotions(root))
    unlisted = {p.id for p in program.promotions if p.id and p.id not in listed}
    _check_group(
        program_at.at("arbitration"),
        root,
        _Tree(index),
        position="arbitration",
        # The main arbitration needs a mode unless the program has no promotions (docs/contract.md).
        mode_required=bool(program.promotions) or bool(root.children),
        extra_children=len(unlisted),
    )


# --------------------------------------------------------------------------------------------


def validate_program(program: program_pb2.Program) -> None:
    """Raise ConfigError listing every configuration error of `program`; return when none."""
    issues: list[ConfigIssue] = []
    program_at = FieldPath(issues, "program", program.id)
    index = _Index.of(program)
    _check_program_fields(program_at, program)
    _check_point_types(program_at, program)
    _check_tier_groups(program_at, program, index)
    _check_partners(program_at, program)
    _check_member_segments(program_at, program)
    _check_product_segments(program_at, program, index)
    _check_order_segments(program_at, program, index)
    _check_promo_code_pools(program_at, program)
    _check_trigger_promotions(program_at, program, index)
    _check_promotions(program_at, program, index)
    _check_tree(program_at, program, index)
    if issues:
        if len(issues) > MAX_ISSUES:
            hidden = len(issues) - (MAX_ISSUES - 1)
            issues = issues[: MAX_ISSUES - 1]
            issues.append(
                ConfigIssue("program", program.id, "", f"{hidden} more issues not listed")
            )
        raise ConfigError(issues)
