"""Admission control: a bound on the calls being served, refused with a clear status beyond it.

What overload looked like without it (grpcio 1.85, measured with bench/bench_overload.py): a burst
of 2,000 quotes on one connection got some bare `CANCELLED` answers, nothing logged. The cause is
gRPC's C core, not the application: a call the transport has received waits in the core's
queue of *pending* calls until the Python server asks for the next one (grpc.aio asks for one at
a time). When that queue holds more than `grpc.server.max_pending_requests` (default 1,000) the
core drops new calls at random, surely from `grpc.server.max_pending_requests_hard_limit`
(default 3,000), and a dropped call reaches the client as `CANCELLED` with no message. grpc.aio's
own `maximum_concurrent_rpcs` does not refuse anything: past its limit it stops asking for calls,
which only makes that queue longer (and a call left there 30 s is cancelled too).

So the server (server/app/server.py):
- raises the core's two queue limits to `Settings.max_pending_rpcs` (`pending_call_options`), so
  the core drops nothing short of that bound; a burst of quotes waits there and is answered;
- counts the calls its servicers are serving (`Admission`, applied by `errors.guard` around
  every arbiter.v1 RPC) and refuses one beyond `Settings.max_concurrent_rpcs` at once with
  `RESOURCE_EXHAUSTED` "server overloaded: N calls in flight (limit M); retry with backoff"
  (`Overloaded`, mapped in errors.py). Health and reflection are not counted nor refused: a load
  balancer must not take a busy server for a dead one.

Refusals are counted (`Admission.rejected`, for metrics) and logged at WARNING at most once a
second: the first refusal of an episode at once, then the number refused since the last line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

__all__ = ["REPORT_EVERY_S", "Admission", "Overloaded", "pending_call_options"]

logger = logging.getLogger("arbiter.api")

#: The overload log writes at most one line per this many seconds.
REPORT_EVERY_S: Final = 1.0


class Overloaded(Exception):
    """A call refused because the server is serving as many calls as it may."""

    def __init__(self, in_flight: int, limit: int) -> None:
        super().__init__(
            f"server overloaded: {in_flight} calls in flight (limit {limit}); retry with backoff"
        )
        self.in_flight = in_flight
        self.limit = limit


class Admission:
    """The calls being served, bounded by `limit`. Used from the event loop's thread only.

    `enter()` before serving a call: False (and counted) when `limit` calls are in flight, else
    the call counts until its `leave()`. `in_flight` and `rejected` (refusals since start) are
    plain attributes a metrics exporter may read.
    """

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if limit <= 0:
            raise ValueError("the limit of calls in flight must be positive")
        self.limit = limit
        self.in_flight = 0
        self.rejected = 0
        self._clock = clock
        # A refusal episode: open from its first refusal until a report finds none since.
        self._episode = False
        self._unreported = 0
        self._last_report_at = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def enter(self) -> bool:
        if self.in_flight < self.limit:
            self.in_flight += 1
            return True
        self.rejected += 1
        if self._episode:
            self._unreported += 1
        else:
            self._episode = True
            self._last_report_at = self._clock()
            logger.warning(
                "server overloaded: refused a call: %d calls in flight (limit %d);"
                " %d refused since start",
                self.in_flight,
                self.limit,
                self.rejected,
            )
            self._schedule(REPORT_EVERY_S)
        return False

    def leave(self) -> None:
        self.in_flight -= 1

    def overloaded(self) -> Overloaded:
        """The error a refused call answers with."""
        return Overloaded(self.in_flight, self.limit)

    def report(self) -> None:
        """Log the refusals not yet logged, if the last line is a second old (a timer calls it)."""
        if not self._episode:
            return
        waited = self._clock() - self._last_report_at
        if waited < REPORT_EVERY_S:
            self._schedule(REPORT_EVERY_S - waited)
            return
        if not self._unreported:
            self._episode = False
            return
        logger.warning(
            "server overloaded: refused %d more calls in the last %.1f s: %d calls in flight"
            " (limit %d); %d refused since start",
            self._unreported,
            waited,
            self.in_flight,
            self.limit,
            self.rejected,
        )
        self._unreported = 0
        self._last_report_at += waited
        self._schedule(REPORT_EVERY_S)

    def _schedule(self, delay_s: float) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a unit test): `report()` is called by hand
            return
        self._timer = loop.call_later(delay_s, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.report()


def pending_call_options(max_pending: int) -> list[tuple[str, int]]:
    """grpc server options: the core queues up to `max_pending` calls not yet picked up, and
    drops none below that (its default drops at random from 1,000)."""
    return [
        ("grpc.server.max_pending_requests", max_pending),
        ("grpc.server.max_pending_requests_hard_limit", max_pending),
    ]
