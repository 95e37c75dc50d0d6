"""Tiers (docs/contract.md): DYNAMIC, CUMULATIVE and CYCLIC groups, their history and period ends.

A member's stored tier state changes only under the member's lock: after a posting that moved a
group's point type (`refresh`), and when a CYCLIC period or an extended tier ends (`catch_up`,
run by every write of the member and by the period job). Reads of DYNAMIC and CUMULATIVE tiers
are computed from the live balance, so a lot that expired counts out at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from arbiter.server.ledger._book import Book
from arbiter.server.ledger._calendar import month_end, period_containing
from arbiter.server.ledger._config import LedgerProgram, TierGroupConfig
from arbiter.server.ledger._types import TierChange, TierStatus

__all__ = [
    "TierRow",
    "catch_up",
    "effective_tier",
    "init_member",
    "load_states",
    "period_points",
    "refresh",
    "tier_status",
]

# A member untouched for a long time catches up at most this many period ends in one go; the
# rest is skipped when nothing happened in them (no points, lowest tier, nothing to reset).
_MAX_PERIOD_STEPS = 1_000
# Transactions written at `now` count as earned by `now`.
_EPSILON = timedelta(microseconds=1)


@dataclass(slots=True)
class TierRow:
    tier: str
    period_start: datetime | None
    period_end: datetime | None
    pending_tier: str | None
    pending_at: datetime | None

    @classmethod
    def from_record(cls, r: Any) -> TierRow:
        return cls(r["tier"], r["period_start"], r["period_end"], r["pending_tier"],
                   r["pending_at"])

    def due(self, now: datetime) -> bool:
        return (self.period_end is not None and self.period_end <= now) or (
            self.pending_at is not None and self.pending_at <= now
        )


def _cyclic(group: TierGroupConfig) -> bool:
    return group.model == "CYCLIC" and not group.period.empty


def _initial(group: TierGroupConfig, program: LedgerProgram, registered_at: datetime,
             now: datetime) -> TierRow:
    first = group.tiers[0].id if group.tiers else ""
    if not _cyclic(group):
        return TierRow(first, None, None, None, None)
    anchor = group.anchor or registered_at
    start, end = period_containing(anchor, group.period, max(now, registered_at), program.tz)
    return TierRow(first, start, end, None, None)


async def load_states(conn: asyncpg.Connection, member_pk: int) -> dict[str, TierRow]:
    rows = await conn.fetch(
        "SELECT tier_group, tier, period_start, period_end, pending_tier, pending_at"
        " FROM tier_states WHERE member_pk = $1",
        member_pk,
    )
    return {r["tier_group"]: TierRow.from_record(r) for r in rows}


async def _save(book: Book, group_id: str, row: TierRow, *, insert: bool = False) -> None:
    if insert:
        await book.conn.execute(
            """
            INSERT INTO tier_states (member_pk, tier_group, tier, period_start, period_end,
                pending_tier, pending_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (member_pk, tier_group) DO NOTHING
            """,
            book.member_pk, group_id, row.tier, row.period_start, row.period_end,
            row.pending_tier, row.pending_at, book.now,
        )
        return
    await book.conn.execute(
        """
        UPDATE tier_states SET tier = $3, period_start = $4, period_end = $5, pending_tier = $6,
            pending_at = $7, updated_at = $8
        WHERE member_pk = $1 AND tier_group = $2
        """,
        book.member_pk, group_id, row.tier, row.period_start, row.period_end,
        row.pending_tier, row.pending_at, book.now,
    )


async def _record(book: Book, group: TierGroupConfig, row: TierRow, to_tier: str, points: int,
                  reason: str, at: datetime) -> TierChange:
    change = TierChange(group.id, row.tier, to_tier, points, reason, at)
    await book.conn.execute(
        "INSERT INTO tier_history (member_pk, tier_group, from_tier, to_tier, points, reason,"
        " changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        book.member_pk, group.id, row.tier, to_tier, points, reason, at,
    )
    await book.emit(
        "tier.changed",
        {"tier_group": group.id, "from_tier": row.tier, "to_tier": to_tier, "points": points,
         "reason": reason, "changed_at": at.isoformat()},
    )
    row.tier = to_tier
    return change


async def period_points(conn: asyncpg.Connection, member_pk: int, point_type: str,
                        start: datetime, end: datetime) -> int:
    """Points earned in [start, end): the net value of the type's transactions, resets aside."""
    value: int = await conn.fetchval(
        """
        SELECT COALESCE(sum(value), 0)::bigint FROM transactions
        WHERE member_pk = $1 AND point_type = $2 AND type <> 'RESET'
          AND created_at >= $3 AND created_at < $4
        """,
        member_pk, point_type, start, end,
    )
    return value


async def _states(book: Book) -> dict[str, TierRow]:
    """The member's tier rows, adding those of groups the program gained since enrollment."""
    states = await load_states(book.conn, book.member_pk)
    for group in book.program.tier_groups:
        if group.id not in states and group.tiers:
            row = _initial(group, book.program, book.registered_at, book.now)
            await _save(book, group.id, row, insert=True)
            states[group.id] = row
    return states


async def init_member(book: Book) -> list[TierChange]:
    """Start every group at its first tier (then move up if the balances already qualify)."""
    await _states(book)
    book.touched.update(g.point_type for g in book.program.tier_groups)
    return await refresh(book)


async def _reset(book: Book, group: TierGroupConfig, period_end: datetime) -> None:
    """RESET the group's points as they stood at `period_end` (later points are kept)."""
    live = (await book.live()).get(group.point_type, 0)
    since: int = await book.conn.fetchval(
        "SELECT COALESCE(sum(value), 0)::bigint FROM transactions"
        " WHERE member_pk = $1 AND point_type = $2 AND type <> 'RESET' AND created_at >= $3",
        book.member_pk, group.point_type, period_end,
    )
    amount = live - since
    extra = {"tier_group": group.id, "period_end": period_end.isoformat()}
    if amount > 0:
        await book.debit(group.point_type, amount, type="RESET", source_type="TIER_RESET",
                         source_id=group.id, allow_negative=True, extra=extra,
                         comment="qualification points reset at the period end")
    elif amount < 0:
        await book.credit(group.point_type, -amount, type="RESET", source_type="TIER_RESET",
                          source_id=group.id, extra=extra,
                          comment="qualification points reset at the period end")


async def catch_up(book: Book) -> list[TierChange]:
    """Apply every CYCLIC period end and extended-tier end due at `book.now`."""
    changes: list[TierChange] = []
    states = await _states(book)
    for group in book.program.tier_groups:
        row = states.get(group.id)
        if row is None or not row.due(book.now):
            continue
        changes.extend(await _catch_up_group(book, group, row))
        await _save(book, group.id, row)
    return changes


async def _catch_up_group(book: Book, group: TierGroupConfig, row: TierRow) -> list[TierChange]:
    changes: list[TierChange] = []
    tz = book.program.tz
    for _ in range(_MAX_PERIOD_STEPS):
        pending_due = row.pending_at is not None and row.pending_at <= book.now
        period_due = row.period_end is not None and row.period_end <= book.now
        if not pending_due and not period_due:
            break
        if pending_due and (not period_due or (row.pending_at or book.now) <= (
                row.period_end or book.now)):
            at = row.pending_at or book.now
            target = group.rank(row.pending_tier or row.tier)
            pts = 0
            if group.upgrade_immediately and row.period_start is not None:
                pts = await period_points(book.conn, book.member_pk, group.point_type,
                                          row.period_start, at)
                target = max(target, group.reached(pts))
            if target < group.rank(row.tier):
                changes.append(await _record(book, group, row, group.tiers[target].id, pts,
                                             "EXTENDED_END", at))
            row.pending_tier = row.pending_at = None
            continue
        if not _cyclic(group) or row.period_start is None or row.period_end is None:
            # The group stopped being CYCLIC: drop its period.
            row.period_start = row.period_end = None
            break
        start, end = row.period_start, row.period_end
        pts = await period_points(book.conn, book.member_pk, group.point_type, start, end)
        target = group.reached(pts)
        current = group.rank(row.tier)
        if target < current and group.extend_to_month_end:
            row.pending_tier = group.tiers[target].id
            if row.pending_at is None:
                row.pending_at = month_end(end, tz)
        else:
            row.pending_tier = row.pending_at = None
            if target != current:
                changes.append(await _record(book, group, row, group.tiers[target].id, pts,
                                             "PERIOD_END", end))
        if group.reset:
            await _reset(book, group, end)
        next_start, next_end = period_containing(
            group.anchor or book.registered_at, group.period, end, tz
        )
        if next_end <= book.now and pts == 0 and row.pending_at is None and (
            group.rank(row.tier) == 0
        ):
            # Nothing can happen in the idle periods between: jump to the one holding now.
            next_start, next_end = period_containing(
                group.anchor or book.registered_at, group.period, book.now, tz
            )
            idle = await period_points(book.conn, book.member_pk, group.point_type, end,
                                       next_start)
            if idle:  # points were earned in between after all: walk period by period
                next_start, next_end = period_containing(
                    group.anchor or book.registered_at, group.period, end, tz
                )
        row.period_start, row.period_end = next_start, next_end
    return changes


async def refresh(book: Book, *, states: dict[str, TierRow] | None = None,
                  live: dict[str, int] | None = None) -> list[TierChange]:
    """Move tiers after postings on the point types in `book.touched` (ups, and DYNAMIC downs).

    `states` (every group's row, as `catch_up` leaves them) and `live` (each type's live balance
    after the postings), when the caller knows them already, spare two reads.
    """
    groups = [g for g in book.program.tier_groups if g.point_type in book.touched and g.tiers]
    if not groups:
        return []
    if states is None or any(g.id not in states for g in groups):
        states = await _states(book)
    if live is None:
        live = await book.live()
    changes: list[TierChange] = []
    for group in groups:
        row = states[group.id]
        current = group.rank(row.tier)
        dirty = False
        if _cyclic(group):
            if not group.upgrade_immediately or row.period_start is None:
                continue
            pts = await period_points(book.conn, book.member_pk, group.point_type,
                                      row.period_start, book.now + _EPSILON)
            target = max(current, group.reached(pts))
            if group.reached(pts) >= current and row.pending_tier is not None:
                # Back at (or above) the tier a downgrade was waiting to take away.
                row.pending_tier = row.pending_at = None
                dirty = True
        else:
            pts = live.get(group.point_type, 0)
            target = group.reached(pts)
            if group.model == "CUMULATIVE":
                target = max(current, target)
        if target != current:
            reason = "UPGRADE" if target > current else "DOWNGRADE"
            changes.append(await _record(book, group, row, group.tiers[target].id, pts, reason,
                                         book.now))
            dirty = True
        if dirty:
            await _save(book, group.id, row)
    return changes


def effective_tier(group: TierGroupConfig, row: TierRow | None, live_points: int) -> int:
    """The tier a read shows: DYNAMIC from the live balance, CUMULATIVE never below the stored
    one, CYCLIC as stored."""
    if not group.tiers:
        return 0
    stored = group.rank(row.tier) if row is not None else 0
    if _cyclic(group):
        return stored
    reached = group.reached(live_points)
    return max(stored, reached) if group.model == "CUMULATIVE" else reached


async def tier_status(conn: asyncpg.Connection, member_pk: int, group: TierGroupConfig,
                      row: TierRow | None, live_points: int, now: datetime) -> TierStatus:
    if not group.tiers:
        return TierStatus(group.id, "", 0, "", 0, None)
    rank = effective_tier(group, row, live_points)
    points = live_points
    period_end = None
    if _cyclic(group) and row is not None and row.period_start is not None:
        points = await period_points(conn, member_pk, group.point_type, row.period_start,
                                     now + _EPSILON)
        period_end = row.period_end
    nxt = group.tiers[rank + 1] if rank + 1 < len(group.tiers) else None
    return TierStatus(
        tier_group=group.id,
        tier=group.tiers[rank].id,
        points=points,
        next_tier=nxt.id if nxt else "",
        to_next=max(0, nxt.min_balance - points) if nxt else 0,
        period_end=period_end,
    )
