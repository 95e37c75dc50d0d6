"""Helpers of the AdminService end-to-end tests: errors, the journal, programs to apply."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from arbiter.v1 import admin_pb2, admin_pb2_grpc, checkout_pb2, program_pb2


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def status_of(call: Any) -> grpc.StatusCode:
    return (await rpc_error(call)).code()


async def bad_request_of(call: Any) -> tuple[grpc.StatusCode, list[tuple[str, str]]]:
    """The status code of the failed `call` and its BadRequest field violations."""
    error = await rpc_error(call)
    status = rpc_status.from_call(error)
    assert status is not None, "no grpc-status-details-bin in the trailing metadata"
    violations: list[tuple[str, str]] = []
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        assert detail.Unpack(bad_request)
        violations.extend((v.field, v.description) for v in bad_request.field_violations)
    return error.code(), violations


async def journal(
    admin: admin_pb2_grpc.AdminServiceStub, program: str
) -> list[admin_pb2.AuditEntry]:
    """Every audit entry of `program`, page after page."""
    entries: list[admin_pb2.AuditEntry] = []
    token = ""
    while True:
        page = await admin.ListAuditEntries(
            admin_pb2.ListAuditEntriesRequest(program=program, page_size=1000, page_token=token)
        )
        entries.extend(page.entries)
        token = page.next_page_token
        if not token:
            return entries


def actions(entries: list[admin_pb2.AuditEntry]) -> list[tuple[str, str, str]]:
    return [(e.action, e.object_kind, e.object_id) for e in entries]


def detail(entry: admin_pb2.AuditEntry) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(entry.detail)
    return value


def discount_program(
    program_id: str, percents: dict[str, int], *, database: str = ""
) -> program_pb2.Program:
    """A program of EVERYONE discount promotions (id -> percent), PARALLEL in SUMMATION, so an
    anonymous quote shows every one of them among its benefits."""
    program = program_pb2.Program(
        id=program_id, name=program_id, currency="RUB", time_zone="UTC", database=database
    )
    program.point_types.add(
        id="bonus",
        name="Bonus",
        kind=program_pb2.POINT_KIND_STANDARD,
        active=True,
        ratio=program_pb2.Ratio(points=1, money=1),
    )
    for promotion_id, percent in percents.items():
        promotion = program.promotions.add(
            id=promotion_id,
            name=promotion_id,
            kind=program_pb2.PROMOTION_KIND_DISCOUNT,
            status=program_pb2.PROMOTION_STATUS_ACTIVE,
            audience=program_pb2.Audience(kind=program_pb2.AUDIENCE_KIND_EVERYONE),
        )
        rule = promotion.product_rules.add(scope=program_pb2.Scope(kind=program_pb2.SCOPE_KIND_ALL))
        rule.benefits.add(discount=program_pb2.Discount(percent_bp=percent * 100))
        program.arbitration.children.add(promotion=promotion_id)
    program.arbitration.mode = program_pb2.ARBITRATION_MODE_SUMMATION
    return program


def anonymous_quote(program_id: str, price: int = 10_000) -> checkout_pb2.CalculateOrderRequest:
    request = checkout_pb2.CalculateOrderRequest(program=program_id)
    request.order.id = "q"
    request.order.lines.add(id="l1", sku="sku-1", quantity=1, unit_price=price)
    return request


def promotions_of(response: checkout_pb2.CalculateOrderResponse) -> set[str]:
    return {b.promotion for b in response.benefits}
