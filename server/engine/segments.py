"""Product segments and rule scopes as integer bit sets, compiled once per program.

A line's product segments are one integer bit set, found with a few dictionary lookups and two
bisections (docs/rules.md: every given criterion must match, within a list any). Per order these are
turned around into each segment's lines (a bit set over lines), and a rule scope's lines are
the union of its segments' (RuleTable).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from arbiter.server.engine.types import LineInput
from arbiter.v1 import program_pb2 as pb

__all__ = [
    "SCOPE_ALL",
    "SCOPE_IN",
    "SCOPE_NOT",
    "FieldTest",
    "OrderRule",
    "ProductRule",
    "RuleTable",
    "SegmentIndex",
    "build_rule_table",
    "build_segment_index",
    "field_ok",
]

# (field, op, value, values) of a product segment's field predicate.
FieldTest = tuple[str, int, int, frozenset[int]]


def field_ok(value: int | None, op: int, ref: int, values: frozenset[int]) -> bool:
    if value is None:
        return False  # a line without the field never matches (rule 21)
    if op == pb.FIELD_OP_EQ:
        return value == ref
    if op == pb.FIELD_OP_NE:
        return value != ref
    if op == pb.FIELD_OP_LT:
        return value < ref
    if op == pb.FIELD_OP_LE:
        return value <= ref
    if op == pb.FIELD_OP_GT:
        return value > ref
    if op == pb.FIELD_OP_GE:
        return value >= ref
    return value in values  # IN


@dataclass(frozen=True, slots=True)
class SegmentIndex:
    """Every product segment is a bit; each criterion maps a value to the segments listing it.

    `free_*` are the segments that do not constrain a criterion. Price bounds are sorted so
    that the segments a unit price fails are one prefix or suffix union.
    """

    bit: Mapping[str, int]
    count: int
    all_bits: int
    by_sku: dict[str, int]
    by_category: dict[str, int]
    by_brand: dict[str, int]
    by_partner: dict[str, int]
    free_sku: int
    free_category: int
    free_brand: int
    free_partner: int
    min_prices: tuple[int, ...]  # ascending
    min_fail: tuple[int, ...]  # [j]: segments at positions >= j (their minimum is above)
    max_prices: tuple[int, ...]  # ascending
    max_fail: tuple[int, ...]  # [j]: segments at positions < j (their maximum is below)
    fields: tuple[tuple[int, tuple[FieldTest, ...]], ...]  # (bit, predicates)

    def line_bits(self, line: LineInput) -> int:
        """The segments `line` is in, as a bit set."""
        bits = self.all_bits
        if self.free_sku != self.all_bits:
            bits &= self.by_sku.get(line.sku, 0) | self.free_sku
        if self.free_category != self.all_bits:
            cats = self.free_category
            for category in line.categories:
                cats |= self.by_category.get(category, 0)
            bits &= cats
        if self.free_brand != self.all_bits:
            bits &= self.by_brand.get(line.brand, 0) | self.free_brand
        if self.free_partner != self.all_bits:
            bits &= self.by_partner.get(line.partner, 0) | self.free_partner
        price = line.unit_price
        if self.min_prices:
            bits &= ~self.min_fail[bisect_right(self.min_prices, price)]
        if self.max_prices:
            bits &= ~self.max_fail[bisect_left(self.max_prices, price)]
        for bit, tests in self.fields:
            # `fields` is a list like the others: any predicate matching is enough (docs/rules.md).
            if bits >> bit & 1 and not any(
                field_ok(line.fields.get(name), op, ref, values) for name, op, ref, values in tests
            ):
                bits &= ~(1 << bit)
        return bits


class _Segment(Protocol):
    """What the index needs of a compiled product segment."""

    @property
    def id(self) -> str: ...
    @property
    def skus(self) -> frozenset[str]: ...
    @property
    def categories(self) -> frozenset[str]: ...
    @property
    def brands(self) -> frozenset[str]: ...
    @property
    def partners(self) -> frozenset[str]: ...
    @property
    def min_unit_price(self) -> int: ...
    @property
    def max_unit_price(self) -> int: ...
    @property
    def fields(self) -> tuple[FieldTest, ...]: ...


def _by_value(pairs: Iterable[tuple[int, frozenset[str]]]) -> tuple[dict[str, int], int]:
    table: dict[str, int] = {}
    constrained = 0
    for bit, values in pairs:
        if values:
            constrained |= 1 << bit
            for value in values:
                table[value] = table.get(value, 0) | (1 << bit)
    return table, constrained


def build_segment_index(segments: Sequence[_Segment]) -> SegmentIndex:
    bit = {seg.id: i for i, seg in enumerate(segments)}
    # Built from the dictionary's values (Python integers): Cython compiles `1 << len(...)` as
    # a C shift, which is wrong from 32 segments on.
    all_bits = 0
    for position in bit.values():
        all_bits |= 1 << position
    by_sku, c_sku = _by_value([(bit[s.id], s.skus) for s in segments])
    by_cat, c_cat = _by_value([(bit[s.id], s.categories) for s in segments])
    by_brand, c_brand = _by_value([(bit[s.id], s.brands) for s in segments])
    by_partner, c_partner = _by_value([(bit[s.id], s.partners) for s in segments])
    mins = sorted((s.min_unit_price, bit[s.id]) for s in segments if s.min_unit_price)
    min_fail = [0] * (len(mins) + 1)
    for j in range(len(mins) - 1, -1, -1):
        min_fail[j] = min_fail[j + 1] | (1 << mins[j][1])
    maxes = sorted((s.max_unit_price, bit[s.id]) for s in segments if s.max_unit_price)
    max_fail = [0] * (len(maxes) + 1)
    for j, (_, b) in enumerate(maxes):
        max_fail[j + 1] = max_fail[j] | (1 << b)
    return SegmentIndex(
        bit=bit,
        count=len(segments),
        all_bits=all_bits,
        by_sku=by_sku,
        by_category=by_cat,
        by_brand=by_brand,
        by_partner=by_partner,
        free_sku=all_bits & ~c_sku,
        free_category=all_bits & ~c_cat,
        free_brand=all_bits & ~c_brand,
        free_partner=all_bits & ~c_partner,
        min_prices=tuple(m for m, _ in mins),
        min_fail=tuple(min_fail),
        max_prices=tuple(m for m, _ in maxes),
        max_fail=tuple(max_fail),
        fields=tuple((bit[s.id], s.fields) for s in segments if s.fields),
    )


# How a product scope holds lines (RuleTable.scope_kind).
SCOPE_IN: Final = 0  # the lines in any of its segments
SCOPE_ALL: Final = 1  # every line
SCOPE_NOT: Final = 2  # the lines in none of its segments

# A product rule as selection reads it: (global rule id, scope, min_quantity).
ProductRule = tuple[int, int, int]
# An order rule: (global rule id, scope is ALL, scope is NOT_IN_SEGMENTS, its order segments).
OrderRule = tuple[int, bool, bool, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class RuleTable:
    """Every rule of every promotion on one axis (global rule id), in promotion order, as the
    plain tuples selection walks per order.

    Product rules with the same scope share it: a scope's lines are one integer bit set per
    order, computed once (the union of its segments' lines), whatever the number of rules."""

    count: int  # rules in all
    product: tuple[tuple[ProductRule, ...], ...]  # per promotion: its product rules
    order: tuple[tuple[OrderRule, ...], ...]  # per promotion: its order rules
    scope: tuple[int, ...]  # per rule: its product scope (-1: an order rule)
    scope_kind: tuple[int, ...]  # per scope: SCOPE_IN | SCOPE_ALL | SCOPE_NOT
    scope_segments: tuple[tuple[int, ...], ...]  # per scope: its segments' bits


class _Rule(Protocol):
    @property
    def level(self) -> int: ...
    @property
    def scope_kind(self) -> int: ...
    @property
    def segments(self) -> tuple[str, ...]: ...
    @property
    def min_quantity(self) -> int: ...


class _Promotion(Protocol):
    @property
    def rules(self) -> Sequence[_Rule]: ...


def build_rule_table(
    promotions: Sequence[_Promotion], index: SegmentIndex, product_level: int
) -> RuleTable:
    scope_ids: dict[tuple[int, frozenset[str]], int] = {}
    scope: list[int] = []
    product: list[tuple[ProductRule, ...]] = []
    order: list[tuple[OrderRule, ...]] = []
    for p in promotions:
        p_rules: list[ProductRule] = []
        o_rules: list[OrderRule] = []
        for rule in p.rules:
            gid = len(scope)
            if rule.level == product_level:
                key = (rule.scope_kind, frozenset(rule.segments))
                sid = scope_ids.setdefault(key, len(scope_ids))
                scope.append(sid)
                p_rules.append((gid, sid, rule.min_quantity))
            else:
                scope.append(-1)
                o_rules.append(
                    (
                        gid,
                        rule.scope_kind == pb.SCOPE_KIND_ALL,
                        rule.scope_kind == pb.SCOPE_KIND_NOT_IN_SEGMENTS,
                        tuple(rule.segments),
                    )
                )
        product.append(tuple(p_rules))
        order.append(tuple(o_rules))
    kinds: dict[int, int] = {
        pb.SCOPE_KIND_ALL: SCOPE_ALL,
        pb.SCOPE_KIND_NOT_IN_SEGMENTS: SCOPE_NOT,
    }
    return RuleTable(
        count=len(scope),
        product=tuple(product),
        order=tuple(order),
        scope=tuple(scope),
        scope_kind=tuple(kinds.get(kind, SCOPE_IN) for kind, _ in scope_ids),
        scope_segments=tuple(
            tuple(sorted(index.bit[seg_id] for seg_id in segment_ids))
            for _, segment_ids in scope_ids
        ),
    )
