"""The grpc.aio server: the three arbiter.v1 services, health, reflection, limits, shutdown."""

from __future__ import annotations

import asyncio
import errno
import socket

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
from arbiter.server.state.config import Configuration
from arbiter.v1 import (
    admin_pb2,
    checkout_pb2,
    member_pb2,
)

__all__ = ["HEALTH_NAMES", "SERVICE_NAMES", "ArbiterServer", "check_port_free"]

_CHECKOUT = checkout_pb2.DESCRIPTOR.services_by_name["CheckoutService"]
_MEMBER = member_pb2.DESCRIPTOR.services_by_name["MemberService"]
_ADMIN = admin_pb2.DESCRIPTOR.services_by_name["AdminService"]

#: The arbiter.v1 services, by full name (what health and reflection list).
SERVICE_NAMES: tuple[str, ...] = (_CHECKOUT.full_name, _MEMBER.full_name, _ADMIN.full_name)


def check_port_free(listen: str) -> None:
    """Raise SettingsError when every address `listen` names has its port taken already.

    Only a port in use is told here (binding a probe socket as gRPC does, address reuse on);
    anything else is left to gRPC's own bind. Port 0 and Unix sockets are never busy.
    """
    host, port = split_listen(listen)
    if port == 0:
        return
    try:
        addresses = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror:
        return  # gRPC says what is wrong with the name
    busy = 0
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    return
                busy += 1
            else:
                return
    if addresses and busy == len(addresses):
        raise SettingsError(
            f"cannot listen on {listen!r}: port {port} is already in use (another Arbiter "
            "server?); stop what holds it, or choose another address with --listen "
            "(ARBITER_LISTEN)"
        )


#: What health answers for: the whole server ("") and each arbiter.v1 service.
HEALTH_NAMES: tuple[str, ...] = ("", *SERVICE_NAMES)

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class _Health(health.aio.HealthServicer):  # type: ignore[misc]  # grpc_health ships no types
    """The standard health service, whose NOT_FOUND says what was asked and what is known."""

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        if request.service not in HEALTH_NAMES:
            known = ", ".join(repr(name) for name in HEALTH_NAMES[1:])
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"service {request.service!r} is not known to this server; known: {known}, "
                "and '' for the whole server",
            )
        response: health_pb2.HealthCheckResponse = await super().Check(request, context)
        return response


class ArbiterServer:
    """One grpc.aio server. Build it inside the running event loop.

    Built, it has bound its port (a busy port raises SettingsError at once) and serves health
    and reflection; `add_services` adds the arbiter.v1 services, before `start()`. Given the
    programs and members, the constructor adds them itself.

    Health says NOT_SERVING (overall and per arbiter.v1 service) from `start()` until
    `set_serving()`, which the caller invokes once the programs are loaded (docs/contract.md);
    `stop()` turns it NOT_SERVING again before draining calls in flight.
    """

    def __init__(
        self,
        settings: Settings,
        programs: ProgramRegistry | None = None,
        members: MemberDirectory | None = None,
        clock: Clock = utc_now,
        *,
        ledger: Ledger | None = None,
        config: Configuration | None = None,
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
        self._health = _Health()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        # Set by add_services (keys need the ledger, which opens after the port is bound).
        self.keys: ApiKeys | None = None
        self.metrics = Metrics(enabled=settings.metrics_listen is not None)
        self._metrics_server: MetricsServer | None = None
        # gRPC logs a raw line of its own when it cannot bind: a busy port is told first.
        check_port_free(settings.listen)
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
        if programs is not None and members is not None:
            self.add_services(programs, members, clock, ledger=ledger, config=config)

    def add_services(
        self,
        programs: ProgramRegistry,
        members: MemberDirectory,
        clock: Clock = utc_now,
        *,
        ledger: Ledger | None = None,
        config: Configuration | None = None,
    ) -> None:
        """The three arbiter.v1 services (before `start()`), behind keys, roles, durations and
        the RPC log line (docs/security.md; docs/api.md, Metrics)."""
        settings = self._settings
        self.keys = ApiKeys(
            settings.admin_key, ApiKeyStore(ledger.pool) if ledger else None, now=clock
        )
        self.metrics.state.members, self.metrics.state.programs = members, programs
        if ledger is not None:
            pool = ledger.pool
            self.metrics.state.pool = pool
            self.metrics.state.outbox = lambda: outbox_backlog(pool)
        keys = self.keys

        def wrap(servicer: object, service: descriptor.ServiceDescriptor) -> object:
            return observed(
                guard(servicer, service, self.admission),
                service,
                keys,
                self.metrics.timer,
                settings.max_request_bytes,
            )

        checkout = CheckoutService(programs, members, clock, ledger=ledger)
        checkout.observe_calculation = self.metrics.observe_calculation()
        admin = AdminService(programs, members, clock, config=config, ledger=ledger)
        admin.api_keys = keys
        # As the generated add_*Servicer_to_server would, but bytes that do not parse reach the
        # wrapper (INVALID_ARGUMENT) instead of failing in gRPC's deserializer (UNKNOWN).
        register(self._server, wrap(checkout, _CHECKOUT), _CHECKOUT)
        register(
            self._server, wrap(MemberService(programs, members, clock, ledger), _MEMBER), _MEMBER
        )
        register(self._server, wrap(admin, _ADMIN), _ADMIN)

    async def discard(self) -> None:
        """Release the port of a server that will not serve (started or not)."""
        # grpc.aio lets go of a bound port only once the server has run.
        await self._server.start()
        await self._server.stop(0)

    async def start(self) -> None:
        """Accept calls; health answers NOT_SERVING until `set_serving()`."""
        for name in HEALTH_NAMES:
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
        if self.keys is None:
            raise RuntimeError("ArbiterServer.add_services() has not run")
        await self.keys.refresh()
        self.keys.start()
        await self._server.start()

    @property
    def metrics_port(self) -> int | None:
        """The metrics endpoint's bound port (None when `--metrics` is not set)."""
        return None if self._metrics_server is None else self._metrics_server.port

    async def set_serving(self) -> None:
        """Health SERVING: the server can answer calculations."""
        for name in HEALTH_NAMES:
            await self._health.set(name, _SERVING)

    async def stop(self, grace_s: float | None = None) -> None:
        """NOT_SERVING, then let calls in flight finish for `grace_s` seconds, then cancel."""
        await self._health.enter_graceful_shutdown()
        await self._server.stop(self._settings.shutdown_grace_s if grace_s is None else grace_s)
        if self.keys is not None:
            await self.keys.stop()
        metrics_server, self._metrics_server = self._metrics_server, None
        if metrics_server is not None:
            await asyncio.to_thread(metrics_server.stop)

    async def wait_for_termination(self) -> None:
        await self._server.wait_for_termination()
