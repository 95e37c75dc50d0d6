"""The Ledger: one asyncpg pool, every operation one PostgreSQL transaction, foreign errors
translated here and nowhere else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias, TypeVar

import asyncpg

from arbiter.server.engine.types import CodeUsage, MemberState
from arbiter.server.ledger import (
    _backtest,
    _jobs,
    _members,
    _orders,
    _outbox,
    _reports,
    _returns,
    _tiers,
)
from arbiter.server.ledger._audit import AuditRecord
from arbiter.server.ledger._book import Book
from arbiter.server.ledger._calendar import require_aware
from arbiter.server.ledger._callback import CallbackFailed
from arbiter.server.ledger._codes import CodeUses, read_code_uses
from arbiter.server.ledger._config import LedgerProgram
from arbiter.server.ledger._manual import post_manual
from arbiter.server.ledger._migrate import apply_migrations
from arbiter.server.ledger._orders import Compute, OrderRequest
from arbiter.server.ledger._types import (
    EnrollManyResult,
    EnrollResult,
    ExpiringLot,
    ExpiryReport,
    MemberBatch,
    MemberInfo,
    MemberSnapshot,
    OrderOutcome,
    OutboxEvent,
    PointsMovement,
    TierChange,
    TierPeriodReport,
    Transaction,
    TransactionPage,
)
from arbiter.server.ledger._unavailable import UNAVAILABLE_ERRORS
from arbiter.server.ledger.errors import InvalidArgument, StorageUnavailable
from arbiter.v1 import program_pb2

__all__ = ["Ledger", "ProgramLike"]

T = TypeVar("T")
ProgramLike: TypeAlias = LedgerProgram | program_pb2.Program

# A transaction that lost a race (deadlock, serialization, a concurrent first insert of the same
# key) is run again from the start, at most this many times.
_ATTEMPTS = 5
_RETRY = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.UniqueViolationError,
)
# PostgreSQL cannot be reached or went away: UNAVAILABLE, and nothing was committed.
_UNAVAILABLE = UNAVAILABLE_ERRORS
_ENROLL_CHUNK = 5_000
# Bulk enrollment writes this many chunks at once (each on its own connection): PostgreSQL's
# work for one chunk is most of the cost, and two backends use two cores.
_ENROLL_IN_FLIGHT = 2
_CLEAR_BATCH = 1_000
_BEGINNING = datetime(1, 1, 2, tzinfo=UTC)
_END = datetime(9999, 12, 30, tzinfo=UTC)
_EXPORT_BATCH = 500
_PROGRAM_CACHE = 16


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release a pooled connection as it is.

    asyncpg's default reset sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET
    ALL` on every release: one more round trip per call (a sixth of a ConfirmOrder's). Nothing
    here leaves session state behind (advisory locks are transaction-scoped; no SET, LISTEN or
    cursor outlives a transaction), and asyncpg still rolls back a transaction left open before
    calling this.
    """


def _check_batch(ids: Sequence[str], times: Sequence[datetime | None], first: int) -> None:
    """Each id of a batch non-empty, at most MAX_ID_CHARS, without U+0000, each time aware;
    an error names `members[<i>]`, `first` the stream index of the batch's first member."""
    if len(ids) != len(times):
        raise ValueError("a batch has one registration time (or None) per member id")
    if ids and (min(map(len, ids)) == 0 or max(map(len, ids)) > _members.MAX_ID_CHARS
                or any("\x00" in member_id for member_id in ids)):
        for offset, member_id in enumerate(ids):
            try:
                _members.validate_id(member_id, "member_id")
                if "\x00" in member_id:
                    raise InvalidArgument.field("member_id", "contains U+0000 (NUL)")
            except InvalidArgument as exc:
                raise InvalidArgument.field(f"members[{first + offset}].member_id",
                                            exc.violations[0].description) from exc
    for at in times:
        if at is not None:
            require_aware(at, "registered_at")  # a naive instant is a caller bug


def _now(now: datetime | None) -> datetime:
    # The only clock of the ledger, at its very edge: every function below takes `now`.
    return require_aware(now if now is not None else datetime.now(UTC))


class Ledger:
    """The points ledger of docs/contract.md over one PostgreSQL database.

    Every method takes the applied program version (an `arbiter.v1.Program` or a `LedgerProgram`
    built once from it) and, where time matters, `now` (default: the clock, for production).
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._programs: dict[int, tuple[program_pb2.Program, LedgerProgram]] = {}

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 1, max_size: int = 10,
                      **pool_options: Any) -> Ledger:
        pool_options.setdefault("reset", _keep_session)
        try:
            pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size,
                                             **pool_options)
        except _UNAVAILABLE as exc:
            raise StorageUnavailable(f"cannot connect to the ledger database: {exc}") from exc
        assert pool is not None
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    # -- plumbing ------------------------------------------------------------------------------

    def program(self, program: ProgramLike) -> LedgerProgram:
        """The ledger's view of an applied version (built once per Program object)."""
        if isinstance(program, LedgerProgram):
            return program
        hit = self._programs.get(id(program))
        if hit is not None and hit[0] is program:
            return hit[1]
        compiled = LedgerProgram.from_proto(program)
        if len(self._programs) >= _PROGRAM_CACHE:
            self._programs.pop(next(iter(self._programs)))
        self._programs[id(program)] = (program, compiled)
        return compiled

    async def _write(self, op: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run `op` in one transaction; again from scratch when it lost a race."""
        for attempt in range(_ATTEMPTS):
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    return await op(conn)
            except CallbackFailed as failed:
                raise failed.error from None
            except _RETRY:
                if attempt == _ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.005 * (attempt + 1))
            except _UNAVAILABLE as exc:
                raise StorageUnavailable(f"the ledger database is unavailable: {exc}") from exc
        raise AssertionError("unreachable")

    async def _read(self, op: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run `op` on one connection in a REPEATABLE READ snapshot (consistent reads)."""
        try:
            async with self._pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read", readonly=True
            ):
                return await op(conn)
        except _UNAVAILABLE as exc:
            raise StorageUnavailable(f"the ledger database is unavailable: {exc}") from exc

    async def _job(self, op: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run a job on one connection; it manages its own short transactions."""
        try:
            async with self._pool.acquire() as conn:
                return await op(conn)
        except CallbackFailed as failed:
            raise failed.error from None
        except _UNAVAILABLE as exc:
            raise StorageUnavailable(f"the ledger database is unavailable: {exc}") from exc

    async def migrate(self) -> list[str]:
        """Apply the schema migrations that are missing; returns their names."""
        return await self._job(apply_migrations)

    # -- members -------------------------------------------------------------------------------

    async def enroll(self, program: ProgramLike, member_id: str, *,
                     registered_at: datetime | None = None, now: datetime | None = None
                     ) -> EnrollResult:
        """Enroll a member (granting initial balances); enrolling again returns the member."""
        cfg, at = self.program(program), _now(now)
        _members.validate_id(member_id, "member_id")
        registered = require_aware(registered_at, "registered_at") if registered_at else at

        async def op(conn: asyncpg.Connection) -> tuple[_members.MemberRow, bool]:
            return await _members.enroll(conn, cfg, member_id, registered, at)

        row, created = await self._write(op)
        info = await self._read(lambda conn: _members.member_infos(conn, cfg, [row], at, 30))
        return EnrollResult(info[0], created)

    async def enroll_many(
        self,
        program: ProgramLike,
        members: Iterable[str | tuple[str, datetime | None]]
        | AsyncIterable[str | tuple[str, datetime | None]],
        *,
        now: datetime | None = None,
        chunk_size: int = _ENROLL_CHUNK,
    ) -> EnrollManyResult:
        """Enroll ids or (id, registered_at) pairs, sync or async, as `enroll_batches` does."""

        def pair(item: str | tuple[str, datetime | None]) -> tuple[list[str],
                                                                  list[datetime | None]]:
            member_id, registered = (item, None) if isinstance(item, str) else item
            return [member_id], [registered]

        async def batches() -> AsyncIterator[MemberBatch]:
            if isinstance(members, AsyncIterable):
                async for item in members:  # a stream is handed over as it comes
                    yield pair(item)
                return
            ids: list[str] = []
            times: list[datetime | None] = []
            for item in members:
                member_id, registered = (item, None) if isinstance(item, str) else item
                ids.append(member_id)
                times.append(registered)
                if len(ids) >= chunk_size:
                    yield ids, times
                    ids, times = [], []
            yield ids, times

        return await self.enroll_batches(program, batches(), now=now, chunk_size=chunk_size)

    async def enroll_batches(
        self,
        program: ProgramLike,
        batches: AsyncIterable[MemberBatch],
        *,
        now: datetime | None = None,
        chunk_size: int = _ENROLL_CHUNK,
        in_flight: int = _ENROLL_IN_FLIGHT,
        written: Callable[[Sequence[str]], None] | None = None,
    ) -> EnrollManyResult:
        """Enroll a stream of batches (member ids and their registration times, None: `now`)
        in chunks of `chunk_size` members, each chunk one transaction. While chunks are written
        (at most `in_flight` at once, on as many connections) the next one is read. A bad id
        (`members[<i>].member_id`, i counting every member of the stream) fails the call: the
        chunks handed over before it commit, nothing of the chunk it is in does. `written`
        gets each chunk's ids once its write ended (committed or not)."""
        cfg, at = self.program(program), _now(now)
        enrolled = already = 0
        ids: list[str] = []
        registered: list[datetime | None] = []
        writing: list[asyncio.Task[None]] = []
        index = 0  # members of the stream before the current chunk

        async def write(chunk: list[str], times: list[datetime | None]) -> None:
            nonlocal enrolled, already

            async def op(conn: asyncpg.Connection) -> int:
                return await _members.enroll_bulk(conn, cfg, chunk, times, at)

            try:
                created = await self._write(op)
            finally:
                if written is not None:
                    written(chunk)
            enrolled += created
            already += len(chunk) - created

        async def flush(count: int) -> None:
            nonlocal ids, registered, index
            chunk, times = ids[:count], registered[:count]
            del ids[:count], registered[:count]
            while len(writing) >= in_flight:
                await writing.pop(0)
            writing.append(asyncio.create_task(write(chunk, times)))
            index += count

        try:
            async for batch_ids, batch_times in batches:
                _check_batch(batch_ids, batch_times, index + len(ids))
                ids += batch_ids
                registered += batch_times
                while len(ids) >= chunk_size:
                    await flush(chunk_size)
            if ids:
                await flush(len(ids))
        finally:
            # The chunks handed over commit or fail whatever happened to the stream.
            for task in writing:
                with contextlib.suppress(Exception):
                    await task
        for task in writing:
            task.result()  # a write that failed fails the call
        return EnrollManyResult(enrolled, already)

    async def remove_member(self, program: ProgramLike, member_id: str, *,
                            now: datetime | None = None) -> None:
        cfg, at = self.program(program), _now(now)
        await self._write(lambda conn: _members.remove(conn, cfg, member_id, at))

    async def remove_all_members(self, program: ProgramLike, *, now: datetime | None = None
                                 ) -> int:
        """Clear the program: remove every member, one transaction per member."""
        cfg, at = self.program(program), _now(now)
        removed = 0
        while True:
            ids = await self._read(lambda conn: conn.fetch(
                "SELECT member_id FROM members WHERE program = $1 AND NOT removed"
                " ORDER BY pk LIMIT $2", cfg.id, _EXPORT_BATCH))
            if not ids:
                return removed
            for r in ids:
                member_id: str = r["member_id"]

                async def op(conn: asyncpg.Connection, member_id: str = member_id) -> None:
                    await _members.remove(conn, cfg, member_id, at)

                await self._write(op)
                removed += 1

    async def clear_members(self, program: ProgramLike, *, now: datetime | None = None,
                            batch_size: int = _CLEAR_BATCH) -> AsyncIterator[tuple[int, int]]:
        """Remove every member of the program, `batch_size` per transaction; yields (removed so
        far, members when it started) after each batch. Their history stays (docs/reports.md)."""
        cfg, at = self.program(program), _now(now)
        total = int(await self._read(lambda conn: conn.fetchval(
            "SELECT count(*) FROM members WHERE program = $1 AND NOT removed", cfg.id)))
        removed = 0
        yield removed, total
        while True:
            done = await self._write(
                lambda conn: _members.remove_batch(conn, cfg, batch_size, at))
            if not done:
                return
            removed += done
            yield removed, max(total, removed)

    async def export_members(self, program: ProgramLike, *, now: datetime | None = None,
                             expiring_within_days: int = 0, batch_size: int = _EXPORT_BATCH
                             ) -> AsyncIterator[MemberInfo]:
        """Every member with balances and tiers, in enrollment order, batch by batch."""
        cfg, at = self.program(program), _now(now)
        days = _members.within_days_or_default(expiring_within_days, "expiring_within_days")
        after = 0
        while True:
            async def op(conn: asyncpg.Connection, after: int = after
                         ) -> tuple[int, list[MemberInfo]]:
                rows = await conn.fetch(
                    "SELECT pk, member_id, registered_at FROM members"
                    " WHERE program = $1 AND NOT removed AND pk > $2 ORDER BY pk LIMIT $3",
                    cfg.id, after, batch_size,
                )
                infos = await _members.member_infos(
                    conn, cfg, [(r["pk"], r["member_id"], r["registered_at"]) for r in rows],
                    at, days,
                )
                return (rows[-1]["pk"] if rows else after), infos

            after, infos = await self._read(op)
            if not infos:
                return
            for info in infos:
                yield info

    async def get_member(self, program: ProgramLike, member_id: str, *,
                         expiring_within_days: int = 0, now: datetime | None = None
                         ) -> MemberInfo:
        """Balances (available, held, pending, expiring soon) and tiers at `now`."""
        cfg, at = self.program(program), _now(now)
        days = _members.within_days_or_default(expiring_within_days, "expiring_within_days")

        async def read(conn: asyncpg.Connection, check_due: bool = True) -> MemberInfo | None:
            row = await _members.find_member(conn, cfg, member_id)
            if check_due:
                states = await _tiers.load_states(conn, row[0])
                if any(s.due(at) for s in states.values()):
                    return None
            return (await _members.member_infos(conn, cfg, [row], at, days))[0]

        info = await self._read(read)
        if info is None:
            # A CYCLIC period ended and no job has closed it yet: close it now, then read.
            async def catch_up(conn: asyncpg.Connection) -> None:
                await _tiers.catch_up(await Book.open(conn, cfg, member_id, at))

            await self._write(catch_up)
            info = await self._read(lambda conn: read(conn, check_due=False))
            assert info is not None
        return info

    async def member_state(self, program: ProgramLike, member_id: str, *,
                           segments: frozenset[str] = frozenset(), now: datetime | None = None
                           ) -> MemberState:
        """The member as a quote (CalculateOrder) sees it: available balances and tiers."""
        info = await self.get_member(program, member_id, now=now)
        return MemberState(
            member_id=member_id,
            balances={b.point_type: max(0, b.available) for b in info.balances},
            tiers={t.tier_group: t.tier for t in info.tiers if t.tier},
            segments=segments,
        )

    async def member_snapshot(self, program: ProgramLike, member_id: str, *,
                              segments: frozenset[str] = frozenset(),
                              now: datetime | None = None) -> MemberSnapshot:
        """The member for a quote, its pool uses, and the instant this stops being true."""
        cfg, at = self.program(program), _now(now)
        info = await self.get_member(cfg, member_id, now=at)

        async def op(conn: asyncpg.Connection) -> tuple[dict[str, int], datetime | None]:
            pk, _, _ = await _members.find_member(conn, cfg, member_id)
            rows = await conn.fetch(
                """
                SELECT pool, count(*) AS uses FROM promo_code_uses
                WHERE member_pk = $1
                  AND (state = 'CONFIRMED' OR (state = 'HELD' AND hold_until > $2))
                GROUP BY pool
                """, pk, at)
            stale_at: datetime | None = await conn.fetchval(
                """
                SELECT LEAST(
                    (SELECT min(hold_until) FROM holds
                      WHERE member_pk = $1 AND state = 'HELD' AND hold_until > $2),
                    (SELECT min(hold_until) FROM promo_code_uses
                      WHERE member_pk = $1 AND state = 'HELD' AND hold_until > $2),
                    (SELECT min(expires_at) FROM lots
                      WHERE member_pk = $1 AND state = 'ACTIVE' AND remaining > 0
                        AND expires_at > $2),
                    (SELECT min(LEAST(period_end, pending_at)) FROM tier_states
                      WHERE member_pk = $1 AND LEAST(period_end, pending_at) > $2)
                )
                """, pk, at)
            return {r["pool"]: r["uses"] for r in rows}, stale_at

        pools, stale_at = await self._read(op)
        state = MemberState(
            member_id=member_id,
            balances={b.point_type: max(0, b.available) for b in info.balances},
            tiers={t.tier_group: t.tier for t in info.tiers if t.tier},
            segments=segments,
        )
        return MemberSnapshot(info, state, CodeUsage({}, pools), stale_at)

    async def code_usage(self, program: ProgramLike, member_id: str | None,
                         codes: Sequence[str], *, now: datetime | None = None) -> CodeUsage:
        """Uses of the given codes by everyone and of each pool by the member (quotes)."""
        cfg, at = self.program(program), _now(now)
        upper = sorted({c.upper() for c in codes})

        async def op(conn: asyncpg.Connection) -> CodeUsage:
            rows = await conn.fetch(
                """
                SELECT code, count(*) AS uses FROM promo_code_uses
                WHERE program = $1 AND code = ANY($2::text[])
                  AND (state = 'CONFIRMED' OR (state = 'HELD' AND hold_until > $3))
                GROUP BY code
                """, cfg.id, upper, at)
            pools: dict[str, int] = {}
            if member_id:
                pool_rows = await conn.fetch(
                    """
                    SELECT u.pool, count(*) AS uses FROM promo_code_uses u
                    JOIN members m ON m.pk = u.member_pk
                    WHERE m.program = $1 AND m.member_id = $2 AND NOT m.removed
                      AND (u.state = 'CONFIRMED' OR (u.state = 'HELD' AND u.hold_until > $3))
                    GROUP BY u.pool
                    """, cfg.id, member_id, at)
                pools = {r["pool"]: r["uses"] for r in pool_rows}
            return CodeUsage({r["code"]: r["uses"] for r in rows}, pools)

        return await self._read(op)

    async def code_uses(self, program: ProgramLike, codes: Sequence[str], *,
                        now: datetime | None = None) -> dict[str, CodeUses]:
        """Each code's uses by everyone (upper-case code -> CodeUses), with the instant the count
        drops by time alone (a held use lapsing), so that a quote's cache can keep it until
        then or until a write of the code."""
        cfg, at = self.program(program), _now(now)
        return await self._read(lambda conn: read_code_uses(conn, cfg.id, codes, at))

    async def program_report(self, program: ProgramLike, start: datetime | None,
                             end: datetime | None, *, now: datetime | None = None
                             ) -> _reports.ProgramReport:
        """The report of [start, end): `start` None is the beginning, `end` None is just after
        `now` (what happened at `now` counts)."""
        cfg, at = self.program(program), _now(now)
        low = require_aware(start, "from") if start is not None else _BEGINNING
        high = require_aware(end, "to") if end is not None else at + timedelta(microseconds=1)
        if high <= low:
            raise InvalidArgument.field("to", "must be after `from`")
        await self._write(lambda conn: _reports.roll_up(conn, cfg, at))

        async def read(conn: asyncpg.Connection) -> _reports.ProgramReport:
            rolled = await _reports.rolled_to(conn, cfg.id)
            return await _reports.program_report(conn, cfg, low, high, rolled)

        return await self._read(read)

    async def backtest_orders(self, program_id: str, start: datetime | None,
                              end: datetime | None, limit: int, *, batch_size: int = 500
                              ) -> AsyncIterator[_backtest.StoredOrders]:
        """The orders confirmed in [start, end), oldest first, at most `limit`, with what
        each was calculated from: first their count (an empty batch with `total`), then
        batches read through a server-side cursor of one read-only snapshot."""
        low = require_aware(start, "from") if start is not None else _BEGINNING
        high = require_aware(end, "to") if end is not None else _END
        if high <= low:
            raise InvalidArgument.field("to", "must be after `from`")
        try:
            async with self._pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read", readonly=True
            ):
                async for batch in _backtest.stored_orders(conn, program_id, low, high, limit,
                                                           batch_size):
                    yield batch
        except _UNAVAILABLE as exc:
            raise StorageUnavailable(f"the ledger database is unavailable: {exc}") from exc

    async def list_transactions(self, program: ProgramLike, member_id: str, *,
                                point_type: str = "", page_size: int = 0, page_token: str = "",
                                filters: _members.TransactionFilter | None = None
                                ) -> TransactionPage:
        """A member's transactions (`member_id` empty: the whole program's), oldest first, a
        page at a time; `filters` (type, source, window) replaces `point_type` when given."""
        cfg = self.program(program)
        return await self._read(lambda conn: _members.list_transactions(
            conn, cfg, member_id, point_type, page_size, page_token, filters))

    async def expiring_points(self, program: ProgramLike, member_id: str, *,
                              point_type: str = "", within_days: int = 0, limit: int = 0,
                              descending: bool = False, now: datetime | None = None
                              ) -> list[ExpiringLot]:
        """Lots expiring within `within_days` (0 = 30), by expiry, at most `limit` (0 = 100)."""
        cfg, at = self.program(program), _now(now)
        return await self._read(lambda conn: _members.expiring_lots(
            conn, cfg, member_id, point_type, within_days, limit, descending, at))

    async def tier_history(self, program: ProgramLike, member_id: str) -> list[TierChange]:
        cfg = self.program(program)
        return await self._read(lambda conn: _members.tier_history(conn, cfg, member_id))

    # -- manual transactions and trigger promotions ---------------------------------------------

    async def create_transaction(self, program: ProgramLike, *, member_id: str, point_type: str,
                                 operation: str, points: int, external_id: str,
                                 comment: str = "", extra: str = "",
                                 now: datetime | None = None,
                                 audit: AuditRecord | None = None) -> Transaction:
        """ACCRUAL -> an ACCRUAL transaction, DEDUCTION -> a REDEMPTION; source MANUAL.

        `audit`: the journal entry to record in the posting's own transaction (none on a
        replay)."""
        cfg, at = self.program(program), _now(now)
        return await self._write(lambda conn: post_manual(
            conn, cfg, member_id=member_id, point_type=point_type, operation=operation,
            points=points, external_id=external_id, comment=comment, extra=extra, trigger=None,
            now=at, audit=audit))

    async def apply_trigger(self, program: ProgramLike, *, member_id: str,
                            trigger_promotion: str, point_type: str, operation: str, points: int,
                            external_id: str, comment: str = "", now: datetime | None = None
                            ) -> Transaction:
        """Like create_transaction, validated against the trigger's rule; source
        TRIGGER_PROMOTION."""
        cfg, at = self.program(program), _now(now)
        return await self._write(lambda conn: post_manual(
            conn, cfg, member_id=member_id, point_type=point_type, operation=operation,
            points=points, external_id=external_id, comment=comment, extra="",
            trigger=trigger_promotion, now=at))

    # -- orders --------------------------------------------------------------------------------

    async def confirm_order(self, program: ProgramLike, order: OrderRequest, compute: Compute,
                            *, now: datetime | None = None) -> OrderOutcome:
        """Calculate (via `compute`, under the member's lock) and commit an order; or post the
        hold of a reserved one; or return the stored result of a confirmed one. An order without
        `member_id` is a guest's: `compute` gets None and only promo code uses are committed."""
        cfg, at = self.program(program), _now(now)
        return await self._write(lambda conn: _orders.confirm_order(conn, cfg, order, compute,
                                                                     at))

    async def reserve_order(self, program: ProgramLike, order: OrderRequest, compute: Compute,
                            *, hold_seconds: int = 0, now: datetime | None = None
                            ) -> OrderOutcome:
        """Calculate and hold the order's redemptions and codes until `hold_until`."""
        cfg, at = self.program(program), _now(now)
        return await self._write(lambda conn: _orders.reserve_order(
            conn, cfg, order, compute, hold_seconds, at))

    async def order_member(self, program_id: str, order_id: str) -> str | None:
        """The id of the member an order belongs to; "" for a guest order; None when there is
        no such order."""
        try:
            member_id: str | None = await self._pool.fetchval(
                "SELECT COALESCE(m.member_id, '') FROM orders o"
                " LEFT JOIN members m ON m.pk = o.member_pk"
                " WHERE o.program = $1 AND o.order_id = $2",
                program_id, order_id,
            )
        except _UNAVAILABLE as exc:
            raise StorageUnavailable(f"the ledger database is unavailable: {exc}") from exc
        return member_id

    async def cancel_order(self, program: ProgramLike, order_id: str, *,
                           now: datetime | None = None) -> list[PointsMovement]:
        cfg, at = self.program(program), _now(now)
        return await self._write(lambda conn: _orders.cancel_order(conn, cfg, order_id, at))

    async def deliver_order(self, program: ProgramLike, order_id: str, *,
                            now: datetime | None = None) -> list[PointsMovement]:
        cfg, at = self.program(program), _now(now)
        return await self._write(lambda conn: _orders.deliver_order(conn, cfg, order_id, at))

    async def return_order(self, program: ProgramLike, order_id: str, return_id: str,
                           lines: Sequence[tuple[str, int]], *, now: datetime | None = None
                           ) -> list[PointsMovement]:
        """Return units of lines (line id, quantity); idempotent by `return_id`."""
        cfg, at = self.program(program), _now(now)
        return await self._write(lambda conn: _returns.return_order(
            conn, cfg, order_id, return_id, list(lines), at))

    # -- jobs ----------------------------------------------------------------------------------

    async def expire_lots(self, program: ProgramLike, *, now: datetime | None = None,
                          batch_size: int = 500, max_batches: int = 100) -> ExpiryReport:
        """Write EXPIRATION transactions for lots expired at `now` (idempotent, replica-safe)."""
        cfg, at = self.program(program), _now(now)
        return await self._job(lambda conn: _jobs.expire_lots(conn, cfg, at, batch_size,
                                                              max_batches))

    async def run_tier_periods(self, program: ProgramLike, *, now: datetime | None = None,
                               batch_size: int = 200, max_batches: int = 100
                               ) -> TierPeriodReport:
        """Close CYCLIC periods and extended tiers ended at `now`."""
        cfg, at = self.program(program), _now(now)
        return await self._job(lambda conn: _jobs.run_tier_periods(conn, cfg, at, batch_size,
                                                                   max_batches))

    async def relay_outbox(self, send: _outbox.Send, *, limit: int = 100,
                           now: datetime | None = None) -> int:
        """Hand unpublished events to `send` (e.g. XADD to Redis), then mark them published."""
        at = _now(now)
        return await self._job(lambda conn: _outbox.relay(conn, send, limit, at))

    async def outbox_events(self, *, program: str | None = None, after: int = 0,
                            limit: int = 100) -> list[OutboxEvent]:
        """Events in id order (published or not), for inspection and tests."""
        return await self._read(lambda conn: _outbox.list_events(conn, program, after, limit))
