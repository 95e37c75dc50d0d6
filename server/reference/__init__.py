"""The plain reference evaluator: the oracle, straight from SPEC sections 3-5 and 11, no numpy.

``prepare`` turns a valid ``arbiter.v1.Program`` into plain Python data once; ``evaluate`` quotes
one ``CalculateOrderRequest`` with loops over candidates, benefits and lines, in integers only. It
imports nothing from the engine, so that a mistake in one cannot hide in both. The readings it
makes where the SPEC leaves room are listed in ``docs/reference-decisions.md``.
"""

from ._evaluate import evaluate
from ._program import ReferenceProgram, prepare

__all__ = ["ReferenceProgram", "evaluate", "prepare"]
