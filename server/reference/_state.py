"""States, effects, rule 6 (making a sum valid), node limits (rules 11, 23) and the benefit measure.

A *state* (docs/rules.md) is kept as per-line running totals (price to pay, money discount,
money paid with points), the points budget left per type and the shipping left to pay.

An *effect* is what benefits did, relative to the state they were evaluated on: a dict from the
benefit's tree-order index to an :class:`Out`, so that the benefit table always adds up. In one
path through the tree a benefit is evaluated at most once, so effects of siblings never share a
benefit and adding effects is a dict union.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from ._money import apportion, money_to_points_floor, points_value, round_bp
from ._program import BenefitInfo, LimitsInfo, ReferenceProgram
from ._select import Member, OrderView

ORDER_WIDE = -1  # the "line" of order-wide entries: order-level accruals, shipping, order texts


@dataclass(frozen=True, slots=True)
class Out:
    """What one benefit did. ``money``: line -> money discount (negative for a price rise), money
    paid with points, or shipping discount (at ORDER_WIDE); ``points``: line -> points paid or
    accrued; ``text``: the lines (or ORDER_WIDE) where a text benefit emits its text.

    Never holds a zero entry; never empty. The dicts are never mutated once the Out is shared.
    """

    money: dict[int, int] = field(default_factory=dict)
    points: dict[int, int] = field(default_factory=dict)
    text: frozenset[int] = frozenset()

    def lines(self) -> set[int]:
        return set(self.money) | set(self.points) | set(self.text)


Effect = dict[int, Out]


def make_out(
    money: dict[int, int] | None = None,
    points: dict[int, int] | None = None,
    text: Iterable[int] = (),
) -> Out | None:
    """An Out without its zero entries, or None when nothing is left."""
    money_clean = {k: v for k, v in (money or {}).items() if v != 0}
    points_clean = {k: v for k, v in (points or {}).items() if v != 0}
    text_set = frozenset(text)
    if not money_clean and not points_clean and not text_set:
        return None
    return Out(money_clean, points_clean, text_set)


@dataclass(frozen=True, slots=True)
class Calc:
    """Everything about one calculation that does not change while the tree is evaluated."""

    prog: ReferenceProgram
    order: OrderView
    member: Member | None
    now_ns: int
    base: tuple[int, ...]  # base price per line
    quantity: tuple[int, ...]
    unit_price: tuple[int, ...]
    eligible: frozenset[int]  # promotion indices selected (docs/rules.md)
    product_rule_lines: dict[tuple[int, int], tuple[int, ...]]  # (promotion, rule) -> lines
    order_rule_ok: dict[tuple[int, int], bool]
    budget: dict[str, int]  # initial points budget per type (rule 3, rule 20)
    accrue_ok: frozenset[str]  # point types that may accrue
    ratio: dict[str, tuple[int, int]]  # point type -> (points, money)

    @property
    def benefits(self) -> tuple[BenefitInfo, ...]:
        return self.prog.benefits

    @property
    def line_count(self) -> int:
        return len(self.base)


@dataclass(frozen=True, slots=True)
class State:
    price: tuple[int, ...]  # price to pay per line
    disc: tuple[int, ...]  # money discount so far (net of price rises)
    paid: tuple[int, ...]  # money paid with points so far
    budget: dict[str, int]  # points budget left per type
    ship_left: int


def initial_state(calc: Calc) -> State:
    zeros = tuple(0 for _ in calc.base)
    return State(calc.base, zeros, zeros, dict(calc.budget), calc.order.shipping_cost)


def apply_effect(calc: Calc, state: State, effect: Effect) -> State:
    """The state an effect (evaluated on ``state``) leaves."""
    if not effect:
        return state
    price = list(state.price)
    disc = list(state.disc)
    paid = list(state.paid)
    budget = dict(state.budget)
    ship_left = state.ship_left
    benefits = calc.benefits
    for index, out in effect.items():
        info = benefits[index]
        category = info.category
        if category == "disc":
            for line, money in out.money.items():
                disc[line] += money
                price[line] -= money
        elif category == "pay":
            for line, money in out.money.items():
                paid[line] += money
                price[line] -= money
            budget[info.point_type] = budget.get(info.point_type, 0) - sum(out.points.values())
        elif category == "ship":
            ship_left -= sum(out.money.values())
    return State(tuple(price), tuple(disc), tuple(paid), budget, ship_left)


def union(effects: Iterable[Effect]) -> Effect:
    """The sum of effects of disjoint subtrees (no benefit twice)."""
    total: Effect = {}
    for effect in effects:
        for index, out in effect.items():
            assert index not in total, index
            total[index] = out
    return total


class _Editor:
    """Copy-on-write editing of an effect's entries during cuts."""

    __slots__ = ("_copied", "effect")

    def __init__(self, effect: Effect) -> None:
        self.effect: Effect = dict(effect)
        self._copied: set[int] = set()

    def _own(self, index: int) -> Out:
        out = self.effect[index]
        if index not in self._copied:
            out = Out(dict(out.money), dict(out.points), out.text)
            self.effect[index] = out
            self._copied.add(index)
        return out

    def money(self, index: int, line: int) -> int:
        return self.effect[index].money.get(line, 0)

    def points(self, index: int, line: int) -> int:
        return self.effect[index].points.get(line, 0)

    def set_money(self, index: int, line: int, money: int) -> None:
        self._own(index).money[line] = money

    def set_pay(self, index: int, line: int, points: int, money: int) -> None:
        out = self._own(index)
        out.points[line] = points
        out.money[line] = money

    def finish(self) -> Effect:
        result: Effect = {}
        for index, out in self.effect.items():
            if index in self._copied:
                cleaned = make_out(out.money, out.points, out.text)
                if cleaned is not None:
                    result[index] = cleaned
            else:
                result[index] = out
        return result


def _line_entries(calc: Calc, effect: Effect) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Per line, the money-discount benefits and the points-paying benefits, in tree order."""
    discs: dict[int, list[int]] = {}
    pays: dict[int, list[int]] = {}
    benefits = calc.benefits
    for index in sorted(effect):
        category = benefits[index].category
        if category == "disc":
            for line in effect[index].money:
                discs.setdefault(line, []).append(index)
        elif category == "pay":
            for line in effect[index].money.keys() | effect[index].points.keys():
                pays.setdefault(line, []).append(index)
    return discs, pays


def _cut_line(
    calc: Calc, editor: _Editor, line: int, excess: int, pays: list[int], discs: list[int]
) -> None:
    """Take ``excess`` money off what ``pays`` and ``discs`` do on ``line``: points first (each
    keeping whole points, rule 7; an overshoot is not given back), then the positive money
    discounts in proportion (rule 23), largest remainder, ties to the earlier benefit."""
    if excess <= 0:
        return
    effect = editor.effect
    if pays:
        paying: list[int] = []
        paid: list[int] = []
        for index in pays:
            money = effect[index].money.get(line, 0)
            if money > 0:
                paying.append(index)
                paid.append(money)
        if paid:
            points_cut = min(excess, sum(paid))
            shares = apportion(points_cut, paid)
            for index, money, share in zip(paying, paid, shares, strict=True):
                if share <= 0:
                    continue
                ratio_points, ratio_money = calc.ratio[calc.benefits[index].point_type]
                kept = money_to_points_floor(money - share, ratio_points, ratio_money)
                kept = min(kept, editor.points(index, line))
                editor.set_pay(index, line, kept, points_value(kept, ratio_points, ratio_money))
            excess -= points_cut
            if excess <= 0:
                return
    discounting: list[int] = []
    discounted: list[int] = []
    for index in discs:
        money = effect[index].money.get(line, 0)
        if money > 0:
            discounting.append(index)
            discounted.append(money)
    if not discounted:
        return
    shares = apportion(min(excess, sum(discounted)), discounted)
    for index, money, share in zip(discounting, discounted, shares, strict=True):
        if share > 0:
            editor.set_money(index, line, money - share)


def make_valid(calc: Calc, state: State, effect: Effect) -> Effect:
    """Rule 6: make a sum of effects evaluated on ``state`` valid, (a) budget, (b) lines, (c)
    shipping, every cut by largest remainder in tree order then line order."""
    if not effect:
        return effect
    benefits = calc.benefits
    editor = _Editor(effect)
    ordered = sorted(effect)

    # (a) per point type, points above the budget left, cut in proportion to each entry's points.
    by_type: dict[str, list[tuple[int, int]]] = {}
    for index in ordered:
        info = benefits[index]
        if info.category == "pay":
            for line in sorted(effect[index].points):
                by_type.setdefault(info.point_type, []).append((index, line))
    for point_type, entries in by_type.items():
        points = [editor.points(index, line) for index, line in entries]
        left = max(0, state.budget.get(point_type, 0))
        total = sum(points)
        if total <= left:
            continue
        ratio_points, ratio_money = calc.ratio[point_type]
        shares = apportion(total - left, points)
        for (index, line), had, share in zip(entries, points, shares, strict=True):
            if share > 0:
                kept = had - share
                editor.set_pay(index, line, kept, points_value(kept, ratio_points, ratio_money))

    # (b) per line: price rises first, then what the sum adds beyond the price to pay. A first
    # pass finds the lines that need a cut; most lines of most sums need none.
    net_discount = [0] * calc.line_count
    net_paid = [0] * calc.line_count
    for index, out in editor.effect.items():
        category = benefits[index].category
        if category == "disc":
            for line, money in out.money.items():
                net_discount[line] += money
        elif category == "pay":
            for line, money in out.money.items():
                net_paid[line] += money
    to_fix = [
        line
        for line in range(calc.line_count)
        if state.disc[line] + net_discount[line] < 0
        or net_discount[line] + net_paid[line] > state.price[line]
    ]
    discs, pays = _line_entries(calc, effect) if to_fix else ({}, {})
    for line in to_fix:
        line_discs = discs.get(line, [])
        line_pays = pays.get(line, [])
        net = sum(editor.money(index, line) for index in line_discs)
        if state.disc[line] + net < 0:
            rises = [(index, -editor.money(index, line)) for index in line_discs]
            rises = [(index, rise) for index, rise in rises if rise > 0]
            excess = min(-(state.disc[line] + net), sum(rise for _, rise in rises))
            shares = apportion(excess, [rise for _, rise in rises])
            for (index, rise), share in zip(rises, shares, strict=True):
                if share > 0:
                    editor.set_money(index, line, -(rise - share))
            net = sum(editor.money(index, line) for index in line_discs)
        added = net + sum(editor.money(index, line) for index in line_pays)
        if added > state.price[line]:
            _cut_line(calc, editor, line, added - state.price[line], line_pays, line_discs)

    # (c) shipping discounts above the shipping left to pay.
    ships = [index for index in ordered if benefits[index].category == "ship"]
    if ships:
        amounts = [editor.money(index, ORDER_WIDE) for index in ships]
        total = sum(amounts)
        left = max(0, state.ship_left)
        if total > left:
            shares = apportion(total - left, amounts)
            for index, had, share in zip(ships, amounts, shares, strict=True):
                if share > 0:
                    editor.set_money(index, ORDER_WIDE, had - share)
    return editor.finish()


def added_per_line(calc: Calc, effect: Effect) -> list[int]:
    """What an effect adds per line: money discount (net of rises) plus money paid with points."""
    added = [0] * calc.line_count
    benefits = calc.benefits
    for index, out in effect.items():
        if benefits[index].category in ("disc", "pay"):
            for line, money in out.money.items():
                if line != ORDER_WIDE:
                    added[line] += money
    return added


def apply_limits(
    calc: Calc,
    state: State,
    effect: Effect,
    limits: LimitsInfo,
    caps: list[int | None] | None = None,
) -> Effect:
    """Rule 11: a node's limits on what it adds to the state it entered with; ``caps`` are the
    node's ``line_caps`` on ``state`` when the caller has them already."""
    if limits.empty or not effect:
        return effect
    if caps is None:
        caps = line_caps(calc, state, limits)
    editor = _Editor(effect)
    discs, pays = _line_entries(calc, effect)
    added = added_per_line(calc, effect)

    def line_added(line: int) -> int:
        return sum(editor.money(index, line) for index in discs.get(line, [])) + sum(
            editor.money(index, line) for index in pays.get(line, [])
        )

    for line in range(calc.line_count):
        if added[line] <= 0:
            continue
        cap = caps[line]
        if cap is not None and added[line] > cap:
            _cut_line(
                calc, editor, line, added[line] - cap, pays.get(line, []), discs.get(line, [])
            )
            added[line] = line_added(line)

    if limits.max_discount_amount > 0:
        total = sum(added)
        if total > limits.max_discount_amount:
            weights = [max(0, a) for a in added]
            shares = apportion(total - limits.max_discount_amount, weights)
            for line, share in enumerate(shares):
                if share > 0:
                    _cut_line(
                        calc, editor, line, share, pays.get(line, []), discs.get(line, [])
                    )
    return editor.finish()


def line_caps(calc: Calc, state: State, limits: LimitsInfo) -> list[int | None]:
    """Rule 11: per line, the most a node entered with ``state`` may add (never below 0), or
    None when no per-line limit is set."""
    result: list[int | None] = []
    for line in range(calc.line_count):
        entered = state.price[line]
        quantity = calc.quantity[line]
        caps: list[int] = []
        if limits.max_discount_bp > 0:
            caps.append(round_bp(entered, limits.max_discount_bp))
        if limits.min_unit_price > 0:
            caps.append(entered - quantity * limits.min_unit_price)
        if limits.min_unit_price_bp > 0:
            floor_unit = round_bp(calc.unit_price[line], limits.min_unit_price_bp)
            caps.append(entered - quantity * floor_unit)
        result.append(max(0, min(caps)) if caps else None)
    return result


def measure_bound(
    calc: Calc, state: State, effect: Effect, limits: LimitsInfo, caps: list[int | None]
) -> int:
    """An upper bound of ``measure(apply_limits(make_valid(effect)))`` for effects evaluated on
    ``state``, computed without cutting anything: MAX_BENEFIT skips the candidates whose bound
    already ranks after the best one found. It changes no result, only the time spent.

    Rule 6 and the limits only take money off (rises are only brought back towards 0, points only
    cut, positive discounts only cut) and never touch accruals, so on each line what is added at
    the end is at most the price to pay, the positive discounts plus the points paid, and the
    line's cap; the points paid of a type are at most the budget's worth (plus one for each
    entry's half-up rounding); the whole order keeps at most ``max_discount_amount``; shipping
    discounts keep at most the shipping left.
    """
    count = calc.line_count
    positive = [0] * count
    paid = [0] * count
    paid_by_type: dict[str, int] = {}
    entries_by_type: dict[str, int] = {}
    shipping = 0
    accrued: dict[str, int] = {}
    benefits = calc.benefits
    for index, out in effect.items():
        info = benefits[index]
        category = info.category
        if category == "disc":
            for line, money in out.money.items():
                if money > 0:
                    positive[line] += money
        elif category == "pay":
            for line, money in out.money.items():
                paid[line] += money
            point_type = info.point_type
            paid_by_type[point_type] = paid_by_type.get(point_type, 0) + sum(out.money.values())
            entries_by_type[point_type] = entries_by_type.get(point_type, 0) + len(out.money)
        elif category == "ship":
            shipping += sum(out.money.values())
        elif category == "accrue":
            accrued[info.point_type] = accrued.get(info.point_type, 0) + sum(out.points.values())
    with_points = 0  # lines bounded with their points as given
    without_points = 0  # lines bounded without points, the points bounded by the budgets
    for line in range(count):
        cap = caps[line]
        bound = state.price[line] if cap is None else min(state.price[line], cap)
        with_points += min(bound, positive[line] + paid[line])
        without_points += min(bound, positive[line])
    for point_type, money in paid_by_type.items():
        ratio_points, ratio_money = calc.ratio[point_type]
        budget = max(0, state.budget.get(point_type, 0))
        worth = budget * ratio_money // ratio_points + 1 + entries_by_type[point_type]
        without_points += min(money, worth)
    lines_total = min(with_points, without_points)
    if limits.max_discount_amount > 0:
        lines_total = min(lines_total, limits.max_discount_amount)
    total = lines_total + min(shipping, max(0, state.ship_left))
    for point_type, points in accrued.items():
        ratio_points, ratio_money = calc.ratio[point_type]
        total += points_value(points, ratio_points, ratio_money)
    return total


def measure(calc: Calc, effect: Effect) -> int:
    """The benefit of an effect (rule 12): money discounts (rises negative), money paid with
    points, shipping discounts, and per point type the money value of its accrued points."""
    total = 0
    accrued: dict[str, int] = {}
    benefits = calc.benefits
    for index, out in effect.items():
        info = benefits[index]
        if info.category in ("disc", "pay", "ship"):
            total += sum(out.money.values())
        elif info.category == "accrue":
            accrued[info.point_type] = accrued.get(info.point_type, 0) + sum(out.points.values())
    for point_type, points in accrued.items():
        ratio_points, ratio_money = calc.ratio[point_type]
        total += points_value(points, ratio_points, ratio_money)
    return total
