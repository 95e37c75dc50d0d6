"""Guest orders (no member_id): they commit, hold and release their promo code uses, and nothing
else; idempotent by order id like a member's order (docs/ledger.md, "Guest orders")."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from arbiter.server.engine.types import CalculationResult, CodeUsage, MemberState, PointsChange
from arbiter.server.ledger import (
    Conflict,
    FailedPrecondition,
    HoldNotActive,
    InvalidArgument,
    Ledger,
    NotFound,
    OrderRequest,
    OrderStateError,
    TotalMismatch,
)
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import T0, FakeOrder, make_program

SEC = timedelta(seconds=1)
RACERS = 12


def _program() -> program_pb2.Program:
    single = program_pb2.PromoCodePool(id="single", name="single")
    single.codes.add(code="ONCE", max_uses=1)
    twice = program_pb2.PromoCodePool(id="twice", name="twice")
    twice.codes.add(code="TWICE", max_uses=2)
    per_member = program_pb2.PromoCodePool(id="perm", name="perm", max_uses_per_member=1)
    per_member.codes.add(code="EACH", max_uses=0)
    return make_program(pools=[single, twice, per_member])


def guest(order_id: str, *codes: str, **kw: object) -> FakeOrder:
    return FakeOrder(order_id, member_id="", codes=codes, **kw)  # type: ignore[arg-type]


def status(result: CalculationResult, index: int = 0) -> tuple[str, str]:
    code = result.promo_codes[index]
    return code.status, code.reason


async def _uses(ledger: Ledger) -> list[tuple[str, str, str, bool]]:
    rows = await ledger.pool.fetch(
        "SELECT o.order_id, u.code, u.state, u.member_pk IS NULL AS guest"
        " FROM promo_code_uses u JOIN orders o ON o.pk = u.order_pk ORDER BY u.pk"
    )
    return [(r["order_id"], r["code"], r["state"], r["guest"]) for r in rows]


async def _moved_points(ledger: Ledger) -> tuple[int, int, int, int]:
    """Rows of transactions, lots, holds and balances: a guest order writes none."""
    counts = await ledger.pool.fetchrow(
        "SELECT (SELECT count(*) FROM transactions) AS t, (SELECT count(*) FROM lots) AS l,"
        " (SELECT count(*) FROM holds) AS h, (SELECT count(*) FROM balances) AS b"
    )
    assert counts is not None
    return counts["t"], counts["l"], counts["h"], counts["b"]


async def test_a_guest_confirm_consumes_its_code_and_nothing_else(ledger: Ledger) -> None:
    program = _program()
    calls: list[MemberState | None] = []
    first = guest("g1", "once")
    out = await ledger.confirm_order(program, first.request(), first.compute(program, calls),
                                     now=T0)
    assert (out.state, out.replayed) == ("CONFIRMED", False)
    assert calls == [None]  # the calculation sees an anonymous buyer
    assert status(out.result) == ("APPLIED", "")
    assert await _uses(ledger) == [("g1", "ONCE", "CONFIRMED", True)]
    assert await _moved_points(ledger) == (0, 0, 0, 0)
    assert (await ledger.code_usage(program, None, ["once"], now=T0)).code_uses == {"ONCE": 1}

    # A second guest, and then a member, find the single-use code used up.
    second = guest("g2", "ONCE")
    out2 = await ledger.confirm_order(program, second.request(), second.compute(program), now=T0)
    assert status(out2.result) == ("INVALID", "EXHAUSTED")
    await ledger.enroll(program, "m1", now=T0)
    member = FakeOrder("o1", member_id="m1", codes=("once",))
    out3 = await ledger.confirm_order(program, member.request(), member.compute(program), now=T0)
    assert status(out3.result) == ("INVALID", "EXHAUSTED")
    assert [u[:3] for u in await _uses(ledger)] == [("g1", "ONCE", "CONFIRMED")]

    # The same order again: the stored result, no recalculation; expected_total still applies.
    again = await ledger.confirm_order(program, first.request(expected_total=10_000),
                                       first.compute(program, calls), now=T0 + SEC)
    assert again.replayed and again.result == out.result and len(calls) == 1
    with pytest.raises(TotalMismatch):
        await ledger.confirm_order(program, first.request(expected_total=1),
                                   first.compute(program), now=T0)
    # The same id with another payload.
    other = guest("g1", "once", lines=(("l1", 2, 10_000),))
    with pytest.raises(Conflict):
        await ledger.confirm_order(program, other.request(), other.compute(program), now=T0)

    events = [(e.topic, e.member_id, e.payload.get("order_id"))
              for e in await ledger.outbox_events() if e.topic.startswith("order.")]
    assert events == [("order.confirmed", "", "g1"), ("order.confirmed", "", "g2"),
                      ("order.confirmed", "m1", "o1")]
    guest_event = next(e for e in await ledger.outbox_events() if e.topic == "order.confirmed")
    assert guest_event.payload["points"] == []
    assert guest_event.payload["promo_codes"] == ["ONCE"]


async def test_a_guest_expected_total_mismatch_writes_nothing(ledger: Ledger) -> None:
    program = _program()
    order = guest("g1", "once")
    with pytest.raises(TotalMismatch):
        await ledger.confirm_order(program, order.request(expected_total=9_999),
                                   order.compute(program), now=T0)
    with pytest.raises(TotalMismatch):
        await ledger.reserve_order(program, order.request(expected_total=9_999),
                                   order.compute(program), now=T0)
    assert await ledger.pool.fetchval("SELECT count(*) FROM orders") == 0
    assert await _uses(ledger) == []
    assert await ledger.outbox_events() == []
    out = await ledger.confirm_order(program, order.request(expected_total=10_000),
                                     order.compute(program), now=T0)
    assert status(out.result) == ("APPLIED", "")


async def test_an_order_id_belongs_to_a_guest_or_to_one_member(ledger: Ledger) -> None:
    program = _program()
    await ledger.enroll(program, "m1", now=T0)
    member = FakeOrder("o1", member_id="m1")
    await ledger.confirm_order(program, member.request(), member.compute(program), now=T0)
    # Even with the very same payload hash, a guest cannot take over a member's order.
    as_guest = OrderRequest("o1", "", member.payload_hash())
    with pytest.raises(Conflict):
        await ledger.confirm_order(program, as_guest, member.compute(program), now=T0)
    with pytest.raises(Conflict):
        await ledger.reserve_order(program, as_guest, member.compute(program), now=T0)
    first = guest("g1")
    await ledger.confirm_order(program, first.request(), first.compute(program), now=T0)
    as_member = OrderRequest("g1", "m1", first.payload_hash())
    with pytest.raises(Conflict):
        await ledger.confirm_order(program, as_member, first.compute(program), now=T0)
    # A member that does not exist is still NOT_FOUND, not a guest.
    ghost = FakeOrder("o2", member_id="ghost")
    with pytest.raises(NotFound):
        await ledger.confirm_order(program, ghost.request(), ghost.compute(program), now=T0)
    with pytest.raises(InvalidArgument):
        bad = guest("")
        await ledger.confirm_order(program, bad.request(), bad.compute(program), now=T0)


async def test_a_guest_result_that_moves_points_is_refused(ledger: Ledger) -> None:
    program = _program()
    order = guest("g1", "once")

    def with_points(member: MemberState | None, usage: CodeUsage) -> CalculationResult:
        result = order.compute(program)(member, usage)
        return result._replace(points=(PointsChange("bonus", 0, 0, 5, 0),))

    with pytest.raises(FailedPrecondition, match="guest"):
        await ledger.confirm_order(program, order.request(), with_points, now=T0)
    with pytest.raises(FailedPrecondition, match="guest"):
        await ledger.reserve_order(program, order.request(), with_points, now=T0)
    assert await ledger.pool.fetchval("SELECT count(*) FROM orders") == 0
    # A redemption asked for and not granted is fine (the engine reports what was requested).
    asked = guest("g2", redeem=(("bonus", 500),))
    out = await ledger.confirm_order(program, asked.request(), asked.compute(program), now=T0)
    assert [(p.point_type, p.requested, p.redeemed) for p in out.result.points] == [
        ("bonus", 500, 0)]
    assert await _moved_points(ledger) == (0, 0, 0, 0)


async def test_a_guest_reservation_holds_its_codes_until_posted_or_cancelled(
    ledger: Ledger,
) -> None:
    program = _program()
    calls: list[MemberState | None] = []
    order = guest("g1", "once")
    held = await ledger.reserve_order(program, order.request(), order.compute(program, calls),
                                      hold_seconds=60, now=T0)
    assert (held.state, held.hold_until) == ("RESERVED", T0 + 60 * SEC)
    assert status(held.result) == ("APPLIED", "")
    assert await _uses(ledger) == [("g1", "ONCE", "HELD", True)]
    # Held, the code is used up for everyone else.
    rival = guest("g2", "once")
    out = await ledger.confirm_order(program, rival.request(), rival.compute(program),
                                     now=T0 + SEC)
    assert status(out.result) == ("INVALID", "EXHAUSTED")
    # Reserving again answers the reservation.
    again = await ledger.reserve_order(program, order.request(), order.compute(program, calls),
                                       now=T0 + SEC)
    assert again.replayed and again.hold_until == T0 + 60 * SEC
    # Confirming posts the hold as reserved: no recalculation, expected_total checked.
    with pytest.raises(TotalMismatch):
        await ledger.confirm_order(program, order.request(expected_total=1),
                                   order.compute(program, calls), now=T0 + 30 * SEC)
    posted = await ledger.confirm_order(program, order.request(expected_total=10_000),
                                        order.compute(program, calls), now=T0 + 30 * SEC)
    assert (posted.state, posted.result) == ("CONFIRMED", held.result)
    assert len(calls) == 1
    assert [u[2] for u in await _uses(ledger) if u[0] == "g1"] == ["CONFIRMED"]
    # The hold's end no longer matters once posted.
    later = await ledger.code_usage(program, None, ["once"], now=T0 + 120 * SEC)
    assert later.code_uses == {"ONCE": 1}

    first = await ledger.cancel_order(program, "g1", now=T0 + 200 * SEC)
    assert first == []
    assert [u[2] for u in await _uses(ledger) if u[0] == "g1"] == ["RELEASED"]
    assert await ledger.cancel_order(program, "g1", now=T0 + 300 * SEC) == []
    with pytest.raises(OrderStateError):
        await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
    with pytest.raises(OrderStateError):
        await ledger.reserve_order(program, order.request(), order.compute(program), now=T0)
    # Released: the next guest gets the code.
    third = guest("g3", "once")
    out = await ledger.confirm_order(program, third.request(), third.compute(program),
                                     now=T0 + 400 * SEC)
    assert status(out.result) == ("APPLIED", "")
    topics = [(e.topic, e.member_id, e.payload["order_id"])
              for e in await ledger.outbox_events() if e.topic.startswith("order.")]
    assert topics == [("order.confirmed", "", "g2"), ("order.confirmed", "", "g1"),
                      ("order.cancelled", "", "g1"), ("order.confirmed", "", "g3")]
    assert await _moved_points(ledger) == (0, 0, 0, 0)


async def test_cancelling_a_guest_reservation_releases_its_codes(ledger: Ledger) -> None:
    program = _program()
    order = guest("g1", "once")
    await ledger.reserve_order(program, order.request(), order.compute(program), now=T0)
    assert await ledger.cancel_order(program, "g1", now=T0 + SEC) == []
    assert await _uses(ledger) == [("g1", "ONCE", "RELEASED", True)]
    assert (await ledger.code_usage(program, None, ["once"], now=T0 + SEC)).code_uses == {}
    with pytest.raises(OrderStateError):
        await ledger.confirm_order(program, order.request(), order.compute(program),
                                   now=T0 + 2 * SEC)
    events = [e.payload for e in await ledger.outbox_events() if e.topic == "order.cancelled"]
    assert events == [{"program": "p1", "member_id": "", "order_id": "g1", "was": "RESERVED",
                       "movements": [], "promo_codes": ["ONCE"]}]
    with pytest.raises(NotFound):
        await ledger.cancel_order(program, "nobody", now=T0)


async def test_a_lapsed_guest_hold_cannot_be_confirmed(ledger: Ledger) -> None:
    program = _program()
    order = guest("g1", "once")
    await ledger.reserve_order(program, order.request(), order.compute(program),
                               hold_seconds=60, now=T0)
    # From hold_until on the held use no longer counts, before any job has run.
    assert (await ledger.code_usage(program, None, ["once"], now=T0 + 60 * SEC)).code_uses == {}
    with pytest.raises(HoldNotActive):
        await ledger.confirm_order(program, order.request(), order.compute(program),
                                   now=T0 + 60 * SEC)
    other = guest("g2", "once")
    out = await ledger.confirm_order(program, other.request(), other.compute(program),
                                     now=T0 + 61 * SEC)
    assert status(out.result) == ("APPLIED", "")
    # A confirm whose clock was read before the hold lapsed still cannot over-use the code: it
    # counts the code's uses again under the code's lock.
    with pytest.raises(FailedPrecondition, match="ONCE"):
        await ledger.confirm_order(program, order.request(), order.compute(program),
                                   now=T0 + 30 * SEC)
    assert [u[:3] for u in await _uses(ledger)] == [("g1", "ONCE", "HELD"),
                                                    ("g2", "ONCE", "CONFIRMED")]
    assert await ledger.cancel_order(program, "g1", now=T0 + 90 * SEC) == []


async def test_a_guest_order_is_delivered_and_returned_without_points(ledger: Ledger) -> None:
    program = _program()
    order = guest("g1", "once", lines=(("l1", 2, 5_000), ("l2", 1, 1_000)))
    await ledger.reserve_order(program, order.request(), order.compute(program), now=T0)
    with pytest.raises(OrderStateError):
        await ledger.deliver_order(program, "g1", now=T0)
    with pytest.raises(OrderStateError):
        await ledger.return_order(program, "g1", "r1", [("l1", 1)], now=T0)
    await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
    assert await ledger.deliver_order(program, "g1", now=T0 + SEC) == []
    assert await ledger.deliver_order(program, "g1", now=T0 + 2 * SEC) == []
    delivered_at = await ledger.pool.fetchval(
        "SELECT delivered_at FROM orders WHERE order_id = 'g1'")
    assert delivered_at == T0 + SEC
    assert await ledger.return_order(program, "g1", "r1", [("l1", 1)], now=T0 + 3 * SEC) == []
    assert await ledger.return_order(program, "g1", "r1", [("l1", 1)], now=T0 + 4 * SEC) == []
    with pytest.raises(Conflict):
        await ledger.return_order(program, "g1", "r1", [("l2", 1)], now=T0 + 4 * SEC)
    with pytest.raises(InvalidArgument) as caught:
        await ledger.return_order(program, "g1", "r2", [("l1", 2)], now=T0 + 4 * SEC)
    assert caught.value.fields == ("lines[0].quantity",)
    assert await ledger.return_order(program, "g1", "r3", [("l1", 1), ("l2", 1)],
                                     now=T0 + 5 * SEC) == []
    assert await ledger.pool.fetchval("SELECT count(*) FROM returns") == 2
    # A return leaves the code consumed; only a cancellation releases it.
    assert [u[2] for u in await _uses(ledger)] == ["CONFIRMED"]
    assert await ledger.cancel_order(program, "g1", now=T0 + 6 * SEC) == []
    assert [u[2] for u in await _uses(ledger)] == ["RELEASED"]
    events = [(e.topic, e.member_id) for e in await ledger.outbox_events()]
    assert events == [("order.confirmed", ""), ("order.returned", ""), ("order.returned", ""),
                      ("order.cancelled", "")]
    assert await _moved_points(ledger) == (0, 0, 0, 0)


async def test_max_uses_counts_guests_and_members_alike(ledger: Ledger) -> None:
    program = _program()
    await ledger.enroll(program, "m1", now=T0)
    outs = []
    for order in (guest("g1", "twice"), FakeOrder("o1", member_id="m1", codes=("twice",)),
                  guest("g2", "twice")):
        outs.append(await ledger.confirm_order(program, order.request(), order.compute(program),
                                               now=T0))
    assert [status(o.result) for o in outs] == [("APPLIED", ""), ("APPLIED", ""),
                                                ("INVALID", "EXHAUSTED")]
    # max_uses_per_member has no member to count for a guest: every guest order may use it.
    each = [guest(f"e{i}", "each") for i in range(3)]
    for order in each:
        out = await ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
        assert status(out.result) == ("APPLIED", "")
    member = [FakeOrder(f"me{i}", member_id="m1", codes=("each",)) for i in range(2)]
    got = [await ledger.confirm_order(program, o.request(), o.compute(program), now=T0)
           for o in member]
    assert [status(o.result) for o in got] == [("APPLIED", ""), ("INVALID", "EXHAUSTED")]
    usage = await ledger.code_usage(program, "m1", ["each"], now=T0)
    assert usage.member_pool_uses == {"twice": 1, "perm": 1}


async def test_guests_racing_for_a_single_use_code_one_gets_it(ledger: Ledger) -> None:
    program = _program()
    await ledger.enroll(program, "m1", now=T0)
    orders = [guest(f"g{i}", "once") for i in range(RACERS)]
    orders.append(FakeOrder("o1", member_id="m1", codes=("once",)))
    outs = await asyncio.gather(*(
        ledger.confirm_order(program, o.request(), o.compute(program), now=T0) for o in orders
    ))
    assert sum(status(out.result) == ("APPLIED", "") for out in outs) == 1
    assert sum(status(out.result) == ("INVALID", "EXHAUSTED") for out in outs) == RACERS
    assert [u[2] for u in await _uses(ledger)] == ["CONFIRMED"]
    # Reservations race the same way.
    await ledger.cancel_order(program, next(o.order_id for o, out in zip(orders, outs,
                              strict=True) if out.result.promo_codes[0].status == "APPLIED"),
                              now=T0)
    holds = [guest(f"h{i}", "once") for i in range(RACERS)]
    held = await asyncio.gather(*(
        ledger.reserve_order(program, o.request(), o.compute(program), now=T0) for o in holds
    ))
    assert sum(status(out.result) == ("APPLIED", "") for out in held) == 1


async def test_one_guest_order_confirmed_at_once_twice_is_written_once(ledger: Ledger) -> None:
    program = _program()
    order = guest("g1", "twice")
    outs = await asyncio.gather(*(
        ledger.confirm_order(program, order.request(), order.compute(program), now=T0)
        for _ in range(4)
    ))
    assert sorted(out.replayed for out in outs) == [False, True, True, True]
    assert len({out.result for out in outs}) == 1
    assert await _uses(ledger) == [("g1", "TWICE", "CONFIRMED", True)]
    assert await ledger.pool.fetchval("SELECT count(*) FROM orders") == 1
