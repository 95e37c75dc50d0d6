"""state room: the applied configuration and where member state comes from."""

from arbiter.server.state.errors import NotFound
from arbiter.server.state.members import (
    DEFAULT_CACHE_MEMBERS,
    InMemoryMemberDirectory,
    LedgerMemberDirectory,
    MemberDirectory,
)
from arbiter.server.state.programs import MAX_PROGRAMS, AppliedProgram, ProgramRegistry
from arbiter.server.state.store import StateStore, StoredProgram

__all__ = [
    "DEFAULT_CACHE_MEMBERS",
    "MAX_PROGRAMS",
    "AppliedProgram",
    "InMemoryMemberDirectory",
    "LedgerMemberDirectory",
    "MemberDirectory",
    "NotFound",
    "ProgramRegistry",
    "StateStore",
    "StoredProgram",
]
