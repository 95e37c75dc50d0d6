"""state room: the applied configuration, draft edits, and where member state comes from."""

from arbiter.server.state.codes import DEFAULT_CACHE_CODES, CodeUsageCache
from arbiter.server.state.edits import (
    DELETABLE_KINDS,
    EDIT_RPCS,
    OBJECT_KINDS,
    PLACEMENT,
    Edit,
    apply_edit,
    diff,
)
from arbiter.server.state.errors import AlreadyExists, EditRefused, InvalidEdit, NotFound
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
    "DELETABLE_KINDS",
    "EDIT_RPCS",
    "MAX_PROGRAMS",
    "OBJECT_KINDS",
    "PLACEMENT",
    "AlreadyExists",
    "AppliedProgram",
    "CodeUsageCache",
    "Edit",
    "EditRefused",
    "InMemoryMemberDirectory",
    "InvalidEdit",
    "LedgerMemberDirectory",
    "MemberDirectory",
    "NotFound",
    "ProgramRegistry",
    "StateStore",
    "StoredProgram",
    "after_write",
    "apply_edit",
    "diff",
]
