"""Orders keep what they were calculated from (docs/reports.md): the request's bytes, the
member state and code usage the calculation saw, and its instant; a backtest reads them back."""

from __future__ import annotations

import dataclasses
import json

from arbiter.server.engine.types import MemberState
from arbiter.server.ledger import Ledger
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import DAY, T0, FakeOrder


async def _inputs(ledger: Ledger) -> dict[str, tuple[bytes, object, object, object]]:
    rows = await ledger.pool.fetch(
        "SELECT o.order_id, i.request, i.member::text AS member, i.code_usage::text AS usage,"
        " i.calculated_at FROM orders o JOIN order_inputs i ON i.order_pk = o.pk")
    return {r["order_id"]: (bytes(r["request"]), json.loads(r["member"] or "null"),
                            json.loads(r["usage"]), r["calculated_at"]) for r in rows}


async def test_confirm_reserve_and_guest_orders_store_their_inputs(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await ledger.enroll(program, "m1", now=T0)
    await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                    operation="ACCRUAL", points=2_000, external_id="f", now=T0)
    calls: list[MemberState] = []
    confirmed = FakeOrder("o1", redeem=(("bonus", 500),), accrue=(("bonus", 10),))
    await ledger.confirm_order(
        program, dataclasses.replace(confirmed.request(), request_bytes=b"order-one"),
        confirmed.compute(program, calls), now=T0)
    reserved = FakeOrder("o2", redeem=(("bonus", 100),))
    request = dataclasses.replace(reserved.request(), request_bytes=b"order-two")
    await ledger.reserve_order(program, request, reserved.compute(program, calls),
                               hold_seconds=3_600,
                               now=T0 + DAY)
    # Posting the hold keeps what the reservation was calculated from.
    await ledger.confirm_order(program, request, reserved.compute(program, calls),
                               now=T0 + DAY + DAY / 100)
    guest = FakeOrder("g1", member_id="")
    await ledger.confirm_order(program, dataclasses.replace(guest.request(),
                                                            request_bytes=b"guest"),
                               guest.compute(program, calls), now=T0)
    unstored = FakeOrder("o3")
    await ledger.confirm_order(program, unstored.request(), unstored.compute(program, calls),
                               now=T0)

    stored = await _inputs(ledger)
    assert set(stored) == {"o1", "o2", "g1"}  # no bytes given: nothing stored
    request_bytes, member, usage, at = stored["o1"]
    assert request_bytes == b"order-one" and at == T0
    assert member == {"member_id": "m1", "balances": dict(calls[0].balances),
                      "tiers": dict(calls[0].tiers), "segments": []}
    assert member["balances"]["bonus"] == 2_000
    assert usage == {"code_uses": {}, "member_pool_uses": {}}
    assert stored["o2"][0] == b"order-two" and stored["o2"][3] == T0 + DAY
    assert stored["o2"][1]["balances"]["bonus"] == 2_000 - 500 + 10
    assert stored["g1"][1] is None

    batches = [b async for b in ledger.backtest_orders(program.id, None, None, 10)]
    assert batches[0].total == 4 and batches[0].orders == ()
    orders = [o for b in batches[1:] for o in b.orders]
    # Oldest confirmed first (o2 was confirmed last); o3 has no inputs (LEFT JOIN).
    assert [o.order_id for o in orders] == ["o1", "g1", "o3", "o2"]
    assert orders[2].request == b"" and orders[2].member_json is None
    assert orders[1].member_json is None and orders[1].request == b"guest"
