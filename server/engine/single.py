"""The tree on one state: plain integers and sparse effects (docs/rules.md).

Outside MAX_BENEFIT the engine evaluates every node on exactly one state, where a numpy call
per step costs more than the arithmetic it does (a call on 20 elements is about a microsecond).
Here a state is a few lists of Python integers and an effect is a list of `Entry`, one per
(benefit, line) that changes something, so a promotion that touches two lines costs two
entries. The rules are the batched engine's:

- every benefit is computed here with the batched code's integer formulas (`benefits.py`);
- rule 6 (making a sum valid) and rule 11 (limits) are first checked here; only an effect that
  needs a cut goes through the batched cuts (`state.make_valid`, `state.apply_limits`);
- a MAX_BENEFIT group (vectorised over its candidates) is evaluated by the batched `Arbiter`.

The property tests hold this path, with the batched one beneath it, to the reference evaluator.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

import numpy as np

try:
    from arbiter.server.engine import core
except ImportError as exc:  # a source tree that was never built
    raise ImportError(
        "the engine's compiled core (server/engine/core.pyx) is not built: install the project"
        " (pip install -e .) or run `make native`"
    ) from exc
from arbiter.server.engine.arbitrate import Arbiter, node_live
from arbiter.server.engine.benefits import ROUND_STEP, OrderContext
from arbiter.server.engine.compile import (
    ACCRUAL_KINDS,
    INCOMPATIBLE,
    MAX_BENEFIT,
    PRODUCT,
    SEQUENTIAL,
    CBenefit,
    CNode,
    CompiledProgram,
    candidate_plan,
)
from arbiter.server.engine.money import apportion, by_unit_price, div_half_up, round_bp, total_of
from arbiter.server.engine.select import Selection
from arbiter.server.engine.state import Effect, Statics, Summary, apply_limits, make_valid
from arbiter.server.engine.types import OrderInput

__all__ = ["ENUMERATE_UP_TO", "Entry", "Single", "State", "from_dense"]

# MAX_BENEFIT groups with at most this many non-empty children (11 candidates) are enumerated on
# one state; wider ones are searched in batches.
ENUMERATE_UP_TO: Final = 3



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


@lru_cache(maxsize=ENUMERATE_UP_TO + 1)
def _plan(n: int) -> tuple[tuple[int, bool, tuple[int, ...]], ...]:
    """`candidate_plan(n)` as plain tuples: (mask, sequential, the children in the subset)."""
    plan = candidate_plan(n)
    return tuple(
        (mask, sequential, tuple(i for i in range(n) if mask >> i & 1))
        for mask, sequential in zip(plan.masks.tolist(), plan.sequential.tolist(), strict=True)
    )


class Single:
    """Evaluates the tree of one calculation on one state, delegating to the batched `Arbiter`
    where the batched form is the right one (built, with its arrays, only when needed)."""

    def __init__(
        self,
        program: CompiledProgram,
        order: OrderInput,
        selection: Selection,
        accrues: tuple[bool, ...],
    ) -> None:
        self.program = program
        self.order = order
        self.order_lines = order.lines
        self.selection = selection
        self.accrues = accrues
        self.lines = len(order.lines)
        self.benefits = program.benefits
        self.promotions = program.promotions
        self.point_types = program.point_types
        self.level = program.benefit_levels
        self.pay_type = program.pay_types
        self.promotion_live = selection.live
        self.q = [line.quantity for line in order.lines]
        self.base_unit = [line.unit_price for line in order.lines]
        # Unit base prices are given: no rounding (rule 11).
        self.base = [q * unit for q, unit in zip(self.q, self.base_unit, strict=True)]
        self._live: dict[int, bool] = {}
        self._arb: Arbiter | None = None

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
        if node.promotion >= 0:
            return self.promotion_live[node.promotion]
        return node_live(node, self.promotion_live, self._live)

    def initial(self, budget: list[int], shipping: int) -> State:
        return State(list(self.base), [0] * self.lines, budget, shipping)

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

    # --- nodes ------------------------------------------------------------------------------

    def evaluate(self, node: CNode, s: State) -> list[Entry]:
        if node.promotion >= 0:
            if not self.promotion_live[node.promotion]:
                return []
            return self._promotion(node, s)
        if not node_live(node, self.promotion_live, self._live):
            return []
        mode = node.mode
        if mode == MAX_BENEFIT:
            return self._max_benefit(node, s)
        if mode == SEQUENTIAL:
            out = self._sequence(node.children, s)
        else:
            effects = [self.evaluate(child, s) for child in node.children]
            if mode == INCOMPATIBLE:
                out = self._first_eligible(effects)
            else:  # SUMMATION
                out = [x for ce in effects for x in ce]
            out = self.valid(out, s, node.lo, node.hi)
        if node.has_limits and out:
            out = self.limits(node, out, s)
        return out

    def _sequence(self, children: tuple[CNode, ...], s: State) -> list[Entry]:
        """Children one after another, each on the state the previous ones left (docs/rules.md).

        The running state is copied from `s` once, at the first effect, then updated in place
        (`_then`). A live promotion with one benefit (most of a real program) goes straight to
        its benefit."""
        out: list[Entry] = []
        cur = s
        live = self.promotion_live
        benefits = self.benefits
        for child in children:
            p = child.promotion
            if p >= 0:
                if not live[p]:
                    continue
                if child.hi - child.lo == 1:
                    ce = self.benefit(benefits[child.lo], cur)
                else:
                    ce = self._promotion(child, cur)
            else:
                ce = self.evaluate(child, cur)
            if ce:
                cur = self._then(s, cur, out, ce)
        return out

    def _then(self, s: State, cur: State, out: list[Entry], effect: list[Entry]) -> State:
        """`effect` added to `out` and applied to `cur`, the running state of a sequence that
        started on `s` (copied at its first effect, updated in place after); the new `cur`."""
        out += effect
        if cur is s:
            cur = _copy(s)
        self.apply_in(cur, effect)
        return cur

    def _promotion(self, node: CNode, s: State) -> list[Entry]:
        if node.hi - node.lo == 1:
            return self.benefit(self.benefits[node.lo], s)
        out: list[Entry] = []
        if self.promotions[node.promotion].sequential:
            cur = s
            for j in range(node.lo, node.hi):
                one = self.benefit(self.benefits[j], cur)
                if one:
                    cur = self._then(s, cur, out, one)
            return out
        for j in range(node.lo, node.hi):
            out += self.benefit(self.benefits[j], s)
        # One benefit's effect is valid by construction; a sum is made valid (rule 6).
        return self.valid(out, s, node.lo, node.hi)

    def _reads(self, node: CNode) -> tuple[set[int] | None, set[int], bool]:
        """What a subtree's effect can depend on: the lines its applying rules match (None:
        every line, for an order rule), the point types it pays with, the shipping."""
        lines: set[int] | None = set()
        types: set[int] = set()
        ship = False
        active = self.selection.rule_active
        for b in self.benefits[node.lo : node.hi]:
            if not active[b.rule_gid]:
                continue
            if b.kind == "pay_with_points":
                types.add(b.point_type)
            if b.level == PRODUCT:
                if lines is not None:
                    lines.update(self.selection.rule_lines(b.rule_gid))
            else:
                lines = None
                ship = ship or b.kind == "shipping_discount"
        return lines, types, ship

    def _max_benefit(self, node: CNode, s: State) -> list[Entry]:
        """MAX_BENEFIT (rule 12, docs/rules.md) on one state.

        The children are evaluated on `s` first; a child with an empty effect takes part in
        no subset. Then, in this order: children that cannot affect one another are valued
        alone (`_independent_best`); at most ENUMERATE_UP_TO children have their few
        candidates built one by one (`_enumerated_best`: fewer steps than setting up batches);
        wider groups run the batched, vectorised search of `Arbiter`."""
        children: list[tuple[CNode, list[Entry]]] = []
        for child in node.children:
            if self.live(child):
                effect = self.evaluate(child, s)
                if effect:
                    children.append((child, effect))
        if not children:
            return []
        searched = core.max_benefit(self, node, s, children)
        if searched is not None:
            return searched
        best = self._independent_best(node, s, children)
        if best is not None:
            return best
        if len(children) <= ENUMERATE_UP_TO:
            return self._enumerated_best(node, s, children)
        return from_dense(self.arb.evaluate(node, s.summary()), node.lo)

    def _value(self, entries: list[Entry]) -> tuple[int, dict[int, int]]:
        """Money of a candidate's entries, and its accrued points per type."""
        money = 0
        points: dict[int, int] = {}
        benefits = self.benefits
        for k, _line, disc, pmon, _ppts, acc, ship, _text in entries:
            money += disc + pmon + ship
            if acc:
                t = benefits[k].point_type
                points[t] = points.get(t, 0) + acc
        return money, points

    def _benefit_of(self, entries: list[Entry]) -> int:
        """A candidate's benefit (docs/rules.md): money, plus each type's points valued on their sum
        (rule 12)."""
        money, points = self._value(entries)
        for t, pts in points.items():
            ratio = self.point_types[t]
            money += div_half_up(pts * ratio.ratio_money, ratio.ratio_points)
        return money

    def _enumerated_best(
        self, node: CNode, s: State, children: list[tuple[CNode, list[Entry]]]
    ) -> list[Entry]:
        """Every candidate (docs/rules.md) in tie-break order (`candidate_plan`); the first with the
        greatest benefit wins."""
        # The sequential application of every subset, by mask, as it is built; the state after
        # one is made only when a larger candidate starts from it.
        after: dict[int, list[Entry]] = {}
        best: list[Entry] = []
        best_value: int | None = None
        limited = node.has_limits
        for mask, sequential, members in _plan(len(children)):
            if sequential:
                # Candidates come by size, so every prefix (the subset less its last child)
                # has been built already.
                entries = after[mask & ~(1 << members[-1])]
                step = self.evaluate(children[members[-1]][0], self.apply(s, entries))
                candidate = entries + step
                after[mask] = candidate
            elif len(members) == 1:
                candidate = children[members[0]][1]
                after[mask] = candidate
            else:
                summed = [x for i in members for x in children[i][1]]
                candidate = self.valid(summed, s, node.lo, node.hi)
            if limited and candidate:
                candidate = self.limits(node, candidate, s)
            value = self._benefit_of(candidate)
            if best_value is None or value > best_value:
                best_value, best = value, candidate
        return best

    def _independent_best(
        self, node: CNode, s: State, children: list[tuple[CNode, list[Entry]]]
    ) -> list[Entry] | None:
        """MAX_BENEFIT when no child can change what another reads (None otherwise).

        Children with disjoint lines, point types and shipping give every subset the same
        effect applied in sequence or summed (each child sees `s` on all it reads; no sum
        needs a cut), and a subset's benefit is the sum of its children's, each limited alone
        (per-line limits; `max_discount_amount` couples lines and is left to the batched
        search). Accrued points are valued per type on the sum (rule 12), which adds up only
        when a point is worth whole money units, or when one child accrues the type. The
        greatest sum is then the set of children worth more than 0, and no smaller subset
        reaches it; with none, the single child worth most, the first on a tie (docs/rules.md)."""
        if node.max_discount_amount:
            return None
        taken_lines: set[int] = set()
        all_lines = False
        taken_types: set[int] = set()
        ship_taken = False
        accruing: dict[int, int] = {}
        values: list[tuple[int, list[Entry]]] = []
        point_types = self.point_types
        for child, effect in children:
            lines, types, ship = self._reads(child)
            if lines is None:
                if all_lines or taken_lines:
                    return None
                all_lines = True
            else:
                if all_lines and lines:
                    return None
                if not taken_lines.isdisjoint(lines):
                    return None
                taken_lines |= lines
            if not taken_types.isdisjoint(types) or (ship and ship_taken):
                return None
            taken_types |= types
            ship_taken = ship_taken or ship
            if node.has_limits:
                effect = self.limits(node, effect, s)
            money, points = self._value(effect)
            for t, pts in points.items():
                accruing[t] = accruing.get(t, 0) + 1
                ratio = point_types[t]
                if accruing[t] > 1 and ratio.ratio_money % ratio.ratio_points:
                    return None
                money += div_half_up(pts * ratio.ratio_money, ratio.ratio_points)
            values.append((money, effect))
        if not values:
            return []
        gaining = [effect for value, effect in values if value > 0]
        if gaining:
            return [x for effect in gaining for x in effect]
        top = max(value for value, _ in values)
        return next(effect for value, effect in values if value == top)

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

    # --- rule 6 and rule 11: checked here, cut by the batched code --------------------------

    def valid(self, entries: list[Entry], s: State, lo: int, hi: int) -> list[Entry]:
        """A sum of effects on `s` made valid (rule 6)."""
        if not entries:
            return entries
        lines = self.lines
        pay_type = self.pay_type
        # What is left to pay, points and shipping as the entries are added up: amounts are
        # never negative (a negative discount goes to the cut), so one that goes below zero
        # stays there and the sum needs the cut.
        left = s.pay.copy()
        budget = s.budget.copy()
        ship = s.ship
        for k, line, disc, pmon, ppts, _acc, x_ship, _text in entries:
            if line < lines:
                if disc < 0:
                    return self._cut_valid(entries, s, lo, hi)
                if disc or pmon:
                    now_left = left[line] - (disc + pmon)
                    left[line] = now_left
                    if now_left < 0:
                        return self._cut_valid(entries, s, lo, hi)
                if ppts:
                    t = pay_type[k]
                    budget[t] = budget[t] - ppts
                    if budget[t] < 0:
                        return self._cut_valid(entries, s, lo, hi)
            elif x_ship:
                ship -= x_ship
                if ship < 0:
                    return self._cut_valid(entries, s, lo, hi)
        return entries

    def _cut_valid(self, entries: list[Entry], s: State, lo: int, hi: int) -> list[Entry]:
        dense = to_dense(entries, lo, hi - lo, self.lines)
        make_valid(dense, s.summary(), self.arb.st, lo)
        return from_dense(dense, lo)

    def limits(self, node: CNode, entries: list[Entry], s: State) -> list[Entry]:
        """A node's limits on what it adds (rule 11)."""
        lines = self.lines
        added: dict[int, int] = {}
        for _k, line, disc, pmon, _ppts, _acc, _ship, _text in entries:
            if line < lines and (disc or pmon):
                added[line] = added.get(line, 0) + disc + pmon
        if not added:
            return entries
        cut = False
        bp = node.max_discount_bp
        mup = node.min_unit_price
        mup_bp = node.min_unit_price_bp
        if bp or mup or mup_bp:
            pay = s.pay
            q = self.q
            base_unit = self.base_unit
            for line, a in added.items():
                # The line's cap: the least of the limits it has, never below 0.
                p = pay[line]
                cap = round_bp(p, bp) if bp else p
                if mup and p - q[line] * mup < cap:
                    cap = p - q[line] * mup
                if mup_bp and p - q[line] * round_bp(base_unit[line], mup_bp) < cap:
                    cap = p - q[line] * round_bp(base_unit[line], mup_bp)
                if a > cap and a > 0:
                    cut = True
                    break
        if not cut and node.max_discount_amount:
            cut = sum(added.values()) > node.max_discount_amount
        if not cut:
            return entries
        dense = to_dense(entries, node.lo, node.hi - node.lo, lines)
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

    # --- benefits ---------------------------------------------------------------------------

    def benefit(self, b: CBenefit, s: State) -> list[Entry]:
        """What benefit `b` does on `s` (docs/rules.md), as non-empty entries."""
        if not self.selection.rule_active[b.rule_gid]:
            return []
        if b.level == PRODUCT:
            return self._product(b, s, self.selection.rule_lines(b.rule_gid))
        return self._order(b, s)

    def _product(self, b: CBenefit, s: State, lines: list[int]) -> list[Entry]:
        k = b.index
        kind = b.kind
        pay = s.pay
        q = self.q
        out: list[Entry] = []
        if kind == "text":
            return [(k, line, 0, 0, 0, 0, 0, True) for line in lines]
        if kind in ACCRUAL_KINDS:
            if not self.accrues[b.point_type]:
                return out
            t = self.point_types[b.point_type]
            rp, rm = t.ratio_points, t.ratio_money
            if kind == "accrue_points":
                percent = b.value_kind == "percent_bp"
                for line in lines:
                    if percent:
                        pts = div_half_up(round_bp(pay[line], b.value) * rp, rm)
                    else:
                        pts = q[line] * b.value
                    if pts:
                        out.append((k, line, 0, 0, 0, pts, 0, False))
            elif kind == "accrue_per_spent":
                bases = [pay[line] for line in lines]
                total = (total_of(bases) // b.per_amount) * b.value
                shares = apportion(total, bases)
                for i in range(len(lines)):
                    pts = shares[i]
                    if pts:
                        out.append((k, lines[i], 0, 0, 0, pts, 0, False))
            elif kind == "accrue_from_field":
                order_lines = self.order_lines
                for line in lines:
                    # A negative field accrues nothing (accruals never take points back).
                    pts = max(order_lines[line].fields.get(b.field, 0), 0) * q[line]
                    if pts:
                        out.append((k, line, 0, 0, 0, pts, 0, False))
            else:  # partner_points
                order_lines = self.order_lines
                table = self.program.partner_points_bp
                for line in lines:
                    partner = order_lines[line].partner
                    bp = table.get(partner, 0) if partner in b.partners else 0
                    if bp > 0:
                        pts = div_half_up(round_bp(pay[line], bp) * rp, rm)
                        if pts:
                            out.append((k, line, 0, 0, 0, pts, 0, False))
            return out
        if kind == "pay_with_points":
            return self._pay_with_points(b, s, lines)
        if kind == "discount":
            value = b.value
            vk = b.value_kind
            if vk == "percent_bp" and not b.max_items:
                # The common case, without building each line's units.
                for line in lines:
                    d = round_bp(pay[line], value)
                    if d:
                        out.append((k, line, d, 0, 0, 0, 0, False))
                return out
            prices, units = self._units(b, pay, lines)
            for i in range(len(lines)):
                line = lines[i]
                p = prices[i]
                n = units[i]
                if vk == "percent_bp":
                    d = round_bp(p, value)
                elif vk == "amount":
                    d = min(value * n, p)
                else:  # fixed_price
                    d = max(p - value * n, 0)
                if d:
                    out.append((k, line, d, 0, 0, 0, 0, False))
            return out
        if kind == "price_from_field":
            order_lines = self.order_lines
            for line in lines:
                fields = order_lines[line].fields
                if b.field in fields:
                    unit = round_bp(fields[b.field], b.factor_bp)
                    d = max(pay[line] - unit * q[line], 0)
                    if d:
                        out.append((k, line, d, 0, 0, 0, 0, False))
            return out
        if kind == "round_price":
            step, floor = ROUND_STEP[b.round_mode]
            base = self.base
            pm = s.pm
            for line in lines:
                p = pay[line]
                qs = q[line] * step
                n_steps = p // qs if floor else (2 * p + qs) // (2 * qs)
                d = p - min(n_steps * qs, base[line] - pm[line])
                if d:
                    out.append((k, line, d, 0, 0, 0, 0, False))
            return out
        if kind == "partner_discount":
            order_lines = self.order_lines
            table = self.program.partner_discount_bp
            for line in lines:
                partner = order_lines[line].partner
                bp = table.get(partner, 0) if partner in b.partners else 0
                d = round_bp(pay[line], bp)
                if d:
                    out.append((k, line, d, 0, 0, 0, 0, False))
            return out
        raise AssertionError(f"benefit {kind} has no product-level form")

    def _units(self, b: CBenefit, pay: list[int], lines: list[int]) -> tuple[list[int], list[int]]:
        """Price to pay and units each matching line gives to `b`: all of them, or with
        `max_items` the most expensive units first (rules 1, 10)."""
        q = self.q
        if not b.max_items:
            return [pay[line] for line in lines], [q[line] for line in lines]
        ranked = by_unit_price([pay[line] for line in lines], [q[line] for line in lines])
        units = [0] * len(lines)
        left = b.max_items
        for i in ranked:
            if left <= 0:
                break
            units[i] = min(q[lines[i]], left)
            left -= units[i]
        prices = [div_half_up(pay[lines[i]] * units[i], q[lines[i]]) for i in range(len(lines))]
        return prices, units

    def _pay_with_points(self, b: CBenefit, s: State, lines: list[int]) -> list[Entry]:
        """Rule 8 at PRODUCT level."""
        budget = s.budget[b.point_type]
        if budget <= 0:
            return []
        t = self.point_types[b.point_type]
        rp, rm = t.ratio_points, t.ratio_money
        vk = b.value_kind
        value = b.value
        prices, units = self._units(b, s.pay, lines)
        caps_money: list[int] = []
        caps_pts: list[int] = []
        for i in range(len(prices)):
            p = prices[i]
            n = units[i]
            if vk == "percent_bp":
                cap = min(round_bp(p, value), p)
                pts = cap * rp // rm
            elif vk == "amount":
                cap = min(value * n, p)
                pts = cap * rp // rm
            else:  # points per unit
                cap = p
                pts = min(value * n, p * rp // rm)
            caps_money.append(cap)
            caps_pts.append(pts)
        if total_of(caps_pts) > budget:
            caps_pts = apportion(budget, caps_pts)
        out: list[Entry] = []
        for i in range(len(lines)):
            pts = caps_pts[i]
            money = min(div_half_up(pts * rm, rp), caps_money[i])
            if pts or money:
                out.append((b.index, lines[i], 0, money, pts, 0, 0, False))
        return out

    def _order_pay_with_points(self, b: CBenefit, s: State) -> list[Entry]:
        """Rule 8 at ORDER level: the order's cap in whole points, bounded by the budget,
        apportioned by the lines' prices to pay; what a line cannot hold is dropped."""
        budget = s.budget[b.point_type]
        if budget <= 0:
            return []
        t = self.point_types[b.point_type]
        rp, rm = t.ratio_points, t.ratio_money
        pay = s.pay
        total = total_of(pay)
        if b.value_kind == "percent_bp":
            cap = min(round_bp(total, b.value), total) * rp // rm
        elif b.value_kind == "amount":
            cap = min(b.value, total) * rp // rm
        else:
            cap = min(b.value, total * rp // rm)
        out: list[Entry] = []
        for line, pts in enumerate(apportion(min(cap, budget), pay)):
            money = div_half_up(pts * rm, rp)
            if money > pay[line]:
                pts = pay[line] * rp // rm
                money = min(div_half_up(pts * rm, rp), pay[line])
            if pts or money:
                out.append((b.index, line, 0, money, pts, 0, 0, False))
        return out

    def _order(self, b: CBenefit, s: State) -> list[Entry]:
        k = b.index
        kind = b.kind
        lines = self.lines
        if kind == "text":
            return [(k, lines, 0, 0, 0, 0, 0, True)]
        if kind == "shipping_discount":
            left = s.ship
            amount = round_bp(left, b.value) if b.value_kind == "percent_bp" else min(b.value, left)
            return [(k, lines, 0, 0, 0, 0, amount, False)] if amount else []
        pay = s.pay
        total = total_of(pay)
        if kind == "discount":
            if b.value_kind == "percent_bp":
                amount = round_bp(total, b.value)
            else:
                amount = min(b.value, total)
            return [
                (k, line, d, 0, 0, 0, 0, False)
                for line, d in enumerate(apportion(amount, pay))
                if d
            ]
        if kind in ("accrue_points", "accrue_per_spent"):
            if not self.accrues[b.point_type]:
                return []
            t = self.point_types[b.point_type]
            if kind == "accrue_points":
                if b.value_kind == "percent_bp":
                    pts = div_half_up(round_bp(total, b.value) * t.ratio_points, t.ratio_money)
                else:
                    pts = b.value
            else:
                pts = (total // b.per_amount) * b.value
            return [(k, lines, 0, 0, 0, pts, 0, False)] if pts else []
        if kind == "pay_with_points":
            return self._order_pay_with_points(b, s)
        raise AssertionError(f"benefit {kind} has no order-level form")
