"""What a backtest reads (docs/reports.md): the orders confirmed in a window with what each was
calculated from, batch by batch through a server-side cursor. Read-only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg

__all__ = ["StoredOrder", "StoredOrders", "stored_orders"]


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """A confirmed order as stored. `request` empty: confirmed before orders kept their inputs
    (then `member_json` and `usage_json` are None too). `member_json` None with a request: a
    guest order."""

    order_id: str
    program_version: int | None
    result_json: str
    request: bytes
    member_json: str | None
    usage_json: str | None
    calculated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredOrders:
    total: int
    orders: tuple[StoredOrder, ...]


_COUNT_SQL = """
SELECT count(*) FROM (
    SELECT 1 FROM orders
    WHERE program = $1 AND confirmed_at >= $2 AND confirmed_at < $3
    LIMIT $4
) o
"""

# Guest orders have no member: nothing here joins members.
_ORDERS_SQL = """
SELECT o.order_id, o.program_version, o.result::text AS result, i.request,
       i.member::text AS member, i.code_usage::text AS code_usage,
       COALESCE(i.calculated_at, o.created_at) AS calculated_at
FROM orders o LEFT JOIN order_inputs i ON i.order_pk = o.pk
WHERE o.program = $1 AND o.confirmed_at >= $2 AND o.confirmed_at < $3
ORDER BY o.confirmed_at, o.pk
LIMIT $4
"""


async def stored_orders(conn: asyncpg.Connection, program_id: str, start: datetime,
                        end: datetime, limit: int, batch_size: int
                        ) -> AsyncIterator[StoredOrders]:
    """Inside the caller's transaction: the count first (no orders), then the batches."""
    total = int(await conn.fetchval(_COUNT_SQL, program_id, start, end, limit))
    yield StoredOrders(total, ())
    cursor = await conn.cursor(_ORDERS_SQL, program_id, start, end, limit)
    while True:
        rows = await cursor.fetch(batch_size)
        if not rows:
            return
        yield StoredOrders(total, tuple(
            StoredOrder(
                order_id=r["order_id"],
                program_version=r["program_version"],
                result_json=r["result"],
                request=bytes(r["request"] or b""),
                member_json=r["member"],
                usage_json=r["code_usage"],
                calculated_at=r["calculated_at"],
            )
            for r in rows
        ))
