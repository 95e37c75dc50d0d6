"""The process: settings -> program files -> port -> storage -> jobs; start, serve, stop.

The order of `open()` puts what fails for a user's mistake first, before anything slow or
stateful: the settings, then every `--program` file read, validated and compiled, then the
port bound; only then is the database created, started or migrated. A bad file or a busy port
therefore fails at once with one message, and leaves the data folder as it was.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arbiter.server import native
from arbiter.server.api.actor import LOCAL_ACTOR
from arbiter.server.api.admission import Admission
from arbiter.server.api.checkout import Clock, utc_now
from arbiter.server.api.program_file import load_program_file
from arbiter.server.app.embedded_pg import EmbeddedPostgres
from arbiter.server.app.runtime import tune_allocator
from arbiter.server.app.server import ArbiterServer
from arbiter.server.app.settings import Settings, SettingsError
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
from arbiter.server.state.config import Configuration
from arbiter.server.state.errors import InvalidDraft
from arbiter.server.state.programs import Compiler
from arbiter.server.state.shared import ConfigFollower, RedisBus, SharedMemberDirectory

__all__ = ["App", "ProgramFile", "ProgramFileError", "issue_text"]

logger = logging.getLogger("arbiter.app")


class ProgramFileError(ConfigError):
    """A `--program` file that cannot be served: which file, and its issues."""

    def __init__(self, path: Path, issues: tuple[ConfigIssue, ...]) -> None:
        super().__init__(issues)
        self.path = path


@dataclass(frozen=True, slots=True)
class ProgramFile:
    """A program file read, validated and compiled (not yet applied)."""

    path: Path
    program: Any  # program_pb2.Program
    compiled: Any  # what `compile` made of it


def _read_error(path: Path, error: OSError) -> SettingsError:
    return SettingsError(f"cannot read the program file {path}: {error.strerror or error}")


class App:
    """One Arbiter process.

    `start()` = `open()` (the `--program` files read and compiled, the port bound, storage,
    the server listening, health NOT_SERVING) + `load_programs()` (each file stored when it
    differs from the applied version, and published) + `ready()` (jobs started, health
    SERVING). Tests may call the three apart. `reload_programs()` (SIGHUP) reads the files again
    and applies those that changed. `stop()` drains calls in flight, then releases everything
    `open()` took, in reverse order: jobs, Redis, the ledger's pool, the embedded cluster.

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
        self.config: Configuration | None = None
        self.jobs: JobRunner | None = None
        self.cluster: EmbeddedPostgres | None = None
        self._redis: Any = None
        self.bus: RedisBus | None = None
        self.follower: ConfigFollower | None = None
        self._compile = compile
        self._clock = clock
        self._server: ArbiterServer | None = None
        # The `--program` files as open() read them, applied by load_programs().
        self._files: list[ProgramFile] | None = None

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
        await self.store.open()
        self.config = Configuration(self.store, self.programs, self._compile, self._clock)
        if self._given_members is None:
            self.members = LedgerMemberDirectory(self.ledger, self.programs, clock=self._clock)
        # A restarted server serves the applied version of every program in storage.
        for program_id, version in await self.config.restore():
            logger.info("program %r version %d restored", program_id, version)
        send: Send = log_sender
        relay_interval_s = 0.0
        if settings.redis_url:
            # Many replicas (docs/replicas.md): writes reach the others' caches, Applies their
            # registries, and the outbox the event streams, through Redis.
            self.bus = RedisBus(settings.redis_url)
            self._redis = self.bus.client
            self.members = SharedMemberDirectory(self.members, self.bus)
            self.config.announce = self.bus.config_applied
            send = redis_sender(self._redis)
            relay_interval_s = settings.relay_interval_s
        self.follower = ConfigFollower(self.config, self.members, poll_s=settings.config_poll_s)
        if self.bus is not None:
            self.bus.attach(on_config=self.follower.on_applied)
        self.jobs = JobRunner(
            self.ledger,
            self.programs,
            self.members,
            send=send,
            interval_s=settings.jobs_interval_s,
            relay_interval_s=relay_interval_s,
            clock=self._clock,
        )

    async def open(self) -> None:
        """Check the settings and the program files, bind the port, open storage, start
        listening; health stays NOT_SERVING. Raises SettingsError (a busy port, an unreadable
        file) or ProgramFileError before any storage is touched."""
        self.settings.check()
        tune_allocator()
        files = await self.read_program_files()
        server = ArbiterServer(self.settings)  # binds the port: a busy one fails here
        try:
            await self._open_storage()
            server.add_services(
                self.programs, self.members, self._clock, ledger=self.ledger, config=self.config
            )
            await server.start()
        except BaseException:
            await server.discard()
            await self._close_storage()
            raise
        self._server = server
        self._files = files
        logger.info("listening on %s (port %d)", self.settings.listen, server.port)
        logger.info("%s", native.describe())

    async def read_program_files(self, paths: tuple[Path, ...] | None = None) -> list[ProgramFile]:
        """Read, validate and compile each program file (default: the settings' `--program`
        files), applying nothing. Raises ProgramFileError naming the first bad file, or
        SettingsError for a file that cannot be read."""
        files: list[ProgramFile] = []
        for path in self.settings.programs if paths is None else paths:
            try:
                program = await asyncio.to_thread(load_program_file, path)
                if not program.id:
                    raise ConfigError([ConfigIssue("program", "", "id", "required")])
                compiled = await asyncio.to_thread(self._compile, program)
            except OSError as error:
                raise _read_error(path, error) from None
            except ConfigError as error:
                raise ProgramFileError(path, error.issues) from None
            files.append(ProgramFile(path, program, compiled))
        return files

    async def apply_program(
        self, program: Any, *, compiled: Any = None, source: str = "program"
    ) -> int:
        """Compile (unless given `compiled`), store (when it differs from the applied version)
        and publish a program: configuration as code, an import and an Apply in one
        (docs/admin.md)."""
        if not program.id:
            raise ConfigError([ConfigIssue("program", "", "id", "required")])
        if self.config is None:
            current_applied = self.programs.get(program.id) if program.id in self.programs else None
            if current_applied is not None and current_applied.source == program:
                return current_applied.version  # unchanged: no new version (as with storage)
            if compiled is None:
                compiled = await asyncio.to_thread(self._compile, program)
            return await asyncio.to_thread(self.programs.publish, program, compiled=compiled)
        try:
            return await self.config.import_and_apply(
                program, LOCAL_ACTOR, source=source, compiled=compiled
            )
        except InvalidDraft as exc:
            # At start-up an invalid file is a bad argument of the command, as before storage.
            raise ConfigError(exc.issues) from None

    async def load_programs(self, paths: tuple[Path, ...] | None = None) -> list[tuple[str, int]]:
        """Load and apply each program file (default: the settings' `--program` files, as
        `open()` read them).

        Returns (program id, version) per file. Every file is read and compiled before any is
        applied: a bad one raises ProgramFileError with nothing applied. A file equal to the
        applied version keeps its version.
        """
        if paths is None and self._files is not None:
            files, self._files = self._files, None
        else:
            files = await self.read_program_files(paths)
        return [await self._apply_file(file) for file in files]

    async def reload_programs(self) -> list[tuple[str, int]]:
        """Read the `--program` files again and apply those that changed (SIGHUP)."""
        return await self.load_programs(self.settings.programs)

    async def _apply_file(self, file: ProgramFile) -> tuple[str, int]:
        program_id: str = file.program.id
        before = self.programs.get(program_id).version if program_id in self.programs else None
        version = await self.apply_program(
            file.program, compiled=file.compiled, source=str(file.path)
        )
        if version == before:
            logger.info("program %r version %d unchanged in %s", program_id, version, file.path)
        else:
            logger.info("program %r version %d applied from %s", program_id, version, file.path)
        return program_id, version

    async def ready(self) -> None:
        """Jobs started; health SERVING: the server can answer calculations."""
        if self._server is None:
            raise RuntimeError("App.open() has not run")
        if self.jobs is not None:
            self.jobs.start()
        if self.follower is not None:
            self.follower.start()
        await self._server.set_serving()
        if self.bus is not None:
            server = self._server
            await server.set_redis_health(self.bus.subscribed)
            self.bus.attach(on_link=server.set_redis_health)
            self.bus.start()

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
        follower, self.follower = self.follower, None
        if follower is not None:
            await follower.stop()
        bus, self.bus = self.bus, None
        self._redis = None
        if bus is not None:
            await bus.stop()
        ledger, self.ledger = self.ledger, None
        self.store = None
        self.config = None
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
        """start(), then serve until SIGTERM or SIGINT, then a graceful stop().

        SIGHUP reloads the `--program` files (`reload_programs`): a changed file is applied, an
        unchanged one keeps its version, a bad one is logged and changes nothing. A signal that
        arrives while the server starts is acted on once it has started.
        """
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        reloading = asyncio.Event()
        handlers = {
            signal.SIGTERM: stopping.set,
            signal.SIGINT: stopping.set,
            signal.SIGHUP: reloading.set,
        }
        for sig, handler in handlers.items():
            loop.add_signal_handler(sig, handler)
        try:
            await self.start()
            logger.info("serving %d program(s)", len(self.programs))
            while not stopping.is_set():
                await _first_of(stopping, reloading)
                if reloading.is_set() and not stopping.is_set():
                    reloading.clear()
                    await self._reload_logged()
            logger.info("stopping: draining calls for up to %.1f s", self.settings.shutdown_grace_s)
            await self.stop()
        finally:
            for sig in handlers:
                loop.remove_signal_handler(sig)

    async def _reload_logged(self) -> None:
        logger.info("SIGHUP: reloading %d program file(s)", len(self.settings.programs))
        try:
            await self.reload_programs()
        except ProgramFileError as error:
            for issue in error.issues:
                logger.error("reload refused: %s: %s", error.path, issue_text(issue, error.path))
            logger.error("reload refused: still serving the programs applied before")
        except (ConfigError, SettingsError) as error:
            logger.error("reload refused: %s; still serving the programs applied before", error)
        except Exception:
            # The database down, say: a reload must never take the server with it.
            logger.exception("reload failed; still serving the programs applied before")


def issue_text(issue: ConfigIssue, path: Path | None = None) -> str:
    """An issue as a user reads it: its empty parts left out, and the file (already named by
    the caller) not repeated."""
    parts = []
    if issue.object_id:
        parts.append(f"{issue.object_kind} {issue.object_id!r}")
    if issue.field:
        parts.append(issue.field)
    message = issue.message
    if path is not None:
        message = message.removeprefix(f"{path}: ")
    parts.append(message)
    return ": ".join(parts)


async def _first_of(*events: asyncio.Event) -> None:
    """Wait until one of `events` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
