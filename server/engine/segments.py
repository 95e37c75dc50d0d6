"""Product segments as bits and rule scopes as matrices, compiled once per program.

A line's product segments are one integer bit set, found with a few dictionary lookups and two
bisections (SPEC 2: every given criterion must match, within a list any); the lines of every
rule are then one matrix product of the rules' scopes with the lines' segments.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from arbiter.server.engine.types import LineInput
from arbiter.v1 import program_pb2 as pb

__all__ = [
    "FieldTest",
    "RuleArrays",
    "SegmentIndex",
    "build_rule_arrays",
    "build_segment_index",
    "field_ok",
    "segment_matrix",
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
    by_sku: Mapping[str, int]
    by_category: Mapping[str, int]
    by_brand: Mapping[str, int]
    by_partner: Mapping[str, int]
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
            # `fields` is a list like the others: any predicate matching is enough (SPEC 2).
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
    all_bits = (1 << len(segments)) - 1
    by_sku, c_sku = _by_value((bit[s.id], s.skus) for s in segments)
    by_cat, c_cat = _by_value((bit[s.id], s.categories) for s in segments)
    by_brand, c_brand = _by_value((bit[s.id], s.brands) for s in segments)
    by_partner, c_partner = _by_value((bit[s.id], s.partners) for s in segments)
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


def segment_matrix(index: SegmentIndex, line_bits: Sequence[int]) -> npt.NDArray[np.float32]:
    """[segment, line] 0/1: which lines each product segment holds."""
    lines = len(line_bits)
    if not index.count or not lines:
        return np.zeros((index.count, lines), dtype=np.float32)
    width = (index.count + 7) // 8
    raw = np.frombuffer(b"".join(b.to_bytes(width, "little") for b in line_bits), dtype=np.uint8)
    bits = np.unpackbits(raw.reshape(lines, width), axis=1, bitorder="little")[:, : index.count]
    out: npt.NDArray[np.float32] = bits.T.astype(np.float32)
    return out


@dataclass(frozen=True, slots=True)
class RuleArrays:
    """Every rule of every promotion on one axis (global rule id), in promotion order.

    Product rules with the same scope share it: their lines are computed once per order."""

    promotion: npt.NDArray[np.int64]  # [R] the promotion a rule belongs to
    product: npt.NDArray[np.bool_]  # [R] a product rule (else an order rule)
    scope_all: npt.NDArray[np.bool_]  # [R]
    scope_not: npt.NDArray[np.bool_]  # [R] NOT_IN_SEGMENTS
    min_quantity: npt.NDArray[np.int64]  # [R] 0: unset
    scope: npt.NDArray[np.int64]  # [R] a product rule's scope (-1: an order rule)
    scopes: npt.NDArray[np.float32]  # [scope, product segment] 0/1
    scopes_all: npt.NDArray[np.bool_]  # [scope]
    scopes_not: npt.NDArray[np.bool_]  # [scope]
    order_scope: npt.NDArray[np.float32]  # [R, order segment] 0/1
    order_segments: tuple[str, ...]  # the order segments' axis


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


def build_rule_arrays(
    promotions: Sequence[_Promotion],
    index: SegmentIndex,
    order_segments: Sequence[str],
    product_level: int,
) -> RuleArrays:
    rules = [(p_index, rule) for p_index, p in enumerate(promotions) for rule in p.rules]
    n = len(rules)
    os_index = {seg_id: i for i, seg_id in enumerate(order_segments)}
    order_scope = np.zeros((n, len(order_segments)), dtype=np.float32)
    scope_ids: dict[tuple[int, frozenset[str]], int] = {}
    scope = np.full(n, -1, dtype=np.int64)
    for gid, (_, rule) in enumerate(rules):
        if rule.level == product_level:
            key = (rule.scope_kind, frozenset(rule.segments))
            scope[gid] = scope_ids.setdefault(key, len(scope_ids))
        else:
            for seg_id in rule.segments:
                order_scope[gid, os_index[seg_id]] = 1.0
    scopes = np.zeros((len(scope_ids), index.count), dtype=np.float32)
    for (_, segment_ids), sid in scope_ids.items():
        for seg_id in segment_ids:
            scopes[sid, index.bit[seg_id]] = 1.0
    arrays = RuleArrays(
        promotion=np.array([p for p, _ in rules], dtype=np.int64),
        product=np.array([r.level == product_level for _, r in rules], dtype=np.bool_),
        scope_all=np.array([r.scope_kind == pb.SCOPE_KIND_ALL for _, r in rules], dtype=np.bool_),
        scope_not=np.array(
            [r.scope_kind == pb.SCOPE_KIND_NOT_IN_SEGMENTS for _, r in rules], dtype=np.bool_
        ),
        min_quantity=np.array([r.min_quantity for _, r in rules], dtype=np.int64),
        scope=scope,
        scopes=scopes,
        scopes_all=np.array([k == pb.SCOPE_KIND_ALL for k, _ in scope_ids], dtype=np.bool_),
        scopes_not=np.array(
            [k == pb.SCOPE_KIND_NOT_IN_SEGMENTS for k, _ in scope_ids], dtype=np.bool_
        ),
        order_scope=order_scope,
        order_segments=tuple(order_segments),
    )
    for arr in (
        arrays.promotion,
        arrays.product,
        arrays.scope_all,
        arrays.scope_not,
        arrays.min_quantity,
        arrays.scope,
        arrays.scopes,
        arrays.scopes_all,
        arrays.scopes_not,
        arrays.order_scope,
    ):
        arr.setflags(write=False)
    return arrays
