"""AdminService's draft edits and GetDraftDiff end to end, through the servicer's one edit path
(the row locked, `edits.apply_edit` on the draft, the journal entry in the same transaction).

The edit operations are `arbiter.server.state.edits`; these tests need it in the build.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from arbiter.server.state import config as config_module
from arbiter.v1 import admin_pb2, program_pb2
from tests.e2e.admin_support import anonymous_quote, discount_program, journal, status_of
from tests.e2e.conftest import PROGRAM, MovableClock, shop_program
from tests.e2e.test_e2e_admin import Admin, served

pytestmark = pytest.mark.asyncio

NOT_FOUND = grpc.StatusCode.NOT_FOUND
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture
async def admin(pg_database: str, clock: MovableClock) -> AsyncIterator[Admin]:
    async with served(pg_database, clock) as served_admin:
        await served_admin.app.apply_program(shop_program())
        yield served_admin


async def draft_of(admin: Admin, program_id: str = PROGRAM) -> program_pb2.Program:
    return (await admin.get(program_id, draft=True)).program


async def test_an_edit_changes_the_draft_only_and_answers_it(admin: Admin) -> None:
    point_type = program_pb2.PointType(
        id="stars",
        name="Stars",
        kind=program_pb2.POINT_KIND_STANDARD,
        active=True,
        ratio=program_pb2.Ratio(points=1, money=1),
    )
    answered = await admin.admin.UpsertPointType(
        admin_pb2.UpsertPointTypeRequest(program=PROGRAM, point_type=point_type)
    )
    assert point_type in answered.draft.point_types
    assert answered.draft == await draft_of(admin)
    got = await admin.get(PROGRAM)
    assert (got.program, got.version, got.has_draft_changes) == (shop_program(), 1, True)
    assert admin.app.programs.get(PROGRAM).version == 1
    entries = await journal(admin.admin, PROGRAM)
    assert (entries[-1].object_kind, entries[-1].object_id, entries[-1].actor) == (
        "point_type",
        "stars",
        "local",
    )
    assert await admin.apply(PROGRAM) == 2
    assert point_type in (await admin.export(PROGRAM, draft=False)).point_types


async def test_update_program_answers_the_draft(admin: Admin) -> None:
    program = program_pb2.Program(id=PROGRAM, name="Renamed", currency="RUB", time_zone="UTC")
    answered = await admin.admin.UpdateProgram(admin_pb2.UpdateProgramRequest(program=program))
    assert answered.program.name == "Renamed"
    assert answered.program.promotions == shop_program().promotions
    assert (await draft_of(admin)).name == "Renamed"


async def test_the_database_of_a_program_never_changes_by_an_edit(admin: Admin) -> None:
    program = program_pb2.Program(id=PROGRAM, name="Shop", database="crm", time_zone="UTC")
    refused = admin.admin.UpdateProgram(admin_pb2.UpdateProgramRequest(program=program))
    assert await status_of(refused) == FAILED_PRECONDITION
    assert await draft_of(admin) == shop_program()


async def test_clone_point_type_and_promotion(admin: Admin) -> None:
    cloned = await admin.admin.ClonePointType(
        admin_pb2.ClonePointTypeRequest(program=PROGRAM, point_type="bonus", new_id="bonus2")
    )
    copy = next(p for p in cloned.draft.point_types if p.id == "bonus2")
    assert not copy.active
    promoted = await admin.admin.ClonePromotion(
        admin_pb2.ClonePromotionRequest(program=PROGRAM, promotion="P", new_id="P2")
    )
    assert any(p.id == "P2" for p in promoted.draft.promotions)


async def test_promotion_lifecycle_and_ended_is_final(admin: Admin) -> None:
    promotion = program_pb2.Promotion(
        id="N", name="New", kind=program_pb2.PROMOTION_KIND_DISCOUNT
    )
    promotion.product_rules.add().benefits.add(discount=program_pb2.Discount(percent_bp=1000))
    created = await admin.admin.CreatePromotion(
        admin_pb2.CreatePromotionRequest(program=PROGRAM, promotion=promotion)
    )
    assert any(p.id == "N" for p in created.draft.promotions)
    ref = admin_pb2.PromotionRef(program=PROGRAM, promotion="N")
    active = await admin.admin.ActivatePromotion(ref)
    status = {p.id: p.status for p in active.draft.promotions}
    assert status["N"] == program_pb2.PROMOTION_STATUS_ACTIVE
    inactive = await admin.admin.DeactivatePromotion(ref)
    assert {p.id: p.status for p in inactive.draft.promotions}["N"] == (
        program_pb2.PROMOTION_STATUS_INACTIVE
    )
    ended = await admin.admin.EndPromotion(ref)
    assert {p.id: p.status for p in ended.draft.promotions}["N"] == (
        program_pb2.PROMOTION_STATUS_ENDED
    )
    assert await status_of(admin.admin.ActivatePromotion(ref)) == FAILED_PRECONDITION
    assert {p.id: p.status for p in (await draft_of(admin)).promotions}["N"] == (
        program_pb2.PROMOTION_STATUS_ENDED
    )


async def test_edits_naming_unknown_objects_or_programs_are_not_found(admin: Admin) -> None:
    a = admin.admin
    calls = [
        a.ActivatePromotion(admin_pb2.PromotionRef(program=PROGRAM, promotion="ghost")),
        a.ClonePromotion(
            admin_pb2.ClonePromotionRequest(program=PROGRAM, promotion="ghost", new_id="g2")
        ),
        a.ClonePointType(
            admin_pb2.ClonePointTypeRequest(program=PROGRAM, point_type="ghost", new_id="g2")
        ),
        a.DeleteObject(
            admin_pb2.DeleteObjectRequest(program=PROGRAM, object_kind="partner", id="ghost")
        ),
        a.MoveNode(admin_pb2.MoveNodeRequest(program=PROGRAM, node="ghost")),
        a.ActivatePromotion(admin_pb2.PromotionRef(program="nope", promotion="P")),
        a.UpsertPartner(
            admin_pb2.UpsertPartnerRequest(program="nope", partner=program_pb2.Partner(id="x"))
        ),
    ]
    for call in calls:
        assert await status_of(call) == NOT_FOUND
    assert await draft_of(admin) == shop_program()


async def test_groups_move_and_reorder(admin: Admin) -> None:
    group = program_pb2.Group(id="g", name="G", mode=program_pb2.ARBITRATION_MODE_SUMMATION)
    await admin.admin.UpsertGroup(admin_pb2.UpsertGroupRequest(program=PROGRAM, group=group))
    moved = await admin.admin.MoveNode(
        admin_pb2.MoveNodeRequest(program=PROGRAM, node="M", to_group="g", position=0)
    )
    main = [c.promotion or c.group.id for c in moved.draft.arbitration.children]
    assert "M" not in main and "g" in main
    reordered = await admin.admin.ReorderGroup(
        admin_pb2.ReorderGroupRequest(program=PROGRAM, children=["g", "A", "P"])
    )
    assert [c.promotion or c.group.id for c in reordered.draft.arbitration.children] == [
        "g",
        "A",
        "P",
    ]


async def test_delete_object_removes_it_from_the_draft(admin: Admin) -> None:
    partner = program_pb2.Partner(id="acme", name="ACME")
    upsert = admin_pb2.UpsertPartnerRequest(program=PROGRAM, partner=partner)
    await admin.admin.UpsertPartner(upsert)
    deleted = await admin.admin.DeleteObject(
        admin_pb2.DeleteObjectRequest(program=PROGRAM, object_kind="partner", id="acme")
    )
    assert not deleted.draft.partners


async def diff(admin: Admin, program_id: str = PROGRAM) -> list[admin_pb2.DiffEntry]:
    request = admin_pb2.GetDraftDiffRequest(program=program_id)
    return list((await admin.admin.GetDraftDiff(request)).entries)


async def test_the_draft_diff_lists_what_the_draft_changes(admin: Admin) -> None:
    assert not await diff(admin)
    changed = shop_program(pay_bp=2000)
    changed.partners.add(id="acme", name="ACME")
    del changed.promotions[2]
    del changed.arbitration.children[2]
    await admin.import_(changed)
    entries = await diff(admin)
    found = {(e.object_kind, e.id, e.change) for e in entries}
    assert ("partner", "acme", "added") in found
    assert ("promotion", "M", "removed") in found
    assert ("promotion", "P", "changed") in found
    p = next(e for e in entries if e.id == "P")
    assert any("percent_bp" in f for f in p.fields), p.fields
    assert await admin.apply(PROGRAM) == 2
    assert not await diff(admin)


async def test_the_diff_of_a_never_applied_program_lists_everything_as_added(admin: Admin) -> None:
    await admin.import_(discount_program("fresh", {"D": 10}))
    entries = await diff(admin, "fresh")
    assert ("promotion", "D", "added") in {(e.object_kind, e.id, e.change) for e in entries}


async def test_concurrent_edits_are_serialised_never_lost(admin: Admin) -> None:
    async def upsert(index: int) -> None:
        partner = program_pb2.Partner(id=f"p{index}", name=f"P{index}")
        await admin.admin.UpsertPartner(
            admin_pb2.UpsertPartnerRequest(program=PROGRAM, partner=partner)
        )

    await asyncio.gather(
        *(upsert(i) for i in range(25)), *(admin.apply(PROGRAM) for _ in range(5))
    )
    draft = await draft_of(admin)
    assert sorted(p.id for p in draft.partners) == sorted(f"p{i}" for i in range(25))
    entries = await journal(admin.admin, PROGRAM)
    assert sum(e.object_kind == "partner" for e in entries) == 25
    version = await admin.apply(PROGRAM)
    assert (await admin.export(PROGRAM, draft=False)) == draft
    quoted = await admin.checkout.CalculateOrder(anonymous_quote(PROGRAM))
    assert quoted.program_version == version


async def test_an_apply_overtaken_by_edits_compiles_under_the_lock_and_ends(
    admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no optimistic attempt left, Apply compiles with the draft's row locked: it makes
    the version (edits wait for it) and an invalid draft is refused with nothing changed."""
    monkeypatch.setattr(config_module, "_APPLY_ATTEMPTS", 0)
    await admin.admin.UpsertPartner(
        admin_pb2.UpsertPartnerRequest(
            program=PROGRAM, partner=program_pb2.Partner(id="locked", name="L")
        )
    )
    assert await admin.apply(PROGRAM) == 2
    assert admin.app.programs.get(PROGRAM).version == 2
    assert [p.id for p in (await admin.export(PROGRAM, draft=False)).partners][-1] == "locked"
    assert (await journal(admin.admin, PROGRAM))[-1].action == "apply"
    # Unchanged now: no version, on the locked path too.
    assert await admin.apply(PROGRAM) == 2
    bad = program_pb2.Promotion(id="bad", name="Bad")
    bad.audience.kind = program_pb2.AUDIENCE_KIND_IN_SEGMENTS
    bad.audience.segments.append("no-such-segment")
    await admin.admin.CreatePromotion(
        admin_pb2.CreatePromotionRequest(program=PROGRAM, promotion=bad)
    )
    assert await status_of(admin.admin.Apply(admin_pb2.ApplyRequest(program=PROGRAM))) == (
        FAILED_PRECONDITION
    )
    assert admin.app.programs.get(PROGRAM).version == 2
