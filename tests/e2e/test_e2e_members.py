"""MemberService end to end: enrollment, balances, manual points, paging, errors, jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from arbiter.v1 import member_pb2
from tests.e2e.conftest import DAY, E2E, INITIAL_BONUS, PROGRAM, shop_program

pytestmark = pytest.mark.asyncio


async def error_of(call: Awaitable[object]) -> tuple[grpc.StatusCode, list[str]]:
    """The status code and the BadRequest field names of a failed call."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    fields: list[str] = []
    for key, value in caught.value.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    fields.extend(v.field for v in bad.field_violations)
    return caught.value.code(), fields


def accrual(
    member_id: str, points: int, external_id: str, point_type: str = "bonus"
) -> member_pb2.CreateTransactionRequest:
    return member_pb2.CreateTransactionRequest(
        program=PROGRAM,
        member_id=member_id,
        point_type=point_type,
        operation=member_pb2.OPERATION_ACCRUAL,
        points=points,
        external_id=external_id,
        comment="goodwill",
        extra='{"ticket": 7}',
    )


async def test_enroll_then_get_member_shows_the_initial_balance(e2e: E2E) -> None:
    enrolled = await e2e.enroll("m-1")
    assert enrolled.created
    assert enrolled.member.member_id == "m-1"
    again = await e2e.enroll("m-1")
    assert not again.created
    bonus = await e2e.bonus("m-1")
    assert (bonus.available, bonus.held, bonus.pending, bonus.balance) == (
        INITIAL_BONUS,
        0,
        0,
        INITIAL_BONUS,
    )


async def test_create_transaction_accrual_and_deduction_move_the_balance(e2e: E2E) -> None:
    await e2e.enroll("m-1")
    response = await e2e.members.CreateTransaction(accrual("m-1", 250, "manual-1"))
    txn = response.transaction
    assert txn.type == member_pb2.TRANSACTION_TYPE_ACCRUAL
    assert txn.source_type == member_pb2.SOURCE_TYPE_MANUAL
    assert (txn.balance_before, txn.value, txn.balance_after) == (1000, 250, 1250)
    # Idempotent by external_id.
    assert (
        await e2e.members.CreateTransaction(accrual("m-1", 250, "manual-1"))
    ).transaction.id == txn.id
    deduction = accrual("m-1", 50, "manual-2")
    deduction.operation = member_pb2.OPERATION_DEDUCTION
    txn2 = (await e2e.members.CreateTransaction(deduction)).transaction
    assert txn2.type == member_pb2.TRANSACTION_TYPE_REDEMPTION
    assert (await e2e.bonus("m-1")).available == 1200


async def test_list_transactions_pages_oldest_first(e2e: E2E) -> None:
    await e2e.enroll("m-1")
    for index in range(5):
        await e2e.members.CreateTransaction(accrual("m-1", index + 1, f"x-{index}"))
    seen: list[int] = []
    token = ""
    pages = 0
    while True:
        page = await e2e.members.ListTransactions(
            member_pb2.ListTransactionsRequest(
                program=PROGRAM, member_id="m-1", point_type="bonus", page_size=2, page_token=token
            )
        )
        seen.extend(t.value for t in page.transactions)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == [INITIAL_BONUS, 1, 2, 3, 4, 5]
    assert pages == 3


async def test_bad_input_is_invalid_argument_naming_the_field(e2e: E2E) -> None:
    await e2e.enroll("m-1")
    members = e2e.members
    assert await error_of(
        members.EnrollMember(member_pb2.EnrollMemberRequest(program=PROGRAM))
    ) == (grpc.StatusCode.INVALID_ARGUMENT, ["member_id"])
    assert await error_of(members.CreateTransaction(accrual("m-1", 5, "e", point_type="nope"))) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["point_type"],
    )
    assert await error_of(members.CreateTransaction(accrual("m-1", 0, "e"))) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["points"],
    )
    code, fields = await error_of(
        members.ListTransactions(
            member_pb2.ListTransactionsRequest(program=PROGRAM, member_id="m-1", page_size=1001)
        )
    )
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["page_size"])
    code, _ = await error_of(
        members.GetMember(member_pb2.GetMemberRequest(program="no-such-program", member_id="m-1"))
    )
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await error_of(
        members.GetMember(member_pb2.GetMemberRequest(program=PROGRAM, member_id="stranger"))
    )
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await error_of(members.CreateTransaction(accrual("stranger", 5, "e")))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_enroll_members_stream_export_and_remove(e2e: E2E) -> None:
    await e2e.enroll("m-0")

    async def requests() -> AsyncIterator[member_pb2.EnrollMemberRequest]:
        for index in range(1200):
            yield member_pb2.EnrollMemberRequest(program=PROGRAM, member_id=f"m-{index}")

    result = await e2e.members.EnrollMembers(requests())
    assert (result.enrolled, result.already_enrolled) == (1199, 1)
    exported = [
        m async for m in e2e.members.ExportMembers(member_pb2.ExportMembersRequest(program=PROGRAM))
    ]
    assert len(exported) == 1200
    assert exported[0].member_id == "m-0"
    await e2e.members.RemoveMember(member_pb2.RemoveMemberRequest(program=PROGRAM, member_id="m-5"))
    code, _ = await error_of(
        e2e.members.GetMember(member_pb2.GetMemberRequest(program=PROGRAM, member_id="m-5"))
    )
    assert code == grpc.StatusCode.NOT_FOUND


async def test_expiry_job_with_a_moved_clock(e2e: E2E) -> None:
    await e2e.app.apply_program(shop_program(bonus_validity_days=10))
    await e2e.enroll("m-1")
    await e2e.members.CreateTransaction(accrual("m-1", 300, "a-1"))
    lots = await e2e.members.GetExpiringPoints(
        member_pb2.GetExpiringPointsRequest(
            program=PROGRAM, member_id="m-1", point_type="bonus", within_days=30
        )
    )
    assert sum(lot.points for lot in lots.lots) == 1300
    assert (await e2e.bonus("m-1")).expiring_soon == 1300
    e2e.clock.advance(11 * DAY)
    # Expired points never count as available, even before the job wrote them off.
    assert (await e2e.bonus("m-1")).available == 0
    assert e2e.app.jobs is not None
    report = await e2e.app.jobs.run_once()
    assert report.expiry[PROGRAM].points == 1300
    assert report.relayed > 0
    bonus = await e2e.bonus("m-1")
    assert (bonus.available, bonus.balance) == (0, 0)
    again = await e2e.app.jobs.run_once()
    assert again.expiry[PROGRAM].points == 0
