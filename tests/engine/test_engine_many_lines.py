"""Selection on orders of more than 64 lines (the typed selection's line bit sets span several
64-bit words, engine/_select.pyx), held to the reference evaluator like the property tests."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbiter.v1 import checkout_pb2 as cpb
from arbiter.v1 import program_pb2 as pb
from tests.property.strategies import programs, requests
from tests.property.test_engine_vs_reference import assert_agree


def _widened(request: cpb.CalculateOrderRequest, data: st.DataObject) -> None:
    """The request's lines repeated to 65-140 lines (new ids, drawn quantities)."""
    drawn = list(request.order.lines)
    count = data.draw(st.integers(65, 140))
    del request.order.lines[:]
    for i in range(count):
        line = request.order.lines.add()
        line.CopyFrom(drawn[data.draw(st.integers(0, len(drawn) - 1))])
        line.id = f"l{i}"
        line.quantity = data.draw(st.integers(1, 3))


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(program=programs(), request=requests(), data=st.data())
def test_engine_agrees_with_reference_past_64_lines(
    program: pb.Program, request: cpb.CalculateOrderRequest, data: st.DataObject
) -> None:
    _widened(request, data)
    assert_agree(program, request)
