"""The program report from the ledger (docs/reports.md): members, points per type, orders, per
day and per promotion, over a window [start, end). Read-only, one consistent snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from arbiter.server.ledger._config import LedgerProgram

__all__ = ["DayFigures", "ProgramReport", "PromotionFigures", "TypeFigures", "program_report"]


@dataclass(frozen=True, slots=True)
class TypeFigures:
    point_type: str
    accrued: int
    redeemed: int
    expired: int
    outstanding: int


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: date  # in the program's time zone
    orders: int = 0
    revenue: int = 0
    discount: int = 0
    paid_with_points: int = 0
    accrued: int = 0
    redeemed: int = 0


@dataclass(frozen=True, slots=True)
class PromotionFigures:
    promotion: str
    orders: int
    discount: int
    points: int


@dataclass(frozen=True, slots=True)
class ProgramReport:
    enrolled: int
    active: int
    point_types: tuple[TypeFigures, ...]
    confirmed: int
    cancelled: int
    returned: int
    days: tuple[DayFigures, ...]
    promotions: tuple[PromotionFigures, ...]


# Every query reads one of the indexes of migration 0015 over the window only.
_TXN_SQL = """
SELECT (created_at AT TIME ZONE $4)::date AS day, point_type, type, sum(value)::bigint AS value
FROM transactions
WHERE program = $1 AND created_at >= $2 AND created_at < $3
  AND type IN ('ACCRUAL', 'REDEMPTION', 'EXPIRATION')
GROUP BY 1, 2, 3
"""

_ORDER_DAYS_SQL = """
SELECT (confirmed_at AT TIME ZONE $4)::date AS day, count(*) AS orders,
       sum(total)::bigint AS revenue, sum(discount)::bigint AS discount,
       sum(paid_with_points)::bigint AS paid_with_points
FROM orders
WHERE program = $1 AND confirmed_at >= $2 AND confirmed_at < $3
GROUP BY 1
"""

_ACTIVE_SQL = """
SELECT count(*) FROM (
    SELECT member_pk FROM transactions
    WHERE program = $1 AND created_at >= $2 AND created_at < $3
    UNION
    SELECT member_pk FROM orders
    WHERE program = $1 AND confirmed_at >= $2 AND confirmed_at < $3 AND member_pk IS NOT NULL
) active
"""

_ENROLLED_SQL = """
SELECT count(*) FROM members
WHERE program = $1 AND created_at < $2 AND (removed_at IS NULL OR removed_at >= $2)
"""

_OUTSTANDING_SQL = """
SELECT b.point_type, sum(b.balance)::bigint AS balance
FROM balances b JOIN members m ON m.pk = b.member_pk
WHERE m.program = $1 AND NOT m.removed
GROUP BY 1
"""

_CANCELLED_SQL = """
SELECT count(*) FROM orders WHERE program = $1 AND cancelled_at >= $2 AND cancelled_at < $3
"""

_RETURNED_SQL = """
SELECT count(DISTINCT r.order_pk) FROM returns r JOIN orders o ON o.pk = r.order_pk
WHERE o.program = $1 AND r.created_at >= $2 AND r.created_at < $3
"""

# A stored result's benefits are [line_id, promotion, kind, benefit, amount, points, type, timing].
_PROMOTIONS_SQL = """
SELECT b ->> 1 AS promotion, count(DISTINCT o.pk) AS orders,
       sum((b ->> 4)::bigint)::bigint AS discount, sum((b ->> 5)::bigint)::bigint AS points
FROM orders o CROSS JOIN LATERAL jsonb_array_elements(o.result -> 'benefits') b
WHERE o.program = $1 AND o.confirmed_at >= $2 AND o.confirmed_at < $3
GROUP BY 1
ORDER BY 1
"""


async def program_report(conn: asyncpg.Connection, program: LedgerProgram, start: datetime,
                         end: datetime) -> ProgramReport:
    """The report of [start, end); run inside one REPEATABLE READ snapshot."""
    tz = program.tz.key
    pid = program.id
    days: dict[date, dict[str, int]] = {}

    def day(d: date) -> dict[str, int]:
        return days.setdefault(d, {"orders": 0, "revenue": 0, "discount": 0,
                                   "paid_with_points": 0, "accrued": 0, "redeemed": 0})

    per_type: dict[str, dict[str, int]] = {
        t: {"accrued": 0, "redeemed": 0, "expired": 0, "outstanding": 0}
        for t in program.point_types
    }

    def typed(t: str) -> dict[str, int]:
        return per_type.setdefault(t, {"accrued": 0, "redeemed": 0, "expired": 0,
                                       "outstanding": 0})

    for r in await conn.fetch(_TXN_SQL, pid, start, end, tz):
        value = int(r["value"])
        kind = r["type"]
        if kind == "ACCRUAL":
            typed(r["point_type"])["accrued"] += value
            day(r["day"])["accrued"] += value
        elif kind == "REDEMPTION":
            typed(r["point_type"])["redeemed"] -= value
            day(r["day"])["redeemed"] -= value
        else:
            typed(r["point_type"])["expired"] -= value
    for r in await conn.fetch(_ORDER_DAYS_SQL, pid, start, end, tz):
        d = day(r["day"])
        for key in ("orders", "revenue", "discount", "paid_with_points"):
            d[key] += int(r[key] or 0)
    for r in await conn.fetch(_OUTSTANDING_SQL, pid):
        typed(r["point_type"])["outstanding"] = int(r["balance"])
    promotions = tuple(
        PromotionFigures(r["promotion"], int(r["orders"]), int(r["discount"]), int(r["points"]))
        for r in await conn.fetch(_PROMOTIONS_SQL, pid, start, end)
    )
    confirmed = sum(d["orders"] for d in days.values())
    return ProgramReport(
        enrolled=int(await conn.fetchval(_ENROLLED_SQL, pid, end)),
        active=int(await conn.fetchval(_ACTIVE_SQL, pid, start, end)),
        point_types=tuple(TypeFigures(t, **f) for t, f in per_type.items()),
        confirmed=confirmed,
        cancelled=int(await conn.fetchval(_CANCELLED_SQL, pid, start, end)),
        returned=int(await conn.fetchval(_RETURNED_SQL, pid, start, end)),
        days=tuple(DayFigures(d, **f) for d, f in sorted(days.items())),
        promotions=promotions,
    )
