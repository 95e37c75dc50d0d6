"""The program report from the ledger (docs/reports.md): members, points per type, orders, per
day and per promotion, over a window [start, end). Read-only, one consistent snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from arbiter.server.ledger._config import LedgerProgram

__all__ = [
    "ROLLUP_DELAY",
    "DayFigures",
    "ProgramReport",
    "PromotionFigures",
    "Rolled",
    "TypeFigures",
    "program_report",
    "roll_up",
    "rolled_to",
]


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


@dataclass(frozen=True, slots=True)
class Rolled:
    """How far a program's rollups reach: the hourly sums hold every row before `hours` (an hour
    boundary), the active days every member's activity before `days` (a UTC midnight)."""

    hours: datetime
    days: datetime


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

# The active members by UTC day (migration 0017): over the window's whole days before
# `active_to`, each member counts once, on its first active day of those days (its previous
# active day, if any, is before them).
_ACTIVE_DAYS_SQL = """
SELECT COALESCE(sum(members), 0)::bigint FROM report_active_days
WHERE program = $1 AND day >= $2 AND day < $3 AND (previous IS NULL OR previous < $2)
"""

# ...plus the members active at the window's edges ([$2, $3) and [$4, $5), from the rows) who
# were not active on those days: the months $6 to $7, the days of the first from bit $8 on, of
# the last up to bit $9.
_ACTIVE_EDGES_SQL = """
SELECT count(*) FROM (
    SELECT member_pk FROM transactions
    WHERE program = $1 AND created_at >= $2 AND created_at < $3
    UNION
    SELECT member_pk FROM transactions
    WHERE program = $1 AND created_at >= $4 AND created_at < $5
    UNION
    SELECT member_pk FROM orders
    WHERE program = $1 AND confirmed_at >= $2 AND confirmed_at < $3 AND member_pk IS NOT NULL
    UNION
    SELECT member_pk FROM orders
    WHERE program = $1 AND confirmed_at >= $4 AND confirmed_at < $5 AND member_pk IS NOT NULL
) edge
WHERE NOT EXISTS (
    SELECT 1 FROM report_member_months m
    WHERE m.member_pk = edge.member_pk AND m.month >= $6 AND m.month <= $7
      AND m.days & CASE WHEN m.month = $6 THEN $8::integer ELSE -1 END
                 & CASE WHEN m.month = $7 THEN $9::integer ELSE -1 END <> 0)
"""

_ENROLLED_SQL = """
SELECT count(*) FROM members
WHERE program = $1 AND created_at < $2 AND (removed_at IS NULL OR removed_at >= $2)
"""

# Every balance row, less those of removed members and of other programs' members (both found
# by index, usually none): a scan of the balances instead of a join of every member to them.
# A type only other members have (n = 0) is left out.
_OUTSTANDING_SQL = """
SELECT point_type, sum(balance)::bigint AS balance FROM (
    SELECT point_type, balance, 1 AS n FROM balances
    UNION ALL
    SELECT b.point_type, -b.balance, -1 FROM members m JOIN balances b ON b.member_pk = m.pk
    WHERE m.removed
    UNION ALL
    SELECT b.point_type, -b.balance, -1 FROM members m JOIN balances b ON b.member_pk = m.pk
    WHERE NOT m.removed AND (m.program < $1 OR m.program > $1)
) rows
GROUP BY 1
HAVING sum(n) > 0
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


# The rollups (migration 0016): the same sums by UTC hour, for the hours before `rolled_to`.
_TXN_ROLLUP_SQL = """
SELECT (hour AT TIME ZONE $4)::date AS day, point_type, type, sum(value)::bigint AS value
FROM report_hours
WHERE program = $1 AND hour >= $2 AND hour < $3
  AND type IN ('ACCRUAL', 'REDEMPTION', 'EXPIRATION')
GROUP BY 1, 2, 3
"""

_ORDER_DAYS_ROLLUP_SQL = """
SELECT (hour AT TIME ZONE $4)::date AS day, sum(orders)::bigint AS orders,
       sum(revenue)::bigint AS revenue, sum(discount)::bigint AS discount,
       sum(paid_with_points)::bigint AS paid_with_points
FROM report_order_hours
WHERE program = $1 AND hour >= $2 AND hour < $3
GROUP BY 1
"""

_PROMOTIONS_ROLLUP_SQL = """
SELECT promotion, sum(orders)::bigint AS orders, sum(discount)::bigint AS discount,
       sum(points)::bigint AS points
FROM report_promotion_hours
WHERE program = $1 AND hour >= $2 AND hour < $3
GROUP BY 1
ORDER BY 1
"""

_ROLL_UP_SQL = (
    """
    INSERT INTO report_hours (program, hour, point_type, type, value)
    SELECT program, date_trunc('hour', created_at, 'UTC'), point_type, type, sum(value)
    FROM transactions
    WHERE program = $1 AND created_at >= $2 AND created_at < $3
    GROUP BY 1, 2, 3, 4
    """,
    """
    INSERT INTO report_order_hours (program, hour, orders, revenue, discount, paid_with_points)
    SELECT program, date_trunc('hour', confirmed_at, 'UTC'), count(*), sum(total),
           sum(discount), sum(paid_with_points)
    FROM orders
    WHERE program = $1 AND confirmed_at >= $2 AND confirmed_at < $3
    GROUP BY 1, 2
    """,
    """
    INSERT INTO report_promotion_hours (program, hour, promotion, orders, discount, points)
    SELECT o.program, date_trunc('hour', o.confirmed_at, 'UTC'), b ->> 1,
           count(DISTINCT o.pk), sum((b ->> 4)::bigint), sum((b ->> 5)::bigint)
    FROM orders o CROSS JOIN LATERAL jsonb_array_elements(o.result -> 'benefits') b
    WHERE o.program = $1 AND o.confirmed_at >= $2 AND o.confirmed_at < $3
    GROUP BY 1, 2, 3
    """,
)

# The days [$2, $3) (UTC midnights) into the active days: per day and previous active day
# (within these days, else the member's last one before them, else NULL) the number of members;
# each member's active days into its months, and its last one.
_ROLL_UP_ACTIVE_SQL = """
WITH active AS MATERIALIZED (
    SELECT DISTINCT member_pk, day FROM (
        SELECT member_pk, (created_at AT TIME ZONE 'UTC')::date AS day FROM transactions
        WHERE program = $1 AND created_at >= $2 AND created_at < $3
        UNION ALL
        SELECT member_pk, (confirmed_at AT TIME ZONE 'UTC')::date FROM orders
        WHERE program = $1 AND confirmed_at >= $2 AND confirmed_at < $3 AND member_pk IS NOT NULL
    ) events
), months AS (
    INSERT INTO report_member_months (member_pk, month, days)
    SELECT member_pk, day - (extract(day FROM day)::integer - 1),
           bit_or(1 << (extract(day FROM day)::integer - 1))
    FROM active GROUP BY 1, 2
    ON CONFLICT (member_pk, month)
        DO UPDATE SET days = report_member_months.days | EXCLUDED.days
), last AS (
    INSERT INTO report_member_last (member_pk, day)
    SELECT member_pk, max(day) FROM active GROUP BY 1
    ON CONFLICT (member_pk) DO UPDATE SET day = EXCLUDED.day
), linked AS (
    SELECT a.day, COALESCE(lag(a.day) OVER (PARTITION BY a.member_pk ORDER BY a.day),
                           l.day) AS previous
    FROM active a LEFT JOIN report_member_last l ON l.member_pk = a.member_pk
)
INSERT INTO report_active_days (program, day, previous, members)
SELECT $1, day, previous, count(*) FROM linked GROUP BY day, previous
"""

#: Hours are rolled up once they ended this long ago (no write takes that long to commit).
ROLLUP_DELAY = timedelta(hours=1)
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_EPOCH = datetime(1, 1, 2, tzinfo=UTC)


def _floor_hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _ceil_hour(at: datetime) -> datetime:
    floor = _floor_hour(at)
    return floor if floor == at else floor + _HOUR


def _floor_day(at: datetime) -> datetime:
    """The UTC midnight at or before `at`."""
    return _floor_hour(at).replace(hour=0)


def _ceil_day(at: datetime) -> datetime:
    floor = _floor_day(at)
    return floor if floor == at else floor + _DAY


def _from_bit(bit: int) -> int:
    """The mask of a month's days (bit d - 1: day d) from `bit` on, as a signed 32-bit int."""
    return ~((1 << bit) - 1)


def _to_bit(bit: int) -> int:
    """The mask of a month's days up to `bit` (included)."""
    return (1 << (bit + 1)) - 1


def _whole_hour_zone(tz: ZoneInfo, *instants: datetime) -> bool:
    """Hour buckets fall in one local day only in a zone whose offsets are whole hours."""
    for at in instants:
        offset = at.astimezone(tz).utcoffset()
        if offset is None or offset.total_seconds() % 3600:
            return False
    return True


async def roll_up(conn: asyncpg.Connection, program: LedgerProgram, now: datetime) -> Rolled:
    """Sum the hours that ended at least ROLLUP_DELAY before `now` into the hourly rollups, and
    the whole UTC days among them into the active days (inside the caller's transaction, under
    the program's rollup row lock); returns how far they reach."""
    await conn.execute(
        "INSERT INTO report_rollups (program, rolled_to, active_to) VALUES ($1, $2, $2)"
        " ON CONFLICT (program) DO NOTHING", program.id, _EPOCH)
    row = await conn.fetchrow(
        "SELECT rolled_to, active_to FROM report_rollups WHERE program = $1 FOR UPDATE",
        program.id)
    before = Rolled(row["rolled_to"], row["active_to"])
    hours = max(before.hours, _floor_hour(now - ROLLUP_DELAY))
    days = max(before.days, _floor_day(hours))
    if hours > before.hours:
        for sql in _ROLL_UP_SQL:
            await conn.execute(sql, program.id, before.hours, hours)
    if days > before.days:
        await conn.execute(_ROLL_UP_ACTIVE_SQL, program.id, before.days, days)
    rolled = Rolled(hours, days)
    if rolled != before:
        await conn.execute(
            "UPDATE report_rollups SET rolled_to = $2, active_to = $3 WHERE program = $1",
            program.id, hours, days)
    return rolled


async def rolled_to(conn: asyncpg.Connection, program_id: str) -> Rolled | None:
    row = await conn.fetchrow(
        "SELECT rolled_to, active_to FROM report_rollups WHERE program = $1", program_id)
    return None if row is None else Rolled(row["rolled_to"], row["active_to"])


async def _active(conn: asyncpg.Connection, program_id: str, start: datetime, end: datetime,
                  rolled: Rolled | None) -> int:
    """Members with a transaction or a confirmed order in [start, end): the window's whole UTC
    days before `rolled.days` from the active days, the edges from the rows."""
    if rolled is not None:
        low, high = _ceil_day(start), min(_floor_day(end), rolled.days)
        if low < high:
            days: int = await conn.fetchval(_ACTIVE_DAYS_SQL, program_id, low.date(),
                                            high.date())
            first, last = low.date(), (high - _DAY).date()
            edges: int = await conn.fetchval(
                _ACTIVE_EDGES_SQL, program_id, start, low, high, end, first.replace(day=1),
                last.replace(day=1), _from_bit(first.day - 1), _to_bit(last.day - 1))
            return days + edges
    counted: int = await conn.fetchval(_ACTIVE_SQL, program_id, start, end)
    return counted


async def program_report(conn: asyncpg.Connection, program: LedgerProgram, start: datetime,
                         end: datetime, rolled: Rolled | None = None) -> ProgramReport:
    """The report of [start, end); run inside one REPEATABLE READ snapshot. With `rolled`
    (how far the rollups reach), the window's whole hours before `rolled.hours` come from the
    hourly rollups, and the active members of its whole UTC days before `rolled.days` from the
    active days."""
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

    promotions: dict[str, list[int]] = {}

    async def add(txn_sql: str, order_sql: str, promo_sql: str, low: datetime,
                  high: datetime) -> None:
        for r in await conn.fetch(txn_sql, pid, low, high, tz):
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
        for r in await conn.fetch(order_sql, pid, low, high, tz):
            d = day(r["day"])
            for key in ("orders", "revenue", "discount", "paid_with_points"):
                d[key] += int(r[key] or 0)
        for r in await conn.fetch(promo_sql, pid, low, high):
            figures = promotions.setdefault(r["promotion"], [0, 0, 0])
            figures[0] += int(r["orders"])
            figures[1] += int(r["discount"] or 0)
            figures[2] += int(r["points"] or 0)

    live = [(start, end)]
    if rolled is not None and _whole_hour_zone(program.tz, start, end):
        low, high = _ceil_hour(start), min(_floor_hour(end), rolled.hours)
        if low < high:
            live = [w for w in ((start, low), (high, end)) if w[0] < w[1]]
            await add(_TXN_ROLLUP_SQL, _ORDER_DAYS_ROLLUP_SQL, _PROMOTIONS_ROLLUP_SQL, low, high)
    for low, high in live:
        await add(_TXN_SQL, _ORDER_DAYS_SQL, _PROMOTIONS_SQL, low, high)
    for r in await conn.fetch(_OUTSTANDING_SQL, pid):
        typed(r["point_type"])["outstanding"] = int(r["balance"])
    confirmed = sum(d["orders"] for d in days.values())
    return ProgramReport(
        enrolled=int(await conn.fetchval(_ENROLLED_SQL, pid, end)),
        active=await _active(conn, pid, start, end, rolled),
        point_types=tuple(TypeFigures(t, **f) for t, f in per_type.items()),
        confirmed=confirmed,
        cancelled=int(await conn.fetchval(_CANCELLED_SQL, pid, start, end)),
        returned=int(await conn.fetchval(_RETURNED_SQL, pid, start, end)),
        days=tuple(DayFigures(d, **f) for d, f in sorted(days.items())),
        promotions=tuple(PromotionFigures(p, *f) for p, f in sorted(promotions.items())),
    )
