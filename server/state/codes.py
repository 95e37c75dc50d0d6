"""Promo code uses by everyone, as quotes see them: a bounded cache per program over the ledger.

A quote with promo codes needs each code's uses by everyone (docs/rules.md: `max_uses`). They change
with any member's order, so the member cache cannot hold them; this cache keeps them per code:
- filled from the ledger (`Ledger.code_uses`) on a miss, one query for all the missing codes;
- dropped by `invalidate(program, codes)`, which every write of this process that can change a
  code's uses calls (confirm, reserve: the order's codes; cancel, member removal: the program);
- not used from the earliest `hold_until` of the held uses it counted on (a lapsing hold lowers
  the count by time alone);
- bounded: least recently used codes go first.

A load that overlapped an invalidation of one of its codes is answered but not cached, so a write
cannot be undone by a read that started before it committed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from arbiter.server.ledger import Ledger
from arbiter.v1 import program_pb2

__all__ = ["DEFAULT_CACHE_CODES", "CodeUsageCache"]

# Per program. An entry is a code, a count and an instant: 100k codes stay within some tens of MB.
DEFAULT_CACHE_CODES: Final = 100_000


@dataclass(frozen=True, slots=True)
class _Count:
    uses: int
    # From this instant on a held use may have lapsed; None: no held use was counted.
    stale_at: datetime | None


class _Load:
    """A read of the ledger in flight: `dirty` once one of its codes was invalidated meanwhile."""

    __slots__ = ("codes", "dirty")

    def __init__(self, codes: frozenset[str]) -> None:
        self.codes = codes
        self.dirty = False


class CodeUsageCache:
    """Uses of promo codes by everyone; see the module docstring."""

    def __init__(self, ledger: Ledger, *, max_codes: int = DEFAULT_CACHE_CODES) -> None:
        assert max_codes > 0
        self._ledger = ledger
        self._max_codes = max_codes
        self._cache: dict[str, OrderedDict[str, _Count]] = {}
        # Per program, the loads in flight: at most one per concurrent quote that missed.
        self._loads: dict[str, set[_Load]] = {}
        self.hits = 0
        self.misses = 0

    def cached(self, program_id: str) -> int:
        """How many codes of a program are cached (tests, metrics)."""
        return len(self._cache.get(program_id, ()))

    def invalidate(self, program_id: str, codes: Iterable[str] | None = None) -> None:
        """Forget the uses of `codes` (any case), or with None of every code of the program."""
        upper = None if codes is None else frozenset(c.upper() for c in codes)
        for load in self._loads.get(program_id, ()):
            if upper is None or not load.codes.isdisjoint(upper):
                load.dirty = True
        counts = self._cache.get(program_id)
        if counts is None:
            return
        if upper is None:
            counts.clear()
            return
        for code in upper:
            counts.pop(code, None)

    async def uses(
        self, program: program_pb2.Program, codes: Sequence[str], now: datetime
    ) -> dict[str, int]:
        """Upper-case code -> uses by everyone at `now`, for each distinct code given."""
        program_id = program.id
        found: dict[str, int] = {}
        missing: list[str] = []
        counts = self._cache.get(program_id)
        for code in {c.upper() for c in codes}:
            count = None if counts is None else counts.get(code)
            if count is not None and (count.stale_at is None or now < count.stale_at):
                assert counts is not None
                counts.move_to_end(code)
                found[code] = count.uses
                continue
            if count is not None:
                assert counts is not None
                del counts[code]
            missing.append(code)
        if not missing:
            self.hits += 1
            return found
        self.misses += 1
        loaded = await self._load(program, missing, now)
        for code, count in loaded.items():
            found[code] = count.uses
        return found

    async def _load(
        self, program: program_pb2.Program, codes: list[str], now: datetime
    ) -> dict[str, _Count]:
        program_id = program.id
        load = _Load(frozenset(codes))
        loads = self._loads.setdefault(program_id, set())
        loads.add(load)
        try:
            read = await self._ledger.code_uses(program, codes, now=now)
        finally:
            loads.discard(load)
            if not loads:
                self._loads.pop(program_id, None)
        loaded = {code: _Count(uses.uses, uses.stale_at) for code, uses in read.items()}
        if not load.dirty:
            counts = self._cache.setdefault(program_id, OrderedDict())
            for code, count in loaded.items():
                counts[code] = count
                counts.move_to_end(code)
            while len(counts) > self._max_codes:
                counts.popitem(last=False)
        return loaded
