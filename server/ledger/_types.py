"""Plain results the ledger answers with; the api room translates them to protobuf."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from arbiter.server.engine.types import CalculationResult, CodeUsage, MemberState

__all__ = [
    "BalanceInfo",
    "EnrollManyResult",
    "EnrollResult",
    "ExpiringLot",
    "ExpiryReport",
    "MemberBatch",
    "MemberInfo",
    "MemberSnapshot",
    "OrderOutcome",
    "OutboxEvent",
    "PointsMovement",
    "TierChange",
    "TierPeriodReport",
    "TierStatus",
    "Transaction",
    "TransactionPage",
]

TRANSACTION_TYPES = (
    "ACCRUAL", "REDEMPTION", "EXPIRATION", "REFUND", "REVERSAL", "ADJUSTMENT", "RESET",
)
SOURCE_TYPES = (
    "ORDER", "TRIGGER_PROMOTION", "MANUAL", "ENROLLMENT", "EXPIRATION", "TIER_RESET",
)


@dataclass(frozen=True, slots=True)
class Transaction:
    """One immutable change of a balance (docs/contract.md). `extra` is a JSON object as text."""

    id: str
    external_id: str
    created_at: datetime
    type: str
    member_id: str
    point_type: str
    balance_before: int
    value: int
    balance_after: int
    source_type: str
    source_id: str
    comment: str
    extra: str


@dataclass(frozen=True, slots=True)
class TransactionPage:
    transactions: tuple[Transaction, ...]
    next_page_token: str  # "" on the last page


@dataclass(frozen=True, slots=True)
class BalanceInfo:
    """One point type of a member at `now`.

    `balance` is the sum of the type's transactions; `available` is that less lots expired but
    not yet written off and less active holds; `held` the active holds; `pending` the ON_DELIVERY
    points not delivered yet; `expiring_soon` the free points of lots expiring within the window.
    """

    point_type: str
    available: int
    held: int
    pending: int
    expiring_soon: int
    balance: int


@dataclass(frozen=True, slots=True)
class TierStatus:
    tier_group: str
    tier: str
    points: int
    next_tier: str  # "" at the top tier
    to_next: int
    period_end: datetime | None  # CYCLIC only


@dataclass(frozen=True, slots=True)
class MemberInfo:
    member_id: str
    registered_at: datetime
    balances: tuple[BalanceInfo, ...]
    tiers: tuple[TierStatus, ...]

    def balance(self, point_type: str) -> BalanceInfo:
        for info in self.balances:
            if info.point_type == point_type:
                return info
        raise KeyError(point_type)

    def tier(self, tier_group: str) -> TierStatus:
        for status in self.tiers:
            if status.tier_group == tier_group:
                return status
        raise KeyError(tier_group)


@dataclass(frozen=True, slots=True)
class MemberSnapshot:
    """What a quote needs of a member, and until when it stays true by time alone.

    `state` has the available balances (clamped at 0) and tiers; `usage` the member's pool uses
    (`code_uses` is empty: uses of a code by everyone change with anyone's order).
    `stale_at` is the earliest instant at which the snapshot changes without any write: a hold
    or held code use lapses, a lot expires, a CYCLIC period or an extended tier ends. None:
    nothing of the kind ahead.
    """

    info: MemberInfo
    state: MemberState
    usage: CodeUsage
    stale_at: datetime | None


@dataclass(frozen=True, slots=True)
class EnrollResult:
    member: MemberInfo
    created: bool  # False: the member was enrolled already (the call is idempotent)


# Members of a bulk enrollment handed over together: their ids, and for each its registration
# instant (None: the enrollment's `now`).
MemberBatch: TypeAlias = tuple[Sequence[str], Sequence[datetime | None]]


@dataclass(frozen=True, slots=True)
class EnrollManyResult:
    enrolled: int
    already_enrolled: int


@dataclass(frozen=True, slots=True)
class ExpiringLot:
    point_type: str
    points: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PointsMovement:
    """Points moved per type by a lifecycle step; `shortfall` is what could not be taken back."""

    point_type: str
    accrual_reversed: int = 0
    redemption_refunded: int = 0
    activated: int = 0
    shortfall: int = 0


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """A confirmed or reserved order: its stored result and where it stands.

    `replayed` is True when the order existed already and the stored result was returned.
    `program_version` is the version the stored result was calculated on (the reservation's,
    for a posted hold), stored with the order; None for an order stored without one.
    """

    order_id: str
    state: str  # "RESERVED" | "CONFIRMED"
    result: CalculationResult
    hold_until: datetime | None
    replayed: bool
    program_version: int | None = None


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int
    program: str
    topic: str
    member_id: str
    payload: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TierChange:
    tier_group: str
    from_tier: str
    to_tier: str
    points: int
    reason: str  # "UPGRADE" | "DOWNGRADE" | "PERIOD_END" | "EXTENDED_END"
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class ExpiryReport:
    lots: int = 0
    points: int = 0
    skipped_locked: int = 0
    batches: int = 0


@dataclass(frozen=True, slots=True)
class TierPeriodReport:
    members: int = 0
    skipped_locked: int = 0
    changes: tuple[TierChange, ...] = field(default=())
