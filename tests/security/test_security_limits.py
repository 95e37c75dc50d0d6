"""Limits through gRPC: each request over one is INVALID_ARGUMENT naming the field; a call whose
deadline passes stops and leaves nothing half-written."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest

from arbiter.server.api import member as member_api
from arbiter.v1 import checkout_pb2, member_pb2
from tests.e2e.conftest import E2E, PROGRAM, as_calculate, clock, e2e, order_request
from tests.e2e.test_e2e_members import accrual, error_of
from tests.ledger.ledger_support import check_invariants
from tests.security.test_security_logs import _lines, rpc_lines

__all__ = ["clock", "e2e", "rpc_lines"]  # fixtures from elsewhere, used here

MiB = 1024 * 1024


def _quote(lines: int = 1) -> checkout_pb2.CalculateOrderRequest:
    request = as_calculate(order_request("o-1"))
    request.member_id = ""
    del request.order.lines[:]
    for index in range(lines):
        request.order.lines.add(id=f"l{index}", sku="s", quantity=1, unit_price=100)
    return request


async def test_lines_per_order(e2e: E2E) -> None:
    await e2e.checkout.CalculateOrder(_quote(1000))
    assert await error_of(e2e.checkout.CalculateOrder(_quote(1001))) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["order.lines"],
    )
    confirm = order_request("o-big")
    confirm.order.lines.extend(_quote(1001).order.lines)
    code, fields = await error_of(e2e.checkout.ConfirmOrder(confirm))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "order.lines" in fields


async def test_promo_codes_per_order(e2e: E2E) -> None:
    request = _quote()
    request.order.promo_codes.extend(f"CODE{i}" for i in range(30))
    await e2e.checkout.CalculateOrder(request)
    request.order.promo_codes.append("ONE-MORE")
    assert await error_of(e2e.checkout.CalculateOrder(request)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["order.promo_codes"],
    )


async def test_message_over_4_mib_names_its_largest_field(e2e: E2E) -> None:
    request = _quote()
    request.member_context.segments.extend(f"segment-{i:09d}" for i in range(9_000))
    request.order.lines[0].sku = "x" * (4 * MiB)
    assert await error_of(e2e.checkout.CalculateOrder(request)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["order.lines"],
    )
    members = e2e.members
    code, fields = await error_of(
        members.GetMember(member_pb2.GetMemberRequest(program=PROGRAM, member_id="m" * (5 * MiB)))
    )
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["member_id"])


async def test_a_message_of_a_client_stream_over_4_mib(e2e: E2E) -> None:
    async def requests() -> AsyncIterator[member_pb2.EnrollMemberRequest]:
        yield member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="ok-1")
        yield member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="y" * (5 * MiB))

    code, fields = await error_of(e2e.members.EnrollMembers(requests()))
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["requests[1].member_id"])


async def test_far_beyond_the_limit_grpc_refuses_unread(e2e: E2E) -> None:
    request = _quote()
    request.order.lines[0].sku = "x" * (17 * MiB)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await e2e.checkout.CalculateOrder(request)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_page_size_at_most_1000_and_0_means_100(e2e: E2E) -> None:
    await e2e.enroll("m-1")
    for index in range(105):
        await e2e.members.CreateTransaction(accrual("m-1", 1, f"ext-{index}"))
    page = await e2e.members.ListTransactions(
        member_pb2.ListTransactionsRequest(program=PROGRAM, member_id="m-1")
    )
    assert len(page.transactions) == 100 and page.next_page_token
    page = await e2e.members.ListTransactions(
        member_pb2.ListTransactionsRequest(program=PROGRAM, member_id="m-1", page_size=1000)
    )
    assert len(page.transactions) == 106  # the 1,000-point enrollment bonus and 105 accruals
    for size in (1001, -1):
        assert await error_of(
            e2e.members.ListTransactions(
                member_pb2.ListTransactionsRequest(program=PROGRAM, member_id="m-1", page_size=size)
            )
        ) == (grpc.StatusCode.INVALID_ARGUMENT, ["page_size"])


async def test_enroll_stream_length(e2e: E2E, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(member_api, "MAX_ENROLL_STREAM", 3)

    async def requests(count: int) -> AsyncIterator[member_pb2.EnrollMemberRequest]:
        for index in range(count):
            yield member_pb2.EnrollMemberRequest(program=PROGRAM, member_id=f"s-{index}")

    response = await e2e.members.EnrollMembers(requests(3))
    assert response.enrolled == 3
    assert await error_of(e2e.members.EnrollMembers(requests(4))) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["members"],
    )


async def test_a_confirm_past_its_deadline_is_whole_or_nothing(e2e: E2E, pg_database: str) -> None:
    """A write already begun is not cut in the middle: it commits whole or not at all (here it
    waits for a lock, then commits), and the caller's retry with the same order id gets the
    same order, never a second spending."""
    await e2e.enroll("m-1")
    before = await e2e.bonus("m-1")
    blocker = await asyncpg.connect(pg_database)
    try:
        locked = blocker.transaction()
        await locked.start()
        # The member's balance rows, locked as any writer locks them: the confirm must wait.
        await blocker.execute(
            "SELECT 1 FROM balances b JOIN members m ON m.pk = b.member_pk"
            " WHERE m.member_id = 'm-1' FOR UPDATE"
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await e2e.checkout.ConfirmOrder(order_request("o-late", redeem=100), timeout=0.3)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await locked.rollback()
        retried = await e2e.checkout.ConfirmOrder(order_request("o-late", redeem=100))
        assert await blocker.fetchval("SELECT count(*) FROM orders") == 1
        await check_invariants(blocker)
    finally:
        await blocker.close()
    # Exactly what the same order does once, without a deadline, for another member.
    await e2e.enroll("m-2")
    alone = await e2e.checkout.ConfirmOrder(order_request("o-alone", "m-2", redeem=100))
    assert retried.result.totals == alone.result.totals
    assert (await e2e.bonus("m-1")).available == (await e2e.bonus("m-2")).available
    assert (await e2e.bonus("m-1")).available != before.available


async def test_a_cancelled_export_stops(e2e: E2E, rpc_lines: io.StringIO) -> None:
    async def requests() -> AsyncIterator[member_pb2.EnrollMemberRequest]:
        for index in range(1_500):
            yield member_pb2.EnrollMemberRequest(program=PROGRAM, member_id=f"x-{index}")

    await e2e.members.EnrollMembers(requests())
    call = e2e.members.ExportMembers(member_pb2.ExportMembersRequest(program=PROGRAM))
    first = await call.read()
    assert first.member_id
    call.cancel()
    for _ in range(100):
        methods = [(line["method"], line["code"]) for line in _lines(rpc_lines)]
        if ("/arbiter.v1.MemberService/ExportMembers", "CANCELLED") in methods:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail(f"the export did not end as CANCELLED: {methods}")


async def test_bytes_that_do_not_parse_are_invalid_argument(e2e: E2E) -> None:
    calculate = e2e.channel.unary_unary(
        "/arbiter.v1.CheckoutService/CalculateOrder",
        request_serializer=lambda data: data,
        response_deserializer=lambda data: data,
    )
    for garbage in (b"\x00", b"\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f"):
        assert await error_of(calculate(garbage)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            ["(request)"],
        )
    enroll = e2e.channel.stream_unary(
        "/arbiter.v1.MemberService/EnrollMembers",
        request_serializer=lambda data: data,
        response_deserializer=lambda data: data,
    )
    good = member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="g-1").SerializeToString()
    assert await error_of(enroll(iter([good, b"\x00"]))) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["requests[1]"],
    )


async def test_nul_characters_are_invalid_argument_naming_the_field(e2e: E2E) -> None:
    await e2e.enroll("m-1")
    quote = _quote()
    quote.member_id = "m\x00"
    assert await error_of(e2e.checkout.CalculateOrder(quote)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["member_id"],
    )
    confirm = order_request("o-nul")
    confirm.order.lines[0].id = "line\x00"
    confirm.order.lines[0].sku = "\x00"
    code, fields = await error_of(e2e.checkout.ConfirmOrder(confirm))
    assert (code, sorted(fields)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["order.lines[0].id", "order.lines[0].sku"],
    )
    assert await error_of(
        e2e.members.EnrollMember(member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="\x00"))
    ) == (grpc.StatusCode.INVALID_ARGUMENT, ["member_id"])


async def test_registration_time_outside_the_calendar(e2e: E2E) -> None:
    request = member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="m-t")
    request.registered_at.seconds = -(2**63)
    assert await error_of(e2e.members.EnrollMember(request)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["registered_at"],
    )

    async def stream() -> AsyncIterator[member_pb2.EnrollMemberRequest]:
        yield member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="m-u")
        yield request

    assert await error_of(e2e.members.EnrollMembers(stream())) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["members[1].registered_at"],
    )
