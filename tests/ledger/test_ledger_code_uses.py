"""Ledger.code_uses (what a quote's code cache reads) and the translation of a lost database."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from arbiter.server.ledger import (
    CodeUses,
    InvalidArgument,
    Ledger,
    StorageUnavailable,
    storage_errors,
)
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import T0, FakeOrder, make_program

SEC = timedelta(seconds=1)


def _pools() -> list[program_pb2.PromoCodePool]:
    pool = program_pb2.PromoCodePool(id="single", name="single")
    pool.codes.add(code="ONCE", max_uses=1)
    pool.codes.add(code="MANY", max_uses=0)
    return [pool]


async def test_code_uses_count_held_and_confirmed_uses_until_the_hold_lapses(
    ledger: Ledger,
) -> None:
    program = make_program(pools=_pools())
    for member in ("m1", "m2"):
        await ledger.enroll(program, member, now=T0)
    assert await ledger.code_uses(program, ["once", "Nobody"], now=T0) == {
        "ONCE": CodeUses("ONCE", 0, None),
        "NOBODY": CodeUses("NOBODY", 0, None),
    }
    held = FakeOrder("o1", member_id="m1", codes=("once",))
    out = await ledger.reserve_order(program, held.request(), held.compute(program),
                                     hold_seconds=60, now=T0)
    assert out.hold_until == T0 + 60 * SEC
    confirmed = FakeOrder("o2", member_id="m2", codes=("many",))
    await ledger.confirm_order(program, confirmed.request(), confirmed.compute(program), now=T0)

    uses = await ledger.code_uses(program, ["ONCE", "many", "once"], now=T0 + SEC)
    # A held use counts until hold_until, which is when the count drops by time alone.
    assert uses == {
        "ONCE": CodeUses("ONCE", 1, T0 + 60 * SEC),
        "MANY": CodeUses("MANY", 1, None),
    }
    lapsed = await ledger.code_uses(program, ["once"], now=T0 + 60 * SEC)
    assert lapsed == {"ONCE": CodeUses("ONCE", 0, None)}
    assert await ledger.code_uses(program, [], now=T0) == {}


async def test_code_uses_refuses_an_unbounded_read(ledger: Ledger) -> None:
    program = make_program(pools=_pools())
    with pytest.raises(InvalidArgument) as caught:
        await ledger.code_uses(program, [f"c{i}" for i in range(1_001)], now=T0)
    assert caught.value.fields == ("codes",)


def test_storage_errors_translate_a_lost_database_and_nothing_else() -> None:
    lost = (
        ConnectionRefusedError(111, "Connect call failed"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    )
    for error in lost:
        with (
            pytest.raises(StorageUnavailable, match="reading x: the database is unavailable"),
            storage_errors("reading x"),
        ):
            raise error
    with pytest.raises(asyncpg.UniqueViolationError), storage_errors("reading x"):
        raise asyncpg.UniqueViolationError("duplicate key")
