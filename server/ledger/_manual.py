"""Manual transactions and trigger promotions: one posting, idempotent by external_id."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import asyncpg

from arbiter.server.engine.errors import FieldViolation
from arbiter.server.ledger import _tiers
from arbiter.server.ledger._audit import AuditRecord, record_audit
from arbiter.server.ledger._book import TXN_COLUMNS, Book, row_to_transaction
from arbiter.server.ledger._config import AmountRule, LedgerProgram
from arbiter.server.ledger._members import MAX_ID_CHARS
from arbiter.server.ledger._types import Transaction
from arbiter.server.ledger.errors import (
    Conflict,
    FailedPrecondition,
    InsufficientPoints,
    InvalidArgument,
    NotFound,
)

__all__ = ["OPERATIONS", "post_manual"]

OPERATIONS = ("ACCRUAL", "DEDUCTION")
MAX_COMMENT_CHARS = 2_000
MAX_EXTRA_CHARS = 16_000


def _parse_extra(extra: str, violations: list[FieldViolation]) -> dict[str, Any]:
    if not extra:
        return {}
    if len(extra) > MAX_EXTRA_CHARS:
        violations.append(FieldViolation("extra", f"must be at most {MAX_EXTRA_CHARS} characters"))
        return {}
    try:
        value = json.loads(extra)
    except ValueError:
        violations.append(FieldViolation("extra", "must be a JSON object"))
        return {}
    if not isinstance(value, dict):
        violations.append(FieldViolation("extra", "must be a JSON object"))
        return {}
    return value


def _validate(
    program: LedgerProgram,
    *,
    member_id: str,
    point_type: str,
    operation: str,
    points: int,
    external_id: str,
    comment: str,
    extra: str,
    trigger: str | None,
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    """Check every field; returns the points to post (a fixed trigger rule fills in 0)."""
    violations: list[FieldViolation] = []
    if not member_id:
        violations.append(FieldViolation("member_id", "must not be empty"))
    if not external_id:
        violations.append(FieldViolation("external_id", "must not be empty: it is the key"
                                         " that makes the call idempotent"))
    elif len(external_id) > MAX_ID_CHARS:
        violations.append(FieldViolation("external_id",
                                         f"must be at most {MAX_ID_CHARS} characters"))
    if len(comment) > MAX_COMMENT_CHARS:
        violations.append(FieldViolation("comment",
                                         f"must be at most {MAX_COMMENT_CHARS} characters"))
    if operation not in OPERATIONS:
        violations.append(FieldViolation("operation", "must be ACCRUAL or DEDUCTION"))
    if program.point_type(point_type) is None:
        violations.append(FieldViolation("point_type", f"unknown point type {point_type!r}"))
    parsed = _parse_extra(extra, violations)
    rule: AmountRule | None = None
    if trigger is not None:
        trig = program.triggers.get(trigger)
        if trig is None:
            raise NotFound("trigger promotion", trigger)
        rules = trig.rules.get(point_type)
        if rules is None:
            if program.point_type(point_type) is not None:
                violations.append(FieldViolation(
                    "point_type", f"trigger promotion {trigger!r} has no rule for this type"))
        elif operation in OPERATIONS:
            rule = rules[0] if operation == "ACCRUAL" else rules[1]
            if rule is None:
                violations.append(FieldViolation(
                    "operation",
                    f"trigger promotion {trigger!r} offers no {operation} of {point_type!r}"))
        if rule is not None and points == 0 and rule.fixed:
            points = rule.fixed
        if rule is not None and not rule.allows(points):
            violations.append(FieldViolation("points", rule.describe()))
    if points <= 0 and not any(v.field == "points" for v in violations):
        violations.append(FieldViolation("points", "must be positive"))
    if violations:
        raise InvalidArgument(violations)
    if trigger is not None and not program.triggers[trigger].open_at(now):
        raise FailedPrecondition(f"trigger promotion {trigger!r} is outside its period")
    return points, parsed


def _hash(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


async def post_manual(
    conn: asyncpg.Connection,
    program: LedgerProgram,
    *,
    member_id: str,
    point_type: str,
    operation: str,
    points: int,
    external_id: str,
    comment: str,
    extra: str,
    trigger: str | None,
    now: datetime,
    audit: AuditRecord | None = None,
) -> Transaction:
    """CreateTransaction (trigger None, source MANUAL) or ApplyTrigger (TRIGGER_PROMOTION).

    `audit` given: recorded in the same transaction as the posting, with the transaction's id
    added to its detail; a replay of an `external_id` posts nothing and records nothing.
    """
    points, parsed = _validate(
        program, member_id=member_id, point_type=point_type, operation=operation, points=points,
        external_id=external_id, comment=comment, extra=extra, trigger=trigger, now=now,
    )
    source_type = "MANUAL" if trigger is None else "TRIGGER_PROMOTION"
    request_hash = _hash(source_type, member_id, trigger or "", point_type, operation, points,
                         comment, parsed)
    book = await Book.open(conn, program, member_id, now)
    existing = await conn.fetchrow(
        f"SELECT {TXN_COLUMNS}, request_hash FROM transactions"
        " WHERE program = $1 AND request_key = $2",
        program.id,
        external_id,
    )
    if existing is not None:
        if existing["request_hash"] != request_hash:
            raise Conflict("transaction", external_id)
        return row_to_transaction(existing)
    await _tiers.catch_up(book)
    cfg = program.point_types[point_type]
    if not cfg.usable_at(now):
        raise FailedPrecondition(f"point type {point_type!r} is inactive or deactivated")
    if trigger is not None:
        parsed = {**parsed, "trigger_promotion": trigger}
    common: dict[str, Any] = {
        "source_type": source_type,
        "source_id": trigger or "",
        "external_id": external_id,
        "comment": comment,
        "extra": parsed,
        "request_key": external_id,
        "request_hash": request_hash,
    }
    if operation == "ACCRUAL":
        txn = await book.credit(point_type, points, type="ACCRUAL", **common)
        await book.emit("points.accrued", {"point_type": point_type, "points": points,
                                           "source_type": source_type, "transaction_id": txn.id})
    else:
        if not cfg.allow_negative_balance:
            available = await book.available_of(point_type)
            if available < points:
                raise InsufficientPoints(point_type, points, max(0, available))
        debit = await book.debit(point_type, points, type="REDEMPTION",
                                 allow_negative=cfg.allow_negative_balance, **common)
        assert debit.txn is not None and debit.shortfall == 0
        txn = debit.txn
        await book.emit("points.redeemed", {"point_type": point_type, "points": points,
                                            "source_type": source_type, "transaction_id": txn.id})
    await _tiers.refresh(book)
    if audit is not None:
        detail = {**audit.detail, "transaction_id": txn.id}
        await record_audit(conn, AuditRecord(audit.program, audit.actor, audit.action,
                                             audit.object_kind, audit.object_id, detail), now)
    return txn
