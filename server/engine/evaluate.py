"""Evaluate an order against a compiled program (placeholder while the engine is written)."""

from __future__ import annotations

from datetime import datetime

from arbiter.server.engine.compile import CompiledProgram
from arbiter.server.engine.types import CalculationResult, CodeUsage, MemberState, OrderInput


def calculate(
    program: CompiledProgram,
    order: OrderInput,
    member: MemberState | None,
    *,
    now: datetime,
    usage: CodeUsage | None = None,
) -> CalculationResult:
    """The whole calculation of SPEC sections 3-5 and 11 for one order."""
    raise NotImplementedError("engine under construction")
