"""BacktestDraft's work (docs/reports.md): past orders calculated again under the draft and
under the version each was confirmed on, in worker processes, summed into one summary.

The parent streams the orders from the ledger in batches and hands each batch to a
ProcessPoolExecutor; a worker builds the compiled programs itself from the stored program bytes
(cached per process by their digest), so the serving process only reads, sums and answers.
Workers run under the idle scheduling class (Linux's SCHED_IDLE: a worker gets a core only when
nothing else wants it; elsewhere the lowest nice level) so that live calculations keep their
latency.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from arbiter.server.api.translate import order_from_proto
from arbiter.server.engine.compile import compile_program
from arbiter.server.engine.evaluate import calculate
from arbiter.server.engine.select import with_static_segments
from arbiter.server.engine.types import CalculationResult
from arbiter.server.ledger._backtest import StoredOrder
from arbiter.server.ledger._codec import result_from_obj, result_to_obj
from arbiter.server.ledger._orders import code_usage_from_obj, member_state_from_obj
from arbiter.v1 import checkout_pb2, program_pb2

__all__ = [
    "BATCH_ORDERS",
    "DEFAULT_LIMIT",
    "MAX_EXAMPLES",
    "MAX_LIMIT",
    "Figures",
    "ProgramKey",
    "backtest_batch",
    "program_key",
    "worker_context",
    "worker_init",
]

DEFAULT_LIMIT: Final = 10_000
MAX_LIMIT: Final = 10_000_000
MAX_EXAMPLES: Final = 20
BATCH_ORDERS: Final = 500
_WORKER_NICENESS: Final = 19  # where the idle class is missing

ProgramKey = str  # the digest of a program's bytes

_compiled: dict[ProgramKey, Any] = {}


def program_key(data: bytes) -> ProgramKey:
    return hashlib.sha256(data).hexdigest()


def worker_context() -> multiprocessing.context.BaseContext:
    # A fresh interpreter: forking a process that runs gRPC is not safe.
    return multiprocessing.get_context("spawn")


def worker_init() -> None:
    """Each worker yields the CPU to the serving process: the idle scheduling class where the
    platform has it (a nice level still leaves a worker a share of a busy core), else nice 19."""
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, idle, os.sched_param(0))
            return
    with contextlib.suppress(OSError):  # a platform without nice
        os.nice(_WORKER_NICENESS)


def _program(key: ProgramKey, data: bytes) -> Any:
    compiled = _compiled.get(key)
    if compiled is None:
        compiled = compile_program(program_pb2.Program.FromString(data))
        _compiled[key] = compiled
    return compiled


@dataclass(slots=True)
class Promo:
    orders: int = 0
    amount: int = 0
    points: int = 0

    def add(self, other: Promo) -> None:
        self.orders += other.orders
        self.amount += other.amount
        self.points += other.points


@dataclass(slots=True)
class Side:
    """One side (before: the stored results; after: the draft) of the summed figures."""

    discount: int = 0
    paid_with_points: int = 0
    total: int = 0
    points: dict[str, int] = field(default_factory=dict)
    promotions: dict[str, Promo] = field(default_factory=dict)

    def add_result(self, result: CalculationResult) -> None:
        t = result.totals
        self.discount += t.discount
        self.paid_with_points += t.paid_with_points
        self.total += t.total
        for p in result.points:
            self.points[p.point_type] = (
                self.points.get(p.point_type, 0) + p.accrued + p.accrued_pending
            )
        seen: set[str] = set()
        for b in result.benefits:
            promo = self.promotions.setdefault(b.promotion, Promo())
            if b.promotion not in seen:
                promo.orders += 1
                seen.add(b.promotion)
            promo.amount += b.amount
            promo.points += b.points

    def add(self, other: Side) -> None:
        self.discount += other.discount
        self.paid_with_points += other.paid_with_points
        self.total += other.total
        for k, v in other.points.items():
            self.points[k] = self.points.get(k, 0) + v
        for k, p in other.promotions.items():
            self.promotions.setdefault(k, Promo()).add(p)


@dataclass(slots=True)
class Figures:
    """What a batch (or the whole backtest) adds up to."""

    orders: int = 0
    reproduced: int = 0
    changed: int = 0
    without_inputs: int = 0
    failed_under_draft: int = 0
    before: Side = field(default_factory=Side)
    after: Side = field(default_factory=Side)
    # (|change|, order_id, total_before, total_after), the largest changes.
    examples: list[tuple[int, str, int, int]] = field(default_factory=list)

    def add(self, other: Figures) -> None:
        self.orders += other.orders
        self.reproduced += other.reproduced
        self.changed += other.changed
        self.without_inputs += other.without_inputs
        self.failed_under_draft += other.failed_under_draft
        self.before.add(other.before)
        self.after.add(other.after)
        self.examples = _top(self.examples + other.examples)


def _top(examples: list[tuple[int, str, int, int]]) -> list[tuple[int, str, int, int]]:
    return sorted(examples, key=lambda e: (-e[0], e[1]))[:MAX_EXAMPLES]


def _points_key(result: CalculationResult) -> tuple[tuple[str, int, int, int], ...]:
    return tuple(sorted((p.point_type, p.redeemed, p.accrued, p.accrued_pending)
                        for p in result.points))


def _recalculate(compiled: Any, order: StoredOrder) -> CalculationResult:
    quote = checkout_pb2.CalculateOrderRequest.FromString(order.request)
    order_input, _ = order_from_proto(quote, compiled.point_type_ids)
    member = (member_state_from_obj(json.loads(order.member_json))
              if order.member_json is not None else None)
    if member is not None:
        member = with_static_segments(compiled, member)
    usage = code_usage_from_obj(json.loads(order.usage_json or "{}")) if order.usage_json \
        else None
    return calculate(compiled, order_input, member, now=order.calculated_at, usage=usage)


def backtest_batch(programs: Mapping[ProgramKey, bytes], versions: Mapping[int, ProgramKey],
                   draft: ProgramKey, orders: list[StoredOrder]) -> Figures:
    """A worker's part: each order on its own version (must equal the stored result) and on
    the draft. An order without stored inputs is only counted."""
    figures = Figures()
    draft_program = _program(draft, programs[draft])
    for order in orders:
        figures.orders += 1
        if not order.request:
            figures.without_inputs += 1
            continue
        stored_obj = json.loads(order.result_json)
        stored = result_from_obj(stored_obj)
        figures.before.add_result(stored)
        own_key = versions.get(order.program_version or 0)
        if own_key is not None:
            try:
                own = _recalculate(_program(own_key, programs[own_key]), order)
            except Exception: # a failure is a result that does not reproduce
                own = None
            if own is not None and result_to_obj(own) == stored_obj:
                figures.reproduced += 1
        try:
            after = _recalculate(draft_program, order)
        except Exception: # the draft refuses the order: counted, not summed
            figures.failed_under_draft += 1
            figures.changed += 1
            continue
        figures.after.add_result(after)
        before_total, after_total = stored.totals.total, after.totals.total
        if before_total != after_total or _points_key(stored) != _points_key(after):
            figures.changed += 1
        if before_total != after_total:
            figures.examples.append(
                (abs(after_total - before_total), order.order_id, before_total, after_total)
            )
    figures.examples = _top(figures.examples)
    return figures
