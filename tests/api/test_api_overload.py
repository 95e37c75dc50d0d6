"""Overload: calls beyond the server's limit are RESOURCE_EXHAUSTED with a message, counted and
logged; health keeps answering (docs/api.md, "Overload").

Calls are held in flight by a member directory whose lookups wait until the test releases them,
so which call is refused never depends on timing.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arbiter.server.api.admission import Admission
from arbiter.server.app.settings import (
    DEFAULT_MAX_CONCURRENT_RPCS,
    Settings,
    SettingsError,
    settings_from_args,
)
from arbiter.server.app.wiring import App
from arbiter.server.engine import CodeUsage, MemberState
from arbiter.v1 import checkout_pb2, checkout_pb2_grpc, program_pb2

# A bound on how long the test may wait for a call that should already have been answered: it
# turns a hang into a failure, and is never what the test measures.
_BOUND_S = 30.0
# More calls at once than gRPC's core queued by default before dropping some (1,000 to 3,000).
_BURST = 4_000


class HeldMembers:
    """A member directory whose lookups wait for `release`; `entered` counts waiting lookups."""

    def __init__(self, expected: int) -> None:
        self.entered = 0
        self._expected = expected
        self.all_entered = asyncio.Event()
        self.release = asyncio.Event()

    async def get(self, program_id: str, member_id: str) -> MemberState:
        self.entered += 1
        if self.entered >= self._expected:
            self.all_entered.set()
        await self.release.wait()
        return MemberState(member_id, balances={"bonus": 50_000})

    async def usage(
        self, program_id: str, member_id: str | None, codes: Sequence[str]
    ) -> CodeUsage | None:
        return None

    def invalidate(self, program_id: str, member_id: str | None = None) -> None:
        return None

    def invalidate_codes(self, program_id: str, codes: Iterable[str] | None = None) -> None:
        return None


def _by_member_id(
    make_request: Callable[..., checkout_pb2.CalculateOrderRequest],
) -> checkout_pb2.CalculateOrderRequest:
    request = make_request()
    request.ClearField("member_context")  # the member comes from the directory: the call waits
    return request


async def test_calls_beyond_the_limit_are_resource_exhausted_counted_and_logged(
    make_program: Callable[..., program_pb2.Program],
    make_request: Callable[..., checkout_pb2.CalculateOrderRequest],
    caplog: pytest.LogCaptureFixture,
) -> None:
    members = HeldMembers(expected=2)
    app = App(Settings(listen="127.0.0.1:0", max_concurrent_rpcs=2), members=members)
    await app.open()
    try:
        app.programs.publish(make_program())
        await app.ready()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            stub = checkout_pb2_grpc.CheckoutServiceStub(channel)
            request = _by_member_id(make_request)
            held = [asyncio.ensure_future(stub.CalculateOrder(request)) for _ in range(2)]
            await asyncio.wait_for(members.all_entered.wait(), _BOUND_S)

            with caplog.at_level(logging.WARNING, logger="arbiter.api"):
                refused = []
                for _ in range(3):
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await stub.CalculateOrder(request, timeout=_BOUND_S)
                    refused.append(caught.value)
                # Health is not a call the limit counts: a load balancer must not see a busy
                # server as a dead one.
                health = health_pb2_grpc.HealthStub(channel)
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=_BOUND_S)

            assert [error.code() for error in refused] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 3
            assert refused[0].details() == (
                "server overloaded: 2 calls in flight (limit 2); retry with backoff"
            )
            assert app.admission.rejected == 3
            assert app.admission.in_flight == 2
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            overload_lines = [r for r in caplog.records if "overloaded" in r.getMessage()]
            # The first refusal is logged at once; the others are summed into a line a second
            # later (the fake clock's test below pins that), never one line per refusal.
            assert 1 <= len(overload_lines) < 3
            assert overload_lines[0].levelno == logging.WARNING
            assert "refused a call: 2 calls in flight (limit 2)" in overload_lines[0].getMessage()

            members.release.set()
            answers = await asyncio.wait_for(asyncio.gather(*held), _BOUND_S)
            assert all(answer.totals.subtotal > 0 for answer in answers)
            assert app.admission.in_flight == 0
            # Below the limit again: answered.
            again = await stub.CalculateOrder(request, timeout=_BOUND_S)
            assert again.totals.subtotal > 0
            assert app.admission.rejected == 3
    finally:
        await app.stop(0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_log_sums_refusals_into_one_line_a_second(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    admission = Admission(1, clock=clock)
    assert admission.enter()
    with caplog.at_level(logging.WARNING, logger="arbiter.api"):
        for _ in range(5):
            assert not admission.enter()
        assert len(caplog.records) == 1
        assert "refused a call: 1 calls in flight (limit 1)" in caplog.records[0].getMessage()
        clock.now += 0.5
        admission.report()  # within the second: nothing new is written
        assert len(caplog.records) == 1
        clock.now += 0.6
        admission.report()
        assert len(caplog.records) == 2
        assert "refused 4 more calls" in caplog.records[1].getMessage()
        clock.now += 5.0
        admission.report()  # nothing refused since: nothing to say
        assert len(caplog.records) == 2
        assert not admission.enter()  # a new episode is logged at once
        assert len(caplog.records) == 3
    assert admission.rejected == 6
    admission.leave()
    assert admission.enter()
    assert admission.in_flight == 1


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Admission(0)


async def test_a_burst_of_quotes_on_one_connection_is_answered_in_full(
    served: App, checkout: Any, make_request: Callable[..., checkout_pb2.CalculateOrderRequest]
) -> None:
    # What a new user met: 2,000 quotes at once on one connection got some bare CANCELLED
    # answers, dropped by gRPC's core from its queue of calls not yet picked up. Within the
    # server's limits every call is answered.
    request = make_request()
    answers = await asyncio.wait_for(
        asyncio.gather(
            *(checkout.CalculateOrder(request) for _ in range(_BURST)), return_exceptions=True
        ),
        _BOUND_S * 4,
    )
    failures = collections.Counter(
        answer.code().name for answer in answers if isinstance(answer, grpc.aio.AioRpcError)
    )
    assert failures == {}
    assert served.admission.rejected == 0


def test_the_limit_comes_from_a_flag_or_the_environment() -> None:
    env = {"ARBITER_MAX_CONCURRENT_RPCS": "7"}
    assert settings_from_args(argv=[], env=env).max_concurrent_rpcs == 7
    flag = ["--max-concurrent-rpcs", "3"]
    assert settings_from_args(argv=flag, env=env).max_concurrent_rpcs == 3
    assert settings_from_args(argv=[], env={}).max_concurrent_rpcs == DEFAULT_MAX_CONCURRENT_RPCS
    with pytest.raises(SettingsError, match="whole number"):
        settings_from_args(argv=[], env={"ARBITER_MAX_CONCURRENT_RPCS": "many"})
    with pytest.raises(SettingsError, match="positive"):
        settings_from_args(argv=["--max-concurrent-rpcs", "0"], env={}).check()
