"""ArbiterClient: one grpc.aio channel and the arbiter.v1 stubs over it."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Final

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arbiter.v1 import (
    admin_pb2_grpc,
    checkout_pb2,
    checkout_pb2_grpc,
    member_pb2_grpc,
)

__all__ = ["DEFAULT_TARGET", "ArbiterClient"]

DEFAULT_TARGET: Final = "127.0.0.1:50051"
# Responses (rows per benefit and line) may exceed gRPC's default 4 MiB receive limit.
_MAX_RECEIVE_MESSAGE_BYTES: Final = 16 * 1024 * 1024


class ArbiterClient:
    """An async client: `async with ArbiterClient("host:port") as client: ...`.

    `checkout`, `members`, `admin` and `health` are the generated stubs, for every RPC;
    `calculate` and `health_status` cover the common calls. `api_key` is sent as
    `authorization: Bearer <key>` (docs/contract.md, Running it).
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        api_key: str | None = None,
        timeout_s: float | None = 10.0,
    ) -> None:
        self.target = target
        self.timeout_s = timeout_s
        # Sent with every call of the command line; the stubs' callers pass it themselves.
        self.metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {api_key}"),) if api_key else ()
        )
        self._channel = grpc.aio.insecure_channel(
            target, options=[("grpc.max_receive_message_length", _MAX_RECEIVE_MESSAGE_BYTES)]
        )
        self.checkout: Any = checkout_pb2_grpc.CheckoutServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self.members: Any = member_pb2_grpc.MemberServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self.admin: Any = admin_pb2_grpc.AdminServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self.health: Any = health_pb2_grpc.HealthStub(self._channel)

    async def calculate(
        self, request: checkout_pb2.CalculateOrderRequest
    ) -> checkout_pb2.CalculateOrderResponse:
        """CalculateOrder; a failed call raises grpc.aio.AioRpcError."""
        response: checkout_pb2.CalculateOrderResponse = await self.checkout.CalculateOrder(
            request, timeout=self.timeout_s, metadata=self.metadata
        )
        return response

    async def health_status(self, service: str = "") -> str:
        """The health service's answer for `service` ("" = the whole server): "SERVING", ..."""
        response = await self.health.Check(
            health_pb2.HealthCheckRequest(service=service), timeout=self.timeout_s
        )
        name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        return name

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> ArbiterClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
