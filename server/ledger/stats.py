"""Read-only figures about the ledger for the metrics endpoint (no writes, no locks)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from arbiter.server.ledger._unavailable import storage_errors

__all__ = ["OutboxBacklog", "outbox_backlog"]


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    """Events written but not yet taken by Redis, and how long the oldest has waited."""

    pending: int
    oldest_age_s: float


async def outbox_backlog(pool: asyncpg.Pool) -> OutboxBacklog:
    with storage_errors("reading the outbox backlog"):
        row = await pool.fetchrow(
            "SELECT count(*) AS pending,"
            " coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age"
            " FROM outbox WHERE published_at IS NULL"
        )
    assert row is not None
    return OutboxBacklog(int(row["pending"]), max(0.0, float(row["age"])))
