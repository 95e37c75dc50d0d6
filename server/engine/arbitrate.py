"""The arbitration tree (SPEC 4): promotions, SEQUENTIAL, INCOMPATIBLE, SUMMATION, MAX_BENEFIT.

A node maps a batch of states to its effect on each of them. MAX_BENEFIT is vectorised: the
sequential candidates are built child by child, child k evaluated once on the batch of states
of every subset of c1..c(k-1) (n batched calls, not 2^n); the summation candidates reuse each
child's effect on S (the empty prefix) and are masked together by a subset indicator; all
candidates are then made valid, limited and valued in bounded chunks.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from arbiter.server.engine.benefits import OrderContext, evaluate_benefit
from arbiter.server.engine.compile import (
    INCOMPATIBLE,
    MAX_BENEFIT,
    PRODUCT,
    SEQUENTIAL,
    SUMMATION,
    CNode,
)
from arbiter.server.engine.state import (
    Effect,
    Statics,
    Summary,
    apply_effect,
    apply_limits,
    make_valid,
)

__all__ = ["Arbiter"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Candidates valued at once: bounds memory at about CHUNK * k * L entries per array.
CHUNK = 512
_NEG = np.iinfo(np.int64).min


class Arbiter:
    """Evaluates the tree of one compiled program for one order."""

    def __init__(self, ctx: OrderContext, statics: Statics, eligible: tuple[bool, ...]) -> None:
        self.ctx = ctx
        self.st = statics
        self.lines = ctx.lines
        self.eligible = eligible
        self.benefits = ctx.program.benefits
        self.levels = ctx.program.benefit_level
        self._live: dict[int, bool] = {}

    def live(self, node: CNode) -> bool:
        """Whether any promotion under `node` is eligible (else its effect is empty)."""
        key = id(node)
        hit = self._live.get(key)
        if hit is None:
            if node.promotion >= 0:
                # A promotion none of whose rules applies has an empty effect.
                hit = self.eligible[node.promotion] and any(
                    self.ctx.rule_active.get((node.promotion, r), False)
                    for r in range(len(self.ctx.program.promotions[node.promotion].rules))
                )
            else:
                hit = any(self.live(c) for c in node.children)
            self._live[key] = hit
        return hit

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
        children = node.children
        n_children = len(children)
        k = node.hi - node.lo
        n = s.n
        result = Effect.zeros(n, k, self.lines)
        if n_children == 0:
            return result
        plan = self.ctx.program.plans[n_children]
        # Sequential build: prefix states of every subset of c1..c(i-1), as one batch per child.
        prefix_pay = s.pay[:, None, :]
        prefix_pm = s.pts_money[:, None, :]
        prefix_budget = s.budget[:, None, :]
        prefix_ship = s.ship_left[:, None]
        child_effects: list[Effect] = []  # child i on [N * 2^i] prefix states
        for i, child in enumerate(children):
            width = 1 << i
            batch = Summary(
                prefix_pay.reshape(n * width, -1),
                prefix_pm.reshape(n * width, -1),
                prefix_budget.reshape(n * width, -1),
                prefix_ship.reshape(n * width),
            )
            ce = self.evaluate(child, batch)
            child_effects.append(ce)
            if i == n_children - 1:
                break
            after = apply_effect(batch, ce, self._onehot(child.lo, child.hi))
            prefix_pay = np.concatenate([prefix_pay, after.pay.reshape(n, width, -1)], axis=1)
            prefix_pm = np.concatenate([prefix_pm, after.pts_money.reshape(n, width, -1)], axis=1)
            prefix_budget = np.concatenate(
                [prefix_budget, after.budget.reshape(n, width, -1)], axis=1
            )
            prefix_ship = np.concatenate([prefix_ship, after.ship_left.reshape(n, width)], axis=1)
        # A child whose effect on S is empty takes part in no subset (rule 12).
        on_s = np.stack(
            [
                ce.nonempty_lines().reshape(n, 1 << i, -1)[:, 0, :].any(axis=1)
                if ce.disc.shape[1]
                else np.zeros(n, dtype=np.bool_)
                for i, ce in enumerate(child_effects)
            ],
            axis=1,
        )  # [N, n_children]
        empty_bits = (~on_s).astype(np.int64) @ (1 << np.arange(n_children, dtype=np.int64))
        for row in range(n):
            allowed = (plan.masks & empty_bits[row]) == 0
            best_value = _NEG
            best: Effect | None = None
            s_row = s.take(np.array([row], dtype=np.int64))
            cand_idx = np.flatnonzero(allowed)
            for start in range(0, cand_idx.size, CHUNK):
                idx = cand_idx[start : start + CHUNK]
                masks = plan.masks[idx]
                seq = plan.sequential[idx]
                e = self._gather(node, child_effects, row, masks, seq)
                m = idx.size
                rep = np.zeros(m, dtype=np.int64)
                s_rep = s_row.take(rep)
                if np.any(~seq):
                    sums = np.flatnonzero(~seq)
                    part = e.take(sums)
                    make_valid(part, s_rep.take(sums), self.st, node.lo)
                    _scatter(e, sums, part)
                self._limits(node, e, s_rep)
                values = self._value(node, e)
                pick = int(np.argmax(values))
                if int(values[pick]) > best_value:
                    best_value = int(values[pick])
                    best = e.take(np.array([pick], dtype=np.int64))
            if best is not None:
                _scatter(result, np.array([row], dtype=np.int64), best)
        return result

    def _gather(
        self, node: CNode, child_effects: list[Effect], row: int, masks: IntArray, seq: BoolArray
    ) -> Effect:
        m = masks.size
        e = Effect.zeros(m, node.hi - node.lo, self.lines)
        for i, (child, ce) in enumerate(zip(node.children, child_effects, strict=True)):
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
        """Benefit of each candidate for the whole order (SPEC 4, rule 12)."""
        money = e.disc.sum(axis=(1, 2)) + e.pmon.sum(axis=(1, 2)) + e.ship.sum(axis=1)
        acc = e.acc.sum(axis=2) @ self.st.acc_onehot[node.lo : node.hi]  # [m, T]
        rp = self.st.ratio_points[None, :]
        rm = self.st.ratio_money[None, :]
        acc_money = (2 * acc * rm + rp) // (2 * rp)
        out: IntArray = money + acc_money.sum(axis=1)
        return out


def _scatter(e: Effect, rows: IntArray, part: Effect) -> None:
    e.disc[rows] = part.disc
    e.pmon[rows] = part.pmon
    e.ppts[rows] = part.ppts
    e.acc[rows] = part.acc
    e.ship[rows] = part.ship
    e.text[rows] = part.text
