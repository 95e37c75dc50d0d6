"""Drafts and versions at run time: storage (StateStore) plus the live registry (ProgramRegistry).

Apply reads the draft, compiles it off the event loop (`asyncio.to_thread`), commits it as the
next version under the program's row lock, then swaps the registry's one reference: requests
that already took the old version finish on it, later ones get the new one. The compile happens
before the lock, so an Apply never holds the row while it compiles; a draft edited meanwhile is
compiled again (the commit checks the revision it compiled).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Final

from arbiter.server.engine import CompiledProgram, ConfigError, ConfigIssue
from arbiter.server.state.errors import InvalidDraft
from arbiter.server.state.programs import MAX_PROGRAMS, Compiler, ProgramRegistry
from arbiter.server.state.store import (
    ApplyOutcome,
    DraftMoved,
    ProgramRecord,
    StateStore,
    program_bytes,
)
from arbiter.v1 import program_pb2

__all__ = ["Configuration"]

# An Apply whose draft keeps moving under it (edits faster than it compiles) tries this many
# compiles without a lock, then compiles once with the draft's row locked (edits wait for it).
_APPLY_ATTEMPTS: Final = 5

Clock = Callable[[], datetime]

# A compile runs in a thread, but holds the GIL while it computes; two things would make the
# event loop wait for it (docs/admin.md, "Compiling without a pause"):
# - CPython hands the GIL to a waiting thread only after the switch interval (5 ms), and the
#   loop waits that long at each I/O wake-up: while compiles run, the interval is this;
# - the compile's allocations trigger full collections of the cyclic GC, which traverse the
#   whole heap (20-60 ms measured) with the GIL held: the collector is paused while compiles
#   run, and once the last ends, its young garbage is collected and what is alive is frozen
#   (`gc.freeze`), so later collections skip the compiled programs (which hold no reference
#   cycles: reference counting frees a replaced one, frozen or not).
_COMPILE_SWITCH_INTERVAL_S: Final = 0.0005
_switch_lock = threading.Lock()
_compiling = 0
_normal_interval = sys.getswitchinterval()
_gc_was_enabled = True


def _yielding(compile: Compiler, program: program_pb2.Program) -> CompiledProgram:
    """`compile(program)` with the short switch interval and no GC while any compile runs."""
    global _compiling, _normal_interval, _gc_was_enabled
    with _switch_lock:
        if _compiling == 0:
            _normal_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_normal_interval, _COMPILE_SWITCH_INTERVAL_S))
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _compiling += 1
    try:
        return compile(program)
    finally:
        with _switch_lock:
            _compiling -= 1
            if _compiling == 0:
                sys.setswitchinterval(_normal_interval)
                if _gc_was_enabled:
                    # The compile's own young garbage first (a few objects, ~2 ms): frozen
                    # garbage is never collected.
                    gc.collect(0)
                    gc.freeze()
                    gc.enable()


class Configuration:
    """The stored drafts and versions of every program, and the versions served."""

    def __init__(
        self, store: StateStore, registry: ProgramRegistry, compile: Compiler, clock: Clock
    ) -> None:
        self.store = store
        self.registry = registry
        self._compile = compile
        self._clock = clock
        # Per program: the draft revision compiled last for test mode, and its compiled form.
        self._drafts: dict[str, tuple[int, CompiledProgram]] = {}
        self._drafts_lock = threading.Lock()
        # Told (program, version) once this replica has committed and serves a new applied
        # version: the replica bus tells the others (server/state/shared.py).
        self.announce: Callable[[str, int], None] | None = None

    def _announce(self, program_id: str, version: int) -> None:
        if self.announce is not None:
            self.announce(program_id, version)

    def served_version(self, program_id: str) -> int | None:
        """The version this replica serves of a program (None: none)."""
        return self.registry.get(program_id).version if program_id in self.registry else None

    async def follow(self, program_id: str) -> bool:
        """Serve the program's applied version from storage when it is newer than the one
        served (another replica applied it); True when this swapped."""
        before = self.served_version(program_id)
        await self._serve(await self.store.record(program_id))
        return self.served_version(program_id) != before

    async def follow_all(self) -> list[str]:
        """`follow` every program whose applied version in storage is newer than the one
        served; the programs swapped."""
        swapped: list[str] = []
        for program_id, version in (await self.store.applied_versions()).items():
            served = self.served_version(program_id)
            if (served is None or served < version) and await self.follow(program_id):
                swapped.append(program_id)
        return swapped

    async def _compiled(self, program: program_pb2.Program) -> CompiledProgram:
        """Compile off the event loop; ConfigError -> InvalidDraft (FAILED_PRECONDITION)."""
        if not program.id:
            raise InvalidDraft([ConfigIssue("program", "", "id", "required")])
        try:
            return await asyncio.to_thread(_yielding, self._compile, program)
        except InvalidDraft:
            raise
        except ConfigError as exc:
            raise InvalidDraft(exc.issues) from exc

    def _publish(self, version: int, program: program_pb2.Program,
                 compiled: CompiledProgram) -> int:
        # A dictionary assignment under the registry's lock: no pause for the requests.
        return self.registry.publish(program, version, compiled=compiled)

    async def restore(self) -> list[tuple[str, int]]:
        """Serve every program's applied version from storage (a restart)."""
        restored: list[tuple[str, int]] = []
        for stored in await self.store.latest_programs():
            compiled = await asyncio.to_thread(_yielding, self._compile, stored.program)
            self._publish(stored.version, stored.program, compiled)
            restored.append((stored.program.id, stored.version))
        return restored

    async def _serve(self, record: ProgramRecord) -> None:
        """Make sure the registry serves the stored applied version (another replica or an
        earlier Apply may have committed it)."""
        if record.applied_version is None or record.applied_pb is None:
            return
        if record.id in self.registry and (
            self.registry.get(record.id).version >= record.applied_version
        ):
            return
        applied = program_pb2.Program.FromString(record.applied_pb)
        self._publish(record.applied_version, applied, await self._compiled(applied))

    async def apply(self, program_id: str, actor: str) -> ApplyOutcome:
        """Publish the draft as the next version; an unchanged draft answers the applied one.

        Raises InvalidDraft (nothing changes) when the draft does not compile, NotFound for an
        unknown program, ConfigurationRefused when its database has another active program.
        """
        for _ in range(_APPLY_ATTEMPTS):
            record = await self.store.record(program_id)
            if not record.has_draft_changes:
                await self._serve(record)
                assert record.applied_version is not None
                return ApplyOutcome(record.applied_version, record.draft, False)
            draft = record.draft
            compiled = await self._compiled(draft)
            try:
                outcome = await self.store.commit_version(
                    program_id, record.revision, actor, self._clock()
                )
            except DraftMoved:
                continue
            if outcome.changed or program_bytes(outcome.program) == program_bytes(draft):
                # Made by this Apply, or by a concurrent one of the same draft: what was
                # compiled here is that version.
                self._publish(outcome.version, draft, compiled)
            else:
                await self._serve(await self.store.record(program_id))
            if outcome.changed:
                self._announce(program_id, outcome.version)
            return outcome
        # Edits kept overtaking the compile: compile once more with the draft's row locked, so
        # that the edits wait for this Apply instead (every Apply ends, none is refused).
        compiled_locked: list[CompiledProgram] = []

        async def check(draft: program_pb2.Program) -> None:
            compiled_locked.append(await self._compiled(draft))

        outcome = await self.store.commit_version(
            program_id, None, actor, self._clock(), check=check
        )
        if compiled_locked and outcome.changed:
            self._publish(outcome.version, outcome.program, compiled_locked[-1])
            self._announce(program_id, outcome.version)
        else:
            await self._serve(await self.store.record(program_id))
        return outcome

    async def import_and_apply(
        self,
        program: program_pb2.Program,
        actor: str,
        *,
        source: str,
        compiled: CompiledProgram | None = None,
    ) -> int:
        """Configuration as code (`arbiter serve --program FILE`): store and publish `program`
        when it differs from the applied version; returns the version served. `compiled`: the
        program compiled already (start-up compiles every file before storage opens)."""
        if compiled is None:
            compiled = await self._compiled(program)
        outcome = await self.store.import_and_apply(program, actor, self._clock(), source=source)
        if outcome.changed:
            self._publish(outcome.version, program, compiled)
            self._announce(program.id, outcome.version)
        else:
            current = self.registry.get(program.id).version if program.id in self.registry else 0
            if current < outcome.version:
                self._publish(outcome.version, program, compiled)
        return outcome.version

    async def compiled_draft(self, program_id: str) -> tuple[ProgramRecord, CompiledProgram]:
        """The program's draft compiled (cached by its revision), for test mode."""
        record = await self.store.record(program_id)
        with self._drafts_lock:
            hit = self._drafts.get(program_id)
        if hit is not None and hit[0] == record.revision:
            return record, hit[1]
        compiled = await self._compiled(record.draft)
        with self._drafts_lock:
            if program_id not in self._drafts and len(self._drafts) >= MAX_PROGRAMS:
                self._drafts.pop(next(iter(self._drafts)))
            self._drafts[program_id] = (record.revision, compiled)
        return record, compiled
