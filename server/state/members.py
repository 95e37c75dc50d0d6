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

An entry is held packed (`_pack`): one small bytes object with the balances and tiers as
indexes into an append-only table of the program's names and the points as 4- or 8-byte
integers, and `stale_at` in microseconds; a hit unpacks it into a fresh MemberState. That keeps
a cached member under 200 bytes with its id and the LRU's own cost (docs/api.md, "The member
cache's memory"). An entry that does not fit the packed form (pool uses, segments, over 255
names) is held as it is.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Final, Protocol

from arbiter.server.engine import CodeUsage, MemberState
from arbiter.server.ledger import Ledger
from arbiter.server.state.codes import DEFAULT_CACHE_CODES, CodeUsageCache
from arbiter.server.state.errors import NotFound
from arbiter.server.state.programs import ProgramRegistry
from arbiter.server.state.second import MAX_TTL_MS, RedisMemberLevel
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


# --- Packed entries. ----------------------------------------------------------------------------
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_NOTHING: Final[Mapping[str, int]] = MappingProxyType({})
_NO_TIERS: Final[Mapping[str, str]] = MappingProxyType({})
_NO_SEGMENTS: Final[frozenset[str]] = frozenset()
_MAX_NAMES: Final = 256  # an index is one byte
_MAX_BALANCES: Final = 255  # the header's first byte
_MAX_TIERS: Final = 63  # the header's second byte, below its two flags
_WIDE: Final = 64  # flag: the points take 8 bytes each (else 4)
_STALE: Final = 128  # flag: stale_at follows
_INT32: Final = 2**31
_INT64: Final = 2**63


class _Names:
    """The names (point types, tier groups, tiers) of a program's packed entries, by index.

    Append-only, so an index never changes meaning while entries that use it are cached; a
    program's members share one string per name.
    """

    __slots__ = ("index", "names")

    def __init__(self) -> None:
        self.names: list[str] = []
        self.index: dict[str, int] = {}

    def of(self, name: str) -> int | None:
        """The index of `name` (added when new), or None when the table is full."""
        at = self.index.get(name)
        if at is None:
            if len(self.names) >= _MAX_NAMES:
                return None
            at = len(self.names)
            self.names.append(name)
            self.index[name] = at
        return at


@lru_cache(maxsize=1024)
def _layout(balances: int, tiers: int, wide: bool, stale: bool) -> struct.Struct:
    """After the two header bytes: (name index, points) per balance, (group, tier) indexes per
    tier, then stale_at in microseconds since the epoch."""
    points = "Bq" if wide else "Bi"
    return struct.Struct("<" + points * balances + "BB" * tiers + ("q" if stale else ""))


def _pack(member_id: str, entry: _Entry, names: _Names) -> bytes | None:
    """`entry` packed, or None when it does not fit the packed form (then it is kept as is)."""
    state = entry.state
    balances = state.balances
    tiers = state.tiers
    if (
        entry.pool_uses
        or state.segments
        or state.member_id != member_id
        or len(balances) > _MAX_BALANCES
        or len(tiers) > _MAX_TIERS
    ):
        return None
    values: list[int] = []
    wide = False
    for point_type, points in balances.items():
        at = names.of(point_type)
        if at is None or not -_INT64 <= points < _INT64:
            return None
        wide = wide or not -_INT32 <= points < _INT32
        values += (at, points)
    for group, tier in tiers.items():
        group_at = names.of(group)
        tier_at = names.of(tier)
        if group_at is None or tier_at is None:
            return None
        values += (group_at, tier_at)
    stale_at = entry.stale_at
    flags = len(tiers) | (_WIDE if wide else 0)
    if stale_at is not None:
        if stale_at.tzinfo is None:
            return None
        values.append((stale_at - _EPOCH) // _MICROSECOND)
        flags |= _STALE
    layout = _layout(len(balances), len(tiers), wide, stale_at is not None)
    return bytes((len(balances), flags)) + layout.pack(*values)


def _key(member_id: str) -> bytes:
    """A member's key in the cache: for an id in the canonical UUID form (36 characters,
    lower-case hex in 8-4-4-4-12 groups) its 16 bytes and 0xFF, a byte no UTF-8 has, so no
    other id's key can equal it (64 bytes allocated instead of 80); else the id's UTF-8. An
    upper-case UUID is another member id (ids are compared as written) and keeps its UTF-8."""
    if len(member_id) == 36 and (
        member_id[8] == member_id[13] == member_id[18] == member_id[23] == "-"
    ):
        digits = member_id.replace("-", "")
        try:
            raw = bytes.fromhex(digits)
        except ValueError:
            raw = b""
        if len(raw) == 16 and raw.hex() == digits:
            return raw + b"\xff"
    return member_id.encode("utf-8", "surrogatepass")


def pack_portable(member_id: str, entry: _Entry) -> bytes | None:
    """`entry` packed with its own names (for the second level, shared by processes whose name
    tables differ): the count of names, each name as a 2-byte length and its UTF-8, then the
    packed entry. None when it does not fit the packed form."""
    names = _Names()
    packed = _pack(member_id, entry, names)
    if packed is None:
        return None
    parts = [bytes((len(names.names),))]
    for name in names.names:
        data = name.encode("utf-8", "surrogatepass")
        if len(data) > 0xFFFF:
            return None
        parts += (len(data).to_bytes(2, "little"), data)
    parts.append(packed)
    return b"".join(parts)


def unpack_portable(member_id: str, body: bytes) -> _Entry:
    """The entry `pack_portable` packed."""
    count, at, names = body[0], 1, []
    for _ in range(count):
        size = int.from_bytes(body[at:at + 2], "little")
        names.append(body[at + 2:at + 2 + size].decode("utf-8", "surrogatepass"))
        at += 2 + size
    return _unpack(member_id, body[at:], names)


def _unpack(member_id: str, packed: bytes, names: Sequence[str]) -> _Entry:
    """The entry `_pack` packed, with a fresh MemberState."""
    count = packed[0]
    flags = packed[1]
    tier_count = flags & _MAX_TIERS
    stale = bool(flags & _STALE)
    flat = _layout(count, tier_count, bool(flags & _WIDE), stale).unpack_from(packed, 2)
    end = 2 * count
    balances: Mapping[str, int] = (
        {names[flat[i]]: flat[i + 1] for i in range(0, end, 2)} if count else _NOTHING
    )
    tiers: Mapping[str, str] = (
        {names[flat[i]]: names[flat[i + 1]] for i in range(end, end + 2 * tier_count, 2)}
        if tier_count
        else _NO_TIERS
    )
    stale_at = _EPOCH + timedelta(microseconds=flat[-1]) if stale else None
    state = MemberState._make((member_id, balances, tiers, _NO_SEGMENTS))
    return _Entry(state, _NOTHING, stale_at)


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
        self.programs = programs
        self._clock = clock or (lambda: datetime.now(UTC))
        self._max_members = max_members
        # Per program: the member id's UTF-8 -> the packed entry (or the entry, when it does not
        # pack). Bytes keys: 16 bytes less per member than the id's str.
        self._cache: dict[str, OrderedDict[bytes, bytes | _Entry]] = {}
        self._names: dict[str, _Names] = {}
        # Bumped by every invalidation of a program: a load compares it before caching.
        self._epochs: dict[str, int] = {}
        self.codes = CodeUsageCache(ledger, max_codes=max_codes)
        #: The shared second level (Redis, server/state/second.py), set by the replica wiring.
        self.second: RedisMemberLevel | None = None
        #: Loads that read PostgreSQL (tests, metrics).
        self.loads = 0
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
            members.pop(_key(member_id), None)

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
        key = _key(member_id)
        held = members.get(key)
        if held is None:
            return None
        if isinstance(held, bytes):
            entry = _unpack(member_id, held, self._names[program_id].names)
        else:
            entry = held
        if entry.stale_at is not None and entry.stale_at <= now:
            del members[key]
            return None
        members.move_to_end(key)
        return entry

    def _keep(self, program_id: str, member_id: str, entry: _Entry, epoch: int) -> None:
        if self._epochs.get(program_id, 0) != epoch:
            return
        members = self._cache.setdefault(program_id, OrderedDict())
        names = self._names.setdefault(program_id, _Names())
        key = _key(member_id)
        members[key] = _pack(member_id, entry, names) or entry
        members.move_to_end(key)
        while len(members) > self._max_members:
            members.popitem(last=False)

    async def _load(self, program_id: str, member_id: str, now: datetime) -> _Entry:
        program = self._source(program_id)
        epoch = self._epochs.get(program_id, 0)
        second = self.second
        seen = None
        version = self._programs.get(program_id).version
        if second is not None and second.usable(program_id, member_id):
            seen = await second.lookup(program_id, member_id, version)
            if seen is not None and seen.body is not None:
                try:
                    entry = unpack_portable(member_id, seen.body)
                except (ValueError, IndexError, struct.error):
                    entry = None  # not an entry of ours: read PostgreSQL, then store over it
                if entry is not None and (entry.stale_at is None or entry.stale_at > now):
                    second.hits += 1
                    self._keep(program_id, member_id, entry, epoch)
                    return entry
        self.loads += 1
        snapshot = await self._ledger.member_snapshot(program, member_id, now=now)
        entry = _Entry(snapshot.state, snapshot.usage.member_pool_uses, snapshot.stale_at)
        self._keep(program_id, member_id, entry, epoch)
        if second is not None and seen is not None and second.usable(program_id, member_id):
            body = pack_portable(member_id, entry)
            if body is not None:
                ttl_ms = MAX_TTL_MS if entry.stale_at is None else (
                    (entry.stale_at - now) // timedelta(milliseconds=1))
                await second.store(program_id, member_id, version, seen, body, ttl_ms)
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
