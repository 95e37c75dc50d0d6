"""The ledger's errors: each says which gRPC status the edge gives it and what to fix.

    ArbiterError (engine)
    └── LedgerError
        ├── NotFound                 NOT_FOUND: unknown member, order, trigger promotion
        ├── Conflict                 ALREADY_EXISTS: a key reused with a different payload
        ├── FailedPrecondition       FAILED_PRECONDITION: the state refuses the change
        │   ├── InsufficientPoints   a posting the available balance no longer covers
        │   ├── HoldNotActive        a hold that lapsed or was voided
        │   ├── TotalMismatch        `expected_total` differs from the (re)calculated total
        │   └── OrderStateError      an order in the wrong state for the step (cancelled, ...)
        ├── InvalidArgument          INVALID_ARGUMENT: names every bad field
        └── StorageUnavailable       UNAVAILABLE: PostgreSQL cannot be reached; nothing written

The api room maps these classes to status codes in one place; nothing here knows gRPC.
"""

from __future__ import annotations

from arbiter.server.engine.errors import ArbiterError, FieldViolation

__all__ = [
    "Conflict",
    "FailedPrecondition",
    "HoldNotActive",
    "InsufficientPoints",
    "InvalidArgument",
    "LedgerError",
    "NotFound",
    "OrderStateError",
    "StorageUnavailable",
    "TotalMismatch",
]


class LedgerError(ArbiterError):
    """Base of every error the ledger raises on purpose."""


class NotFound(LedgerError):
    """A member, order or trigger promotion that does not exist (or was removed)."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} not found")


class Conflict(LedgerError):
    """An idempotency key (order id, return id, external id) reused with a different payload."""

    def __init__(self, kind: str, key: str, detail: str = "") -> None:
        self.kind = kind
        self.key = key
        message = f"{kind} {key!r} already exists with a different payload"
        super().__init__(f"{message}: {detail}" if detail else message)


class FailedPrecondition(LedgerError):
    """The ledger's state refuses the change; the request may succeed once the state changes."""


class InsufficientPoints(FailedPrecondition):
    """A posting larger than what is available, on a type that forbids a negative balance."""

    def __init__(self, point_type: str, needed: int, available: int) -> None:
        self.point_type = point_type
        self.needed = needed
        self.available = available
        super().__init__(
            f"point type {point_type!r}: {needed} points needed, {available} available"
        )


class HoldNotActive(FailedPrecondition):
    """Confirming a reservation whose hold lapsed at `hold_until` or was voided."""

    def __init__(self, order_id: str, reason: str) -> None:
        self.order_id = order_id
        self.reason = reason
        super().__init__(f"order {order_id!r}: the hold is {reason}; reserve a new order")


class TotalMismatch(FailedPrecondition):
    """The till's `expected_total` differs from the total the ledger would commit."""

    def __init__(self, order_id: str, expected_total: int, total: int) -> None:
        self.order_id = order_id
        self.expected_total = expected_total
        self.total = total
        super().__init__(
            f"order {order_id!r}: expected_total {expected_total} but the order totals {total};"
            " nothing was written"
        )


class OrderStateError(FailedPrecondition):
    """A lifecycle step on an order in a state that does not allow it."""

    def __init__(self, order_id: str, state: str, step: str) -> None:
        self.order_id = order_id
        self.state = state
        self.step = step
        super().__init__(f"order {order_id!r} is {state}: cannot {step} it")


class InvalidArgument(LedgerError):
    """Bad input; lists each bad field (docs/contract.md), like the engine's InvalidOrder."""

    def __init__(self, violations: list[FieldViolation] | tuple[FieldViolation, ...]) -> None:
        if not violations:
            raise ValueError("InvalidArgument needs at least one violation")
        self.violations: tuple[FieldViolation, ...] = tuple(violations)
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations))

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        """The common case: one bad field."""
        return cls([FieldViolation(field, description)])

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(v.field for v in self.violations)


class StorageUnavailable(LedgerError):
    """PostgreSQL could not be reached or kept failing; the operation wrote nothing."""
