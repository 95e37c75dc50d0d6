"""The arbitration tree (docs/rules.md): promotions, SEQUENTIAL, INCOMPATIBLE, SUMMATION,
MAX_BENEFIT.

A node maps a batch of states to its effect on each of them. MAX_BENEFIT is vectorised: the
sequential candidates are built child by child, child k evaluated once on the batch of states
of every subset of c1..c(k-1) (n batched calls, not 2^n); the summation candidates reuse each
child's effect on S (the empty prefix) and are masked together by a subset indicator; all
candidates are then made valid, limited and valued in bounded chunks.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from arbiter.server.engine.benefits import OrderContext, evaluate_benefit
from arbiter.server.engine.compile import (
    INCOMPATIBLE,
    MAX_BENEFIT,
    PRODUCT,
    SEQUENTIAL,
    SUMMATION,
    CandidatePlan,
    CNode,
    candidate_plan,
)
from arbiter.server.engine.money import mul_half_up_arr
from arbiter.server.engine.state import (
    Effect,
    Statics,
    Summary,
    apply_effect,
    apply_limits,
    line_caps,
    make_valid,
)

__all__ = ["NO_RUNNER_UP", "Arbiter", "node_live"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Candidates valued at once: bounds memory at about CHUNK * k * L entries per array.
CHUNK: Final = 512
# Candidates are ranked by an upper bound first when there are more than this many; the
# first exact chunk is small and chunks double from there.
PRUNE_FROM: Final = 16
FIRST_CHUNK: Final = 16
# Subsets whose bounds are computed at once.
BOUND_BLOCK: Final = 256
_NEG = np.iinfo(np.int64).min
NO_RUNNER_UP: Final = int(_NEG)


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


class Arbiter:
    """Evaluates the tree of one compiled program for one order."""

    def __init__(self, ctx: OrderContext, statics: Statics) -> None:
        self.ctx = ctx
        self.st = statics
        self.lines = ctx.lines
        self.promotion_live = ctx.selection.live
        self.benefits = ctx.program.benefits
        self.levels = ctx.program.benefit_level
        self._live: dict[int, bool] = {}
        # Set by the decision trace only (trace.py): each MAX_BENEFIT group (by node id) then
        # keeps its number of candidates, the best value of a candidate other than the winner
        # (exact: a candidate is valued while its bound could reach it; NO_RUNNER_UP when there
        # is none) and the winner's index in `candidate_plan`. None on every calculation's path:
        # one test per MAX_BENEFIT group.
        self.valuations: dict[int, tuple[int, int, int]] | None = None

    def live(self, node: CNode) -> bool:
        return node_live(node, self.promotion_live, self._live)

    def evaluate(self, node: CNode, s: Summary) -> Effect:
        k = node.hi - node.lo
        if not self.live(node):
            return Effect.zeros(s.n, k, self.lines)
        if node.promotion >= 0:
            return self._promotion(node, s)
        if node.mode == SEQUENTIAL:
            e = self._sequential(node, s)
        elif node.mode == MAX_BENEFIT:
            return self._max_benefit(node, s)
        else:
            e = Effect.zeros(s.n, k, self.lines)
            effects = [self.evaluate(c, s) for c in node.children]
            if node.mode == INCOMPATIBLE:
                self._first_eligible(node, effects, e)
            else:
                assert node.mode == SUMMATION, node.mode
                for child, ce in zip(node.children, effects, strict=True):
                    e.put(child.lo - node.lo, ce)
            make_valid(e, s, self.st, node.lo)
        self._limits(node, e, s)
        return e

    def _limits(self, node: CNode, e: Effect, s: Summary) -> None:
        if node.has_limits:
            apply_limits(
                e,
                s,
                self.st,
                node.lo,
                node.max_discount_bp,
                node.max_discount_amount,
                node.min_unit_price,
                node.min_unit_price_bp,
            )

    def _onehot(self, lo: int, hi: int) -> IntArray:
        return self.st.pay_onehot[lo:hi]

    def _promotion(self, node: CNode, s: Summary) -> Effect:
        promotion = self.ctx.program.promotions[node.promotion]
        k = node.hi - node.lo
        e = Effect.zeros(s.n, k, self.lines)
        if promotion.sequential:
            cur = s
            for j in range(k):
                one = Effect.zeros(s.n, 1, self.lines)
                evaluate_benefit(self.benefits[node.lo + j], self.ctx, cur, one, 0)
                e.put(j, one)
                cur = apply_effect(cur, one, self._onehot(node.lo + j, node.lo + j + 1))
            return e
        for j in range(k):
            evaluate_benefit(self.benefits[node.lo + j], self.ctx, s, e, j)
        if k > 1:
            # One benefit's effect is valid by construction (bounded by the price to pay, the
            # budget and the shipping left); a sum of several is made valid (rule 6).
            make_valid(e, s, self.st, node.lo)
        return e

    def _sequential(self, node: CNode, s: Summary) -> Effect:
        e = Effect.zeros(s.n, node.hi - node.lo, self.lines)
        cur = s
        for child in node.children:
            ce = self.evaluate(child, cur)
            e.put(child.lo - node.lo, ce)
            cur = apply_effect(cur, ce, self._onehot(child.lo, child.hi))
        return e

    def _first_eligible(self, node: CNode, effects: list[Effect], e: Effect) -> None:
        """INCOMPATIBLE: per line the first non-empty PRODUCT effect, and the first non-empty
        ORDER effect taken whole (rules 4, 5)."""
        n = e.disc.shape[0]
        taken_line = np.zeros((n, self.lines + 1), dtype=np.bool_)
        taken_order = np.zeros(n, dtype=np.bool_)
        for child, ce in zip(node.children, effects, strict=True):
            levels = self.levels[child.lo : child.hi]
            product = levels == PRODUCT
            nonempty = ce.nonempty_lines()  # [N, k, L+1]
            prod_lines = (nonempty & product[None, :, None]).any(axis=1)  # [N, L+1]
            order_any = (nonempty & ~product[None, :, None]).any(axis=(1, 2))  # [N]
            win_line = prod_lines & ~taken_line
            win_order = order_any & ~taken_order
            keep = np.where(
                product[None, :, None], win_line[:, None, :], win_order[:, None, None]
            )  # [N, k, L+1]
            taken_line |= prod_lines
            taken_order |= order_any
            lo = child.lo - node.lo
            hi = child.hi - node.lo
            kl = keep[:, :, :-1]
            e.disc[:, lo:hi] = np.where(kl, ce.disc, 0)
            e.pmon[:, lo:hi] = np.where(kl, ce.pmon, 0)
            e.ppts[:, lo:hi] = np.where(kl, ce.ppts, 0)
            e.acc[:, lo:hi] = np.where(keep, ce.acc, 0)
            e.text[:, lo:hi] = keep & ce.text
            e.ship[:, lo:hi] = np.where(win_order[:, None] & ~product[None, :], ce.ship, 0)

    # MAX_BENEFIT ---------------------------------------------------------------------------

    def _max_benefit(self, node: CNode, s: Summary) -> Effect:
        # A child with no live promotion is empty on every state: it takes part in no subset
        # (rule 12). Dropping it keeps the candidates' order: positions stay increasing.
        children = tuple(c for c in node.children if self.live(c))
        n_children = len(children)
        k = node.hi - node.lo
        n = s.n
        result = Effect.zeros(n, k, self.lines)
        if n_children == 0:
            return result
        plan = candidate_plan(n_children)
        acc_onehot = self.st.acc_onehot
        types = self.st.ratio_points.size
        # Sequential build: the state after every subset of c1..ci applied in tree order, as one
        # batch per child (child i runs once on the 2^i prefix states). Index = subset mask.
        full = 1 << n_children
        lines = self.lines
        prefix_pay = np.empty((n, full, lines), dtype=np.int64)
        prefix_pm = np.empty((n, full, lines), dtype=np.int64)
        prefix_budget = np.empty((n, full, s.budget.shape[1]), dtype=np.int64)
        prefix_ship = np.empty((n, full), dtype=np.int64)
        prefix_acc = np.zeros((n, full, types), dtype=np.int64)
        prefix_pay[:, 0] = s.pay
        prefix_pm[:, 0] = s.pts_money
        prefix_budget[:, 0] = s.budget
        prefix_ship[:, 0] = s.ship_left
        child_effects: list[Effect] = []  # child i on [N * 2^i] prefix states
        for i, child in enumerate(children):
            width = 1 << i
            batch = Summary(
                prefix_pay[:, :width].reshape(n * width, -1),
                prefix_pm[:, :width].reshape(n * width, -1),
                prefix_budget[:, :width].reshape(n * width, -1),
                prefix_ship[:, :width].reshape(n * width),
            )
            ce = self.evaluate(child, batch)
            child_effects.append(ce)
            after = apply_effect(batch, ce, self._onehot(child.lo, child.hi))
            acc = ce.acc.sum(axis=2) @ acc_onehot[child.lo : child.hi]  # [N * 2^i, T]
            upper = slice(width, 2 * width)
            prefix_pay[:, upper] = after.pay.reshape(n, width, -1)
            prefix_pm[:, upper] = after.pts_money.reshape(n, width, -1)
            prefix_budget[:, upper] = after.budget.reshape(n, width, -1)
            prefix_ship[:, upper] = after.ship_left.reshape(n, width)
            prefix_acc[:, upper] = prefix_acc[:, :width] + acc.reshape(n, width, -1)
        # A child whose effect on S is empty takes part in no subset (rule 12).
        on_s = np.stack(
            [
                ce.take(np.arange(n, dtype=np.int64) << i).nonempty_lines().any(axis=(1, 2))
                for i, ce in enumerate(child_effects)
            ],
            axis=1,
        )  # [N, n_children]
        empty_bits = (~on_s).astype(np.int64) @ (1 << np.arange(n_children, dtype=np.int64))
        for row in range(n):
            allowed = (plan.masks & empty_bits[row]) == 0
            s_row = s.take(np.array([row], dtype=np.int64))
            cand_idx = np.flatnonzero(allowed)
            bounds: IntArray | None = None
            valuations = self.valuations
            count = cand_idx.size
            runner_up = _NEG  # traced only: the best value of a candidate other than the best
            valued_idx: list[IntArray] = []
            valued_values: list[IntArray] = []
            if cand_idx.size > PRUNE_FROM and self._bounded(child_effects, row):
                bounds = self._bounds(
                    node,
                    children,
                    plan,
                    cand_idx,
                    row,
                    s_row,
                    child_effects,
                    prefix_pay[row],
                    prefix_ship[row],
                    prefix_acc[row],
                )
            best_value = _NEG
            best_idx = -1
            best: Effect | None = None
            chunk = FIRST_CHUNK if bounds is not None else CHUNK
            while cand_idx.size:
                if bounds is None:
                    take = np.arange(min(chunk, cand_idx.size))
                elif cand_idx.size > chunk:
                    # The candidates with the greatest bounds first (any order is exact; this
                    # one finds a winner early).
                    take = np.argpartition(-bounds, chunk - 1)[:chunk]
                else:
                    take = np.arange(cand_idx.size)
                idx = cand_idx[take]
                values, e = self._valued(node, children, child_effects, row, s_row, idx, plan)
                top = int(values.max())
                pick = int(idx[values == top].min())
                if top > best_value or (top == best_value and pick < best_idx):
                    best_value, best_idx = top, pick
                    best = e.take(np.flatnonzero(idx == pick))
                keep = np.ones(cand_idx.size, dtype=np.bool_)
                keep[take] = False
                if valuations is not None:
                    valued_idx.append(idx)
                    valued_values.append(values)
                    every_idx = np.concatenate(valued_idx)
                    others = np.concatenate(valued_values)[every_idx != best_idx]
                    runner_up = int(others.max()) if others.size else _NEG
                if bounds is not None:
                    # Rule 6 and the limits never raise a candidate above its bound: one whose
                    # bound ranks after the best found cannot win.
                    wins = (bounds > best_value) | ((bounds == best_value) & (cand_idx < best_idx))
                    # Traced, a candidate is also valued while it could be the runner-up.
                    keep &= wins if valuations is None else wins | (bounds > runner_up)
                    bounds = bounds[keep]
                cand_idx = cand_idx[keep]
                chunk = min(2 * chunk, CHUNK)
            if best is not None:
                _scatter(result, np.array([row], dtype=np.int64), best)
            if valuations is not None and best_idx >= 0:
                valuations[id(node)] = (count, runner_up, best_idx)
        return result

    def _valued(
        self,
        node: CNode,
        children: tuple[CNode, ...],
        child_effects: list[Effect],
        row: int,
        s_row: Summary,
        idx: IntArray,
        plan: CandidatePlan,
    ) -> tuple[IntArray, Effect]:
        """The candidates `idx` made valid (sums), limited, and their benefits."""
        masks = plan.masks[idx]
        seq = plan.sequential[idx]
        e = self._gather(node, children, child_effects, row, masks, seq)
        s_rep = s_row.take(np.zeros(idx.size, dtype=np.int64))
        if np.any(~seq):
            sums = np.flatnonzero(~seq)
            part = e.take(sums)
            make_valid(part, s_rep.take(sums), self.st, node.lo)
            _scatter(e, sums, part)
        self._limits(node, e, s_rep)
        return self._value(node, e), e

    def _bounded(self, child_effects: list[Effect], row: int) -> bool:
        """Whether candidate bounds hold: no child raises a price on S (rule 6(b) may cut a
        summed rise, which raises a candidate's benefit)."""
        return not any(bool((ce.disc[row << i] < 0).any()) for i, ce in enumerate(child_effects))

    def _bounds(
        self,
        node: CNode,
        children: tuple[CNode, ...],
        plan: CandidatePlan,
        idx: IntArray,
        row: int,
        s_row: Summary,
        child_effects: list[Effect],
        seq_pay: IntArray,
        seq_ship: IntArray,
        seq_acc: IntArray,
    ) -> IntArray:
        """An upper bound of each candidate's benefit, from line totals alone.

        Without price rises, making a sum valid (rule 6) and the limits (rule 11) only cut: a
        line keeps at most the least of what the candidate adds, its cap and its price to pay,
        the order at most `max_discount_amount`; accruals are never cut."""
        pay = s_row.pay[0]
        caps = line_caps(
            pay, self.st, node.max_discount_bp, node.min_unit_price, node.min_unit_price_bp
        )
        cap = np.minimum(pay, caps)
        acc_onehot = self.st.acc_onehot
        # Summation of every subset (index = mask), from each child's effect on S.
        on_s = [ce.take(np.array([row << i], dtype=np.int64)) for i, ce in enumerate(child_effects)]
        child_add = np.concatenate([ce.disc.sum(axis=1) + ce.pmon.sum(axis=1) for ce in on_s])
        child_ship = np.array([int(ce.ship.sum()) for ce in on_s], dtype=np.int64)
        child_acc = np.concatenate(
            [
                ce.acc.sum(axis=2) @ acc_onehot[c.lo : c.hi]
                for c, ce in zip(children, on_s, strict=True)
            ]
        )
        rp = self.st.ratio_points[None, :]
        rm = self.st.ratio_money[None, :]
        subsets = plan.subset_indicator  # [2^n, n]
        full = subsets.shape[0]
        # Exact in float64 (BLAS) while every sum stays below 2^52.
        exact_float = int(np.abs(child_add).max(initial=0)) * (len(on_s) + 1) < 1 << 52
        child_add_f = child_add.astype(np.float64) if exact_float else child_add
        bound_by_mode = [np.empty(full, dtype=np.int64), np.empty(full, dtype=np.int64)]
        # In blocks, so that the temporaries stay small (large ones cost page faults).
        for lo in range(0, full, BOUND_BLOCK):
            hi = min(lo + BOUND_BLOCK, full)
            block = subsets[lo:hi]
            if exact_float:
                sum_add = (block.astype(np.float64) @ child_add_f).astype(np.int64)
            else:
                sum_add = block @ child_add
            modes = (
                (sum_add, block @ child_ship, block @ child_acc),
                (pay[None, :] - seq_pay[lo:hi], seq_ship[0] - seq_ship[lo:hi], seq_acc[lo:hi]),
            )
            for mode, (add, ship, acc) in enumerate(modes):
                np.minimum(add, cap[None, :], out=add)
                kept = add.sum(axis=1)
                if node.max_discount_amount:
                    kept = np.minimum(kept, node.max_discount_amount)
                acc_money = mul_half_up_arr(acc, rm, rp)
                bound_by_mode[mode][lo:hi] = kept + ship + acc_money.sum(axis=1)
        masks = plan.masks[idx]
        out: IntArray = np.where(
            plan.sequential[idx], bound_by_mode[1][masks], bound_by_mode[0][masks]
        )
        return out

    def _gather(
        self,
        node: CNode,
        children: tuple[CNode, ...],
        child_effects: list[Effect],
        row: int,
        masks: IntArray,
        seq: BoolArray,
    ) -> Effect:
        m = masks.size
        e = Effect.zeros(m, node.hi - node.lo, self.lines)
        for i, (child, ce) in enumerate(zip(children, child_effects, strict=True)):
            if child.hi == child.lo:
                continue
            member = ((masks >> i) & 1).astype(np.bool_)
            if not np.any(member):
                continue
            prefix = np.where(seq, masks & ((1 << i) - 1), 0)
            src = row * (1 << i) + prefix
            lo = child.lo - node.lo
            hi = child.hi - node.lo
            sel = member[:, None, None]
            e.disc[:, lo:hi] = np.where(sel, ce.disc[src], 0)
            e.pmon[:, lo:hi] = np.where(sel, ce.pmon[src], 0)
            e.ppts[:, lo:hi] = np.where(sel, ce.ppts[src], 0)
            e.acc[:, lo:hi] = np.where(sel, ce.acc[src], 0)
            e.ship[:, lo:hi] = np.where(member[:, None], ce.ship[src], 0)
            e.text[:, lo:hi] = sel & ce.text[src]
        return e

    def _value(self, node: CNode, e: Effect) -> IntArray:
        """Benefit of each candidate for the whole order (rule 12, docs/rules.md)."""
        money = e.disc.sum(axis=(1, 2)) + e.pmon.sum(axis=(1, 2)) + e.ship.sum(axis=1)
        acc = e.acc.sum(axis=2) @ self.st.acc_onehot[node.lo : node.hi]  # [m, T]
        rp = self.st.ratio_points[None, :]
        rm = self.st.ratio_money[None, :]
        acc_money = mul_half_up_arr(acc, rm, rp)
        out: IntArray = money + acc_money.sum(axis=1)
        return out


def _scatter(e: Effect, rows: IntArray, part: Effect) -> None:
    e.disc[rows] = part.disc
    e.pmon[rows] = part.pmon
    e.ppts[rows] = part.ppts
    e.acc[rows] = part.acc
    e.ship[rows] = part.ship
    e.text[rows] = part.text
