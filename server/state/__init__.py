"""state room: the applied configuration and where member state comes from."""

from arbiter.server.state.codes import DEFAULT_CACHE_CODES, CodeUsageCache
from arbiter.server.state.errors import NotFound
from arbiter.server.state.members import (
    DEFAULT_CACHE_MEMBERS,
    InMemoryMemberDirectory,
    LedgerMemberDirectory,
    MemberDirectory,
)
from arbiter.server.state.programs import MAX_PROGRAMS, AppliedProgram, ProgramRegistry
from arbiter.server.state.store import StateStore, StoredProgram
from arbiter.server.state.writes import after_write

__all__ = [
    "DEFAULT_CACHE_CODES",
    "DEFAULT_CACHE_MEMBERS",
    "MAX_PROGRAMS",
    "AppliedProgram",
    "CodeUsageCache",
    "InMemoryMemberDirectory",
    "LedgerMemberDirectory",
    "MemberDirectory",
    "NotFound",
    "ProgramRegistry",
    "StateStore",
    "StoredProgram",
    "after_write",
]
