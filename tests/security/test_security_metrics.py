"""The metrics endpoint: Prometheus text at /metrics with the names the contract lists."""

from __future__ import annotations

import asyncio
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from arbiter.server.app.settings import SettingsError, settings_from_args
from arbiter.server.app.wiring import App
from arbiter.v1 import checkout_pb2_grpc, member_pb2, member_pb2_grpc
from tests.e2e.conftest import PROGRAM, as_calculate, order_request
from tests.security.conftest import ADMIN_KEY, MakeApp, bearer
from tests.security.test_security_keys import _calculate


def _scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _value(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    matching = [
        v for found, v in samples[name] if all(found.get(k) == w for k, w in labels.items())
    ]
    assert len(matching) == 1, (name, labels, samples.get(name))
    return matching[0]


async def test_metrics_endpoint_names_and_values(make_app: MakeApp) -> None:
    app: App = await make_app(metrics_listen="127.0.0.1:0")
    assert app._server is not None
    port = app._server.metrics_port
    assert port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        members = member_pb2_grpc.MemberServiceStub(channel)
        await members.EnrollMember(
            member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="m-1"),
            metadata=bearer(ADMIN_KEY),
        )
        for _ in range(3):
            await _calculate(channel, bearer(ADMIN_KEY))
        quote = as_calculate(order_request("o-1"))
        for _ in range(2):  # a member's quote: the first misses the cache, the second hits
            await checkout_pb2_grpc.CheckoutServiceStub(channel).CalculateOrder(
                quote, metadata=bearer(ADMIN_KEY)
            )
        with pytest.raises(grpc.aio.AioRpcError):
            await members.GetMember(
                member_pb2.GetMemberRequest(program=PROGRAM, member_id="nobody"),
                metadata=bearer(ADMIN_KEY),
            )
        with pytest.raises(grpc.aio.AioRpcError):
            await _calculate(channel, ())
    # The server counts a call just after the caller has its status: scrape until all are in.
    for _ in range(500):
        samples = await asyncio.to_thread(_scrape, port)
        counts = samples.get("arbiter_rpc_duration_seconds_count", [])
        if sum(value for _, value in counts) >= 8:  # 1 enrollment, 5 + 1 quotes, 1 read
            break
        await asyncio.sleep(0.01)
    calculate = "/arbiter.v1.CheckoutService/CalculateOrder"
    assert _value(samples, "arbiter_rpc_duration_seconds_count", method=calculate, code="OK") == 5
    assert (
        _value(
            samples, "arbiter_rpc_duration_seconds_count", method=calculate, code="UNAUTHENTICATED"
        )
        == 1
    )
    assert (
        _value(
            samples,
            "arbiter_rpc_duration_seconds_count",
            method="/arbiter.v1.MemberService/GetMember",
            code="NOT_FOUND",
        )
        == 1
    )
    inf = _value(
        samples, "arbiter_rpc_duration_seconds_bucket", method=calculate, code="OK", le="+Inf"
    )
    assert inf == 5
    assert _value(samples, "arbiter_rpc_duration_seconds_sum", method=calculate, code="OK") > 0
    assert _value(samples, "arbiter_calculation_seconds_count") == 5
    assert _value(samples, "arbiter_member_cache_misses_total") >= 1
    assert _value(samples, "arbiter_member_cache_hits_total") >= 1
    assert _value(samples, "arbiter_member_cache_size", program=PROGRAM) == 1
    assert _value(samples, "arbiter_program_version", program=PROGRAM) == 1
    # Enrollment wrote an event that no relay has taken (jobs are off in these tests).
    assert _value(samples, "arbiter_outbox_pending") >= 1
    assert _value(samples, "arbiter_outbox_lag_seconds") >= 0
    assert _value(samples, "arbiter_postgres_pool_connections", state="in_use") >= 0
    assert _value(samples, "arbiter_postgres_pool_max_connections") >= 1


async def test_no_metrics_endpoint_unless_asked(secured: App) -> None:
    assert secured._server is not None and secured._server.metrics_port is None


def test_metrics_setting() -> None:
    assert settings_from_args(argv=[], env={}).metrics_listen is None
    env = {"ARBITER_METRICS_LISTEN": "127.0.0.1:9464"}
    assert settings_from_args(argv=[], env=env).metrics_listen == "127.0.0.1:9464"
    with pytest.raises(SettingsError):
        settings_from_args(argv=["--metrics", "nonsense"], env={})
