"""Run the reference's hand-computed cases against the engine: every test module imported here
finds `run` replaced by a call through the engine (compile, translate, calculate, translate)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

import pytest

from arbiter.server.api.translate import order_from_proto, result_to_proto
from arbiter.server.engine import CodeUsage, MemberState, calculate, compile_program
from arbiter.server.engine.select import static_segments
from arbiter.v1 import checkout_pb2 as ck
from arbiter.v1 import program_pb2 as pb
from tests.reference import (
    _programs,
    test_benefits,
    test_limits,
    test_output,
    test_reference,
    test_selection,
)

CASE_MODULES = (test_benefits, test_limits, test_output, test_reference, test_selection)


def engine_run(
    prog: pb.Program,
    req: ck.CalculateOrderRequest,
    *,
    now: datetime = _programs.NOON,
    code_uses: Mapping[str, int] | None = None,
    member_pool_uses: Mapping[str, int] | None = None,
) -> ck.CalculateOrderResponse:
    compiled = compile_program(prog)
    order, member = order_from_proto(req, compiled.point_type_ids)
    if member is None and req.member_id:
        # What the member directory gives for an enrolled member with an empty ledger.
        member = MemberState(req.member_id, segments=static_segments(compiled, req.member_id))
    usage = None
    if code_uses is not None or member_pool_uses is not None:
        usage = CodeUsage(code_uses or {}, member_pool_uses or {})
    return result_to_proto(calculate(compiled, order, member, now=now, usage=usage), 7)


# Programs the validator rejects before any calculation (the reference takes them as given).
INVALID_PROGRAMS = {
    "test_text_placeholders_and_emoji": "an unknown placeholder is a configuration error",
    "test_audience_tiers_resolved_from_the_balance_when_the_context_has_none": (
        "a CYCLIC tier group without a period is a configuration error"
    ),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        reason = INVALID_PROGRAMS.get(getattr(item, "originalname", item.name))
        if reason and "tests/engine" in str(item.path):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def through_the_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for module in CASE_MODULES:
        if hasattr(module, "run"):
            monkeypatch.setattr(module, "run", engine_run)
    yield
