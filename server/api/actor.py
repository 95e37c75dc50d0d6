"""Who is calling: the one place a request's actor (for the audit journal) is read."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["LOCAL_ACTOR", "actor_of"]

# The actor of every call while the server has no API keys, and of configuration as code.
LOCAL_ACTOR: Final = "local"


def actor_of(context: Any) -> str:
    """The name the audit journal records for the caller of `context`.

    Without API keys every caller is "local"; with keys, the key's name will come from here.
    """
    return LOCAL_ACTOR
