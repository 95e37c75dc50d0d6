"""Plain domain types at the engine's boundary: what an order, a member and a result are.

The api room translates protobuf to and from these; the engine never sees protobuf messages of
the calculation contract (it compiles the `Program` message, its configuration input).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, NamedTuple

__all__ = [
    "MAX_PROMO_CODES",
    "AppliedBenefit",
    "CalculationResult",
    "CodeUsage",
    "LineInput",
    "LineResult",
    "MemberState",
    "OrderInput",
    "PointsChange",
    "PromoCodeResult",
    "Totals",
]

# The most promo codes one order may carry (checked where requests enter: the api's translation
# and the ledger's order requests).
MAX_PROMO_CODES: Final = 30

# Every type here is a named tuple: on every request the api room builds an OrderInput, a
# MemberState and one LineInput per line, and the engine a result of several parts. A named
# tuple's constructor is one small function around tuple.__new__; a frozen dataclass's sets each
# field through object.__setattr__ (three times the cost, measured). They are compared only with
# each other (a named tuple equals a plain tuple of the same items: no code compares them with
# tuples). Mapping defaults share one read-only empty mapping.
_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


class LineInput(NamedTuple):
    """One order line as received: money in minor units per unit."""

    id: str
    sku: str
    quantity: int
    unit_price: int
    categories: tuple[str, ...] = ()
    brand: str = ""
    partner: str = ""
    fields: Mapping[str, int] = _EMPTY


class OrderInput(NamedTuple):
    """An order as received. `time_zone` empty: the program's; `created_at` None: `now`."""

    id: str
    lines: tuple[LineInput, ...]
    channel: str = ""
    point_of_contact: str = ""
    region: str = ""
    time_zone: str = ""
    created_at: datetime | None = None
    shipping_cost: int = 0
    promo_codes: tuple[str, ...] = ()
    # (point_type, points) in request order.
    redeem: tuple[tuple[str, int], ...] = ()


class MemberState(NamedTuple):
    """A member as the calculation sees it: available balances, tiers, segments.

    `tiers` maps a tier group id to a tier id; a group missing from it is resolved from the
    balance of its point type (rule 20, docs/rules.md). `balances` holds what is available (holds
    and expired lots already taken off). Every MemberState counts as an enrolled member for
    audiences (an inline context does too); an anonymous buyer is no MemberState at all.
    """

    member_id: str
    balances: Mapping[str, int] = _EMPTY
    tiers: Mapping[str, str] = _EMPTY
    segments: frozenset[str] = frozenset()


class CodeUsage(NamedTuple):
    """Promo code usage from the ledger (confirmed and held): never from a member context.

    `code_uses`: upper-case code -> uses by everyone; `member_pool_uses`: pool id -> this
    member's uses of any code of that pool.
    """

    code_uses: Mapping[str, int] = _EMPTY
    member_pool_uses: Mapping[str, int] = _EMPTY


class Totals(NamedTuple):
    subtotal: int
    discount: int
    paid_with_points: int
    shipping: int
    shipping_discount: int
    total: int
    items: int


class LineResult(NamedTuple):
    """One line's result. Result rows are named tuples: immutable, and cheap to build by the
    hundred per calculation (a frozen dataclass costs three times as much)."""

    line_id: str
    base_price: int
    discount: int
    paid_with_points: int
    final_price: int
    # At most two (quantity, unit_price) receipt portions (docs/rules.md).
    portions: tuple[tuple[int, int], ...]


class AppliedBenefit(NamedTuple):
    """A row of the benefit table (rule 17). `timing` is "" except on accrual rows."""

    line_id: str
    promotion: str
    promotion_kind: str  # "DISCOUNT" | "POINTS"
    benefit: str  # the Benefit oneof field name
    amount: int
    points: int
    point_type: str
    timing: str = ""  # "ON_CREATE" | "ON_DELIVERY" on accrual rows


class PointsChange(NamedTuple):
    point_type: str
    requested: int
    redeemed: int
    accrued: int
    accrued_pending: int


class PromoCodeResult(NamedTuple):
    code: str  # as first written on the order
    status: str  # "APPLIED" | "NOT_APPLIED" | "INVALID"
    reason: str  # "" | "UNKNOWN_CODE" | "EXPIRED" | "NOT_YET_VALID" | "EXHAUSTED" |
    #              "NO_PROMOTION_APPLIED" | "ANOTHER_CODE_APPLIED"
    pool: str = ""


class CalculationResult(NamedTuple):
    """What a calculation answers (docs/contract.md), less the program version the caller adds."""

    evaluated_at: datetime
    totals: Totals
    lines: tuple[LineResult, ...]
    benefits: tuple[AppliedBenefit, ...]
    points: tuple[PointsChange, ...]
    texts: tuple[str, ...]
    promo_codes: tuple[PromoCodeResult, ...]
