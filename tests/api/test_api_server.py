"""Through a real grpc.aio server: health, reflection, status codes and their details."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from arbiter.server.api.errors import MAX_REPORTED_VIOLATIONS
from arbiter.server.app.server import SERVICE_NAMES
from arbiter.server.app.settings import Settings
from arbiter.server.app.wiring import App
from arbiter.server.engine import MemberState
from arbiter.server.state import InMemoryMemberDirectory
from arbiter.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    checkout_pb2,
    checkout_pb2_grpc,
    member_pb2,
    member_pb2_grpc,
    program_pb2,
)

Request = checkout_pb2.CalculateOrderRequest
MakeRequest = Callable[..., Request]


async def health_status(channel: grpc.aio.Channel, service: str = "") -> str:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def bad_request_of(call: Any) -> tuple[grpc.aio.AioRpcError, list[tuple[str, str]]]:
    """The error of `call` and the BadRequest field violations from its trailing metadata."""
    error = await rpc_error(call)
    status = rpc_status.from_call(error)
    assert status is not None, "no grpc-status-details-bin in the trailing metadata"
    assert status.code == error.code().value[0]
    violations: list[tuple[str, str]] = []
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        assert detail.Unpack(bad_request)
        violations.extend((v.field, v.description) for v in bad_request.field_violations)
    return error, violations


# --- Health and reflection. --------------------------------------------------------------------


async def test_health_is_not_serving_until_programs_are_loaded(
    app: App, channel: grpc.aio.Channel, make_program: Callable[..., program_pb2.Program]
) -> None:
    assert await health_status(channel) == "NOT_SERVING"
    assert await health_status(channel, "arbiter.v1.CheckoutService") == "NOT_SERVING"
    app.programs.publish(make_program())
    await app.ready()
    assert await health_status(channel) == "SERVING"
    for name in SERVICE_NAMES:
        assert await health_status(channel, name) == "SERVING"


async def test_reflection_lists_every_service(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def one_request() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = set()
    async for response in stub.ServerReflectionInfo(one_request()):
        names.update(s.name for s in response.list_services_response.service)
    assert {
        "arbiter.v1.CheckoutService",
        "arbiter.v1.MemberService",
        "arbiter.v1.AdminService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names


async def test_reflection_serves_the_contract_descriptors(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def one_request() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="arbiter.v1.CheckoutService"
        )

    async for response in stub.ServerReflectionInfo(one_request()):
        assert response.file_descriptor_response.file_descriptor_proto


# --- CalculateOrder: answers and status codes. -------------------------------------------------


async def test_calculate_answers_with_the_applied_version(
    served: App, checkout: Any, make_request: MakeRequest
) -> None:
    response = await checkout.CalculateOrder(make_request())
    assert response.program_version == 1
    # No created_at: the server's clock (fixed in the fixture) is the evaluation instant.
    assert response.evaluated_at.ToDatetime(tzinfo=UTC) == datetime(
        2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC
    )
    assert [line.line_id for line in response.lines] == ["1"]


async def test_a_new_version_is_named_by_later_responses(
    served: App,
    checkout: Any,
    make_request: MakeRequest,
    make_program: Callable[..., program_pb2.Program],
) -> None:
    assert served.programs.publish(make_program(program_pb2.ARBITRATION_MODE_SUMMATION)) == 2
    response = await checkout.CalculateOrder(make_request())
    assert response.program_version == 2


async def test_unknown_program_is_not_found(served: App, checkout: Any) -> None:
    error = await rpc_error(checkout.CalculateOrder(Request(program="nope")))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "nope" in error.details()


async def test_missing_program_is_invalid_argument(served: App, checkout: Any) -> None:
    error, violations = await bad_request_of(checkout.CalculateOrder(Request()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations] == ["program"]


async def test_unknown_member_id_is_not_found(
    served: App, checkout: Any, make_request: MakeRequest
) -> None:
    request = make_request()
    request.ClearField("member_context")
    request.member_id = "ghost"
    error = await rpc_error(checkout.CalculateOrder(request))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "member 'ghost'" in error.details()


async def test_bad_input_is_invalid_argument_naming_every_field(
    served: App, checkout: Any, make_request: MakeRequest
) -> None:
    request = make_request()
    request.order.lines[0].quantity = 0
    request.order.lines.add(id="1", quantity=1, unit_price=-1)
    request.order.shipping_cost = -1
    request.order.time_zone = "Atlantis/Capital"
    request.order.redeem.add(point_type="bonus", points=-2)
    request.order.redeem.add(point_type="stars", points=1)
    error, violations = await bad_request_of(checkout.CalculateOrder(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations] == [
        "order.lines[0].quantity",
        "order.lines[1].id",
        "order.lines[1].unit_price",
        "order.shipping_cost",
        "order.redeem[1].point_type",
        "order.redeem[1].points",
        "order.redeem[2].point_type",
        "order.time_zone",
    ]
    assert "order.lines[0].quantity" in error.details()


async def test_bad_input_is_checked_before_the_member_is_looked_up(
    served: App, checkout: Any, make_request: MakeRequest
) -> None:
    request = make_request()
    request.ClearField("member_context")
    request.member_id = "ghost"
    request.order.shipping_cost = -1
    error = await rpc_error(checkout.CalculateOrder(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_huge_error_stays_within_header_limits(served: App, checkout: Any) -> None:
    request = Request(program="demo")
    for index in range(1000):
        request.order.lines.add(id=f"line-{index}", quantity=-1, unit_price=-1)
    error, violations = await bad_request_of(checkout.CalculateOrder(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(violations) == MAX_REPORTED_VIOLATIONS + 1
    assert violations[-1] == ("", f"{2000 - MAX_REPORTED_VIOLATIONS} more bad fields not listed")


async def test_an_enrolled_member_comes_from_the_member_directory(
    make_program: Callable[..., program_pb2.Program], make_request: MakeRequest
) -> None:
    members = InMemoryMemberDirectory(
        {("demo", "m-1"): MemberState("m-1", balances={"bonus": 50_000})}
    )
    app = App(Settings(listen="127.0.0.1:0"), members=members)
    await app.open()
    try:
        app.programs.publish(make_program())
        await app.ready()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            stub = checkout_pb2_grpc.CheckoutServiceStub(channel)
            by_context = await stub.CalculateOrder(make_request())
            request = make_request()
            request.ClearField("member_context")
            by_id = await stub.CalculateOrder(request)
    finally:
        await app.stop(0)
    by_id.evaluated_at.Clear()
    by_context.evaluated_at.Clear()
    assert by_id == by_context


async def test_an_unexpected_error_is_internal_with_a_generic_message(
    make_program: Callable[..., program_pb2.Program],
    make_request: MakeRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_clock() -> datetime:
        raise RuntimeError("secret detail: the clock fell off the wall")

    app = App(Settings(listen="127.0.0.1:0"), clock=broken_clock)
    await app.open()
    try:
        app.programs.publish(make_program())
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            stub = checkout_pb2_grpc.CheckoutServiceStub(channel)
            with caplog.at_level(logging.ERROR, logger="arbiter.api"):
                error = await rpc_error(stub.CalculateOrder(make_request()))
    finally:
        await app.stop(0)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "internal error"
    assert "secret" not in error.details()
    assert any(
        "CalculateOrder" in record.getMessage() and record.exc_info for record in caplog.records
    )


# --- Not written yet: UNIMPLEMENTED, and the services exist. ------------------------------------


async def test_lifecycle_rpcs_are_unimplemented(served: App, checkout: Any) -> None:
    calls = [
        checkout.ReserveOrder(checkout_pb2.ReserveOrderRequest(program="demo")),
        checkout.ConfirmOrder(checkout_pb2.ConfirmOrderRequest(program="demo")),
        checkout.DeliverOrder(checkout_pb2.DeliverOrderRequest(program="demo")),
        checkout.CancelOrder(checkout_pb2.CancelOrderRequest(program="demo")),
        checkout.ReturnOrder(checkout_pb2.ReturnOrderRequest(program="demo")),
    ]
    for call in calls:
        assert (await rpc_error(call)).code() == grpc.StatusCode.UNIMPLEMENTED


async def test_member_and_admin_services_are_registered_and_unimplemented(
    served: App, channel: grpc.aio.Channel
) -> None:
    members = member_pb2_grpc.MemberServiceStub(channel)
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    unary = [
        members.GetMember(member_pb2.GetMemberRequest(program="demo", member_id="m")),
        members.ApplyTrigger(member_pb2.ApplyTriggerRequest()),
        admin.Apply(admin_pb2.ApplyRequest(program="demo")),
        admin.Revert(admin_pb2.RevertRequest(program="demo")),
    ]
    for call in unary:
        assert (await rpc_error(call)).code() == grpc.StatusCode.UNIMPLEMENTED

    async def enrollments() -> AsyncIterator[member_pb2.EnrollMemberRequest]:
        yield member_pb2.EnrollMemberRequest(program="demo", member_id="m")

    client_stream = members.EnrollMembers(enrollments())
    assert (await rpc_error(client_stream)).code() == grpc.StatusCode.UNIMPLEMENTED

    server_stream = members.ExportMembers(member_pb2.ExportMembersRequest())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in server_stream:
            pass
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_an_unknown_method_is_unimplemented(channel: grpc.aio.Channel) -> None:
    call = channel.unary_unary("/arbiter.v1.CheckoutService/NoSuchRpc")(b"")
    assert (await rpc_error(call)).code() == grpc.StatusCode.UNIMPLEMENTED
