"""Money arithmetic, the only place that rounds: half-up rounding, ratios, largest remainder.

Every amount is an integer of minor units or points (Python integers: exact at any size). The
typed core (core.pyx) reads these constants and writes the same formulas on C integers
(docs/rules.md, "The range of the arithmetic").
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BP",
    "HALF_BP",
    "apportion",
    "div_half_up",
    "round_bp",
    "total_of",
]

BP: Final = 10_000  # basis points in a whole (100 %)
HALF_BP: Final = BP // 2


def div_half_up(numerator: int, denominator: int) -> int:
    """round_half_up(numerator / denominator) for numerator >= 0, denominator > 0."""
    return (2 * numerator + denominator) // (2 * denominator)


def round_bp(x: int, bp: int) -> int:
    """round_bp(x, bp) = (x * bp + 5000) // 10000 (docs/rules.md), for x >= 0."""
    return (x * bp + HALF_BP) // BP


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
