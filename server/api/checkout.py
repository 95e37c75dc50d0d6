"""CheckoutService: quotes now; the order lifecycle (reserve, confirm, ...) with the ledger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from arbiter.server.api.translate import order_from_proto, result_to_proto
from arbiter.server.engine import FieldViolation, InvalidOrder, calculate
from arbiter.server.state import MemberDirectory, ProgramRegistry
from arbiter.v1 import checkout_pb2, checkout_pb2_grpc

__all__ = ["CheckoutService", "Clock", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The server's clock: an aware UTC instant."""
    return datetime.now(UTC)


class CheckoutService(checkout_pb2_grpc.CheckoutServiceServicer):
    """Thin servicer: take the applied program, translate, calculate, translate back.

    ReserveOrder, ConfirmOrder, DeliverOrder, CancelOrder and ReturnOrder are inherited from the
    generated base, which raises NotImplementedError: UNIMPLEMENTED until the ledger lands.
    """

    def __init__(
        self, programs: ProgramRegistry, members: MemberDirectory, clock: Clock = utc_now
    ) -> None:
        self._programs = programs
        self._members = members
        self._clock = clock

    async def CalculateOrder(
        self, request: checkout_pb2.CalculateOrderRequest, context: Any
    ) -> checkout_pb2.CalculateOrderResponse:
        program_id = request.program
        if not program_id:
            raise InvalidOrder([FieldViolation("program", "required")])
        # Taken once: a version published meanwhile does not change this request's answer.
        applied = self._programs.get(program_id)
        compiled = applied.compiled
        order, member = order_from_proto(request, compiled.point_type_ids)
        if member is None and request.member_id:
            member = await self._members.get(program_id, request.member_id)
        result = calculate(compiled, order, member, now=self._clock())
        return result_to_proto(result, applied.version)
