"""The transactional outbox: events written with their change, relayed at least once."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from arbiter.server.ledger._callback import CallbackFailed
from arbiter.server.ledger._types import OutboxEvent

__all__ = ["Send", "emit", "event_json", "list_events", "relay"]

Send = Callable[[Sequence[OutboxEvent]], Awaitable[None]]

_COLUMNS = "pk, program, topic, member_id, payload::text AS payload, created_at"

# The advisory lock whose holder is the one relay at work (docs/replicas.md): a transaction-level
# lock, so a relay that dies (SIGKILL, a lost connection) lets go with its transaction.
RELAY_LOCK_KEY = 0x4152_4249_5445_5201  # "ARBITER" + 1, a bigint


def event_json(program_id: str, member_id: str, payload: Mapping[str, Any]) -> str:
    """An event's payload as stored: the program and member ("" for a guest), then `payload`."""
    body = {"program": program_id, "member_id": member_id, **payload}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)


async def emit(conn: asyncpg.Connection, program_id: str, member_id: str, topic: str,
               payload: Mapping[str, Any], now: datetime) -> None:
    """Write an event to the outbox in the caller's transaction (the change it reports)."""
    await conn.execute(
        "INSERT INTO outbox (program, topic, member_id, payload, created_at)"
        " VALUES ($1, $2, $3, $4::jsonb, $5)",
        program_id,
        topic,
        member_id,
        event_json(program_id, member_id, payload),
        now,
    )


def _event(r: asyncpg.Record) -> OutboxEvent:
    return OutboxEvent(r["pk"], r["program"], r["topic"], r["member_id"],
                       json.loads(r["payload"]), r["created_at"])


async def relay(conn: asyncpg.Connection, send: Send, limit: int, now: datetime) -> int:
    """Hand the oldest unpublished events to `send`, then mark them published.

    One relay at a time: the transaction first takes the advisory lock RELAY_LOCK_KEY without
    waiting; a replica that does not get it relays nothing this time (returns 0), so events
    leave in id order, which per member is commit order (a member's writes are serialized by its
    row lock). If `send` raises, nothing is marked and the batch goes again (at least once;
    consumers dedupe by event id).
    """
    assert limit > 0
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", RELAY_LOCK_KEY):
            return 0
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM outbox WHERE published_at IS NULL"
            " ORDER BY pk LIMIT $1 FOR UPDATE SKIP LOCKED",
            limit,
        )
        if not rows:
            return 0
        try:
            await send([_event(r) for r in rows])
        except Exception as exc:
            raise CallbackFailed(exc) from exc
        await conn.execute(
            "UPDATE outbox SET published_at = $2 WHERE pk = ANY($1::bigint[])",
            [r["pk"] for r in rows],
            now,
        )
    return len(rows)


async def list_events(conn: asyncpg.Connection, program: str | None, after: int, limit: int
                      ) -> list[OutboxEvent]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM outbox WHERE pk > $1 AND ($2::text IS NULL OR program = $2)"
        " ORDER BY pk LIMIT $3",
        after,
        program,
        limit,
    )
    return [_event(r) for r in rows]
