"""Backtest workers yield the CPU to the serving process (docs/reports.md)."""

from __future__ import annotations

import os
import sys

import pytest

from arbiter.server.api import backtest


def _policy_after_init(_: int) -> int:
    backtest.worker_init()
    return os.sched_getscheduler(0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the idle class is Linux's")
def test_a_worker_runs_in_the_idle_scheduling_class() -> None:
    # A worker of its own (the pool's start method), so this process keeps its class.
    with backtest.worker_context().Pool(1) as pool:
        policy = pool.apply(_policy_after_init, (0,))
    assert policy == os.SCHED_IDLE
    assert os.sched_getscheduler(0) != os.SCHED_IDLE
