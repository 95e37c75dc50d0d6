"""The calculation engine: PURE. Program -> CompiledProgram; order + member state -> result.

No I/O, no clock (time comes in as an argument), no grpc/asyncpg/redis.
"""

from arbiter.server.engine.compile import CompiledProgram, compile_program
from arbiter.server.engine.errors import (
    ArbiterError,
    ConfigError,
    ConfigIssue,
    FieldViolation,
    InvalidOrder,
)
from arbiter.server.engine.evaluate import calculate, calculate_packed
from arbiter.server.engine.select import with_static_segments
from arbiter.server.engine.types import (
    AppliedBenefit,
    CalculationResult,
    CodeUsage,
    LineInput,
    LineResult,
    MemberState,
    OrderInput,
    PointsChange,
    PromoCodeResult,
    Totals,
)

__all__ = [
    "AppliedBenefit",
    "ArbiterError",
    "CalculationResult",
    "CodeUsage",
    "CompiledProgram",
    "ConfigError",
    "ConfigIssue",
    "FieldViolation",
    "InvalidOrder",
    "LineInput",
    "LineResult",
    "MemberState",
    "OrderInput",
    "PointsChange",
    "PromoCodeResult",
    "Totals",
    "calculate",
    "calculate_packed",
    "compile_program",
    "with_static_segments",
]
