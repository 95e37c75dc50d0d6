"""The decision trace of a calculation (test mode): why each node of the tree won or lost.

`calculate_traced` answers what `calculate` answers, computed by the same code on the same
inputs (so the result is the same, byte for byte), and one `TraceEntry` per node of the tree in
tree order. The trace is derived apart from the calculation: `calculate` itself knows nothing of
it and pays nothing for it. `Tracer` walks the tree once more with the one-state evaluator's own
operations (`Single.evaluate`, `valid`, `limits`, `apply`), recording for every node the effect
it had on the state it was evaluated on, which of its entries a group's arbitration dropped
(INCOMPATIBLE) or left out (MAX_BENEFIT), and which entries sums and limits cut; the verdicts
then come from comparing those effects with the entries of the result.

The rules (docs/engine.md, "The decision trace"):
- NOT_SELECTED: selection dropped the promotion; `reason` is the first failed check of STATUS,
  PERIOD, AVAILABILITY, AUDIENCE, CHANNEL, PROMO_CODE. Groups are never NOT_SELECTED.
- NO_EFFECT: its effect on the state it was evaluated on is empty (a group: no child had one).
- OUTRANKED: it had an effect, but nothing of it is in the result because arbitration (its
  group's or an ancestor's) kept none of it: an earlier child of an INCOMPATIBLE group took its
  lines and order level, or a MAX_BENEFIT group chose a candidate without it (or without the
  ancestor it sits in). `detail` names the winners.
- APPLIED / CUT: some of its effect is in the result; CUT when sums made valid (rule 6) or limits
  (rule 11) of its group or an ancestor took `cut` (money discount plus money paid with points)
  from what its group kept of it.

This module is plain Python on purpose: it is never on the path of CalculateOrder.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from arbiter.server.engine import core
from arbiter.server.engine.compile import (
    INCOMPATIBLE,
    MAX_BENEFIT,
    PRODUCT,
    SEQUENTIAL,
    CNode,
    CompiledProgram,
    CPromotion,
    to_us,
)
from arbiter.server.engine.errors import out_of_range
from arbiter.server.engine.evaluate import report, start, tree
from arbiter.server.engine.select import _audience_ok, _in_availability, resolve_tiers
from arbiter.server.engine.single import Entry, Single, State
from arbiter.server.engine.types import CalculationResult, CodeUsage, MemberState, OrderInput

__all__ = [
    "APPLIED",
    "CUT",
    "GROUP",
    "NOT_SELECTED",
    "NO_EFFECT",
    "OUTRANKED",
    "PROMOTION",
    "REASONS",
    "TraceEntry",
    "calculate_traced",
    "selection_reason",
]

# Node kinds, verdicts and reasons: the contract's enum value names without their prefix.
PROMOTION = "PROMOTION"
GROUP = "GROUP"
APPLIED = "APPLIED"
CUT = "CUT"
NOT_SELECTED = "NOT_SELECTED"
NO_EFFECT = "NO_EFFECT"
OUTRANKED = "OUTRANKED"
# The selection checks in the order they are reported (the first failed one is the reason).
REASONS = ("STATUS", "PERIOD", "AVAILABILITY", "AUDIENCE", "CHANNEL", "PROMO_CODE")

_MODE_NAMES = {
    SEQUENTIAL: "SEQUENTIAL",
    INCOMPATIBLE: "INCOMPATIBLE",
    MAX_BENEFIT: "MAX_BENEFIT",
}


class TraceEntry(NamedTuple):
    """What one node of the tree did in a calculation."""

    node: str  # promotion id, or group id ("" for a main arbitration without one)
    parent: str  # the enclosing group's id; "" for the root itself
    kind: str  # PROMOTION | GROUP
    verdict: str  # APPLIED | CUT | NOT_SELECTED | NO_EFFECT | OUTRANKED
    reason: str  # NOT_SELECTED only: one of REASONS; else ""
    benefit: int  # its worth in the result (benefit measure, docs/rules.md); a group: its subtree
    cut: int  # money discount plus points money that sums made valid and limits took from it
    line_ids: tuple[str, ...]  # the lines its entries in the result touch, in line order
    detail: str


Key = tuple[int, int]  # (benefit index, line): one entry of an effect


def _key(x: Entry) -> Key:
    return (x[0], x[1])


def _taken(x: Entry) -> int:
    """What an entry takes off a line's price: its positive discount plus its points money."""
    return max(x[2], 0) + x[3]


def selection_reason(
    p: CPromotion,
    order: OrderInput,
    member: MemberState | None,
    at: datetime,
    zone: ZoneInfo,
    valid_pools: frozenset[str],
    tiers: frozenset[str],
) -> str:
    """The first selection check (REASONS, in order) promotion `p` fails; "" when it passes
    them all. The same checks as `select`, one promotion at a time."""
    if not p.active:
        return "STATUS"
    at_us = to_us(at)
    if (p.start is not None and at_us < to_us(p.start)) or (
        p.end is not None and at_us >= to_us(p.end)
    ):
        return "PERIOD"
    if not _in_availability(p, at.astimezone(zone)):
        return "AVAILABILITY"
    segments = member.segments if member is not None else frozenset()
    if not _audience_ok(p, member, segments, tiers):
        return "AUDIENCE"
    if p.channels:
        points = p.channels.get(order.channel)
        if points is None or (points and order.point_of_contact not in points):
            return "CHANNEL"
    if p.pool and p.pool not in valid_pools:
        return "PROMO_CODE"
    return ""


class _Record:
    """A node as the tracer saw it: its effect on its state, and what became of it."""

    __slots__ = ("detail", "effect", "node", "outranked", "parent")

    def __init__(self, node: CNode, parent: str, outranked: str) -> None:
        self.node = node
        self.parent = parent
        # The node's effect on the state it was evaluated on; for a group, its children's
        # effects together, before the group's own arbitration, sums and limits.
        self.effect: list[Entry] = []
        self.outranked = outranked  # set: a MAX_BENEFIT group left it (or an ancestor) out
        self.detail: list[str] = []


class Tracer:
    """Walks the tree of one calculation as `Single.evaluate` does, recording every node."""

    def __init__(self, program: CompiledProgram, single: Single, n_lines: int) -> None:
        self.program = program
        self.single = single
        self.lines = n_lines
        self.records: list[_Record] = []
        # Entries dropped by an INCOMPATIBLE group: key -> (winner node, group).
        self.lost: dict[Key, tuple[str, str]] = {}
        # Entries that sums and limits cut: key -> the groups that cut it, outermost last.
        self.cut_by: dict[Key, list[str]] = {}

    def name(self, node: CNode) -> str:
        if node.promotion >= 0:
            return self.program.promotions[node.promotion].id
        return node.group_id

    def walk(self, node: CNode, s: State, parent: str, outranked: str = "") -> list[Entry]:
        """The node's effect on `s`, equal to `Single.evaluate(node, s)`, with the node and its
        subtree recorded."""
        rec = _Record(node, parent, outranked)
        self.records.append(rec)
        single = self.single
        if node.promotion >= 0:
            rec.effect = single.evaluate(node, s)
            return rec.effect
        gid = node.group_id
        mode = node.mode
        if mode == MAX_BENEFIT:
            return self._max_benefit(node, s, rec, outranked)
        out: list[Entry] = []
        if mode == SEQUENTIAL:
            cur = s
            for child in node.children:
                ce = self.walk(child, cur, gid, outranked)
                if ce:
                    out += ce
                    cur = single.apply(cur, ce)
            rec.effect = list(out)
        else:
            effects = [self.walk(child, s, gid, outranked) for child in node.children]
            rec.effect = [x for ce in effects for x in ce]
            if mode == INCOMPATIBLE:
                out = single._first_eligible(effects)
                self._incompatible_losses(node, effects, out)
            else:  # SUMMATION
                out = list(rec.effect)
            out = self._cut(gid, "its sum made valid", out, single.valid(out, s))
        if node.has_limits and out:
            out = self._cut(gid, "its limits", out, single.limits(node, out, s))
        return out

    def _cut(self, gid: str, how: str, before: list[Entry], after: list[Entry]) -> list[Entry]:
        """`after`, once the entries that lost money or points from `before` are noted."""
        if after is before:
            return after
        kept = {_key(x): x for x in after}
        for x in before:
            y = kept.get(_key(x))
            if _taken(x) > (_taken(y) if y is not None else 0):
                self.cut_by.setdefault(_key(x), []).append(f"{how} (group {gid!r})")
        return after

    def _incompatible_losses(
        self, node: CNode, effects: list[list[Entry]], out: list[Entry]
    ) -> None:
        """Which earlier child took each entry that INCOMPATIBLE dropped (rules 4, 5)."""
        level = self.program.benefit_levels
        kept = {_key(x) for x in out}
        line_winner: dict[int, str] = {}
        order_winner = ""
        for child, ce in zip(node.children, effects, strict=True):
            name = self.name(child)
            for x in ce:
                key = _key(x)
                if key in kept:
                    continue
                if level[x[0]] == PRODUCT:
                    self.lost[key] = (line_winner[x[1]], node.group_id)
                else:
                    self.lost[key] = (order_winner, node.group_id)
            for x in ce:
                if level[x[0]] == PRODUCT:
                    line_winner.setdefault(x[1], name)
                elif not order_winner:
                    order_winner = name

    def _max_benefit(self, node: CNode, s: State, rec: _Record, outranked: str) -> list[Entry]:
        """The group's candidates valued by the search (`core.valuation`: their number, the
        winner, the exact runner-up), then its children walked on the states the winner
        evaluated them on: on `s` for a summation, on the state the earlier chosen children
        left for a sequence; the others on `s`, left out."""
        single = self.single
        gid = node.group_id
        valuation = self._valuation(node, s)
        if valuation is None:  # no live child, or none with an effect on `s`
            for child in node.children:
                self.walk(child, s, gid, outranked)
            rec.detail.append("no child has an effect: no candidate")
            return []
        positions, sequential, count, runner_up = valuation
        chosen = {id(node.children[i]) for i in positions}
        names = ", ".join(self.name(node.children[i]) for i in positions)
        mode = "SINGLE" if len(chosen) == 1 else "SEQUENTIAL" if sequential else "SUMMATION"
        second = "none" if runner_up == core.NO_RUNNER_UP else str(runner_up)
        rec.detail.append(
            f"chosen: {names}; mode: {mode}; candidates valued: {count};"
            f" runner-up benefit: {second}"
        )
        left_out = outranked or f"MAX_BENEFIT group {gid!r} chose {names}"
        cur = s
        raw: list[Entry] = []
        for child in node.children:
            if id(child) in chosen:
                ce = self.walk(child, cur if sequential else s, gid, outranked)
                raw += ce
                if sequential and ce:
                    cur = single.apply(cur, ce)
            else:
                self.walk(child, s, gid, left_out)
        rec.effect = raw
        out = raw
        if not sequential and len(chosen) > 1:
            out = self._cut(gid, "its sum made valid", out, single.valid(out, s))
        if node.has_limits and out:
            out = self._cut(gid, "its limits", out, single.limits(node, out, s))
        return out

    def _valuation(
        self, node: CNode, s: State
    ) -> tuple[list[int], bool, int, int] | None:
        """`core.valuation` of MAX_BENEFIT group `node` on `s` (refused when an input is beyond
        the core's range)."""
        try:
            return core.valuation(self.single, node, s)
        except core.Declined:
            raise out_of_range() from None

    # --- verdicts ---------------------------------------------------------------------------

    def entries(
        self, final: list[Entry], order: OrderInput, reasons: list[str]
    ) -> tuple[TraceEntry, ...]:
        """One TraceEntry per recorded node, in tree order, judged against the result's
        entries `final`; `reasons` holds each promotion's failed selection check ("": none)."""
        line_ids = [line.id for line in order.lines]
        by_benefit: dict[int, list[Entry]] = {}
        for y in final:
            by_benefit.setdefault(y[0], []).append(y)
        out: list[TraceEntry] = []
        for rec in self.records:
            node = rec.node
            verdict, reason, benefit, cut, lines, detail = self._judge(
                rec, by_benefit, line_ids, reasons
            )
            out.append(
                TraceEntry(
                    node=self.name(node),
                    parent=rec.parent,
                    kind=PROMOTION if node.promotion >= 0 else GROUP,
                    verdict=verdict,
                    reason=reason,
                    benefit=benefit,
                    cut=cut,
                    line_ids=lines,
                    detail="; ".join([*rec.detail, *detail]),
                )
            )
        return tuple(out)

    def _judge(
        self,
        rec: _Record,
        final: dict[int, list[Entry]],
        line_ids: list[str],
        reasons: list[str],
    ) -> tuple[str, str, int, int, tuple[str, ...], list[str]]:
        """(verdict, reason, benefit, cut, line ids, detail) of one recorded node."""
        node = rec.node
        is_promotion = node.promotion >= 0
        if is_promotion and reasons[node.promotion]:
            return NOT_SELECTED, reasons[node.promotion], 0, 0, (), []
        if not rec.effect:
            if is_promotion and not self.single.selection.live[node.promotion]:
                why = "no rule applies to this order (scope, min_quantity or order segment)"
            elif is_promotion:
                why = "its benefits change nothing on the state it was evaluated on"
            else:
                why = "no child has an effect"
            return NO_EFFECT, "", 0, 0, (), [why]
        if rec.outranked:
            return OUTRANKED, "", 0, 0, (), [f"outranked: {rec.outranked}"]
        winners: dict[str, list[str]] = {}  # INCOMPATIBLE group -> the children that won
        lost_at: dict[tuple[str, str], list[str]] = {}  # (winner, group) -> what it took
        kept: list[Entry] = []
        for x in rec.effect:
            by = self.lost.get(_key(x))
            if by is None:
                kept.append(x)
                continue
            group_winners = winners.setdefault(by[1], [])
            if by[0] not in group_winners:
                group_winners.append(by[0])
            where = line_ids[x[1]] if x[1] < self.lines else "the order level"
            taken = lost_at.setdefault(by, [])
            if where not in taken:
                taken.append(where)
        if not kept:
            return (
                OUTRANKED,
                "",
                0,
                0,
                (),
                [
                    f"outranked by {', '.join(names)} in INCOMPATIBLE group {group!r}"
                    for group, names in winners.items()
                ],
            )
        lo, hi = node.lo, node.hi
        result = {_key(y): y for k in range(lo, hi) for y in final.get(k, ())}
        cut = 0
        cutters: list[str] = []
        for x in kept:
            y = result.get(_key(x))
            taken_x = _taken(x) - (_taken(y) if y is not None else 0)
            if taken_x > 0:
                cut += taken_x
                for how in self.cut_by.get(_key(x), ()):
                    if how not in cutters:
                        cutters.append(how)
        detail = [
            f"{', '.join(where)} lost to {winner} in INCOMPATIBLE group {group!r}"
            for (winner, group), where in lost_at.items()
        ]
        if cut:
            detail.append("cut by " + ", ".join(cutters))
        touched = sorted({y[1] for y in result.values() if y[1] < self.lines})
        return (
            CUT if cut else APPLIED,
            "",
            self.single._benefit_of(list(result.values())),
            cut,
            tuple(line_ids[i] for i in touched),
            detail,
        )


def calculate_traced(
    program: CompiledProgram,
    order: OrderInput,
    member: MemberState | None,
    *,
    now: datetime,
    usage: CodeUsage | None = None,
) -> tuple[CalculationResult, tuple[TraceEntry, ...]]:
    """`calculate`'s result (the same code on the same inputs) and the decision trace."""
    at, zone, sel, requested, single = start(program, order, member, now, usage)
    calc = tree(single, program)
    entries = calc.entries()
    result = report(program, order, member, at, calc, requested, sel.codes)
    tracer = Tracer(program, single, len(order.lines))
    tracer.walk(program.root, single.initial(), "")
    valid_pools = frozenset(c.pool for c in sel.codes if c.pool and not c.reason)
    tiers = resolve_tiers(program, member) if member is not None else frozenset()
    reasons = [
        selection_reason(p, order, member, at, zone, valid_pools, tiers) for p in program.promotions
    ]
    return result, tracer.entries(entries, order, reasons)
