"""Members: enroll, remove, read (balances, tiers), list transactions and expiring lots."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from arbiter.server.ledger import _tiers
from arbiter.server.ledger._book import TXN_COLUMNS, Book, row_to_transaction
from arbiter.server.ledger._config import LedgerProgram
from arbiter.server.ledger._types import (
    BalanceInfo,
    ExpiringLot,
    MemberInfo,
    TierChange,
    TransactionPage,
)
from arbiter.server.ledger.errors import InvalidArgument, NotFound

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_ID_CHARS",
    "MAX_PAGE_SIZE",
    "MemberRow",
    "TransactionFilter",
    "enroll",
    "enroll_bulk",
    "expiring_lots",
    "find_member",
    "list_transactions",
    "member_infos",
    "remove",
    "remove_batch",
    "tier_history",
    "validate_id",
    "within_days_or_default",
]

MAX_ID_CHARS = 256
DEFAULT_EXPIRING_DAYS = 30
MAX_EXPIRING_DAYS = 36_600
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1_000
DEFAULT_LOT_LIMIT = 100
MAX_LOT_LIMIT = 1_000

MemberRow = tuple[int, str, datetime]  # (pk, member_id, registered_at)

_VIEW_SQL = """
SELECT b.member_pk, b.point_type, b.balance,
       COALESCE((SELECT sum(l.remaining) FROM lots l
                 WHERE l.member_pk = b.member_pk AND l.point_type = b.point_type
                   AND l.state = 'ACTIVE' AND l.expires_at <= $2), 0)::bigint AS expired,
       COALESCE((SELECT sum(h.points) FROM holds h
                 WHERE h.member_pk = b.member_pk AND h.point_type = b.point_type
                   AND h.state = 'HELD' AND h.hold_until > $2), 0)::bigint AS held,
       COALESCE((SELECT sum(l.remaining) FROM lots l
                 WHERE l.member_pk = b.member_pk AND l.point_type = b.point_type
                   AND l.state = 'PENDING'), 0)::bigint AS pending,
       COALESCE((SELECT sum(l.remaining - COALESCE((
                     SELECT sum(hl.points) FROM hold_lots hl JOIN holds h ON h.pk = hl.hold_pk
                     WHERE hl.lot_pk = l.pk AND h.state = 'HELD' AND h.hold_until > $2), 0))
                 FROM lots l
                 WHERE l.member_pk = b.member_pk AND l.point_type = b.point_type
                   AND l.state = 'ACTIVE' AND l.expires_at > $2 AND l.expires_at <= $3),
                0)::bigint AS expiring
FROM balances b
WHERE b.member_pk = ANY($1::bigint[])
"""


def validate_id(value: str, field: str) -> None:
    if not value:
        raise InvalidArgument.field(field, "must not be empty")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument.field(field, f"must be at most {MAX_ID_CHARS} characters")


def within_days_or_default(days: int, field: str) -> int:
    if days < 0:
        raise InvalidArgument.field(field, "must not be negative")
    if days > MAX_EXPIRING_DAYS:
        raise InvalidArgument.field(field, f"must be at most {MAX_EXPIRING_DAYS}")
    return days or DEFAULT_EXPIRING_DAYS


async def find_member(conn: asyncpg.Connection, program: LedgerProgram, member_id: str
                      ) -> MemberRow:
    row = await conn.fetchrow(
        "SELECT pk, member_id, registered_at FROM members"
        " WHERE program = $1 AND member_id = $2 AND NOT removed",
        program.id,
        member_id,
    )
    if row is None:
        raise NotFound("member", member_id)
    return (row["pk"], row["member_id"], row["registered_at"])


async def enroll(conn: asyncpg.Connection, program: LedgerProgram, member_id: str,
                 registered_at: datetime, now: datetime) -> tuple[MemberRow, bool]:
    """Enroll one member (inside the caller's transaction); idempotent by member id."""
    pk = await conn.fetchval(
        """
        INSERT INTO members (program, member_id, registered_at, created_at)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (program, member_id) WHERE NOT removed DO NOTHING
        RETURNING pk
        """,
        program.id,
        member_id,
        registered_at,
        now,
    )
    if pk is None:
        return await find_member(conn, program, member_id), False
    book = await Book.open_pk(conn, program, pk, now)
    assert book is not None
    await book.emit("member.enrolled", {"registered_at": registered_at.isoformat()})
    for cfg in program.point_types.values():
        if cfg.kind != "STANDARD" or not cfg.usable_at(now) or cfg.initial_balance <= 0:
            continue
        txn = await book.credit(
            cfg.id,
            cfg.initial_balance,
            type="ACCRUAL",
            source_type="ENROLLMENT",
            source_id=member_id,
            comment="initial balance",
        )
        await book.emit(
            "points.accrued",
            {"point_type": cfg.id, "points": cfg.initial_balance, "source_type": "ENROLLMENT",
             "transaction_id": txn.id},
        )
    await _tiers.init_member(book)
    return (pk, member_id, registered_at), True


async def remove(conn: asyncpg.Connection, program: LedgerProgram, member_id: str,
                 now: datetime) -> None:
    """Remove a member: its active holds are voided and its held code uses released."""
    book = await Book.open(conn, program, member_id, now)
    await conn.execute(
        "UPDATE holds SET state = 'VOIDED', closed_at = $2 WHERE member_pk = $1 AND state = 'HELD'",
        book.member_pk,
        now,
    )
    await conn.execute(
        "UPDATE promo_code_uses SET state = 'RELEASED', closed_at = $2"
        " WHERE member_pk = $1 AND state = 'HELD'",
        book.member_pk,
        now,
    )
    await conn.execute(
        "UPDATE members SET removed = true, removed_at = $2 WHERE pk = $1", book.member_pk, now
    )


async def member_infos(conn: asyncpg.Connection, program: LedgerProgram,
                       members: Sequence[MemberRow], now: datetime, within_days: int
                       ) -> list[MemberInfo]:
    """Balances and tiers of several members at `now`, in the order given."""
    pks = [m[0] for m in members]
    horizon = now + timedelta(days=within_days)
    rows = await conn.fetch(_VIEW_SQL, pks, now, horizon)
    by_member: dict[int, dict[str, Any]] = {pk: {} for pk in pks}
    for r in rows:
        by_member[r["member_pk"]][r["point_type"]] = r
    tier_rows = await conn.fetch(
        "SELECT member_pk, tier_group, tier, period_start, period_end, pending_tier, pending_at"
        " FROM tier_states WHERE member_pk = ANY($1::bigint[])",
        pks,
    )
    tiers_by_member: dict[int, dict[str, _tiers.TierRow]] = {pk: {} for pk in pks}
    for r in tier_rows:
        tiers_by_member[r["member_pk"]][r["tier_group"]] = _tiers.TierRow.from_record(r)
    infos = []
    for pk, member_id, registered_at in members:
        balances = []
        live: dict[str, int] = {}
        for point_type in program.point_types:
            r = by_member[pk].get(point_type)
            if r is None:
                balances.append(BalanceInfo(point_type, 0, 0, 0, 0, 0))
                live[point_type] = 0
                continue
            live[point_type] = r["balance"] - r["expired"]
            balances.append(
                BalanceInfo(
                    point_type=point_type,
                    available=r["balance"] - r["expired"] - r["held"],
                    held=r["held"],
                    pending=r["pending"],
                    expiring_soon=r["expiring"],
                    balance=r["balance"],
                )
            )
        statuses = [
            await _tiers.tier_status(conn, pk, group, tiers_by_member[pk].get(group.id),
                                     live.get(group.point_type, 0), now)
            for group in program.tier_groups
        ]
        infos.append(MemberInfo(member_id, registered_at, tuple(balances), tuple(statuses)))
    return infos


def _encode_token(member_id: str, point_type: str, after: int) -> str:
    raw = json.dumps([member_id, point_type, after], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, member_id: str, point_type: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        m, t, after = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument.field("page_token", "not a token this server issued") from exc
    if m != member_id or t != point_type or not isinstance(after, int):
        raise InvalidArgument.field("page_token", "belongs to another query")
    return after


@dataclass(frozen=True, slots=True)
class TransactionFilter:
    """What ListTransactions keeps: empty strings and None bounds keep everything."""

    point_type: str = ""
    type: str = ""
    source_type: str = ""
    start: datetime | None = None
    end: datetime | None = None

    def key(self) -> str:
        """The filter as a page token carries it (a token belongs to one query)."""
        return json.dumps([self.point_type, self.type, self.source_type,
                           self.start.isoformat() if self.start else "",
                           self.end.isoformat() if self.end else ""], separators=(",", ":"))


async def list_transactions(conn: asyncpg.Connection, program: LedgerProgram, member_id: str,
                            point_type: str, page_size: int, page_token: str,
                            filters: TransactionFilter | None = None) -> TransactionPage:
    """A member's transactions (or, `member_id` empty, the program's), oldest first."""
    if page_size < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    f = filters or TransactionFilter(point_type=point_type)
    if filters is None or not (f.type or f.source_type or f.start or f.end):
        key = f.point_type  # the token of a query by point type alone stays as it was
    else:
        key = f.key()
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = _decode_token(page_token, member_id, key) if page_token else 0
    where = ["pk > $1", "($2 = '' OR point_type = $2)", "($3 = '' OR type = $3)",
             "($4 = '' OR source_type = $4)",
             "($5::timestamptz IS NULL OR created_at >= $5)",
             "($6::timestamptz IS NULL OR created_at < $6)"]
    args: list[Any] = [after, f.point_type, f.type, f.source_type, f.start, f.end, size + 1]
    if member_id:
        pk, _, _ = await find_member(conn, program, member_id)
        where.append("member_pk = $8")
        args.append(pk)
    else:
        where.append("program = $8")
        args.append(program.id)
    rows = await conn.fetch(
        f"SELECT {TXN_COLUMNS} FROM transactions WHERE {' AND '.join(where)}"
        " ORDER BY pk LIMIT $7",
        *args,
    )
    page = [row_to_transaction(r) for r in rows[:size]]
    token = _encode_token(member_id, key, int(page[-1].id)) if len(rows) > size else ""
    return TransactionPage(tuple(page), token)


async def expiring_lots(conn: asyncpg.Connection, program: LedgerProgram, member_id: str,
                        point_type: str, within_days: int, limit: int, descending: bool,
                        now: datetime) -> list[ExpiringLot]:
    days = within_days_or_default(within_days, "within_days")
    if limit < 0:
        raise InvalidArgument.field("limit", "must not be negative")
    count = min(limit or DEFAULT_LOT_LIMIT, MAX_LOT_LIMIT)
    pk, _, _ = await find_member(conn, program, member_id)
    order = "DESC" if descending else "ASC"
    rows = await conn.fetch(
        f"""
        SELECT point_type, expires_at, free FROM (
            SELECT l.pk, l.point_type, l.expires_at, l.remaining - COALESCE((
                       SELECT sum(hl.points) FROM hold_lots hl JOIN holds h ON h.pk = hl.hold_pk
                       WHERE hl.lot_pk = l.pk AND h.state = 'HELD' AND h.hold_until > $3), 0
                   )::bigint AS free
            FROM lots l
            WHERE l.member_pk = $1 AND ($2 = '' OR l.point_type = $2) AND l.state = 'ACTIVE'
              AND l.remaining > 0 AND l.expires_at > $3 AND l.expires_at <= $4
        ) lots
        WHERE free > 0
        ORDER BY expires_at {order}, pk {order}
        LIMIT $5
        """,
        pk,
        point_type,
        now,
        now + timedelta(days=days),
        count,
    )
    return [ExpiringLot(r["point_type"], r["free"], r["expires_at"]) for r in rows]


async def tier_history(conn: asyncpg.Connection, program: LedgerProgram, member_id: str
                       ) -> list[TierChange]:
    pk, _, _ = await find_member(conn, program, member_id)
    rows = await conn.fetch(
        "SELECT tier_group, from_tier, to_tier, points, reason, changed_at FROM tier_history"
        " WHERE member_pk = $1 ORDER BY pk",
        pk,
    )
    return [TierChange(r["tier_group"], r["from_tier"], r["to_tier"], r["points"], r["reason"],
                       r["changed_at"]) for r in rows]


# Enrollment of many members in one transaction, set-based (docs/reports.md, "Bulk
# enrollment"): one statement per chunk whatever its size, writing the members, their balance
# rows, the initial balances (a transaction and a lot each) and the events, each member's
# `member.enrolled` before its `points.accrued` as one by one. A NULL registration is `now`.
# Tier groups need each member's tier rows worked out one by one, so a program with tier groups
# enrolls member by member.
_BULK_ENROLL_SQL = """
WITH m AS (
    INSERT INTO members (program, member_id, registered_at, created_at)
    SELECT $1, x.member_id, COALESCE(x.registered_at, $4), $4
    FROM unnest($2::text[], $3::timestamptz[]) WITH ORDINALITY AS x(member_id, registered_at, n)
    ORDER BY x.n
    ON CONFLICT (program, member_id) WHERE NOT removed DO NOTHING
    RETURNING pk, member_id, registered_at
), b AS (
    INSERT INTO balances (member_pk, point_type, balance, txn_count)
    SELECT m.pk, t.point_type, t.points, (t.points > 0)::int
    FROM m CROSS JOIN unnest($5::text[], $6::bigint[]) AS t(point_type, points)
    ORDER BY m.pk, t.point_type
), g AS (
    SELECT m.pk, m.member_id, t.point_type, t.points, t.expires_at
    FROM m CROSS JOIN unnest($7::text[], $8::bigint[], $9::timestamptz[])
        AS t(point_type, points, expires_at)
), txn AS (
    INSERT INTO transactions (program, member_pk, member_id, point_type, type, balance_before,
        value, balance_after, source_type, source_id, comment, created_at)
    SELECT $1, g.pk, g.member_id, g.point_type, 'ACCRUAL', 0, g.points, g.points, 'ENROLLMENT',
        g.member_id, 'initial balance', $4
    FROM g ORDER BY g.pk, g.point_type
    RETURNING pk, member_pk, member_id, point_type, value
), lot AS (
    INSERT INTO lots (member_pk, point_type, state, points, remaining, accrued_at, expires_at,
        timing, txn_pk, created_at)
    SELECT txn.member_pk, txn.point_type, 'ACTIVE', txn.value, txn.value, $4, g.expires_at, '',
        txn.pk, $4
    FROM txn JOIN g ON g.pk = txn.member_pk AND g.point_type = txn.point_type
), events AS (
    INSERT INTO outbox (program, topic, member_id, payload, created_at)
    SELECT $1, e.topic, e.member_id, e.payload, $4
    FROM (
        SELECT m.pk AS member_pk, 0 AS n, 'member.enrolled' AS topic, m.member_id,
            jsonb_build_object('program', $1::text, 'member_id', m.member_id,
                'registered_at', to_char(m.registered_at AT TIME ZONE 'UTC',
                    'YYYY-MM-DD"T"HH24:MI:SS')
                || CASE WHEN date_trunc('second', m.registered_at) = m.registered_at THEN ''
                        ELSE to_char(m.registered_at AT TIME ZONE 'UTC', '.US') END
                || '+00:00') AS payload
        FROM m
        UNION ALL
        SELECT txn.member_pk, txn.pk, 'points.accrued', txn.member_id,
            jsonb_build_object('program', $1::text, 'member_id', txn.member_id,
                'point_type', txn.point_type, 'points', txn.value, 'source_type', 'ENROLLMENT',
                'transaction_id', txn.pk::text)
        FROM txn
    ) e
    ORDER BY e.member_pk, e.n
)
SELECT count(*) FROM m
"""


async def enroll_bulk(conn: asyncpg.Connection, program: LedgerProgram,
                      member_ids: Sequence[str], registered: Sequence[datetime | None],
                      now: datetime) -> int:
    """Enroll `member_ids`, each registered at its `registered` (None: `now`), inside the
    caller's transaction; returns how many were new."""
    if program.tier_groups:
        created = 0
        for member_id, at in zip(member_ids, registered, strict=True):
            _, new = await enroll(conn, program, member_id, at or now, now)
            created += new
        return created
    grants = [
        cfg for cfg in program.point_types.values()
        if cfg.kind == "STANDARD" and cfg.usable_at(now) and cfg.initial_balance > 0
    ]
    initial = {cfg.id: cfg.initial_balance for cfg in grants}
    types = sorted(program.point_types)
    return int(await conn.fetchval(
        _BULK_ENROLL_SQL, program.id, member_ids, registered, now,
        types, [initial.get(t, 0) for t in types],
        [g.id for g in grants], [g.initial_balance for g in grants],
        [g.expiry(now, program.tz) for g in grants],
    ))


async def remove_batch(conn: asyncpg.Connection, program: LedgerProgram, size: int,
                       now: datetime) -> int:
    """Remove up to `size` live members of the program (inside the caller's transaction), as
    `remove` does one: their holds voided, held code uses released, the rows marked removed.
    Each member's balance rows are locked first, in the order every writer takes them."""
    pks = [r["pk"] for r in await conn.fetch(
        "SELECT pk FROM members WHERE program = $1 AND NOT removed ORDER BY pk LIMIT $2"
        " FOR UPDATE", program.id, size)]
    if not pks:
        return 0
    await conn.execute(
        "SELECT 1 FROM balances WHERE member_pk = ANY($1::bigint[])"
        " ORDER BY member_pk, point_type FOR UPDATE", pks)
    await conn.execute(
        "UPDATE holds SET state = 'VOIDED', closed_at = $2"
        " WHERE member_pk = ANY($1::bigint[]) AND state = 'HELD'", pks, now)
    await conn.execute(
        "UPDATE promo_code_uses SET state = 'RELEASED', closed_at = $2"
        " WHERE member_pk = ANY($1::bigint[]) AND state = 'HELD'", pks, now)
    await conn.execute(
        "UPDATE members SET removed = true, removed_at = $2 WHERE pk = ANY($1::bigint[])",
        pks, now)
    return len(pks)
