"""Batched states and effects, and the cuts that keep them valid (rules 6, 7, 11, 23).

A `Summary` is a batch of N states as the benefits see them (price to pay per line, money paid
with points per line, points budget left per type, shipping left). An `Effect` holds what each
benefit of a node's range did on each line, for every state of the batch:

    disc [N, k, L]    money discount (negative: a price rise)
    pmon [N, k, L]    money paid with points
    ppts [N, k, L]    points paid (of the benefit's type)
    acc  [N, k, L+1]  points accrued; column L is order-wide
    ship [N, k]       shipping discount
    text [N, k, L+1]  a text emitted on a line (product level) or order-wide (column L)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from arbiter.server.engine.money import apportion_cut, mul_floor_arr, mul_half_up_arr, round_bp_arr

__all__ = ["Effect", "Statics", "Summary", "apply_limits", "line_caps", "make_valid"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(slots=True)
class Summary:
    pay: IntArray  # [N, L]
    pts_money: IntArray  # [N, L]
    budget: IntArray  # [N, T]
    ship_left: IntArray  # [N]

    @property
    def n(self) -> int:
        return int(self.pay.shape[0])

    def take(self, rows: IntArray) -> Summary:
        return Summary(
            self.pay[rows], self.pts_money[rows], self.budget[rows], self.ship_left[rows]
        )


@dataclass(frozen=True, slots=True)
class Statics:
    """Per calculation constants of the order and of a node range's benefits."""

    base: IntArray  # [L] base price of each line
    quantity: IntArray  # [L]
    base_unit: IntArray  # [L]
    pay_onehot: IntArray  # [K, T] type a points payment spends (all benefits)
    acc_onehot: IntArray  # [K, T] type an accrual earns (all benefits)
    ratio_points: IntArray  # [T]
    ratio_money: IntArray  # [T]
    pay_type: IntArray  # [K] the type a benefit pays with, 0 when it pays nothing


@dataclass(slots=True)
class Effect:
    disc: IntArray
    pmon: IntArray
    ppts: IntArray
    acc: IntArray
    ship: IntArray
    text: BoolArray

    @staticmethod
    def zeros(n: int, k: int, lines: int) -> Effect:
        return Effect(
            disc=np.zeros((n, k, lines), dtype=np.int64),
            pmon=np.zeros((n, k, lines), dtype=np.int64),
            ppts=np.zeros((n, k, lines), dtype=np.int64),
            acc=np.zeros((n, k, lines + 1), dtype=np.int64),
            ship=np.zeros((n, k), dtype=np.int64),
            text=np.zeros((n, k, lines + 1), dtype=np.bool_),
        )

    def put(self, lo: int, other: Effect) -> None:
        hi = lo + other.disc.shape[1]
        self.disc[:, lo:hi] = other.disc
        self.pmon[:, lo:hi] = other.pmon
        self.ppts[:, lo:hi] = other.ppts
        self.acc[:, lo:hi] = other.acc
        self.ship[:, lo:hi] = other.ship
        self.text[:, lo:hi] = other.text

    def take(self, rows: IntArray) -> Effect:
        return Effect(
            self.disc[rows],
            self.pmon[rows],
            self.ppts[rows],
            self.acc[rows],
            self.ship[rows],
            self.text[rows],
        )

    def nonempty_lines(self) -> BoolArray:
        """[N, k, L+1]: where an entry changes an amount or emits a text (rule 4)."""
        out: BoolArray = (self.acc != 0) | self.text
        out[:, :, :-1] |= (self.disc != 0) | (self.pmon != 0) | (self.ppts != 0)
        out[:, :, -1] |= self.ship != 0
        return out

    def added(self) -> IntArray:
        """[N, L]: money discount plus points money per line (net of price rises)."""
        result: IntArray = self.disc.sum(axis=1) + self.pmon.sum(axis=1)
        return result


def apply_effect(s: Summary, e: Effect, pay_onehot: IntArray) -> Summary:
    """The state after `e` (pay_onehot: [k, T] of the effect's own benefits)."""
    pm = e.pmon.sum(axis=1)
    spent = e.ppts.sum(axis=2) @ pay_onehot if pay_onehot.shape[0] else 0
    return Summary(
        pay=s.pay - e.disc.sum(axis=1) - pm,
        pts_money=s.pts_money + pm,
        budget=s.budget - spent,
        ship_left=s.ship_left - e.ship.sum(axis=1),
    )


def _revalue_points(pts: IntArray, types: IntArray, st: Statics) -> IntArray:
    """Money of whole points at each entry's type ratio, half up (docs/rules.md). types: [k]."""
    rp = st.ratio_points[types][None, :, None]
    rm = st.ratio_money[types][None, :, None]
    return mul_half_up_arr(pts, rm, rp)


def cut_lines(e: Effect, cut: IntArray, types: IntArray, st: Statics) -> None:
    """Cut `cut[N, L]` of money from each line: the points entries first, then the positive
    money discounts in proportion (rules 6b, 7, 11, 23). In place."""
    if not np.any(cut > 0):
        return
    cut = np.maximum(cut, 0)
    pm_total = e.pmon.sum(axis=1)
    if np.any(pm_total):
        c_pts = np.minimum(cut, pm_total)
        shares = apportion_cut(c_pts, e.pmon)  # in proportion to each entry's money
        keep_money = e.pmon - shares
        rp = st.ratio_points[types][None, :, None]
        rm = st.ratio_money[types][None, :, None]
        new_pts = np.where(shares > 0, mul_floor_arr(keep_money, rp, rm), e.ppts)
        new_pts = np.minimum(new_pts, e.ppts)
        new_money = np.where(shares > 0, _revalue_points(new_pts, types, st), e.pmon)
        new_money = np.minimum(new_money, keep_money)
        removed = (e.pmon - new_money).sum(axis=1)
        e.ppts[...] = new_pts
        e.pmon[...] = new_money
        cut = np.maximum(cut - removed, 0)
    if not np.any(cut > 0):
        return
    positive = np.maximum(e.disc, 0)
    cut = np.minimum(cut, positive.sum(axis=1))
    e.disc -= apportion_cut(cut, positive)


def make_valid(e: Effect, s: Summary, st: Statics, lo: int) -> None:
    """Make a sum of effects evaluated on the same state `s` valid (rule 6). In place."""
    k = e.disc.shape[1]
    types = st.pay_type[lo : lo + k]
    n, _, lines = e.disc.shape
    # (a) points above the budget left, per type, cut in proportion to each entry's points.
    if np.any(e.ppts):
        onehot = st.pay_onehot[lo : lo + k]
        for t in np.flatnonzero(onehot.sum(axis=0)):
            sel = onehot[:, t].astype(bool)
            pts = e.ppts[:, sel, :]
            total = pts.sum(axis=(1, 2))
            over = total - s.budget[:, t]
            if not np.any(over > 0):
                continue
            cut = np.maximum(over, 0)
            flat = pts.reshape(n, -1)
            shares = apportion_cut(cut, flat).reshape(pts.shape)
            new_pts = pts - shares
            old_money = e.pmon[:, sel, :]
            rp = int(st.ratio_points[t])
            rm = int(st.ratio_money[t])
            revalued = mul_half_up_arr(new_pts, rm, rp)
            e.ppts[:, sel, :] = new_pts
            e.pmon[:, sel, :] = np.where(shares > 0, np.minimum(revalued, old_money), old_money)
    # (b) price rises above the base less the points paid, then discounts above the price.
    neg = np.minimum(e.disc, 0)
    if np.any(neg):
        pay_after = s.pay - e.disc.sum(axis=1) - e.pmon.sum(axis=1)
        bound = st.base[None, :] - s.pts_money - e.pmon.sum(axis=1)
        over = np.maximum(pay_after - bound, 0)
        if np.any(over):
            rises = -neg
            over = np.minimum(over, rises.sum(axis=1))
            e.disc += apportion_cut(over, rises)
    excess = e.added() - s.pay
    if np.any(excess > 0):
        cut_lines(e, np.maximum(excess, 0), types, st)
    # (c) shipping discounts above the shipping left.
    if np.any(e.ship):
        over = e.ship.sum(axis=1) - s.ship_left
        if np.any(over > 0):
            cut = np.maximum(over, 0)[:, None]
            e.ship -= apportion_cut(cut, e.ship[:, :, None])[:, :, 0]
    del lines


def line_caps(
    p: IntArray, st: Statics, max_discount_bp: int, min_unit_price: int, min_unit_price_bp: int
) -> IntArray:
    """What a node may add on each line entering at price to pay `p` (rule 11; never below
    0; the int64 maximum where no per-line limit is set)."""
    cap = np.full_like(p, np.iinfo(np.int64).max)
    if max_discount_bp:
        cap = np.minimum(cap, round_bp_arr(p, max_discount_bp))
    if min_unit_price:
        cap = np.minimum(cap, p - st.quantity * min_unit_price)
    if min_unit_price_bp:
        floor_unit = round_bp_arr(st.base_unit, min_unit_price_bp)
        cap = np.minimum(cap, p - st.quantity * floor_unit)
    out: IntArray = np.maximum(cap, 0)
    return out


def apply_limits(
    e: Effect,
    s: Summary,
    st: Statics,
    lo: int,
    max_discount_bp: int,
    max_discount_amount: int,
    min_unit_price: int,
    min_unit_price_bp: int,
) -> None:
    """A node's limits on what its subtree adds (rule 11). In place."""
    k = e.disc.shape[1]
    types = st.pay_type[lo : lo + k]
    p = s.pay
    if max_discount_bp or min_unit_price or min_unit_price_bp:
        cap = line_caps(p, st, max_discount_bp, min_unit_price, min_unit_price_bp)
        excess = e.added() - cap
        if np.any(excess > 0):
            cut_lines(e, np.maximum(excess, 0), types, st)
    if max_discount_amount:
        added = e.added()
        over = added.sum(axis=1) - max_discount_amount
        if np.any(over > 0):
            weights = np.maximum(added, 0)
            over = np.minimum(np.maximum(over, 0), weights.sum(axis=1))
            per_line = apportion_cut(over[:, None], weights[:, None, :].transpose(0, 2, 1))
            cut_lines(e, per_line[:, :, 0], types, st)
