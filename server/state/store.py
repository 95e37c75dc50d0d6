"""What the state room keeps in PostgreSQL: drafts, versions, the applied version, the journal.

The tables are created by the ledger's migration 0007 (the one migration path):

    programs (id, database, draft_pb, draft_revision, applied_version, ...)   one row a program
    program_versions (program, version, program_pb, applied_at)              every version, kept
    audit_entries (id, program, created_at, actor, action, ...)              the journal

A draft is the `Program`'s deterministic protobuf bytes plus a revision that every change of
the draft increments; the draft "has changes" when its bytes differ from the applied version's.
Every change locks the program's row (`SELECT ... FOR UPDATE`), so concurrent edits of one
draft are serialised and concurrent applies of one draft make one version; each change records
its audit entry in its own transaction. The rules are written down in docs/admin.md.

The version an order was calculated on is not kept here: the ledger stores it in the order's own
row, in the transaction that writes the order (`OrderRequest.program_version`).

A database that cannot be reached raises the ledger's `StorageUnavailable` (UNAVAILABLE at the
edge), translated by the ledger's own `storage_errors`, so both rooms agree on what "down" is.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import asyncpg

from arbiter.server.ledger import (
    AuditEntry,
    AuditRecord,
    read_audit,
    record_audit,
    storage_errors,
)
from arbiter.server.state.errors import AlreadyExists, ConfigurationRefused, NotFound
from arbiter.v1 import program_pb2

logger = logging.getLogger("arbiter.state")

__all__ = [
    "ApplyOutcome",
    "DraftMoved",
    "EditOutcome",
    "ProgramRecord",
    "StateStore",
    "StoredProgram",
    "program_bytes",
]

# A transaction that lost a race (two first imports of one id) runs again, at most this often.
_ATTEMPTS: Final = 5
_ONE_ACTIVE_INDEX: Final = "programs_one_active_per_database"

_RECORD_COLUMNS: Final = (
    "p.id, p.database, p.draft_pb, p.draft_revision, p.applied_version,"
    " v.program_pb AS applied_pb"
)
_RECORD_FROM: Final = (
    "programs p LEFT JOIN program_versions v"
    " ON v.program = p.id AND v.version = p.applied_version"
)


@dataclass(frozen=True, slots=True)
class StoredProgram:
    version: int
    program: program_pb2.Program


def program_bytes(program: program_pb2.Program) -> bytes:
    """A stable encoding: two equal programs give equal bytes (maps sorted)."""
    return program.SerializeToString(deterministic=True)


@dataclass(frozen=True, slots=True)
class ProgramRecord:
    """One program as stored: its draft and its applied version (None: never applied)."""

    id: str
    database: str
    draft_pb: bytes
    revision: int
    applied_version: int | None
    applied_pb: bytes | None

    @property
    def draft(self) -> program_pb2.Program:
        return program_pb2.Program.FromString(self.draft_pb)

    @property
    def applied(self) -> program_pb2.Program | None:
        if self.applied_pb is None:
            return None
        return program_pb2.Program.FromString(self.applied_pb)

    @property
    def has_draft_changes(self) -> bool:
        return self.applied_pb is None or self.draft_pb != self.applied_pb


@dataclass(frozen=True, slots=True)
class EditOutcome:
    """What one change makes of a draft, and how the journal describes it."""

    draft: program_pb2.Program
    action: str
    object_kind: str
    object_id: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """The applied version after an Apply; `changed`: this Apply made it."""

    version: int
    program: program_pb2.Program
    changed: bool


class DraftMoved(Exception):
    """The draft changed between an Apply's compile and its commit: compile it again."""


# A change of a draft: the current draft (None: the program does not exist yet) -> the outcome.
Change = Callable[[program_pb2.Program | None], EditOutcome]


def _record(row: asyncpg.Record) -> ProgramRecord:
    applied = row["applied_pb"]
    return ProgramRecord(
        id=row["id"],
        database=row["database"],
        draft_pb=bytes(row["draft_pb"]),
        revision=int(row["draft_revision"]),
        applied_version=None if row["applied_version"] is None else int(row["applied_version"]),
        applied_pb=None if applied is None else bytes(applied),
    )


async def _lock(conn: asyncpg.Connection, program_id: str) -> ProgramRecord | None:
    """Lock the program's row, then read it and its applied version.

    Two statements: a locking read that had to wait re-reads only the locked row, not the rows
    joined to it (a version committed by the transaction it waited for would be missed); the
    second statement's snapshot, taken once the lock is held, sees everything committed.
    """
    locked = await conn.fetchval(
        "SELECT true FROM programs WHERE id = $1 FOR UPDATE", program_id
    )
    if locked is None:
        return None
    row = await conn.fetchrow(
        f"SELECT {_RECORD_COLUMNS} FROM {_RECORD_FROM} WHERE p.id = $1", program_id
    )
    return None if row is None else _record(row)


def _check_identity(record: ProgramRecord, draft: program_pb2.Program) -> None:
    """A draft keeps its program's id, and the database it was created for."""
    if draft.id != record.id:
        raise ConfigurationRefused(
            f"program {record.id!r}: the id of a program never changes (the draft says"
            f" {draft.id[:80]!r})"
        )
    if draft.database != record.database:
        raise ConfigurationRefused(
            f"program {record.id!r}: the database never changes after creation (it is"
            f" {record.database!r}; the draft says {draft.database[:80]!r})"
        )


async def _check_one_active(conn: asyncpg.Connection, program_id: str, database: str) -> None:
    """Only one active (applied) program per profile database; '' binds to none."""
    if not database:
        return
    other = await conn.fetchval(
        "SELECT id FROM programs WHERE database = $1 AND id <> $2"
        " AND applied_version IS NOT NULL LIMIT 1",
        database,
        program_id,
    )
    if other is not None:
        raise ConfigurationRefused(
            f"program {program_id!r}: database {database!r} already has an active program,"
            f" {other!r}; only one active program per database"
        )


async def _insert_program(
    conn: asyncpg.Connection, program: program_pb2.Program, now: datetime
) -> ProgramRecord:
    await conn.execute(
        "INSERT INTO programs (id, database, draft_pb, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $4)",
        program.id,
        program.database,
        program_bytes(program),
        now,
    )
    return ProgramRecord(program.id, program.database, program_bytes(program), 1, None, None)


async def _write_draft(
    conn: asyncpg.Connection, record: ProgramRecord, draft: bytes, now: datetime
) -> ProgramRecord:
    if draft == record.draft_pb:
        return record
    revision: int = await conn.fetchval(
        "UPDATE programs SET draft_pb = $2, draft_revision = draft_revision + 1, updated_at = $3"
        " WHERE id = $1 RETURNING draft_revision",
        record.id,
        draft,
        now,
    )
    return ProgramRecord(
        record.id, record.database, draft, revision, record.applied_version, record.applied_pb
    )


async def _add_version(
    conn: asyncpg.Connection, record: ProgramRecord, now: datetime
) -> ProgramRecord:
    """The draft of `record` as its next version, applied. The row is locked by the caller."""
    await _check_one_active(conn, record.id, record.database)
    version = await conn.fetchval(
        "SELECT coalesce(max(version), 0) + 1 FROM program_versions WHERE program = $1",
        record.id,
    )
    await conn.execute(
        "INSERT INTO program_versions (program, version, program_pb, applied_at)"
        " VALUES ($1, $2, $3, $4)",
        record.id,
        version,
        record.draft_pb,
        now,
    )
    await conn.execute(
        "UPDATE programs SET applied_version = $2, updated_at = $3 WHERE id = $1",
        record.id,
        version,
        now,
    )
    return ProgramRecord(
        record.id, record.database, record.draft_pb, record.revision, int(version),
        record.draft_pb,
    )


class StateStore:
    """The tables above over the ledger's asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def _transaction(self, what: str, op: Callable[[asyncpg.Connection], Any]) -> Any:
        """Run `op` in one transaction; again when it lost a race on a first insert."""
        for attempt in range(_ATTEMPTS):
            try:
                with storage_errors(what):
                    async with self._pool.acquire() as conn, conn.transaction():
                        return await op(conn)
            except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError) as exc:
                # Two programs of one database applied at once: the index refuses the second.
                if getattr(exc, "constraint_name", None) == _ONE_ACTIVE_INDEX:
                    raise ConfigurationRefused(
                        f"{what}: its database already has an active program; only one active"
                        " program per database"
                    ) from exc
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def open(self) -> None:
        """Complete what migration 0007 could not: the database of programs adopted from the
        versions of before drafts existed (read from their applied version)."""
        with storage_errors("reading the stored programs"):
            rows = await self._pool.fetch(
                f"SELECT {_RECORD_COLUMNS} FROM {_RECORD_FROM}"
                " WHERE p.database = '' AND p.applied_version IS NOT NULL ORDER BY p.id"
            )
            for row in rows:
                record = _record(row)
                applied = record.applied
                if applied is None or not applied.database:
                    continue
                try:
                    await self._pool.execute(
                        "UPDATE programs SET database = $2 WHERE id = $1 AND database = ''",
                        record.id,
                        applied.database,
                    )
                except asyncpg.UniqueViolationError:
                    # Two programs of one database were both applied before the rule existed:
                    # the first by id keeps the database; the others stay bound to none (their
                    # drafts must then leave `database` empty).
                    logger.warning(
                        "program %r: database %r already has an active program; left bound to"
                        " no database",
                        record.id,
                        applied.database,
                    )

    # -- reads ---------------------------------------------------------------------------------

    async def latest_programs(self) -> list[StoredProgram]:
        """The applied version of every program that has one, by program id."""
        with storage_errors("reading the applied program versions"):
            rows = await self._pool.fetch(
                "SELECT v.version, v.program_pb FROM programs p JOIN program_versions v"
                " ON v.program = p.id AND v.version = p.applied_version ORDER BY p.id"
            )
        return [
            StoredProgram(r["version"], program_pb2.Program.FromString(r["program_pb"]))
            for r in rows
        ]

    async def applied_versions(self) -> dict[str, int]:
        """Each program's applied version number (programs with one), for replicas to compare."""
        with storage_errors("reading the applied version numbers"):
            rows = await self._pool.fetch(
                "SELECT id, applied_version FROM programs WHERE applied_version IS NOT NULL"
            )
        return {r["id"]: r["applied_version"] for r in rows}

    async def record(self, program_id: str) -> ProgramRecord:
        """The program's draft and applied version; NotFound when it is not a program."""
        with storage_errors(f"reading program {program_id[:40]!r}"):
            row = await self._pool.fetchrow(
                f"SELECT {_RECORD_COLUMNS} FROM {_RECORD_FROM} WHERE p.id = $1", program_id
            )
        if row is None:
            raise NotFound("program", program_id)
        return _record(row)

    async def records(self) -> list[ProgramRecord]:
        """Every program, by id."""
        with storage_errors("listing the programs"):
            rows = await self._pool.fetch(
                f"SELECT {_RECORD_COLUMNS} FROM {_RECORD_FROM} ORDER BY p.id"
            )
        return [_record(r) for r in rows]

    async def version(self, program_id: str, version: int) -> program_pb2.Program:
        with storage_errors(f"reading a version of program {program_id[:40]!r}"):
            data = await self._pool.fetchval(
                "SELECT program_pb FROM program_versions WHERE program = $1 AND version = $2",
                program_id,
                version,
            )
        if data is None:
            raise NotFound("program version", f"{program_id}@{version}")
        return program_pb2.Program.FromString(data)

    async def audit(self, program_id: str, *, after: int, limit: int) -> list[AuditEntry]:
        """The program's journal entries after the entry id `after`, oldest first."""
        with storage_errors(f"reading the audit journal of program {program_id[:40]!r}"):
            async with self._pool.acquire() as conn:
                return await read_audit(conn, program_id, after=after, limit=limit)

    # -- changes -------------------------------------------------------------------------------

    async def create(
        self, program: program_pb2.Program, actor: str, now: datetime
    ) -> ProgramRecord:
        """A new program whose draft is `program`, never applied; AlreadyExists if it is one."""

        async def op(conn: asyncpg.Connection) -> ProgramRecord:
            if await _lock(conn, program.id) is not None:
                raise AlreadyExists("program", program.id)
            record = await _insert_program(conn, program, now)
            await record_audit(
                conn,
                AuditRecord(program.id, actor, "create_program", "program", program.id,
                            {"database": program.database, "name": program.name}),
                now,
            )
            return record

        result: ProgramRecord = await self._transaction(
            f"creating program {program.id[:40]!r}", op
        )
        return result

    async def edit(
        self,
        program_id: str,
        change: Change,
        actor: str,
        now: datetime,
        *,
        create_missing: bool = False,
    ) -> ProgramRecord:
        """Run `change` on the locked draft and store what it makes, with its audit entry.

        A program that does not exist is NotFound, unless `create_missing` (an import): then
        `change` gets None and its draft creates the program, with the draft's database.
        """

        async def op(conn: asyncpg.Connection) -> ProgramRecord:
            record = await _lock(conn, program_id)
            if record is None and not create_missing:
                raise NotFound("program", program_id)
            outcome = change(None if record is None else record.draft)
            if record is None:
                if outcome.draft.id != program_id:
                    raise ConfigurationRefused(
                        f"program {program_id!r}: the draft names another id"
                    )
                record = await _insert_program(conn, outcome.draft, now)
            else:
                _check_identity(record, outcome.draft)
                record = await _write_draft(conn, record, program_bytes(outcome.draft), now)
            detail = {**outcome.detail, "revision": record.revision}
            await record_audit(
                conn,
                AuditRecord(program_id, actor, outcome.action, outcome.object_kind,
                            outcome.object_id, detail),
                now,
            )
            return record

        result: ProgramRecord = await self._transaction(
            f"editing the draft of program {program_id[:40]!r}", op
        )
        return result

    async def revert(self, program_id: str, actor: str, now: datetime) -> ProgramRecord:
        """The draft becomes the applied version again (ConfigurationRefused if none is)."""

        async def op(conn: asyncpg.Connection) -> ProgramRecord:
            record = await _lock(conn, program_id)
            if record is None:
                raise NotFound("program", program_id)
            if record.applied_pb is None:
                raise ConfigurationRefused(
                    f"program {program_id!r} has never been applied: there is no version to"
                    " revert its draft to"
                )
            if not record.has_draft_changes:
                return record
            discarded = record.revision
            record = await _write_draft(conn, record, record.applied_pb, now)
            await record_audit(
                conn,
                AuditRecord(program_id, actor, "revert", "program", program_id,
                            {"discarded_revision": discarded, "revision": record.revision,
                             "version": record.applied_version}),
                now,
            )
            return record

        result: ProgramRecord = await self._transaction(
            f"reverting the draft of program {program_id[:40]!r}", op
        )
        return result

    async def commit_version(
        self,
        program_id: str,
        revision: int | None,
        actor: str,
        now: datetime,
        *,
        check: Callable[[program_pb2.Program], Awaitable[object]] | None = None,
    ) -> ApplyOutcome:
        """The draft at `revision` (the one the caller compiled) as the next version.

        An unchanged draft answers the applied version and makes none; a draft that moved
        since raises DraftMoved (nothing written). `revision` None: whatever the draft is once
        its row is locked, after `check(draft)` (the caller's compile) has passed with the
        lock held, so that edits wait and the Apply cannot be overtaken again.
        """

        async def op(conn: asyncpg.Connection) -> ApplyOutcome:
            record = await _lock(conn, program_id)
            if record is None:
                raise NotFound("program", program_id)
            if not record.has_draft_changes:
                assert record.applied_version is not None and record.applied_pb is not None
                return ApplyOutcome(record.applied_version, record.draft, False)
            if revision is None:
                assert check is not None, "a locked commit compiles what it commits"
                await check(record.draft)
                revision_now = record.revision
            elif record.revision != revision:
                raise DraftMoved(program_id)
            else:
                revision_now = revision
            previous = record.applied_version
            record = await _add_version(conn, record, now)
            assert record.applied_version is not None
            await record_audit(
                conn,
                AuditRecord(program_id, actor, "apply", "program", program_id,
                            {"version": record.applied_version, "previous_version": previous,
                             "revision": revision_now}),
                now,
            )
            return ApplyOutcome(record.applied_version, record.draft, True)

        result: ApplyOutcome = await self._transaction(
            f"applying the draft of program {program_id[:40]!r}", op
        )
        return result

    async def import_and_apply(
        self, program: program_pb2.Program, actor: str, now: datetime, *, source: str
    ) -> ApplyOutcome:
        """Configuration as code: `program` (compiled by the caller) becomes the draft and the
        next version, unless it equals the applied version (then nothing changes, the draft
        neither). In one transaction, so replicas starting together agree on one version."""
        data = program_bytes(program)

        async def op(conn: asyncpg.Connection) -> ApplyOutcome:
            record = await _lock(conn, program.id)
            if record is not None and record.applied_pb == data:
                assert record.applied_version is not None
                return ApplyOutcome(record.applied_version, program, False)
            if record is None:
                record = await _insert_program(conn, program, now)
            else:
                _check_identity(record, program)
                record = await _write_draft(conn, record, data, now)
            await record_audit(
                conn,
                AuditRecord(program.id, actor, "import", "program", program.id,
                            {"source": source, "revision": record.revision}),
                now,
            )
            previous = record.applied_version
            record = await _add_version(conn, record, now)
            assert record.applied_version is not None
            await record_audit(
                conn,
                AuditRecord(program.id, actor, "apply", "program", program.id,
                            {"version": record.applied_version, "previous_version": previous,
                             "revision": record.revision, "source": source}),
                now,
            )
            return ApplyOutcome(record.applied_version, program, True)

        result: ApplyOutcome = await self._transaction(
            f"storing a version of program {program.id[:40]!r}", op
        )
        return result
