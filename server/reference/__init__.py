"""The plain reference evaluator: the oracle, straight from docs/rules.md, no numpy.

``prepare`` turns a valid ``arbiter.v1.Program`` into plain Python data once; ``evaluate`` quotes
one ``CalculateOrderRequest`` with loops over candidates, benefits and lines, in integers only. It
imports nothing from the engine, so that a mistake in one cannot hide in both. The readings it
makes where docs/rules.md leaves room are listed in ``docs/reference-decisions.md``.
"""

from ._evaluate import evaluate
from ._program import ReferenceProgram, prepare

__all__ = ["ReferenceProgram", "evaluate", "prepare"]
