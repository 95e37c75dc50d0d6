"""Memory of the member cache (server/state/members.py) at 1,000,000 cached members (not a test).

    python bench/bench_member_cache.py [--members 1000000] [--id-chars 14 | --uuid] [--rss]

Fills one program's LedgerMemberDirectory cache through its own load path, with a stand-in for
the ledger's `member_snapshot` that builds each snapshot's state as the ledger does (a fresh
string per name, as each row decodes: two balances, one tier; every 16th member has a pending
expiry, so a `stale_at`). No PostgreSQL: a million real snapshots would take the machine for
minutes and measure the database, not the cache. Prints the bytes per cached member counted
by tracemalloc (every allocation made while filling that stays: the cache's keys, the LRU's own
nodes, the entries; the caller's id strings are made before and not counted), or with `--rss`
the process's RSS growth instead (no tracemalloc), then the time of a hit (unpack included).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import time
import tracemalloc
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arbiter.server.engine import CodeUsage, MemberState
from arbiter.server.state import LedgerMemberDirectory, ProgramRegistry
from bench.workloads import dense_workload

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _fresh(name: str) -> str:
    # A new string object with the same text, as each decoded row gives.
    return (name + " ")[:-1]


@dataclass
class _Snapshot:
    state: MemberState
    usage: CodeUsage
    stale_at: datetime | None


class _Snapshots:
    """Answers `member_snapshot` as the ledger builds it, without the database."""

    async def member_snapshot(self, program: Any, member_id: str, *, now: datetime) -> _Snapshot:
        n = zlib.crc32(member_id.encode())
        state = MemberState(
            member_id=member_id,
            balances={_fresh("bonus"): 1500 + n % 50_000, _fresh("qual"): n % 7000},
            tiers={_fresh("levels"): _fresh("silver" if n % 3 else "gold")},
            segments=frozenset(),
        )
        stale_at = now + timedelta(days=n % 90) if n % 16 == 0 else None
        return _Snapshot(state, CodeUsage({}, {}), stale_at)


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--id-chars", type=int, default=14, help="length of each member id")
    parser.add_argument("--uuid", action="store_true", help="random version-4 UUIDs as ids")
    parser.add_argument("--rss", action="store_true", help="RSS growth instead of tracemalloc")
    args = parser.parse_args()
    program = dense_workload()[0]
    programs = ProgramRegistry()
    programs.publish(program)
    directory = LedgerMemberDirectory(
        _Snapshots(),  # type: ignore[arg-type]
        programs,
        clock=lambda: NOW,
        max_members=args.members,
    )
    if args.uuid:
        rng = random.Random(7)
        ids = [str(UUID(int=rng.getrandbits(128), version=4)) for _ in range(args.members)]
    else:
        prefix = "m" * max(args.id_chars - 8, 1) + "-"
        ids = [f"{prefix}{i:07d}" for i in range(args.members)]
    gc.collect()
    rss = _rss_bytes()
    if not args.rss:
        tracemalloc.start()
    traced = tracemalloc.get_traced_memory()[0]
    for member_id in ids:
        await directory.get(program.id, member_id)
    traced = tracemalloc.get_traced_memory()[0] - traced
    tracemalloc.stop()
    gc.collect()
    assert directory.cached(program.id) == args.members
    grown = traced if not args.rss else _rss_bytes() - rss
    print(
        f"{args.members} members, ids of {len(ids[0])} chars:"
        f" {grown / args.members:.0f} bytes per cached member"
        f" ({'RSS growth' if args.rss else 'tracemalloc'})"
    )
    started = time.perf_counter()
    rounds = 200_000
    for i in range(rounds):
        await directory.get(program.id, ids[i * 7 % args.members])
    print(f"a hit: {(time.perf_counter() - started) / rounds * 1e6:.2f} us (await included)")


if __name__ == "__main__":
    asyncio.run(main())
