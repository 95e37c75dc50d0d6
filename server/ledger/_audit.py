"""The audit journal: who changed what, when (configuration edits and manual transactions).

One table, `audit_entries` (migration 0007). A writer records its entry on the connection of
its own transaction, so an entry exists exactly when the change it describes was committed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import asyncpg

__all__ = ["MAX_DETAIL_CHARS", "AuditEntry", "AuditRecord", "read_audit", "record_audit"]

# A detail is a summary of a change, not a copy of it: longer ones are cut to a marker.
MAX_DETAIL_CHARS: Final = 64_000


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What a writer records: `actor` did `action` to the `object_kind` `object_id`."""

    program: str
    actor: str
    action: str
    object_kind: str
    object_id: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One stored entry; `id` increases with every entry (the journal's order)."""

    id: int
    program: str
    created_at: datetime
    actor: str
    action: str
    object_kind: str
    object_id: str
    detail: str  # JSON text


def _detail_json(detail: dict[str, Any]) -> str:
    text = json.dumps(detail, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)
    if len(text) > MAX_DETAIL_CHARS:
        text = json.dumps({"truncated": True, "chars": len(text)})
    return text


async def record_audit(conn: asyncpg.Connection, record: AuditRecord, now: datetime) -> int:
    """Insert one entry in the caller's transaction; returns its id."""
    entry_id: int = await conn.fetchval(
        "INSERT INTO audit_entries (program, created_at, actor, action, object_kind, object_id,"
        " detail) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING id",
        record.program,
        now,
        record.actor,
        record.action,
        record.object_kind,
        record.object_id,
        _detail_json(record.detail),
    )
    return entry_id


async def read_audit(
    conn: asyncpg.Connection, program: str, *, after: int, limit: int
) -> list[AuditEntry]:
    """The program's entries with an id above `after`, oldest first, at most `limit`."""
    rows = await conn.fetch(
        "SELECT id, program, created_at, actor, action, object_kind, object_id, detail::text"
        " AS detail FROM audit_entries WHERE program = $1 AND id > $2 ORDER BY id LIMIT $3",
        program,
        after,
        limit,
    )
    return [
        AuditEntry(
            id=r["id"],
            program=r["program"],
            created_at=r["created_at"],
            actor=r["actor"],
            action=r["action"],
            object_kind=r["object_kind"],
            object_id=r["object_id"],
            detail=r["detail"],
        )
        for r in rows
    ]
