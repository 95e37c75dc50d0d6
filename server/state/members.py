"""Where an enrolled member's calculation state comes from (memory, then the ledger).

`LedgerMemberDirectory` keeps a bounded LRU per program of what a quote needs of a member
(available balances, tiers, the member's promo code pool uses), read with
`Ledger.member_snapshot`. An entry is dropped:
- by `invalidate(program, member)`, which every write this process makes calls (the one place a
  Redis bus of a later issue will call too);
- when it turns stale by time: balances and tiers depend on holds lapsing, lots expiring and
  CYCLIC periods ending, so an entry carries the earliest such instant (the snapshot's
  `stale_at`) and is not used from then.

Uses of a promo code by everyone change with anyone's order: they live in a `CodeUsageCache`
(`state/codes.py`) next to the members, dropped by `invalidate_codes`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol

from arbiter.server.engine import CodeUsage, MemberState
from arbiter.server.ledger import Ledger
from arbiter.server.state.codes import DEFAULT_CACHE_CODES, CodeUsageCache
from arbiter.server.state.errors import NotFound
from arbiter.server.state.programs import ProgramRegistry
from arbiter.v1 import program_pb2

__all__ = [
    "DEFAULT_CACHE_MEMBERS",
    "InMemoryMemberDirectory",
    "LedgerMemberDirectory",
    "MemberDirectory",
]

# Per program: 100k members of a few point types and tiers is some tens of MB at most.
DEFAULT_CACHE_MEMBERS: Final = 100_000

Clock = Callable[[], datetime]


class MemberDirectory(Protocol):
    """Resolves an enrolled member of a program to the state a calculation needs."""

    async def get(self, program_id: str, member_id: str) -> MemberState:
        """The member's available balances, tiers and segments; NotFound when not enrolled."""
        ...

    async def usage(
        self, program_id: str, member_id: str | None, codes: Sequence[str]
    ) -> CodeUsage | None:
        """Uses of the order's promo codes (by everyone) and of each pool by the member."""
        ...

    def invalidate(self, program_id: str, member_id: str | None = None) -> None:
        """Forget what is cached of a member (or, with None, of the whole program)."""
        ...

    def invalidate_codes(self, program_id: str, codes: Iterable[str] | None = None) -> None:
        """Forget the cached uses by everyone of these promo codes (None: of every code)."""
        ...


class InMemoryMemberDirectory:
    """A fixed set of members held in memory (tests, a server without a ledger).

    With no members given it answers NOT_FOUND for everyone, which is what a server without a
    ledger must say about a `member_id` (docs/contract.md: no such member is NOT_FOUND).
    """

    def __init__(self, members: Mapping[tuple[str, str], MemberState] | None = None) -> None:
        self._members: dict[tuple[str, str], MemberState] = dict(members or {})

    async def get(self, program_id: str, member_id: str) -> MemberState:
        try:
            return self._members[program_id, member_id]
        except KeyError:
            raise NotFound("member", member_id) from None

    async def usage(
        self, program_id: str, member_id: str | None, codes: Sequence[str]
    ) -> CodeUsage | None:
        return None

    def invalidate(self, program_id: str, member_id: str | None = None) -> None:
        return None

    def invalidate_codes(self, program_id: str, codes: Iterable[str] | None = None) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _Entry:
    state: MemberState
    pool_uses: Mapping[str, int]
    # From this instant on the entry may be wrong (a hold lapsed, a lot expired, a period
    # ended); None: nothing of the kind ahead.
    stale_at: datetime | None


class LedgerMemberDirectory:
    """Members from the ledger through a bounded in-memory cache; see the module docstring.

    A quote of a cached member does no I/O, nor does one with promo codes whose uses are
    cached. Loads that overlapped an invalidation of the same program are answered but not
    cached, so a write's invalidation can never be undone by a read that started before it.
    """

    def __init__(
        self,
        ledger: Ledger,
        programs: ProgramRegistry,
        *,
        clock: Clock | None = None,
        max_members: int = DEFAULT_CACHE_MEMBERS,
        max_codes: int = DEFAULT_CACHE_CODES,
    ) -> None:
        assert max_members > 0
        self._ledger = ledger
        self._programs = programs
        self._clock = clock or (lambda: datetime.now(UTC))
        self._max_members = max_members
        self._cache: dict[str, OrderedDict[str, _Entry]] = {}
        # Bumped by every invalidation of a program: a load compares it before caching.
        self._epochs: dict[str, int] = {}
        self.codes = CodeUsageCache(ledger, max_codes=max_codes)
        self.hits = 0
        self.misses = 0

    def invalidate(self, program_id: str, member_id: str | None = None) -> None:
        self._epochs[program_id] = self._epochs.get(program_id, 0) + 1
        members = self._cache.get(program_id)
        if members is None:
            return
        if member_id is None:
            members.clear()
        else:
            members.pop(member_id, None)

    def invalidate_codes(self, program_id: str, codes: Iterable[str] | None = None) -> None:
        self.codes.invalidate(program_id, codes)

    def cached(self, program_id: str) -> int:
        """How many members of a program are cached (tests, metrics)."""
        return len(self._cache.get(program_id, ()))

    def _source(self, program_id: str) -> program_pb2.Program:
        program = self._programs.get(program_id).source
        assert program is not None, "a ledger-backed directory needs published sources"
        return program

    def _fresh(self, program_id: str, member_id: str, now: datetime) -> _Entry | None:
        members = self._cache.get(program_id)
        if members is None:
            return None
        entry = members.get(member_id)
        if entry is None:
            return None
        if entry.stale_at is not None and entry.stale_at <= now:
            del members[member_id]
            return None
        members.move_to_end(member_id)
        return entry

    async def _load(self, program_id: str, member_id: str, now: datetime) -> _Entry:
        program = self._source(program_id)
        epoch = self._epochs.get(program_id, 0)
        snapshot = await self._ledger.member_snapshot(program, member_id, now=now)
        entry = _Entry(snapshot.state, snapshot.usage.member_pool_uses, snapshot.stale_at)
        if self._epochs.get(program_id, 0) == epoch:
            members = self._cache.setdefault(program_id, OrderedDict())
            members[member_id] = entry
            members.move_to_end(member_id)
            while len(members) > self._max_members:
                members.popitem(last=False)
        return entry

    async def _entry(self, program_id: str, member_id: str) -> _Entry:
        now = self._clock()
        entry = self._fresh(program_id, member_id, now)
        if entry is not None:
            self.hits += 1
            return entry
        self.misses += 1
        return await self._load(program_id, member_id, now)

    async def get(self, program_id: str, member_id: str) -> MemberState:
        return (await self._entry(program_id, member_id)).state

    async def usage(
        self, program_id: str, member_id: str | None, codes: Sequence[str]
    ) -> CodeUsage | None:
        if not codes:
            # Usage only matters to promo codes: an order without any needs none.
            return None
        pool_uses: Mapping[str, int] = {}
        if member_id:
            pool_uses = (await self._entry(program_id, member_id)).pool_uses
        code_uses = await self.codes.uses(self._source(program_id), codes, self._clock())
        return CodeUsage(code_uses, pool_uses)
