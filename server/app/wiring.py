"""The process: settings -> storage -> registry -> server -> jobs; start, serve, stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

from arbiter.server import native
from arbiter.server.api.admission import Admission
from arbiter.server.api.checkout import Clock, utc_now
from arbiter.server.api.program_file import load_program_file
from arbiter.server.app.embedded_pg import EmbeddedPostgres
from arbiter.server.app.runtime import tune_allocator
from arbiter.server.app.server import ArbiterServer
from arbiter.server.app.settings import Settings
from arbiter.server.engine import ConfigError, ConfigIssue, compile_program
from arbiter.server.jobs import JobRunner, log_sender, redis_sender
from arbiter.server.jobs.runner import Send
from arbiter.server.ledger import Ledger
from arbiter.server.state import (
    InMemoryMemberDirectory,
    LedgerMemberDirectory,
    MemberDirectory,
    ProgramRegistry,
    StateStore,
)
from arbiter.server.state.programs import Compiler

__all__ = ["App"]

logger = logging.getLogger("arbiter.app")


class App:
    """One Arbiter process.

    `start()` = `open()` (storage, then the server listening, health NOT_SERVING) +
    `load_programs()` (each `--program` file compiled, stored when it differs from the applied
    version, and published) + `ready()` (jobs started, health SERVING). Tests may call the three
    apart. `stop()` drains calls in flight, then releases everything `open()` took, in reverse
    order: jobs, Redis, the ledger's pool, the embedded cluster.

    Storage: `settings.postgres_url`, else the embedded cluster in `settings.data_dir` when
    `settings.embedded_postgres` (what `arbiter serve` does), else none: quotes only, member and
    lifecycle RPCs UNIMPLEMENTED, members from `members` (tests of the calculation).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = utc_now,
        compile: Compiler = compile_program,
        members: MemberDirectory | None = None,
    ) -> None:
        self.settings = settings
        self.programs = ProgramRegistry(compile)
        self._given_members = members
        self.members: MemberDirectory = InMemoryMemberDirectory() if members is None else members
        self.ledger: Ledger | None = None
        self.store: StateStore | None = None
        self.jobs: JobRunner | None = None
        self.cluster: EmbeddedPostgres | None = None
        self._redis: Any = None
        self._compile = compile
        self._clock = clock
        self._server: ArbiterServer | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when listening on port 0)."""
        if self._server is None:
            raise RuntimeError("App.open() has not run")
        return self._server.port

    @property
    def admission(self) -> Admission:
        """The server's count of calls in flight and of refusals (server/api/admission.py)."""
        if self._server is None:
            raise RuntimeError("App.open() has not run")
        return self._server.admission

    async def _open_storage(self) -> None:
        settings = self.settings
        dsn = settings.postgres_url
        if dsn is None and settings.embedded_postgres:
            data_dir = settings.data_dir
            assert data_dir is not None, "settings_from_args always sets a data dir"
            cluster = EmbeddedPostgres(data_dir, settings.postgres_bin)
            self.cluster = cluster
            # initdb and start take seconds: off the event loop.
            await asyncio.to_thread(cluster.start)
            dsn = cluster.socket_dsn
        if dsn is None:
            return
        self.ledger = await Ledger.connect(dsn)
        applied = await self.ledger.migrate()
        if applied:
            logger.info("ledger migrations applied: %s", ", ".join(applied))
        self.store = StateStore(self.ledger.pool)
        await self.store.create_schema()
        if self._given_members is None:
            self.members = LedgerMemberDirectory(self.ledger, self.programs, clock=self._clock)
        # A restarted server serves the last applied version of each program (docs/contract.md).
        for stored in await self.store.latest_programs():
            await asyncio.to_thread(self.programs.publish, stored.program, stored.version)
            logger.info("program %r version %d restored", stored.program.id, stored.version)
        send: Send = log_sender
        if settings.redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(settings.redis_url)
            send = redis_sender(self._redis)
        self.jobs = JobRunner(
            self.ledger,
            self.programs,
            self.members,
            send=send,
            interval_s=settings.jobs_interval_s,
            clock=self._clock,
        )

    async def open(self) -> None:
        """Check the settings, open storage, start listening; health stays NOT_SERVING."""
        self.settings.check()
        tune_allocator()
        try:
            await self._open_storage()
            server = ArbiterServer(
                self.settings,
                self.programs,
                self.members,
                self._clock,
                ledger=self.ledger,
            )
            await server.start()
        except BaseException:
            await self._close_storage()
            raise
        self._server = server
        logger.info("listening on %s (port %d)", self.settings.listen, server.port)
        logger.info("%s", native.describe())

    async def apply_program(self, program: Any) -> int:
        """Compile, store (when it differs from the applied version) and publish a program."""
        if not program.id:
            raise ConfigError([ConfigIssue("program", "", "id", "required")])
        compiled = await asyncio.to_thread(self._compile, program)
        if self.store is None:
            return await asyncio.to_thread(self.programs.publish, program, compiled=compiled)
        version, changed = await self.store.apply(program, self._clock())
        current = self.programs.get(program.id).version if program.id in self.programs else None
        if changed or current != version:
            await asyncio.to_thread(self.programs.publish, program, version, compiled=compiled)
        return version

    async def load_programs(self, paths: tuple[Path, ...] | None = None) -> list[tuple[str, int]]:
        """Load and apply each program file (default: the settings' `--program` files).

        Returns (program id, version) per file; raises ConfigError on the first bad file, with
        nothing of that file applied. A file equal to the applied version keeps its version.
        """
        published: list[tuple[str, int]] = []
        for path in self.settings.programs if paths is None else paths:
            program = await asyncio.to_thread(load_program_file, path)
            version = await self.apply_program(program)
            logger.info("program %r version %d applied from %s", program.id, version, path)
            published.append((program.id, version))
        return published

    async def ready(self) -> None:
        """Jobs started; health SERVING: the server can answer calculations."""
        if self._server is None:
            raise RuntimeError("App.open() has not run")
        if self.jobs is not None:
            self.jobs.start()
        await self._server.set_serving()

    async def start(self) -> None:
        """open(), load the programs, ready(); on a failure, stops what was started."""
        await self.open()
        try:
            await self.load_programs()
            await self.ready()
        except BaseException:
            await self.stop(grace_s=0)
            raise

    async def _close_storage(self) -> None:
        jobs, self.jobs = self.jobs, None
        if jobs is not None:
            await jobs.stop()
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()
        ledger, self.ledger = self.ledger, None
        self.store = None
        if ledger is not None:
            await ledger.close()
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            await asyncio.to_thread(cluster.stop)

    async def stop(self, grace_s: float | None = None) -> None:
        """Health NOT_SERVING, drain calls in flight for `grace_s`, release everything."""
        server, self._server = self._server, None
        try:
            if server is not None:
                await server.stop(grace_s)
        finally:
            await self._close_storage()

    async def serve_until_signal(self) -> None:
        """start(), then serve until SIGTERM or SIGINT, then a graceful stop()."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, stopping.set)
        try:
            await self.start()
            logger.info("serving %d program(s)", len(self.programs))
            await stopping.wait()
            logger.info("stopping: draining calls for up to %.1f s", self.settings.shutdown_grace_s)
            await self.stop()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
