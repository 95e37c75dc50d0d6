"""The grpc.aio server: the three arbiter.v1 services, health, reflection, limits, shutdown."""

from __future__ import annotations

import asyncio

import grpc
from google.protobuf import descriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from arbiter.server.api import AdminService, CheckoutService, Clock, MemberService, guard, utc_now
from arbiter.server.api.admission import Admission, pending_call_options
from arbiter.server.api.auth import ApiKeys
from arbiter.server.api.calls import observed, register
from arbiter.server.api.metrics import Metrics, MetricsServer
from arbiter.server.app.settings import Settings, SettingsError, split_listen
from arbiter.server.app.tls import server_credentials
from arbiter.server.ledger import Ledger
from arbiter.server.ledger.keys import ApiKeyStore
from arbiter.server.ledger.stats import outbox_backlog
from arbiter.server.state import MemberDirectory, ProgramRegistry
from arbiter.v1 import (
    admin_pb2,
    checkout_pb2,
    member_pb2,
)

__all__ = ["SERVICE_NAMES", "ArbiterServer"]

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
        # Keys, roles, durations and the RPC log line: docs/api.md (Authentication, Metrics).
        self.keys = ApiKeys(
            settings.admin_key, ApiKeyStore(ledger.pool) if ledger else None, now=clock
        )
        self.metrics = Metrics(enabled=settings.metrics_listen is not None)
        self.metrics.state.members, self.metrics.state.programs = members, programs
        if ledger is not None:
            pool = ledger.pool
            self.metrics.state.pool = pool
            self.metrics.state.outbox = lambda: outbox_backlog(pool)
        self._metrics_server: MetricsServer | None = None

        def wrap(servicer: object, service: descriptor.ServiceDescriptor) -> object:
            return observed(
                guard(servicer, service, self.admission),
                service,
                self.keys,
                self.metrics.timer,
                settings.max_request_bytes,
            )

        checkout = CheckoutService(programs, members, clock, ledger=ledger)
        checkout.observe_calculation = self.metrics.observe_calculation()
        admin = AdminService(programs, members, clock)
        admin.api_keys = self.keys
        # As the generated add_*Servicer_to_server would, but bytes that do not parse reach the
        # wrapper (INVALID_ARGUMENT) instead of failing in gRPC's deserializer (UNKNOWN).
        register(self._server, wrap(checkout, _CHECKOUT), _CHECKOUT)
        register(
            self._server, wrap(MemberService(programs, members, clock, ledger), _MEMBER), _MEMBER
        )
        register(self._server, wrap(admin, _ADMIN), _ADMIN)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        try:
            credentials = server_credentials(settings)
            if credentials is None:
                self.port: int = self._server.add_insecure_port(settings.listen)
            else:
                self.port = self._server.add_secure_port(settings.listen, credentials)
        except RuntimeError as exc:
            raise SettingsError(f"cannot listen on {settings.listen!r}: {exc}") from exc
        if self.port == 0 and not settings.listen.startswith(("unix:", "unix-abstract:")):
            raise SettingsError(f"cannot listen on {settings.listen!r}")

    async def start(self) -> None:
        """Accept calls; health answers NOT_SERVING until `set_serving()`."""
        for name in ("", *SERVICE_NAMES):
            await self._health.set(name, _NOT_SERVING)
        if self._settings.metrics_listen is not None:
            host, port = split_listen(self._settings.metrics_listen)
            self.metrics.state.loop = asyncio.get_running_loop()
            try:
                self._metrics_server = MetricsServer(self.metrics, host, port)
            except OSError as exc:
                raise SettingsError(
                    f"cannot serve metrics on {self._settings.metrics_listen!r}: {exc}"
                ) from exc
        await self.keys.refresh()
        self.keys.start()
        await self._server.start()

    @property
    def metrics_port(self) -> int | None:
        """The metrics endpoint's bound port (None when `--metrics` is not set)."""
        return None if self._metrics_server is None else self._metrics_server.port

    async def set_serving(self) -> None:
        """Health SERVING: the server can answer calculations."""
        for name in ("", *SERVICE_NAMES):
            await self._health.set(name, _SERVING)

    async def stop(self, grace_s: float | None = None) -> None:
        """NOT_SERVING, then let calls in flight finish for `grace_s` seconds, then cancel."""
        await self._health.enter_graceful_shutdown()
        await self._server.stop(self._settings.shutdown_grace_s if grace_s is None else grace_s)
        await self.keys.stop()
        metrics_server, self._metrics_server = self._metrics_server, None
        if metrics_server is not None:
            await asyncio.to_thread(metrics_server.stop)

    async def wait_for_termination(self) -> None:
        await self._server.wait_for_termination()
