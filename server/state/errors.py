"""The state room's errors: what a request names is missing, taken, refused or malformed.

    ArbiterError (engine.errors)
    ├── NotFound        a program, a member, an object a draft edit names ... that is not there
    │                   (NOT_FOUND at the edge)
    ├── AlreadyExists   a draft edit creating an id its kind already uses (ALREADY_EXISTS)
    ├── EditRefused     the draft's state refuses the edit: an ENDED promotion, a non-empty
    │                   group to delete, a changed database (FAILED_PRECONDITION)
    └── InvalidEdit     a malformed edit request; names every bad request field
                        (INVALID_ARGUMENT with google.rpc.BadRequest)

The ledger's own "no such member" can raise this same class (or subclass it), so that the api
room's one mapping covers both.
"""

from __future__ import annotations

from arbiter.server.engine.errors import ArbiterError, FieldViolation

__all__ = ["AlreadyExists", "EditRefused", "InvalidEdit", "NotFound", "shown_id"]

# Ids come from callers: an error echoes at most this many characters of one, so that a
# megabyte-long id cannot turn into a megabyte-long status message.
_MAX_ECHOED_ID_CHARS = 80


def shown_id(id: str) -> str:
    """`id` quoted for a message, cut to a bounded length."""
    shown = id if len(id) <= _MAX_ECHOED_ID_CHARS else id[:_MAX_ECHOED_ID_CHARS] + "…"
    return repr(shown)


class NotFound(ArbiterError):
    """A `kind` ("program", "member", ...) with this `id` does not exist."""

    def __init__(self, kind: str, id: str) -> None:
        self.kind = kind
        self.id = id
        super().__init__(f"{kind} {shown_id(id)} not found")


class AlreadyExists(ArbiterError):
    """A `kind` ("promotion", "point_type", ...) with this `id` exists already."""

    def __init__(self, kind: str, id: str, detail: str = "") -> None:
        self.kind = kind
        self.id = id
        message = f"{kind} {shown_id(id)} already exists"
        super().__init__(f"{message}: {detail}" if detail else message)


class EditRefused(ArbiterError):
    """The draft's state refuses an edit; the message says why and what to do instead."""


class InvalidEdit(ArbiterError):
    """A draft edit request that means nothing as given; lists every bad request field."""

    def __init__(self, violations: list[FieldViolation] | tuple[FieldViolation, ...]) -> None:
        if not violations:
            raise ValueError("InvalidEdit needs at least one violation")
        self.violations: tuple[FieldViolation, ...] = tuple(violations)
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations))
