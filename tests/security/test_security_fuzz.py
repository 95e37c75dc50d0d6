"""A fuzzer of every RPC against a real server over PostgreSQL.

Random messages of each request type, random bytes, and mutations of valid requests, with the
admin key, another role's key, a wrong key or none. Whatever comes in: never INTERNAL or UNKNOWN,
never a call left hanging, the server still SERVING, and the ledger's invariants intact after.

Examples per strategy: ARBITER_FUZZ_EXAMPLES (default 400, so that CI stays within a minute).
A campaign: `ARBITER_FUZZ_EXAMPLES=20000 pytest tests/security/test_security_fuzz.py -s`; the
tally of requests and statuses is printed at the end.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbiter.server.app.settings import Settings
from arbiter.server.app.wiring import App
from arbiter.v1 import checkout_pb2, member_pb2
from tests.e2e.conftest import PROGRAM, as_calculate, as_reserve, order_request, shop_program
from tests.ledger.ledger_support import check_invariants
from tests.security.conftest import ADMIN_KEY
from tests.security.fuzz_support import (
    FORBIDDEN,
    METHODS,
    Tally,
    ThreadServer,
    call,
    message_class,
    message_of,
    mutated,
    raw_bytes,
    tweak,
)

EXAMPLES = int(os.environ.get("ARBITER_FUZZ_EXAMPLES", "400"))
POS_KEY_NAME = "fuzz-pos"


def _cases() -> Any:
    return settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=os.environ.get("ARBITER_FUZZ_RANDOM") is None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


class Target:
    def __init__(self, server: ThreadServer, channel: grpc.Channel, pos_key: str, dsn: str) -> None:
        self.server = server
        self.channel = channel
        self.pos_key = pos_key
        self.dsn = dsn
        self.tally = Tally()

    def credentials(self, which: str) -> tuple[tuple[str, str], ...]:
        return {
            "admin": (("authorization", f"Bearer {ADMIN_KEY}"),),
            "pos": (("authorization", f"Bearer {self.pos_key}"),),
            "wrong": (("authorization", "Bearer arb_not-a-key"),),
            "garbage": (("authorization", "Bearer   ;; ,"), ("x-request-id", "~" * 300)),
            "none": (),
        }[which]

    def send(self, kind: str, method: Any, payloads: list[bytes], who: str) -> None:
        metadata = self.credentials(who)
        code = call(self.channel, method, payloads, metadata)
        self.tally.requests += 1
        self.tally.statuses[code.name] += 1
        self.tally.by_kind[kind] += 1
        path = f"{method.containing_service.name}.{method.name}"
        self.tally.by_method[path, code.name] += 1
        if code in FORBIDDEN or code is grpc.StatusCode.DEADLINE_EXCEEDED:
            self.tally.failures.append(f"{path} {code.name} {payloads[:1]!r:.300}")
        assert code not in FORBIDDEN, (path, code, payloads[:1])
        assert code is not grpc.StatusCode.DEADLINE_EXCEEDED, (path, "hung")


async def _setup(app: App) -> None:
    await app.apply_program(shop_program())
    assert app.ledger is not None
    program = shop_program()
    for member_id in ("m-1", "m-2", "m-3"):
        await app.ledger.enroll(program, member_id)


@pytest.fixture(scope="module")
def target(pg_dsn: str) -> Iterator[Target]:
    import secrets

    from arbiter.server.app.embedded_pg import dsn_with_database, run_psql

    name = f"t_fuzz_{secrets.token_hex(6)}"
    run_psql(pg_dsn, f'CREATE DATABASE "{name}"')
    dsn = dsn_with_database(pg_dsn, name)
    try:
        server_settings = Settings(
            listen="127.0.0.1:0",
            postgres_url=dsn,
            jobs_interval_s=0,
            shutdown_grace_s=0,
            admin_key=ADMIN_KEY,
        )
        with ThreadServer(server_settings, _setup) as server:
            keys = server.app._server.keys if server.app._server else None
            assert keys is not None
            pos_key = server.submit(keys.create(POS_KEY_NAME, "pos"))
            with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                target = Target(server, channel, pos_key, dsn)
                yield target
                tally = target.tally
                print(
                    f"\nfuzz: {tally.requests} requests; statuses {dict(tally.statuses)};"
                    f" by kind {dict(tally.by_kind)}; failures {len(tally.failures)}"
                )
                if os.environ.get("ARBITER_FUZZ_VERBOSE"):
                    for (path, code), count in sorted(tally.by_method.items()):
                        print(f"  {path} {code}: {count}")
    finally:
        run_psql(pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _seeds() -> dict[str, bytes]:
    confirm = order_request("o-seed", redeem=100)
    confirm.order.promo_codes.append("WELCOME")
    seeds: dict[str, Any] = {
        "CalculateOrder": as_calculate(confirm),
        "ConfirmOrder": confirm,
        "ReserveOrder": as_reserve(confirm, hold_seconds=60),
        "DeliverOrder": checkout_pb2.DeliverOrderRequest(program=PROGRAM, order_id="o-seed"),
        "CancelOrder": checkout_pb2.CancelOrderRequest(program=PROGRAM, order_id="o-seed"),
        "ReturnOrder": checkout_pb2.ReturnOrderRequest(
            program=PROGRAM,
            order_id="o-seed",
            return_id="r-1",
            lines=[checkout_pb2.ReturnLine(line_id="l1", quantity=1)],
        ),
        "EnrollMember": member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="m-9"),
        "GetMember": member_pb2.GetMemberRequest(program=PROGRAM, member_id="m-1"),
        "ListTransactions": member_pb2.ListTransactionsRequest(
            program=PROGRAM, member_id="m-1", page_size=5
        ),
    }
    return {name: message.SerializeToString() for name, message in seeds.items()}


SEEDS = _seeds()
WHO = st.sampled_from(("admin",) * 6 + ("pos", "pos", "wrong", "garbage", "none"))
# Checkout and member RPCs more often than AdminService's (most of which are not written yet).
methods = st.sampled_from(
    tuple(
        m
        for m in METHODS
        for _ in range({"CheckoutService": 6, "MemberService": 3}.get(m.containing_service.name, 1))
    )
)


def _grounded(data: st.DataObject, method: Any) -> Any:
    """A random message of the method's type, most often near a valid request: the seed (or the
    program's id and a known member) with one or two fields, maybe deep inside, changed at
    random, or with a whole random message merged over it; so that calls get past the first
    checks and into the ledger."""
    noise = data.draw(message_of(method.input_type))
    mode = data.draw(st.sampled_from(("noise", "merged", "tweaked", "tweaked", "seed")))
    if mode == "noise":
        return noise
    base = message_class(method.input_type)()
    seed = SEEDS.get(method.name)
    if seed is not None:
        base.MergeFromString(seed)
    strings = {fd.name for fd in method.input_type.fields if fd.type == fd.TYPE_STRING}
    if "program" in strings:
        base.program = PROGRAM
    if "member_id" in strings:
        base.member_id = data.draw(st.sampled_from(("m-1", "m-2", "m-3", "m-new")))
    # Order ids from a small set: later calls deliver, cancel and return earlier orders.
    order_id = f"o-{data.draw(st.integers(0, 40))}"
    if "order" in method.input_type.fields_by_name and base.HasField("order"):
        base.order.id = order_id
    if "order_id" in strings:
        base.order_id = order_id
    if mode == "merged":
        base.MergeFrom(noise)
    elif mode == "tweaked":
        tweak(data.draw, base)
    return base


@given(data=st.data(), method=methods, who=WHO)
@_cases()
def test_random_messages(target: Target, data: st.DataObject, method: Any, who: str) -> None:
    count = data.draw(st.integers(0, 3)) if method.client_streaming else 1
    messages = [_grounded(data, method) for _ in range(count)]
    target.send("message", method, [m.SerializeToString() for m in messages], who)


@given(data=st.data(), method=methods, who=WHO)
@_cases()
def test_random_bytes(target: Target, data: st.DataObject, method: Any, who: str) -> None:
    count = data.draw(st.integers(1, 3)) if method.client_streaming else 1
    target.send("bytes", method, [data.draw(raw_bytes()) for _ in range(count)], who)


@given(data=st.data(), method=methods, who=WHO)
@_cases()
def test_mutated_requests(target: Target, data: st.DataObject, method: Any, who: str) -> None:
    seed = SEEDS.get(method.name)
    if seed is None:  # a valid-looking request of this type: any message of it, serialised
        seed = data.draw(message_of(method.input_type)).SerializeToString()
    target.send("mutated", method, [data.draw(mutated(seed))], who)


def test_seeds_are_valid_requests() -> None:
    by_name = {method.name: method for method in METHODS}
    for name, seed in SEEDS.items():
        message_class(by_name[name].input_type).FromString(seed)


def test_after_the_fuzzing_the_server_serves_and_the_ledger_holds(target: Target) -> None:
    health = health_pb2_grpc.HealthStub(target.channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == (
        health_pb2.HealthCheckResponse.SERVING
    )
    assert target.tally.requests > 0 and not target.tally.failures

    async def invariants() -> None:
        conn = await asyncpg.connect(target.dsn)
        try:
            await check_invariants(conn)
        finally:
            await conn.close()

    asyncio.run(invariants())
