"""One member's locked balances inside a PostgreSQL transaction: the only way points move.

Every write of a member first locks all of the member's `balances` rows, in point type order
(a fixed order, so two writers never deadlock), then reads, decides and writes. Reads of
available points compare expiry and hold instants with `now`, so nothing waits for a job.
Invariant kept per (member, type): balance = sum(remaining of ACTIVE lots) - unbacked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from arbiter.server.ledger import _outbox
from arbiter.server.ledger._config import LedgerProgram
from arbiter.server.ledger._types import Transaction
from arbiter.server.ledger.errors import NotFound

__all__ = ["TXN_COLUMNS", "Book", "Debit", "choose_lots", "lock_member", "row_to_transaction"]

TXN_COLUMNS = (
    "pk, external_id, created_at, type, member_id, point_type, balance_before, value,"
    " balance_after, source_type, source_id, comment, extra::text AS extra"
)

_AVAILABLE_SQL = """
SELECT b.point_type, b.balance,
       COALESCE((SELECT sum(l.remaining) FROM lots l
                 WHERE l.member_pk = b.member_pk AND l.point_type = b.point_type
                   AND l.state = 'ACTIVE' AND l.expires_at <= $2), 0)::bigint AS expired,
       COALESCE((SELECT sum(h.points) FROM holds h
                 WHERE h.member_pk = b.member_pk AND h.point_type = b.point_type
                   AND h.state = 'HELD' AND h.hold_until > $2), 0)::bigint AS held
FROM balances b
WHERE b.member_pk = $1
"""

# Lots a debit may take from, best first: the preferred order's own lots, then soonest-expiring
# (never-expiring last), then oldest. `free` leaves out what active holds earmark.
_FREE_LOTS_SQL = """
SELECT l.pk, l.expires_at, l.remaining - COALESCE(e.points, 0) AS free
FROM lots l
LEFT JOIN (
    SELECT hl.lot_pk, sum(hl.points)::bigint AS points
    FROM hold_lots hl JOIN holds h ON h.pk = hl.hold_pk
    WHERE h.member_pk = $1 AND h.point_type = $2 AND h.state = 'HELD' AND h.hold_until > $3
    GROUP BY hl.lot_pk
) e ON e.lot_pk = l.pk
WHERE l.member_pk = $1 AND l.point_type = $2 AND l.state = 'ACTIVE' AND l.remaining > 0
  AND (l.expires_at IS NULL OR l.expires_at > $3)
ORDER BY COALESCE(l.order_pk = $4, false) DESC, l.expires_at ASC NULLS LAST, l.accrued_at, l.pk
"""

# Lock an enrolled member by id (migration 0005's `ledger_lock_member`, the one definition of the
# lock, which `ledger_lock_prefetch` calls too): create the balance rows of types it lacks (first,
# as `open_pk` does, so every writer takes its locks in the same order), then lock its rows in
# point type order, and lock rows another transaction created meanwhile.
_LOCK_SQL = "SELECT ledger_lock_member($1, $2, $3)"


async def lock_member(conn: asyncpg.Connection, program: LedgerProgram, member_id: str
                      ) -> int | None:
    """Lock every balance row of the enrolled member `member_id` (creating the rows of the
    program's types it lacks); its pk, or None when there is no such member.

    The member may have been removed while we waited: the caller reads the member row again in
    a later statement (a fresh snapshot), as `Book.open` does.
    """
    member_pk: int | None = await conn.fetchval(
        _LOCK_SQL, program.id, member_id, sorted(program.point_types)
    )
    return member_pk


def choose_lots(
    free_lots: Iterable[tuple[int, datetime | None, int]], points: int
) -> list[tuple[int, int]]:
    """(lot pk, points) taken from `free_lots` (best first: (pk, expires_at, free)) to cover
    `points`, or as much of it as they hold."""
    taken: list[tuple[int, int]] = []
    left = points
    for lot_pk, _expires, free in free_lots:
        if left == 0:
            break
        part = min(free, left)
        if part > 0:
            taken.append((lot_pk, part))
            left -= part
    return taken


def row_to_transaction(row: Mapping[str, Any]) -> Transaction:
    return Transaction(
        id=str(row["pk"]),
        external_id=row["external_id"],
        created_at=row["created_at"],
        type=row["type"],
        member_id=row["member_id"],
        point_type=row["point_type"],
        balance_before=row["balance_before"],
        value=row["value"],
        balance_after=row["balance_after"],
        source_type=row["source_type"],
        source_id=row["source_id"],
        comment=row["comment"],
        extra=row["extra"],
    )


def _extra_json(extra: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(extra or {}), sort_keys=True, ensure_ascii=False)


@dataclass(slots=True)
class _Balance:
    balance: int
    unbacked: int


@dataclass(frozen=True, slots=True)
class Debit:
    """What a debit did: its transaction (None when nothing was taken) and what it could not."""

    txn: Transaction | None
    taken: int
    shortfall: int
    lots: tuple[tuple[int, int], ...]  # (lot pk, points) taken from lots, in order
    unbacked: int  # points taken beyond every lot (a type that allows a negative balance)


class Book:
    """A member locked for one transaction; build it with `Book.open` inside a transaction."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        program: LedgerProgram,
        member_pk: int,
        member_id: str,
        registered_at: datetime,
        now: datetime,
        balances: dict[str, _Balance],
    ) -> None:
        self.conn = conn
        self.program = program
        self.member_pk = member_pk
        self.member_id = member_id
        self.registered_at = registered_at
        self.now = now
        self._balances = balances
        # Point types whose balance changed: the tiers of their groups are looked at again.
        self.touched: set[str] = set()

    # -- locking -------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls, conn: asyncpg.Connection, program: LedgerProgram, member_id: str, now: datetime
    ) -> Book:
        """Lock the enrolled member `member_id`; NotFound when there is none."""
        member_pk = await lock_member(conn, program, member_id)
        if member_pk is None:
            raise NotFound("member", member_id)
        rows = await conn.fetch(
            """
            SELECT m.member_id, m.registered_at, m.removed, b.point_type, b.balance, b.unbacked
            FROM members m LEFT JOIN balances b ON b.member_pk = m.pk
            WHERE m.pk = $1
            """,
            member_pk,
        )
        if not rows or rows[0]["removed"]:  # removed while we waited for its lock
            raise NotFound("member", member_id)
        balances = {
            r["point_type"]: _Balance(r["balance"], r["unbacked"])
            for r in rows
            if r["point_type"] is not None
        }
        first = rows[0]
        return cls(conn, program, member_pk, first["member_id"], first["registered_at"], now,
                   balances)

    @classmethod
    def from_locked(
        cls,
        conn: asyncpg.Connection,
        program: LedgerProgram,
        member_pk: int,
        member_id: str,
        registered_at: datetime,
        now: datetime,
        balances: Mapping[str, tuple[int, int]],
    ) -> Book:
        """A Book over a member the caller locked (`lock_member`) and read after the lock:
        `balances` maps each point type to (balance, unbacked)."""
        return cls(conn, program, member_pk, member_id, registered_at, now,
                   {t: _Balance(b, u) for t, (b, u) in balances.items()})

    @classmethod
    async def open_pk(
        cls,
        conn: asyncpg.Connection,
        program: LedgerProgram,
        member_pk: int,
        now: datetime,
        *,
        skip_locked: bool = False,
    ) -> Book | None:
        """Lock member `member_pk`; None if it was removed, or, with `skip_locked` (jobs skip a
        member that a request is writing), if any of its rows is locked by someone else."""
        await conn.execute(
            """
            INSERT INTO balances (member_pk, point_type)
            SELECT $1, t FROM unnest($2::text[]) AS t ORDER BY t
            ON CONFLICT DO NOTHING
            """,
            member_pk,
            sorted(program.point_types),
        )
        lock = "FOR UPDATE SKIP LOCKED" if skip_locked else "FOR UPDATE"
        rows = await conn.fetch(
            "SELECT point_type, balance, unbacked FROM balances WHERE member_pk = $1"
            f" ORDER BY point_type {lock}",
            member_pk,
        )
        if skip_locked:
            total = await conn.fetchval(
                "SELECT count(*) FROM balances WHERE member_pk = $1", member_pk
            )
            if len(rows) < total:
                return None  # the caller's transaction ends and lets go of the rows it got
        member = await conn.fetchrow(
            "SELECT member_id, registered_at, removed FROM members WHERE pk = $1", member_pk
        )
        if member is None or member["removed"]:
            return None
        balances = {r["point_type"]: _Balance(r["balance"], r["unbacked"]) for r in rows}
        return cls(
            conn, program, member_pk, member["member_id"], member["registered_at"], now, balances
        )

    # -- reading -------------------------------------------------------------------------------

    def balance(self, point_type: str) -> int:
        """The ledger balance (the sum of the type's transactions)."""
        b = self._balances.get(point_type)
        return 0 if b is None else b.balance

    def unbacked(self, point_type: str) -> int:
        """Points of the type spent beyond every lot (a type that allows a negative balance)."""
        b = self._balances.get(point_type)
        return 0 if b is None else b.unbacked

    def advance(self, point_type: str, value: int, unbacked_delta: int = 0) -> tuple[int, int]:
        """Move the type's balance by `value` in memory, for a transaction the caller writes;
        returns (balance_before, balance_after). The type's row must be locked (`_ensure`)."""
        b = self._balances[point_type]
        before = b.balance
        b.balance = before + value
        b.unbacked += unbacked_delta
        assert b.unbacked >= 0, (point_type, b.unbacked)
        self.touched.add(point_type)
        return before, b.balance

    async def standing(self) -> dict[str, tuple[int, int, int]]:
        """Per type: (balance, points of lots expired at `now` not yet written off, held)."""
        rows = await self.conn.fetch(_AVAILABLE_SQL, self.member_pk, self.now)
        return {r["point_type"]: (r["balance"], r["expired"], r["held"]) for r in rows}

    async def available(self) -> dict[str, int]:
        """Per type: balance less lots expired at `now` (not yet written off) less active holds."""
        return {t: bal - exp - held for t, (bal, exp, held) in (await self.standing()).items()}

    async def live(self) -> dict[str, int]:
        """Per type: balance less lots expired at `now`; what tiers measure (holds still count)."""
        return {t: bal - exp for t, (bal, exp, _held) in (await self.standing()).items()}

    async def available_of(self, point_type: str) -> int:
        return (await self.available()).get(point_type, 0)

    async def free_lots(
        self, point_type: str, prefer_order_pk: int | None = None
    ) -> list[tuple[int, datetime | None, int]]:
        rows = await self.conn.fetch(
            _FREE_LOTS_SQL, self.member_pk, point_type, self.now, prefer_order_pk
        )
        return [(r["pk"], r["expires_at"], r["free"]) for r in rows if r["free"] > 0]

    # -- writing -------------------------------------------------------------------------------

    async def _ensure(self, point_type: str) -> _Balance:
        b = self._balances.get(point_type)
        if b is None:
            # A type the program no longer lists (or a new one): the row is ours once inserted.
            await self.conn.execute(
                "INSERT INTO balances (member_pk, point_type) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                self.member_pk,
                point_type,
            )
            row = await self.conn.fetchrow(
                "SELECT balance, unbacked FROM balances WHERE member_pk = $1 AND point_type = $2"
                " FOR UPDATE",
                self.member_pk,
                point_type,
            )
            assert row is not None
            b = self._balances[point_type] = _Balance(row["balance"], row["unbacked"])
        return b

    async def post(
        self,
        point_type: str,
        value: int,
        *,
        type: str,
        source_type: str,
        source_id: str = "",
        external_id: str = "",
        comment: str = "",
        extra: Mapping[str, Any] | None = None,
        request_key: str | None = None,
        request_hash: str | None = None,
        unbacked_delta: int = 0,
    ) -> Transaction:
        """Append one transaction to the type's chain and move the balance row with it (one
        statement)."""
        b = await self._ensure(point_type)
        before, after = self.advance(point_type, value, unbacked_delta)
        row = await self.conn.fetchrow(
            f"""
            WITH moved AS (
                UPDATE balances SET balance = $8, unbacked = $17, txn_count = txn_count + 1
                WHERE member_pk = $2 AND point_type = $4
            )
            INSERT INTO transactions (program, member_pk, member_id, point_type, type,
                balance_before, value, balance_after, source_type, source_id, external_id,
                request_key, request_hash, comment, extra, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb, $16)
            RETURNING {TXN_COLUMNS}
            """,
            self.program.id,
            self.member_pk,
            self.member_id,
            point_type,
            type,
            before,
            value,
            after,
            source_type,
            source_id,
            external_id,
            request_key,
            request_hash,
            comment,
            _extra_json(extra),
            self.now,
            b.unbacked,
        )
        assert row is not None
        return row_to_transaction(row)

    async def add_lot(
        self,
        point_type: str,
        points: int,
        *,
        pending: bool = False,
        order_pk: int | None = None,
        timing: str = "",
        txn_pk: int | None = None,
        remaining: int | None = None,
    ) -> int:
        """Insert a lot accrued at `now` (a pending lot gets its expiry on delivery)."""
        cfg = self.program.point_type(point_type)
        expires_at = None
        if not pending and cfg is not None:
            expires_at = cfg.expiry(self.now, self.program.tz)
        pk: int = await self.conn.fetchval(
            """
            INSERT INTO lots (member_pk, point_type, state, points, remaining, accrued_at,
                expires_at, order_pk, timing, txn_pk, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $6)
            RETURNING pk
            """,
            self.member_pk,
            point_type,
            "PENDING" if pending else "ACTIVE",
            points,
            points if remaining is None else remaining,
            self.now,
            expires_at,
            order_pk,
            timing,
            txn_pk,
        )
        return pk

    async def credit(
        self,
        point_type: str,
        points: int,
        *,
        type: str,
        source_type: str,
        source_id: str = "",
        external_id: str = "",
        comment: str = "",
        extra: Mapping[str, Any] | None = None,
        request_key: str | None = None,
        request_hash: str | None = None,
        order_pk: int | None = None,
        timing: str = "",
    ) -> Transaction:
        """New points: a transaction and a lot; points first pay back any unbacked debt."""
        assert points > 0, points
        b = await self._ensure(point_type)
        repay = min(points, b.unbacked)
        txn = await self.post(
            point_type,
            points,
            type=type,
            source_type=source_type,
            source_id=source_id,
            external_id=external_id,
            comment=comment,
            extra=extra,
            request_key=request_key,
            request_hash=request_hash,
            unbacked_delta=-repay,
        )
        await self.add_lot(
            point_type,
            points,
            order_pk=order_pk,
            timing=timing,
            txn_pk=int(txn.id),
            remaining=points - repay,
        )
        return txn

    async def debit(
        self,
        point_type: str,
        points: int,
        *,
        type: str,
        source_type: str,
        allow_negative: bool,
        source_id: str = "",
        external_id: str = "",
        comment: str = "",
        extra: Mapping[str, Any] | None = None,
        request_key: str | None = None,
        request_hash: str | None = None,
        order_pk: int | None = None,
        prefer_order_pk: int | None = None,
        earmarked: list[tuple[int, int]] | None = None,
        first: list[tuple[int, int]] | None = None,
    ) -> Debit:
        """Take `points` from free lots (or from `earmarked` lots exactly, when a hold is posted).

        `first` lists (lot, points) taken before anything else whatever `available` says (a
        reversal takes its own accrual's lots even when they expired unwritten). Without
        `allow_negative` at most the available points are taken after that; the rest is the
        shortfall, reported in the transaction's `extra` and to the caller.
        """
        assert points > 0, points
        taken_lots: list[tuple[int, int]] = []
        if earmarked is not None:
            take = sum(p for _, p in earmarked)
            assert take == points, (take, points)
            taken_lots = list(earmarked)
        else:
            taken_lots = list(first or [])
            upfront = sum(p for _, p in taken_lots)
            assert upfront <= points, (upfront, points)
            available = await self.available_of(point_type)
            rest = points - upfront
            take = upfront + (rest if allow_negative else min(rest, max(0, available)))
            free_lots = await self.free_lots(point_type, prefer_order_pk)
            taken_lots += choose_lots(free_lots, take - upfront)
        from_lots = sum(p for _, p in taken_lots)
        unbacked = take - from_lots
        assert unbacked == 0 or allow_negative, (point_type, take, from_lots)
        shortfall = points - take
        if take == 0:
            return Debit(None, 0, shortfall, (), 0)
        if shortfall:
            extra = {**(extra or {}), "requested": points, "shortfall": shortfall}
        txn = await self.post(
            point_type,
            -take,
            type=type,
            source_type=source_type,
            source_id=source_id,
            external_id=external_id,
            comment=comment,
            extra=extra,
            request_key=request_key,
            request_hash=request_hash,
            unbacked_delta=unbacked,
        )
        if taken_lots:
            await self.conn.executemany(
                "UPDATE lots SET remaining = remaining - $2 WHERE pk = $1", taken_lots
            )
            await self.conn.executemany(
                "INSERT INTO lot_consumptions (lot_pk, txn_pk, order_pk, points)"
                " VALUES ($1, $2, $3, $4)",
                [(lot, int(txn.id), order_pk, p) for lot, p in taken_lots],
            )
        return Debit(txn, take, shortfall, tuple(taken_lots), unbacked)

    async def restore(
        self,
        point_type: str,
        points: int,
        order_pk: int,
        *,
        type: str,
        source_id: str,
        external_id: str,
        comment: str = "",
        extra: Mapping[str, Any] | None = None,
    ) -> Transaction:
        """Give redeemed points back to the lots the order took them from, latest taken first.

        Points of a lot whose expiry is written already expire again at once (an EXPIRATION);
        points of a lot past its expiry but not yet written off wait for the expiry job, and
        `available` leaves them out meanwhile. What no lot takes back is credited as a new lot.
        """
        assert points > 0, points
        rows = await self.conn.fetch(
            """
            SELECT c.pk, c.lot_pk, c.points - c.restored AS open, l.state
            FROM lot_consumptions c JOIN lots l ON l.pk = c.lot_pk
            WHERE c.order_pk = $1 AND l.point_type = $2 AND c.points > c.restored
            ORDER BY c.pk DESC
            """,
            order_pk,
            point_type,
        )
        left = points
        to_active: list[tuple[int, int]] = []
        to_expired: list[tuple[int, int]] = []
        consumed: list[tuple[int, int]] = []
        for row in rows:
            if left == 0:
                break
            part = min(row["open"], left)
            consumed.append((row["pk"], part))
            (to_expired if row["state"] == "EXPIRED" else to_active).append((row["lot_pk"], part))
            left -= part
        b = await self._ensure(point_type)
        # Beyond the lots (a redemption that went negative): pay back the debt, then a new lot.
        repay = min(left, b.unbacked)
        fresh = left - repay
        txn = await self.post(
            point_type,
            points,
            type=type,
            source_type="ORDER",
            source_id=source_id,
            external_id=external_id,
            comment=comment,
            extra=extra,
            unbacked_delta=-repay,
        )
        if consumed:
            await self.conn.executemany(
                "UPDATE lot_consumptions SET restored = restored + $2 WHERE pk = $1", consumed
            )
        if to_active:
            await self.conn.executemany(
                "UPDATE lots SET remaining = remaining + $2 WHERE pk = $1", to_active
            )
        if fresh:
            await self.add_lot(point_type, fresh, order_pk=order_pk, txn_pk=int(txn.id))
        expired_again = sum(p for _, p in to_expired)
        if expired_again:
            await self.conn.executemany(
                "UPDATE lots SET expired_points = expired_points + $2 WHERE pk = $1", to_expired
            )
            await self.post(
                point_type,
                -expired_again,
                type="EXPIRATION",
                source_type="EXPIRATION",
                source_id=source_id,
                comment="points given back to lots that had expired",
                extra={"lots": [lot for lot, _ in to_expired]},
            )
        return txn

    def event_json(self, payload: Mapping[str, Any]) -> str:
        """An event's payload as stored: the program and member, then `payload`."""
        return _outbox.event_json(self.program.id, self.member_id, payload)

    async def emit(self, topic: str, payload: Mapping[str, Any]) -> None:
        """Write an event to the outbox in this transaction (docs/contract.md, Events)."""
        await _outbox.emit(self.conn, self.program.id, self.member_id, topic, payload, self.now)
