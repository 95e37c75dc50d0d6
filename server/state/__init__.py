"""state room: the applied configuration and where member state comes from."""

from arbiter.server.state.errors import NotFound
from arbiter.server.state.members import InMemoryMemberDirectory, MemberDirectory
from arbiter.server.state.programs import MAX_PROGRAMS, AppliedProgram, ProgramRegistry

__all__ = [
    "MAX_PROGRAMS",
    "AppliedProgram",
    "InMemoryMemberDirectory",
    "MemberDirectory",
    "NotFound",
    "ProgramRegistry",
]
