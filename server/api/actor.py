"""Who is calling: the one place a request's actor (for the audit journal) is read."""

from __future__ import annotations

from typing import Any, Final

from arbiter.server.api.auth import LOCAL, caller_name

__all__ = ["LOCAL_ACTOR", "actor_of"]

# The actor of every call while auth is off, and of configuration as code.
LOCAL_ACTOR: Final = LOCAL.name


def actor_of(context: Any) -> str:
    """The name the audit journal records for the caller of `context`: the API key's name
    (docs/security.md), "local" while auth is off."""
    return caller_name(context)
