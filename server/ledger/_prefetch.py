"""One read, under the member's lock, of what a new order's calculation and postings need.

ConfirmOrder used to ask PostgreSQL one question at a time (the member, each balance's standing
twice, tiers twice, pool uses, the order, then the lots of each debit): about a dozen round trips
before the first write. `prefetch` asks them all in one statement, run right after the member's
balance rows are locked, so its snapshot already sees every write that held those locks before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from arbiter.server.ledger._tiers import TierRow

__all__ = ["FreeLot", "OrderPrefetch", "prefetch"]

FreeLot = tuple[int, datetime | None, int]  # (lot pk, expires_at, free points), best first

# $1 member pk, $2 now, $3 program, $4 order id, $5/$6 point types and the points the order asks
# to redeem of each. The existing order (if any) is locked after the member, as everywhere.
# Free lots come best first (soonest-expiring, never-expiring last, then oldest, as
# `Book.free_lots`), each type only as far as needed to cover what the order asks for.
_PREFETCH_SQL: Final = """
WITH existing AS (
    SELECT pk FROM orders WHERE program = $3 AND order_id = $4 FOR UPDATE
), earmarks AS (
    SELECT hl.lot_pk, sum(hl.points)::bigint AS points
    FROM hold_lots hl JOIN holds h ON h.pk = hl.hold_pk
    WHERE h.member_pk = $1 AND h.state = 'HELD' AND h.hold_until > $2
      AND h.point_type = ANY($5::text[])
    GROUP BY hl.lot_pk
), free AS (
    SELECT l.point_type, l.pk, l.expires_at, l.accrued_at,
           l.remaining - COALESCE(e.points, 0) AS free, w.points AS wanted
    FROM unnest($5::text[], $6::bigint[]) AS w(point_type, points)
    JOIN lots l ON l.member_pk = $1 AND l.point_type = w.point_type
    LEFT JOIN earmarks e ON e.lot_pk = l.pk
    WHERE l.state = 'ACTIVE' AND l.remaining > 0 AND (l.expires_at IS NULL OR l.expires_at > $2)
      AND l.remaining > COALESCE(e.points, 0)
), ranked AS (
    SELECT f.*, sum(f.free) OVER (
               PARTITION BY f.point_type
               ORDER BY f.expires_at ASC NULLS LAST, f.accrued_at, f.pk
           ) - f.free AS before
    FROM free f
)
SELECT
    m.member_id, m.registered_at, m.removed,
    (SELECT pk FROM existing) AS order_pk,
    ARRAY(
        SELECT ROW(b.point_type, b.balance, b.unbacked,
            COALESCE((SELECT sum(l.remaining) FROM lots l
                      WHERE l.member_pk = b.member_pk AND l.point_type = b.point_type
                        AND l.state = 'ACTIVE' AND l.expires_at <= $2), 0)::bigint,
            COALESCE((SELECT sum(h.points) FROM holds h
                      WHERE h.member_pk = b.member_pk AND h.point_type = b.point_type
                        AND h.state = 'HELD' AND h.hold_until > $2), 0)::bigint)
        FROM balances b WHERE b.member_pk = m.pk ORDER BY b.point_type
    ) AS balances,
    ARRAY(
        SELECT ROW(t.tier_group, t.tier, t.period_start, t.period_end, t.pending_tier,
                   t.pending_at)
        FROM tier_states t WHERE t.member_pk = m.pk ORDER BY t.tier_group
    ) AS tiers,
    ARRAY(
        SELECT ROW(u.pool, count(*)) FROM promo_code_uses u
        WHERE u.member_pk = m.pk
          AND (u.state = 'CONFIRMED' OR (u.state = 'HELD' AND u.hold_until > $2))
        GROUP BY u.pool ORDER BY u.pool
    ) AS pools,
    ARRAY(
        SELECT ROW(r.point_type, r.pk, r.expires_at, r.free) FROM ranked r
        WHERE r.before < r.wanted
        ORDER BY r.point_type, r.expires_at ASC NULLS LAST, r.accrued_at, r.pk
    ) AS lots
FROM members m WHERE m.pk = $1
"""


@dataclass(frozen=True, slots=True)
class OrderPrefetch:
    """The member as it stands under its lock, at `now`.

    Per point type: `balances` (balance, unbacked), `expired` (points of lots expired at `now`
    whose EXPIRATION is not written yet), `held` (active holds). `free_lots[t]` covers
    `wanted[t]` points when the member has that many free, else holds every free lot of `t`.
    `order_pk`: the order, when it exists already (locked).
    """

    member_id: str
    registered_at: datetime
    removed: bool
    order_pk: int | None
    balances: Mapping[str, tuple[int, int]]
    expired: Mapping[str, int]
    held: Mapping[str, int]
    tiers: Mapping[str, TierRow]
    pool_uses: Mapping[str, int]
    wanted: Mapping[str, int]
    free_lots: Mapping[str, list[FreeLot]]

    def available(self) -> dict[str, int]:
        """Balance less lots expired at `now` (not yet written off) less active holds."""
        return {t: b - self.expired[t] - self.held[t] for t, (b, _) in self.balances.items()}

    def live(self) -> dict[str, int]:
        """Balance less lots expired at `now`: what tiers measure (holds still count)."""
        return {t: b - self.expired[t] for t, (b, _) in self.balances.items()}


async def prefetch(
    conn: asyncpg.Connection,
    program_id: str,
    member_pk: int,
    order_id: str,
    wanted: Mapping[str, int],
    now: datetime,
) -> OrderPrefetch:
    """Read it all in one statement; the caller holds the member's lock (`lock_member`)."""
    types = sorted(t for t, points in wanted.items() if points > 0)
    row = await conn.fetchrow(
        _PREFETCH_SQL, member_pk, now, program_id, order_id, types, [wanted[t] for t in types]
    )
    assert row is not None, "the caller locked this member"
    balances: dict[str, tuple[int, int]] = {}
    expired: dict[str, int] = {}
    held: dict[str, int] = {}
    for point_type, balance, unbacked, expired_points, held_points in row["balances"]:
        balances[point_type] = (balance, unbacked)
        expired[point_type] = expired_points
        held[point_type] = held_points
    free_lots: dict[str, list[FreeLot]] = {t: [] for t in types}
    for point_type, lot_pk, expires_at, free in row["lots"]:
        free_lots[point_type].append((lot_pk, expires_at, free))
    return OrderPrefetch(
        member_id=row["member_id"],
        registered_at=row["registered_at"],
        removed=row["removed"],
        order_pk=row["order_pk"],
        balances=balances,
        expired=expired,
        held=held,
        tiers={r[0]: TierRow(*r[1:]) for r in row["tiers"]},
        pool_uses={pool: uses for pool, uses in row["pools"]},
        wanted={t: wanted[t] for t in types},
        free_lots=free_lots,
    )
