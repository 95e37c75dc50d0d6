"""The product segment index (bits, bisected price bounds) against the plain definition of
docs/rules.md: a line is in a segment when every given criterion matches, within a list any."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from arbiter.server.engine._select import build_tables
from arbiter.server.engine.compile import PRODUCT, CProductSegment
from arbiter.server.engine.segments import SegmentIndex, build_rule_table, build_segment_index
from arbiter.server.engine.select import line_in_segment
from arbiter.server.engine.types import LineInput, OrderInput
from arbiter.v1 import program_pb2 as pb

VALUES = ("a", "b", "c")
PRICES = (0, 100, 250, 999, 1000, 5000)
OPS = (
    pb.FIELD_OP_EQ,
    pb.FIELD_OP_NE,
    pb.FIELD_OP_LT,
    pb.FIELD_OP_LE,
    pb.FIELD_OP_GT,
    pb.FIELD_OP_GE,
    pb.FIELD_OP_IN,
)

names = st.frozensets(st.sampled_from(VALUES), max_size=2)
tests = st.tuples(
    st.sampled_from(("x", "y")),
    st.sampled_from(OPS),
    st.integers(-2, 2),
    st.frozensets(st.integers(-2, 2), max_size=2),
)


@st.composite
def segments(draw: st.DrawFn, least: int = 0, most: int = 12) -> list[CProductSegment]:
    count = draw(st.integers(least, most))
    return [
        CProductSegment(
            id=f"s{i}",
            skus=draw(names),
            categories=draw(names),
            brands=draw(names),
            partners=draw(names),
            min_unit_price=draw(st.sampled_from(PRICES)),
            max_unit_price=draw(st.sampled_from(PRICES)),
            fields=tuple(draw(st.lists(tests, max_size=2))),
        )
        for i in range(count)
    ]


lines = st.builds(
    LineInput,
    id=st.just("l"),
    sku=st.sampled_from((*VALUES, "z")),
    quantity=st.just(1),
    unit_price=st.sampled_from((*PRICES, 50, 3000)),
    categories=st.lists(st.sampled_from((*VALUES, "z")), max_size=2).map(tuple),
    brand=st.sampled_from((*VALUES, "")),
    partner=st.sampled_from((*VALUES, "")),
    fields=st.dictionaries(st.sampled_from(("x", "y")), st.integers(-2, 2), max_size=2),
)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(segs=segments(), line=lines)
def test_line_bits_are_the_segments_the_line_is_in(
    segs: list[CProductSegment], line: LineInput
) -> None:
    index = build_segment_index(segs)
    order = OrderInput(id="o", lines=(line,))
    bits = index.line_bits(line)
    for seg in segs:
        assert bool(bits >> index.bit[seg.id] & 1) == line_in_segment(seg, order, 0), seg


def _tables_bits(index: SegmentIndex, line: LineInput) -> int:
    """The segments of `line` as the typed selection's tables find them (_select.pyx)."""
    tables = build_tables([], index, build_rule_table([], index, PRODUCT), {}, (), ())
    return tables.line_bits(line)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(segs=segments(), line=lines)
def test_the_typed_tables_find_the_same_segments(
    segs: list[CProductSegment], line: LineInput
) -> None:
    index = build_segment_index(segs)
    assert _tables_bits(index, line) == index.line_bits(line)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(segs=segments(65, 150), line=lines)
def test_the_typed_tables_hold_more_than_64_segments(
    segs: list[CProductSegment], line: LineInput
) -> None:
    # The segments past the first 64-bit word of the tables' bit sets.
    index = build_segment_index(segs)
    bits = _tables_bits(index, line)
    assert bits == index.line_bits(line)
    order = OrderInput(id="o", lines=(line,))
    for seg in segs:
        assert bool(bits >> index.bit[seg.id] & 1) == line_in_segment(seg, order, 0), seg


def test_price_bounds_are_inclusive() -> None:
    seg = CProductSegment("s", frozenset(), frozenset(), frozenset(), frozenset(), 100, 200, ())
    index = build_segment_index([seg])
    for price, inside in ((99, False), (100, True), (200, True), (201, False)):
        line = LineInput("l", "sku", 1, price)
        assert index.line_bits(line) == (1 if inside else 0), price


def test_a_line_can_be_in_every_one_of_many_segments() -> None:
    # From 32 segments on, a C shift in the compiled index once dropped the later ones.
    for count in (31, 32, 40, 64, 65, 130):
        segs = [
            CProductSegment(f"s{i}", frozenset(), frozenset(), frozenset(), frozenset(), 0, 0, ())
            for i in range(count)
        ]
        index = build_segment_index(segs)
        assert index.line_bits(LineInput("l", "sku", 1, 100)) == (1 << count) - 1, count
