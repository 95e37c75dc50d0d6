"""The engine alone, and the engine against the plain reference evaluator (its floor).

    make bench      (pytest-benchmark; compare the groups' medians)

Budgets (reported, not asserted): the dense workload in at most 100 us median; MAX_BENEFIT over
50 lines: width 12 in at most 1 ms, width 16 in at most 5 ms; compiling a 10,000-promotion
program in at most 2 s (docs/engine.md, "Compiled with Cython").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from arbiter.server.api.translate import order_from_proto
from arbiter.server.engine import calculate, compile_program
from arbiter.server.reference import evaluate, prepare
from bench.workloads import dense_workload, large_program, max_benefit_workload, reference_workload

NOW = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.mark.benchmark(group="reference-workload")
def test_engine_reference_workload(benchmark: Any) -> None:
    program, request = reference_workload()
    compiled = compile_program(program)
    order, member = order_from_proto(request, compiled.point_type_ids)
    result = benchmark(calculate, compiled, order, member, now=NOW)
    assert result.totals.total > 0


@pytest.mark.benchmark(group="dense-workload")
def test_engine_dense_workload(benchmark: Any) -> None:
    program, request = dense_workload()
    compiled = compile_program(program)
    order, member = order_from_proto(request, compiled.point_type_ids)
    result = benchmark(calculate, compiled, order, member, now=NOW)
    assert len(result.benefits) > 50


@pytest.mark.benchmark(group="compile")
def test_compile_10000_promotions(benchmark: Any) -> None:
    program = large_program(10_000)
    compiled = benchmark.pedantic(compile_program, args=(program,), rounds=3, iterations=1)
    assert len(compiled.promotions) == 10_000


@pytest.mark.parametrize("width", [4, 8, 12, 16])
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
        rounds=10,
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
