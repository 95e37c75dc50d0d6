"""The dense workload's calculation in its three parts, timed apart (in process).

    .venv/bin/python -m bench.breakdown_dense

`evaluate.start` (instant, selection, budgets), the tree (`core.evaluate`, each call on a
fresh start so that the selection's lazily computed rule lines are paid for here, as in a
calculation) and the report (`evaluate.report`), against the whole `calculate`; and what
CalculateOrder's servicer runs on the request's bytes (`read_quote`, `calculate_packed`,
`encode_packed`). Medians and minima of 7 repeats of 200 calls; the machine's noise applies
(docs/engine.md, "Measured").
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from arbiter.server.api._decode import read_quote
from arbiter.server.api._encode import encode_packed
from arbiter.server.api.translate import order_from_proto
from arbiter.server.engine import calculate, calculate_packed, compile_program, core
from arbiter.server.engine import evaluate as ev
from bench.workloads import dense_workload

NOW = datetime(2026, 11, 23, tzinfo=UTC)
CALLS = 200
REPEATS = 7


def main() -> None:
    program, request = dense_workload()
    compiled = compile_program(program)
    order, member = order_from_proto(request, compiled.point_type_ids)
    at, _zone, sel, requested, single = ev.start(compiled, order, member, NOW, None)
    calc = core.evaluate(single, compiled.root)
    assert calc is not None
    starts: Iterator[Any] = iter(())

    def whole() -> object:
        return calculate(compiled, order, member, now=NOW)

    def start() -> object:
        return ev.start(compiled, order, member, NOW, None)

    def tree() -> object:
        _at, _zone, _sel, _requested, fresh = next(starts)
        return core.evaluate(fresh, compiled.root)

    def report() -> object:
        return ev.report(compiled, order, member, at, calc, requested, sel.codes)

    data = request.SerializeToString()

    def served() -> object:
        read = read_quote(data)
        assert read is not None
        _program, _member_id, served_order, served_member = read
        result, rows, lines = calculate_packed(compiled, served_order, served_member, now=NOW)
        return encode_packed(result, 1, rows, lines, compiled, served_order.lines)

    parts: list[tuple[str, Callable[[], object]]] = [
        ("calculate", whole),
        ("evaluate.start", start),
        ("tree (core.evaluate)", tree),
        ("evaluate.report", report),
        ("read + packed + encode", served),
    ]
    for name, part in parts:
        starts = iter([start() for _ in range(CALLS * REPEATS)])
        times = [t / CALLS * 1e6 for t in timeit.repeat(part, number=CALLS, repeat=REPEATS)]
        print(f"{name:24} median {statistics.median(times):6.1f} us  min {min(times):6.1f} us")


if __name__ == "__main__":
    main()
