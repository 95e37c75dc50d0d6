"""The natively read CalculateOrderRequest (server/api/_decode.pyx) gives the engine exactly the
inputs that protobuf's parse and order_from_proto give (docs/api.md, "The request, read
natively"): on every valid generated request it reads them itself; on anything it doubts
(invalid fields, unusual encodings, random bytes) it declines, and the plain path decides.

The extension is imported directly: a tree where it is not built fails here, not silently.
"""

from __future__ import annotations

import os

from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbiter.server.api import _decode, checkout
from arbiter.server.api.translate import (
    MAX_CATEGORIES_PER_LINE,
    MAX_LINES,
    MAX_MONEY_MINOR,
    order_from_proto,
)
from arbiter.server.engine import InvalidOrder
from arbiter.v1 import checkout_pb2
from tests.property.strategies import POINT_TYPES, requests

EXAMPLES = int(os.environ.get("ARBITER_PROPERTY_EXAMPLES", "2000"))
KNOWN = frozenset(POINT_TYPES)
Request = checkout_pb2.CalculateOrderRequest


def _cases(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def native(data: bytes) -> tuple[object, ...] | None:
    """What the servicer takes from the native reader: None when it (or the point types)
    send the request to the plain path."""
    read = _decode.read_quote(data)
    if read is None:
        return None
    _, _, order, member = read
    if not all(t in KNOWN for t in _decode.point_types_of(order, member)):
        return None
    return read


def plain(data: bytes) -> tuple[object, ...] | None:
    """The plain path's inputs, or None when it refuses the request."""
    try:
        request = Request.FromString(data)
        order, member = order_from_proto(request, KNOWN)
    except (DecodeError, InvalidOrder):
        return None
    return (request.program, request.member_id, order, member)


def assert_agree(data: bytes, *, canonical: bool) -> None:
    got = native(data)
    want = plain(data)
    if got is None:
        # Declining is always allowed on odd bytes, never on a valid canonical request.
        assert not (canonical and want is not None), f"declined a valid request {data.hex()}"
        return
    assert want is not None, f"read a request the plain path refuses: {data.hex()}"
    assert got == want
    # The same types, not only equal values: the engine reads rows by position.
    assert type(got[2]) is type(want[2])
    assert all(type(a) is type(b) for a, b in zip(got[2].lines, want[2].lines, strict=True))


@_cases(EXAMPLES // 2)
@given(request=requests())
def test_valid_requests_read_as_order_from_proto_reads_them(request: Request) -> None:
    assert_agree(request.SerializeToString(), canonical=True)


# Field mutations: each turns a generated request into an edge of the checks.
def _mutate(request: Request, which: int, value: int) -> None:
    order = request.order
    lines = order.lines
    if which == 0 and lines:
        lines[value % len(lines)].quantity = value - 2
    elif which == 1 and lines:
        lines[value % len(lines)].unit_price = MAX_MONEY_MINOR + value - 3
    elif which == 2 and len(lines) > 1:
        lines[1].id = lines[0].id
    elif which == 3 and lines:
        lines[0].id = ""
    elif which == 4:
        order.shipping_cost = -value
    elif which == 5:
        order.promo_codes.append("" if value % 2 else "SAVE10")
    elif which == 6:
        order.redeem.add(point_type="nope" if value % 2 else "", points=value)
    elif which == 7:
        order.redeem.add(point_type="qual", points=-value)
    elif which == 8:
        request.member_context.balances.add(point_type="bonus", available=10**15 + value - 2)
    elif which == 9:
        request.member_context.tiers.add(tier_group="levels" if value % 2 else "", tier="gold")
        request.member_context.tiers.add(tier_group="levels", tier="" if value % 3 else "gold")
    elif which == 10:
        order.time_zone = "Europe/Nowhere" if value % 2 else "Asia/Tokyo"
    elif which == 11:
        order.created_at.seconds = 253_402_300_799 - value
        order.created_at.nanos = 999_999_999 + value % 3
    elif which == 12:
        request.member_context.segments.extend(["vip", "vip", "x"])
    elif which == 13 and lines:
        for i in range(value):
            lines[0].fields[f"f{i}"] = -i
    elif which == 14:
        request.ClearField("order")
    elif which == 15 and lines:
        lines[0].quantity = 10**6 + value - 1
        lines[0].unit_price = 10**13 // (10**6 + value) + 1
    elif which == 16 and lines:
        # Around the limit of categories per line (the first one is read without a list).
        line = lines[value % len(lines)]
        del line.categories[:]
        line.categories.extend(f"c{i}" for i in range(MAX_CATEGORIES_PER_LINE + value % 5 - 2))


@_cases(EXAMPLES // 2)
@given(
    request=requests(),
    mutations=st.lists(st.tuples(st.integers(0, 16), st.integers(0, 70)), max_size=3),
)
def test_invalid_requests_are_left_to_the_plain_path(
    request: Request, mutations: list[tuple[int, int]]
) -> None:
    for which, value in mutations:
        _mutate(request, which, value)
    assert_agree(request.SerializeToString(), canonical=True)


@_cases(EXAMPLES // 2)
@given(request=requests(), cut=st.integers(0, 400), noise=st.binary(max_size=12))
def test_odd_bytes_are_read_alike_or_declined(request: Request, cut: int, noise: bytes) -> None:
    data = request.SerializeToString()
    cut %= len(data) + 1
    # Truncated, spliced with noise, duplicated (singular messages given twice merge).
    for candidate in (data[:cut], data[:cut] + noise + data[cut:], data + data, noise):
        assert_agree(candidate, canonical=False)


def test_unusual_encodings_are_declined_or_read_alike() -> None:
    request = Request(program="prop", member_id="m-1")
    line = request.order.lines.add(id="l1", sku="s", quantity=1, unit_price=100)
    line.fields["x"] = 1
    data = request.SerializeToString()
    cases = [
        data + b"\x78\x01",  # an unknown field 15
        data + b"\x0a\x03abc",  # program given twice: the last wins
        data + b"\x0a\x02\xff\xfe",  # a program that is not UTF-8
        data + b"\x08\x01",  # program (field 1) with a varint wire type
        b"\x22\x00" + data,  # order given twice: protobuf merges
        b"\x22\x0a\x3a\x08\x08\xff\xff\xff\xff\xff\xff\xff\xff\x7f",  # an 11-byte varint
        b"",
    ]
    for case in cases:
        assert_agree(case, canonical=False)
    # A repeated map key: the last entry wins, as protobuf reads it.
    request.order.lines[0].fields["x"] = 2
    twice = data + Request(order=request.order).SerializeToString()[2:]
    assert_agree(twice, canonical=False)


def test_too_many_lines_are_declined() -> None:
    request = Request(program="prop")
    for i in range(MAX_LINES + 1):
        request.order.lines.add(id=f"l{i}", quantity=1, unit_price=1)
    assert native(request.SerializeToString()) is None
    del request.order.lines[-1]
    assert native(request.SerializeToString()) is not None


def _slot(text: str) -> int:
    """The reader's string slot of `text` (FNV-1a of its UTF-8, modulo the 4096 slots)."""
    h = 14695981039346656037
    for byte in text.encode():
        h = ((h ^ byte) * 1099511628211) % 2**64
    return h % 4096


def test_strings_read_again_are_the_strings_read() -> None:
    # The reader keeps the short strings it read, by slot: a string read again is the same
    # object; another string of the same slot replaces it; long or non-ASCII strings read right.
    first = "sku-0"
    other = next(f"sku-{i}" for i in range(1, 100_000) if _slot(f"sku-{i}") == _slot(first))
    long = "x" * 64 + "y"
    skus = [first, other, first, "Молоко 3,2%", "Молоко 3,2%", long, long, first]
    read = []
    for sku in skus:
        request = Request(program="prop")
        request.order.lines.add(id="l1", sku=sku, quantity=1, unit_price=100)
        got = native(request.SerializeToString())
        assert got is not None
        read.append(got[2].lines[0].sku)  # type: ignore[attr-defined]
    assert read == skus
    assert read[3] is read[4]
    assert read[5] is not read[6]  # above 64 bytes: not kept


def test_the_assumed_layout_matches_the_descriptors() -> None:
    _decode._check_layout()
    layout = _decode._LAYOUT["Line"]
    saved = layout["fields"]
    layout["fields"] = (9, saved[1])
    try:
        with __import__("pytest").raises(ImportError, match="Line"):
            _decode._check_layout()
    finally:
        layout["fields"] = saved


def test_the_servicer_reads_natively_where_built() -> None:
    assert checkout.REQUEST_READING == "native"
    assert checkout.read_quote is _decode.read_quote
