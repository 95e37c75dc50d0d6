"""The eleven benefit kinds of docs/rules.md, each on one state (rules 1, 2, 8-10, 14, 15)."""

from functools import cmp_to_key

from arbiter.v1 import program_pb2  # type: ignore[import-not-found, unused-ignore]

from ._money import (
    apportion,
    money_to_points_floor,
    money_to_points_rounded,
    points_value,
    round_bp,
    round_half_up,
)
from ._program import BenefitInfo
from ._state import ORDER_WIDE, Calc, Out, State, make_out

# Rule 14: the multiple a round_price mode rounds to, in minor units, and whether it floors.
_ROUND_STEP: dict[int, tuple[int, bool]] = {
    program_pb2.ROUND_MODE_ROUND_INTEGER: (100, False),
    program_pb2.ROUND_MODE_ROUND_HALF: (50, False),
    program_pb2.ROUND_MODE_FLOOR_INTEGER: (100, True),
    program_pb2.ROUND_MODE_FLOOR_TENS: (1000, True),
    program_pb2.ROUND_MODE_ROUND_TENS: (1000, False),
}


def _units_acted_on(
    calc: Calc, state: State, lines: tuple[int, ...], max_items: int
) -> list[tuple[int, int, int]]:
    """Rule 10: ``(line, units, their price to pay)`` for the units a benefit acts on.

    Without ``max_items`` every unit of every line; with it the most expensive units first by the
    exact unit price to pay (price / quantity), ties to the lower line.
    """
    if max_items <= 0:
        return [(line, calc.quantity[line], state.price[line]) for line in lines]

    def dearer_first(a: int, b: int) -> int:
        left = state.price[a] * calc.quantity[b]
        right = state.price[b] * calc.quantity[a]
        if left != right:
            return -1 if left > right else 1
        return -1 if a < b else (1 if a > b else 0)

    chosen: list[tuple[int, int, int]] = []
    left_units = max_items
    for line in sorted(lines, key=cmp_to_key(dearer_first)):
        if left_units <= 0:
            break
        quantity = calc.quantity[line]
        units = min(quantity, left_units)
        left_units -= units
        price = state.price[line]
        chosen_price = price if units == quantity else round_half_up(price * units, quantity)
        chosen.append((line, units, chosen_price))
    chosen.sort()
    return chosen


def _discount(calc: Calc, info: BenefitInfo, lines: tuple[int, ...], state: State) -> Out | None:
    kind, value = info.value_kind, info.value
    if info.level == "order":
        to_pay = [state.price[line] for line in lines]
        total = sum(to_pay)
        if kind == "percent_bp":
            amount = round_bp(total, value)
        elif kind == "amount":
            amount = min(max(0, value), total)
        else:
            return None  # fixed_price belongs in product rules (config error)
        shares = apportion(amount, to_pay)
        shared = {
            line: min(share, price)
            for line, share, price in zip(lines, shares, to_pay, strict=True)
        }
        return make_out(money=shared)
    money: dict[int, int] = {}
    for line, units, price in _units_acted_on(calc, state, lines, info.max_items):
        if kind == "percent_bp":
            off = round_bp(price, value)
        elif kind == "amount":
            off = value * units
        elif kind == "fixed_price":
            off = price - max(0, value) * units
        else:
            off = 0
        money[line] = max(0, min(off, price))
    return make_out(money=money)


def _price_from_field(
    calc: Calc, info: BenefitInfo, lines: tuple[int, ...], state: State
) -> Out | None:
    money: dict[int, int] = {}
    for line in lines:
        fields = calc.order.lines[line].fields
        if info.field not in fields:
            continue
        unit = max(0, round_bp(fields[info.field], info.factor_bp))
        new_price = unit * calc.quantity[line]
        if new_price < state.price[line]:
            money[line] = state.price[line] - new_price
    return make_out(money=money)


def _round_price(calc: Calc, info: BenefitInfo, lines: tuple[int, ...], state: State) -> Out | None:
    step, floor = _ROUND_STEP.get(info.round_mode, (100, False))
    money: dict[int, int] = {}
    for line in lines:
        price = state.price[line]
        quantity = calc.quantity[line]
        if floor:
            unit = price // (quantity * step) * step
        else:
            unit = (2 * price + quantity * step) // (2 * quantity * step) * step
        ceiling = calc.base[line] - state.paid[line]
        new_price = min(unit * quantity, ceiling)
        money[line] = price - new_price
    return make_out(money=money)


def _partner_discount(
    calc: Calc, info: BenefitInfo, lines: tuple[int, ...], state: State
) -> Out | None:
    money: dict[int, int] = {}
    for line in lines:
        partner = calc.order.lines[line].partner
        if partner in info.partners and partner in calc.prog.partners:
            discount_bp = calc.prog.partners[partner][0]
            money[line] = min(state.price[line], max(0, round_bp(state.price[line], discount_bp)))
    return make_out(money=money)


def _shipping_discount(calc: Calc, info: BenefitInfo, state: State) -> Out | None:
    left = max(0, state.ship_left)
    if info.value_kind == "percent_bp":
        amount = round_bp(left, info.value)
    elif info.value_kind == "amount":
        amount = min(max(0, info.value), left)
    else:
        return None
    return make_out(money={ORDER_WIDE: min(amount, left)})


def _pay_with_points(
    calc: Calc, info: BenefitInfo, lines: tuple[int, ...], state: State
) -> Out | None:
    budget = state.budget.get(info.point_type, 0)
    if budget <= 0 or info.point_type not in calc.ratio:
        return None
    ratio_points, ratio_money = calc.ratio[info.point_type]
    kind, value = info.value_kind, max(0, info.value)
    if info.level == "order":
        to_pay = [state.price[line] for line in lines]
        total = sum(to_pay)
        if kind == "percent_bp":
            cap_points = money_to_points_floor(round_bp(total, value), ratio_points, ratio_money)
        elif kind == "amount":
            cap_points = money_to_points_floor(min(value, total), ratio_points, ratio_money)
        elif kind == "points":
            cap_points = min(value, money_to_points_floor(total, ratio_points, ratio_money))
        else:
            return None
        used = min(cap_points, budget)
        shares = apportion(used, to_pay)
        money: dict[int, int] = {}
        points: dict[int, int] = {}
        for line, share, price in zip(lines, shares, to_pay, strict=True):
            # Points a line cannot hold within its price to pay are dropped (rule 8).
            kept = min(share, money_to_points_floor(price, ratio_points, ratio_money))
            points[line] = kept
            money[line] = points_value(kept, ratio_points, ratio_money)
        return make_out(money=money, points=points)

    acted = _units_acted_on(calc, state, lines, info.max_items)
    caps_money: list[int] = []
    caps_points: list[int] = []
    for _, units, price in acted:
        if kind == "percent_bp":
            cap = round_bp(price, value)
            cap_points = money_to_points_floor(cap, ratio_points, ratio_money)
        elif kind == "amount":
            cap = min(value * units, price)
            cap_points = money_to_points_floor(cap, ratio_points, ratio_money)
        elif kind == "points":
            cap = price
            cap_points = min(value * units, money_to_points_floor(price, ratio_points, ratio_money))
        else:
            return None
        caps_money.append(min(cap, price))
        caps_points.append(cap_points)
    # Rule 8: whole-point caps above the budget share the budget in proportion to them.
    used_points = apportion(budget, caps_points) if sum(caps_points) > budget else caps_points
    money = {}
    points = {}
    for (line, _, _), used, cap in zip(acted, used_points, caps_money, strict=True):
        points[line] = used
        money[line] = min(points_value(used, ratio_points, ratio_money), cap)
    return make_out(money=money, points=points)


def _accrual_points(calc: Calc, info: BenefitInfo, money: int) -> int:
    ratio_points, ratio_money = calc.ratio[info.point_type]
    return money_to_points_rounded(money, ratio_points, ratio_money)


def _accrue_points(
    calc: Calc, info: BenefitInfo, lines: tuple[int, ...], state: State
) -> Out | None:
    kind, value = info.value_kind, max(0, info.value)
    if info.level == "order":
        if kind == "percent_bp":
            base = sum(state.price[line] for line in lines)
            return make_out(points={ORDER_WIDE: _accrual_points(calc, info, round_bp(base, value))})
        if kind == "points":
            return make_out(points={ORDER_WIDE: value})
        return None
    points: dict[int, int] = {}
    for line in lines:
        if kind == "percent_bp":
            points[line] = _accrual_points(calc, info, round_bp(state.price[line], value))
        elif kind == "points":
            points[line] = value * calc.quantity[line]
    return make_out(points=points)


def _accrue_per_spent(
    calc: Calc, info: BenefitInfo, lines: tuple[int, ...], state: State
) -> Out | None:
    if info.per_amount <= 0:
        return None
    bases = [state.price[line] for line in lines]
    total = (sum(bases) // info.per_amount) * max(0, info.points)
    if info.level == "order":
        return make_out(points={ORDER_WIDE: total})
    shares = apportion(total, bases)
    return make_out(points=dict(zip(lines, shares, strict=True)))


def _accrue_from_field(
    calc: Calc, info: BenefitInfo, lines: tuple[int, ...], state: State
) -> Out | None:
    points: dict[int, int] = {}
    for line in lines:
        fields = calc.order.lines[line].fields
        if info.field in fields:
            points[line] = max(0, fields[info.field]) * calc.quantity[line]
    return make_out(points=points)


def _partner_points(
    calc: Calc, info: BenefitInfo, lines: tuple[int, ...], state: State
) -> Out | None:
    points: dict[int, int] = {}
    for line in lines:
        partner = calc.order.lines[line].partner
        if partner in info.partners and partner in calc.prog.partners:
            points_bp = max(0, calc.prog.partners[partner][1])
            points[line] = _accrual_points(calc, info, round_bp(state.price[line], points_bp))
    return make_out(points=points)


def evaluate_benefit(
    calc: Calc, info: BenefitInfo, lines: tuple[int, ...], state: State
) -> Out | None:
    """One benefit on one state; ``lines`` are its rule's matching lines (every line at ORDER
    level). Returns None for an empty effect."""
    name = info.name
    product = info.level == "product"
    if name == "text":
        if product:
            return make_out(text=lines)
        return make_out(text=(ORDER_WIDE,))
    # Rule 3 and rule 20: no member, or a type that cannot accrue, no points.
    if info.category == "accrue" and (
        calc.member is None or info.point_type not in calc.accrue_ok
    ):
        return None
    if name == "discount":
        return _discount(calc, info, lines, state)
    if name == "shipping_discount":
        return None if product else _shipping_discount(calc, info, state)
    if name == "pay_with_points":
        return _pay_with_points(calc, info, lines, state)
    if name == "accrue_points":
        return _accrue_points(calc, info, lines, state)
    if name == "accrue_per_spent":
        return _accrue_per_spent(calc, info, lines, state)
    if not product:
        return None  # per-unit kinds belong in product rules (config error)
    if name == "price_from_field":
        return _price_from_field(calc, info, lines, state)
    if name == "round_price":
        return _round_price(calc, info, lines, state)
    if name == "partner_discount":
        return _partner_discount(calc, info, lines, state)
    if name == "accrue_from_field":
        return _accrue_from_field(calc, info, lines, state)
    if name == "partner_points":
        return _partner_points(calc, info, lines, state)
    raise AssertionError(name)
