"""The natively encoded CalculateOrderResponse (server/api/_encode.pyx) is byte for byte what
protobuf serialises for the message result_to_proto builds (docs/api.md, "The response, encoded
natively"): on the engine's results for generated programs, orders and members, and on arbitrary
results with the edges of the wire format (empty parts, negative and extreme int64 values,
unicode texts, a zero or naive evaluated_at).

The extension is imported directly: a tree where it is not built fails here, not silently.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbiter.server.api import _encode
from arbiter.server.api.translate import order_from_proto, result_to_proto
from arbiter.server.engine import (
    AppliedBenefit,
    CalculationResult,
    CompiledProgram,
    LineResult,
    MemberState,
    OrderInput,
    PointsChange,
    PromoCodeResult,
    Totals,
    calculate,
    calculate_packed,
    compile_program,
    core,
    evaluate,
)
from arbiter.v1 import checkout_pb2
from arbiter.v1 import program_pb2 as pb
from bench.workloads import dense_workload
from tests.property.strategies import programs, requests
from tests.reference._programs import accrue_pct as ref_accrue_pct
from tests.reference._programs import group as ref_group
from tests.reference._programs import line as ref_line
from tests.reference._programs import pct as ref_pct
from tests.reference._programs import product_rule as ref_product_rule
from tests.reference._programs import program as ref_program
from tests.reference._programs import promo as ref_promo
from tests.reference._programs import request as ref_request

EXAMPLES = int(os.environ.get("ARBITER_PROPERTY_EXAMPLES", "2000"))
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

encode_response = _encode.encode_response
encode_packed = _encode.encode_packed


def _cases(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def plain(result: CalculationResult, version: int) -> bytes:
    return result_to_proto(result, version).SerializeToString()


def assert_equal_bytes(got: bytes, want: bytes, what: str) -> None:
    if got != want:
        parsed = checkout_pb2.CalculateOrderResponse.FromString(got)
        raise AssertionError(
            f"{what} bytes differ\nwant {want.hex()}\ngot  {got.hex()}\nparsed {parsed}"
        )


def assert_same_bytes(result: CalculationResult, version: int) -> None:
    assert_equal_bytes(encode_response(result, version), plain(result, version), "encoded")


# --- The engine's results. --------------------------------------------------------------------


@_cases(max(EXAMPLES // 4, 50))
@given(program=programs(), request=requests(), version=st.integers(0, 2**40))
def test_engine_results_encode_as_protobuf_does(
    program: pb.Program, request: checkout_pb2.CalculateOrderRequest, version: int
) -> None:
    compiled = compile_program(program)
    order, member = order_from_proto(request, compiled.point_type_ids)
    result = calculate(compiled, order, member, now=NOW)
    assert_same_bytes(result, version)


# --- The engine's packed rows (CalculateOrder's path). -----------------------------------------


def assert_packed_same_bytes(
    compiled: CompiledProgram, order: OrderInput, member: MemberState | None, version: int
) -> None:
    result = calculate(compiled, order, member, now=NOW)
    bare, rows, lines = calculate_packed(compiled, order, member, now=NOW)
    assert bare == result._replace(benefits=(), lines=())
    assert len(rows) == len(result.benefits) * 8 * len(core.PACKED_ROW)
    assert len(lines) == len(result.lines) * 8 * len(core.PACKED_LINE)
    got = encode_packed(bare, version, rows, lines, compiled, order.lines)
    assert_equal_bytes(got, plain(result, version), "packed")


@_cases(max(EXAMPLES // 4, 50))
@given(program=programs(), request=requests(), version=st.integers(0, 2**40))
def test_packed_rows_encode_as_protobuf_does(
    program: pb.Program, request: checkout_pb2.CalculateOrderRequest, version: int
) -> None:
    compiled = compile_program(program)
    order, member = order_from_proto(request, compiled.point_type_ids)
    assert_packed_same_bytes(compiled, order, member, version)


def test_the_dense_workloads_packed_rows_encode_as_protobuf_does() -> None:
    # 200 promotions over 20 lines: discounts, payments with points, accruals of both timings,
    # a shipping discount, order-wide rows.
    program, request = dense_workload()
    compiled = compile_program(program)
    order, member = order_from_proto(request, compiled.point_type_ids)
    result = calculate(compiled, order, member, now=NOW)
    assert len(result.benefits) > 200
    assert_packed_same_bytes(compiled, order, member, 7)


def test_a_large_orders_packed_rows_encode_as_protobuf_does() -> None:
    # 2^41 minor units: amounts past 32 bits and 2^40 in every packed field.
    prog = ref_program(
        [
            ref_promo("p1", ref_product_rule(ref_pct(1000))),
            ref_promo("p2", ref_product_rule(ref_accrue_pct("bonus", 500))),
        ],
        ref_group(pb.ARBITRATION_MODE_SUMMATION, "p1", "p2", gid="main"),
    )
    req = ref_request(ref_line("a", 1 << 41), ref_line("b", 5_000, 3), balances={"bonus": 0})
    compiled = compile_program(prog)
    order, member = order_from_proto(req, compiled.point_type_ids)
    *_, single = evaluate.start(compiled, order, member, NOW, None)
    assert core.evaluate(single, compiled.root) is not None
    assert_packed_same_bytes(compiled, order, member, 1)


def test_packed_rows_are_checked() -> None:
    program, request = dense_workload()
    compiled = compile_program(program)
    order, member = order_from_proto(request, compiled.point_type_ids)
    result = calculate(compiled, order, member, now=NOW)
    bare, rows, lines = calculate_packed(compiled, order, member, now=NOW)
    with pytest.raises(ValueError, match="packed rows"):
        encode_packed(result, 1, rows, lines, compiled, order.lines)
    with pytest.raises(ValueError, match="packed rows"):
        encode_packed(bare._replace(lines=result.lines), 1, rows, lines, compiled, order.lines)
    with pytest.raises(ValueError, match="whole number"):
        encode_packed(bare, 1, rows[:-8], lines, compiled, order.lines)
    with pytest.raises(ValueError, match="packed lines"):
        encode_packed(bare, 1, rows, lines[:-8], compiled, order.lines)
    # A row naming a line the order does not have (the lines given for as many lines).
    with pytest.raises(ValueError, match="packed row 0"):
        encode_packed(bare, 1, rows, b"", compiled, order.lines[:0])


# --- Arbitrary results: every edge of the wire format. ----------------------------------------

int64s = st.one_of(
    st.integers(INT64_MIN, INT64_MAX),
    st.sampled_from([0, 1, -1, 127, 128, 16_383, 16_384, INT64_MIN, INT64_MAX, -(2**31)]),
)
texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "Скидка 10%", "🎂 с днём рождения 👨‍👩‍👧", "x" * 200, "\x00"]),
)
stamps = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    # Naive: taken as UTC, as result_to_proto does.
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.just(timezone(timedelta(hours=3))),
    ),
    # Whole seconds (nanos unset) and the epoch itself (an empty Timestamp).
    st.sampled_from([datetime(1970, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)]),
)
small = st.lists


def _line(draw: st.DrawFn) -> LineResult:
    return LineResult(
        draw(texts),
        draw(int64s),
        draw(int64s),
        draw(int64s),
        draw(int64s),
        tuple(draw(small(st.tuples(int64s, int64s), max_size=4))),
    )


@st.composite
def results(draw: st.DrawFn) -> CalculationResult:
    lines = tuple(_line(draw) for _ in range(draw(st.integers(0, 5))))
    benefits = tuple(
        AppliedBenefit(
            draw(texts),
            draw(texts),
            draw(st.sampled_from(["DISCOUNT", "POINTS", ""])),
            draw(texts),
            draw(int64s),
            draw(int64s),
            draw(texts),
            draw(st.sampled_from(["", "ON_CREATE", "ON_DELIVERY"])),
        )
        for _ in range(draw(st.integers(0, 5)))
    )
    points = tuple(
        PointsChange(draw(texts), draw(int64s), draw(int64s), draw(int64s), draw(int64s))
        for _ in range(draw(st.integers(0, 3)))
    )
    codes = tuple(
        PromoCodeResult(
            draw(texts),
            draw(st.sampled_from(["APPLIED", "NOT_APPLIED", "INVALID"])),
            draw(
                st.sampled_from(
                    [
                        "",
                        "UNKNOWN_CODE",
                        "EXPIRED",
                        "NOT_YET_VALID",
                        "EXHAUSTED",
                        "NO_PROMOTION_APPLIED",
                        "ANOTHER_CODE_APPLIED",
                    ]
                )
            ),
            draw(texts),
        )
        for _ in range(draw(st.integers(0, 3)))
    )
    return CalculationResult(
        evaluated_at=draw(stamps),
        totals=Totals(*(draw(int64s) for _ in range(7))),
        lines=lines,
        benefits=benefits,
        points=points,
        texts=tuple(draw(small(texts, max_size=4))),
        promo_codes=codes,
    )


@_cases(max(EXAMPLES // 2, 100))
@given(result=results(), version=int64s)
def test_arbitrary_results_encode_as_protobuf_does(result: CalculationResult, version: int) -> None:
    assert_same_bytes(result, version)


def empty_result(evaluated_at: datetime = NOW) -> CalculationResult:
    return CalculationResult(evaluated_at, Totals(0, 0, 0, 0, 0, 0, 0), (), (), (), (), ())


def test_an_empty_result_still_carries_its_totals_and_stamp() -> None:
    # Totals and evaluated_at are present even when every field is zero, as when built.
    encoded = encode_response(empty_result(datetime(1970, 1, 1, tzinfo=UTC)), 0)
    assert encoded == plain(empty_result(datetime(1970, 1, 1, tzinfo=UTC)), 0)
    assert encoded == bytes([0x12, 0x00, 0x1A, 0x00])
    message = checkout_pb2.CalculateOrderResponse.FromString(encoded)
    assert message.HasField("totals") and message.HasField("evaluated_at")


def test_a_price_rise_encodes_negative_amounts_in_ten_bytes() -> None:
    result = empty_result()._replace(
        totals=Totals(1000, -200, 0, 0, 0, 1200, 1),
        lines=(LineResult("l1", 1000, -200, 0, 1200, ((1, 1200),)),),
        benefits=(AppliedBenefit("l1", "rise", "DISCOUNT", "discount", -200, 0, ""),),
    )
    encoded = encode_response(result, 3)
    assert encoded == plain(result, 3)
    decoded = checkout_pb2.CalculateOrderResponse.FromString(encoded)
    assert decoded.totals.discount == -200
    assert decoded.benefits[0].amount == -200


def test_a_long_line_needs_a_wider_length_prefix() -> None:
    # A submessage over 127 bytes moves its body to make room for a two-byte length.
    line = LineResult("л" * 100, 5, 0, 0, 5, tuple((1, 1) for _ in range(40)))
    result = empty_result()._replace(lines=(line,) * 3, texts=("🎉" * 5000,))
    assert encode_response(result, 1) == plain(result, 1)


def test_values_beyond_int64_are_refused() -> None:
    result = empty_result()._replace(totals=Totals(2**63, 0, 0, 0, 0, 0, 0))
    with pytest.raises((OverflowError, ValueError)):
        plain(result, 1)
    with pytest.raises(OverflowError):
        encode_response(result, 1)


def test_an_unknown_timing_is_refused() -> None:
    result = empty_result()._replace(
        benefits=(AppliedBenefit("", "p", "POINTS", "accrue_points", 0, 1, "bonus", "LATER"),)
    )
    with pytest.raises(KeyError):
        encode_response(result, 1)


def test_the_assumed_layout_matches_the_descriptors() -> None:
    # The import-time check passes on the current proto, and fails on a changed field number.
    _encode._check_layout()
    layout = _encode._LAYOUT["Totals"]
    saved = layout["items"]
    layout["items"] = (8, saved[1])
    try:
        with pytest.raises(ImportError, match="Totals"):
            _encode._check_layout()
    finally:
        layout["items"] = saved


def test_the_servicer_encodes_natively_where_built() -> None:
    # The form CalculateOrder serves (and logs at start) is the compiled one in a built tree.
    from arbiter.server.api import checkout

    assert checkout.RESPONSE_ENCODING == "native"
    assert checkout.encode_response is encode_response
