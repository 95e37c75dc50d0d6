"""Ledger fixtures: a migrated Ledger on a fresh database per test, its invariants checked after.

The schema is migrated once into a template database per session; each test's database is a copy
of it (CREATE DATABASE ... TEMPLATE), which is much faster than migrating every time. The
migrations themselves are tested on an empty database in test_ledger_schema.py.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from arbiter.server.app.embedded_pg import dsn_with_database, run_psql
from arbiter.server.ledger import Ledger
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import check_invariants, make_program

_TEMPLATE = f"ledger_tpl_{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def ledger_template(pg_dsn: str) -> Iterator[str]:
    run_psql(pg_dsn, f'CREATE DATABASE "{_TEMPLATE}"')
    try:
        import asyncio

        async def migrate() -> None:
            conn = await asyncpg.connect(dsn_with_database(pg_dsn, _TEMPLATE))
            try:
                from arbiter.server.ledger._migrate import apply_migrations

                await apply_migrations(conn)
            finally:
                await conn.close()

        asyncio.run(migrate())
        yield _TEMPLATE
    finally:
        run_psql(pg_dsn, f'DROP DATABASE IF EXISTS "{_TEMPLATE}" WITH (FORCE)')


@pytest.fixture
def ledger_dsn(pg_dsn: str, ledger_template: str) -> Iterator[str]:
    name = f"t_ledger_{secrets.token_hex(6)}"
    run_psql(pg_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{ledger_template}"')
    try:
        yield dsn_with_database(pg_dsn, name)
    finally:
        run_psql(pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def ledger(ledger_dsn: str) -> AsyncIterator[Ledger]:
    """A migrated ledger; after the test, the chain and lot invariants must hold."""
    lg = await Ledger.connect(ledger_dsn, min_size=1, max_size=40)
    try:
        await lg.migrate()  # a no-op on the template copy: applying twice changes nothing
        yield lg
        async with lg.pool.acquire() as conn:
            await check_invariants(conn)
    finally:
        await lg.close()


@pytest.fixture
def program() -> program_pb2.Program:
    return make_program()
