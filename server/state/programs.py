"""The applied configuration: per program id, the live (version, CompiledProgram)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from arbiter.server.engine import CompiledProgram, ConfigError, ConfigIssue, compile_program
from arbiter.server.state.errors import NotFound
from arbiter.v1 import program_pb2

__all__ = ["MAX_PROGRAMS", "AppliedProgram", "ProgramRegistry"]

# One process serves a handful of programs; the bound keeps a runaway importer from growing the
# registry without end.
MAX_PROGRAMS = 1024

Compiler = Callable[[program_pb2.Program], CompiledProgram]


@dataclass(frozen=True, slots=True)
class AppliedProgram:
    """One applied version of one program: what a request takes and keeps until it answers."""

    version: int
    compiled: CompiledProgram
    # The program as published: the ledger reads its own view of it (point types, tiers, pools).
    source: program_pb2.Program | None = None


class ProgramRegistry:
    """In-memory registry of applied programs.

    Publishing compiles first (the slow part, outside any lock), then swaps one dictionary entry:
    a request that already took its `AppliedProgram` finishes on that version, every later one
    sees the new one. Reads take no lock: a dict lookup and assignment are atomic in CPython.
    """

    def __init__(self, compile: Compiler = compile_program) -> None:
        self._compile = compile
        self._applied: dict[str, AppliedProgram] = {}
        # Serialises version numbering only, so two concurrent publishes of one id (from worker
        # threads) cannot both become version n + 1.
        self._publish_lock = threading.Lock()

    def publish(
        self,
        program: program_pb2.Program,
        version: int | None = None,
        *,
        compiled: CompiledProgram | None = None,
    ) -> int:
        """Compile `program` and make it the applied version of its id; returns that version.

        `version` given (a version numbered by storage, shared by every replica): that number,
        unless a later one is applied already (then nothing changes and that one is answered);
        otherwise the previous one plus one. `compiled`: the program compiled already (by a
        caller that had to know it compiles before storing it). Raises ConfigError (nothing
        changes) when the program does not compile.
        """
        if not program.id:
            raise ConfigError([ConfigIssue("program", "", "id", "required")])
        if compiled is None:
            compiled = self._compile(program)
        with self._publish_lock:
            previous = self._applied.get(program.id)
            if previous is None and len(self._applied) >= MAX_PROGRAMS:
                raise ConfigError(
                    [ConfigIssue("program", program.id, "id", f"at most {MAX_PROGRAMS} programs")]
                )
            if version is None:
                version = 1 if previous is None else previous.version + 1
            elif previous is not None and previous.version > version:
                # Two applies committed n and n + 1 and published in the other order: the
                # registry never goes back to an older version.
                return previous.version
            self._applied[program.id] = AppliedProgram(version, compiled, program)
        return version

    def get(self, program_id: str) -> AppliedProgram:
        """The applied version of `program_id`; raises NotFound when none is applied."""
        try:
            return self._applied[program_id]
        except KeyError:
            raise NotFound("program", program_id) from None

    def __contains__(self, program_id: object) -> bool:
        return program_id in self._applied

    def __len__(self) -> int:
        return len(self._applied)

    def program_ids(self) -> list[str]:
        """The ids of the applied programs, in publication order."""
        return list(self._applied)
