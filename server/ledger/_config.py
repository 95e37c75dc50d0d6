"""What the ledger reads of an applied program version, compiled once from `arbiter.v1.Program`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from arbiter.server.ledger._calendar import Span, add_span
from arbiter.v1 import program_pb2

__all__ = [
    "AmountRule",
    "LedgerProgram",
    "PointTypeConfig",
    "PoolConfig",
    "TierConfig",
    "TierGroupConfig",
    "TriggerConfig",
]

_UNIT_NAMES = {
    program_pb2.PERIOD_UNIT_UNSPECIFIED: "DAY",  # rule 23 (docs/rules.md): unspecified unit is DAY
    program_pb2.PERIOD_UNIT_DAY: "DAY",
    program_pb2.PERIOD_UNIT_WEEK: "WEEK",
    program_pb2.PERIOD_UNIT_MONTH: "MONTH",
    program_pb2.PERIOD_UNIT_YEAR: "YEAR",
}
_MODEL_NAMES = {
    # An unspecified model behaves like the simplest one, DYNAMIC (see docs/ledger.md).
    program_pb2.TIER_MODEL_UNSPECIFIED: "DYNAMIC",
    program_pb2.TIER_MODEL_DYNAMIC: "DYNAMIC",
    program_pb2.TIER_MODEL_CUMULATIVE: "CUMULATIVE",
    program_pb2.TIER_MODEL_CYCLIC: "CYCLIC",
}


def _span(period: program_pb2.Period) -> Span:
    return Span(max(0, int(period.count)), _UNIT_NAMES.get(period.unit, "DAY"))


def _instant(message: Any, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    stamp = getattr(message, name)
    return stamp.ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class PointTypeConfig:
    id: str
    kind: str  # "STANDARD" | "QUALIFICATION"
    active: bool
    initial_balance: int
    validity: Span
    allow_refund: bool
    allow_negative_balance: bool
    deactivate_at: datetime | None

    def usable_at(self, now: datetime) -> bool:
        """Active and not deactivated: the type may accrue and be spent at `now`."""
        return self.active and (self.deactivate_at is None or now < self.deactivate_at)

    def expiry(self, accrued_at: datetime, tz: ZoneInfo) -> datetime | None:
        """A lot accrued at `accrued_at` expires at the end of its validity or at deactivation."""
        end = None if self.validity.empty else add_span(accrued_at, self.validity, tz)
        if self.deactivate_at is not None and (end is None or self.deactivate_at < end):
            end = self.deactivate_at
        return end


@dataclass(frozen=True, slots=True)
class TierConfig:
    id: str
    min_balance: int


@dataclass(frozen=True, slots=True)
class TierGroupConfig:
    id: str
    model: str  # "DYNAMIC" | "CUMULATIVE" | "CYCLIC"
    point_type: str
    tiers: tuple[TierConfig, ...]  # by min_balance, the first is where every member starts
    period: Span
    anchor: datetime | None
    reset: bool
    upgrade_immediately: bool
    extend_to_month_end: bool

    def rank(self, tier_id: str) -> int:
        """The tier's position (0 = lowest); an unknown tier (config changed) ranks lowest."""
        for i, tier in enumerate(self.tiers):
            if tier.id == tier_id:
                return i
        return 0

    def reached(self, points: int) -> int:
        """Index of the highest tier whose min_balance the points reach."""
        best = 0
        for i, tier in enumerate(self.tiers):
            if tier.min_balance <= points:
                best = i
        return best


@dataclass(frozen=True, slots=True)
class AmountRule:
    """A fixed value, or a range [min, max] (max 0 = no upper bound)."""

    fixed: int
    min: int
    max: int

    def describe(self) -> str:
        if self.fixed:
            return f"must be {self.fixed}"
        upper = str(self.max) if self.max else "∞"
        return f"must lie in [{self.min}, {upper}]"

    def allows(self, points: int) -> bool:
        if self.fixed:
            return points == self.fixed
        return points >= max(self.min, 1) and (self.max == 0 or points <= self.max)


@dataclass(frozen=True, slots=True)
class TriggerConfig:
    id: str
    start: datetime | None
    end: datetime | None
    # point type -> (accrual rule, deduction rule); None where the operation is not offered.
    rules: Mapping[str, tuple[AmountRule | None, AmountRule | None]]

    def open_at(self, now: datetime) -> bool:
        return (self.start is None or self.start <= now) and (self.end is None or now < self.end)


@dataclass(frozen=True, slots=True)
class PoolConfig:
    id: str
    max_uses_per_member: int  # 0 = unlimited
    codes: Mapping[str, int]  # upper-case code -> max_uses (0 = unlimited)


def _amount_rule(rule: program_pb2.AmountRule) -> AmountRule | None:
    if rule.fixed == 0 and rule.min == 0 and rule.max == 0:
        return None
    return AmountRule(int(rule.fixed), int(rule.min), int(rule.max))


@dataclass(frozen=True, slots=True)
class LedgerProgram:
    """The ledger's view of one applied program version. Build it once per version."""

    id: str
    tz: ZoneInfo
    point_types: Mapping[str, PointTypeConfig]  # in program order
    tier_groups: tuple[TierGroupConfig, ...]
    triggers: Mapping[str, TriggerConfig]
    pools: Mapping[str, PoolConfig]
    code_pools: Mapping[str, str]  # upper-case code -> pool id

    @classmethod
    def from_proto(cls, program: program_pb2.Program) -> LedgerProgram:
        try:
            tz = ZoneInfo(program.time_zone or "UTC")
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"program {program.id!r}: unknown time zone") from exc
        types: dict[str, PointTypeConfig] = {}
        for pt in program.point_types:
            types[pt.id] = PointTypeConfig(
                id=pt.id,
                kind="QUALIFICATION" if pt.kind == program_pb2.POINT_KIND_QUALIFICATION
                else "STANDARD",
                active=pt.active,
                initial_balance=max(0, int(pt.initial_balance)),
                validity=_span(pt.validity) if pt.HasField("validity") else Span(0, "DAY"),
                allow_refund=pt.allow_refund,
                allow_negative_balance=pt.allow_negative_balance,
                deactivate_at=_instant(pt, "deactivate_at"),
            )
        groups = []
        for group in program.tier_groups:
            tiers = sorted(
                (TierConfig(t.id, int(t.min_balance)) for t in group.tiers),
                key=lambda t: t.min_balance,
            )
            groups.append(
                TierGroupConfig(
                    id=group.id,
                    model=_MODEL_NAMES.get(group.model, "DYNAMIC"),
                    point_type=group.point_type,
                    tiers=tuple(tiers),
                    period=_span(group.period) if group.HasField("period") else Span(0, "DAY"),
                    anchor=_instant(group, "anchor"),
                    reset=group.reset,
                    upgrade_immediately=group.upgrade_immediately,
                    extend_to_month_end=group.extend_to_month_end,
                )
            )
        triggers = {}
        for trig in program.trigger_promotions:
            start = _instant(trig.period, "start") if trig.HasField("period") else None
            end = _instant(trig.period, "end") if trig.HasField("period") else None
            if end is None and start is not None and trig.period.HasField("duration"):
                duration = _span(trig.period.duration)
                if not duration.empty:
                    end = add_span(start, duration, tz)
            rules = {
                rule.point_type: (_amount_rule(rule.accrual), _amount_rule(rule.deduction))
                for rule in trig.rules
            }
            triggers[trig.id] = TriggerConfig(trig.id, start, end, MappingProxyType(rules))
        pools = {}
        code_pools: dict[str, str] = {}
        for pool in program.promo_code_pools:
            codes = {c.code.upper(): max(0, int(c.max_uses)) for c in pool.codes}
            pools[pool.id] = PoolConfig(
                pool.id, max(0, int(pool.max_uses_per_member)), MappingProxyType(codes)
            )
            for code in codes:
                code_pools.setdefault(code, pool.id)
        return cls(
            id=program.id,
            tz=tz,
            point_types=MappingProxyType(types),
            tier_groups=tuple(groups),
            triggers=MappingProxyType(triggers),
            pools=MappingProxyType(pools),
            code_pools=MappingProxyType(code_pools),
        )

    def point_type(self, point_type: str) -> PointTypeConfig | None:
        return self.point_types.get(point_type)

    def groups_of(self, point_type: str) -> tuple[TierGroupConfig, ...]:
        return tuple(g for g in self.tier_groups if g.point_type == point_type)
