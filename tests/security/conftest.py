"""Servers with auth on (an admin key), over a real PostgreSQL, and helpers to call them.

Fixtures:
- `secured`: an `App` on `pg_database` with ADMIN_KEY, the e2e program `shop` applied, SERVING.
- `make_app`: more Apps with any settings on the same database (stopped at the end).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import grpc
import pytest

from arbiter.server.app.settings import Settings
from arbiter.server.app.wiring import App
from arbiter.v1 import admin_pb2, admin_pb2_grpc
from tests.e2e.conftest import MovableClock, shop_program

ADMIN_KEY = "bootstrap-admin-key-for-tests-0123456789"

MakeApp = Callable[..., Awaitable[App]]


def secured_settings(dsn: str, **changes: Any) -> Settings:
    base = Settings(
        listen="127.0.0.1:0",
        postgres_url=dsn,
        jobs_interval_s=0,
        shutdown_grace_s=0.5,
        admin_key=ADMIN_KEY,
    )
    return replace(base, **changes)


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


@pytest.fixture
async def make_app(pg_database: str) -> AsyncIterator[MakeApp]:
    apps: list[App] = []

    async def make(**changes: Any) -> App:
        app = App(secured_settings(pg_database, **changes), clock=MovableClock())
        await app.open()
        apps.append(app)
        await app.apply_program(shop_program())
        await app.ready()
        return app

    try:
        yield make
    finally:
        for app in reversed(apps):
            await app.stop(0)


@pytest.fixture
async def secured(make_app: MakeApp) -> App:
    return await make_app()


@pytest.fixture
async def channel(secured: App) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{secured.port}") as channel:
        yield channel


async def create_key(channel: grpc.aio.Channel, role: str, name: str) -> str:
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    response = await admin.CreateApiKey(
        admin_pb2.CreateApiKeyRequest(role=role, name=name), metadata=bearer(ADMIN_KEY)
    )
    assert response.key
    return str(response.key)
