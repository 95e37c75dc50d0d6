"""Enrolling many members set-based writes what enrolling them one by one writes (members,
balances, the initial balance's transaction and lot, the events); clearing the program removes
everyone in batches and keeps their history. The ledger fixture checks the invariants after."""

from __future__ import annotations

from typing import Any

import pytest

from arbiter.server.ledger import InvalidArgument, Ledger, NotFound
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import DAY, T0, make_program


@pytest.fixture
def bonus_program() -> program_pb2.Program:
    program = make_program(initial_bonus=500, validity_days=30)
    program.point_types.add(id="zero", kind=program_pb2.POINT_KIND_STANDARD, active=True)
    return program


async def _rows(ledger: Ledger, member_ids: list[str]) -> list[Any]:
    """What enrollment wrote of each member, without keys and ids that differ by run."""
    return [
        tuple(r) for r in await ledger.pool.fetch(
            """
            SELECT m.member_id, m.registered_at, m.created_at,
                   (SELECT array_agg(ARRAY[b.point_type, b.balance::text, b.txn_count::text]
                                     ORDER BY b.point_type) FROM balances b
                    WHERE b.member_pk = m.pk) AS balances,
                   (SELECT array_agg(ARRAY[t.point_type, t.type, t.value::text,
                                           t.source_type, t.source_id, t.comment]
                                     ORDER BY t.pk) FROM transactions t
                    WHERE t.member_pk = m.pk) AS txns,
                   (SELECT array_agg(ARRAY[l.point_type, l.state, l.points::text,
                                           l.expires_at::text] ORDER BY l.pk) FROM lots l
                    WHERE l.member_pk = m.pk) AS lots,
                   (SELECT array_agg(ARRAY[o.topic, (o.payload - 'transaction_id')::text]
                                     ORDER BY o.pk) FROM outbox o
                    WHERE o.member_id = m.member_id) AS events
            FROM members m WHERE m.member_id = ANY($1::text[]) ORDER BY m.member_id
            """,
            member_ids,
        )
    ]


async def test_bulk_enrollment_writes_what_one_by_one_does(
    ledger: Ledger, bonus_program: program_pb2.Program
) -> None:
    await ledger.enroll(bonus_program, "a1", registered_at=T0 - DAY, now=T0)
    result = await ledger.enroll_many(
        bonus_program, [("b1", T0 - DAY), ("b1", T0), "a1"], now=T0
    )
    assert (result.enrolled, result.already_enrolled) == (1, 2)
    one, many = await _rows(ledger, ["a1", "b1"])
    # The same rows but for the member's id.
    assert repr(one[1:]).replace("a1", "ID") == repr(many[1:]).replace("b1", "ID")
    balances = {b[0]: (b[1], b[2]) for b in one[3]}
    assert balances.pop("bonus") == ("500", "1")
    assert "zero" in balances and set(balances.values()) == {("0", "0")}
    # Every event names its transaction, as one by one.
    missing = await ledger.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE topic = 'points.accrued'"
        " AND NOT payload ? 'transaction_id'"
    )
    assert missing == 0


async def test_bulk_enrollment_in_many_chunks(ledger: Ledger,
                                              bonus_program: program_pb2.Program) -> None:
    ids = [f"m{i}" for i in range(25)]
    result = await ledger.enroll_many(bonus_program, ids, now=T0, chunk_size=7)
    assert (result.enrolled, result.already_enrolled) == (25, 0)
    total = await ledger.pool.fetchval("SELECT sum(balance) FROM balances")
    assert total == 25 * 500


async def test_batches_in_chunks_written_side_by_side(
    ledger: Ledger, bonus_program: program_pb2.Program
) -> None:
    """Chunks of 4 from batches of 3, two written at once: an id in two chunks in flight is
    enrolled once; each chunk's ids are reported once its write ended."""
    batches = [[f"m{i}" for i in range(s, s + 3)] for s in range(0, 30, 3)]
    batches[5].append("m0")  # again, in a later chunk

    async def stream():  # type: ignore[no-untyped-def]
        for ids in batches:
            yield ids, [T0 - DAY if i % 2 else None for i in range(len(ids))]

    written: list[str] = []
    result = await ledger.enroll_batches(bonus_program, stream(), now=T0, chunk_size=4,
                                         in_flight=2, written=written.extend)
    assert (result.enrolled, result.already_enrolled) == (30, 1)
    assert sorted(written) == sorted([m for ids in batches for m in ids])
    members = {m.member_id: m async for m in ledger.export_members(bonus_program, now=T0)}
    assert len(members) == 30 and all(m.balance("bonus").available == 500
                                      for m in members.values())
    assert members["m1"].registered_at == T0 - DAY and members["m0"].registered_at == T0
    events = await ledger.outbox_events()
    assert [e.topic for e in events].count("member.enrolled") == 30


async def test_a_bad_id_in_a_batch_is_named_by_its_place_in_the_stream(
    ledger: Ledger, bonus_program: program_pb2.Program
) -> None:
    async def stream():  # type: ignore[no-untyped-def]
        yield ["a", "b"], [None, None]
        yield ["c", "x" * 257], [None, None]

    with pytest.raises(InvalidArgument) as err:
        await ledger.enroll_batches(bonus_program, stream(), now=T0)
    assert err.value.fields == ("members[3].member_id",)
    assert await ledger.pool.fetchval("SELECT count(*) FROM members") == 0


async def test_clearing_removes_everyone_in_batches_and_keeps_history(
    ledger: Ledger, bonus_program: program_pb2.Program
) -> None:
    await ledger.enroll_many(bonus_program, [f"m{i}" for i in range(5)], now=T0)
    steps = [s async for s in ledger.clear_members(bonus_program, now=T0 + DAY, batch_size=2)]
    assert steps == [(0, 5), (2, 5), (4, 5), (5, 5)]
    with pytest.raises(NotFound):
        await ledger.get_member(bonus_program, "m0", now=T0 + DAY)
    kept = await ledger.pool.fetchrow(
        "SELECT count(*) FILTER (WHERE removed AND removed_at IS NOT NULL) AS removed,"
        " (SELECT count(*) FROM transactions) AS txns FROM members"
    )
    assert tuple(kept) == (5, 5)
    # Enrolling an id again starts a new member.
    again = await ledger.enroll(bonus_program, "m0", now=T0 + 2 * DAY)
    assert again.created and again.member.balance("bonus").available == 500
