"""ConfirmOrder, CancelOrder, DeliverOrder and promo code uses, with a fake calculator."""

from __future__ import annotations

import pytest

from arbiter.server.engine.types import MemberState
from arbiter.server.ledger import (
    Conflict,
    InsufficientPoints,
    InvalidArgument,
    Ledger,
    NotFound,
    OrderStateError,
    PointsMovement,
    TotalMismatch,
)
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import DAY, T0, FakeOrder, make_program


async def _fund(ledger: Ledger, program: program_pb2.Program, member: str, points: int,
                key: str, point_type: str = "bonus", now=T0) -> None:  # type: ignore[no-untyped-def]
    await ledger.create_transaction(program, member_id=member, point_type=point_type,
                                    operation="ACCRUAL", points=points, external_id=key, now=now)


def _pools() -> list[program_pb2.PromoCodePool]:
    single = program_pb2.PromoCodePool(id="single", name="single")
    single.codes.add(code="ONCE", max_uses=1)
    per_member = program_pb2.PromoCodePool(id="perm", name="perm", max_uses_per_member=2)
    per_member.codes.add(code="A1", max_uses=0)
    per_member.codes.add(code="A2", max_uses=0)
    return [single, per_member]


async def test_confirm_posts_and_replays_the_stored_result(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await ledger.enroll(program, "m1", now=T0)
    await _fund(ledger, program, "m1", 3_000, "f")
    order = FakeOrder("o1", lines=(("a", 2, 3_000), ("b", 1, 4_000)),
                      redeem=(("bonus", 5_000),), accrue=(("bonus", 100), ("status", 7)))
    calls: list[MemberState] = []
    out = await ledger.confirm_order(program, order.request(), order.compute(program, calls),
                                     now=T0)
    assert out.state == "CONFIRMED" and not out.replayed
    assert calls[0].balances["bonus"] == 3_000
    assert out.result.points[0].redeemed == 3_000
    assert out.result.totals.total == 10_000 - 3_000
    info = await ledger.get_member(program, "m1", now=T0)
    assert info.balance("bonus").available == 100
    assert info.balance("status").available == 7
    again = await ledger.confirm_order(program, order.request(expected_total=7_000),
                                       order.compute(program, calls), now=T0 + DAY)
    assert again.replayed and again.result == out.result
    assert len(calls) == 1  # no recalculation
    with pytest.raises(TotalMismatch):
        await ledger.confirm_order(program, order.request(expected_total=1),
                                   order.compute(program), now=T0)
    changed = FakeOrder("o1", lines=(("a", 2, 3_000),))
    with pytest.raises(Conflict):
        await ledger.confirm_order(program, changed.request(), changed.compute(program), now=T0)
    page = await ledger.list_transactions(program, "m1")
    assert [(t.type, t.point_type, t.value) for t in page.transactions] == [
        ("ACCRUAL", "bonus", 3_000), ("REDEMPTION", "bonus", -3_000),
        ("ACCRUAL", "bonus", 100), ("ACCRUAL", "status", 7)]
    assert {t.source_id for t in page.transactions[1:]} == {"o1"}
    topics = [e.topic for e in await ledger.outbox_events()]
    assert topics.count("order.confirmed") == 1
    assert "points.redeemed" in topics


async def test_expected_total_mismatch_writes_nothing(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await ledger.enroll(program, "m1", now=T0)
    await _fund(ledger, program, "m1", 500, "f")
    order = FakeOrder("o1", redeem=(("bonus", 500),), accrue=(("bonus", 10),))
    with pytest.raises(TotalMismatch) as err:
        await ledger.confirm_order(program, order.request(expected_total=10_000),
                                   order.compute(program), now=T0)
    assert (err.value.expected_total, err.value.total) == (10_000, 9_500)
    info = await ledger.get_member(program, "m1", now=T0)
    assert info.balance("bonus").balance == 500
    assert len((await ledger.list_transactions(program, "m1")).transactions) == 1
    out = await ledger.confirm_order(program, order.request(expected_total=9_500),
                                     order.compute(program), now=T0)
    assert out.result.totals.total == 9_500


async def test_a_result_the_balance_no_longer_covers_is_refused(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await ledger.enroll(program, "m1", now=T0)
    await _fund(ledger, program, "m1", 100, "f")
    order = FakeOrder("o1", redeem=(("bonus", 500),))
    stale = order.compute(program)

    def overspend(member, usage):  # type: ignore[no-untyped-def]
        return stale(MemberState(member.member_id, {"bonus": 1_000}), usage)

    with pytest.raises(InsufficientPoints):
        await ledger.confirm_order(program, order.request(), overspend, now=T0)
    assert (await ledger.get_member(program, "m1", now=T0)).balance("bonus").balance == 100


async def test_confirm_needs_an_enrolled_member(ledger: Ledger,
                                                program: program_pb2.Program) -> None:
    order = FakeOrder("o1", member_id="ghost")
    with pytest.raises(NotFound):
        await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
    await ledger.enroll(program, "m1", now=T0)
    with pytest.raises(InvalidArgument):
        bad = FakeOrder("")
        await ledger.confirm_order(program, bad.request(), bad.compute(program), now=T0)


async def test_redemption_takes_soonest_expiring_lots_first(ledger: Ledger) -> None:
    program = make_program(validity_days=30)
    await ledger.enroll(program, "m1", now=T0)
    # miles: 1 year validity; bonus 30 days; lots of bonus at T0 (exp +30) and T0+5 (exp +35).
    await _fund(ledger, program, "m1", 100, "late", now=T0 + 5 * DAY)
    await _fund(ledger, program, "m1", 100, "early", now=T0 + 6 * DAY)
    order = FakeOrder("o1", redeem=(("bonus", 150),))
    await ledger.confirm_order(program, order.request(), order.compute(program), now=T0 + 7 * DAY)
    lots = await ledger.expiring_points(program, "m1", within_days=365, now=T0 + 7 * DAY)
    assert [(lot.points, lot.expires_at) for lot in lots] == [(50, T0 + 36 * DAY)]


async def test_never_expiring_lots_are_spent_last(ledger: Ledger) -> None:
    program = make_program()  # bonus never expires
    program.point_types[0].validity.Clear()
    await ledger.enroll(program, "m1", now=T0)
    await _fund(ledger, program, "m1", 100, "a")
    rows = await ledger.pool.fetch("SELECT expires_at FROM lots")
    assert [r["expires_at"] for r in rows] == [None]


async def test_cancel_reverses_everything_and_is_idempotent(ledger: Ledger) -> None:
    program = make_program(validity_days=10, pools=_pools())
    await ledger.enroll(program, "m1", now=T0)
    await _fund(ledger, program, "m1", 100, "f1")  # expires T0+10
    await _fund(ledger, program, "m1", 100, "f2", now=T0 + 5 * DAY)  # expires T0+15
    order = FakeOrder("o1", redeem=(("bonus", 150),), accrue=(("bonus", 30),), codes=("once",))
    out = await ledger.confirm_order(program, order.request(), order.compute(program),
                                     now=T0 + 6 * DAY)
    assert out.result.promo_codes[0].status == "APPLIED"
    # The first lot (100 taken) expires before the cancellation; its points stay expired.
    await ledger.expire_lots(program, now=T0 + 11 * DAY)
    moves = await ledger.cancel_order(program, "o1", now=T0 + 12 * DAY)
    assert moves == [PointsMovement("bonus", accrual_reversed=30, redemption_refunded=150)]
    info = await ledger.get_member(program, "m1", now=T0 + 12 * DAY)
    assert info.balance("bonus").available == 100  # the 50 of lot 2 came back, 100 expired
    assert await ledger.cancel_order(program, "o1", now=T0 + 13 * DAY) == moves
    types = [t.type for t in (await ledger.list_transactions(program, "m1")).transactions]
    assert types == ["ACCRUAL", "ACCRUAL", "REDEMPTION", "ACCRUAL", "REVERSAL", "EXPIRATION",
                     "REVERSAL"]
    with pytest.raises(OrderStateError):
        await ledger.confirm_order(program, order.request(), order.compute(program),
                                   now=T0 + 13 * DAY)
    with pytest.raises(OrderStateError):
        await ledger.deliver_order(program, "o1", now=T0 + 13 * DAY)
    # The single-use code was released: another order can use it.
    other = FakeOrder("o2", codes=("ONCE",))
    out2 = await ledger.confirm_order(program, other.request(), other.compute(program),
                                      now=T0 + 13 * DAY)
    assert out2.result.promo_codes[0].status == "APPLIED"
    with pytest.raises(NotFound):
        await ledger.cancel_order(program, "nope", now=T0)


async def test_cancel_reports_a_shortfall_when_accrued_points_were_spent(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await ledger.enroll(program, "m1", now=T0)
    order = FakeOrder("o1", accrue=(("bonus", 80),))
    await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
    await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                    operation="DEDUCTION", points=50, external_id="spend",
                                    now=T0)
    moves = await ledger.cancel_order(program, "o1", now=T0)
    assert moves == [PointsMovement("bonus", accrual_reversed=30, shortfall=50)]
    page = await ledger.list_transactions(program, "m1", point_type="bonus")
    last = page.transactions[-1]
    assert last.type == "REVERSAL" and last.value == -30 and last.balance_after == 0
    assert '"shortfall": 50' in last.extra


async def test_promo_code_limits_per_code_and_per_member_pool(ledger: Ledger) -> None:
    program = make_program(pools=_pools())
    for m in ("m1", "m2"):
        await ledger.enroll(program, m, now=T0)
    first = FakeOrder("o1", member_id="m1", codes=("once",))
    out = await ledger.confirm_order(program, first.request(), first.compute(program), now=T0)
    assert out.result.promo_codes[0].status == "APPLIED"
    second = FakeOrder("o2", member_id="m2", codes=("ONCE",))
    out = await ledger.confirm_order(program, second.request(), second.compute(program), now=T0)
    assert (out.result.promo_codes[0].status, out.result.promo_codes[0].reason) == (
        "INVALID", "EXHAUSTED")
    # max_uses_per_member = 2 counts the member's uses of any code of the pool.
    statuses = []
    for i, code in enumerate(("A1", "A2", "A1")):
        o = FakeOrder(f"p{i}", member_id="m1", codes=(code,))
        res = await ledger.confirm_order(program, o.request(), o.compute(program), now=T0)
        statuses.append(res.result.promo_codes[0].status)
    assert statuses == ["APPLIED", "APPLIED", "INVALID"]
    o = FakeOrder("p9", member_id="m2", codes=("a1",))
    res = await ledger.confirm_order(program, o.request(), o.compute(program), now=T0)
    assert res.result.promo_codes[0].status == "APPLIED"
    usage = await ledger.code_usage(program, "m1", ["once", "a1"], now=T0)
    assert usage.code_uses == {"ONCE": 1, "A1": 2}
    assert usage.member_pool_uses == {"single": 1, "perm": 2}


async def test_delivery_activates_pending_points_from_delivery(ledger: Ledger) -> None:
    program = make_program(validity_days=30)
    await ledger.enroll(program, "m1", now=T0)
    order = FakeOrder("o1", accrue=(("bonus", 10),), accrue_pending=(("bonus", 90),))
    await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
    info = await ledger.get_member(program, "m1", now=T0)
    assert (info.balance("bonus").available, info.balance("bonus").pending) == (10, 90)
    assert info.balance("bonus").balance == 10
    moves = await ledger.deliver_order(program, "o1", now=T0 + 5 * DAY)
    assert moves == [PointsMovement("bonus", activated=90)]
    assert await ledger.deliver_order(program, "o1", now=T0 + 6 * DAY) == moves
    info = await ledger.get_member(program, "m1", now=T0 + 5 * DAY)
    assert (info.balance("bonus").available, info.balance("bonus").pending) == (100, 0)
    lots = await ledger.expiring_points(program, "m1", within_days=60, now=T0 + 5 * DAY)
    assert [(lot.points, lot.expires_at) for lot in lots] == [
        (10, T0 + 30 * DAY), (90, T0 + 35 * DAY)]
    with pytest.raises(NotFound):
        await ledger.deliver_order(program, "nope", now=T0)


async def test_cancel_before_delivery_voids_pending_points(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await ledger.enroll(program, "m1", now=T0)
    order = FakeOrder("o1", accrue_pending=(("bonus", 90),))
    await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
    moves = await ledger.cancel_order(program, "o1", now=T0)
    assert moves == [PointsMovement("bonus", accrual_reversed=90)]
    info = await ledger.get_member(program, "m1", now=T0)
    assert (info.balance("bonus").pending, info.balance("bonus").balance) == (0, 0)
    assert (await ledger.list_transactions(program, "m1")).transactions == ()


async def test_a_failing_calculation_propagates_unchanged_and_writes_nothing(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    from arbiter.server.engine.errors import FieldViolation, InvalidOrder

    await ledger.enroll(program, "m1", now=T0)
    order = FakeOrder("o1")

    def broken(member, usage):  # type: ignore[no-untyped-def]
        raise InvalidOrder([FieldViolation("order.lines[0].quantity", "must be positive")])

    def io_error(member, usage):  # type: ignore[no-untyped-def]
        raise ConnectionError("not the database")

    with pytest.raises(InvalidOrder):
        await ledger.confirm_order(program, order.request(), broken, now=T0)
    with pytest.raises(ConnectionError):
        await ledger.reserve_order(program, order.request(), io_error, now=T0)
    out = await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
    assert not out.replayed


@pytest.mark.parametrize("job_ran", [True, False])
async def test_reversing_an_accrual_that_expired_takes_nothing_else(
    ledger: Ledger, job_ran: bool
) -> None:
    program = make_program(validity_days=10)
    await ledger.enroll(program, "m1", now=T0)
    order = FakeOrder("o1", accrue=(("bonus", 100),))
    await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
    await _fund(ledger, program, "m1", 40, "later", now=T0 + 5 * DAY)  # expires T0+15
    if job_ran:
        await ledger.expire_lots(program, now=T0 + 11 * DAY)
    moves = await ledger.cancel_order(program, "o1", now=T0 + 12 * DAY)
    assert moves == [PointsMovement("bonus", accrual_reversed=100)]
    info = await ledger.get_member(program, "m1", now=T0 + 12 * DAY)
    assert (info.balance("bonus").available, info.balance("bonus").balance) == (40, 40)


async def test_the_program_version_is_written_with_the_order(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await ledger.enroll(program, "m1", now=T0)
    await _fund(ledger, program, "m1", 1_000, "f")
    order = FakeOrder("o1", redeem=(("bonus", 100),), accrue=(("bonus", 10),))
    out = await ledger.confirm_order(program, order.request(program_version=7),
                                     order.compute(program), now=T0)
    assert out.program_version == 7
    stored = await ledger.pool.fetchval(
        "SELECT program_version FROM orders WHERE order_id = 'o1'")
    assert stored == 7
    # A replay answers the version on record, whatever version the repeat ran on.
    again = await ledger.confirm_order(program, order.request(program_version=8),
                                       order.compute(program), now=T0 + DAY)
    assert again.replayed and again.program_version == 7
    # A reservation keeps its version when it is posted later.
    held = FakeOrder("r1", redeem=(("bonus", 50),))
    reserved = await ledger.reserve_order(program, held.request(program_version=3),
                                          held.compute(program), now=T0)
    assert reserved.program_version == 3
    posted = await ledger.confirm_order(program, held.request(program_version=4),
                                        held.compute(program), now=T0)
    assert posted.state == "CONFIRMED" and posted.program_version == 3
    # A caller that does not number versions stores none.
    plain = FakeOrder("p1")
    assert (await ledger.confirm_order(program, plain.request(), plain.compute(program),
                                       now=T0)).program_version is None


async def test_a_redemption_takes_the_same_lots_with_or_without_the_prefetch_hint(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    """The lots a confirm takes are read with the member when the request says what it redeems
    (the API's case), else after the calculation: either way soonest-expiring first."""
    taken: dict[bool, list[tuple[int, int]]] = {}
    for hint in (True, False):
        member = f"m-{hint}"
        await ledger.enroll(program, member, now=T0)
        for day, points in ((0, 100), (1, 40), (2, 300)):
            await ledger.create_transaction(
                program, member_id=member, point_type="miles", operation="ACCRUAL",
                points=points, external_id=f"{member}-{day}", now=T0 + day * DAY)
        order = FakeOrder(f"o-{hint}", member_id=member, redeem=(("miles", 200),))
        out = await ledger.confirm_order(program, order.request(hint=hint),
                                         order.compute(program), now=T0 + 3 * DAY)
        assert out.result.points[0].redeemed == 200
        rows = await ledger.pool.fetch(
            """
            SELECT l.points, c.points AS taken FROM lot_consumptions c
            JOIN lots l ON l.pk = c.lot_pk JOIN orders o ON o.pk = c.order_pk
            WHERE o.order_id = $1 ORDER BY c.pk
            """, order.order_id)
        taken[hint] = [(r["points"], r["taken"]) for r in rows]
    # miles last a year from accrual: the oldest lots expire first and go first.
    assert taken[True] == taken[False] == [(100, 100), (40, 40), (300, 60)]


async def test_a_redemption_beyond_what_the_request_asked_still_reads_every_lot(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await ledger.enroll(program, "m1", now=T0)
    for day in range(3):
        await _fund(ledger, program, "m1", 100, f"f{day}", now=T0 + day * DAY)
    order = FakeOrder("o1", redeem=(("bonus", 250),))
    small = FakeOrder("o1", redeem=(("bonus", 10),))
    request = order.request()
    hinted = type(request)(request.order_id, request.member_id, request.payload_hash,
                           redeem=small.redeem)
    out = await ledger.confirm_order(program, hinted, order.compute(program), now=T0 + 3 * DAY)
    assert out.result.points[0].redeemed == 250
    info = await ledger.get_member(program, "m1", now=T0 + 3 * DAY)
    assert info.balance("bonus").available == 50
