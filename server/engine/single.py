"""The tree on one state, for the decision trace and the fallback (docs/engine.md).

A state is a few lists of integers (price to pay and points money per line, budget per type,
shipping left) and an effect is a list of `Entry`, one per (benefit, line) that changes
something. Every node, benefit and cut is evaluated by the typed core (`core.pyx`); this module
hands it states and entries as Python values, for the decision trace (`trace.py`), which walks
the tree node by node. Only when the core declines (an amount too large for its integers) does
the batched evaluator (`Arbiter`, numpy) answer instead.
"""

from __future__ import annotations

import numpy as np

try:
    from arbiter.server.engine import core
except ImportError as exc:  # a source tree that was never built
    raise ImportError(
        "the engine's compiled core (server/engine/core.pyx) is not built: install the project"
        " (pip install -e .) or run `make native`"
    ) from exc
from arbiter.server.engine.arbitrate import Arbiter, node_live
from arbiter.server.engine.benefits import OrderContext
from arbiter.server.engine.compile import PRODUCT, CNode, CompiledProgram
from arbiter.server.engine.money import div_half_up
from arbiter.server.engine.select import Selection
from arbiter.server.engine.state import Effect, Statics, Summary, apply_limits, make_valid
from arbiter.server.engine.types import OrderInput

__all__ = ["Entry", "Single", "State", "from_dense"]

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

    def summary(self) -> Summary:
        return Summary(
            np.array([self.pay], dtype=np.int64).reshape(1, -1),
            np.array([self.pm], dtype=np.int64).reshape(1, -1),
            np.array([self.budget], dtype=np.int64).reshape(1, -1),
            np.array([self.ship], dtype=np.int64),
        )


def _copy(s: State) -> State:
    return State(s.pay.copy(), s.pm.copy(), s.budget.copy(), s.ship)


def from_dense(e: Effect, lo: int) -> list[Entry]:
    """The entries of a batch of one state's effect whose benefit axis starts at `lo`."""
    disc = e.disc[0]
    pmon = e.pmon[0]
    ppts = e.ppts[0]
    acc = e.acc[0]
    text = e.text[0]
    ship = e.ship[0]
    lines = disc.shape[1]
    mask = (acc != 0) | text
    mask[:, :lines] |= (disc != 0) | (pmon != 0) | (ppts != 0)
    mask[:, lines] |= ship != 0
    cols, where = np.nonzero(mask)
    out: list[Entry] = []
    if not cols.size:
        return out
    d = disc.tolist()
    pm = pmon.tolist()
    pp = ppts.tolist()
    ac = acc.tolist()
    tx = text.tolist()
    sh = ship.tolist()
    for c, line in zip(cols.tolist(), where.tolist(), strict=True):
        if line < lines:
            out.append(
                (lo + c, line, d[c][line], pm[c][line], pp[c][line], ac[c][line], 0, tx[c][line])
            )
        else:
            out.append((lo + c, line, 0, 0, 0, ac[c][line], sh[c], tx[c][line]))
    return out


def to_dense(entries: list[Entry], lo: int, k: int, lines: int) -> Effect:
    e = Effect.zeros(1, k, lines)
    for k, line, disc, pmon, ppts, acc, ship, text in entries:
        c = k - lo
        if line < lines:
            e.disc[0, c, line] = disc
            e.pmon[0, c, line] = pmon
            e.ppts[0, c, line] = ppts
        else:
            e.ship[0, c] = ship
        e.acc[0, c, line] = acc
        e.text[0, c, line] = text
    return e


class Single:
    """The tree of one calculation on one state, as Python values: evaluated by the typed core,
    or, when it declines, by the batched `Arbiter` (built, with its arrays, only when needed)."""

    # One per calculation: slots, not an instance dictionary.
    __slots__ = (
        "_arb",
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
        self._arb: Arbiter | None = None

    # The lines' quantities, unit prices and base prices, as lists: made only when asked (the
    # typed core reads the order's lines itself).
    @property
    def q(self) -> list[int]:
        return [line.quantity for line in self.order_lines]

    @property
    def base_unit(self) -> list[int]:
        return [line.unit_price for line in self.order_lines]

    @property
    def base(self) -> list[int]:
        # Unit base prices are given: no rounding (rule 11).
        return [line.quantity * line.unit_price for line in self.order_lines]

    @property
    def arb(self) -> Arbiter:
        """The batched evaluator of this calculation (its arrays built on first use)."""
        if self._arb is None:
            q = np.array(self.q, dtype=np.int64)
            unit = np.array(self.base_unit, dtype=np.int64)
            base = q * unit
            program = self.program
            statics = Statics(
                base=base,
                quantity=q,
                base_unit=unit,
                pay_onehot=program.pay_type_onehot,
                acc_onehot=program.acc_type_onehot,
                ratio_points=program.ratio_points,
                ratio_money=program.ratio_money,
                pay_type=program.pay_type,
            )
            ctx = OrderContext(
                program=program,
                order=self.order,
                lines=self.lines,
                quantity=q,
                base=base,
                selection=self.selection,
                accrues=self.accrues,
            )
            self._arb = Arbiter(ctx, statics)
        return self._arb

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
            return from_dense(self.arb.evaluate(node, s.summary()), node.lo)
        return out

    def valid(self, entries: list[Entry], s: State, lo: int, hi: int) -> list[Entry]:
        """A sum of effects on `s` made valid (rule 6)."""
        if not entries:
            return entries
        out = core.valid(self, entries, s)
        if out is None:
            dense = to_dense(entries, lo, hi - lo, self.lines)
            make_valid(dense, s.summary(), self.arb.st, lo)
            return from_dense(dense, lo)
        return out

    def limits(self, node: CNode, entries: list[Entry], s: State) -> list[Entry]:
        """A node's limits on what it adds (rule 11)."""
        if not entries or not node.has_limits:
            return entries
        out = core.limits(self, node, entries, s)
        if out is None:
            dense = to_dense(entries, node.lo, node.hi - node.lo, self.lines)
            apply_limits(
                dense,
                s.summary(),
                self.arb.st,
                node.lo,
                node.max_discount_bp,
                node.max_discount_amount,
                node.min_unit_price,
                node.min_unit_price_bp,
            )
            return from_dense(dense, node.lo)
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
