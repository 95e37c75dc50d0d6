"""The grpc.aio server: the three arbiter.v1 services, health, reflection, limits, shutdown."""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from arbiter.server.api import (
    REQUEST_READING,
    RESPONSE_ENCODING,
    AdminService,
    CheckoutService,
    Clock,
    MemberService,
    add_checkout_service,
    guard,
    utc_now,
)
from arbiter.server.api.admission import Admission, pending_call_options
from arbiter.server.app.settings import Settings, SettingsError
from arbiter.server.ledger import Ledger
from arbiter.server.state import MemberDirectory, ProgramRegistry
from arbiter.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    checkout_pb2,
    member_pb2,
    member_pb2_grpc,
)

__all__ = ["SERVICE_NAMES", "ArbiterServer"]

_log = logging.getLogger(__name__)

_CHECKOUT = checkout_pb2.DESCRIPTOR.services_by_name["CheckoutService"]
_MEMBER = member_pb2.DESCRIPTOR.services_by_name["MemberService"]
_ADMIN = admin_pb2.DESCRIPTOR.services_by_name["AdminService"]

#: The arbiter.v1 services, by full name (what health and reflection list).
SERVICE_NAMES: tuple[str, ...] = (_CHECKOUT.full_name, _MEMBER.full_name, _ADMIN.full_name)

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ArbiterServer:
    """One grpc.aio server. Build it inside the running event loop.

    Health says NOT_SERVING (overall and per arbiter.v1 service) from `start()` until
    `set_serving()`, which the caller invokes once the programs are loaded (docs/contract.md);
    `stop()` turns it NOT_SERVING again before draining calls in flight.
    """

    def __init__(
        self,
        settings: Settings,
        programs: ProgramRegistry,
        members: MemberDirectory,
        clock: Clock = utc_now,
        *,
        ledger: Ledger | None = None,
    ) -> None:
        self._settings = settings
        # Overload (api/admission.py): the arbiter.v1 calls being served are bounded here, with a
        # clear RESOURCE_EXHAUSTED; grpc's own `maximum_concurrent_rpcs` only queued them in the
        # core, which drops calls past its pending limit as bare CANCELLED.
        self.admission = Admission(settings.max_concurrent_rpcs)
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.max_receive_message_bytes),
                ("grpc.max_send_message_length", settings.max_send_message_bytes),
                # Without this, a second server on a busy port would share it silently on Linux.
                ("grpc.so_reuseport", 0),
                *pending_call_options(settings.max_pending_rpcs),
            ],
        )
        # CalculateOrder returns its response serialized (api/checkout.py), hence not the
        # generated registration. The generated registration functions are untyped.
        checkout = CheckoutService(programs, members, clock, ledger=ledger)
        add_checkout_service(guard(checkout, _CHECKOUT, self.admission), self._server)
        member_pb2_grpc.add_MemberServiceServicer_to_server(  # type: ignore[no-untyped-call]
            guard(MemberService(programs, members, clock, ledger), _MEMBER, self.admission),
            self._server,
        )
        admin_pb2_grpc.add_AdminServiceServicer_to_server(  # type: ignore[no-untyped-call]
            guard(AdminService(programs, members, clock), _ADMIN, self.admission), self._server
        )
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        try:
            self.port: int = self._server.add_insecure_port(settings.listen)
        except RuntimeError as exc:
            raise SettingsError(f"cannot listen on {settings.listen!r}: {exc}") from exc
        if self.port == 0 and not settings.listen.startswith(("unix:", "unix-abstract:")):
            raise SettingsError(f"cannot listen on {settings.listen!r}")

    async def start(self) -> None:
        """Accept calls; health answers NOT_SERVING until `set_serving()`."""
        for name in ("", *SERVICE_NAMES):
            await self._health.set(name, _NOT_SERVING)
        if RESPONSE_ENCODING == REQUEST_READING == "native":
            _log.info("CalculateOrder: requests read and responses encoded natively (api/_*.pyx)")
        else:
            _log.warning(
                "CalculateOrder: requests read by %s; responses encoded by %s",
                REQUEST_READING,
                RESPONSE_ENCODING,
            )
        await self._server.start()

    async def set_serving(self) -> None:
        """Health SERVING: the server can answer calculations."""
        for name in ("", *SERVICE_NAMES):
            await self._health.set(name, _SERVING)

    async def stop(self, grace_s: float | None = None) -> None:
        """NOT_SERVING, then let calls in flight finish for `grace_s` seconds, then cancel."""
        await self._health.enter_graceful_shutdown()
        await self._server.stop(self._settings.shutdown_grace_s if grace_s is None else grace_s)

    async def wait_for_termination(self) -> None:
        await self._server.wait_for_termination()
