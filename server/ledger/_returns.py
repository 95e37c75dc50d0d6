"""Returns (docs/contract.md): take back the returned units' accruals and refund their points paid,
in proportion, under the stored result of the sale, never a recalculation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from arbiter.server.engine.errors import FieldViolation
from arbiter.server.engine.money import apportion, div_half_up
from arbiter.server.engine.types import CalculationResult
from arbiter.server.ledger import _tiers
from arbiter.server.ledger._config import LedgerProgram
from arbiter.server.ledger._members import validate_id
from arbiter.server.ledger._orders import (
    emit_order_event,
    lock_order,
    movements_from_json,
    movements_to_json,
    reverse_accrual,
)
from arbiter.server.ledger._types import PointsMovement
from arbiter.server.ledger.errors import Conflict, InvalidArgument, OrderStateError

__all__ = ["MAX_RETURN_LINES", "line_points", "return_order"]

MAX_RETURN_LINES = 1_000
# Kinds of what a line holds: accruals by timing, and points paid.
_KINDS = ("ON_CREATE", "ON_DELIVERY", "REDEEMED")

LineKey = tuple[str, str]  # (point type, kind)


def _weights(result: CalculationResult) -> list[int]:
    """Order-level points go to lines by final price; by base price when every final price is
    0 (paid in full with points); equally when even those are 0."""
    finals = [ln.final_price for ln in result.lines]
    bases = [ln.base_price for ln in result.lines]
    for weights in (finals, bases):
        if sum(weights) > 0:
            return weights
    return [1] * len(result.lines)


def line_points(result: CalculationResult) -> dict[str, dict[LineKey, int]]:
    """Per line: points accrued (by type and timing) and paid (by type) under the stored result.

    Line rows of the benefit table count as they are; whatever the order posted beyond them (the
    order-level accrual rows) is apportioned to lines by largest remainder, so that the lines add
    up to exactly what was posted.
    """
    lines = {ln.line_id: {} for ln in result.lines}  # type: dict[str, dict[LineKey, int]]
    on_lines: dict[LineKey, int] = {}
    for b in result.benefits:
        if b.points <= 0 or b.line_id not in lines:
            continue
        if b.timing:
            key = (b.point_type, b.timing)
        elif b.benefit == "pay_with_points":
            key = (b.point_type, "REDEEMED")
        else:
            continue
        lines[b.line_id][key] = lines[b.line_id].get(key, 0) + b.points
        on_lines[key] = on_lines.get(key, 0) + b.points
    posted: dict[LineKey, int] = {}
    for p in result.points:
        posted[(p.point_type, "ON_CREATE")] = p.accrued
        posted[(p.point_type, "ON_DELIVERY")] = p.accrued_pending
        posted[(p.point_type, "REDEEMED")] = p.redeemed
    weights = _weights(result)
    ids = [ln.line_id for ln in result.lines]
    for key, total in posted.items():
        rest = total - on_lines.get(key, 0)
        if rest < 0:
            # The rows claim more than was posted: scale the lines down to what was posted.
            shares = apportion(total, [lines[i].get(key, 0) for i in ids])
            for line_id, share in zip(ids, shares, strict=True):
                lines[line_id][key] = share
        elif rest > 0:
            for line_id, share in zip(ids, apportion(rest, weights), strict=True):
                lines[line_id][key] = lines[line_id].get(key, 0) + share
    return lines


def _bought(result: CalculationResult) -> dict[str, int]:
    return {ln.line_id: sum(q for q, _ in ln.portions) for ln in result.lines}


def _validate(result: CalculationResult, return_id: str,
              lines: Sequence[tuple[str, int]]) -> None:
    validate_id(return_id, "return_id")
    violations: list[FieldViolation] = []
    if not lines:
        violations.append(FieldViolation("lines", "must list at least one line"))
    if len(lines) > MAX_RETURN_LINES:
        violations.append(FieldViolation("lines", f"at most {MAX_RETURN_LINES} lines"))
    bought = _bought(result)
    seen: set[str] = set()
    for i, (line_id, quantity) in enumerate(lines):
        if line_id not in bought:
            violations.append(FieldViolation(f"lines[{i}].line_id", "no such line in the order"))
        elif line_id in seen:
            violations.append(FieldViolation(f"lines[{i}].line_id", "listed twice"))
        seen.add(line_id)
        if quantity <= 0:
            violations.append(FieldViolation(f"lines[{i}].quantity", "must be positive"))
    if violations:
        raise InvalidArgument(violations)


async def return_order(conn: asyncpg.Connection, program: LedgerProgram, order_id: str,
                       return_id: str, lines: Sequence[tuple[str, int]], now: datetime
                       ) -> list[PointsMovement]:
    """Record a return and move its points. A guest order's return is recorded, validated and
    idempotent like any, and moves no points (its order moved none)."""
    book, order = await lock_order(conn, program, order_id, now)
    validate_id(return_id, "return_id")
    request_hash = hashlib.sha256(
        json.dumps(sorted([str(line), int(q)] for line, q in lines)).encode()
    ).hexdigest()
    existing = await conn.fetchrow(
        "SELECT request_hash, movements::text AS m FROM returns"
        " WHERE order_pk = $1 AND return_id = $2",
        order.pk, return_id,
    )
    if existing is not None:
        if existing["request_hash"] != request_hash:
            raise Conflict("return", return_id)
        return movements_from_json(json.loads(existing["m"]))
    if order.state != "CONFIRMED":
        raise OrderStateError(order_id, order.state, "return")
    result = order.result
    _validate(result, return_id, lines)
    bought = _bought(result)
    done_units: dict[str, int] = {}
    done_points: dict[tuple[str, str, str], int] = {}
    for r in await conn.fetch(
        "SELECT lines::text AS l, allocation::text AS a FROM returns WHERE order_pk = $1",
        order.pk,
    ):
        for line_id, units in json.loads(r["l"]):
            done_units[line_id] = done_units.get(line_id, 0) + units
        for line_id, point_type, kind, points in json.loads(r["a"]):
            key = (line_id, point_type, kind)
            done_points[key] = done_points.get(key, 0) + points
    violations = []
    for i, (line_id, quantity) in enumerate(lines):
        left = bought[line_id] - done_units.get(line_id, 0)
        if quantity > left:
            violations.append(FieldViolation(
                f"lines[{i}].quantity", f"only {left} units of line {line_id!r} are left"))
    if violations:
        raise InvalidArgument(violations)
    if book is not None:
        await _tiers.catch_up(book)
    per_line = line_points(result)
    allocation: list[list[object]] = []
    totals: dict[LineKey, int] = {}
    for line_id, quantity in lines:
        last = done_units.get(line_id, 0) + quantity == bought[line_id]
        for (point_type, kind), full in sorted(per_line[line_id].items()):
            left = full - done_points.get((line_id, point_type, kind), 0)
            share = left if last else min(left, div_half_up(full * quantity, bought[line_id]))
            if kind == "REDEEMED":
                cfg = program.point_type(point_type)
                if cfg is None or not cfg.allow_refund:
                    share = 0
            if share <= 0:
                continue
            allocation.append([line_id, point_type, kind, share])
            totals[(point_type, kind)] = totals.get((point_type, kind), 0) + share
    per_type: dict[str, dict[str, int]] = {}
    # A guest order moved no points, so its lines hold none and `totals` is empty for it.
    if totals:
        assert book is not None, totals
        # Refunds first: points given back can cover a reversal that would otherwise fall short.
        ordered = sorted(totals.items(), key=lambda kv: kv[0][1] != "REDEEMED")
        for (point_type, kind), points in ordered:
            entry = per_type.setdefault(point_type, {})
            if kind == "REDEEMED":
                txn = await book.restore(point_type, points, order.pk, type="REFUND",
                                         source_id=order_id, external_id=return_id,
                                         comment="returned units: points paid refunded",
                                         extra={"return_id": return_id})
                entry["refunded"] = entry.get("refunded", 0) + points
                await book.emit("points.refunded", {"point_type": point_type, "points": points,
                                                    "order_id": order_id, "return_id": return_id,
                                                    "transaction_id": txn.id})
            elif kind == "ON_DELIVERY" and order.delivered_at is None:
                await conn.execute(
                    "UPDATE lots SET remaining = remaining - $3 WHERE order_pk = $1"
                    " AND point_type = $2 AND state = 'PENDING'",
                    order.pk, point_type, points,
                )
                entry["reversed"] = entry.get("reversed", 0) + points
            else:
                taken, shortfall = await reverse_accrual(book, order, point_type, points,
                                                         "returned units: accrual reversed",
                                                         external_id=return_id)
                entry["reversed"] = entry.get("reversed", 0) + taken
                entry["shortfall"] = entry.get("shortfall", 0) + shortfall
    movements = [
        PointsMovement(t, accrual_reversed=v.get("reversed", 0),
                       redemption_refunded=v.get("refunded", 0), shortfall=v.get("shortfall", 0))
        for t, v in per_type.items()
    ]
    await conn.execute(
        "INSERT INTO returns (order_pk, return_id, request_hash, lines, allocation, movements,"
        " created_at) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7)",
        order.pk, return_id, request_hash, json.dumps([[ln, q] for ln, q in lines]),
        json.dumps(allocation), movements_to_json(movements), now,
    )
    await emit_order_event(conn, program, book, "order.returned", {
        "order_id": order_id, "return_id": return_id, "lines": [[ln, q] for ln, q in lines],
        "movements": [[m.point_type, m.accrual_reversed, m.redemption_refunded, m.shortfall]
                      for m in movements],
    }, now)
    if book is not None:
        await _tiers.refresh(book)
    return movements
