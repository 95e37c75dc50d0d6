"""Where an enrolled member's calculation state comes from (memory, Redis, the ledger)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from arbiter.server.engine import MemberState
from arbiter.server.state.errors import NotFound

__all__ = ["InMemoryMemberDirectory", "MemberDirectory"]


class MemberDirectory(Protocol):
    """Resolves an enrolled member of a program to the state a calculation needs."""

    async def get(self, program_id: str, member_id: str) -> MemberState:
        """The member's available balances, tiers and segments; NotFound when not enrolled."""
        ...


class InMemoryMemberDirectory:
    """A fixed set of members held in memory: empty until the ledger lands.

    With no members given it answers NOT_FOUND for everyone, which is what a server without a
    ledger must say about a `member_id` (SPEC 9.2: no such member is NOT_FOUND).
    """

    def __init__(self, members: Mapping[tuple[str, str], MemberState] | None = None) -> None:
        self._members: dict[tuple[str, str], MemberState] = dict(members or {})

    async def get(self, program_id: str, member_id: str) -> MemberState:
        try:
            return self._members[program_id, member_id]
        except KeyError:
            raise NotFound("member", member_id) from None
