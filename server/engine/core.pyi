"""Types of the typed core (core.pyx), for mypy."""

from arbiter.server.engine.compile import CNode, CompiledProgram
from arbiter.server.engine.single import Entry, Single, State
from arbiter.server.engine.types import (
    AppliedBenefit,
    LineResult,
    OrderInput,
    PointsChange,
    Totals,
)

class Declined(Exception): ...

NO_RUNNER_UP: int

PACKED_ROW: tuple[str, ...]
PACKED_ROW_KINDS: dict[str, int]
PACKED_LINE: tuple[str, ...]

class Report:
    rows: tuple[AppliedBenefit, ...] | bytes  # bytes when packed
    lines: tuple[LineResult, ...] | bytes  # bytes when packed
    totals: Totals
    points: tuple[PointsChange, ...]
    redeemed: list[int]
    accrued: list[int]
    texts: list[int]

class Calc:
    def entries(self) -> list[Entry]: ...
    def report(
        self, order: OrderInput, requested: dict[str, int], packed: bool = False
    ) -> Report: ...
    def pools(self) -> set[str]: ...

def row_names(
    program: CompiledProgram,
) -> tuple[
    tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]
]: ...
def evaluate(single: Single, node: CNode, s: State | None = None) -> Calc | None: ...
def overflowed() -> bool: ...
def valuation(
    single: Single, node: CNode, s: State
) -> tuple[list[int], bool, int, int] | None: ...
def evaluate_entries(single: Single, node: CNode, s: State) -> list[Entry] | None: ...
def valid(single: Single, entries: list[Entry], s: State) -> list[Entry] | None: ...
def limits(single: Single, node: CNode, entries: list[Entry], s: State) -> list[Entry] | None: ...
