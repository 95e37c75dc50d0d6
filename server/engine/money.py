"""Money arithmetic, the only place that rounds: half-up rounding, ratios, largest remainder.

Every amount is an integer of minor units or points. Vectorised forms work on int64 arrays and
fall back to exact Python integers when a product could overflow int64 (docs/rules.md).
"""

from __future__ import annotations

from math import lcm
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "BP",
    "HALF_BP",
    "INT64_SAFE",
    "apportion",
    "apportion_cut",
    "by_unit_price",
    "div_half_up",
    "money_to_points_floor",
    "mul_floor_arr",
    "mul_half_up_arr",
    "points_to_money",
    "round_bp",
    "round_bp_arr",
    "round_bp_by",
    "total_of",
]

BP: Final = 10_000  # basis points in a whole (100 %)
HALF_BP: Final = BP // 2
# Products below this bound are exact in int64 (2**62 leaves room for a sum of two).
INT64_SAFE: Final = 1 << 62

IntArray = npt.NDArray[np.int64]


def div_half_up(numerator: int, denominator: int) -> int:
    """round_half_up(numerator / denominator) for numerator >= 0, denominator > 0."""
    return (2 * numerator + denominator) // (2 * denominator)


def round_bp(x: int, bp: int) -> int:
    """round_bp(x, bp) = (x * bp + 5000) // 10000 (docs/rules.md), for x >= 0."""
    return (x * bp + HALF_BP) // BP


def round_bp_arr(x: IntArray, bp: int) -> IntArray:
    """round_bp over an array of non-negative amounts."""
    if bp == 0:
        return np.zeros_like(x)
    big = int(x.max(initial=0)) if x.size else 0
    if big * abs(bp) < INT64_SAFE:
        return (x * bp + HALF_BP) // BP
    obj = x.astype(object)
    return np.asarray((obj * bp + HALF_BP) // BP, dtype=np.int64)


def round_bp_by(x: IntArray, bp: IntArray) -> IntArray:
    """round_bp of each amount by its own basis points (arrays that broadcast together)."""
    big = int(np.abs(x).max(initial=0)) * int(np.abs(bp).max(initial=0))
    if big < INT64_SAFE:
        out: IntArray = (x * bp + HALF_BP) // BP
        return out
    return np.asarray((x.astype(object) * bp.astype(object) + HALF_BP) // BP, dtype=np.int64)


def _exact(x: IntArray | int, a: IntArray | int, b: IntArray | int) -> bool:
    """2 * |x| * |a| + |b| stays below INT64_SAFE (so int64 computes the next two exactly)."""
    big_x = int(np.abs(np.asarray(x)).max(initial=0))
    big_a = int(np.abs(np.asarray(a)).max(initial=0))
    big_b = int(np.abs(np.asarray(b)).max(initial=0))
    return 2 * big_x * big_a + big_b < INT64_SAFE


def _objects(v: IntArray | int) -> npt.NDArray[np.object_] | int:
    return np.asarray(v).astype(object) if isinstance(v, np.ndarray) else int(v)


def mul_floor_arr(x: IntArray, a: IntArray | int, b: IntArray | int) -> IntArray:
    """floor(x * a / b) elementwise (b > 0; arrays that broadcast): in int64 while the products
    fit, else through Python integers (a point ratio times a large amount)."""
    if _exact(x, a, b):
        out: IntArray = (x * a) // b
        return out
    return np.asarray((_objects(x) * _objects(a)) // _objects(b), dtype=np.int64)


def mul_half_up_arr(x: IntArray, a: IntArray | int, b: IntArray | int) -> IntArray:
    """x * a / b rounded half up, floor((2 x a + b) / (2 b)), elementwise (b > 0), exact as
    `mul_floor_arr` is."""
    if _exact(x, a, b):
        out: IntArray = (2 * x * a + b) // (2 * np.asarray(b))
        return out
    bo = _objects(b)
    return np.asarray((2 * _objects(x) * _objects(a) + bo) // (2 * bo), dtype=np.int64)


def money_to_points_floor(money: int, ratio_points: int, ratio_money: int) -> int:
    """Whole points that `money` buys at most: floor(money * points / money_unit)."""
    return (money * ratio_points) // ratio_money


def points_to_money(points: int, ratio_points: int, ratio_money: int) -> int:
    """Money value of whole points, half up (rules 2 and 12, docs/rules.md)."""
    return div_half_up(points * ratio_money, ratio_points)


def total_of(values: list[int]) -> int:
    """sum(values) of integers."""
    total = 0
    for v in values:
        total += v
    return total


def apportion(amount: int, weights: list[int]) -> list[int]:
    """Largest remainder: split `amount` over `weights` (>= 0), ties to the earlier item.

    Every item gets floor(amount * w / W); the units left go one each to the largest remainders.
    With a zero total weight nothing can be apportioned and every share is 0.
    """
    total = total_of(weights)
    if total <= 0 or amount == 0:
        return [0] * len(weights)
    shares = [amount * w // total for w in weights]
    left = amount - total_of(shares)
    if left:
        # Largest remainder first, ties to the earlier item: one integer per item ranks both,
        # remainder * n + (n - 1 - i), so a plain ascending sort of integers does it and the
        # units go to the last `left` keys (measured 4x fewer instructions than sorting indices
        # by a key function).
        n = len(weights)
        last = n - 1
        ranked = [amount * w % total * n + last - i for i, w in enumerate(weights)]
        ranked.sort()
        for key in ranked[n - left :]:
            i = last - key % n
            shares[i] = shares[i] + 1
    return shares


def by_unit_price(prices: list[int], quantities: list[int]) -> list[int]:
    """Positions ranked by unit price (price / quantity, exactly), the most expensive first,
    ties to the earlier position (rule 10, docs/rules.md); quantities > 0.

    Each unit price is scaled to a common denominator (their least common multiple), and one
    integer per position ranks both the price and the position, so a plain ascending sort of
    integers does it (no fractions, no key function)."""
    n = len(prices)
    common = lcm(*quantities) if n else 1
    keys = [-(prices[i] * (common // quantities[i])) * n + i for i in range(n)]
    keys.sort()
    return [key % n for key in keys]


def _as_exact(a: IntArray) -> Any:
    return a.astype(object)


def apportion_cut(cut: IntArray, weights: IntArray) -> IntArray:
    """Vectorised largest remainder over axis 1.

    `weights` has shape [N, K, ...rest], `cut` shape [N, ...rest]; for every (n, rest) the
    amount cut[n, rest] is split over k in proportion to weights[n, k, rest], each share the
    floor of its exact part, the units left one each to the largest remainders, ties to the
    lower k. Requires 0 <= cut <= sum of weights.
    """
    total = weights.sum(axis=1)
    if not np.any(cut):
        return np.zeros_like(weights)
    cut_b = np.expand_dims(cut, 1)
    total_b = np.expand_dims(total, 1)
    safe_total = np.where(total_b > 0, total_b, 1)
    big_c = int(cut.max(initial=0))
    big_w = int(weights.max(initial=0))
    if big_c * big_w < INT64_SAFE:
        prod = cut_b * weights
        shares = prod // safe_total
        rem = prod % safe_total
    else:
        prod_o = _as_exact(cut_b) * _as_exact(weights)
        st_o = _as_exact(safe_total)
        shares = np.asarray(prod_o // st_o, dtype=np.int64)
        rem_o = prod_o % st_o
        # Remainders only order the leftover units; rank them exactly.
        rem = np.asarray(rem_o, dtype=object)
    shares = np.where(total_b > 0, shares, 0)
    left = cut - shares.sum(axis=1)
    if not np.any(left > 0):
        return shares
    k = weights.shape[1]
    # Rank by remainder (desc), then by k (asc): a stable argsort on -remainder.
    if rem.dtype == object:
        order = np.empty(rem.shape, dtype=np.int64)
        it = np.ndindex(*(rem.shape[:1] + rem.shape[2:]))
        for idx in it:
            sl = (idx[0], slice(None), *idx[1:])
            col = list(rem[sl])
            order[sl] = sorted(range(k), key=lambda i: (-col[i], i))
    else:
        order = np.argsort(-rem, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(k).reshape((1, k) + (1,) * (rem.ndim - 2)), axis=1)
    bonus = (rank < np.expand_dims(left, 1)) & (total_b > 0)
    return shares + bonus.astype(np.int64)
