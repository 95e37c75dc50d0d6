"""Integer money arithmetic of the reference evaluator: half-up rounding, ratios, largest remainder.

Written straight from docs/rules.md; it shares nothing with the engine's own money module.
"""

from collections.abc import Sequence

BP_ONE = 10000  # basis points in 100 %


def round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up (towards +infinity on a tie)."""
    assert denominator > 0, denominator
    return (2 * numerator + denominator) // (2 * denominator)


def round_bp(amount: int, bp: int) -> int:
    """docs/rules.md: ``round_bp(x, bp) = (x * bp + 5000) // 10000``."""
    return (amount * bp + BP_ONE // 2) // BP_ONE


def money_to_points_floor(money: int, ratio_points: int, ratio_money: int) -> int:
    """Whole points a money cap buys, never more than allowed (docs/rules.md)."""
    if money <= 0:
        return 0
    return money * ratio_points // ratio_money


def points_value(points: int, ratio_points: int, ratio_money: int) -> int:
    """Money worth of whole points, rounded half up (rule 12, docs/rules.md)."""
    return round_half_up(points * ratio_money, ratio_points)


def money_to_points_rounded(money: int, ratio_points: int, ratio_money: int) -> int:
    """Rule 2: points accrued for a money amount, rounded half up."""
    return round_half_up(money * ratio_points, ratio_money)


def apportion(total: int, weights: Sequence[int]) -> list[int]:
    """Largest remainder: split ``total`` over ``weights``; ties go to the earlier item.

    Weights are non-negative; with no positive weight nothing can be apportioned and every share
    is 0 (the callers never ask for that with a positive total they must account for).
    """
    count = len(weights)
    if count == 1:
        return [total if total > 0 and weights[0] > 0 else 0]
    shares = [0] * count
    weight_sum = sum(weights)
    if total <= 0 or weight_sum <= 0:
        return shares
    remainders: list[tuple[int, int]] = []
    given = 0
    for position, weight in enumerate(weights):
        assert weight >= 0, weights
        share, remainder = divmod(total * weight, weight_sum)
        shares[position] = share
        given += share
        remainders.append((-remainder, position))
    left = total - given
    assert 0 <= left <= count
    remainders.sort()
    for _, position in remainders[:left]:
        shares[position] += 1
    return shares


def render_money(amount: int) -> str:
    """Money in currency units with two decimals (rule 16): ``1234.50``."""
    sign = "-" if amount < 0 else ""
    units, cents = divmod(abs(amount), 100)
    return f"{sign}{units}.{cents:02d}"
