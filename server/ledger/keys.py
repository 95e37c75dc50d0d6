"""API keys in PostgreSQL: their SHA-256 digest, name and role; never the key itself.

The api room authenticates against an in-memory copy that `ApiKeyStore.live()` refreshes; this
module only reads and writes the table (migration 0010_api_keys.sql).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from arbiter.server.ledger._unavailable import storage_errors
from arbiter.server.ledger.errors import Conflict, NotFound

__all__ = ["ApiKeyStore", "KeyNameTaken", "StoredKey"]


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A live key: its digest, the name callers are known by, and its role."""

    digest: bytes
    name: str
    role: str


class KeyNameTaken(Conflict):
    """A live key already has this name (names are the audit journal's actors)."""

    def __init__(self, name: str) -> None:
        super().__init__("API key", name)
        self.args = (f"a live API key is already named {name!r}: choose another name",)


class ApiKeyStore:
    """The api_keys table on the ledger's pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, key: StoredKey, now: datetime) -> None:
        """Store a new key; KeyNameTaken when a live key has its name."""
        with storage_errors("storing the API key"):
            try:
                await self._pool.execute(
                    "INSERT INTO api_keys (key_hash, name, role, created_at)"
                    " VALUES ($1, $2, $3, $4)",
                    key.digest,
                    key.name,
                    key.role,
                    now,
                )
            except asyncpg.UniqueViolationError:
                raise KeyNameTaken(key.name) from None

    async def revoke(self, digest: bytes, now: datetime) -> StoredKey:
        """Revoke the key with this digest (again: no change); NotFound when none has it."""
        with storage_errors("revoking the API key"):
            row = await self._pool.fetchrow(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2)"
                " WHERE key_hash = $1 RETURNING key_hash, name, role",
                digest,
                now,
            )
        if row is None:
            raise NotFound("API key", "(the key given)")
        return StoredKey(bytes(row["key_hash"]), row["name"], row["role"])

    async def live(self) -> list[StoredKey]:
        """Every key not revoked."""
        with storage_errors("reading the API keys"):
            rows = await self._pool.fetch(
                "SELECT key_hash, name, role FROM api_keys WHERE revoked_at IS NULL"
            )
        return [StoredKey(bytes(r["key_hash"]), r["name"], r["role"]) for r in rows]
