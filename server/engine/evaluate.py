"""One calculation (docs/rules.md): select, evaluate the tree on the initial state, report."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from arbiter.server.engine import core
from arbiter.server.engine.compile import CompiledProgram
from arbiter.server.engine.errors import out_of_range
from arbiter.server.engine.render import format_money, render_template
from arbiter.server.engine.select import CodeCheck, Selection, select
from arbiter.server.engine.single import Single
from arbiter.server.engine.types import (
    AppliedBenefit,
    CalculationResult,
    CodeUsage,
    LineResult,
    MemberState,
    OrderInput,
    PromoCodeResult,
)
from arbiter.v1 import program_pb2 as pb

__all__ = ["calculate", "calculate_packed", "report", "start", "tree"]


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def calculate(
    program: CompiledProgram,
    order: OrderInput,
    member: MemberState | None,
    *,
    now: datetime,
    usage: CodeUsage | None = None,
) -> CalculationResult:
    """The whole calculation of docs/rules.md for one (validated) order."""
    at, _zone, sel, requested, single = start(program, order, member, now, usage)
    return report(program, order, member, at, tree(single, program), requested, sel.codes)


def tree(single: Single, program: CompiledProgram) -> core.Calc:
    """The tree evaluated on the initial state by the typed core (which makes that state
    itself); refused (InvalidOrder) when an input is beyond its range (docs/rules.md, "The
    range of the arithmetic")."""
    calc = core.evaluate(single, program.root)
    if calc is None:
        raise out_of_range()
    return calc


def start(
    program: CompiledProgram,
    order: OrderInput,
    member: MemberState | None,
    now: datetime,
    usage: CodeUsage | None,
) -> tuple[datetime, ZoneInfo, Selection, dict[str, int], Single]:
    """A calculation up to its tree (shared with the traced one, `trace.calculate_traced`): the
    instant and zone, the selection, the redemptions asked and the one-state evaluator, which
    holds what the initial state is made of (`Single.initial()`: base prices, the points budget
    per type, the shipping)."""
    core.overflowed()  # forget what an earlier, refused calculation left
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
    return at, zone, sel, requested, Single(program, order, sel, tuple(accrues), budget)


def report(
    program: CompiledProgram,
    order: OrderInput,
    member: MemberState | None,
    at: datetime,
    calc: core.Calc,
    requested: dict[str, int],
    codes: tuple[CodeCheck, ...],
) -> CalculationResult:
    """The result of a calculation whose tree `calc` evaluated (docs/contract.md): its rows,
    lines, totals and points written by the typed core (`Calc.report`), then the texts (rule
    16) and the promo codes (rule 19)."""
    rep = calc.report(order, requested)
    assert isinstance(rep.rows, tuple) and isinstance(rep.lines, tuple)
    return _result(program, order, member, at, calc, rep, rep.rows, rep.lines, codes)


def calculate_packed(
    program: CompiledProgram,
    order: OrderInput,
    member: MemberState | None,
    *,
    now: datetime,
    usage: CodeUsage | None = None,
) -> tuple[CalculationResult, bytes, bytes]:
    """`calculate`, its rows and line results packed: the result without its `benefits` and
    `lines` (empty tuples), the rows as `core.PACKED_ROW` records in the result's order, and
    the line results as `core.PACKED_LINE` records in the order's line order (for the native
    response encoder, which writes them without a Python object per row or line)."""
    at, _zone, sel, requested, single = start(program, order, member, now, usage)
    calc = tree(single, program)
    rep = calc.report(order, requested, True)
    assert isinstance(rep.rows, bytes) and isinstance(rep.lines, bytes)
    result = _result(program, order, member, at, calc, rep, (), (), sel.codes)
    return result, rep.rows, rep.lines


def _result(
    program: CompiledProgram,
    order: OrderInput,
    member: MemberState | None,
    at: datetime,
    calc: core.Calc,
    rep: core.Report,
    rows: tuple[AppliedBenefit, ...],
    lines: tuple[LineResult, ...],
    codes: tuple[CodeCheck, ...],
) -> CalculationResult:
    """The result from the core's report `rep` and the result's `rows` and `lines`: the texts
    and the promo codes added. Refused (InvalidOrder) when a result left int64."""
    if core.overflowed():
        raise out_of_range()
    totals = rep.totals
    texts: list[str] = []
    if rep.texts:
        benefits = program.benefits
        promotions = program.promotions
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
                return format_money(totals.subtotal)
            if name == "order.discount":
                return format_money(totals.discount)
            if name == "order.total":
                return format_money(totals.total)
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
                        return str(rep.redeemed[t])
                    return str(rep.accrued[t])
            return None

        for k in rep.texts:
            b = benefits[k]
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
            pools = calc.pools()
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

    # tuple.__new__, in CalculationResult's field order: a named tuple's own __new__ is
    # interpreted Python, a frame per calculation (api/_encode.pyx checks the field order).
    return tuple.__new__(
        CalculationResult,
        (at, totals, lines, rows, rep.points, tuple(texts), tuple(code_results)),
    )
