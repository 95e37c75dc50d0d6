"""The writes of a newly confirmed order, decided in memory and sent as one statement.

A confirm writes the order, a transaction per redemption and accrual, the balance rows, the lots
it takes from and adds, what it took from which lot, its promo code uses and its events. One at a
time that was some twenty round trips while the member's rows stayed locked; here the postings
are worked out against the locked `Book` (its balance chain) and written by
one call of a server-side function (migration 0003). Transaction ids come from their sequence
inside that call, so lots, consumptions and events can point at transactions written by it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from arbiter.server.ledger._book import Book

__all__ = ["OrderBatch"]

# Migration 0003's `ledger_write_order` does the writing: its statements keep generic plans for
# the connection's life, where this statement, sent as nine data-modifying CTEs, was planned
# afresh on every call (about a third of PostgreSQL's CPU per confirm).
_FLUSH_SQL: Final = """
WITH w AS (SELECT order_pk, txn_pks FROM ledger_write_order(
    $1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9,
    $10, $11, $12, $13, $14,
    $15, $16, $17, $18,
    $19, $20, $21,
    $22, $23, $24, $25, $26, $27, $28,
    $29, $30,
    $31, $32, $33)
), i AS (
    INSERT INTO order_inputs (order_pk, request, member, code_usage, calculated_at)
    SELECT w.order_pk, $34::bytea, $35::jsonb, $36::jsonb, $8 FROM w WHERE $34::bytea <> ''
)
SELECT order_pk, txn_pks FROM w
"""


class OrderBatch:
    """The postings of one new CONFIRMED order of `book`'s member, flushed by one statement.

    Each posting moves the Book's in-memory balance chain at once (as `Book.post` does), so the
    Book stays true for whatever runs after the flush in the same transaction.
    """

    def __init__(self, book: Book, order_id: str) -> None:
        self._book = book
        self._order_id = order_id
        self._txns: list[tuple[str, str, int, int, int]] = []
        self._txn_counts: dict[str, int] = {}
        self._takes: list[tuple[int, int, int]] = []  # (lot pk, txn index, points)
        self._lots: list[tuple[str, str, int, int, datetime | None, str, int | None]] = []
        self._codes: list[tuple[str, str]] = []
        self._events: list[tuple[str, str, int | None]] = []

    def _txn(self, point_type: str, type: str, value: int, unbacked_delta: int) -> int:
        before, after = self._book.advance(point_type, value, unbacked_delta)
        self._txns.append((point_type, type, before, value, after))
        self._txn_counts[point_type] = self._txn_counts.get(point_type, 0) + 1
        return len(self._txns)

    def emit(self, topic: str, payload: dict[str, Any], txn: int | None = None) -> None:
        """An event; `txn` (an index this batch returned) adds its `transaction_id`."""
        self._events.append((topic, self._book.event_json(payload), txn))

    def redeem(self, point_type: str, points: int, lots: list[tuple[int, int]]) -> int:
        """A REDEMPTION of `points` taken from `lots` ((lot pk, points), chosen by the caller
        among the free lots); returns the transaction's index."""
        assert points > 0 and sum(p for _, p in lots) == points, (point_type, points, lots)
        txn = self._txn(point_type, "REDEMPTION", -points, 0)
        self._takes.extend((lot_pk, txn, part) for lot_pk, part in lots)
        return txn

    def accrue(self, point_type: str, points: int, timing: str) -> int:
        """An ACCRUAL and its lot; the points pay back unbacked debt first (`Book.credit`)."""
        assert points > 0, points
        repay = min(points, self._book.unbacked(point_type))
        txn = self._txn(point_type, "ACCRUAL", points, -repay)
        cfg = self._book.program.point_type(point_type)
        expires_at = cfg.expiry(self._book.now, self._book.program.tz) if cfg else None
        self._lots.append((point_type, "ACTIVE", points, points - repay, expires_at, timing, txn))
        return txn

    def accrue_pending(self, point_type: str, points: int, timing: str) -> None:
        """A PENDING lot: no transaction, in no balance until delivery."""
        assert points > 0, points
        self._lots.append((point_type, "PENDING", points, points, None, timing, None))

    def use_code(self, code: str, pool: str) -> None:
        """A CONFIRMED use of `code` (upper-case; its promo_codes row exists and is locked)."""
        self._codes.append((code, pool))

    def expired_by_new_lots(self) -> dict[str, int]:
        """Per type, remaining points of the new ACTIVE lots that are expired already (a type
        deactivated before now): live balances leave them out."""
        now = self._book.now
        out: dict[str, int] = {}
        for point_type, state, _points, remaining, expires_at, _timing, _txn in self._lots:
            if state == "ACTIVE" and expires_at is not None and expires_at <= now:
                out[point_type] = out.get(point_type, 0) + remaining
        return out

    def value_by_type(self) -> dict[str, int]:
        """Per type, the sum of the values this batch posts."""
        out: dict[str, int] = {}
        for point_type, _type, _before, value, _after in self._txns:
            out[point_type] = out.get(point_type, 0) + value
        return out

    async def flush(self, *, payload_hash: str, result_json: str, total: int,
                    program_version: int | None, request_bytes: bytes = b"",
                    member_json: str | None = None, usage_json: str = "{}") -> int:
        """Write the order and every posting; returns the order's pk."""
        book = self._book
        txns, takes, lots = self._txns, self._takes, self._lots
        counted = sorted(self._txn_counts)
        row = await book.conn.fetchrow(
            _FLUSH_SQL,
            book.program.id,
            self._order_id,
            book.member_pk,
            book.member_id,
            payload_hash,
            result_json,
            total,
            book.now,
            program_version,
            [t[0] for t in txns],
            [t[1] for t in txns],
            [t[2] for t in txns],
            [t[3] for t in txns],
            [t[4] for t in txns],
            counted,
            [book.balance(t) for t in counted],
            [book.unbacked(t) for t in counted],
            [self._txn_counts[t] for t in counted],
            [t[0] for t in takes],
            [t[1] for t in takes],
            [t[2] for t in takes],
            [lot[0] for lot in lots],
            [lot[1] for lot in lots],
            [lot[2] for lot in lots],
            [lot[3] for lot in lots],
            [lot[4] for lot in lots],
            [lot[5] for lot in lots],
            [lot[6] for lot in lots],
            [c[0] for c in self._codes],
            [c[1] for c in self._codes],
            [e[0] for e in self._events],
            [e[1] for e in self._events],
            [e[2] for e in self._events],
            request_bytes,
            member_json,
            usage_json,
        )
        assert row is not None and len(row["txn_pks"]) == len(txns)
        order_pk: int = row["order_pk"]
        return order_pk
