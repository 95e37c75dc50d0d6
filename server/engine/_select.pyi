"""Types of the typed selection (_select.pyx), for mypy."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from arbiter.server.engine.compile import COrderSegment, CPromotion
from arbiter.server.engine.segments import RuleTable, SegmentIndex
from arbiter.server.engine.types import LineInput, MemberState, OrderInput

GATE_CACHE: int

class Selection:
    live: list[bool]
    rule_active: list[bool]
    scope: list[int]
    codes: tuple  # type: ignore[type-arg]  # tuple[select.CodeCheck, ...]
    n_lines: int
    def scope_mask(self, sid: int) -> int: ...
    def rule_lines(self, gid: int) -> list[int]: ...

class SelectTables:
    n_scopes: int
    n_rules: int
    n_segments: int
    rule_scope: list[int]
    any_tiers: bool
    def line_bits(self, line: LineInput) -> int: ...
    def gate(
        self,
        gates: dict[tuple[object, ...], tuple[int, int, bytes]],
        at_us: int,
        weekday: int,
        month: int,
        channel: str,
        point: str,
        valid_pools: frozenset[str],
    ) -> bytes: ...
    def select(
        self,
        gates: dict[tuple[object, ...], tuple[int, int, bytes]],
        order: OrderInput,
        member: MemberState | None,
        at_us: int,
        local: datetime,
        codes: tuple,  # type: ignore[type-arg]
        valid_pools: frozenset[str],
        tiers_of: Callable[[Any, MemberState], frozenset[str]],
        program: Any,
    ) -> Selection: ...

def build_tables(
    promotions: Sequence[CPromotion],
    index: SegmentIndex,
    rules: RuleTable,
    order_segments: dict[str, COrderSegment],
    pool_ids: tuple[str, ...],
    time_bounds: tuple[int, ...],
) -> SelectTables: ...
