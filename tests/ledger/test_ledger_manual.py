"""Manual transactions and trigger promotions: validation, idempotency, balances."""

from __future__ import annotations

import json

import pytest

from arbiter.server.ledger import (
    Conflict,
    FailedPrecondition,
    InsufficientPoints,
    InvalidArgument,
    Ledger,
    NotFound,
)
from arbiter.v1 import program_pb2
from tests.ledger.ledger_support import DAY, T0, make_program


def _triggers() -> list[program_pb2.TriggerPromotion]:
    app = program_pb2.TriggerPromotion(id="app-install", name="app")
    rule = app.rules.add(point_type="bonus")
    rule.accrual.fixed = 300
    survey = program_pb2.TriggerPromotion(id="survey", name="survey")
    rule = survey.rules.add(point_type="bonus")
    rule.accrual.min, rule.accrual.max = 10, 50
    rule.deduction.min, rule.deduction.max = 1, 20
    survey.period.start.FromDatetime(T0 - DAY)
    survey.period.end.FromDatetime(T0 + DAY)
    return [app, survey]


@pytest.fixture
def trig_program() -> program_pb2.Program:
    return make_program(triggers=_triggers())


async def test_manual_accrual_and_deduction(ledger: Ledger, program: program_pb2.Program) -> None:
    await ledger.enroll(program, "m1", now=T0)
    acc = await ledger.create_transaction(
        program, member_id="m1", point_type="bonus", operation="ACCRUAL", points=250,
        external_id="crm-1", comment="goodwill", extra='{"ticket": 42}', now=T0)
    assert (acc.type, acc.source_type, acc.value, acc.balance_before, acc.balance_after) == (
        "ACCRUAL", "MANUAL", 250, 0, 250)
    assert json.loads(acc.extra) == {"ticket": 42}
    assert acc.comment == "goodwill" and acc.external_id == "crm-1"
    ded = await ledger.create_transaction(
        program, member_id="m1", point_type="bonus", operation="DEDUCTION", points=100,
        external_id="crm-2", now=T0)
    assert (ded.type, ded.value, ded.balance_after) == ("REDEMPTION", -100, 150)
    info = await ledger.get_member(program, "m1", now=T0)
    assert info.balance("bonus").available == 150 == info.balance("bonus").balance


async def test_manual_is_idempotent_by_external_id(ledger: Ledger,
                                                   program: program_pb2.Program) -> None:
    await ledger.enroll(program, "m1", now=T0)
    await ledger.enroll(program, "m2", now=T0)
    args = dict(member_id="m1", point_type="bonus", operation="ACCRUAL", points=10,
                external_id="k1")
    first = await ledger.create_transaction(program, **args, now=T0)  # type: ignore[arg-type]
    again = await ledger.create_transaction(program, **args, now=T0 + DAY)  # type: ignore[arg-type]
    assert again == first
    for change in ({"points": 11}, {"member_id": "m2"}, {"operation": "DEDUCTION"},
                   {"comment": "other"}):
        with pytest.raises(Conflict):
            await ledger.create_transaction(program, **{**args, **change}, now=T0)  # type: ignore[arg-type]
    assert (await ledger.get_member(program, "m1", now=T0)).balance("bonus").balance == 10
    assert (await ledger.get_member(program, "m2", now=T0)).balance("bonus").balance == 0


async def test_deduction_beyond_available_is_refused_and_writes_nothing(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await ledger.enroll(program, "m1", now=T0)
    await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                    operation="ACCRUAL", points=50, external_id="a", now=T0)
    with pytest.raises(InsufficientPoints) as err:
        await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                        operation="DEDUCTION", points=51, external_id="d",
                                        now=T0)
    assert (err.value.needed, err.value.available) == (51, 50)
    assert isinstance(err.value, FailedPrecondition)
    page = await ledger.list_transactions(program, "m1")
    assert len(page.transactions) == 1
    # The same key can be used once the balance allows it: nothing was stored under it.
    await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                    operation="DEDUCTION", points=50, external_id="d", now=T0)


async def test_negative_balance_where_the_type_allows_it(
    ledger: Ledger, program: program_pb2.Program
) -> None:
    await ledger.enroll(program, "m1", now=T0)
    ded = await ledger.create_transaction(program, member_id="m1", point_type="debt",
                                          operation="DEDUCTION", points=70, external_id="d1",
                                          now=T0)
    assert ded.balance_after == -70
    acc = await ledger.create_transaction(program, member_id="m1", point_type="debt",
                                          operation="ACCRUAL", points=100, external_id="a1",
                                          now=T0)
    assert acc.balance_after == 30
    info = await ledger.get_member(program, "m1", now=T0)
    assert info.balance("debt").available == 30


async def test_manual_validation_names_each_field(ledger: Ledger,
                                                  program: program_pb2.Program) -> None:
    await ledger.enroll(program, "m1", now=T0)
    with pytest.raises(InvalidArgument) as err:
        await ledger.create_transaction(program, member_id="m1", point_type="nope",
                                        operation="GIFT", points=-1, external_id="",
                                        extra="[1]", now=T0)
    assert set(err.value.fields) == {"point_type", "operation", "points", "external_id", "extra"}
    with pytest.raises(NotFound):
        await ledger.create_transaction(program, member_id="ghost", point_type="bonus",
                                        operation="ACCRUAL", points=1, external_id="g", now=T0)


async def test_deactivated_type_neither_accrues_nor_deducts(ledger: Ledger) -> None:
    program = make_program(bonus_deactivate_at=T0 + DAY)
    await ledger.enroll(program, "m1", now=T0)
    await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                    operation="ACCRUAL", points=40, external_id="a", now=T0)
    with pytest.raises(FailedPrecondition):
        await ledger.create_transaction(program, member_id="m1", point_type="bonus",
                                        operation="ACCRUAL", points=1, external_id="b",
                                        now=T0 + DAY)
    # The lot accrued before deactivation expires at deactivate_at.
    info = await ledger.get_member(program, "m1", now=T0 + DAY)
    assert info.balance("bonus").available == 0 and info.balance("bonus").balance == 40


async def test_trigger_fixed_and_range_rules(ledger: Ledger,
                                             trig_program: program_pb2.Program) -> None:
    await ledger.enroll(trig_program, "m1", now=T0)
    txn = await ledger.apply_trigger(trig_program, member_id="m1", trigger_promotion="app-install",
                                     point_type="bonus", operation="ACCRUAL", points=300,
                                     external_id="t1", now=T0)
    assert (txn.source_type, txn.source_id, txn.value) == ("TRIGGER_PROMOTION", "app-install",
                                                           300)
    assert json.loads(txn.extra) == {"trigger_promotion": "app-install"}
    # points 0 means the fixed value.
    txn0 = await ledger.apply_trigger(trig_program, member_id="m1",
                                      trigger_promotion="app-install", point_type="bonus",
                                      operation="ACCRUAL", points=0, external_id="t0", now=T0)
    assert txn0.value == 300
    with pytest.raises(InvalidArgument) as err:
        await ledger.apply_trigger(trig_program, member_id="m1", trigger_promotion="app-install",
                                   point_type="bonus", operation="ACCRUAL", points=299,
                                   external_id="t2", now=T0)
    assert err.value.fields == ("points",) and "300" in str(err.value)
    with pytest.raises(InvalidArgument) as err:
        await ledger.apply_trigger(trig_program, member_id="m1", trigger_promotion="app-install",
                                   point_type="bonus", operation="DEDUCTION", points=300,
                                   external_id="t3", now=T0)
    assert err.value.fields == ("operation",)
    with pytest.raises(InvalidArgument) as err:
        await ledger.apply_trigger(trig_program, member_id="m1", trigger_promotion="app-install",
                                   point_type="miles", operation="ACCRUAL", points=300,
                                   external_id="t4", now=T0)
    assert err.value.fields == ("point_type",)
    for pts, ok in ((9, False), (10, True), (50, True), (51, False)):
        call = ledger.apply_trigger(trig_program, member_id="m1", trigger_promotion="survey",
                                    point_type="bonus", operation="ACCRUAL", points=pts,
                                    external_id=f"s{pts}", now=T0)
        if ok:
            await call
        else:
            with pytest.raises(InvalidArgument, match=r"\[10, 50\]"):
                await call
    ded = await ledger.apply_trigger(trig_program, member_id="m1", trigger_promotion="survey",
                                     point_type="bonus", operation="DEDUCTION", points=20,
                                     external_id="s-d", now=T0)
    assert ded.type == "REDEMPTION" and ded.source_type == "TRIGGER_PROMOTION"
    with pytest.raises(FailedPrecondition, match="outside its period"):
        await ledger.apply_trigger(trig_program, member_id="m1", trigger_promotion="survey",
                                   point_type="bonus", operation="ACCRUAL", points=10,
                                   external_id="late", now=T0 + DAY)
    with pytest.raises(NotFound):
        await ledger.apply_trigger(trig_program, member_id="m1", trigger_promotion="nope",
                                   point_type="bonus", operation="ACCRUAL", points=10,
                                   external_id="n", now=T0)
    # Idempotent by external_id, and a manual call cannot reuse a trigger's key.
    again = await ledger.apply_trigger(trig_program, member_id="m1",
                                       trigger_promotion="app-install", point_type="bonus",
                                       operation="ACCRUAL", points=300, external_id="t1",
                                       now=T0 + DAY)
    assert again == txn
    with pytest.raises(Conflict):
        await ledger.create_transaction(trig_program, member_id="m1", point_type="bonus",
                                        operation="ACCRUAL", points=300, external_id="t1",
                                        now=T0)
    info = await ledger.get_member(trig_program, "m1", now=T0)
    assert info.balance("bonus").balance == 300 + 300 + 10 + 50 - 20
