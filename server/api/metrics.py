"""Prometheus metrics (docs/api.md, "Metrics"), served as text at /metrics by `--metrics`.

The hot path only adds to plain counters: an RPC's duration goes into the bucket array of its
method (bound once, at registration) and status code (one dict lookup), a calculation's into one
array; nothing takes a lock (the event loop is one thread; a scrape reads the integers as they
are). Everything else is read when Prometheus scrapes (`StateSource`): the member cache's
counters and size, the applied program versions, the PostgreSQL pool, the outbox backlog.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import grpc
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

__all__ = [
    "CALCULATION_BUCKETS",
    "RPC_BUCKETS",
    "Histogram",
    "Metrics",
    "MetricsServer",
    "RpcTimer",
    "StateSource",
]

logger = logging.getLogger("arbiter.metrics")

# Seconds. A quote takes about 100 us to a few ms; a confirm a few ms; streams may take minutes.
RPC_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
CALCULATION_BUCKETS: Final = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
_SCRAPE_TIMEOUT_S: Final = 2.0


class Histogram:
    """Bucket counts and a sum: `observe` is a bisect and two additions."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative counts per `le`, the Prometheus form."""
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            total += count
            out.append((bound, float(total)))
        return out


class RpcTimer:
    """One method's durations, by status code."""

    __slots__ = ("_bounds", "by_code", "method")

    def __init__(self, method: str, bounds: tuple[float, ...] = RPC_BUCKETS) -> None:
        self.method = method
        self._bounds = bounds
        self.by_code: dict[grpc.StatusCode, Histogram] = {grpc.StatusCode.OK: Histogram(bounds)}

    def observe(self, code: grpc.StatusCode, seconds: float) -> None:
        histogram = self.by_code.get(code)
        if histogram is None:
            histogram = self.by_code[code] = Histogram(self._bounds)
        histogram.observe(seconds)


class _Off(RpcTimer):
    """What the call wrapper gets when metrics are off: observes nothing."""

    __slots__ = ()

    def observe(self, code: grpc.StatusCode, seconds: float) -> None:
        return None


@dataclass
class StateSource:
    """What a scrape reads from the running server; each part may be absent."""

    members: Any = None  # a MemberDirectory (hits, misses, cached(program))
    programs: Any = None  # a ProgramRegistry
    pool: Any = None  # an asyncpg.Pool
    loop: asyncio.AbstractEventLoop | None = None
    outbox: Callable[[], Any] | None = None  # coroutine factory -> OutboxBacklog


class Metrics:
    """The process's metrics and their exposition; one per server (own registry)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.timers: list[RpcTimer] = []
        self.calculation = Histogram(CALCULATION_BUCKETS)
        self.state = StateSource()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    def timer(self, method: str) -> RpcTimer:
        """The duration counters of `method` (a no-op timer when metrics are off)."""
        if not self.enabled:
            return _Off(method)
        timer = RpcTimer(method)
        self.timers.append(timer)
        return timer

    def observe_calculation(self) -> Callable[[float], None] | None:
        """The calculation's observer for CheckoutService, or None when metrics are off."""
        return self.calculation.observe if self.enabled else None

    def text(self) -> bytes:
        """The exposition, as /metrics serves it."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        rpc = HistogramMetricFamily(
            "arbiter_rpc_duration_seconds",
            "Duration of each RPC from the server's view, by method and status code",
            labels=("method", "code"),
        )
        for timer in list(metrics.timers):
            for code, histogram in list(timer.by_code.items()):
                rpc.add_metric([timer.method, code.name], histogram.buckets(), histogram.sum)
        yield rpc
        calculation = HistogramMetricFamily(
            "arbiter_calculation_seconds", "Duration of the calculation itself (the engine)"
        )
        calculation.add_metric([], metrics.calculation.buckets(), metrics.calculation.sum)
        yield calculation
        yield from _state(metrics.state)


def _state(state: StateSource) -> Iterable[Metric]:
    members = state.members
    hits = CounterMetricFamily(
        "arbiter_member_cache_hits", "Member reads answered from the in-memory cache"
    )
    misses = CounterMetricFamily(
        "arbiter_member_cache_misses", "Member reads that went to PostgreSQL"
    )
    hits.add_metric([], float(getattr(members, "hits", 0)))
    misses.add_metric([], float(getattr(members, "misses", 0)))
    yield hits
    yield misses
    size = GaugeMetricFamily(
        "arbiter_member_cache_size", "Members held in the in-memory cache", labels=("program",)
    )
    version = GaugeMetricFamily(
        "arbiter_program_version", "The applied version served, by program", labels=("program",)
    )
    programs = state.programs
    cached = getattr(members, "cached", None)
    for program_id in programs.program_ids() if programs is not None else ():
        try:
            applied = programs.get(program_id)
        except Exception:  # removed meanwhile
            continue
        version.add_metric([program_id], float(applied.version))
        if cached is not None:
            size.add_metric([program_id], float(cached(program_id)))
    yield version
    yield size
    pool = state.pool
    if pool is not None:
        pool_size = GaugeMetricFamily(
            "arbiter_postgres_pool_connections",
            "PostgreSQL pool connections, by state",
            labels=("state",),
        )
        total = pool.get_size()
        idle = pool.get_idle_size()
        pool_size.add_metric(["in_use"], float(total - idle))
        pool_size.add_metric(["idle"], float(idle))
        yield pool_size
        pool_max = GaugeMetricFamily(
            "arbiter_postgres_pool_max_connections", "The PostgreSQL pool's maximum size"
        )
        pool_max.add_metric([], float(pool.get_max_size()))
        yield pool_max
    if state.outbox is not None and state.loop is not None:
        try:
            future = asyncio.run_coroutine_threadsafe(state.outbox(), state.loop)
            backlog = future.result(_SCRAPE_TIMEOUT_S)
        except Exception as exc:  # a scrape must not fail because PostgreSQL is away
            logger.warning("metrics: outbox backlog not read: %s", exc)
            return
        pending = GaugeMetricFamily(
            "arbiter_outbox_pending", "Events in the outbox not yet taken by Redis"
        )
        pending.add_metric([], float(backlog.pending))
        yield pending
        lag = GaugeMetricFamily(
            "arbiter_outbox_lag_seconds", "Age of the oldest event not yet taken by Redis"
        )
        lag.add_metric([], backlog.oldest_age_s)
        yield lag


class MetricsServer:
    """The HTTP endpoint (a thread of prometheus-client's own server)."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self._server, self._thread = start_http_server(port, host, metrics.registry)
        self.port: int = int(self._server.server_address[1])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
