"""AdminService: TestCalculateOrder on the applied version; every other RPC answers
UNIMPLEMENTED until drafts, versions and keys land (the servicer that holds them replaces this
one and calls api/testmode.py the same way, on the draft or the applied version)."""

from __future__ import annotations

from typing import Any

from arbiter.server.api.checkout import Clock, utc_now
from arbiter.server.api.keys import ApiKeyRpcs
from arbiter.server.api.testmode import test_calculation
from arbiter.server.engine import FieldViolation, InvalidOrder
from arbiter.server.state import MemberDirectory, ProgramRegistry
from arbiter.v1 import admin_pb2, admin_pb2_grpc

__all__ = ["AdminService"]


class AdminService(ApiKeyRpcs, admin_pb2_grpc.AdminServiceServicer):
    """The generated base raises NotImplementedError for each RPC: UNIMPLEMENTED on the wire."""

    def __init__(
        self,
        programs: ProgramRegistry | None = None,
        members: MemberDirectory | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._programs = programs
        self._members = members
        self._clock = clock

    async def TestCalculateOrder(
        self, request: admin_pb2.TestCalculateOrderRequest, context: Any
    ) -> admin_pb2.TestCalculateOrderResponse:
        if self._programs is None or self._members is None:
            raise NotImplementedError("test mode needs the programs and the member directory")
        if not request.program:
            raise InvalidOrder([FieldViolation("program", "required")])
        if request.use_draft:
            raise NotImplementedError("drafts are not served yet: test on the applied version")
        applied = self._programs.get(request.program)
        return await test_calculation(
            request, applied.compiled, applied.version, self._members, self._clock
        )
