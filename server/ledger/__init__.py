"""The points ledger (docs/contract.md) in PostgreSQL: members, lots, transactions, the order
lifecycle, tiers and the outbox. asyncpg only; it knows no gRPC.

    ledger = await Ledger.connect(dsn)
    await ledger.migrate()
    await ledger.enroll(program, "m-1")
"""

from arbiter.server.ledger._audit import AuditEntry, AuditRecord, read_audit, record_audit
from arbiter.server.ledger._codec import result_from_json, result_to_json
from arbiter.server.ledger._codes import CodeUses
from arbiter.server.ledger._config import LedgerProgram
from arbiter.server.ledger._ledger import Ledger, ProgramLike
from arbiter.server.ledger._members import (
    DEFAULT_PAGE_SIZE,
    MAX_ID_CHARS,
    MAX_PAGE_SIZE,
    TransactionFilter,
)
from arbiter.server.ledger._orders import (
    DEFAULT_HOLD_SECONDS,
    MAX_HOLD_SECONDS,
    Compute,
    OrderRequest,
)
from arbiter.server.ledger._returns import line_points
from arbiter.server.ledger._types import (
    BalanceInfo,
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
    TierStatus,
    Transaction,
    TransactionPage,
)
from arbiter.server.ledger._unavailable import storage_errors
from arbiter.server.ledger.errors import (
    Conflict,
    FailedPrecondition,
    HoldNotActive,
    InsufficientPoints,
    InvalidArgument,
    LedgerError,
    NotFound,
    OrderStateError,
    StorageUnavailable,
    TotalMismatch,
)

__all__ = [
    "DEFAULT_HOLD_SECONDS",
    "DEFAULT_PAGE_SIZE",
    "MAX_HOLD_SECONDS",
    "MAX_ID_CHARS",
    "MAX_PAGE_SIZE",
    "AuditEntry",
    "AuditRecord",
    "BalanceInfo",
    "CodeUses",
    "Compute",
    "Conflict",
    "EnrollManyResult",
    "EnrollResult",
    "ExpiringLot",
    "ExpiryReport",
    "FailedPrecondition",
    "HoldNotActive",
    "InsufficientPoints",
    "InvalidArgument",
    "Ledger",
    "LedgerError",
    "LedgerProgram",
    "MemberBatch",
    "MemberInfo",
    "MemberSnapshot",
    "NotFound",
    "OrderOutcome",
    "OrderRequest",
    "OrderStateError",
    "OutboxEvent",
    "PointsMovement",
    "ProgramLike",
    "StorageUnavailable",
    "TierChange",
    "TierPeriodReport",
    "TierStatus",
    "TotalMismatch",
    "Transaction",
    "TransactionFilter",
    "TransactionPage",
    "line_points",
    "read_audit",
    "record_audit",
    "result_from_json",
    "result_to_json",
    "storage_errors",
]
