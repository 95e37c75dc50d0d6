"""The member's lock and one read, under it, of what a new order's calculation and postings need.

ConfirmOrder used to ask PostgreSQL one question at a time (the member, each balance's standing
twice, tiers twice, pool uses, the order, then the lots of each debit): about a dozen round trips
before the first write. `lock_and_prefetch` locks the member and asks them all in one call of a
server-side function (migration 0004), whose read is a statement of its own run after the
member's balance rows are locked, so its snapshot already sees every write that held those locks
before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from arbiter.server.ledger._config import LedgerProgram
from arbiter.server.ledger._tiers import TierRow

__all__ = ["FreeLot", "OrderPrefetch", "lock_and_prefetch"]

FreeLot = tuple[int, datetime | None, int]  # (lot pk, expires_at, free points), best first

# Migration 0004's `ledger_lock_prefetch` (since 0005 built around `ledger_lock_member`): the
# member's lock (what `lock_member` calls: same rows, same order) and then, in a statement of its
# own and thus a snapshot taken once the locks are held, the read that was `_PREFETCH_SQL` here;
# it locks the existing order (if any) after the member, as everywhere. One round trip, not two.
_LOCK_PREFETCH_SQL: Final = "SELECT * FROM ledger_lock_prefetch($1, $2, $3, $4, $5, $6, $7)"


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


async def lock_and_prefetch(
    conn: asyncpg.Connection,
    program: LedgerProgram,
    member_id: str,
    order_id: str,
    wanted: Mapping[str, int],
    now: datetime,
) -> tuple[int, OrderPrefetch] | None:
    """Lock the enrolled member `member_id` as `lock_member` does (creating the balance rows of
    the program's types it lacks) and read it, in one round trip: (its pk, what was read), or
    None when there is no such member. Calling it again in the same transaction reads again
    (the locks are held already)."""
    types = sorted(t for t, points in wanted.items() if points > 0)
    row = await conn.fetchrow(
        _LOCK_PREFETCH_SQL,
        program.id,
        member_id,
        sorted(program.point_types),
        now,
        order_id,
        types,
        [wanted[t] for t in types],
    )
    assert row is not None
    member_pk: int | None = row["member_pk"]
    if member_pk is None:
        return None
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
    return member_pk, OrderPrefetch(
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
