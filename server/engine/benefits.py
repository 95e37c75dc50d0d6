"""The benefits (docs/rules.md), each evaluated on a batch of states (rules 1, 2, 8, 10, 14, 15).

`evaluate_benefit` writes what one benefit does, in every state of the batch, into one row of
an Effect. Product-level benefits act on their rule's matching lines, order-level ones on the
order as a whole with their money apportioned to lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from arbiter.server.engine.compile import PRODUCT, CBenefit, CompiledProgram
from arbiter.server.engine.money import (
    apportion_cut,
    by_unit_price,
    mul_floor_arr,
    mul_half_up_arr,
    round_bp_arr,
    round_bp_by,
)
from arbiter.server.engine.select import Selection
from arbiter.server.engine.state import Effect, Summary
from arbiter.server.engine.types import OrderInput
from arbiter.v1 import program_pb2 as pb

__all__ = ["ROUND_STEP", "OrderContext", "evaluate_benefit"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

ROUND_STEP: dict[int, tuple[int, bool]] = {
    pb.ROUND_MODE_ROUND_INTEGER: (100, False),
    pb.ROUND_MODE_ROUND_HALF: (50, False),
    pb.ROUND_MODE_FLOOR_INTEGER: (100, True),
    pb.ROUND_MODE_FLOOR_TENS: (1000, True),
    pb.ROUND_MODE_ROUND_TENS: (1000, False),
}


@dataclass(slots=True)
class OrderContext:
    """Per calculation constants the benefits read."""

    program: CompiledProgram
    order: OrderInput
    lines: int
    quantity: IntArray  # [L]
    base: IntArray  # [L]
    selection: Selection  # eligibility, rules that apply and their lines
    accrues: tuple[bool, ...]  # per point type: may accrue (member, active, not deactivated)


def _chosen_units(pay: IntArray, q: IntArray, mask: BoolArray, max_items: int) -> IntArray:
    """Units each line gives to a max_items benefit, most expensive first (rule 10). [N, L]."""
    n, lines = pay.shape
    chosen = np.zeros((n, lines), dtype=np.int64)
    idx = [i for i in range(lines) if mask[i]]
    quantities = [int(q[i]) for i in idx]
    for row in range(n):
        ranked = by_unit_price([int(pay[row, i]) for i in idx], quantities)
        order = [idx[r] for r in ranked]
        left = max_items
        for i in order:
            if left <= 0:
                break
            take = min(int(q[i]), left)
            chosen[row, i] = take
            left -= take
    return chosen


def _chosen_price(pay: IntArray, q: IntArray, units: IntArray) -> IntArray:
    """Price to pay of `units` of a line's q units: round_half_up(pay * k / q) (rule 1)."""
    return mul_half_up_arr(pay, units, q[None, :])


def evaluate_benefit(b: CBenefit, ctx: OrderContext, s: Summary, e: Effect, j: int) -> None:
    """Write benefit `b` evaluated on every state of `s` into row `j` of `e`."""
    if not ctx.selection.rule_active[b.rule_gid]:
        return
    if b.level == PRODUCT:
        _product(b, ctx, s, e, j, ctx.selection.rule_mask(b.rule_gid))
    else:
        _order(b, ctx, s, e, j)


def _product(
    b: CBenefit, ctx: OrderContext, s: Summary, e: Effect, j: int, mask: BoolArray
) -> None:
    pay = s.pay
    q = ctx.quantity
    kind = b.kind
    lines = ctx.order.lines
    if kind == "text":
        e.text[:, j, :-1] = mask[None, :]
        return
    if kind in ("accrue_points", "accrue_per_spent", "accrue_from_field", "partner_points"):
        if not ctx.accrues[b.point_type]:
            return
        t = ctx.program.point_types[b.point_type]
        rp, rm = t.ratio_points, t.ratio_money
        if kind == "accrue_points":
            if b.value_kind == "percent_bp":
                money = round_bp_arr(pay, b.value)
                pts = mul_half_up_arr(money, rp, rm)
            else:
                pts = np.broadcast_to(mul_floor_arr(q, b.value, 1), pay.shape)
            e.acc[:, j, :-1] = np.where(mask[None, :], pts, 0)
        elif kind == "accrue_per_spent":
            bases = np.where(mask[None, :], pay, 0)
            total = mul_floor_arr(bases.sum(axis=1) // b.per_amount, b.value, 1)
            e.acc[:, j, :-1] = apportion_cut(total[:, None], bases[:, :, None])[:, :, 0]
        elif kind == "accrue_from_field":
            # A negative field accrues nothing (accruals never take points back).
            per_unit = np.array(
                [max(line.fields.get(b.field, 0), 0) for line in lines], dtype=np.int64
            )
            e.acc[:, j, :-1] = np.where(mask, mul_floor_arr(per_unit, q, 1), 0)[None, :]
        else:  # partner_points
            bp = np.array(
                [
                    ctx.program.partner_points_bp.get(line.partner, 0)
                    if line.partner in b.partners
                    else 0
                    for line in lines
                ],
                dtype=np.int64,
            )
            money = round_bp_by(pay, bp[None, :])
            pts = mul_half_up_arr(money, rp, rm)
            e.acc[:, j, :-1] = np.where(mask[None, :] & (bp > 0)[None, :], pts, 0)
        return
    if kind == "pay_with_points":
        _pay_with_points_product(b, ctx, s, e, j, mask)
        return
    if kind == "discount":
        units = None
        price = pay
        if b.max_items:
            units = _chosen_units(pay, q, mask, b.max_items)
            price = _chosen_price(pay, q, units)
        k = units if units is not None else np.broadcast_to(q, pay.shape)
        if b.value_kind == "percent_bp":
            d = round_bp_arr(price, b.value)
        elif b.value_kind == "amount":
            d = np.minimum(b.value * k, price)
        else:  # fixed_price
            d = np.maximum(price - b.value * k, 0)
        e.disc[:, j] = np.where(mask[None, :], d, 0)
        return
    if kind == "price_from_field":
        has = np.array([b.field in line.fields for line in lines], dtype=np.bool_) & mask
        unit = np.array([line.fields.get(b.field, 0) for line in lines], dtype=np.int64)
        new_unit = round_bp_arr(unit, b.factor_bp)
        d = np.maximum(pay - (new_unit * q)[None, :], 0)
        e.disc[:, j] = np.where(has[None, :], d, 0)
        return
    if kind == "round_price":
        step, floor = ROUND_STEP[b.round_mode]
        qs = q[None, :] * step
        n_steps = pay // qs if floor else (2 * pay + qs) // (2 * qs)
        new_pay = np.minimum(n_steps * qs, ctx.base[None, :] - s.pts_money)
        e.disc[:, j] = np.where(mask[None, :], pay - new_pay, 0)
        return
    if kind == "partner_discount":
        bp = np.array(
            [
                ctx.program.partner_discount_bp.get(line.partner, 0)
                if line.partner in b.partners
                else 0
                for line in lines
            ],
            dtype=np.int64,
        )
        d = round_bp_by(pay, bp[None, :])
        e.disc[:, j] = np.where(mask[None, :], d, 0)
        return
    raise AssertionError(f"benefit {kind} has no product-level form")


def _pay_with_points_product(
    b: CBenefit, ctx: OrderContext, s: Summary, e: Effect, j: int, mask: BoolArray
) -> None:
    budget = s.budget[:, b.point_type]
    if not np.any(budget > 0):
        return
    t = ctx.program.point_types[b.point_type]
    rp, rm = t.ratio_points, t.ratio_money
    pay = s.pay
    q = ctx.quantity
    price = pay
    units: IntArray = np.broadcast_to(q, pay.shape)
    if b.max_items:
        units = _chosen_units(pay, q, mask, b.max_items)
        price = _chosen_price(pay, q, units)
    if b.value_kind == "percent_bp":
        cap_money = np.minimum(round_bp_arr(price, b.value), price)
        cap_pts = mul_floor_arr(cap_money, rp, rm)
    elif b.value_kind == "amount":
        cap_money = np.minimum(b.value * units, price)
        cap_pts = mul_floor_arr(cap_money, rp, rm)
    else:  # points per unit
        cap_money = price
        cap_pts = np.minimum(b.value * units, mul_floor_arr(price, rp, rm))
    cap_pts = np.where(mask[None, :], cap_pts, 0)
    total = cap_pts.sum(axis=1)
    over = total > budget
    pts = cap_pts
    if np.any(over):
        spread = apportion_cut(np.maximum(budget, 0)[:, None], cap_pts[:, :, None])[:, :, 0]
        pts = np.where(over[:, None], spread, cap_pts)
    money = np.minimum(mul_half_up_arr(pts, rm, rp), cap_money)
    e.ppts[:, j] = pts
    e.pmon[:, j] = np.where(mask[None, :], money, 0)


def _order(b: CBenefit, ctx: OrderContext, s: Summary, e: Effect, j: int) -> None:
    pay = s.pay
    total = pay.sum(axis=1)
    kind = b.kind
    if kind == "text":
        e.text[:, j, -1] = True
        return
    if kind == "shipping_discount":
        left = s.ship_left
        if b.value_kind == "percent_bp":
            e.ship[:, j] = round_bp_arr(left, b.value)
        else:
            e.ship[:, j] = np.minimum(b.value, left)
        return
    if kind == "discount":
        if b.value_kind == "percent_bp":
            amount = round_bp_arr(total, b.value)
        else:
            amount = np.minimum(b.value, total)
        e.disc[:, j] = apportion_cut(amount[:, None], pay[:, :, None])[:, :, 0]
        return
    if kind in ("accrue_points", "accrue_per_spent"):
        if not ctx.accrues[b.point_type]:
            return
        t = ctx.program.point_types[b.point_type]
        if kind == "accrue_points":
            if b.value_kind == "percent_bp":
                money = round_bp_arr(total, b.value)
                e.acc[:, j, -1] = mul_half_up_arr(money, t.ratio_points, t.ratio_money)
            else:
                e.acc[:, j, -1] = b.value
        else:
            e.acc[:, j, -1] = mul_floor_arr(total // b.per_amount, b.value, 1)
        return
    if kind == "pay_with_points":
        budget = s.budget[:, b.point_type]
        if not np.any(budget > 0):
            return
        t = ctx.program.point_types[b.point_type]
        rp, rm = t.ratio_points, t.ratio_money
        if b.value_kind == "percent_bp":
            cap_pts = mul_floor_arr(np.minimum(round_bp_arr(total, b.value), total), rp, rm)
        elif b.value_kind == "amount":
            cap_pts = mul_floor_arr(np.minimum(b.value, total), rp, rm)
        else:
            cap_pts = np.minimum(b.value, mul_floor_arr(total, rp, rm))
        cap_pts = np.minimum(cap_pts, np.maximum(budget, 0))
        pts = apportion_cut(cap_pts[:, None], pay[:, :, None])[:, :, 0]
        money = mul_half_up_arr(pts, rm, rp)
        # Points a line cannot hold within its price to pay are dropped (rule 8).
        too_much = money > pay
        if np.any(too_much):
            held = mul_floor_arr(pay, rp, rm)
            pts = np.where(too_much, held, pts)
            money = np.minimum(mul_half_up_arr(pts, rm, rp), pay)
        e.ppts[:, j] = pts
        e.pmon[:, j] = money
        return
    raise AssertionError(f"benefit {kind} has no order-level form")
