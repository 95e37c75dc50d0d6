"""Redis as a second level of member snapshots, shared by every replica (docs/replicas.md).

A replica's memory miss reads the member's entry from Redis (one MGET) before PostgreSQL; a
PostgreSQL load stores it back, so the next miss of that member on any replica is one round
trip to Redis. Keys (the program's `%` and `:` escaped, so that a key names one member only):
- `arbiter:member:{program}:{member}`: the entry, `struct "<qq"` (the program generation and
  the served version it was read with) then the member's packed snapshot with its own names
  (see `members.pack_portable`); it expires (PX) at its `stale_at` and after `MAX_TTL_MS` at the
  latest;
- `arbiter:member-gen:{program}:{member}` and `arbiter:program-gen:{program}`: generations,
  INCRemented by every invalidation of the member (of the whole program).

The generation rule: a loader reads both generations (in the MGET that missed) before its
PostgreSQL read, and stores with a Lua script only while both are unchanged. An invalidation
INCRs the generation and DELetes the entry in one pipeline sent after the write could have
committed and before its pub/sub message. A load whose PostgreSQL read preceded a commit read
the generations before the INCR: its store is either refused (after the INCR) or deleted by the
DEL that follows the INCR (before it).

Until this replica's own invalidation of a member has reached Redis (it leaves from the bus's
queue), the replica neither reads nor stores that member's entry, so it always sees its own
writes. An invalidation that cannot be sent is kept and sent again; a replica whose subscription
comes up (its start, the end of an outage) drops every program's entries. Redis slow or down: each
call gives up after `TIMEOUT_S` and the load goes on from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Any, Final

__all__ = ["MAX_TTL_MS", "TIMEOUT_S", "Lookup", "RedisMemberLevel", "entry_key"]

logger = logging.getLogger("arbiter.replicas")

#: A call to the second level waits this long at most; then the load reads PostgreSQL.
TIMEOUT_S: Final = 0.1
#: An entry with nothing time-bound ahead still expires after this long (bounds Redis memory).
MAX_TTL_MS: Final = 600_000
#: Invalidations kept to send again, at most, before they are collapsed into program drops.
_MAX_UNSENT: Final = 10_000
_PREFIX: Final = struct.Struct("<qq")

# Store the entry only while neither generation moved since the loader read them.
_STORE: Final = """
if (redis.call('GET', KEYS[2]) or '') == ARGV[1] and (redis.call('GET', KEYS[3]) or '') == ARGV[2]
then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  return 1
end
return 0
"""

Drop = tuple[str, str | None]


def _program(program_id: str) -> str:
    return program_id.replace("%", "%25").replace(":", "%3A")


def entry_key(program_id: str, member_id: str) -> str:
    return f"arbiter:member:{_program(program_id)}:{member_id}"


def _member_gen(program_id: str, member_id: str) -> str:
    return f"arbiter:member-gen:{_program(program_id)}:{member_id}"


def _program_gen(program_id: str) -> str:
    return f"arbiter:program-gen:{_program(program_id)}"


class Lookup:
    """What one MGET found: the entry (when valid for `version`) and the generations read."""

    __slots__ = ("body", "member_gen", "program_gen")

    def __init__(self, body: bytes | None, member_gen: bytes, program_gen: bytes) -> None:
        self.body = body
        self.member_gen = member_gen
        self.program_gen = program_gen


class RedisMemberLevel:
    """The second level of one replica (see the module docstring)."""

    def __init__(self, client: Any, *, available: Callable[[], bool]) -> None:
        self._client = client
        self._available = available
        self._store = client.register_script(_STORE)
        # Invalidations of this replica not yet landed in Redis, by (program, member or None).
        self._pending: dict[Drop, int] = {}
        self._unsent: dict[Drop, int] = {}
        #: Test hook: awaited by a load between its PostgreSQL read and its store.
        self.before_store: Callable[[], Awaitable[None]] | None = None
        self.hits = 0
        self.stored = 0
        self.refused = 0

    # -- invalidation (sent by the bus's publisher) ----------------------------------------------

    def dropped(self, program_id: str, member_id: str | None) -> None:
        if len(self._unsent) >= _MAX_UNSENT:
            # Redis unreachable for long: one drop of each program instead (a superset).
            unsent, self._unsent = self._unsent, {}
            self.sent(unsent)
            for program in {program for program, _ in unsent}:
                self.dropped(program, None)
        key = (program_id, member_id)
        self._pending[key] = self._pending.get(key, 0) + 1
        self._unsent[key] = self._unsent.get(key, 0) + 1

    def settled(self) -> bool:
        """Every invalidation of this replica has reached Redis."""
        return not self._pending

    def waiting(self) -> bool:
        return bool(self._unsent)

    def take(self) -> dict[Drop, int]:
        taken, self._unsent = self._unsent, {}
        return taken

    def add_commands(self, pipe: Any, drops: dict[Drop, int]) -> None:
        for program_id, member_id in drops:
            if member_id is None:
                pipe.incr(_program_gen(program_id))
            else:
                pipe.incr(_member_gen(program_id, member_id))
                pipe.delete(entry_key(program_id, member_id))

    def sent(self, drops: dict[Drop, int]) -> None:
        for key, count in drops.items():
            left = self._pending.get(key, 0) - count
            if left > 0:
                self._pending[key] = left
            else:
                self._pending.pop(key, None)

    def not_sent(self, drops: dict[Drop, int]) -> None:
        for key, count in drops.items():
            self._unsent[key] = self._unsent.get(key, 0) + count

    # -- loads -----------------------------------------------------------------------------------

    def usable(self, program_id: str, member_id: str) -> bool:
        return (
            self._available()
            and (program_id, member_id) not in self._pending
            and (program_id, None) not in self._pending
        )

    async def lookup(self, program_id: str, member_id: str, version: int) -> Lookup | None:
        """The entry and generations, or None when Redis did not answer in time."""
        try:
            body, member_gen, program_gen = await asyncio.wait_for(
                self._client.mget(
                    entry_key(program_id, member_id),
                    _member_gen(program_id, member_id),
                    _program_gen(program_id),
                ),
                TIMEOUT_S,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.debug("member second level: lookup failed: %s", exc)
            return None
        program_gen = program_gen or b""
        if body is not None and len(body) < _PREFIX.size:
            body = None  # not an entry of ours
        if body is not None:
            stamp, read_with = _PREFIX.unpack_from(body)
            current = int(program_gen) if program_gen else 0
            body = body[_PREFIX.size:] if (stamp, read_with) == (current, version) else None
        return Lookup(body, member_gen or b"", program_gen)

    async def store(self, program_id: str, member_id: str, version: int, seen: Lookup,
                    body: bytes, ttl_ms: int) -> None:
        if self.before_store is not None:
            await self.before_store()
        ttl_ms = min(ttl_ms, MAX_TTL_MS)
        if ttl_ms <= 0:
            return
        stamp = int(seen.program_gen) if seen.program_gen else 0
        try:
            done = await asyncio.wait_for(
                self._store(
                    keys=[
                        entry_key(program_id, member_id),
                        _member_gen(program_id, member_id),
                        _program_gen(program_id),
                    ],
                    args=[seen.member_gen, seen.program_gen,
                          _PREFIX.pack(stamp, version) + body, ttl_ms],
                ),
                TIMEOUT_S,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.debug("member second level: store failed: %s", exc)
            return
        if done:
            self.stored += 1
        else:
            self.refused += 1
