"""The state room's errors: something a request names does not exist.

    ArbiterError (engine.errors)
    └── NotFound     a program, a member, ... that is not there (NOT_FOUND at the edge)

The ledger's own "no such member" can raise this same class (or subclass it), so that the api
room's one mapping covers both.
"""

from __future__ import annotations

from arbiter.server.engine.errors import ArbiterError

__all__ = ["NotFound"]

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
