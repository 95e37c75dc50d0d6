"""The arbitration tree (docs/rules.md): promotions and the four group modes, with plain loops.

Every node is a function from a state to an effect relative to that state, already made valid
(rule 6) and limited (rule 11).
"""

from ._benefits import evaluate_benefit
from ._program import (
    MODE_INCOMPATIBLE,
    MODE_MAX_BENEFIT,
    MODE_SUMMATION,
    GroupInfo,
    PromotionInfo,
)
from ._state import (
    Calc,
    Effect,
    Out,
    State,
    apply_effect,
    apply_limits,
    line_caps,
    make_out,
    make_valid,
    measure,
    measure_bound,
    union,
)

Node = int | GroupInfo

# A MAX_BENEFIT candidate's rank: (-benefit, subset size, sorted child positions, 0 sum / 1 seq).
_Rank = tuple[int, int, tuple[int, ...], int]


class Arbiter:
    """Evaluates the tree of one calculation."""

    def __init__(self, calc: Calc) -> None:
        self.calc = calc

    # --- promotions -------------------------------------------------------------------------

    def _active_benefits(self, promotion: PromotionInfo) -> list[tuple[int, tuple[int, ...]]]:
        """Rule 13 order: (benefit index, lines it acts on) of the rules that apply."""
        calc = self.calc
        all_lines = tuple(range(calc.line_count))
        out: list[tuple[int, tuple[int, ...]]] = []
        for position, product_rule in enumerate(promotion.product_rules):
            lines = calc.product_rule_lines.get((promotion.index, position))
            if lines:
                out.extend((index, lines) for index in product_rule.benefits)
        for position, order_rule in enumerate(promotion.order_rules):
            if calc.order_rule_ok.get((promotion.index, position), False):
                out.extend((index, all_lines) for index in order_rule.benefits)
        return out

    def promotion(self, index: int, state: State) -> Effect:
        calc = self.calc
        if index not in calc.eligible:
            return {}
        promotion = calc.prog.promotions[index]
        effect: Effect = {}
        if promotion.sequential:
            current = state
            for benefit, lines in self._active_benefits(promotion):
                out = evaluate_benefit(calc, calc.benefits[benefit], lines, current)
                if out is not None:
                    effect[benefit] = out
                    current = apply_effect(calc, current, {benefit: out})
            return effect
        for benefit, lines in self._active_benefits(promotion):
            out = evaluate_benefit(calc, calc.benefits[benefit], lines, state)
            if out is not None:
                effect[benefit] = out
        return make_valid(calc, state, effect)

    # --- groups -----------------------------------------------------------------------------

    def node(self, node: Node, state: State) -> Effect:
        if isinstance(node, GroupInfo):
            return self.group(node, state)
        return self.promotion(node, state)

    def group(self, group: GroupInfo, state: State) -> Effect:
        calc = self.calc
        if group.mode == MODE_MAX_BENEFIT:
            return self._max_benefit(group, state)
        if group.mode == MODE_INCOMPATIBLE:
            effects = [self.node(child, state) for child in group.children]
            effect = make_valid(calc, state, self._first_eligible(effects))
        elif group.mode == MODE_SUMMATION:
            effects = [self.node(child, state) for child in group.children]
            effect = make_valid(calc, state, union(effects))
        else:  # SEQUENTIAL (a main arbitration without promotions has no mode)
            effect = {}
            current = state
            for child in group.children:
                child_effect = self.node(child, current)
                if child_effect:
                    current = apply_effect(calc, current, child_effect)
                    effect = union((effect, child_effect))
        return apply_limits(calc, state, effect, group.limits)

    def _first_eligible(self, effects: list[Effect]) -> Effect:
        """INCOMPATIBLE (rules 4, 5): per line the PRODUCT-level effect of the first child with a
        non-empty PRODUCT-level effect on it; the ORDER-level effect of the first child with one,
        whole."""
        benefits = self.calc.benefits
        line_winner: dict[int, int] = {}
        order_winner: int | None = None
        for child, effect in enumerate(effects):
            for index, out in effect.items():
                if benefits[index].level == "product":
                    for line in out.lines():
                        line_winner.setdefault(line, child)
                elif order_winner is None:
                    order_winner = child
        combined: Effect = {}
        for child, effect in enumerate(effects):
            for index, out in effect.items():
                if benefits[index].level == "order":
                    if child == order_winner:
                        combined[index] = out
                    continue
                kept = _restrict(out, {n for n in out.lines() if line_winner.get(n) == child})
                if kept is not None:
                    combined[index] = kept
        return combined

    def _max_benefit(self, group: GroupInfo, state: State) -> Effect:
        """MAX_BENEFIT (rule 12, docs/rules.md): every non-empty subset of the children with a
        non-empty effect on ``state``, summed and applied in tree order; the group's limits on each;
        the greatest benefit wins, ties to fewer children, the smaller positions, then summation."""
        calc = self.calc
        children: list[tuple[int, Node, Effect]] = []
        for position, child in enumerate(group.children):
            effect = self.node(child, state)
            if effect:
                children.append((position, child, effect))
        best: list[tuple[_Rank, Effect]] = []
        limits = group.limits
        caps = line_caps(calc, state, limits)

        def consider(
            candidate: Effect, positions: tuple[int, ...], sequential: int, summed: bool
        ) -> None:
            if best:
                # A shortcut, not a rule: rule 6 and the limits never raise a candidate's
                # benefit above this bound, so a candidate whose bound ranks after the best
                # found so far cannot win and is not worked out.
                bound = measure_bound(calc, state, candidate, limits, caps)
                if (-bound, len(positions), positions, sequential) > best[0][0]:
                    return
            if summed:
                candidate = make_valid(calc, state, candidate)
            limited = apply_limits(calc, state, candidate, limits, caps)
            rank: _Rank = (-measure(calc, limited), len(positions), positions, sequential)
            if not best:
                best.append((rank, limited))
            elif rank < best[0][0]:
                best[0] = (rank, limited)

        def visit(
            start: int,
            positions: tuple[int, ...],
            raw_sum: Effect,
            seq_state: State,
            seq_effect: Effect,
        ) -> None:
            for j in range(start, len(children)):
                position, child, effect = children[j]
                subset = (*positions, position)
                summed = union((raw_sum, effect))
                if not positions:
                    consider(effect, subset, 0, summed=False)
                    next_effect = effect
                    next_state = apply_effect(calc, state, effect)
                else:
                    consider(summed, subset, 0, summed=True)
                    step = self.node(child, seq_state)
                    next_effect = union((seq_effect, step))
                    next_state = apply_effect(calc, seq_state, step)
                    consider(next_effect, subset, 1, summed=False)
                visit(j + 1, subset, summed, next_state, next_effect)

        visit(0, (), {}, state, {})
        return best[0][1] if best else {}


def _restrict(out: Out, lines: set[int]) -> Out | None:
    return make_out(
        {line: v for line, v in out.money.items() if line in lines},
        {line: v for line, v in out.points.items() if line in lines},
        (line for line in out.text if line in lines),
    )
