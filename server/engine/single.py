"""The tree on one state, for the decision trace (docs/engine.md).

A state is a few lists of integers (price to pay and points money per line, budget per type,
shipping left) and an effect is a list of `Entry`, one per (benefit, line) that changes
something. Every node, benefit and cut is evaluated by the typed core (`core.pyx`); this module
hands it states and entries as Python values, for the decision trace (`trace.py`), which walks
the tree node by node. An input beyond the core's range is refused (`errors.out_of_range`).
"""

from __future__ import annotations

try:
    from arbiter.server.engine import core
except ImportError as exc:  # a source tree that was never built
    raise ImportError(
        "the engine's compiled core (server/engine/core.pyx) is not built: install the project"
        " (pip install -e .) or run `make native`"
    ) from exc
from arbiter.server.engine.compile import PRODUCT, CNode, CompiledProgram
from arbiter.server.engine.errors import out_of_range
from arbiter.server.engine.money import div_half_up
from arbiter.server.engine.select import Selection
from arbiter.server.engine.types import OrderInput

__all__ = ["Entry", "Single", "State", "node_live"]

# What one benefit did on one line: (k, line, disc, pmon, ppts, acc, ship, text), where `line`
# is the line count for an order-wide entry. A plain tuple, read by unpacking: the engine builds
# hundreds per calculation, and a tuple display costs a fifth of a slotted object built with
# keywords (measured: 85 against 490 ns).
Entry = tuple[int, ...]


class State:
    """One state: price to pay and points money per line, budget per type, shipping left."""

    __slots__ = ("budget", "pay", "pm", "ship")

    def __init__(self, pay: list[int], pm: list[int], budget: list[int], ship: int) -> None:
        self.pay = pay
        self.pm = pm
        self.budget = budget
        self.ship = ship


def _copy(s: State) -> State:
    return State(s.pay.copy(), s.pm.copy(), s.budget.copy(), s.ship)


def node_live(node: CNode, promotion_live: list[bool], known: dict[int, bool]) -> bool:
    """Whether any promotion under `node` is eligible with a rule that applies (else the
    node's effect is empty); `known` keeps the answers for groups (by node id)."""
    if node.promotion >= 0:
        return promotion_live[node.promotion]
    key = id(node)
    hit = known.get(key)
    if hit is None:
        hit = any(node_live(c, promotion_live, known) for c in node.children)
        known[key] = hit
    return hit


class Single:
    """The tree of one calculation on one state, as Python values, evaluated by the typed
    core."""

    # One per calculation: slots, not an instance dictionary.
    __slots__ = (
        "_live",
        "accrues",
        "benefits",
        "budget",
        "level",
        "lines",
        "order",
        "order_lines",
        "pay_type",
        "point_types",
        "program",
        "selection",
        "shipping",
    )

    def __init__(
        self,
        program: CompiledProgram,
        order: OrderInput,
        selection: Selection,
        accrues: tuple[bool, ...],
        budget: list[int],
    ) -> None:
        self.program = program
        self.order = order
        self.order_lines = order.lines
        self.selection = selection
        self.accrues = accrues
        # The initial state's points budget per type and shipping (`initial()`).
        self.budget = budget
        self.shipping = order.shipping_cost
        self.lines = len(order.lines)
        self.benefits = program.benefits
        self.point_types = program.point_types
        self.level = program.benefit_levels
        self.pay_type = program.pay_types
        self._live: dict[int, bool] | None = None  # groups' liveness, once asked

    # The lines' base prices, as a list: made only when asked (the typed core reads the
    # order's lines itself).
    @property
    def base(self) -> list[int]:
        # Unit base prices are given: no rounding (rule 11).
        return [line.quantity * line.unit_price for line in self.order_lines]

    def live(self, node: CNode) -> bool:
        promotion_live = self.selection.live
        if node.promotion >= 0:
            return promotion_live[node.promotion]
        if self._live is None:
            self._live = {}
        return node_live(node, promotion_live, self._live)

    def initial(self) -> State:
        """The state before the tree: base prices, no points money, the points budget per
        type, the whole shipping (a new one each call)."""
        return State(self.base, [0] * self.lines, list(self.budget), self.shipping)

    # --- states -----------------------------------------------------------------------------

    def apply(self, s: State, entries: list[Entry]) -> State:
        """A new state: `s` (left untouched) after `entries`."""
        owned = _copy(s)
        self.apply_in(owned, entries)
        return owned

    def apply_in(self, s: State, entries: list[Entry]) -> None:
        """`entries` applied to a state nobody else holds (a sequence's running state)."""
        pay = s.pay
        pm = s.pm
        budget = s.budget
        pay_type = self.pay_type
        lines = self.lines
        for k, line, disc, pmon, ppts, _acc, ship, _text in entries:
            if line < lines:
                if disc or pmon:
                    pay[line] = pay[line] - (disc + pmon)
                    if pmon:
                        pm[line] = pm[line] + pmon
                if ppts:
                    t = pay_type[k]
                    budget[t] = budget[t] - ppts
            elif ship:
                s.ship -= ship

    # --- nodes, cuts and values (the typed core) -------------------------------------------

    def evaluate(self, node: CNode, s: State) -> list[Entry]:
        """The effect of `node` on `s` (docs/rules.md, Arbitration)."""
        out = core.evaluate_entries(self, node, s)
        if out is None:
            raise out_of_range()
        return out

    def valid(self, entries: list[Entry], s: State) -> list[Entry]:
        """A sum of effects on `s` made valid (rule 6)."""
        if not entries:
            return entries
        out = core.valid(self, entries, s)
        if out is None:
            raise out_of_range()
        return out

    def limits(self, node: CNode, entries: list[Entry], s: State) -> list[Entry]:
        """A node's limits on what it adds (rule 11)."""
        if not entries or not node.has_limits:
            return entries
        out = core.limits(self, node, entries, s)
        if out is None:
            raise out_of_range()
        return out

    def _first_eligible(self, effects: list[list[Entry]]) -> list[Entry]:
        """INCOMPATIBLE: per line the first non-empty PRODUCT effect, and the first non-empty
        ORDER effect taken whole (rules 4, 5). Entries are never empty."""
        level = self.level
        taken: set[int] = set()
        order_taken = False
        out: list[Entry] = []
        for ce in effects:
            if not ce:
                continue
            product_lines = {x[1] for x in ce if level[x[0]] == PRODUCT}
            order_any = any(level[x[0]] != PRODUCT for x in ce)
            win_order = order_any and not order_taken
            for x in ce:
                if level[x[0]] == PRODUCT:
                    if x[1] not in taken:
                        out.append(x)
                elif win_order:
                    out.append(x)
            taken |= product_lines
            order_taken = order_taken or order_any
        return out

    def _benefit_of(self, entries: list[Entry]) -> int:
        """A candidate's benefit (docs/rules.md): money, plus each type's points valued on their
        sum (rule 12)."""
        money = 0
        points: dict[int, int] = {}
        benefits = self.benefits
        for k, _line, disc, pmon, _ppts, acc, ship, _text in entries:
            money += disc + pmon + ship
            if acc:
                t = benefits[k].point_type
                points[t] = points.get(t, 0) + acc
        for t, pts in points.items():
            ratio = self.point_types[t]
            money += div_half_up(pts * ratio.ratio_money, ratio.ratio_points)
        return money
