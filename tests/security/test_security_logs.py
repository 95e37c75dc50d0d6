"""JSON logs: one object a line; each RPC logs method, code, duration, request id, key name."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from arbiter.server.api import auth
from arbiter.server.api.calls import RPC_LOGGER
from arbiter.server.app.logs import JsonFormatter, configure_logging
from arbiter.server.app.settings import SettingsError, settings_from_args
from arbiter.server.app.wiring import App
from arbiter.v1 import member_pb2, member_pb2_grpc
from tests.e2e.conftest import PROGRAM
from tests.security.conftest import ADMIN_KEY, bearer, create_key
from tests.security.test_security_keys import _calculate


@pytest.fixture
def rpc_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(RPC_LOGGER)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def settled(stream: io.StringIO, count: int) -> list[dict[str, Any]]:
    """The lines once there are `count` of them: the server logs a call just after the caller
    has its status, so the last line may come a moment after the last await returns."""
    for _ in range(500):
        lines = _lines(stream)
        if len(lines) >= count:
            return lines
        await asyncio.sleep(0.01)
    return _lines(stream)


async def test_one_json_line_per_rpc_with_the_key_name_never_the_key(
    channel: grpc.aio.Channel, rpc_lines: io.StringIO
) -> None:
    key = await create_key(channel, "pos", "till-3")
    rpc_lines.truncate(0)
    rpc_lines.seek(0)
    metadata = (*bearer(key), ("x-request-id", "req-42"))
    await _calculate(channel, metadata)
    members = member_pb2_grpc.MemberServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError):
        await members.GetMember(
            member_pb2.GetMemberRequest(program=PROGRAM, member_id="alice@example.com"),
            metadata=bearer(key),
        )
    with pytest.raises(grpc.aio.AioRpcError):
        await members.EnrollMember(
            member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="bob"), metadata=bearer(key)
        )
    with pytest.raises(grpc.aio.AioRpcError):
        await members.GetMember(member_pb2.GetMemberRequest(program=PROGRAM, member_id="x"))
    lines = await settled(rpc_lines, 4)
    text = rpc_lines.getvalue()
    assert [(line["method"], line["code"], line["name"]) for line in lines] == [
        ("/arbiter.v1.CheckoutService/CalculateOrder", "OK", "till-3"),
        ("/arbiter.v1.MemberService/GetMember", "NOT_FOUND", "till-3"),
        ("/arbiter.v1.MemberService/EnrollMember", "PERMISSION_DENIED", "till-3"),
        ("/arbiter.v1.MemberService/GetMember", "UNAUTHENTICATED", ""),
    ]
    for line in lines:
        assert {"time", "level", "message", "duration_ms", "request_id"} <= line.keys()
        assert line["level"] == "INFO"
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
        assert line["request_id"]
    assert lines[0]["request_id"] == "req-42"
    assert len({line["request_id"] for line in lines}) == len(lines)
    assert key not in text and ADMIN_KEY not in text
    assert "alice@example.com" not in text


def test_configure_logging_writes_json_objects() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    try:
        configure_logging("json", "INFO", stream)
        logging.getLogger("arbiter.test").info("hello %s", "world")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("arbiter.test").exception("failed")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    first, second = _lines(stream)
    assert first["message"] == "hello world" and first["level"] == "INFO"
    assert first["logger"] == "arbiter.test"
    assert first["time"].endswith("+00:00")
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


def test_log_format_setting() -> None:
    assert settings_from_args(argv=[], env={}).log_format == "text"
    assert settings_from_args(argv=[], env={"ARBITER_LOG_FORMAT": "json"}).log_format == "json"
    assert settings_from_args(argv=["--log-format", "json"], env={}).log_format == "json"
    with pytest.raises(SettingsError, match="log format"):
        settings_from_args(argv=["--log-format", "xml"], env={}).check()


async def test_auth_off_callers_are_local(rpc_lines: io.StringIO, pg_database: str) -> None:
    from arbiter.server.app.settings import Settings

    app = App(Settings(listen="127.0.0.1:0", postgres_url=pg_database, jobs_interval_s=0))
    await app.open()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await member_pb2_grpc.MemberServiceStub(channel).GetMember(
                    member_pb2.GetMemberRequest(program="none", member_id="m")
                )
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        lines = await settled(rpc_lines, 1)
    finally:
        await app.stop(0)
    assert [line["name"] for line in lines] == ["local"]
    assert auth.caller_name(None) == "local"


async def test_a_failure_of_the_wrapper_itself_is_one_internal_status(
    secured: App, channel: grpc.aio.Channel, rpc_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert secured._server is not None
    keys = secured._server.keys

    async def broken(metadata: Any) -> auth.Principal:
        raise RuntimeError("the key table is broken")

    monkeypatch.setattr(keys, "authenticate", broken)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _calculate(channel, bearer(ADMIN_KEY))
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "broken" not in (caught.value.details() or "")
    assert [line["code"] for line in await settled(rpc_lines, 1)] == ["INTERNAL"]
