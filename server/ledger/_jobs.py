"""Background work safe with many replicas: lot expiry and CYCLIC tier period ends.

Each job walks candidates in member order in bounded batches; each member is one short
transaction that skips (SKIP LOCKED) a member some request is writing, so replicas and requests
never wait on each other. Running a job twice, or on two replicas at once, changes nothing more.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from arbiter.server.ledger import _tiers
from arbiter.server.ledger._book import Book
from arbiter.server.ledger._config import LedgerProgram
from arbiter.server.ledger._types import ExpiryReport, TierChange, TierPeriodReport

__all__ = ["expire_lots", "expire_member", "run_tier_periods"]

# Lot ids listed in an EXPIRATION transaction's extra, at most.
_MAX_LOTS_IN_EXTRA = 100


async def expire_member(book: Book) -> tuple[int, int]:
    """Write off every lot of the member expired at `book.now`: (lots, points)."""
    rows = await book.conn.fetch(
        """
        WITH due AS (
            SELECT pk, point_type, remaining, expires_at FROM lots
            WHERE member_pk = $1 AND state = 'ACTIVE' AND expires_at <= $2
        )
        UPDATE lots l SET state = 'EXPIRED', expired_points = l.expired_points + due.remaining,
            remaining = 0
        FROM due WHERE l.pk = due.pk
        RETURNING l.pk, due.point_type, due.remaining, due.expires_at
        """,
        book.member_pk,
        book.now,
    )
    by_type: dict[str, list[tuple[int, int, datetime]]] = {}
    for r in rows:
        by_type.setdefault(r["point_type"], []).append((r["pk"], r["remaining"], r["expires_at"]))
    points_total = 0
    for point_type in sorted(by_type):
        lots = sorted(by_type[point_type])
        points = sum(p for _, p, _ in lots)
        if points == 0:
            continue
        points_total += points
        txn = await book.post(
            point_type,
            -points,
            type="EXPIRATION",
            source_type="EXPIRATION",
            comment="points expired",
            extra={
                "lots": [pk for pk, p, _ in lots if p][:_MAX_LOTS_IN_EXTRA],
                "expired_at": min(at for _, p, at in lots if p).isoformat(),
            },
        )
        await book.emit("points.expired", {"point_type": point_type, "points": points,
                                           "transaction_id": txn.id})
    if points_total:
        await _tiers.refresh(book)
    return len(rows), points_total


async def expire_lots(conn: asyncpg.Connection, program: LedgerProgram, now: datetime,
                      batch_size: int, max_batches: int) -> ExpiryReport:
    assert batch_size > 0 and max_batches > 0
    lots = points = skipped = batches = 0
    after = 0
    for _ in range(max_batches):
        pks = await conn.fetch(
            """
            SELECT DISTINCT l.member_pk FROM lots l JOIN members m ON m.pk = l.member_pk
            WHERE m.program = $1 AND NOT m.removed AND l.state = 'ACTIVE'
              AND l.expires_at <= $2 AND l.member_pk > $3
            ORDER BY l.member_pk LIMIT $4
            """,
            program.id, now, after, batch_size,
        )
        if not pks:
            break
        batches += 1
        for r in pks:
            async with conn.transaction():
                book = await Book.open_pk(conn, program, r["member_pk"], now, skip_locked=True)
                if book is None:
                    skipped += 1
                    continue
                n, p = await expire_member(book)
                lots += n
                points += p
        after = pks[-1]["member_pk"]
    return ExpiryReport(lots=lots, points=points, skipped_locked=skipped, batches=batches)


async def run_tier_periods(conn: asyncpg.Connection, program: LedgerProgram, now: datetime,
                           batch_size: int, max_batches: int) -> TierPeriodReport:
    assert batch_size > 0 and max_batches > 0
    members = skipped = 0
    changes: list[TierChange] = []
    after = 0
    for _ in range(max_batches):
        pks = await conn.fetch(
            """
            SELECT DISTINCT t.member_pk FROM tier_states t JOIN members m ON m.pk = t.member_pk
            WHERE m.program = $1 AND NOT m.removed AND t.member_pk > $3
              AND (t.period_end <= $2 OR t.pending_at <= $2)
            ORDER BY t.member_pk LIMIT $4
            """,
            program.id, now, after, batch_size,
        )
        if not pks:
            break
        for r in pks:
            async with conn.transaction():
                book = await Book.open_pk(conn, program, r["member_pk"], now, skip_locked=True)
                if book is None:
                    skipped += 1
                    continue
                changes.extend(await _tiers.catch_up(book))
                # A reset moved the group's points: other groups on that type look again.
                changes.extend(await _tiers.refresh(book))
                members += 1
        after = pks[-1]["member_pk"]
    return TierPeriodReport(members=members, skipped_locked=skipped, changes=tuple(changes))
