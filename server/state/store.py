"""What the state room keeps in PostgreSQL: the applied program versions.

One small table next to the ledger's, created here with CREATE TABLE IF NOT EXISTS (the ledger's
migrations belong to the ledger room):

    program_versions (program, version, program_pb, applied_at)   every applied version, kept

The version an order was calculated on is not kept here: the ledger stores it in the order's own
row, in the transaction that writes the order (`OrderRequest.program_version`). The table this
room used to write after the ledger's commit, `order_versions`, is no longer created or written;
the ledger's migration 0002 copied what it held into the orders.

A database that cannot be reached raises the ledger's `StorageUnavailable` (UNAVAILABLE at the
edge), translated by the ledger's own `storage_errors`, so both rooms agree on what "down" is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from arbiter.server.ledger import storage_errors
from arbiter.v1 import program_pb2

__all__ = ["StateStore", "StoredProgram"]

# pg_advisory_xact_lock key: "arbiter state versions" folded into a bigint. Serialises schema
# creation and version numbering across replicas.
_LOCK_KEY: Final = 0x4152_4253_5441_5445 & 0x7FFF_FFFF_FFFF_FFFF

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS program_versions (
    program     text        NOT NULL,
    version     bigint      NOT NULL CHECK (version > 0),
    program_pb  bytea       NOT NULL,
    applied_at  timestamptz NOT NULL,
    PRIMARY KEY (program, version)
);
"""


@dataclass(frozen=True, slots=True)
class StoredProgram:
    version: int
    program: program_pb2.Program


def program_bytes(program: program_pb2.Program) -> bytes:
    """A stable encoding: two equal programs give equal bytes (maps sorted)."""
    return program.SerializeToString(deterministic=True)


class StateStore:
    """The table above over the ledger's asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_schema(self) -> None:
        with storage_errors("creating the program version tables"):
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
                await conn.execute(_SCHEMA)

    async def latest_programs(self) -> list[StoredProgram]:
        """The last applied version of every program, by program id."""
        with storage_errors("reading the applied program versions"):
            rows = await self._pool.fetch(
                "SELECT DISTINCT ON (program) program, version, program_pb FROM program_versions"
                " ORDER BY program, version DESC"
            )
        return [
            StoredProgram(r["version"], program_pb2.Program.FromString(r["program_pb"]))
            for r in rows
        ]

    async def apply(self, program: program_pb2.Program, now: datetime) -> tuple[int, bool]:
        """Store `program` as the next version of its id unless it equals the last one.

        Returns (version, changed). Under an advisory lock, so that replicas starting together
        with the same file agree on one version.
        """
        data = program_bytes(program)
        with storage_errors(f"storing a version of program {program.id[:40]!r}"):
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
                last = await conn.fetchrow(
                    "SELECT version, program_pb FROM program_versions WHERE program = $1"
                    " ORDER BY version DESC LIMIT 1",
                    program.id,
                )
                if last is not None and bytes(last["program_pb"]) == data:
                    return int(last["version"]), False
                version = 1 if last is None else int(last["version"]) + 1
                await conn.execute(
                    "INSERT INTO program_versions (program, version, program_pb, applied_at)"
                    " VALUES ($1, $2, $3, $4)",
                    program.id,
                    version,
                    data,
                    now,
                )
                return version, True
