"""The process: settings -> storage (later) -> registry -> server; start, serve, stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from arbiter.server.api.checkout import Clock, utc_now
from arbiter.server.api.program_file import load_program_file
from arbiter.server.app.server import ArbiterServer
from arbiter.server.app.settings import Settings
from arbiter.server.engine import compile_program
from arbiter.server.state import InMemoryMemberDirectory, MemberDirectory, ProgramRegistry
from arbiter.server.state.programs import Compiler

__all__ = ["App"]

logger = logging.getLogger("arbiter.app")


class App:
    """One Arbiter process.

    `start()` = `open()` (server listening, health NOT_SERVING) + `load_programs()` (each
    `--program` file compiled and published) + `ready()` (health SERVING). Tests may call the
    three apart. `stop()` drains calls in flight and releases everything `open()` took.

    The seam for storage: `open()` is where the embedded PostgreSQL (or `postgres_url`), the
    ledger, Redis and a ledger-backed MemberDirectory are started and put in `self.members`,
    before the server; `stop()` closes them after it, in reverse order.
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
        self.members: MemberDirectory = InMemoryMemberDirectory() if members is None else members
        self._clock = clock
        self._server: ArbiterServer | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when listening on port 0)."""
        if self._server is None:
            raise RuntimeError("App.open() has not run")
        return self._server.port

    async def open(self) -> None:
        """Check the settings and start listening; health stays NOT_SERVING."""
        self.settings.check()
        # Seam: storage (embedded PostgreSQL / ledger / Redis) starts here, before the server.
        server = ArbiterServer(self.settings, self.programs, self.members, self._clock)
        await server.start()
        self._server = server
        logger.info("listening on %s (port %d)", self.settings.listen, server.port)

    async def load_programs(self, paths: tuple[Path, ...] | None = None) -> list[tuple[str, int]]:
        """Load and publish each program file (default: the settings' `--program` files).

        Returns (program id, version) per file; raises ConfigError on the first bad file, with
        nothing of that file published. Parsing and compiling run in a worker thread so that
        health checks keep being answered meanwhile.
        """
        published: list[tuple[str, int]] = []
        for path in self.settings.programs if paths is None else paths:
            program = await asyncio.to_thread(load_program_file, path)
            version = await asyncio.to_thread(self.programs.publish, program)
            logger.info("program %r version %d applied from %s", program.id, version, path)
            published.append((program.id, version))
        return published

    async def ready(self) -> None:
        """Health SERVING: the server can answer calculations."""
        if self._server is None:
            raise RuntimeError("App.open() has not run")
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

    async def stop(self, grace_s: float | None = None) -> None:
        """Health NOT_SERVING, drain calls in flight for `grace_s`, release everything."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace_s)
        # Seam: storage closes here, after the server.

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
