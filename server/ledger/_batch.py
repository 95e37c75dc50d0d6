"""The writes of a newly confirmed order, decided in memory and sent as one statement.

A confirm writes the order, a transaction per redemption and accrual, the balance rows, the lots
it takes from and adds, what it took from which lot, its promo code uses and its events. One at a
time that was some twenty round trips while the member's rows stayed locked; here the postings
are worked out against the locked `Book` (its balance chain) and written by one statement of
data-modifying CTEs. Transaction ids come from their sequence inside that statement (`ids`), so
lots, consumptions and events can point at transactions that do not exist yet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from arbiter.server.ledger._book import Book

__all__ = ["OrderBatch"]

# Every array is one column of rows; `i` columns are 1-based indexes into this statement's
# transactions (NULL: none). Rows are inserted in array order, so identities (transaction,
# outbox) increase in the order the postings were decided.
_FLUSH_SQL: Final = """
WITH ids AS MATERIALIZED (
    SELECT i, nextval(pg_get_serial_sequence('transactions', 'pk')) AS pk
    FROM generate_series(1, cardinality($10::text[])) AS i
), o AS (
    INSERT INTO orders (program, order_id, member_pk, state, payload_hash, result, total,
        created_at, confirmed_at, program_version)
    VALUES ($1, $2, $3, 'CONFIRMED', $5, $6::jsonb, $7, $8, $8, $9)
    RETURNING pk
), t AS (
    INSERT INTO transactions (pk, program, member_pk, member_id, point_type, type,
        balance_before, value, balance_after, source_type, source_id, external_id, created_at)
    OVERRIDING SYSTEM VALUE
    SELECT ids.pk, $1, $3, $4, x.point_type, x.type, x.before, x.value, x.after, 'ORDER', $2,
        $2, $8
    FROM unnest($10::text[], $11::text[], $12::bigint[], $13::bigint[], $14::bigint[])
        WITH ORDINALITY AS x(point_type, type, before, value, after, i)
    JOIN ids ON ids.i = x.i
    ORDER BY x.i
), b AS (
    UPDATE balances SET balance = x.balance, unbacked = x.unbacked,
        txn_count = balances.txn_count + x.added
    FROM unnest($15::text[], $16::bigint[], $17::bigint[], $18::bigint[])
        AS x(point_type, balance, unbacked, added)
    WHERE balances.member_pk = $3 AND balances.point_type = x.point_type
), taken AS (
    UPDATE lots SET remaining = lots.remaining - x.points
    FROM (
        SELECT c.lot_pk, sum(c.points)::bigint AS points
        FROM unnest($19::bigint[], $21::bigint[]) AS c(lot_pk, points)
        GROUP BY c.lot_pk
    ) AS x
    WHERE lots.pk = x.lot_pk
), c AS (
    INSERT INTO lot_consumptions (lot_pk, txn_pk, order_pk, points)
    SELECT x.lot_pk, ids.pk, o.pk, x.points
    FROM unnest($19::bigint[], $20::int[], $21::bigint[]) WITH ORDINALITY AS x(lot_pk, i, points, n)
    JOIN ids ON ids.i = x.i CROSS JOIN o
    ORDER BY x.n
), l AS (
    INSERT INTO lots (member_pk, point_type, state, points, remaining, accrued_at, expires_at,
        order_pk, timing, txn_pk, created_at)
    SELECT $3, x.point_type, x.state, x.points, x.remaining, $8, x.expires_at, o.pk, x.timing,
        ids.pk, $8
    FROM unnest($22::text[], $23::text[], $24::bigint[], $25::bigint[], $26::timestamptz[],
                $27::text[], $28::int[])
        WITH ORDINALITY AS x(point_type, state, points, remaining, expires_at, timing, i, n)
    CROSS JOIN o LEFT JOIN ids ON ids.i = x.i
    ORDER BY x.n
), u AS (
    INSERT INTO promo_code_uses (program, code, pool, member_pk, order_pk, state, created_at)
    SELECT $1, x.code, x.pool, $3, o.pk, 'CONFIRMED', $8
    FROM unnest($29::text[], $30::text[]) WITH ORDINALITY AS x(code, pool, n) CROSS JOIN o
    ORDER BY x.n
), e AS (
    INSERT INTO outbox (program, topic, member_id, payload, created_at)
    SELECT $1, x.topic, $4,
        CASE WHEN ids.pk IS NULL THEN x.payload::jsonb
             ELSE x.payload::jsonb || jsonb_build_object('transaction_id', ids.pk::text) END,
        $8
    FROM unnest($31::text[], $32::text[], $33::int[]) WITH ORDINALITY AS x(topic, payload, i, n)
    LEFT JOIN ids ON ids.i = x.i
    ORDER BY x.n
)
SELECT (SELECT pk FROM o) AS order_pk, ARRAY(SELECT pk FROM ids ORDER BY i) AS txn_pks
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
                    program_version: int | None) -> int:
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
        )
        assert row is not None and len(row["txn_pks"]) == len(txns)
        order_pk: int = row["order_pk"]
        return order_pk
