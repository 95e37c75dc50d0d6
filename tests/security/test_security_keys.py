"""API keys and roles through gRPC: who may call what, creation, revocation, refusal to start."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from arbiter.server.app.settings import Settings, SettingsError
from arbiter.server.app.wiring import App
from arbiter.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    checkout_pb2,
    checkout_pb2_grpc,
    member_pb2,
    member_pb2_grpc,
)
from tests.e2e.conftest import PROGRAM, order_request
from tests.security.conftest import ADMIN_KEY, MakeApp, bearer, create_key

Call = Callable[[grpc.aio.Channel, Any], Awaitable[Any]]
DENIED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


def _calculate(channel: grpc.aio.Channel, metadata: Any) -> Awaitable[Any]:
    request = checkout_pb2.CalculateOrderRequest()
    request.CopyFrom(_quote())
    return checkout_pb2_grpc.CheckoutServiceStub(channel).CalculateOrder(request, metadata=metadata)


def _quote() -> checkout_pb2.CalculateOrderRequest:
    confirm = order_request("o-1")
    quote = checkout_pb2.CalculateOrderRequest(program=PROGRAM)
    quote.order.CopyFrom(confirm.order)
    return quote


# One RPC of each kind the roles tell apart, and the roles that may call it.
PROBES: dict[str, tuple[Call, frozenset[str]]] = {
    "CheckoutService.CalculateOrder": (_calculate, frozenset({"pos", "admin"})),
    "CheckoutService.CancelOrder": (
        lambda ch, md: checkout_pb2_grpc.CheckoutServiceStub(ch).CancelOrder(
            checkout_pb2.CancelOrderRequest(program=PROGRAM, order_id="nope"), metadata=md
        ),
        frozenset({"pos", "admin"}),
    ),
    "MemberService.GetMember": (
        lambda ch, md: member_pb2_grpc.MemberServiceStub(ch).GetMember(
            member_pb2.GetMemberRequest(program=PROGRAM, member_id="m-1"), metadata=md
        ),
        frozenset({"pos", "app", "admin"}),
    ),
    "MemberService.ListTransactions": (
        lambda ch, md: member_pb2_grpc.MemberServiceStub(ch).ListTransactions(
            member_pb2.ListTransactionsRequest(program=PROGRAM, member_id="m-1"), metadata=md
        ),
        frozenset({"app", "admin"}),
    ),
    "MemberService.EnrollMember": (
        lambda ch, md: member_pb2_grpc.MemberServiceStub(ch).EnrollMember(
            member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="m-2"), metadata=md
        ),
        frozenset({"admin"}),
    ),
    "AdminService.ListPrograms": (
        lambda ch, md: admin_pb2_grpc.AdminServiceStub(ch).ListPrograms(
            admin_pb2.ListProgramsRequest(), metadata=md
        ),
        frozenset({"admin"}),
    ),
}


async def _code(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_each_role_against_each_service(channel: grpc.aio.Channel) -> None:
    keys = {role: await create_key(channel, role, f"{role}-terminal") for role in ("pos", "app")}
    keys["admin"] = ADMIN_KEY
    seen: dict[tuple[str, str], grpc.StatusCode] = {}
    for role, key in keys.items():
        for name, (call, _) in PROBES.items():
            seen[role, name] = await _code(call(channel, bearer(key)))
    for (role, name), code in seen.items():
        allowed = PROBES[name][1]
        if role in allowed:
            assert code not in DENIED, (role, name, code)
        else:
            assert code == grpc.StatusCode.PERMISSION_DENIED, (role, name, code)
    # What the allowed calls answered: the RPC ran.
    assert seen["pos", "CheckoutService.CalculateOrder"] == grpc.StatusCode.OK
    assert seen["app", "MemberService.GetMember"] == grpc.StatusCode.NOT_FOUND
    assert seen["admin", "MemberService.EnrollMember"] == grpc.StatusCode.OK


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        bearer("not-a-key"),
        (("authorization", ADMIN_KEY),),  # no "Bearer "
        (("authorization", "Basic " + ADMIN_KEY),),
        bearer(""),
    ],
    ids=["missing", "wrong", "no-scheme", "basic", "empty"],
)
async def test_missing_or_wrong_credentials_are_unauthenticated(
    channel: grpc.aio.Channel, metadata: Any
) -> None:
    for call, _ in PROBES.values():
        assert await _code(call(channel, metadata)) == grpc.StatusCode.UNAUTHENTICATED


async def test_bearer_scheme_is_case_insensitive(channel: grpc.aio.Channel) -> None:
    metadata = (("authorization", f"bearer {ADMIN_KEY}"),)
    assert await _code(_calculate(channel, metadata)) == grpc.StatusCode.OK


async def test_health_and_reflection_stay_open(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    response = await health.Check(health_pb2.HealthCheckRequest())
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for answer in stub.ServerReflectionInfo(iter([request])):
        names = {s.name for s in answer.list_services_response.service}
        assert "arbiter.v1.CheckoutService" in names
        break


async def test_created_key_is_returned_once_and_stored_as_a_digest(
    secured: App, channel: grpc.aio.Channel
) -> None:
    key = await create_key(channel, "pos", "till-7")
    other = await create_key(channel, "pos", "till-8")
    assert key != other
    assert len(key) >= 40
    assert secured.ledger is not None
    rows = await secured.ledger.pool.fetch("SELECT * FROM api_keys ORDER BY name")
    assert [(r["name"], r["role"]) for r in rows] == [("till-7", "pos"), ("till-8", "pos")]
    for row in rows:
        stored = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
        assert key.encode() not in stored and other.encode() not in stored
        assert len(row["key_hash"]) == 32
    assert await _code(_calculate(channel, bearer(key))) == grpc.StatusCode.OK


async def test_create_api_key_checks_its_fields(channel: grpc.aio.Channel) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    for request, field in (
        (admin_pb2.CreateApiKeyRequest(role="root", name="x"), "role"),
        (admin_pb2.CreateApiKeyRequest(role="pos", name=""), "name"),
        (admin_pb2.CreateApiKeyRequest(role="pos", name="n" * 101), "name"),
        (admin_pb2.CreateApiKeyRequest(role="pos", name="admin"), "name"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await admin.CreateApiKey(request, metadata=bearer(ADMIN_KEY))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (caught.value.details() or "")
    await create_key(channel, "app", "mobile")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create_key(channel, "pos", "mobile")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_revoked_key_is_unauthenticated_and_its_name_free_again(
    channel: grpc.aio.Channel,
) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    key = await create_key(channel, "pos", "till-1")
    assert await _code(_calculate(channel, bearer(key))) == grpc.StatusCode.OK
    await admin.RevokeApiKey(admin_pb2.RevokeApiKeyRequest(key=key), metadata=bearer(ADMIN_KEY))
    assert await _code(_calculate(channel, bearer(key))) == grpc.StatusCode.UNAUTHENTICATED
    # Revoking again changes nothing; an unknown key is NOT_FOUND; the bootstrap key cannot be.
    await admin.RevokeApiKey(admin_pb2.RevokeApiKeyRequest(key=key), metadata=bearer(ADMIN_KEY))
    for revoke, code in (
        ("no-such-key", grpc.StatusCode.NOT_FOUND),
        (ADMIN_KEY, grpc.StatusCode.FAILED_PRECONDITION),
        ("", grpc.StatusCode.INVALID_ARGUMENT),
    ):
        call = admin.RevokeApiKey(
            admin_pb2.RevokeApiKeyRequest(key=revoke), metadata=bearer(ADMIN_KEY)
        )
        assert await _code(call) == code
    fresh = await create_key(channel, "pos", "till-1")
    assert await _code(_calculate(channel, bearer(fresh))) == grpc.StatusCode.OK


async def test_a_key_made_on_one_replica_works_on_another_and_revocation_spreads(
    make_app: MakeApp,
) -> None:
    first = await make_app()
    second = await make_app()
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as one,
        grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as two,
    ):
        key = await create_key(one, "pos", "till-9")
        # The second replica reads the table every 0.5 s, and early on a miss.
        await _until(two, key, grpc.StatusCode.OK)
        await admin_pb2_grpc.AdminServiceStub(one).RevokeApiKey(
            admin_pb2.RevokeApiKeyRequest(key=key), metadata=bearer(ADMIN_KEY)
        )
        assert await _code(_calculate(one, bearer(key))) == grpc.StatusCode.UNAUTHENTICATED
        await _until(two, key, grpc.StatusCode.UNAUTHENTICATED)


async def _until(channel: grpc.aio.Channel, key: str, code: grpc.StatusCode) -> None:
    """Calls until `code` comes (the replica's background refresh), or fail after 10 s."""
    for _ in range(200):
        if await _code(_calculate(channel, bearer(key))) == code:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"the other replica never answered {code.name}")


def test_non_loopback_without_admin_key_refuses_to_start() -> None:
    with pytest.raises(SettingsError, match="ARBITER_ADMIN_KEY"):
        Settings(listen="0.0.0.0:50051").check()
    Settings(listen="0.0.0.0:50051", admin_key="k").check()
    Settings(listen="127.0.0.1:50051").check()


def test_serve_refuses_a_public_address_without_admin_key(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")} | {
        "ARBITER_DATA_DIR": str(tmp_path)
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from arbiter.client.cli import main; raise SystemExit(main())",
            "serve",
            "--listen",
            "0.0.0.0:0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "ARBITER_ADMIN_KEY" in done.stderr
    assert not any(tmp_path.iterdir()), "nothing may start before the refusal"


async def test_the_calculate_command_sends_arbiter_api_key(secured: App, tmp_path: Any) -> None:
    from google.protobuf import json_format

    request_file = tmp_path / "order.json"
    request_file.write_text(json_format.MessageToJson(_quote()), encoding="utf-8")
    base = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")}

    async def calculate(env: dict[str, str]) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "arbiter.client.cli",
            "calculate",
            "--target",
            f"127.0.0.1:{secured.port}",
            str(request_file),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode is not None
        return process.returncode, err.decode()

    code, err = await calculate(base)
    assert code == 1 and "UNAUTHENTICATED" in err
    assert await calculate(base | {"ARBITER_API_KEY": ADMIN_KEY}) == (0, "")


async def test_without_storage_only_the_bootstrap_key() -> None:
    from tests.api.conftest import golden_program, golden_request

    app = App(Settings(listen="127.0.0.1:0", admin_key=ADMIN_KEY, shutdown_grace_s=0))
    await app.open()
    try:
        app.programs.publish(golden_program())
        await app.ready()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            checkout = checkout_pb2_grpc.CheckoutServiceStub(channel)
            assert await _code(checkout.CalculateOrder(golden_request())) == (
                grpc.StatusCode.UNAUTHENTICATED
            )
            call = checkout.CalculateOrder(golden_request(), metadata=bearer(ADMIN_KEY))
            assert await _code(call) == grpc.StatusCode.OK
            create = admin_pb2_grpc.AdminServiceStub(channel).CreateApiKey(
                admin_pb2.CreateApiKeyRequest(role="pos", name="till"), metadata=bearer(ADMIN_KEY)
            )
            assert await _code(create) == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await app.stop(0)


async def test_the_audit_journal_names_the_key_that_made_each_change(
    channel: grpc.aio.Channel,
) -> None:
    """The journal's actor is the calling key's name (the bootstrap key's is "admin")."""
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    marketing = await create_key(channel, "admin", "marketing")
    exported = await admin.ExportProgram(
        admin_pb2.ExportProgramRequest(program=PROGRAM), metadata=bearer(ADMIN_KEY)
    )
    program = exported.program
    program.name = "renamed by marketing"
    await admin.UpdateProgram(
        admin_pb2.UpdateProgramRequest(program=program), metadata=bearer(marketing)
    )
    page = await admin.ListAuditEntries(
        admin_pb2.ListAuditEntriesRequest(program=PROGRAM, page_size=1000),
        metadata=bearer(ADMIN_KEY),
    )
    last = page.entries[-1]
    assert (last.action, last.actor) == ("update", "marketing")
    assert "local" not in {e.actor for e in page.entries if e.action == "update"}
