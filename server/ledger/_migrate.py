"""Apply the plain SQL migrations in order, once, even when several processes start together."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

__all__ = ["Migration", "apply_migrations", "load_migrations"]

# pg_advisory_xact_lock key: "arbiter ledger migrations" folded into a bigint.
_LOCK_KEY = 0x4152_4249_5445_524C & 0x7FFF_FFFF_FFFF_FFFF
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

# Earlier texts of applied migrations that differed from today's in comments only, by version:
# a database that applied one of them has the same schema, so its row is brought up to date
# instead of being refused. Add an entry only for a comment-only edit, with the old checksum.
EARLIER_CHECKSUMS: dict[int, frozenset[str]] = {
    # 0001's first comment cited a document outside the repository.
    1: frozenset({"9ea739f84b9503ee8f97098850206a753505807609c6001bde69016343fb666d"}),
}


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> tuple[Migration, ...]:
    """Every `NNNN_name.sql` shipped in the package's migrations folder, by version."""
    folder = resources.files("arbiter.server.ledger").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two ledger migrations share a version: {versions}")
    return tuple(found)


async def apply_migrations(conn: asyncpg.Connection) -> list[str]:
    """Apply what is missing in one transaction; returns the names applied.

    The transaction-scoped advisory lock makes a second process wait for the first and then see
    its schema_migrations rows; an applied file whose text changed is refused, never re-run (but
    for the comment-only edits listed in EARLIER_CHECKSUMS, whose rows are brought up to date).
    """
    migrations = load_migrations()
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer     PRIMARY KEY,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
            )
            """
        )
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        done = {r["version"]: r for r in rows}
        for migration in migrations:
            row = done.get(migration.version)
            if row is not None:
                if row["checksum"] in EARLIER_CHECKSUMS.get(migration.version, ()):
                    await conn.execute(
                        "UPDATE schema_migrations SET checksum = $2 WHERE version = $1",
                        migration.version,
                        migration.checksum,
                    )
                elif row["checksum"] != migration.checksum:
                    raise RuntimeError(
                        f"ledger migration {migration.name} changed after it was applied"
                        f" (applied as {row['name']}); add a new migration instead of editing it"
                    )
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_now.append(migration.name)
    return applied_now
