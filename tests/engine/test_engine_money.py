"""money.apportion: largest remainder, ties to the earlier item (docs/rules.md), by definition."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from arbiter.server.engine.money import apportion


def _by_definition(amount: int, weights: list[int]) -> list[int]:
    total = sum(weights)
    if total <= 0 or amount == 0:
        return [0] * len(weights)
    shares = [amount * w // total for w in weights]
    left = amount - sum(shares)
    ranked = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in ranked[:left]:
        shares[i] += 1
    return shares


def test_ties_go_to_the_earlier_item() -> None:
    assert apportion(1, [1, 1, 1]) == [1, 0, 0]
    assert apportion(2, [1, 1, 1]) == [1, 1, 0]
    assert apportion(10, [1, 2, 1, 2]) == [2, 3, 2, 3]  # remainders 4, 2, 4, 2 of 6
    assert apportion(5, [0, 0]) == [0, 0]
    assert apportion(0, [3, 4]) == [0, 0]


@given(
    st.integers(0, 10**15),
    st.lists(st.integers(0, 10**13), min_size=1, max_size=40),
)
def test_apportion_is_largest_remainder(amount: int, weights: list[int]) -> None:
    shares = apportion(amount, weights)
    assert shares == _by_definition(amount, weights)
    if sum(weights) > 0:
        assert sum(shares) == amount


@given(st.integers(0, 1000), st.integers(1, 40), st.integers(0, 50))
def test_apportion_over_equal_weights(amount: int, n: int, weight: int) -> None:
    assert apportion(amount, [weight] * n) == _by_definition(amount, [weight] * n)
