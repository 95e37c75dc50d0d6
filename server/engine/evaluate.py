"""One calculation (docs/rules.md): select, evaluate the tree on the initial state, report."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any, cast
from zoneinfo import ZoneInfo

from arbiter.server.engine import core
from arbiter.server.engine.compile import CompiledProgram
from arbiter.server.engine.render import format_money, render_template
from arbiter.server.engine.select import Selection, select
from arbiter.server.engine.single import Entry, Single, State
from arbiter.server.engine.types import (
    AppliedBenefit,
    CalculationResult,
    CodeUsage,
    LineResult,
    MemberState,
    OrderInput,
    PointsChange,
    PromoCodeResult,
    Totals,
)
from arbiter.v1 import program_pb2 as pb

__all__ = ["calculate", "portions", "report", "start"]


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def portions(quantity: int, final_price: int) -> tuple[tuple[int, int], ...]:
    """Receipt portions (docs/rules.md): r units at final // q + 1, then q - r at final // q."""
    if quantity <= 0:
        return ()
    unit, r = divmod(final_price, quantity)
    return ((r, unit + 1), (quantity - r, unit)) if r else ((quantity, unit),)


def calculate(
    program: CompiledProgram,
    order: OrderInput,
    member: MemberState | None,
    *,
    now: datetime,
    usage: CodeUsage | None = None,
) -> CalculationResult:
    """The whole calculation of docs/rules.md for one (validated) order."""
    at, _zone, sel, requested, single, state = start(program, order, member, now, usage)
    tree = core.evaluate(single, program.root, state)
    entries = tree.entries() if tree is not None else single.evaluate(program.root, state)
    return report(program, order, member, at, entries, requested, sel.codes)


def start(
    program: CompiledProgram,
    order: OrderInput,
    member: MemberState | None,
    now: datetime,
    usage: CodeUsage | None,
) -> tuple[datetime, ZoneInfo, Selection, dict[str, int], Single, State]:
    """A calculation up to its tree (shared with the traced one, `trace.calculate_traced`): the
    instant and zone, the selection, the redemptions asked, the one-state evaluator and the
    initial state (base prices, the points budget per type, the shipping)."""
    at = order.created_at or now
    zone = _zone(order.time_zone) if order.time_zone else program.zone
    sel = select(program, order, member, at, zone, usage)
    requested: dict[str, int] = {}
    for type_id, points in order.redeem:
        requested[type_id] = requested.get(type_id, 0) + points
    n_types = max(len(program.point_types), 1)
    budget = [0] * n_types
    accrues: list[bool] = []
    for t in program.point_types:
        usable = (
            member is not None and t.active and (t.deactivate_at is None or at < t.deactivate_at)
        )
        accrues.append(usable)
        if usable and member is not None and t.kind == pb.POINT_KIND_STANDARD:
            budget[t.index] = max(0, min(requested.get(t.id, 0), member.balances.get(t.id, 0)))
    single = Single(program, order, sel, tuple(accrues))
    return at, zone, sel, requested, single, single.initial(budget, order.shipping_cost)


# Rule 17: by line in the order's line order, order-wide rows last, then tree order.
_tree_order = itemgetter(0)
_new_row = tuple.__new__  # AppliedBenefit without its generated __new__'s keyword handling


def report(
    program: CompiledProgram,
    order: OrderInput,
    member: MemberState | None,
    at: datetime,
    entries: list[Entry],
    requested: dict[str, int],
    codes: tuple,  # type: ignore[type-arg]
) -> CalculationResult:
    benefits = program.benefits
    promotions = program.promotions
    point_types = program.point_types
    infos = cast(tuple[tuple[Any, ...], ...], program.row_info)  # read as objects (see below)
    n_lines = len(order.lines)
    line_ids = [line.id for line in order.lines]
    disc_by_line = [0] * n_lines
    pmon_by_line = [0] * n_lines
    shipping_discount = 0
    redeemed = [0] * len(point_types)
    accrued = [0] * len(point_types)
    pending = [0] * len(point_types)
    shown: set[int] = set()
    rows: list[AppliedBenefit] = []
    # Rule 17's order by buckets: a line's entries come in tree order but for a cut or a
    # MAX_BENEFIT candidate's order, so a bucket is sorted only when it is not.
    buckets: list[list[Entry]] = [[] for _ in range(n_lines + 1)]
    for x in entries:
        buckets[x[1]].append(x)
    new_row: Any = _new_row
    row_type: Any = AppliedBenefit
    for at_line in range(n_lines + 1):
        bucket = buckets[at_line]
        if not bucket:
            continue
        last = -1
        for x in bucket:
            if x[0] < last:
                bucket.sort(key=_tree_order)
                break
            last = x[0]
        line_id = line_ids[at_line] if at_line < n_lines else ""
        # Read by index: the row's fields only pass through into the result's rows.
        for row in cast(list[tuple[Any, ...]], bucket):
            k: int = row[0]
            info = infos[k]
            if row[7]:
                shown.add(k)
            disc = row[2]
            pmon = row[3]
            if at_line < n_lines:
                if disc:
                    disc_by_line[at_line] += disc
                if pmon:
                    pmon_by_line[at_line] += pmon
            ship = row[6]
            if ship:
                shipping_discount += ship
                rows.append(new_row(row_type, ("", info[1], info[2], info[3], ship, 0, "", "")))
            elif disc:
                rows.append(
                    new_row(row_type, (line_id, info[1], info[2], info[3], disc, 0, "", ""))
                )
            else:
                ppts = row[4]
                if pmon or ppts:
                    redeemed[info[4]] += ppts
                    rows.append(
                        new_row(
                            row_type,
                            (line_id, info[1], info[2], info[3], pmon, ppts, info[5], ""),
                        )
                    )
                    continue
                acc = row[5]
                if acc:
                    timing = info[6]
                    if timing == "ON_DELIVERY":
                        pending[info[4]] += acc
                    else:
                        accrued[info[4]] += acc
                    rows.append(
                        new_row(
                            row_type, (line_id, info[1], info[2], info[3], 0, acc, info[5], timing)
                        )
                    )
    line_results: list[LineResult] = []
    subtotal = discount = paid = items = 0
    for i, line in enumerate(order.lines):
        q = line.quantity
        base = line.unit_price * q
        d = disc_by_line[i]
        p = pmon_by_line[i]
        final = base - d - p
        subtotal += base
        discount += d
        paid += p
        items += q
        line_results.append(_new_row(LineResult, (line.id, base, d, p, final, portions(q, final))))
    total = subtotal - discount - paid + order.shipping_cost - shipping_discount
    totals = Totals(subtotal, discount, paid, order.shipping_cost, shipping_discount, total, items)

    points = tuple(
        PointsChange(
            t.id, requested.get(t.id, 0), redeemed[t.index], accrued[t.index], pending[t.index]
        )
        for t in point_types
        if requested.get(t.id, 0) or redeemed[t.index] or accrued[t.index] or pending[t.index]
    )

    texts: list[str] = []
    text_benefits = [benefits[k] for k in sorted(shown) if benefits[k].kind == "text"]
    if text_benefits:
        balances = member.balances if member is not None else {}
        type_index = program.point_type_index

        values: dict[str, str] = {}

        def value_of(name: str) -> str | None:
            """A placeholder's value (rule 16), computed only when a template names it."""
            if name in values:
                return values[name]
            if name == "member.id":
                return member.member_id if member is not None else ""
            if name == "order.id":
                return order.id
            if name == "order.subtotal":
                return format_money(subtotal)
            if name == "order.discount":
                return format_money(discount)
            if name == "order.total":
                return format_money(total)
            if name == "order.items":
                return str(totals.items)
            if name == "order.shipping":
                return format_money(order.shipping_cost)
            for prefix in ("points.accrued.", "points.redeemed.", "balance."):
                if name.startswith(prefix):
                    type_id = name[len(prefix) :]
                    t = type_index.get(type_id)
                    if t is None:
                        return None
                    if prefix == "balance.":
                        return str(balances.get(type_id, 0))
                    if prefix == "points.redeemed.":
                        return str(redeemed[t])
                    return str(accrued[t] + pending[t])
            return None

        for b in text_benefits:
            values["promotion.name"] = promotions[b.promotion].name
            texts.append(render_template(b.template_parts, value_of))

    code_results: list[PromoCodeResult] = []
    applied_pools: set[str] = set()
    pools: set[str] | None = None  # of the promotions that contributed, when a code asks
    for c in codes:
        if c.reason:
            code_results.append(PromoCodeResult(c.code, "INVALID", c.reason, c.pool))
            continue
        if pools is None:
            pools = {promotions[infos[x[0]][0]].pool for x in entries}
        if c.pool not in pools:
            code_results.append(
                PromoCodeResult(c.code, "NOT_APPLIED", "NO_PROMOTION_APPLIED", c.pool)
            )
        elif c.pool in applied_pools:
            code_results.append(
                PromoCodeResult(c.code, "NOT_APPLIED", "ANOTHER_CODE_APPLIED", c.pool)
            )
        else:
            applied_pools.add(c.pool)
            code_results.append(PromoCodeResult(c.code, "APPLIED", "", c.pool))

    return CalculationResult(
        evaluated_at=at,
        totals=totals,
        lines=tuple(line_results),
        benefits=tuple(rows),
        points=points,
        texts=tuple(texts),
        promo_codes=tuple(code_results),
    )
