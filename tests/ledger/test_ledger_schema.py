"""Migrations, the append-only rule, the result codec and the package's public names."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
import pytest

import arbiter.server.ledger as ledger_pkg
from arbiter.server.app.embedded_pg import dsn_with_database, run_psql
from arbiter.server.engine.errors import ArbiterError
from arbiter.server.engine.types import (
    AppliedBenefit,
    CalculationResult,
    LineResult,
    PointsChange,
    PromoCodeResult,
    Totals,
)
from arbiter.server.ledger import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    Ledger,
    LedgerError,
    NotFound,
    StorageUnavailable,
    result_from_json,
    result_to_json,
)
from arbiter.server.ledger._migrate import EARLIER_CHECKSUMS, load_migrations
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import T0


@pytest.fixture
def empty_dsn(pg_dsn: str) -> Iterator[str]:
    name = f"t_empty_{secrets.token_hex(6)}"
    run_psql(pg_dsn, f'CREATE DATABASE "{name}"')
    try:
        yield dsn_with_database(pg_dsn, name)
    finally:
        run_psql(pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_migrations_apply_once_even_when_processes_start_together(empty_dsn: str) -> None:
    ledgers = [await Ledger.connect(empty_dsn, max_size=2) for _ in range(4)]
    try:
        applied = await asyncio.gather(*(lg.migrate() for lg in ledgers))
        names = [m.name for m in load_migrations()]
        assert sorted(applied, key=len) == [[]] * 3 + [names]
        assert await ledgers[0].migrate() == []
        rows = await ledgers[0].pool.fetch("SELECT version, name FROM schema_migrations")
        assert [r["name"] for r in rows] == names
    finally:
        for lg in ledgers:
            await lg.close()


async def test_an_edited_migration_is_refused(empty_dsn: str) -> None:
    async with await Ledger.connect(empty_dsn) as lg:
        await lg.migrate()
        await lg.pool.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
        with pytest.raises(RuntimeError, match="changed after it was applied"):
            await lg.migrate()


async def test_a_comment_only_edit_listed_as_earlier_is_brought_up_to_date(
    empty_dsn: str,
) -> None:
    """A database that applied 0001's earlier text (a comment differed) starts, and its row
    then carries today's checksum; any other checksum is still refused (test above)."""
    (earlier,) = EARLIER_CHECKSUMS[1]
    current = load_migrations()[0].checksum
    assert earlier != current
    async with await Ledger.connect(empty_dsn) as lg:
        await lg.migrate()
        await lg.pool.execute(
            "UPDATE schema_migrations SET checksum = $1 WHERE version = 1", earlier
        )
        assert await lg.migrate() == []
        stored = await lg.pool.fetchval("SELECT checksum FROM schema_migrations WHERE version = 1")
        assert stored == current


async def test_migration_0002_carries_the_old_order_versions_into_the_orders(
    empty_dsn: str,
) -> None:
    """A database from before 0002: the state room's after-commit table `order_versions` held
    the versions; the migration copies them into `orders.program_version`."""
    first = load_migrations()[0]
    assert first.version == 1
    async with await Ledger.connect(empty_dsn) as lg:
        conn: asyncpg.Connection
        async with lg.pool.acquire() as conn:
            await conn.execute(first.sql)
            await conn.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2, $3)",
                               first.version, first.name, first.checksum)
            await conn.execute(
                "CREATE TABLE order_versions (program text, order_id text, version bigint,"
                " member_id text, PRIMARY KEY (program, order_id))")
            member = await conn.fetchval(
                "INSERT INTO members (program, member_id, registered_at, created_at)"
                " VALUES ('p', 'm', $1, $1) RETURNING pk", T0)
            for order_id in ("known", "unknown"):
                await conn.execute(
                    "INSERT INTO orders (program, order_id, member_pk, state, payload_hash,"
                    " result, total, created_at) VALUES ('p', $1, $2, 'CONFIRMED', 'h', '{}', 0,"
                    " $3)", order_id, member, T0)
            await conn.execute("INSERT INTO order_versions VALUES ('p', 'known', 4, 'm')")
        assert await lg.migrate() == [m.name for m in load_migrations()[1:]]
        rows = await lg.pool.fetch("SELECT order_id, program_version FROM orders ORDER BY 1")
        assert [(r["order_id"], r["program_version"]) for r in rows] == [
            ("known", 4), ("unknown", None)]
        assert await lg.migrate() == []


async def test_migration_0007_adopts_the_program_versions_of_before_drafts(
    empty_dsn: str,
) -> None:
    """A database from before 0007: the state room had created `program_versions` itself and
    stored versions 1 and 2 of `p`, and version 1 of `q`, of the same database. The migration
    keeps the table and its rows, and makes each a program whose draft and applied version are
    its last version; the state store then reads their database from that version (the first
    only: one active program per database)."""
    from arbiter.server.state.store import StateStore

    before = [m for m in load_migrations() if m.version < 7]
    v1 = program_pb2.Program(id="p", name="one", database="crm")
    v2 = program_pb2.Program(id="p", name="two", database="crm")
    q = program_pb2.Program(id="q", database="crm")
    async with await Ledger.connect(empty_dsn) as lg:
        conn: asyncpg.Connection
        async with lg.pool.acquire() as conn:
            await conn.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            for migration in before:
                await conn.execute(migration.sql)
                await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2, $3)",
                                   migration.version, migration.name, migration.checksum)
            await conn.execute(
                "CREATE TABLE program_versions (program text NOT NULL, version bigint NOT NULL"
                " CHECK (version > 0), program_pb bytea NOT NULL, applied_at timestamptz NOT"
                " NULL, PRIMARY KEY (program, version))")
            for version, program in ((1, v1), (2, v2)):
                await conn.execute("INSERT INTO program_versions VALUES ('p', $1, $2, $3)",
                                   version, program.SerializeToString(deterministic=True), T0)
            # Another program of the same database, applied before the rule existed.
            await conn.execute("INSERT INTO program_versions VALUES ('q', 1, $1, $2)",
                               q.SerializeToString(deterministic=True), T0)
        assert "0007_configuration.sql" in await lg.migrate()
        store = StateStore(lg.pool)
        await store.open()
        record = await store.record("p")
        assert (record.applied_version, record.draft, record.has_draft_changes) == (2, v2, False)
        assert record.database == "crm"
        assert await store.version("p", 1) == v1
        assert [(s.version, s.program) for s in await store.latest_programs()] == [
            (2, v2), (1, q)]
        # Only one active program per database: the other one is left bound to none.
        assert (await store.record("q")).database == ""


async def test_transactions_are_append_only(ledger: Ledger, program: program_pb2.Program) -> None:
    await ledger.enroll(program, "m1", now=T0)
    await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                    operation="ACCRUAL", points=10, external_id="e1", now=T0)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await ledger.pool.execute("UPDATE transactions SET value = 11")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await ledger.pool.execute("DELETE FROM transactions")


async def test_unreachable_database_is_storage_unavailable() -> None:
    with pytest.raises(StorageUnavailable):
        await Ledger.connect("postgresql://nobody@127.0.0.1:1/none", timeout=2)


def test_errors_are_arbiter_errors() -> None:
    for cls in (NotFound, Conflict, FailedPrecondition, InvalidArgument, StorageUnavailable):
        assert issubclass(cls, LedgerError) and issubclass(cls, ArbiterError)
    err = InvalidArgument.field("points", "must be positive")
    assert err.fields == ("points",)


def test_public_names_are_pinned() -> None:
    assert set(ledger_pkg.__all__) == {
        "DEFAULT_HOLD_SECONDS", "MAX_HOLD_SECONDS", "DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE",
        "MAX_ID_CHARS",
        "AuditEntry", "AuditRecord", "BalanceInfo", "CodeUses", "Compute",
        "Conflict", "EnrollManyResult", "EnrollResult", "ExpiringLot", "ExpiryReport",
        "FailedPrecondition",
        "HoldNotActive", "InsufficientPoints", "InvalidArgument", "Ledger", "LedgerError",
        "LedgerProgram", "MemberBatch", "MemberInfo", "MemberSnapshot", "NotFound",
        "OrderOutcome", "OrderRequest",
        "OrderStateError", "OutboxEvent", "PointsMovement", "ProgramLike", "StorageUnavailable",
        "TierChange", "TierPeriodReport", "TierStatus", "TotalMismatch", "Transaction",
        "TransactionFilter", "TransactionPage", "line_points", "read_audit", "record_audit",
        "result_from_json",
        "result_to_json", "storage_errors",
    }
    for name in ledger_pkg.__all__:
        assert getattr(ledger_pkg, name) is not None


def test_result_codec_round_trips_exactly() -> None:
    result = CalculationResult(
        evaluated_at=datetime(2025, 3, 1, 10, 30, 15, 123456, tzinfo=UTC),
        totals=Totals(100_000, 20_000, 12_000, 500, 500, 68_000, 3),
        lines=(LineResult("a", 60_000, 12_000, 7_200, 40_800, ((1, 13_601), (2, 13_600))),
               LineResult("b", 40_000, 8_000, 4_800, 27_200, ((1, 27_200),))),
        benefits=(AppliedBenefit("a", "A", "DISCOUNT", "discount", 12_000, 0, ""),
                  AppliedBenefit("", "C", "POINTS", "accrue_points", 0, 17, "bonus",
                                 "ON_DELIVERY")),
        points=(PointsChange("bonus", 50_000, 12_000, 0, 17),),
        texts=("Привет, {member.id} 🎉",),
        promo_codes=(PromoCodeResult("Summer", "APPLIED", "", "pool1"),
                     PromoCodeResult("x", "INVALID", "UNKNOWN_CODE")),
    )
    assert result_from_json(result_to_json(result)) == result
