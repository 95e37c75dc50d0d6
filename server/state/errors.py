"""The state room's errors: something a request names does not exist.

    ArbiterError (engine.errors)
    ├── NotFound              a program, a member, ... that is not there (NOT_FOUND)
    ├── ProgramExists         CreateProgram of an existing id (ALREADY_EXISTS)
    ├── ConfigurationRefused  the stored configuration refuses the change (FAILED_PRECONDITION)
    └── ConfigError (engine)
        └── InvalidDraft      Apply of a draft that does not compile (FAILED_PRECONDITION)

The ledger's own "no such member" can raise this same class (or subclass it), so that the api
room's one mapping covers both.
"""

from __future__ import annotations

from arbiter.server.engine.errors import ArbiterError, ConfigError

__all__ = ["ConfigurationRefused", "InvalidDraft", "NotFound", "ProgramExists"]

# Ids come from callers: an error echoes at most this many characters of one, so that a
# megabyte-long id cannot turn into a megabyte-long status message.
_MAX_ECHOED_ID_CHARS = 80


class NotFound(ArbiterError):
    """A `kind` ("program", "member", ...) with this `id` does not exist."""

    def __init__(self, kind: str, id: str) -> None:
        self.kind = kind
        self.id = id
        shown = id if len(id) <= _MAX_ECHOED_ID_CHARS else id[:_MAX_ECHOED_ID_CHARS] + "…"
        super().__init__(f"{kind} {shown!r} not found")


class ProgramExists(ArbiterError):
    """CreateProgram of an id that is already a program (ALREADY_EXISTS at the edge)."""

    def __init__(self, program_id: str) -> None:
        self.id = program_id
        shown = program_id[:_MAX_ECHOED_ID_CHARS]
        super().__init__(f"program {shown!r} already exists")


class ConfigurationRefused(ArbiterError):
    """The stored configuration refuses the change as asked (FAILED_PRECONDITION at the edge):
    a revert with nothing applied, a second active program of one database, a database that
    would change."""


class InvalidDraft(ConfigError):
    """Apply of a draft that does not compile: FAILED_PRECONDITION (the draft is the state that
    is wrong, not the request), with the BadRequest of every issue, as a ConfigError carries."""
