"""Quotes with promo codes from memory, the writes that invalidate them, and a database that is
down (UNAVAILABLE, then recovery) on a PostgreSQL cluster of the test's own that it stops."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from arbiter.server.app.embedded_pg import EmbeddedPostgres
from arbiter.server.app.wiring import App
from arbiter.server.ledger import StorageUnavailable
from arbiter.server.state import LedgerMemberDirectory, after_write
from arbiter.v1 import checkout_pb2, checkout_pb2_grpc, member_pb2, member_pb2_grpc, program_pb2
from tests.conftest import TEST_PG_SETTINGS, _scratch_parent
from tests.e2e.conftest import (
    E2E,
    INITIAL_BONUS,
    PROGRAM,
    MovableClock,
    as_calculate,
    as_reserve,
    e2e_settings,
    order_request,
    shop_program,
)

pytestmark = pytest.mark.asyncio

LAST = "LAST"  # one use by everyone
EACH = "EACH"  # unlimited, but one use per member of its pool
MISSING = checkout_pb2.PROMO_CODE_STATUS_UNSPECIFIED


def coded_program() -> program_pb2.Program:
    """The shop, plus two coded promotions: C (pool `one`: LAST, max_uses 1) and E (pool
    `each`: EACH, one use per member), each accruing 1 % bonus."""
    program = shop_program()
    one = program.promo_code_pools.add(id="one", name="one")
    one.codes.add(code=LAST, max_uses=1)
    each = program.promo_code_pools.add(id="each", name="each", max_uses_per_member=1)
    each.codes.add(code=EACH)
    for promotion_id, pool in (("C", "one"), ("E", "each")):
        promotion = program.promotions.add(
            id=promotion_id,
            name=promotion_id,
            kind=program_pb2.PROMOTION_KIND_POINTS,
            status=program_pb2.PROMOTION_STATUS_ACTIVE,
            promo_code_pool=pool,
        )
        rule = promotion.product_rules.add(scope=program_pb2.Scope(kind=program_pb2.SCOPE_KIND_ALL))
        rule.benefits.add(
            accrue_points=program_pb2.AccruePoints(
                point_type="bonus", percent_bp=100, timing=program_pb2.TIMING_ON_CREATE
            )
        )
        program.arbitration.children.add(promotion=promotion_id)
    return program


def with_codes(
    request: checkout_pb2.ConfirmOrderRequest, *codes: str
) -> checkout_pb2.ConfirmOrderRequest:
    request.order.promo_codes.extend(codes)
    return request


def quote(member_id: str, *codes: str) -> checkout_pb2.CalculateOrderRequest:
    return as_calculate(with_codes(order_request("q", member_id), *codes))


def code_status(
    response: checkout_pb2.CalculateOrderResponse, code: str
) -> tuple[int, int]:
    for result in response.promo_codes:
        if result.code == code:
            return result.status, result.reason
    return MISSING, 0


APPLIED = (checkout_pb2.PROMO_CODE_STATUS_APPLIED, checkout_pb2.PROMO_CODE_REASON_UNSPECIFIED)
EXHAUSTED = (checkout_pb2.PROMO_CODE_STATUS_INVALID, checkout_pb2.PROMO_CODE_REASON_EXHAUSTED)


def directory_of(app: App) -> LedgerMemberDirectory:
    assert isinstance(app.members, LedgerMemberDirectory)
    return app.members


async def test_a_confirm_taking_the_last_use_makes_the_next_quote_exhausted(e2e: E2E) -> None:
    await e2e.app.apply_program(coded_program())
    for member in ("m-1", "m-2"):
        await e2e.enroll(member)
    codes = directory_of(e2e.app).codes
    assert code_status(await e2e.checkout.CalculateOrder(quote("m-2", LAST)), LAST) == APPLIED
    hits, misses = codes.hits, codes.misses
    assert code_status(await e2e.checkout.CalculateOrder(quote("m-2", LAST)), LAST) == APPLIED
    assert (codes.hits, codes.misses) == (hits + 1, misses)  # the second quote read nothing

    confirmed = await e2e.checkout.ConfirmOrder(with_codes(order_request("o-1", "m-1"), "last"))
    assert code_status(confirmed.result, "last") == APPLIED
    # The confirm dropped the code's count: the next quote, even of another (cached) member,
    # and an anonymous one, see it used up.
    assert code_status(await e2e.checkout.CalculateOrder(quote("m-2", LAST)), LAST) == EXHAUSTED
    anonymous = quote("", "Last")
    assert code_status(await e2e.checkout.CalculateOrder(anonymous), "Last") == EXHAUSTED
    # ConfirmOrder decides from PostgreSQL: a second order cannot take the code either.
    second = await e2e.checkout.ConfirmOrder(with_codes(order_request("o-2", "m-2"), LAST))
    assert code_status(second.result, LAST) == EXHAUSTED
    assert code_status(await e2e.checkout.CalculateOrder(quote("m-2", LAST)), LAST) == EXHAUSTED

    # A cancel releases the use: the cached count goes.
    await e2e.checkout.CancelOrder(checkout_pb2.CancelOrderRequest(program=PROGRAM, order_id="o-1"))
    assert code_status(await e2e.checkout.CalculateOrder(quote("m-2", LAST)), LAST) == APPLIED


async def test_a_cached_count_follows_holds_removals_and_per_member_uses(e2e: E2E) -> None:
    await e2e.app.apply_program(coded_program())
    for member in ("m-1", "m-2"):
        await e2e.enroll(member)
    assert code_status(await e2e.checkout.CalculateOrder(quote("m-2", LAST)), LAST) == APPLIED
    # A reservation holds the use for 60 s: exhausted meanwhile, usable from hold_until on,
    # with no write in between (the cached count carries the hold's end).
    reserve = as_reserve(with_codes(order_request("r-1", "m-1"), LAST), hold_seconds=60)
    await e2e.checkout.ReserveOrder(reserve)
    assert code_status(await e2e.checkout.CalculateOrder(quote("m-2", LAST)), LAST) == EXHAUSTED
    e2e.clock.advance(timedelta(seconds=59))
    assert code_status(await e2e.checkout.CalculateOrder(quote("m-2", LAST)), LAST) == EXHAUSTED
    e2e.clock.advance(timedelta(seconds=1))
    assert code_status(await e2e.checkout.CalculateOrder(quote("m-2", LAST)), LAST) == APPLIED

    # Removing a member releases its held code uses.
    again = as_reserve(with_codes(order_request("r-2", "m-1"), LAST), hold_seconds=600)
    await e2e.checkout.ReserveOrder(again)
    assert code_status(await e2e.checkout.CalculateOrder(quote("m-2", LAST)), LAST) == EXHAUSTED
    await e2e.members.RemoveMember(
        member_pb2.RemoveMemberRequest(program=PROGRAM, member_id="m-1")
    )
    assert code_status(await e2e.checkout.CalculateOrder(quote("m-2", LAST)), LAST) == APPLIED

    # One use per member of pool `each`: the member's own count lives in the member cache.
    assert code_status(await e2e.checkout.CalculateOrder(quote("m-2", EACH)), EACH) == APPLIED
    await e2e.checkout.ConfirmOrder(with_codes(order_request("o-3", "m-2"), EACH))
    assert code_status(await e2e.checkout.CalculateOrder(quote("m-2", EACH)), EACH) == EXHAUSTED
    await e2e.enroll("m-3")
    assert code_status(await e2e.checkout.CalculateOrder(quote("m-3", EACH)), EACH) == APPLIED


async def test_a_count_read_while_its_code_is_invalidated_is_not_cached(e2e: E2E) -> None:
    await e2e.app.apply_program(coded_program())
    codes = directory_of(e2e.app).codes
    program = e2e.app.programs.get(PROGRAM).source
    assert program is not None
    loading = asyncio.ensure_future(codes.uses(program, [LAST], e2e.clock.now))
    await asyncio.sleep(0)
    assert not loading.done()  # waiting for PostgreSQL
    # A write of the code commits and invalidates meanwhile: what the read saw may predate it.
    e2e.app.members.invalidate_codes(PROGRAM, ["last"])
    assert await loading == {LAST: 0}
    assert codes.cached(PROGRAM) == 0
    # An invalidation of another code leaves the read free to be cached.
    loading = asyncio.ensure_future(codes.uses(program, [LAST], e2e.clock.now))
    await asyncio.sleep(0)
    e2e.app.members.invalidate_codes(PROGRAM, [EACH])
    assert await loading == {LAST: 0}
    assert codes.cached(PROGRAM) == 1


async def test_after_write_forgets_only_once_the_write_ended_even_when_the_caller_is_gone(
) -> None:
    events: list[str] = []
    release = asyncio.Event()

    async def write() -> str:
        await release.wait()
        events.append("committed")
        return "done"

    async def forget() -> None:
        events.append("forgotten")

    caller = asyncio.ensure_future(after_write(write(), forget))
    await asyncio.sleep(0)
    caller.cancel()  # a deadline or a client gone while PostgreSQL commits
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert events == []  # forgetting now could let a quote cache the state before the commit
    release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert events == ["committed", "forgotten"]

    async def failing() -> str:
        raise StorageUnavailable("down")

    with pytest.raises(StorageUnavailable):
        await after_write(failing(), forget)
    assert events[-1] == "forgotten"


# -- a database that goes away ------------------------------------------------------------------


@dataclass
class Stoppable:
    """A cluster of this test's own: stopped and started again on the same port."""

    data_dir: Path
    cluster: EmbeddedPostgres
    port: int

    def stop(self) -> None:
        self.cluster.stop()

    def start(self) -> None:
        self.cluster = EmbeddedPostgres(self.data_dir, port=self.port, settings=TEST_PG_SETTINGS)
        self.cluster.start()


@pytest.fixture
def stoppable_pg() -> Iterator[Stoppable]:
    # Not tmp_path: PostgreSQL may run as an unprivileged account that must traverse the folder.
    data_dir = Path(tempfile.mkdtemp(prefix="arbiter-test-down-", dir=_scratch_parent()))
    data_dir.chmod(0o711)
    cluster = EmbeddedPostgres(data_dir, settings=TEST_PG_SETTINGS)
    cluster.start()
    stoppable = Stoppable(data_dir, cluster, cluster.port)
    try:
        yield stoppable
    finally:
        stoppable.cluster.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass
class Served:
    app: App
    checkout: checkout_pb2_grpc.CheckoutServiceStub
    members: member_pb2_grpc.MemberServiceStub


@pytest.fixture
async def served(stoppable_pg: Stoppable) -> AsyncIterator[Served]:
    app = App(e2e_settings(stoppable_pg.cluster.dsn), clock=MovableClock())
    await app.open()
    try:
        await app.apply_program(coded_program())
        await app.ready()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            served = Served(
                app,
                checkout_pb2_grpc.CheckoutServiceStub(channel),
                member_pb2_grpc.MemberServiceStub(channel),
            )
            for member in ("m-1", "m-2"):
                await served.members.EnrollMember(
                    member_pb2.EnrollMemberRequest(program=PROGRAM, member_id=member)
                )
            yield served
    finally:
        await app.stop(0)


async def unavailable(call: object) -> str:
    """The message of a call that must fail with UNAVAILABLE."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
    return caught.value.details() or ""


async def test_a_repeated_quote_with_a_code_does_no_io(
    served: Served, stoppable_pg: Stoppable
) -> None:
    request = quote("m-1", LAST, EACH)
    first = await served.checkout.CalculateOrder(request)
    assert code_status(first, LAST) == APPLIED
    stoppable_pg.stop()
    # PostgreSQL is gone: the same quote (member and both codes cached) answers the same bytes.
    again = await served.checkout.CalculateOrder(request)
    assert again.SerializeToString(deterministic=True) == first.SerializeToString(
        deterministic=True
    )
    # A code nobody asked about yet must be read, and cannot be.
    message = await unavailable(served.checkout.CalculateOrder(quote("m-1", "OTHER")))
    assert "unavailable" in message


async def test_a_member_quote_is_unavailable_while_the_database_is_down_then_recovers(
    served: Served, stoppable_pg: Stoppable
) -> None:
    stoppable_pg.stop()
    # m-2 was only enrolled (which invalidated it): its quote must read PostgreSQL.
    message = await unavailable(served.checkout.CalculateOrder(quote("m-2")))
    assert "database is unavailable" in message
    await unavailable(served.checkout.CalculateOrder(quote("m-2", LAST)))
    await unavailable(served.checkout.ConfirmOrder(order_request("o-1", "m-2")))
    await unavailable(
        served.members.GetMember(member_pb2.GetMemberRequest(program=PROGRAM, member_id="m-2"))
    )
    # The state room's own tables say the same, not INTERNAL.
    store = served.app.store
    assert store is not None
    with pytest.raises(StorageUnavailable, match="program versions"):
        await store.latest_programs()

    stoppable_pg.start()
    # The pool reconnects by itself; a connection that died with the old server may fail one
    # more call (UNAVAILABLE, retryable), never more than the pool holds.
    response = None
    for _ in range(20):
        try:
            response = await served.checkout.CalculateOrder(quote("m-2", LAST))
            break
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc.details()
            await asyncio.sleep(0.05)
    assert response is not None and code_status(response, LAST) == APPLIED
    confirmed = await served.checkout.ConfirmOrder(with_codes(order_request("o-1", "m-2"), LAST))
    assert code_status(confirmed.result, LAST) == APPLIED
    after = await served.checkout.CalculateOrder(quote("m-1", LAST))
    assert code_status(after, LAST) == EXHAUSTED


def redeemed(response: checkout_pb2.CalculateOrderResponse) -> int:
    return sum(p.redeemed for p in response.points if p.point_type == "bonus")


async def test_a_member_keyed_by_a_uuid_is_cached_and_forgotten_as_any_other(e2e: E2E) -> None:
    # A canonical UUID id is held by its 16 bytes (docs/api.md, "The member cache's memory");
    # its upper-case spelling is another member, cached and forgotten on its own.
    member = "0f8e2c1a-9b7d-4e6f-a5c3-b2d1e0f9a8b7"
    other = member.upper()
    for member_id in (member, other):
        await e2e.enroll(member_id)
    directory = directory_of(e2e.app)
    lines = (("l1", 1, 10_000),)

    def all_in(member_id: str) -> checkout_pb2.CalculateOrderRequest:
        return as_calculate(order_request("q", member_id, redeem=5_000, lines=lines))

    for member_id in (member, other):
        assert redeemed(await e2e.checkout.CalculateOrder(all_in(member_id))) == INITIAL_BONUS
    assert directory.cached(PROGRAM) == 2
    await e2e.checkout.ConfirmOrder(order_request("o-1", member, redeem=400, lines=lines))
    assert directory.cached(PROGRAM) == 1  # the writer's member is forgotten, the other kept
    available = (await e2e.bonus(member)).available
    assert available != INITIAL_BONUS
    assert redeemed(await e2e.checkout.CalculateOrder(all_in(member))) == available
    assert redeemed(await e2e.checkout.CalculateOrder(all_in(other))) == INITIAL_BONUS
    assert directory.cached(PROGRAM) == 2
