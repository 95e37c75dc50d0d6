"""Several replicas (Apps in this process) on one real PostgreSQL database and one real Redis.

Fixtures:
- `own_redis`: a redis-server of the test's own (it may stop and restart it on the same port).
- `replicas`: a factory of replicas on `pg_database` (or `dsn=`):
  `await replicas(n, redis=URL, **settings)`;
  each the program `shop` applied (the first replica applies it, the others restore it), SERVING;
  periodic jobs off; all stopped at the end.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arbiter.server.app.embedded_redis import RedisServer
from arbiter.server.app.settings import Settings
from arbiter.server.app.wiring import App
from arbiter.v1 import checkout_pb2_grpc, member_pb2, member_pb2_grpc
from tests.e2e.conftest import PROGRAM, MovableClock, shop_program

#: A condition that must come true is waited for this long at most before the test fails (a
#: liveness bound far above the 1 s the replicas promise, not a measure of speed).
SETTLE_S = 20.0


async def eventually(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + SETTLE_S
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never came true: {what}")
        await asyncio.sleep(0.02)


@dataclass
class Replica:
    app: App
    channel: grpc.aio.Channel
    checkout: checkout_pb2_grpc.CheckoutServiceStub
    members: member_pb2_grpc.MemberServiceStub
    health: health_pb2_grpc.HealthStub

    def version(self) -> int:
        return self.app.programs.get(PROGRAM).version

    async def health_of(self, service: str) -> int:
        response = await self.health.Check(health_pb2.HealthCheckRequest(service=service))
        return int(response.status)

    async def balance(self, member_id: str, point_type: str = "bonus") -> int:
        response = await self.members.GetMember(
            member_pb2.GetMemberRequest(program=PROGRAM, member_id=member_id)
        )
        return int(next(b.balance for b in response.balances if b.point_type == point_type))


MakeReplicas = Callable[..., Awaitable[list[Replica]]]


def replica_settings(dsn: str, redis: str | None, **changes: Any) -> Settings:
    base = Settings(
        listen="127.0.0.1:0",
        postgres_url=dsn,
        redis_url=redis,
        jobs_interval_s=0,
        shutdown_grace_s=0.5,
    )
    return replace(base, **changes)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def replicas(pg_database: str) -> AsyncIterator[MakeReplicas]:
    started: list[tuple[App, grpc.aio.Channel]] = []

    async def make(
        n: int, *, redis: str | None, dsn: str | None = None, **changes: Any
    ) -> list[Replica]:
        made: list[Replica] = []
        for _ in range(n):
            settings = replica_settings(dsn or pg_database, redis, **changes)
            app = App(settings, clock=MovableClock())
            await app.open()
            if not started and not made:
                await app.apply_program(shop_program())
            await app.ready()
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
            started.append((app, channel))
            made.append(
                Replica(
                    app,
                    channel,
                    checkout_pb2_grpc.CheckoutServiceStub(channel),
                    member_pb2_grpc.MemberServiceStub(channel),
                    health_pb2_grpc.HealthStub(channel),
                )
            )
        for replica in made:
            # Listening to the bus before the test starts talking on it.
            if replica.app.bus is not None:
                bus = replica.app.bus
                await eventually(_true_when(lambda bus=bus: bus.subscribed), "subscribed")
        return made

    try:
        yield make
    finally:
        for app, channel in reversed(started):
            await channel.close()
            await app.stop(0)


def _true_when(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def condition() -> bool:
        return check()

    return condition


async def stream_entries(client: Any, program: str = PROGRAM) -> list[dict[str, Any]]:
    """Every entry of the program's event stream, in stream order, decoded."""
    entries = await client.xrange(f"arbiter:events:{program}")
    decoded = []
    for _stream_id, fields in entries:
        entry = {k.decode(): v.decode() for k, v in fields.items()}
        entry["data"] = json.loads(entry["data"])
        decoded.append(entry)
    return decoded
