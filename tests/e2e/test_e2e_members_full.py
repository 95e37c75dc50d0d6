"""Members in full end to end (docs/reports.md, "Members"): registration dates from a profile
field, EnrollSegment, ClearMembers, the program's transactions filtered and paged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import timestamp_pb2

from arbiter.v1 import admin_pb2, admin_pb2_grpc, member_pb2
from tests.e2e.conftest import E2E, INITIAL_BONUS, PROGRAM, T0, order_request, shop_program
from tests.e2e.test_e2e_members import error_of
from tests.ledger.ledger_support import check_invariants

pytestmark = pytest.mark.asyncio

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT


def stamp(at: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(at)
    return out


def enroll_request(member_id: str, **fields: str) -> member_pb2.EnrollMemberRequest:
    return member_pb2.EnrollMemberRequest(program=PROGRAM, member_id=member_id,
                                          registration_field="joined", fields=fields)


# --- registration dates -------------------------------------------------------------------------


async def test_the_registration_date_comes_from_the_field_the_request_names(e2e: E2E) -> None:
    dated = await e2e.members.EnrollMember(enroll_request("m-1", joined="2024-03-05"))
    assert dated.member.registered_at.ToDatetime(UTC) == datetime(2024, 3, 5, tzinfo=UTC)
    instant = await e2e.members.EnrollMember(
        enroll_request("m-2", joined="2024-03-05T10:30:00+03:00"))
    assert instant.member.registered_at.ToDatetime(UTC) == datetime(2024, 3, 5, 7, 30,
                                                                   tzinfo=UTC)
    # registered_at, when given, wins; neither: the server's clock.
    given = enroll_request("m-3", joined="2024-03-05")
    given.registered_at.CopyFrom(stamp(T0 - timedelta(days=1)))
    assert (await e2e.members.EnrollMember(given)).member.registered_at.ToDatetime(UTC) == (
        T0 - timedelta(days=1))
    plain = await e2e.enroll("m-4")
    assert plain.member.registered_at.ToDatetime(UTC) == T0


async def test_a_date_is_midnight_in_the_programs_time_zone(e2e: E2E) -> None:
    program = shop_program()
    program.time_zone = "Europe/Moscow"
    admin = admin_pb2_grpc.AdminServiceStub(e2e.channel)
    await admin.ImportProgram(admin_pb2.ImportProgramRequest(program=program))
    await admin.Apply(admin_pb2.ApplyRequest(program=PROGRAM))
    dated = await e2e.members.EnrollMember(enroll_request("m-1", joined="2024-03-05"))
    assert dated.member.registered_at.ToDatetime(UTC) == datetime(2024, 3, 4, 21, tzinfo=UTC)


async def test_a_missing_or_bad_registration_field_names_it(e2e: E2E) -> None:
    assert await error_of(e2e.members.EnrollMember(enroll_request("m-1"))) == (
        INVALID_ARGUMENT, ["fields[joined]"])
    assert await error_of(e2e.members.EnrollMember(enroll_request("m-1", joined="soon"))) == (
        INVALID_ARGUMENT, ["fields[joined]"])

    async def stream() -> AsyncIterator[member_pb2.EnrollMemberRequest]:
        yield enroll_request("m-2", joined="2024-01-01")
        yield enroll_request("m-3", joined="bad")

    assert await error_of(e2e.members.EnrollMembers(stream())) == (
        INVALID_ARGUMENT, ["members[1].fields[joined]"])


async def test_enroll_members_takes_each_members_field(e2e: E2E) -> None:
    async def stream() -> AsyncIterator[member_pb2.EnrollMemberRequest]:
        yield enroll_request("m-1", joined="2024-01-01")
        yield enroll_request("m-2", joined="2024-02-01")

    result = await e2e.members.EnrollMembers(stream())
    assert (result.enrolled, result.already_enrolled) == (2, 0)
    m2 = await e2e.members.GetMember(member_pb2.GetMemberRequest(program=PROGRAM,
                                                                 member_id="m-2"))
    assert m2.registered_at.ToDatetime(UTC) == datetime(2024, 2, 1, tzinfo=UTC)
    assert next(b for b in m2.balances if b.point_type == "bonus").available == INITIAL_BONUS


# --- EnrollSegment ------------------------------------------------------------------------------


async def test_enroll_segment_enrolls_every_id_of_the_applied_segment(e2e: E2E) -> None:
    program = shop_program()
    program.member_segments.add(id="vip", name="VIP", members=["v-1", "v-2", "v-3"])
    admin = admin_pb2_grpc.AdminServiceStub(e2e.channel)
    await admin.ImportProgram(admin_pb2.ImportProgramRequest(program=program))
    # Only the applied version counts.
    assert (await error_of(e2e.members.EnrollSegment(member_pb2.EnrollSegmentRequest(
        program=PROGRAM, segment="vip"))))[0] == grpc.StatusCode.NOT_FOUND
    await admin.Apply(admin_pb2.ApplyRequest(program=PROGRAM))
    await e2e.enroll("v-2")
    result = await e2e.members.EnrollSegment(member_pb2.EnrollSegmentRequest(
        program=PROGRAM, segment="vip"))
    assert (result.enrolled, result.already_enrolled) == (2, 1)
    v3 = await e2e.members.GetMember(member_pb2.GetMemberRequest(program=PROGRAM,
                                                                 member_id="v-3"))
    assert next(b for b in v3.balances if b.point_type == "bonus").available == INITIAL_BONUS
    again = await e2e.members.EnrollSegment(member_pb2.EnrollSegmentRequest(
        program=PROGRAM, segment="vip"))
    assert (again.enrolled, again.already_enrolled) == (0, 3)
    assert await error_of(e2e.members.EnrollSegment(member_pb2.EnrollSegmentRequest(
        program=PROGRAM))) == (INVALID_ARGUMENT, ["segment"])


# --- ClearMembers -------------------------------------------------------------------------------


async def test_clear_members_needs_confirm_and_removes_everyone_keeping_history(
    e2e: E2E,
) -> None:
    for member_id in ("m-1", "m-2", "m-3"):
        await e2e.enroll(member_id)
    await e2e.checkout.ConfirmOrder(order_request("o1", "m-1"))

    async def run(request: member_pb2.ClearMembersRequest) -> list[member_pb2.ClearMembersResponse]:
        return [m async for m in e2e.members.ClearMembers(request)]

    assert await error_of(run(member_pb2.ClearMembersRequest(program=PROGRAM))) == (
        INVALID_ARGUMENT, ["confirm"])
    assert (await e2e.members.GetMember(member_pb2.GetMemberRequest(
        program=PROGRAM, member_id="m-1"))).member_id == "m-1"  # nothing was removed

    messages = await run(member_pb2.ClearMembersRequest(program=PROGRAM, confirm=True))
    assert messages[0].removed == 0 and messages[0].total == 3
    assert messages[-1].done and messages[-1].removed == 3
    assert not any(m.done for m in messages[:-1])
    assert (await error_of(e2e.members.GetMember(member_pb2.GetMemberRequest(
        program=PROGRAM, member_id="m-1"))))[0] == grpc.StatusCode.NOT_FOUND
    assert e2e.app.ledger is not None
    async with e2e.app.ledger.pool.acquire() as conn:
        kept = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE removed) AS removed, count(*) AS members,"
            " (SELECT count(*) FROM transactions) AS txns, (SELECT count(*) FROM orders)"
            " AS orders FROM members")
        assert tuple(kept) == (3, 3, 4, 1)  # three bonuses, one accrual; the order stays
        await check_invariants(conn)
    # Cleared again: nothing left to remove.
    messages = await run(member_pb2.ClearMembersRequest(program=PROGRAM, confirm=True))
    assert (messages[-1].removed, messages[-1].total, messages[-1].done) == (0, 0, True)


# --- ListTransactions across the program --------------------------------------------------------


async def test_list_transactions_without_a_member_lists_the_program_filtered(e2e: E2E) -> None:
    await e2e.enroll("m-1")
    e2e.clock.advance(timedelta(hours=1))
    await e2e.enroll("m-2")
    await e2e.checkout.ConfirmOrder(order_request("o1", "m-1", redeem=100))

    async def listed(**fields: object) -> list[tuple[str, str, int]]:
        request = member_pb2.ListTransactionsRequest(program=PROGRAM, **fields)  # type: ignore[arg-type]
        response = await e2e.members.ListTransactions(request)
        return [(t.member_id, member_pb2.TransactionType.Name(t.type), t.value)
                for t in response.transactions]

    everything = await listed()
    assert [t[0] for t in everything] == ["m-1", "m-2", "m-1", "m-1"]
    assert await listed(source_type=member_pb2.SOURCE_TYPE_ENROLLMENT) == [
        ("m-1", "TRANSACTION_TYPE_ACCRUAL", INITIAL_BONUS),
        ("m-2", "TRANSACTION_TYPE_ACCRUAL", INITIAL_BONUS),
    ]
    assert await listed(type=member_pb2.TRANSACTION_TYPE_REDEMPTION) == [
        ("m-1", "TRANSACTION_TYPE_REDEMPTION", -100)]
    assert [t[0] for t in await listed(**{"from": stamp(T0 + timedelta(minutes=30))})] == [
        "m-2", "m-1", "m-1"]
    assert [t[0] for t in await listed(**{"to": stamp(T0 + timedelta(minutes=30))})] == ["m-1"]
    assert await listed(point_type="miles") == []
    # The member's own list takes the same filters.
    assert await listed(member_id="m-1", source_type=member_pb2.SOURCE_TYPE_ORDER) == [
        ("m-1", "TRANSACTION_TYPE_REDEMPTION", -100), ("m-1", "TRANSACTION_TYPE_ACCRUAL", 90)]

    # Paged: a token continues its own query only.
    first = await e2e.members.ListTransactions(member_pb2.ListTransactionsRequest(
        program=PROGRAM, page_size=3))
    assert len(first.transactions) == 3 and first.next_page_token
    rest = await e2e.members.ListTransactions(member_pb2.ListTransactionsRequest(
        program=PROGRAM, page_size=3, page_token=first.next_page_token))
    assert [t.id for t in rest.transactions] == [everything_id := rest.transactions[0].id]
    assert everything_id not in {t.id for t in first.transactions}
    assert not rest.next_page_token
    assert await error_of(e2e.members.ListTransactions(member_pb2.ListTransactionsRequest(
        program=PROGRAM, page_size=3, page_token=first.next_page_token,
        type=member_pb2.TRANSACTION_TYPE_ACCRUAL))) == (INVALID_ARGUMENT, ["page_token"])


async def test_list_transactions_filter_errors_name_the_field(e2e: E2E) -> None:
    async def fields_of(**fields: object) -> tuple[grpc.StatusCode, list[str]]:
        request = member_pb2.ListTransactionsRequest(program=PROGRAM, **fields)  # type: ignore[arg-type]
        return await error_of(e2e.members.ListTransactions(request))

    assert await fields_of(type=99) == (INVALID_ARGUMENT, ["type"])
    assert await fields_of(source_type=99) == (INVALID_ARGUMENT, ["source_type"])
    assert await fields_of(**{"from": stamp(T0), "to": stamp(T0)}) == (INVALID_ARGUMENT, ["to"])
    assert await fields_of(point_type="nope") == (INVALID_ARGUMENT, ["point_type"])
