"""The order lifecycle (docs/contract.md): confirm, reserve, confirm a reservation, cancel, deliver.

Confirm and reserve run the calculation *inside* the transaction, under the member's lock: the
member state the engine sees is exactly the one the postings are checked against, so two orders
can never spend the same points. Returns live in `_returns`.

A guest order (an anonymous buyer: `member_id` empty) has no member to lock: it locks its order
row and its promo codes, calculates for no member, and holds, commits and releases only its code
uses (docs/ledger.md, "Guest orders").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from arbiter.server.engine.types import CalculationResult, CodeUsage, MemberState
from arbiter.server.ledger import _outbox, _tiers
from arbiter.server.ledger._batch import OrderBatch
from arbiter.server.ledger._book import Book, choose_lots
from arbiter.server.ledger._callback import CallbackFailed
from arbiter.server.ledger._codec import result_from_obj, result_to_json
from arbiter.server.ledger._config import LedgerProgram
from arbiter.server.ledger._members import validate_id
from arbiter.server.ledger._prefetch import OrderPrefetch, lock_and_prefetch
from arbiter.server.ledger._types import OrderOutcome, PointsMovement
from arbiter.server.ledger.errors import (
    Conflict,
    FailedPrecondition,
    HoldNotActive,
    InsufficientPoints,
    InvalidArgument,
    NotFound,
    OrderStateError,
    TotalMismatch,
)

__all__ = [
    "DEFAULT_HOLD_SECONDS",
    "MAX_HOLD_SECONDS",
    "Compute",
    "OrderRequest",
    "OrderRow",
    "cancel_order",
    "confirm_order",
    "deliver_order",
    "emit_order_event",
    "lock_order",
    "movements_from_json",
    "movements_to_json",
    "reserve_order",
]

# The calculation of a new order: the member as it stands under its lock (None: a guest) and the
# usage of the order's codes.
Compute = Callable[[MemberState | None, CodeUsage], CalculationResult]

DEFAULT_HOLD_SECONDS = 900
MAX_HOLD_SECONDS = 86_400
MAX_PROMO_CODES = 100

_ORDER_COLUMNS = (
    "pk, order_id, member_pk, state, payload_hash, result::text AS result, total, hold_until,"
    " delivered_at, delivery::text AS delivery, cancellation::text AS cancellation,"
    " program_version"
)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What the ledger needs of a ConfirmOrder / ReserveOrder request besides the calculation.

    `payload_hash` is the caller's hash of every request field but `expected_total` and
    `hold_seconds`: the same order id with another hash is a Conflict. `promo_codes` are the
    order's codes as written (their usage is read, and locked, before the calculation);
    `segments` the member's segments, passed through to the calculation.

    `program_version` is the applied version the calculation runs on, stored in the order's row
    in the same transaction (None: the caller does not number versions). `redeem` is what the
    order asks to redeem per point type: the ledger reads the lots that could pay for that much
    together with the member, before the calculation (a result redeeming more reads the rest).

    `member_id` empty: a guest order (an anonymous buyer), which commits or holds only its promo
    code uses; `segments` and `redeem` mean nothing for it.
    """

    order_id: str
    member_id: str
    payload_hash: str
    promo_codes: tuple[str, ...] = ()
    segments: frozenset[str] = frozenset()
    expected_total: int | None = None
    program_version: int | None = None
    redeem: tuple[tuple[str, int], ...] = ()
    # The CalculateOrderRequest the order is calculated from (protobuf bytes), stored with the
    # member state and code usage the calculation saw so that a backtest can calculate it again
    # (docs/reports.md); empty: nothing is stored.
    request_bytes: bytes = b""


@dataclass(frozen=True, slots=True)
class OrderInputs:
    """The member state and code usage a new order's calculation saw, as stored JSON
    (`member_json` None: a guest order). The order's own segments are the member's; the
    version's static segments are added by the calculation, so they are not stored."""

    member_json: str | None
    usage_json: str

    @classmethod
    def of(cls, member: MemberState | None, usage: CodeUsage) -> OrderInputs:
        return cls(
            None if member is None else json.dumps(member_state_to_obj(member),
                                                   separators=(",", ":")),
            json.dumps({"code_uses": dict(usage.code_uses),
                        "member_pool_uses": dict(usage.member_pool_uses)},
                       separators=(",", ":")),
        )


def member_state_to_obj(member: MemberState) -> dict[str, Any]:
    return {"member_id": member.member_id, "balances": dict(member.balances),
            "tiers": dict(member.tiers), "segments": sorted(member.segments)}


def member_state_from_obj(obj: dict[str, Any]) -> MemberState:
    return MemberState(
        member_id=str(obj["member_id"]),
        balances={str(k): int(v) for k, v in obj["balances"].items()},
        tiers={str(k): str(v) for k, v in obj["tiers"].items()},
        segments=frozenset(str(x) for x in obj["segments"]),
    )


def code_usage_from_obj(obj: dict[str, Any]) -> CodeUsage:
    return CodeUsage({str(k): int(v) for k, v in obj["code_uses"].items()},
                     {str(k): int(v) for k, v in obj["member_pool_uses"].items()})


@dataclass(slots=True)
class OrderRow:
    pk: int
    order_id: str
    member_pk: int | None  # None: a guest order
    state: str
    payload_hash: str
    result_obj: dict[str, Any]
    total: int
    hold_until: datetime | None
    delivered_at: datetime | None
    delivery: list[Any] | None
    cancellation: list[Any] | None
    program_version: int | None
    _result: CalculationResult | None = field(default=None, repr=False)

    @classmethod
    def from_record(cls, r: Any) -> OrderRow:
        return cls(
            pk=r["pk"], order_id=r["order_id"], member_pk=r["member_pk"], state=r["state"],
            payload_hash=r["payload_hash"], result_obj=json.loads(r["result"]), total=r["total"],
            hold_until=r["hold_until"], delivered_at=r["delivered_at"],
            delivery=json.loads(r["delivery"]) if r["delivery"] else None,
            cancellation=json.loads(r["cancellation"]) if r["cancellation"] else None,
            program_version=r["program_version"],
        )

    @property
    def result(self) -> CalculationResult:
        if self._result is None:
            self._result = result_from_obj(self.result_obj)
        return self._result


def movements_to_json(movements: list[PointsMovement]) -> str:
    return json.dumps([[m.point_type, m.accrual_reversed, m.redemption_refunded, m.activated,
                        m.shortfall] for m in movements])


def movements_from_json(obj: list[Any]) -> list[PointsMovement]:
    return [PointsMovement(str(m[0]), int(m[1]), int(m[2]), int(m[3]), int(m[4])) for m in obj]


async def _fetch_order(conn: asyncpg.Connection, program: LedgerProgram, order_id: str,
                       *, lock: bool) -> OrderRow | None:
    row = await conn.fetchrow(
        f"SELECT {_ORDER_COLUMNS} FROM orders WHERE program = $1 AND order_id = $2"
        + (" FOR UPDATE" if lock else ""),
        program.id,
        order_id,
    )
    return None if row is None else OrderRow.from_record(row)


async def lock_order(conn: asyncpg.Connection, program: LedgerProgram, order_id: str,
                     now: datetime) -> tuple[Book | None, OrderRow]:
    """Lock an existing order's member, then the order (the fixed lock order: member first).

    A guest order has no member: its row alone is locked, and the Book is None."""
    validate_id(order_id, "order_id")
    found = await _fetch_order(conn, program, order_id, lock=False)
    if found is None:
        raise NotFound("order", order_id)
    if found.member_pk is None:
        # An order's member never changes: read again, locked, for the state as it is now.
        guest = await _fetch_order(conn, program, order_id, lock=True)
        assert guest is not None and guest.member_pk is None
        return None, guest
    book = await Book.open_pk(conn, program, found.member_pk, now)
    if book is None:
        raise NotFound("member of order", order_id)
    order = await _fetch_order(conn, program, order_id, lock=True)
    assert order is not None and order.member_pk == found.member_pk
    return book, order


def _validate_request(req: OrderRequest) -> None:
    validate_id(req.order_id, "order.id")
    if req.member_id:  # empty: a guest
        validate_id(req.member_id, "member_id")
    if not req.payload_hash:
        raise ValueError("payload_hash must be computed by the caller")
    if len(req.promo_codes) > MAX_PROMO_CODES:
        raise InvalidArgument.field("order.promo_codes", f"at most {MAX_PROMO_CODES} codes")


async def _existing(conn: asyncpg.Connection, program: LedgerProgram, req: OrderRequest,
                    member_pk: int | None) -> OrderRow | None:
    """The order `req` names, locked, when it exists: it must be the same order of the same
    member (`member_pk`; None: a guest), and match `expected_total`."""
    order = await _fetch_order(conn, program, req.order_id, lock=True)
    if order is None:
        return None
    if order.payload_hash != req.payload_hash or order.member_pk != member_pk:
        raise Conflict("order", req.order_id)
    if req.expected_total is not None and req.expected_total != order.total:
        raise TotalMismatch(req.order_id, req.expected_total, order.total)
    return order


# Insert the codes' rows that are missing (first, so every writer takes its locks in the same
# order), then lock them in code order. `filled` is read first so that it runs before `locked`.
_LOCK_CODES_SQL = """
WITH filled AS (
    INSERT INTO promo_codes (program, code)
    SELECT $1, c FROM unnest($2::text[]) AS c ORDER BY c
    ON CONFLICT DO NOTHING
    RETURNING code
), locked AS (
    SELECT code FROM promo_codes WHERE program = $1 AND code = ANY($2::text[])
    ORDER BY code FOR UPDATE
)
SELECT ARRAY(SELECT code FROM filled) AS filled, ARRAY(SELECT code FROM locked) AS locked
"""


async def _lock_code_uses(conn: asyncpg.Connection, program: LedgerProgram,
                          promo_codes: Sequence[str], now: datetime) -> dict[str, int]:
    """Lock the order's known codes (in code order, after the member and the order) so that two
    orders, of members or guests, cannot both take the last use of one code; then count their
    uses by everyone at `now`."""
    codes = sorted({c.upper() for c in promo_codes if c.upper() in program.code_pools})
    if not codes:
        return {}
    row = await conn.fetchrow(_LOCK_CODES_SQL, program.id, codes)
    assert row is not None
    missing = set(codes).difference(row["filled"], row["locked"])
    if missing:
        # Rows another transaction created after this statement's snapshot (ON CONFLICT waited
        # for it and then did nothing): invisible to `locked`, so lock them now.
        await conn.execute(
            "SELECT 1 FROM promo_codes WHERE program = $1 AND code = ANY($2::text[])"
            " ORDER BY code FOR UPDATE",
            program.id, sorted(missing),
        )
    # A statement of its own: its snapshot is taken once the locks are held.
    rows = await conn.fetch(
        """
        SELECT code, count(*) AS uses FROM promo_code_uses
        WHERE program = $1 AND code = ANY($2::text[])
          AND (state = 'CONFIRMED' OR (state = 'HELD' AND hold_until > $3))
        GROUP BY code
        """,
        program.id, codes, now,
    )
    return {r["code"]: r["uses"] for r in rows}


def _wanted(req: OrderRequest) -> dict[str, int]:
    wanted: dict[str, int] = {}
    for point_type, points in req.redeem:
        wanted[point_type] = wanted.get(point_type, 0) + max(0, points)
    return wanted


def _tiers_due(program: LedgerProgram, pre: OrderPrefetch, now: datetime) -> bool:
    """A group without its row yet, or a period or extended tier that has ended."""
    for group in program.tier_groups:
        row = pre.tiers.get(group.id)
        if (row is None and group.tiers) or (row is not None and row.due(now)):
            return True
    return False


@dataclass(slots=True)
class _Opened:
    """A ConfirmOrder / ReserveOrder after its reads: the locked member, what was read of it
    under the lock, and the order when it exists already (locked, checked against the request).
    """

    book: Book
    pre: OrderPrefetch
    order: OrderRow | None


async def _open(conn: asyncpg.Connection, program: LedgerProgram, req: OrderRequest,
                now: datetime) -> _Opened:
    """Lock the member, read it (and lock the order) in one round trip; CYCLIC periods and
    extended tiers that ended are closed first, so the calculation sees the tiers of `now`."""
    wanted = _wanted(req)
    touched: set[str] = set()
    for attempt in range(2):
        opened = await lock_and_prefetch(conn, program, req.member_id, req.order_id, wanted, now)
        if opened is None:
            raise NotFound("member", req.member_id)
        member_pk, pre = opened
        if pre.removed:  # removed while we waited for its lock
            raise NotFound("member", req.member_id)
        book = Book.from_locked(conn, program, member_pk, pre.member_id, pre.registered_at, now,
                                pre.balances)
        # What a catch-up posted (a RESET) still moves the tiers of its type afterwards.
        book.touched |= touched
        if pre.order_pk is not None:
            return _Opened(book, pre, await _existing(conn, program, req, member_pk))
        if attempt == 0 and _tiers_due(program, pre, now):
            # Rare: it may post (a RESET) and write tier rows, so read the member again after.
            await _tiers.catch_up(book)
            touched = book.touched
            continue
        return _Opened(book, pre, None)
    raise AssertionError("a catch-up leaves no tier due at the same instant")


async def _snapshot(opened: _Opened, req: OrderRequest
                    ) -> tuple[MemberState, CodeUsage, dict[str, int]]:
    """The member as the calculation sees it, the usage of the order's codes (locked), and the
    available points per type."""
    book, pre = opened.book, opened.pre
    program = book.program
    available = pre.available()
    live = pre.live()
    tiers = {
        g.id: g.tiers[_tiers.effective_tier(g, pre.tiers.get(g.id), live.get(g.point_type, 0))].id
        for g in program.tier_groups if g.tiers
    }
    code_uses = await _lock_code_uses(book.conn, program, req.promo_codes, book.now)
    state = MemberState(
        member_id=book.member_id,
        balances={t: max(0, available.get(t, 0)) for t in program.point_types},
        tiers=tiers,
        segments=req.segments,
    )
    return state, CodeUsage(code_uses, dict(pre.pool_uses)), available


def _calculate(compute: Compute, member: MemberState | None, usage: CodeUsage
               ) -> CalculationResult:
    try:
        return compute(member, usage)
    except Exception as exc:
        raise CallbackFailed(exc) from exc


def _check_result(program: LedgerProgram, result: CalculationResult, available: dict[str, int],
                  usage: CodeUsage) -> None:
    """Refuse a result that the ledger cannot post as it stands (defence against a stale or
    wrong calculation: the engine caps redemptions and reports exhausted codes itself)."""
    seen: set[str] = set()
    for p in result.points:
        if program.point_type(p.point_type) is None:
            raise FailedPrecondition(f"the calculation names unknown point type {p.point_type!r}")
        if p.point_type in seen:
            raise FailedPrecondition(f"the calculation lists point type {p.point_type!r} twice")
        seen.add(p.point_type)
        if min(p.redeemed, p.accrued, p.accrued_pending) < 0:
            raise FailedPrecondition(f"the calculation has negative points of {p.point_type!r}")
        if p.redeemed > available.get(p.point_type, 0):
            raise InsufficientPoints(p.point_type, p.redeemed,
                                     max(0, available.get(p.point_type, 0)))
    pool_counts: dict[str, int] = {}
    for c in result.promo_codes:
        if c.status != "APPLIED":
            continue
        code = c.code.upper()
        pool_id = c.pool or program.code_pools.get(code, "")
        pool = program.pools.get(pool_id)
        if pool is None:
            raise FailedPrecondition(f"promo code {c.code!r} belongs to no known pool")
        max_uses = pool.codes.get(code, 0)
        if max_uses and usage.code_uses.get(code, 0) + 1 > max_uses:
            raise FailedPrecondition(f"promo code {c.code!r} is used up")
        pool_counts[pool_id] = pool_counts.get(pool_id, 0) + 1
        limit = pool.max_uses_per_member
        if limit and usage.member_pool_uses.get(pool_id, 0) + pool_counts[pool_id] > limit:
            raise FailedPrecondition(f"promo code {c.code!r}: the member used pool {pool_id!r}"
                                     f" {limit} times already")


async def _insert_order(conn: asyncpg.Connection, program: LedgerProgram, member_pk: int | None,
                        req: OrderRequest, result: CalculationResult, state: str,
                        hold_until: datetime | None, now: datetime, inputs: OrderInputs) -> int:
    pk: int = await conn.fetchval(
        """
        WITH o AS (
            INSERT INTO orders (program, order_id, member_pk, state, payload_hash, result, total,
                hold_until, created_at, confirmed_at, program_version)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11)
            RETURNING pk
        ), i AS (
            INSERT INTO order_inputs (order_pk, request, member, code_usage, calculated_at)
            SELECT o.pk, $12::bytea, $13::jsonb, $14::jsonb, $9 FROM o WHERE $12::bytea <> ''
        )
        SELECT pk FROM o
        """,
        program.id, req.order_id, member_pk, state, req.payload_hash,
        result_to_json(result), result.totals.total, hold_until, now,
        now if state == "CONFIRMED" else None, req.program_version,
        req.request_bytes, inputs.member_json, inputs.usage_json,
    )
    return pk


def _applied_codes(program: LedgerProgram, result: CalculationResult) -> list[tuple[str, str]]:
    """(code upper-case, pool) of each code the result applied: the order's uses."""
    out = []
    for c in result.promo_codes:
        if c.status == "APPLIED":
            code = c.code.upper()
            out.append((code, c.pool or program.code_pools.get(code, "")))
    return out


async def _use_codes(conn: asyncpg.Connection, program: LedgerProgram, member_pk: int | None,
                     order_pk: int, result: CalculationResult, state: str,
                     hold_until: datetime | None, now: datetime) -> None:
    for code, pool in _applied_codes(program, result):
        await conn.execute(
            "INSERT INTO promo_codes (program, code) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            program.id, code,
        )
        await conn.execute(
            """
            INSERT INTO promo_code_uses (program, code, pool, member_pk, order_pk, state,
                hold_until, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """,
            program.id, code, pool, member_pk, order_pk, state, hold_until, now,
        )


async def _post_accruals(book: Book, order_pk: int, order_id: str,
                         result: CalculationResult) -> None:
    for p in result.points:
        if p.accrued > 0:
            txn = await book.credit(
                p.point_type, p.accrued, type="ACCRUAL", source_type="ORDER", source_id=order_id,
                external_id=order_id, order_pk=order_pk, timing="ON_CREATE",
            )
            await book.emit("points.accrued", {"point_type": p.point_type, "points": p.accrued,
                                               "order_id": order_id, "transaction_id": txn.id})
        if p.accrued_pending > 0:
            # Not in any balance until delivery, so no transaction yet (docs/contract.md, Balances).
            await book.add_lot(p.point_type, p.accrued_pending, pending=True, order_pk=order_pk,
                               timing="ON_DELIVERY")


def _points_summary(result: CalculationResult) -> list[dict[str, Any]]:
    return [{"point_type": p.point_type, "redeemed": p.redeemed, "accrued": p.accrued,
             "accrued_pending": p.accrued_pending} for p in result.points]


def _confirmed_event(program: LedgerProgram, order_id: str, result: CalculationResult
                     ) -> dict[str, Any]:
    """order.confirmed's payload: the total, the points moved, the codes used (upper-case)."""
    return {"order_id": order_id, "total": result.totals.total,
            "points": _points_summary(result),
            "promo_codes": [code for code, _pool in _applied_codes(program, result)]}


async def _redeemable_lots(book: Book, pre: OrderPrefetch, point_type: str, points: int
                          ) -> list[tuple[int, int]]:
    """The lots a redemption of `points` takes: from the prefetched ones when they cover it
    (what the order asked for), else from every free lot of the type."""
    lots = choose_lots(pre.free_lots.get(point_type, ()), points)
    if sum(p for _, p in lots) < points and points > pre.wanted.get(point_type, 0):
        lots = choose_lots(await book.free_lots(point_type), points)
    taken = sum(p for _, p in lots)
    if taken < points:
        raise InsufficientPoints(point_type, points, taken)
    return lots


def _check_new(program: LedgerProgram, req: OrderRequest, result: CalculationResult,
               available: dict[str, int], usage: CodeUsage) -> None:
    """What a new order's result must satisfy before anything is written."""
    if req.expected_total is not None and req.expected_total != result.totals.total:
        raise TotalMismatch(req.order_id, req.expected_total, result.totals.total)
    _check_result(program, result, available, usage)
    locked = {c.upper() for c in req.promo_codes}
    for c in result.promo_codes:
        if c.status == "APPLIED" and c.code.upper() not in locked:
            raise FailedPrecondition(f"the calculation applied promo code {c.code!r}, which the"
                                     " order does not carry")


async def _calculate_new(opened: _Opened, req: OrderRequest, compute: Compute
                         ) -> tuple[CalculationResult, OrderInputs]:
    """Calculate a new order on the member as it stands, and check what it would post."""
    member, usage, available = await _snapshot(opened, req)
    result = _calculate(compute, member, usage)
    _check_new(opened.book.program, req, result, available, usage)
    return result, OrderInputs.of(member, usage)


# -- guest orders ---------------------------------------------------------------------------------


async def _calculate_guest(conn: asyncpg.Connection, program: LedgerProgram, req: OrderRequest,
                           compute: Compute, now: datetime
                           ) -> tuple[CalculationResult, OrderInputs]:
    """Calculate a new guest order under its codes' locks (no member: no pool uses to count,
    so `max_uses_per_member` cannot apply), and check it moves no points."""
    usage = CodeUsage(await _lock_code_uses(conn, program, req.promo_codes, now), {})
    result = _calculate(compute, None, usage)
    for p in result.points:
        if p.redeemed or p.accrued or p.accrued_pending:
            raise FailedPrecondition(
                f"the calculation moves points of {p.point_type!r} for a guest order, which"
                " has no member to post them to"
            )
    _check_new(program, req, result, {}, usage)
    return result, OrderInputs.of(None, usage)


async def _confirm_guest(conn: asyncpg.Connection, program: LedgerProgram, req: OrderRequest,
                         compute: Compute, now: datetime) -> OrderOutcome:
    order = await _existing(conn, program, req, None)
    if order is not None:
        if order.state == "CONFIRMED":
            return OrderOutcome(req.order_id, "CONFIRMED", order.result, order.hold_until, True,
                                order.program_version)
        if order.state == "CANCELLED":
            raise OrderStateError(req.order_id, "CANCELLED", "confirm")
        return await _post_guest_hold(conn, program, order, now)
    result, inputs = await _calculate_guest(conn, program, req, compute, now)
    order_pk = await _insert_order(conn, program, None, req, result, "CONFIRMED", None, now,
                                   inputs)
    await _use_codes(conn, program, None, order_pk, result, "CONFIRMED", None, now)
    await _outbox.emit(conn, program.id, "", "order.confirmed",
                       _confirmed_event(program, req.order_id, result), now)
    return OrderOutcome(req.order_id, "CONFIRMED", result, None, False, req.program_version)


async def _reserve_guest(conn: asyncpg.Connection, program: LedgerProgram, req: OrderRequest,
                         compute: Compute, seconds: int, now: datetime) -> OrderOutcome:
    order = await _existing(conn, program, req, None)
    if order is not None:
        if order.state == "CANCELLED":
            raise OrderStateError(req.order_id, "CANCELLED", "reserve")
        return OrderOutcome(req.order_id, order.state, order.result, order.hold_until, True,
                            order.program_version)
    result, inputs = await _calculate_guest(conn, program, req, compute, now)
    hold_until = now + timedelta(seconds=seconds)
    order_pk = await _insert_order(conn, program, None, req, result, "RESERVED", hold_until, now,
                                   inputs)
    await _use_codes(conn, program, None, order_pk, result, "HELD", hold_until, now)
    return OrderOutcome(req.order_id, "RESERVED", result, hold_until, False, req.program_version)


async def _post_guest_hold(conn: asyncpg.Connection, program: LedgerProgram, order: OrderRow,
                           now: datetime) -> OrderOutcome:
    """ConfirmOrder of a reserved guest order: its held code uses become confirmed."""
    assert order.state == "RESERVED" and order.hold_until is not None
    if order.hold_until <= now:
        raise HoldNotActive(order.order_id, f"lapsed at {order.hold_until.isoformat()}")
    await _post_held_codes(conn, program, order, now)
    await conn.execute(
        "UPDATE orders SET state = 'CONFIRMED', confirmed_at = $2 WHERE pk = $1", order.pk, now
    )
    await _outbox.emit(conn, program.id, "", "order.confirmed",
                       _confirmed_event(program, order.order_id, order.result), now)
    return OrderOutcome(order.order_id, "CONFIRMED", order.result, order.hold_until, False,
                        order.program_version)


async def _post_held_codes(conn: asyncpg.Connection, program: LedgerProgram, order: OrderRow,
                           now: datetime) -> None:
    """Turn a reservation's held code uses into confirmed ones, under the codes' locks.

    The hold counted against each code's `max_uses` until `hold_until`; but a request whose
    clock was read before the hold lapsed may post it after another order, seeing the hold
    lapsed, took the code. So the uses are counted again under the locks (this order's own
    held use included): a code over its limit refuses the posting, and nothing is written.
    """
    if not any(c.status == "APPLIED" for c in order.result.promo_codes):
        return  # no code was held: nothing to read
    uses = await conn.fetch(
        "SELECT code, state FROM promo_code_uses WHERE order_pk = $1 ORDER BY code", order.pk
    )
    if any(u["state"] != "HELD" for u in uses):
        raise HoldNotActive(order.order_id, "voided")
    counts = await _lock_code_uses(conn, program, [u["code"] for u in uses], now)
    for u in uses:
        code = u["code"]
        pool = program.pools.get(program.code_pools.get(code, ""))
        max_uses = pool.codes.get(code, 0) if pool is not None else 0
        live = counts.get(code, 0)
        if max_uses and live > max_uses:
            raise FailedPrecondition(
                f"order {order.order_id!r}: promo code {code!r} is used up ({live} live uses with"
                f" this hold, at most {max_uses}): another order took it once the hold had lapsed,"
                " or its limit was lowered; nothing was written"
            )
    await conn.execute(
        "UPDATE promo_code_uses SET state = 'CONFIRMED', hold_until = NULL"
        " WHERE order_pk = $1 AND state = 'HELD'",
        order.pk,
    )


async def confirm_order(conn: asyncpg.Connection, program: LedgerProgram, req: OrderRequest,
                        compute: Compute, now: datetime) -> OrderOutcome:
    """Confirm a new order in four round trips (lock, read, write, commit: see `_batch`);
    replay a confirmed one; post the hold of a reserved one. Without `member_id`, a guest
    order: only its promo code uses are committed."""
    _validate_request(req)
    if not req.member_id:
        return await _confirm_guest(conn, program, req, compute, now)
    opened = await _open(conn, program, req, now)
    book, pre, order = opened.book, opened.pre, opened.order
    if order is not None:
        if order.state == "CONFIRMED":
            return OrderOutcome(req.order_id, "CONFIRMED", order.result, order.hold_until, True,
                                order.program_version)
        if order.state == "CANCELLED":
            raise OrderStateError(req.order_id, "CANCELLED", "confirm")
        return await _post_hold(book, order)
    result, inputs = await _calculate_new(opened, req, compute)
    batch = OrderBatch(book, req.order_id)
    for p in result.points:
        if p.redeemed > 0:
            lots = await _redeemable_lots(book, pre, p.point_type, p.redeemed)
            txn = batch.redeem(p.point_type, p.redeemed, lots)
            batch.emit("points.redeemed", {"point_type": p.point_type, "points": p.redeemed,
                                           "order_id": req.order_id}, txn)
    for p in result.points:
        if p.accrued > 0:
            txn = batch.accrue(p.point_type, p.accrued, "ON_CREATE")
            batch.emit("points.accrued", {"point_type": p.point_type, "points": p.accrued,
                                          "order_id": req.order_id}, txn)
        if p.accrued_pending > 0:
            # Not in any balance until delivery, so no transaction yet (docs/contract.md, Balances).
            batch.accrue_pending(p.point_type, p.accrued_pending, "ON_DELIVERY")
    for code, pool in _applied_codes(program, result):
        batch.use_code(code, pool)
    batch.emit("order.confirmed", _confirmed_event(program, req.order_id, result))
    await batch.flush(payload_hash=req.payload_hash, result_json=result_to_json(result),
                      total=result.totals.total, program_version=req.program_version,
                      request_bytes=req.request_bytes, member_json=inputs.member_json,
                      usage_json=inputs.usage_json)
    if any(g.point_type in book.touched for g in program.tier_groups):
        live = pre.live()
        for point_type, value in batch.value_by_type().items():
            live[point_type] = live.get(point_type, 0) + value
        for point_type, points in batch.expired_by_new_lots().items():
            live[point_type] -= points
        await _tiers.refresh(book, states=dict(pre.tiers), live=live)
    return OrderOutcome(req.order_id, "CONFIRMED", result, None, False, req.program_version)


async def reserve_order(conn: asyncpg.Connection, program: LedgerProgram, req: OrderRequest,
                        compute: Compute, hold_seconds: int, now: datetime) -> OrderOutcome:
    _validate_request(req)
    if hold_seconds < 0 or hold_seconds > MAX_HOLD_SECONDS:
        raise InvalidArgument.field("hold_seconds", f"must lie in [0, {MAX_HOLD_SECONDS}]"
                                    f" (0 means {DEFAULT_HOLD_SECONDS})")
    seconds = hold_seconds or DEFAULT_HOLD_SECONDS
    if not req.member_id:
        return await _reserve_guest(conn, program, req, compute, seconds, now)
    opened = await _open(conn, program, req, now)
    book, order = opened.book, opened.order
    if order is not None:
        if order.state == "CANCELLED":
            raise OrderStateError(req.order_id, "CANCELLED", "reserve")
        return OrderOutcome(req.order_id, order.state, order.result, order.hold_until, True,
                            order.program_version)
    result, inputs = await _calculate_new(opened, req, compute)
    hold_until = now + timedelta(seconds=seconds)
    order_pk = await _insert_order(conn, program, book.member_pk, req, result, "RESERVED",
                                   hold_until, now, inputs)
    earmarks: list[tuple[str, int, list[tuple[int, int]]]] = []
    for p in result.points:
        if p.redeemed <= 0:
            continue
        free_lots = await book.free_lots(p.point_type)
        lots = choose_lots(free_lots, p.redeemed)
        left = p.redeemed - sum(part for _, part in lots)
        if left:
            raise InsufficientPoints(p.point_type, p.redeemed, p.redeemed - left)
        expiry = {lot_pk: expires_at for lot_pk, expires_at, _free in free_lots}
        for lot_pk, _part in lots:
            expires_at = expiry[lot_pk]
            if expires_at is not None and expires_at < hold_until:
                # A hold never outlives the points it earmarks.
                hold_until = expires_at
        earmarks.append((p.point_type, p.redeemed, lots))
    for point_type, points, lots in earmarks:
        hold_pk = await conn.fetchval(
            "INSERT INTO holds (order_pk, member_pk, point_type, points, hold_until, state,"
            " created_at) VALUES ($1, $2, $3, $4, $5, 'HELD', $6) RETURNING pk",
            order_pk, book.member_pk, point_type, points, hold_until, now,
        )
        await conn.executemany(
            "INSERT INTO hold_lots (hold_pk, lot_pk, points) VALUES ($1, $2, $3)",
            [(hold_pk, lot_pk, part) for lot_pk, part in lots],
        )
    await conn.execute("UPDATE orders SET hold_until = $2 WHERE pk = $1", order_pk, hold_until)
    await _use_codes(conn, program, book.member_pk, order_pk, result, "HELD", hold_until, now)
    return OrderOutcome(req.order_id, "RESERVED", result, hold_until, False, req.program_version)


async def _post_hold(book: Book, order: OrderRow) -> OrderOutcome:
    """ConfirmOrder of a reserved order: post the hold exactly as reserved."""
    assert order.state == "RESERVED" and order.hold_until is not None
    holds = await book.conn.fetch(
        "SELECT pk, point_type, points, state FROM holds WHERE order_pk = $1 ORDER BY point_type",
        order.pk,
    )
    if any(h["state"] != "HELD" for h in holds):
        raise HoldNotActive(order.order_id, "voided")
    if order.hold_until <= book.now:
        raise HoldNotActive(order.order_id, f"lapsed at {order.hold_until.isoformat()}")
    await _post_held_codes(book.conn, book.program, order, book.now)
    await _tiers.catch_up(book)
    for h in holds:
        lots = await book.conn.fetch(
            "SELECT lot_pk, points FROM hold_lots WHERE hold_pk = $1 ORDER BY lot_pk", h["pk"]
        )
        await book.conn.execute(
            "UPDATE holds SET state = 'POSTED', closed_at = $2 WHERE pk = $1", h["pk"], book.now
        )
        debit = await book.debit(
            h["point_type"], h["points"], type="REDEMPTION", source_type="ORDER",
            source_id=order.order_id, external_id=order.order_id, allow_negative=False,
            order_pk=order.pk, earmarked=[(r["lot_pk"], r["points"]) for r in lots],
        )
        assert debit.txn is not None
        await book.emit("points.redeemed", {"point_type": h["point_type"], "points": h["points"],
                                            "order_id": order.order_id,
                                            "transaction_id": debit.txn.id})
    result = order.result
    await _post_accruals(book, order.pk, order.order_id, result)
    await book.conn.execute(
        "UPDATE orders SET state = 'CONFIRMED', confirmed_at = $2 WHERE pk = $1",
        order.pk, book.now,
    )
    await book.emit("order.confirmed", _confirmed_event(book.program, order.order_id, result))
    await _tiers.refresh(book)
    return OrderOutcome(order.order_id, "CONFIRMED", result, order.hold_until, False,
                        order.program_version)


async def deliver_order(conn: asyncpg.Connection, program: LedgerProgram, order_id: str,
                        now: datetime) -> list[PointsMovement]:
    """Pending (ON_DELIVERY) accruals become active; their validity counts from now. A guest
    order has none: it is only marked delivered."""
    book, order = await lock_order(conn, program, order_id, now)
    if order.state != "CONFIRMED":
        raise OrderStateError(order_id, order.state, "deliver")
    if order.delivered_at is not None:
        return movements_from_json(order.delivery or [])
    if book is None:
        await conn.execute(
            "UPDATE orders SET delivered_at = $2, delivery = '[]'::jsonb WHERE pk = $1",
            order.pk, now,
        )
        return []
    await _tiers.catch_up(book)
    lots = await conn.fetch(
        "SELECT pk, point_type, remaining FROM lots WHERE order_pk = $1 AND state = 'PENDING'"
        " ORDER BY point_type, pk",
        order.pk,
    )
    activated: dict[str, int] = {}
    for lot in lots:
        points = lot["remaining"]
        point_type = lot["point_type"]
        cfg = program.point_type(point_type)
        expires_at = cfg.expiry(now, program.tz) if cfg is not None else None
        if points == 0:  # returned in full before delivery
            await conn.execute("UPDATE lots SET state = 'VOIDED' WHERE pk = $1", lot["pk"])
            continue
        repay = min(points, await _unbacked(book, point_type))
        txn = await book.post(
            point_type, points, type="ACCRUAL", source_type="ORDER", source_id=order_id,
            external_id=order_id, comment="delivered", unbacked_delta=-repay,
        )
        await conn.execute(
            "UPDATE lots SET state = 'ACTIVE', remaining = $2, accrued_at = $3, expires_at = $4,"
            " txn_pk = $5 WHERE pk = $1",
            lot["pk"], points - repay, now, expires_at, int(txn.id),
        )
        activated[point_type] = activated.get(point_type, 0) + points
        await book.emit("points.accrued", {"point_type": point_type, "points": points,
                                           "order_id": order_id, "transaction_id": txn.id})
    movements = [PointsMovement(t, activated=p) for t, p in activated.items()]
    await conn.execute(
        "UPDATE orders SET delivered_at = $2, delivery = $3::jsonb WHERE pk = $1",
        order.pk, now, movements_to_json(movements),
    )
    await _tiers.refresh(book)
    return movements


async def _unbacked(book: Book, point_type: str) -> int:
    value: int = await book.conn.fetchval(
        "SELECT unbacked FROM balances WHERE member_pk = $1 AND point_type = $2",
        book.member_pk, point_type,
    ) or 0
    return value


async def order_points_left(conn: asyncpg.Connection, order: OrderRow
                            ) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """What returns have not yet taken back: accruals by (type, timing), redemptions by type.

    Returns record what they meant to take (shortfalls included), so a later cancellation
    never takes the same points twice.
    """
    accrued: dict[tuple[str, str], int] = {}
    redeemed: dict[str, int] = {}
    for p in order.result.points:
        if p.accrued:
            accrued[(p.point_type, "ON_CREATE")] = p.accrued
        if p.accrued_pending:
            accrued[(p.point_type, "ON_DELIVERY")] = p.accrued_pending
        if p.redeemed:
            redeemed[p.point_type] = p.redeemed
    rows = await conn.fetch("SELECT allocation::text AS a FROM returns WHERE order_pk = $1",
                            order.pk)
    for r in rows:
        for _line, point_type, kind, points in json.loads(r["a"]):
            if kind == "REDEEMED":
                redeemed[point_type] -= points
            else:
                accrued[(point_type, kind)] -= points
    return accrued, redeemed


async def cancel_order(conn: asyncpg.Connection, program: LedgerProgram, order_id: str,
                       now: datetime) -> list[PointsMovement]:
    """Reverse everything the order did (whatever allow_refund says); idempotent. A guest
    order moved no points: only its promo code uses are released."""
    book, order = await lock_order(conn, program, order_id, now)
    if order.state == "CANCELLED":
        return movements_from_json(order.cancellation or [])
    movements = [] if book is None else await _reverse_points(book, order)
    released = await conn.fetch(
        "UPDATE promo_code_uses SET state = 'RELEASED', closed_at = $2"
        " WHERE order_pk = $1 AND state <> 'RELEASED' RETURNING code",
        order.pk, now,
    )
    await conn.execute(
        "UPDATE orders SET state = 'CANCELLED', cancelled_at = $2, cancellation = $3::jsonb"
        " WHERE pk = $1",
        order.pk, now, movements_to_json(movements),
    )
    await emit_order_event(conn, program, book, "order.cancelled", {
        "order_id": order_id, "was": order.state,
        "movements": [[m.point_type, m.accrual_reversed, m.redemption_refunded, m.shortfall]
                      for m in movements],
        "promo_codes": sorted(r["code"] for r in released),
    }, now)
    if book is not None:
        await _tiers.refresh(book)
    return movements


async def emit_order_event(conn: asyncpg.Connection, program: LedgerProgram, book: Book | None,
                           topic: str, payload: dict[str, Any], now: datetime) -> None:
    """An order's event: for its member, or with an empty member_id for a guest order."""
    if book is not None:
        await book.emit(topic, payload)
    else:
        await _outbox.emit(conn, program.id, "", topic, payload, now)


async def _reverse_points(book: Book, order: OrderRow) -> list[PointsMovement]:
    """A cancellation's postings: void the holds of a reservation, or give back the redemptions
    and take back the accruals of a confirmed order (what returns have not taken already)."""
    conn, now, order_id = book.conn, book.now, order.order_id
    await _tiers.catch_up(book)
    movements: list[PointsMovement] = []
    if order.state == "RESERVED":
        await conn.execute(
            "UPDATE holds SET state = 'VOIDED', closed_at = $2 WHERE order_pk = $1"
            " AND state = 'HELD'",
            order.pk, now,
        )
    else:
        accrued, redeemed = await order_points_left(conn, order)
        per_type: dict[str, dict[str, int]] = {}
        for point_type, points in redeemed.items():
            if points > 0:
                txn = await book.restore(
                    point_type, points, order.pk, type="REVERSAL", source_id=order_id,
                    external_id=order_id, comment="order cancelled: redemption given back",
                )
                per_type.setdefault(point_type, {})["refunded"] = points
                await book.emit("points.refunded", {"point_type": point_type, "points": points,
                                                    "order_id": order_id,
                                                    "transaction_id": txn.id})
        for (point_type, timing), points in sorted(accrued.items()):
            if points <= 0:
                continue
            entry = per_type.setdefault(point_type, {})
            if timing == "ON_DELIVERY" and order.delivered_at is None:
                await conn.execute(
                    "UPDATE lots SET state = 'VOIDED', remaining = 0 WHERE order_pk = $1"
                    " AND point_type = $2 AND state = 'PENDING'",
                    order.pk, point_type,
                )
                entry["reversed"] = entry.get("reversed", 0) + points
                continue
            taken, shortfall = await reverse_accrual(book, order, point_type, points,
                                                     "order cancelled: accrual reversed")
            entry["reversed"] = entry.get("reversed", 0) + taken
            entry["shortfall"] = entry.get("shortfall", 0) + shortfall
        movements = [
            PointsMovement(t, accrual_reversed=v.get("reversed", 0),
                           redemption_refunded=v.get("refunded", 0),
                           shortfall=v.get("shortfall", 0))
            for t, v in per_type.items()
        ]
    return movements


async def reverse_accrual(book: Book, order: OrderRow, point_type: str, points: int,
                          comment: str, external_id: str | None = None) -> tuple[int, int]:
    """Take back accrued points; never below zero unless the type allows it.

    The order's own lots go first: what of them already expired is written off already (the
    member lost those points once; a reversal does not take them again), what expired but is
    not yet written off is taken from them, then their live points, then other lots.
    Returns (reversed, shortfall); the shortfall is also in the transaction's `extra`.
    """
    cfg = book.program.point_type(point_type)
    allow_negative = cfg.allow_negative_balance if cfg is not None else False
    own = await book.conn.fetch(
        """
        SELECT pk, state, remaining, expired_points - expired_reversed AS gone, expires_at
        FROM lots WHERE order_pk = $1 AND point_type = $2 AND state IN ('ACTIVE', 'EXPIRED')
        ORDER BY pk
        """,
        order.pk, point_type,
    )
    left = points
    forgiven: list[tuple[int, int]] = []
    stale: list[tuple[int, int]] = []
    for lot in own:
        if left and lot["state"] == "EXPIRED" and lot["gone"] > 0:
            part = min(left, lot["gone"])
            forgiven.append((lot["pk"], part))
            left -= part
    for lot in own:
        due = lot["expires_at"] is not None and lot["expires_at"] <= book.now
        if left and lot["state"] == "ACTIVE" and due and lot["remaining"] > 0:
            part = min(left, lot["remaining"])
            stale.append((lot["pk"], part))
            left -= part
    if forgiven:
        await book.conn.executemany(
            "UPDATE lots SET expired_reversed = expired_reversed + $2 WHERE pk = $1", forgiven
        )
    written_off = sum(p for _, p in forgiven)
    ext = external_id or order.order_id
    to_take = points - written_off
    if to_take == 0:
        return points, 0
    extra = {"already_expired": written_off} if written_off else None
    debit = await book.debit(
        point_type, to_take, type="REVERSAL", source_type="ORDER", source_id=order.order_id,
        external_id=ext, comment=comment, extra=extra, allow_negative=allow_negative,
        order_pk=order.pk, prefer_order_pk=order.pk, first=stale,
    )
    if debit.txn is None and debit.shortfall:
        # Nothing could be taken: still leave a trace of what was owed, with a zero value.
        await book.post(point_type, 0, type="REVERSAL", source_type="ORDER",
                        source_id=order.order_id, external_id=ext, comment=comment,
                        extra={**(extra or {}), "requested": to_take,
                               "shortfall": debit.shortfall})
    return written_off + debit.taken, debit.shortfall
