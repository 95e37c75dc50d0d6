"""The engine alone, and the engine against the plain reference evaluator (its floor).

    make bench      (pytest-benchmark; compare the groups' medians)

Budgets (issue 2, reported, not asserted): the reference workload in at most 150 us median;
the engine at least 30x faster than the reference at MAX_BENEFIT width 12.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from arbiter.server.api.translate import order_from_proto
from arbiter.server.engine import calculate, compile_program
from arbiter.server.reference import evaluate, prepare
from bench.workloads import max_benefit_workload, reference_workload

NOW = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.mark.benchmark(group="reference-workload")
def test_engine_reference_workload(benchmark: Any) -> None:
    program, request = reference_workload()
    compiled = compile_program(program)
    order, member = order_from_proto(request, compiled.point_type_ids)
    result = benchmark(calculate, compiled, order, member, now=NOW)
    assert result.totals.total > 0


@pytest.mark.parametrize("width", [4, 8, 12])
@pytest.mark.benchmark(group="max-benefit")
def test_engine_max_benefit(benchmark: Any, width: int) -> None:
    program, request = max_benefit_workload(width)
    compiled = compile_program(program)
    order, member = order_from_proto(request, compiled.point_type_ids)
    benchmark.group = f"max-benefit-{width}"
    benchmark.pedantic(
        calculate,
        args=(compiled, order, member),
        kwargs={"now": NOW},
        rounds=3 if width == 12 else 10,
        iterations=1,
    )


@pytest.mark.parametrize("width", [4, 8, 12])
@pytest.mark.benchmark(group="max-benefit")
def test_reference_max_benefit(benchmark: Any, width: int) -> None:
    program, request = max_benefit_workload(width)
    prepared = prepare(program)
    benchmark.group = f"max-benefit-{width}"
    benchmark.pedantic(
        evaluate,
        args=(prepared, request),
        kwargs={"now": NOW},
        rounds=3 if width == 12 else 10,
        iterations=1,
    )
