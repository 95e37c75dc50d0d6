"""Members: enrollment (initial balances, idempotent), removal, export, reads and paging."""

from __future__ import annotations

import pytest

from arbiter.server.ledger import InvalidArgument, Ledger, NotFound
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import DAY, T0, make_program


@pytest.fixture
def bonus_program() -> program_pb2.Program:
    program = make_program(initial_bonus=500, validity_days=30)
    # An inactive type and a deactivated one grant nothing.
    program.point_types.add(id="old", kind=program_pb2.POINT_KIND_STANDARD, active=False,
                            initial_balance=99)
    gone = program.point_types.add(id="gone", kind=program_pb2.POINT_KIND_STANDARD, active=True,
                                   initial_balance=77)
    gone.deactivate_at.FromDatetime(T0 - DAY)
    return program


async def test_enrollment_grants_initial_balances_and_is_idempotent(
    ledger: Ledger, bonus_program: program_pb2.Program
) -> None:
    first = await ledger.enroll(bonus_program, "m1", registered_at=T0 - 10 * DAY, now=T0)
    assert first.created
    assert first.member.registered_at == T0 - 10 * DAY
    assert first.member.balance("bonus").available == 500
    assert first.member.balance("old").available == 0
    assert first.member.balance("gone").available == 0
    again = await ledger.enroll(bonus_program, "m1", now=T0 + DAY)
    assert not again.created
    assert again.member.registered_at == T0 - 10 * DAY
    page = await ledger.list_transactions(bonus_program, "m1")
    assert [(t.type, t.source_type, t.value, t.point_type) for t in page.transactions] == [
        ("ACCRUAL", "ENROLLMENT", 500, "bonus")
    ]
    events = await ledger.outbox_events()
    assert [e.topic for e in events] == ["member.enrolled", "points.accrued"]


async def test_enroll_many_counts_new_and_existing(
    ledger: Ledger, bonus_program: program_pb2.Program
) -> None:
    await ledger.enroll(bonus_program, "m2", now=T0)

    async def stream():  # type: ignore[no-untyped-def]
        for i in range(7):
            yield f"m{i}"
        yield ("m9", T0 - DAY)

    result = await ledger.enroll_many(bonus_program, stream(), now=T0, chunk_size=3)
    assert (result.enrolled, result.already_enrolled) == (7, 1)
    exported = [m async for m in ledger.export_members(bonus_program, now=T0, batch_size=3)]
    assert sorted(m.member_id for m in exported) == sorted([f"m{i}" for i in range(7)] + ["m9"])
    assert all(m.balance("bonus").available == 500 for m in exported)
    with pytest.raises(InvalidArgument) as err:
        await ledger.enroll_many(bonus_program, ["ok", ""], now=T0)
    assert err.value.fields == ("members[1].member_id",)


async def test_removed_member_is_gone_and_can_enroll_afresh(
    ledger: Ledger, bonus_program: program_pb2.Program
) -> None:
    await ledger.enroll(bonus_program, "m1", now=T0)
    await ledger.create_transaction(bonus_program, member_id="m1", point_type="bonus",
                                    operation="ACCRUAL", points=100, external_id="x", now=T0)
    await ledger.remove_member(bonus_program, "m1", now=T0)
    with pytest.raises(NotFound):
        await ledger.get_member(bonus_program, "m1", now=T0)
    with pytest.raises(NotFound):
        await ledger.remove_member(bonus_program, "m1", now=T0)
    with pytest.raises(NotFound):
        await ledger.list_transactions(bonus_program, "m1")
    again = await ledger.enroll(bonus_program, "m1", now=T0 + DAY)
    assert again.created and again.member.balance("bonus").available == 500
    assert await ledger.remove_all_members(bonus_program, now=T0) == 1
    assert [m async for m in ledger.export_members(bonus_program, now=T0)] == []


async def test_unknown_member_is_not_found(ledger: Ledger, program: program_pb2.Program) -> None:
    with pytest.raises(NotFound, match="member 'nobody'"):
        await ledger.get_member(program, "nobody", now=T0)
    with pytest.raises(InvalidArgument):
        await ledger.enroll(program, "", now=T0)


async def test_list_transactions_pages_oldest_first(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await ledger.enroll(program, "m1", now=T0)
    for i in range(7):
        await ledger.create_transaction(program, member_id="m1",
                                        point_type="bonus" if i % 2 else "miles",
                                        operation="ACCRUAL", points=i + 1, external_id=f"e{i}",
                                        now=T0 + i * DAY)
    seen = []
    token = ""
    while True:
        page = await ledger.list_transactions(program, "m1", page_size=3, page_token=token)
        seen.extend(t.external_id for t in page.transactions)
        assert len(page.transactions) <= 3
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"e{i}" for i in range(7)]
    only = await ledger.list_transactions(program, "m1", point_type="bonus")
    assert [t.value for t in only.transactions] == [2, 4, 6]
    assert [t.balance_after for t in only.transactions] == [2, 6, 12]
    with pytest.raises(InvalidArgument) as err:
        await ledger.list_transactions(program, "m1", page_token="garbage!")
    assert err.value.fields == ("page_token",)
    first = await ledger.list_transactions(program, "m1", page_size=1)
    with pytest.raises(InvalidArgument):
        await ledger.list_transactions(program, "m1", point_type="bonus",
                                       page_token=first.next_page_token)


async def test_expiring_points_and_expiring_soon(ledger: Ledger) -> None:
    program = make_program(validity_days=10)
    await ledger.enroll(program, "m1", now=T0)
    for i, pts in enumerate([100, 200, 300]):
        await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                        operation="ACCRUAL", points=pts, external_id=f"e{i}",
                                        now=T0 + i * DAY)
    # Lots expire at T0+10d, T0+11d, T0+12d.
    now = T0 + 9 * DAY
    lots = await ledger.expiring_points(program, "m1", within_days=2, now=now)
    assert [(lot.points, lot.expires_at) for lot in lots] == [
        (100, T0 + 10 * DAY), (200, T0 + 11 * DAY)]
    lots = await ledger.expiring_points(program, "m1", point_type="bonus", within_days=30,
                                        limit=2, descending=True, now=now)
    assert [lot.points for lot in lots] == [300, 200]
    info = await ledger.get_member(program, "m1", expiring_within_days=2, now=now)
    assert info.balance("bonus").expiring_soon == 300
    assert info.balance("bonus").available == 600
    with pytest.raises(InvalidArgument):
        await ledger.expiring_points(program, "m1", within_days=-1, now=now)
