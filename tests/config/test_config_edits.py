"""Draft edits and the draft diff (docs/configuration.md, "Editing a draft").

Every edit goes through `edit()`, which also checks that the draft it was given is unchanged.
Every error is checked for its class, its gRPC status (through the api room's one mapping) and,
for INVALID_ARGUMENT, the request field its google.rpc.BadRequest names.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbiter.server.api.errors import status_for
from arbiter.server.engine.errors import ArbiterError, ConfigError
from arbiter.server.engine.validate import validate_program
from arbiter.server.state import (
    DELETABLE_KINDS,
    EDIT_RPCS,
    OBJECT_KINDS,
    PLACEMENT,
    AlreadyExists,
    Edit,
    EditRefused,
    InvalidEdit,
    NotFound,
    apply_edit,
    diff,
)
from arbiter.server.state.edits import timestamp_violations
from arbiter.server.state.instants import TIMESTAMP_RANGE
from arbiter.v1 import admin_pb2 as apb
from arbiter.v1 import program_pb2 as pb

P = "shop"
ACTIVE = pb.PROMOTION_STATUS_ACTIVE
DRAFT = pb.PROMOTION_STATUS_DRAFT
INACTIVE = pb.PROMOTION_STATUS_INACTIVE
ENDED = pb.PROMOTION_STATUS_ENDED


def discount(percent_bp: int) -> pb.Benefit:
    return pb.Benefit(discount=pb.Discount(percent_bp=percent_bp))


def promotion(promotion_id: str, status: int = ACTIVE, percent_bp: int = 500) -> pb.Promotion:
    return pb.Promotion(
        id=promotion_id,
        name=promotion_id.upper(),
        kind=pb.PROMOTION_KIND_DISCOUNT,
        status=status,  # type: ignore[arg-type]
        audience=pb.Audience(kind=pb.AUDIENCE_KIND_EVERYONE),
        product_rules=[
            pb.ProductRule(scope=pb.Scope(kind=pb.SCOPE_KIND_ALL), benefits=[discount(percent_bp)])
        ],
    )


def group(group_id: str, mode: int, *children: str | pb.Group) -> pb.Group:
    return pb.Group(
        id=group_id,
        mode=mode,  # type: ignore[arg-type]
        children=[
            pb.Child(group=c) if isinstance(c, pb.Group) else pb.Child(promotion=c)
            for c in children
        ],
    )


SEQ = pb.ARBITRATION_MODE_SEQUENTIAL
MAX = pb.ARBITRATION_MODE_MAX_BENEFIT
SUM = pb.ARBITRATION_MODE_SUMMATION


def draft_program() -> pb.Program:
    """A valid program: main [a, g1 [b, g2 [c]]], and d listed nowhere (the end of main)."""
    return pb.Program(
        id=P,
        name="Shop",
        database="profiles",
        currency="RUB",
        time_zone="Europe/Moscow",
        point_types=[
            pb.PointType(
                id="bonus",
                name="Bonus",
                kind=pb.POINT_KIND_STANDARD,
                active=True,
                ratio=pb.Ratio(points=1, money=100),
            ),
            pb.PointType(id="qual", kind=pb.POINT_KIND_QUALIFICATION, active=True),
        ],
        tier_groups=[
            pb.TierGroup(
                id="levels",
                model=pb.TIER_MODEL_CUMULATIVE,
                point_type="qual",
                tiers=[pb.Tier(id="base", min_balance=0), pb.Tier(id="gold", min_balance=1000)],
            )
        ],
        partners=[pb.Partner(id="acme", name="Acme", discount_bp=300)],
        member_segments=[pb.MemberSegment(id="vip", members=["m1"])],
        product_segments=[pb.ProductSegment(id="shoes", categories=["shoes"])],
        order_segments=[pb.OrderSegment(id="big", min_subtotal=100_000)],
        promo_code_pools=[pb.PromoCodePool(id="codes", codes=[pb.PromoCode(code="SPRING")])],
        trigger_promotions=[
            pb.TriggerPromotion(
                id="install",
                rules=[pb.TriggerRule(point_type="bonus", accrual=pb.AmountRule(fixed=100))],
            )
        ],
        promotions=[
            promotion("a"),
            promotion("b", DRAFT),
            promotion("c", ENDED),
            promotion("d", INACTIVE),
        ],
        arbitration=group("", SEQ, "a", group("g1", MAX, "b", group("g2", SUM, "c"))),
    )


def shape(g: pb.Group) -> list[Any]:
    """The tree as nested lists: a promotion by id, a group as (id, [children])."""
    out: list[Any] = []
    for child in g.children:
        if child.WhichOneof("node") == "promotion":
            out.append(child.promotion)
        else:
            out.append((child.group.id, shape(child.group)))
    return out


def edit(draft: pb.Program, rpc: str, request: Message) -> Edit:
    """apply_edit, checking that it leaves `draft` as it was and journals JSON."""
    before = draft.SerializeToString(deterministic=True)
    result = apply_edit(draft, rpc, request)
    assert draft.SerializeToString(deterministic=True) == before
    json.dumps(result.detail)  # the journal stores it as JSON
    assert result.changed == (result.draft != draft)
    return result


def refused(
    draft: pb.Program,
    rpc: str,
    request: Message,
    error: type[ArbiterError],
    code: grpc.StatusCode,
    fields: list[str] | None = None,
) -> ArbiterError:
    """The edit fails with `error` (status `code`, BadRequest naming `fields`), draft unchanged."""
    before = draft.SerializeToString(deterministic=True)
    with pytest.raises(error) as info:
        apply_edit(draft, rpc, request)
    assert draft.SerializeToString(deterministic=True) == before
    status = status_for(info.value)
    assert status.code == code
    if fields is not None:
        ((_, value),) = status.trailing_metadata
        (detail,) = status_pb2.Status.FromString(value).details
        bad_request = error_details_pb2.BadRequest()
        assert detail.Unpack(bad_request)
        assert [v.field for v in bad_request.field_violations] == fields
    return info.value


def invalid(draft: pb.Program, rpc: str, request: Message, *fields: str) -> ArbiterError:
    return refused(draft, rpc, request, InvalidEdit, grpc.StatusCode.INVALID_ARGUMENT, list(fields))


def not_found(draft: pb.Program, rpc: str, request: Message) -> ArbiterError:
    return refused(draft, rpc, request, NotFound, grpc.StatusCode.NOT_FOUND)


def exists(draft: pb.Program, rpc: str, request: Message) -> ArbiterError:
    return refused(draft, rpc, request, AlreadyExists, grpc.StatusCode.ALREADY_EXISTS)


def precondition(draft: pb.Program, rpc: str, request: Message) -> ArbiterError:
    return refused(draft, rpc, request, EditRefused, grpc.StatusCode.FAILED_PRECONDITION)


def ids(items: Any) -> list[str]:
    return [item.id for item in items]


def by_id(program: pb.Program, promotion_id: str) -> pb.Promotion:
    (found,) = [p for p in program.promotions if p.id == promotion_id]
    return found


def test_the_starting_program_is_valid() -> None:
    validate_program(draft_program())


def test_edit_rpcs_are_admin_service_methods() -> None:
    methods = set(apb.DESCRIPTOR.services_by_name["AdminService"].methods_by_name)
    assert methods >= EDIT_RPCS
    assert len(EDIT_RPCS) == 20
    assert "Apply" not in EDIT_RPCS and "ImportProgram" not in EDIT_RPCS


def test_unknown_rpc_and_wrong_request_type() -> None:
    with pytest.raises(ValueError, match="not a draft edit"):
        apply_edit(draft_program(), "Apply", apb.ApplyRequest(program=P))
    with pytest.raises(TypeError, match="PromotionRef"):
        apply_edit(draft_program(), "ActivatePromotion", apb.ApplyRequest(program=P))


# --------------------------------------------------------------------------------------------
# Upserts of the top-level objects

UPSERTS: list[tuple[str, str, str, Message]] = [
    # rpc, request field, Program field, a new object
    ("UpsertPointType", "point_type", "point_types", pb.PointType(id="new", name="N")),
    ("UpsertTierGroup", "tier_group", "tier_groups", pb.TierGroup(id="new", name="N")),
    ("UpsertPartner", "partner", "partners", pb.Partner(id="new", name="N")),
    ("UpsertMemberSegment", "segment", "member_segments", pb.MemberSegment(id="new", name="N")),
    ("UpsertProductSegment", "segment", "product_segments", pb.ProductSegment(id="new", name="N")),
    ("UpsertOrderSegment", "segment", "order_segments", pb.OrderSegment(id="new", name="N")),
    ("UpsertPromoCodePool", "pool", "promo_code_pools", pb.PromoCodePool(id="new", name="N")),
    (
        "UpsertTriggerPromotion",
        "trigger_promotion",
        "trigger_promotions",
        pb.TriggerPromotion(id="new", name="N"),
    ),
]
KIND_OF_SECTION = {
    "point_types": "point_type",
    "tier_groups": "tier_group",
    "partners": "partner",
    "member_segments": "member_segment",
    "product_segments": "product_segment",
    "order_segments": "order_segment",
    "promo_code_pools": "promo_code_pool",
    "trigger_promotions": "trigger_promotion",
    "promotions": "promotion",
}


def upsert_request(rpc: str, field: str, obj: Message) -> Message:
    request_type = getattr(apb, f"{rpc}Request")
    request = request_type(program=P)
    getattr(request, field).CopyFrom(obj)
    return request


@pytest.mark.parametrize(("rpc", "field", "section", "obj"), UPSERTS)
def test_upsert_creates_at_the_end(rpc: str, field: str, section: str, obj: Message) -> None:
    draft = draft_program()
    result = edit(draft, rpc, upsert_request(rpc, field, obj))
    items = getattr(result.draft, section)
    assert ids(items) == [*ids(getattr(draft, section)), "new"]
    assert items[-1] == obj
    assert (result.action, result.object_kind, result.object_id) == (
        "create",
        KIND_OF_SECTION[section],
        "new",
    )
    assert result.detail == {"object": {"id": "new", "name": "N"}}
    assert result.changed


@pytest.mark.parametrize(("rpc", "field", "section", "obj"), UPSERTS)
def test_upsert_replaces_in_place(rpc: str, field: str, section: str, obj: Message) -> None:
    draft = draft_program()
    first = getattr(draft, section)[0]
    replacement = type(obj)(id=first.id, name="Renamed")
    result = edit(draft, rpc, upsert_request(rpc, field, replacement))
    items = getattr(result.draft, section)
    assert ids(items) == ids(getattr(draft, section))  # same place, nothing added
    assert items[0] == replacement  # replaced whole: fields the request leaves out are cleared
    assert result.action == "update"
    changed = result.detail["changed"]
    assert changed["name"] == {"before": first.name or None, "after": "Renamed"}
    # Every field the old object set (but its id) is cleared or changed, and nothing else.
    assert set(changed) == {f.name for f, _ in first.ListFields() if f.name != "id"} | {"name"}
    assert result.changed


@pytest.mark.parametrize(("rpc", "field", "section", "obj"), UPSERTS)
def test_upsert_of_an_identical_object_changes_nothing(
    rpc: str, field: str, section: str, obj: Message
) -> None:
    draft = draft_program()
    same = getattr(draft, section)[0]
    result = edit(draft, rpc, upsert_request(rpc, field, same))
    assert result.draft == draft
    assert not result.changed
    assert result.detail == {"changed": {}}


@pytest.mark.parametrize(("rpc", "field", "section", "obj"), UPSERTS)
def test_upsert_needs_the_object_and_its_id(
    rpc: str, field: str, section: str, obj: Message
) -> None:
    draft = draft_program()
    invalid(draft, rpc, getattr(apb, f"{rpc}Request")(program=P), field)
    nameless = type(obj)(name="no id")
    invalid(draft, rpc, upsert_request(rpc, field, nameless), f"{field}.id")


def test_upsert_point_type_update_detail_has_before_and_after() -> None:
    draft = draft_program()
    bonus = pb.PointType()
    bonus.CopyFrom(draft.point_types[0])
    bonus.ratio.money = 50
    bonus.allow_refund = True
    result = edit(draft, "UpsertPointType", apb.UpsertPointTypeRequest(point_type=bonus))
    assert result.detail == {
        "changed": {
            "allow_refund": {"before": None, "after": True},
            "ratio": {
                "before": {"points": "1", "money": "100"},
                "after": {"points": "1", "money": "50"},
            },
        }
    }


def test_an_edit_may_leave_the_draft_invalid() -> None:
    # A tier group naming a point type not created yet: allowed while editing, Apply refuses.
    tier_group = pb.TierGroup(id="later", model=pb.TIER_MODEL_CUMULATIVE, point_type="nope")
    tier_group.tiers.add(id="t0")
    result = edit(
        draft_program(), "UpsertTierGroup", apb.UpsertTierGroupRequest(tier_group=tier_group)
    )
    with pytest.raises(ConfigError) as info:
        validate_program(result.draft)
    assert [(i.object_kind, i.object_id, i.field) for i in info.value.issues] == [
        ("tier_group", "later", "point_type")
    ]


# --------------------------------------------------------------------------------------------
# ClonePointType


def test_clone_point_type_is_an_inactive_copy_after_the_original() -> None:
    draft = draft_program()
    result = edit(
        draft, "ClonePointType", apb.ClonePointTypeRequest(point_type="bonus", new_id="bonus2")
    )
    assert ids(result.draft.point_types) == ["bonus", "bonus2", "qual"]
    clone = result.draft.point_types[1]
    expected = pb.PointType()
    expected.CopyFrom(draft.point_types[0])
    expected.id, expected.active = "bonus2", False
    assert clone == expected
    assert (result.action, result.object_kind, result.object_id) == (
        "clone",
        "point_type",
        "bonus2",
    )
    assert result.detail["from"] == "bonus"
    validate_program(result.draft)


def test_clone_point_type_errors() -> None:
    draft = draft_program()
    rpc = "ClonePointType"
    invalid(draft, rpc, apb.ClonePointTypeRequest(), "point_type", "new_id")
    not_found(draft, rpc, apb.ClonePointTypeRequest(point_type="nope", new_id="x"))
    exists(draft, rpc, apb.ClonePointTypeRequest(point_type="bonus", new_id="qual"))
    exists(draft, rpc, apb.ClonePointTypeRequest(point_type="bonus", new_id="bonus"))


# --------------------------------------------------------------------------------------------
# DeleteObject

DELETES = [
    ("point_type", "qual", "point_types"),
    ("tier_group", "levels", "tier_groups"),
    ("partner", "acme", "partners"),
    ("member_segment", "vip", "member_segments"),
    ("product_segment", "shoes", "product_segments"),
    ("order_segment", "big", "order_segments"),
    ("promo_code_pool", "codes", "promo_code_pools"),
    ("trigger_promotion", "install", "trigger_promotions"),
    ("promotion", "d", "promotions"),
]


@pytest.mark.parametrize(("kind", "object_id", "section"), DELETES)
def test_delete_removes_the_object(kind: str, object_id: str, section: str) -> None:
    draft = draft_program()
    result = edit(draft, "DeleteObject", apb.DeleteObjectRequest(object_kind=kind, id=object_id))
    assert object_id in ids(getattr(draft, section))
    assert object_id not in ids(getattr(result.draft, section))
    assert len(getattr(result.draft, section)) == len(getattr(draft, section)) - 1
    assert (result.action, result.object_kind, result.object_id) == ("delete", kind, object_id)
    assert result.detail["object"]["id"] == object_id


def test_delete_kinds_are_the_object_kinds_but_program() -> None:
    assert set(DELETABLE_KINDS) == {k for k, _, _ in DELETES} | {"group"}
    assert OBJECT_KINDS[0] == "program" and OBJECT_KINDS[1:] == DELETABLE_KINDS


def test_delete_a_promotion_removes_it_from_the_tree() -> None:
    draft = draft_program()
    result = edit(draft, "DeleteObject", apb.DeleteObjectRequest(object_kind="promotion", id="b"))
    assert shape(result.draft.arbitration) == ["a", ("g1", [("g2", ["c"])])]
    assert result.detail["group"] == "g1" and result.detail["position"] == 0
    validate_program(result.draft)


def test_delete_a_referenced_object_is_allowed_and_apply_names_the_dangling_reference() -> None:
    draft = draft_program()
    result = edit(
        draft, "DeleteObject", apb.DeleteObjectRequest(object_kind="point_type", id="qual")
    )
    with pytest.raises(ConfigError) as info:
        validate_program(result.draft)
    assert ("tier_group", "levels", "point_type") in [
        (i.object_kind, i.object_id, i.field) for i in info.value.issues
    ]


def test_delete_a_dangling_listing() -> None:
    draft = draft_program()
    draft.arbitration.children[1].group.children.add(promotion="ghost")  # listed, not defined
    result = edit(
        draft, "DeleteObject", apb.DeleteObjectRequest(object_kind="promotion", id="ghost")
    )
    assert shape(result.draft.arbitration) == shape(draft_program().arbitration)
    assert result.detail == {"object": None, "group": "g1", "position": 2}


def test_delete_an_empty_group() -> None:
    draft = draft_program()
    draft.arbitration.children.add().group.CopyFrom(pb.Group(id="empty", mode=SEQ))
    result = edit(draft, "DeleteObject", apb.DeleteObjectRequest(object_kind="group", id="empty"))
    assert shape(result.draft.arbitration) == shape(draft_program().arbitration)
    assert (result.object_kind, result.detail["group"], result.detail["position"]) == (
        "group",
        "",
        2,
    )


def test_delete_a_group_that_holds_children_is_refused() -> None:
    error = precondition(
        draft_program(), "DeleteObject", apb.DeleteObjectRequest(object_kind="group", id="g1")
    )
    assert "'b', 'g2'" in str(error)


def test_delete_errors() -> None:
    draft = draft_program()
    rpc = "DeleteObject"
    invalid(draft, rpc, apb.DeleteObjectRequest(object_kind="widget", id="x"), "object_kind")
    invalid(draft, rpc, apb.DeleteObjectRequest(object_kind="partner"), "id")
    invalid(draft, rpc, apb.DeleteObjectRequest(), "object_kind", "id")
    for kind in DELETABLE_KINDS:
        not_found(draft, rpc, apb.DeleteObjectRequest(object_kind=kind, id="nope"))
    # A kind's namespace is its own: "vip" is a member segment, not a product segment.
    not_found(draft, rpc, apb.DeleteObjectRequest(object_kind="product_segment", id="vip"))
    draft.arbitration.id = "main"
    invalid(draft, rpc, apb.DeleteObjectRequest(object_kind="group", id="main"), "id")


# --------------------------------------------------------------------------------------------
# Promotions: create, update, status, clone


def test_create_promotion_in_the_main_arbitration_goes_last() -> None:
    draft = draft_program()
    result = edit(draft, "CreatePromotion", apb.CreatePromotionRequest(promotion=promotion("e", 0)))
    # d, listed nowhere, sat at the end of the main arbitration: it is listed there now, and e
    # comes after it, so the calculation's order is a, g1, d, e.
    assert shape(result.draft.arbitration) == ["a", ("g1", ["b", ("g2", ["c"])]), "d", "e"]
    assert ids(result.draft.promotions) == ["a", "b", "c", "d", "e"]
    assert by_id(result.draft, "e").status == DRAFT  # an unset status is DRAFT
    assert (result.action, result.object_kind, result.object_id) == ("create", "promotion", "e")
    assert (result.detail["group"], result.detail["position"]) == ("", 3)
    validate_program(result.draft)


def test_create_promotion_in_a_group_keeps_a_given_status() -> None:
    draft = draft_program()
    result = edit(
        draft,
        "CreatePromotion",
        apb.CreatePromotionRequest(promotion=promotion("e", ACTIVE), group="g2"),
    )
    assert shape(result.draft.arbitration) == ["a", ("g1", ["b", ("g2", ["c", "e"])]), "d"]
    assert by_id(result.draft, "e") == promotion("e", ACTIVE)


def test_create_promotion_takes_the_place_of_a_dangling_listing() -> None:
    draft = draft_program()
    draft.arbitration.children.add(promotion="ghost")  # an imported draft listing a missing id
    result = edit(
        draft,
        "CreatePromotion",
        apb.CreatePromotionRequest(promotion=promotion("ghost"), group="g1"),
    )
    assert shape(result.draft.arbitration) == ["a", ("g1", ["b", ("g2", ["c"]), "ghost"]), "d"]


def test_create_promotion_errors() -> None:
    draft = draft_program()
    rpc = "CreatePromotion"
    invalid(draft, rpc, apb.CreatePromotionRequest(), "promotion")
    invalid(
        draft, rpc, apb.CreatePromotionRequest(promotion=pb.Promotion(name="x")), "promotion.id"
    )
    exists(draft, rpc, apb.CreatePromotionRequest(promotion=promotion("a")))
    error = exists(draft, rpc, apb.CreatePromotionRequest(promotion=promotion("g2")))
    assert "share the arbitration tree" in str(error)
    not_found(draft, rpc, apb.CreatePromotionRequest(promotion=promotion("e"), group="nope"))


def test_update_promotion_replaces_it_and_keeps_status_and_place() -> None:
    draft = draft_program()
    changed = promotion("b", 0, percent_bp=900)
    changed.name = "Better"
    result = edit(draft, "UpdatePromotion", apb.UpdatePromotionRequest(promotion=changed))
    updated = by_id(result.draft, "b")
    assert updated.status == DRAFT and updated.name == "Better"
    assert updated.product_rules[0].benefits[0].discount.percent_bp == 900
    assert shape(result.draft.arbitration) == shape(draft.arbitration)
    assert sorted(result.detail["changed"]) == ["name", "product_rules"]
    assert result.detail["changed"]["name"] == {"before": "B", "after": "Better"}
    # The same status given again is fine.
    same_status = edit(
        draft, "UpdatePromotion", apb.UpdatePromotionRequest(promotion=promotion("b", DRAFT))
    )
    assert not same_status.changed


def test_update_promotion_errors() -> None:
    draft = draft_program()
    rpc = "UpdatePromotion"
    invalid(draft, rpc, apb.UpdatePromotionRequest(), "promotion")
    invalid(
        draft, rpc, apb.UpdatePromotionRequest(promotion=pb.Promotion(name="x")), "promotion.id"
    )
    not_found(draft, rpc, apb.UpdatePromotionRequest(promotion=promotion("nope")))
    invalid(
        draft, rpc, apb.UpdatePromotionRequest(promotion=promotion("b", ACTIVE)), "promotion.status"
    )
    error = precondition(draft, rpc, apb.UpdatePromotionRequest(promotion=promotion("c", 0)))
    assert "ENDED is final" in str(error)


@pytest.mark.parametrize(
    ("rpc", "before", "after"),
    [
        ("ActivatePromotion", DRAFT, ACTIVE),
        ("ActivatePromotion", INACTIVE, ACTIVE),
        ("ActivatePromotion", ACTIVE, ACTIVE),
        ("DeactivatePromotion", ACTIVE, INACTIVE),
        ("DeactivatePromotion", INACTIVE, INACTIVE),
        ("DeactivatePromotion", DRAFT, DRAFT),
        ("EndPromotion", DRAFT, ENDED),
        ("EndPromotion", ACTIVE, ENDED),
        ("EndPromotion", INACTIVE, ENDED),
        ("EndPromotion", ENDED, ENDED),
    ],
)
def test_status_transitions(rpc: str, before: int, after: int) -> None:
    draft = draft_program()
    by_id(draft, "a").status = before  # type: ignore[assignment]
    result = edit(draft, rpc, apb.PromotionRef(program=P, promotion="a"))
    assert by_id(result.draft, "a").status == after
    assert result.object_kind == "promotion" and result.object_id == "a"
    assert result.action == {
        "ActivatePromotion": "activate",
        "DeactivatePromotion": "deactivate",
    }.get(rpc, "end")
    assert result.changed == (before != after)
    if before != after:
        assert result.detail == {
            "changed": {
                "status": {
                    "before": pb.PromotionStatus.Name(before),  # type: ignore[arg-type]
                    "after": pb.PromotionStatus.Name(after),  # type: ignore[arg-type]
                }
            }
        }
    else:
        assert result.detail == {"changed": {}}


@pytest.mark.parametrize("rpc", ["ActivatePromotion", "DeactivatePromotion"])
def test_ended_is_final(rpc: str) -> None:
    error = precondition(draft_program(), rpc, apb.PromotionRef(promotion="c"))
    assert "'c'" in str(error) and "ENDED" in str(error)


@pytest.mark.parametrize("rpc", ["ActivatePromotion", "DeactivatePromotion", "EndPromotion"])
def test_status_errors(rpc: str) -> None:
    invalid(draft_program(), rpc, apb.PromotionRef(program=P), "promotion")
    not_found(draft_program(), rpc, apb.PromotionRef(promotion="nope"))


def test_clone_promotion_is_a_draft_right_after_the_original() -> None:
    draft = draft_program()
    result = edit(draft, "ClonePromotion", apb.ClonePromotionRequest(promotion="b", new_id="b2"))
    assert shape(result.draft.arbitration) == ["a", ("g1", ["b", "b2", ("g2", ["c"])]), "d"]
    assert ids(result.draft.promotions) == ["a", "b", "b2", "c", "d"]
    expected = promotion("b2", DRAFT)
    expected.name = "B"
    assert by_id(result.draft, "b2") == expected
    assert (result.action, result.object_kind, result.object_id) == ("clone", "promotion", "b2")
    assert (result.detail["from"], result.detail["group"], result.detail["position"]) == (
        "b",
        "g1",
        1,
    )
    validate_program(result.draft)


def test_clone_an_ended_or_unlisted_promotion() -> None:
    draft = draft_program()
    ended = edit(draft, "ClonePromotion", apb.ClonePromotionRequest(promotion="c", new_id="c2"))
    assert by_id(ended.draft, "c2").status == DRAFT
    assert shape(ended.draft.arbitration)[1] == ("g1", ["b", ("g2", ["c", "c2"])])
    unlisted = edit(draft, "ClonePromotion", apb.ClonePromotionRequest(promotion="d", new_id="d2"))
    assert shape(unlisted.draft.arbitration) == ["a", ("g1", ["b", ("g2", ["c"])]), "d", "d2"]
    validate_program(unlisted.draft)


def test_clone_promotion_errors() -> None:
    draft = draft_program()
    rpc = "ClonePromotion"
    invalid(draft, rpc, apb.ClonePromotionRequest(), "promotion", "new_id")
    invalid(draft, rpc, apb.ClonePromotionRequest(promotion="a"), "new_id")
    not_found(draft, rpc, apb.ClonePromotionRequest(promotion="nope", new_id="x"))
    exists(draft, rpc, apb.ClonePromotionRequest(promotion="a", new_id="b"))
    exists(draft, rpc, apb.ClonePromotionRequest(promotion="a", new_id="g1"))


# --------------------------------------------------------------------------------------------
# Groups and the tree


def test_upsert_group_creates_an_empty_group_last_in_its_parent() -> None:
    draft = draft_program()
    new_group = pb.Group(id="g3", name="Weekend", mode=SUM)
    result = edit(draft, "UpsertGroup", apb.UpsertGroupRequest(group=new_group))
    assert shape(result.draft.arbitration) == [
        "a",
        ("g1", ["b", ("g2", ["c"])]),
        "d",
        ("g3", []),
    ]
    assert (result.action, result.object_kind, result.object_id) == ("create", "group", "g3")
    draft.arbitration.id = "main"  # the main arbitration's own id names it too
    by_root_id = edit(draft, "UpsertGroup", apb.UpsertGroupRequest(group=new_group, parent="main"))
    assert shape(by_root_id.draft.arbitration)[-1] == ("g3", [])
    nested = edit(draft, "UpsertGroup", apb.UpsertGroupRequest(group=new_group, parent="g2"))
    assert shape(nested.draft.arbitration)[1] == ("g1", ["b", ("g2", ["c", ("g3", [])])])
    assert (nested.detail["group"], nested.detail["position"]) == ("g2", 1)


def test_upsert_group_replaces_settings_and_keeps_children_and_place() -> None:
    draft = draft_program()
    replacement = pb.Group(
        id="g2", name="Renamed", mode=MAX, limits=pb.Limits(max_discount_bp=3000)
    )
    for parent in ("", "g1"):  # empty keeps it where it is; its own parent says the same
        result = edit(
            draft, "UpsertGroup", apb.UpsertGroupRequest(group=replacement, parent=parent)
        )
        g2 = result.draft.arbitration.children[1].group.children[1].group
        assert (g2.name, g2.mode, g2.limits.max_discount_bp) == ("Renamed", MAX, 3000)
        assert shape(result.draft.arbitration) == shape(draft.arbitration)
        assert result.action == "update"
        assert sorted(result.detail["changed"]) == ["limits", "mode", "name"]


def test_upsert_group_of_the_main_arbitration_by_its_id() -> None:
    draft = draft_program()
    draft.arbitration.id = "main"
    result = edit(draft, "UpsertGroup", apb.UpsertGroupRequest(group=pb.Group(id="main", mode=MAX)))
    assert result.draft.arbitration.mode == MAX
    assert shape(result.draft.arbitration) == shape(draft.arbitration)
    assert (result.object_kind, result.object_id) == ("program", P)


def test_upsert_group_errors() -> None:
    draft = draft_program()
    rpc = "UpsertGroup"
    invalid(draft, rpc, apb.UpsertGroupRequest(), "group")
    invalid(draft, rpc, apb.UpsertGroupRequest(group=pb.Group(mode=SEQ)), "group.id")
    with_children = group("g3", SEQ, "a")
    invalid(draft, rpc, apb.UpsertGroupRequest(group=with_children), "group.children")
    invalid(
        draft,
        rpc,
        apb.UpsertGroupRequest(group=pb.Group(id="g2", mode=SEQ), parent="elsewhere"),
        "parent",
    )
    exists(draft, rpc, apb.UpsertGroupRequest(group=pb.Group(id="a", mode=SEQ)))
    not_found(draft, rpc, apb.UpsertGroupRequest(group=pb.Group(id="g3", mode=SEQ), parent="nope"))


@pytest.mark.parametrize(
    ("node", "to_group", "position", "expected"),
    [
        ("a", "g2", 0, [("g1", ["b", ("g2", ["a", "c"])]), "d"]),
        ("a", "g2", 1, [("g1", ["b", ("g2", ["c", "a"])]), "d"]),
        ("a", "", 2, [("g1", ["b", ("g2", ["c"])]), "d", "a"]),  # position: among the others
        ("d", "", 0, ["d", "a", ("g1", ["b", ("g2", ["c"])])]),  # an unlisted promotion
        ("c", "", 1, ["a", "c", ("g1", ["b", ("g2", [])]), "d"]),
        ("g2", "", 0, [("g2", ["c"]), "a", ("g1", ["b"]), "d"]),
        ("g1", "", 2, ["a", "d", ("g1", ["b", ("g2", ["c"])])]),
        ("b", "g1", 1, ["a", ("g1", [("g2", ["c"]), "b"]), "d"]),  # within its own group
    ],
)
def test_move_node(node: str, to_group: str, position: int, expected: list[Any]) -> None:
    draft = draft_program()
    result = edit(
        draft, "MoveNode", apb.MoveNodeRequest(node=node, to_group=to_group, position=position)
    )
    assert shape(result.draft.arbitration) == expected
    assert (result.action, result.object_id) == ("move", node)
    assert result.object_kind == ("group" if node.startswith("g") else "promotion")
    assert result.detail["to"] == {"group": to_group, "position": position}
    validate_program(result.draft)


def test_move_node_records_where_it_came_from() -> None:
    result = edit(draft_program(), "MoveNode", apb.MoveNodeRequest(node="c", to_group="g1"))
    assert result.detail == {
        "from": {"group": "g2", "position": 0},
        "to": {"group": "g1", "position": 0},
    }


def test_move_a_promotion_listed_twice_leaves_one_listing() -> None:
    draft = draft_program()
    draft.arbitration.children.add(promotion="b")  # an imported draft listing b twice
    result = edit(draft, "MoveNode", apb.MoveNodeRequest(node="b", to_group="g2", position=1))
    assert shape(result.draft.arbitration) == ["a", ("g1", [("g2", ["c", "b"])]), "d"]


def test_move_node_errors() -> None:
    draft = draft_program()
    rpc = "MoveNode"
    invalid(draft, rpc, apb.MoveNodeRequest(), "node")
    not_found(draft, rpc, apb.MoveNodeRequest(node="nope"))
    not_found(draft, rpc, apb.MoveNodeRequest(node="a", to_group="nope"))
    invalid(draft, rpc, apb.MoveNodeRequest(node="g1", to_group="g1"), "to_group")
    invalid(draft, rpc, apb.MoveNodeRequest(node="g1", to_group="g2"), "to_group")
    invalid(draft, rpc, apb.MoveNodeRequest(node="a", to_group="g2", position=2), "position")
    invalid(draft, rpc, apb.MoveNodeRequest(node="a", to_group="g2", position=-1), "position")
    # The main arbitration holds a, g1 and (unlisted) d: with a moved, 0..2 are the places.
    invalid(draft, rpc, apb.MoveNodeRequest(node="a", position=3), "position")
    draft.arbitration.id = "main"
    invalid(draft, rpc, apb.MoveNodeRequest(node="main", to_group="g1"), "node")


def test_move_node_naming_a_promotion_and_a_group_is_ambiguous() -> None:
    draft = draft_program()
    draft.promotions.append(promotion("g2"))  # an imported draft where the ids collide
    invalid(draft, "MoveNode", apb.MoveNodeRequest(node="g2"), "node")


def test_reorder_group() -> None:
    draft = draft_program()
    result = edit(draft, "ReorderGroup", apb.ReorderGroupRequest(group="g1", children=["g2", "b"]))
    assert shape(result.draft.arbitration) == ["a", ("g1", [("g2", ["c"]), "b"]), "d"]
    assert (result.action, result.object_kind, result.object_id) == ("reorder", "group", "g1")
    assert result.detail == {"group": "g1", "before": ["b", "g2"], "after": ["g2", "b"]}


def test_reorder_the_main_arbitration_includes_the_unlisted_promotions() -> None:
    draft = draft_program()
    result = edit(draft, "ReorderGroup", apb.ReorderGroupRequest(children=["d", "g1", "a"]))
    assert shape(result.draft.arbitration) == ["d", ("g1", ["b", ("g2", ["c"])]), "a"]
    assert (result.object_kind, result.object_id) == ("program", P)


def test_reorder_group_errors() -> None:
    draft = draft_program()
    rpc = "ReorderGroup"
    not_found(draft, rpc, apb.ReorderGroupRequest(group="nope"))
    for children in (["b"], ["b", "g2", "a"], ["b", "b", "g2"], ["b", "b"], []):
        invalid(draft, rpc, apb.ReorderGroupRequest(group="g1", children=children), "children")
    # Without d (listed nowhere, but the main arbitration's last child) it is not the whole list.
    invalid(draft, rpc, apb.ReorderGroupRequest(children=["g1", "a"]), "children")
    anonymous = draft_program()
    anonymous.arbitration.children.add().group.CopyFrom(pb.Group(mode=SEQ))
    precondition(anonymous, rpc, apb.ReorderGroupRequest(children=["a", "g1", "d"]))


# --------------------------------------------------------------------------------------------
# UpdateProgram


def test_update_program_replaces_the_top_level_fields() -> None:
    draft = draft_program()
    fields = pb.Program(id=P, name="New", description="Desc", currency="USD", time_zone="UTC")
    result = edit(draft, "UpdateProgram", apb.UpdateProgramRequest(program=fields))
    program = result.draft
    assert (program.name, program.description, program.currency, program.time_zone) == (
        "New",
        "Desc",
        "USD",
        "UTC",
    )
    assert program.database == "profiles"  # empty: kept
    assert ids(program.promotions) == ids(draft.promotions)  # the lists are not its business
    assert program.arbitration == draft.arbitration  # not given: kept
    assert (result.action, result.object_kind, result.object_id) == ("update", "program", P)
    assert result.detail["changed"]["currency"] == {"before": "RUB", "after": "USD"}
    assert sorted(result.detail["changed"]) == ["currency", "description", "name", "time_zone"]


def test_update_program_ignores_the_lists_so_a_read_modify_write_works() -> None:
    draft = draft_program()
    whole = draft_program()
    whole.name = "Renamed"
    whole.ClearField("promotions")  # lists sent or not: UpdateProgram leaves them
    whole.arbitration.mode = MAX
    del whole.arbitration.children[:]
    result = edit(draft, "UpdateProgram", apb.UpdateProgramRequest(program=whole))
    assert result.draft.name == "Renamed"
    assert result.draft.arbitration.mode == MAX  # the main arbitration's own settings
    assert shape(result.draft.arbitration) == shape(draft.arbitration)  # its children: kept
    assert ids(result.draft.promotions) == ids(draft.promotions)
    assert sorted(result.detail["changed"]) == ["arbitration.mode", "name"]


def test_update_program_errors() -> None:
    draft = draft_program()
    rpc = "UpdateProgram"
    invalid(draft, rpc, apb.UpdateProgramRequest(), "program")
    invalid(draft, rpc, apb.UpdateProgramRequest(program=pb.Program(name="x")), "program.id")
    invalid(draft, rpc, apb.UpdateProgramRequest(program=pb.Program(id="other")), "program.id")
    error = precondition(
        draft, rpc, apb.UpdateProgramRequest(program=pb.Program(id=P, database="elsewhere"))
    )
    assert "database never changes" in str(error)
    same_db = edit(
        draft,
        rpc,
        apb.UpdateProgramRequest(program=pb.Program(id=P, database="profiles", name="Shop")),
    )
    assert same_db.draft.database == "profiles"
    root_named_g1 = pb.Program(id=P, arbitration=pb.Group(id="g1", mode=SEQ))
    exists(draft, rpc, apb.UpdateProgramRequest(program=root_named_g1))


# --------------------------------------------------------------------------------------------
# The diff


def entries(applied: pb.Program | None, draft: pb.Program) -> list[tuple[str, str, str, list[str]]]:
    return [(e.object_kind, e.id, e.change, list(e.fields)) for e in diff(applied, draft)]


def test_diff_of_equal_programs_is_empty() -> None:
    assert entries(draft_program(), draft_program()) == []


def test_diff_against_nothing_applied_adds_everything_in_kind_order() -> None:
    found = entries(None, draft_program())
    assert found == [
        ("program", P, "added", []),
        ("point_type", "bonus", "added", []),
        ("point_type", "qual", "added", []),
        ("tier_group", "levels", "added", []),
        ("partner", "acme", "added", []),
        ("member_segment", "vip", "added", []),
        ("product_segment", "shoes", "added", []),
        ("order_segment", "big", "added", []),
        ("promo_code_pool", "codes", "added", []),
        ("trigger_promotion", "install", "added", []),
        ("promotion", "a", "added", []),
        ("promotion", "b", "added", []),
        ("promotion", "c", "added", []),
        ("promotion", "d", "added", []),
        ("group", "g1", "added", []),
        ("group", "g2", "added", []),
    ]
    assert [kind for kind, *_ in found] == sorted(
        (kind for kind, *_ in found), key=OBJECT_KINDS.index
    )


@pytest.mark.parametrize(("kind", "object_id", "section"), DELETES)
def test_diff_of_each_kind(kind: str, object_id: str, section: str) -> None:
    applied = draft_program()
    removed = draft_program()
    items = getattr(removed, section)
    (i,) = [n for n, item in enumerate(items) if item.id == object_id]
    obj = items[i]
    del items[i]
    # d sits at the end of the main arbitration: adding or removing it changes that list too.
    tree = [("program", P, "changed", ["arbitration.children"])] if kind == "promotion" else []
    assert entries(applied, removed) == [*tree, (kind, object_id, "removed", [])]
    assert entries(removed, applied) == [*tree, (kind, object_id, "added", [])]
    changed = draft_program()
    getattr(changed, section)[i].name = "Changed name"
    assert entries(applied, changed) == [(kind, object_id, "changed", ["name"])]
    assert obj.id == object_id


def test_diff_lists_the_changed_fields_in_proto_order() -> None:
    applied = draft_program()
    draft = draft_program()
    draft.point_types[0].allow_refund = True
    draft.point_types[0].name = "Points"
    draft.point_types[0].ClearField("ratio")
    draft.name = "Shop 2"
    draft.time_zone = "UTC"
    assert entries(applied, draft) == [
        ("program", P, "changed", ["name", "time_zone"]),
        ("point_type", "bonus", "changed", ["name", "allow_refund", "ratio"]),
    ]


def test_diff_names_the_path_down_to_each_difference() -> None:
    applied = draft_program()
    applied.promo_code_pools[0].codes.extend(pb.PromoCode(code=f"C{i}") for i in range(20))
    draft = pb.Program()
    draft.CopyFrom(applied)
    draft.point_types[0].ratio.money = 50
    benefits = by_id(draft, "a").product_rules[0].benefits
    benefits[0].discount.percent_bp = 700
    by_id(draft, "b").product_rules[0].benefits[0].CopyFrom(
        pb.Benefit(accrue_points=pb.AccruePoints(point_type="bonus", points=10))
    )
    by_id(draft, "c").product_rules.add()  # a list that grew is named whole
    for code in draft.promo_code_pools[0].codes:  # 21 codes changed: more than a list reports
        code.max_uses = 1
    draft.member_segments[0].members.append("m2")  # a list of scalars is named whole
    draft.arbitration.limits.max_discount_bp = 100
    applied.arbitration.limits.max_discount_bp = 200
    assert entries(applied, draft) == [
        ("program", P, "changed", ["arbitration.limits.max_discount_bp"]),
        ("point_type", "bonus", "changed", ["ratio.money"]),
        ("member_segment", "vip", "changed", ["members"]),
        ("promo_code_pool", "codes", "changed", ["codes"]),
        ("promotion", "a", "changed", ["product_rules[0].benefits[0].discount.percent_bp"]),
        (
            "promotion",
            "b",
            "changed",
            ["product_rules[0].benefits[0].discount", "product_rules[0].benefits[0].accrue_points"],
        ),
        ("promotion", "c", "changed", ["product_rules"]),
    ]
    draft.promo_code_pools[0].CopyFrom(applied.promo_code_pools[0])
    draft.promo_code_pools[0].codes[3].max_uses = 2
    assert ("promo_code_pool", "codes", "changed", ["codes[3].max_uses"]) in entries(applied, draft)


def test_diff_of_a_moved_promotion() -> None:
    applied = draft_program()
    moved = edit(applied, "MoveNode", apb.MoveNodeRequest(node="a", to_group="g2")).draft
    assert entries(applied, moved) == [
        ("program", P, "changed", ["arbitration.children"]),
        ("promotion", "a", "changed", [PLACEMENT]),
        ("group", "g2", "changed", ["children"]),
    ]


def test_diff_of_a_moved_group_and_a_reorder() -> None:
    applied = draft_program()
    moved = edit(applied, "MoveNode", apb.MoveNodeRequest(node="g2", to_group="")).draft
    assert entries(applied, moved) == [
        ("program", P, "changed", ["arbitration.children"]),
        ("group", "g1", "changed", ["children"]),
        ("group", "g2", "changed", [PLACEMENT]),
    ]
    reordered = edit(
        applied, "ReorderGroup", apb.ReorderGroupRequest(group="g1", children=["g2", "b"])
    ).draft
    assert entries(applied, reordered) == [("group", "g1", "changed", ["children"])]


def test_diff_of_group_settings_and_the_main_arbitration() -> None:
    applied = draft_program()
    draft = draft_program()
    draft.arbitration.children[1].group.mode = SUM
    draft.arbitration.children[1].group.limits.max_discount_amount = 10
    draft.arbitration.mode = MAX
    assert entries(applied, draft) == [
        ("program", P, "changed", ["arbitration.mode"]),
        ("group", "g1", "changed", ["mode", "limits"]),
    ]


def test_listing_the_unlisted_promotions_is_no_change() -> None:
    applied = draft_program()
    explicit = draft_program()
    explicit.arbitration.children.add(promotion="d")
    assert entries(applied, explicit) == []
    created = edit(applied, "CreatePromotion", apb.CreatePromotionRequest(promotion=promotion("e")))
    assert entries(applied, created.draft) == [
        ("program", P, "changed", ["arbitration.children"]),
        ("promotion", "e", "added", []),
    ]


def test_diff_of_a_status_change_and_a_deleted_group() -> None:
    applied = draft_program()
    applied.arbitration.children.add().group.CopyFrom(pb.Group(id="gone", mode=SEQ))
    draft = edit(applied, "ActivatePromotion", apb.PromotionRef(promotion="b")).draft
    draft = edit(
        draft, "DeleteObject", apb.DeleteObjectRequest(object_kind="group", id="gone")
    ).draft
    assert entries(applied, draft) == [
        ("program", P, "changed", ["arbitration.children"]),
        ("promotion", "b", "changed", ["status"]),
        ("group", "gone", "removed", []),
    ]


def test_diff_is_deterministic_and_sorted_by_id() -> None:
    applied = draft_program()
    draft = draft_program()
    for name in ("zeta", "alpha", "mid"):
        draft.partners.add(id=name)
    del draft.partners[0]
    found = entries(applied, draft)
    assert found == [
        ("partner", "acme", "removed", []),
        ("partner", "alpha", "added", []),
        ("partner", "mid", "added", []),
        ("partner", "zeta", "added", []),
    ]
    assert found == entries(applied, draft)


def test_diff_matches_an_id_defined_twice_occurrence_by_occurrence() -> None:
    applied = draft_program()
    draft = draft_program()
    draft.partners.add(id="acme", name="Second")  # an invalid draft: Apply will refuse it
    assert entries(applied, draft) == [("partner", "acme", "added", [])]
    draft.partners[0].name = "First"
    assert entries(applied, draft) == [
        ("partner", "acme", "changed", ["name"]),
        ("partner", "acme", "added", []),
    ]


# --------------------------------------------------------------------------------------------
# Random sequences of edits keep one place per promotion

PROMOTION_IDS = ["a", "b", "c", "d", "e", "f"]
GROUP_IDS = ["g1", "g2", "g3", "g4"]
NODE_IDS = PROMOTION_IDS + GROUP_IDS + ["", "nope"]


def edit_requests() -> st.SearchStrategy[tuple[str, Message]]:
    node = st.sampled_from(NODE_IDS)
    promotion_id = st.sampled_from([*PROMOTION_IDS, "nope"])
    group_id = st.sampled_from([*GROUP_IDS, "", "nope"])
    position = st.integers(min_value=-1, max_value=5)
    move = st.builds(
        lambda n, g, pos: ("MoveNode", apb.MoveNodeRequest(node=n, to_group=g, position=pos)),
        node,
        group_id,
        position,
    )
    return st.one_of(
        move,
        move,  # moves weigh double: they reshape the tree most
        st.builds(
            lambda p, g: (
                "CreatePromotion",
                apb.CreatePromotionRequest(promotion=promotion(p), group=g),
            ),
            promotion_id,
            group_id,
        ),
        st.builds(
            lambda p, n: ("ClonePromotion", apb.ClonePromotionRequest(promotion=p, new_id=n)),
            promotion_id,
            st.sampled_from(PROMOTION_IDS + GROUP_IDS),
        ),
        st.builds(
            lambda g, parent: (
                "UpsertGroup",
                apb.UpsertGroupRequest(group=pb.Group(id=g, mode=SEQ), parent=parent),
            ),
            st.sampled_from(GROUP_IDS + PROMOTION_IDS),
            group_id,
        ),
        st.builds(
            lambda kind, n: ("DeleteObject", apb.DeleteObjectRequest(object_kind=kind, id=n)),
            st.sampled_from(["promotion", "group"]),
            node,
        ),
        st.builds(
            lambda g, seed: ("ReorderGroup", ("shuffle", g, seed)),  # resolved against the draft
            group_id,
            st.randoms(use_true_random=False),
        ),
        st.builds(
            lambda rpc, p: (rpc, apb.PromotionRef(promotion=p)),
            st.sampled_from(["ActivatePromotion", "DeactivatePromotion", "EndPromotion"]),
            promotion_id,
        ),
    )


def tree_listings(program: pb.Program) -> tuple[list[str], list[str]]:
    promotions: list[str] = []
    groups: list[str] = [program.arbitration.id] if program.arbitration.id else []

    def walk(g: pb.Group) -> None:
        for child in g.children:
            if child.WhichOneof("node") == "promotion":
                promotions.append(child.promotion)
            else:
                groups.append(child.group.id)
                walk(child.group)

    walk(program.arbitration)
    return promotions, groups


def reorder_request(program: pb.Program, group_id: str, rng: Any) -> apb.ReorderGroupRequest:
    target = program.arbitration
    for child in [c for c in _all_children(program.arbitration)]:
        if child.WhichOneof("node") == "group" and child.group.id == group_id:
            target = child.group
    keys = [
        c.promotion if c.WhichOneof("node") == "promotion" else c.group.id for c in target.children
    ]
    if target is program.arbitration or group_id == "":
        listed, _ = tree_listings(program)
        keys += [p.id for p in program.promotions if p.id not in listed]
    rng.shuffle(keys)
    return apb.ReorderGroupRequest(group=group_id, children=keys)


def _all_children(g: pb.Group) -> list[pb.Child]:
    out: list[pb.Child] = []
    for child in g.children:
        out.append(child)
        if child.WhichOneof("node") == "group":
            out.extend(_all_children(child.group))
    return out


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(edit_requests(), min_size=1, max_size=25))
def test_random_edits_keep_exactly_one_place_per_promotion(
    steps: list[tuple[str, Any]],
) -> None:
    program = draft_program()
    for rpc, request in steps:
        if isinstance(request, tuple):
            _, group_id, rng = request
            request = reorder_request(program, group_id, rng)
        try:
            program = edit(program, rpc, request).draft
        except (InvalidEdit, NotFound, AlreadyExists, EditRefused):
            continue
        listed, groups = tree_listings(program)
        promotion_ids = ids(program.promotions)
        assert len(set(promotion_ids)) == len(promotion_ids)  # ids stay unique per kind
        assert len(set(listed)) == len(listed)  # no promotion placed twice
        assert set(listed) <= set(promotion_ids)  # nothing placed that does not exist
        assert len(set(groups)) == len(groups)  # group ids stay unique
        assert not set(groups) & set(promotion_ids)  # the tree's one namespace
        if rpc in ("CreatePromotion", "ClonePromotion", "MoveNode", "ReorderGroup"):
            assert set(listed) == set(promotion_ids)  # placing edits leave the tree explicit
        validate_program(program)  # every step here keeps the program valid


@pytest.mark.parametrize(
    "nanos, seconds", [(-1, 0), (1_000_000_000, 0), (0, -62_135_596_801), (0, 253_402_300_800)]
)
def test_an_instant_a_timestamp_cannot_hold_is_invalid_naming_the_field(
    nanos: int, seconds: int
) -> None:
    """Found by the fuzzer: such a pool was journaled as JSON and failed as INTERNAL."""
    request = apb.UpsertPromoCodePoolRequest(program="p")
    request.pool.id = "pool"
    request.pool.valid_to.seconds = seconds
    request.pool.valid_to.nanos = nanos
    with pytest.raises(InvalidEdit) as caught:
        apply_edit(pb.Program(id="p"), "UpsertPromoCodePool", request)
    assert [v.field for v in caught.value.violations] == ["pool.valid_to"]


@pytest.mark.parametrize(
    "seconds, accepted",
    [
        (-62_135_596_800, False),  # 0001-01-01: a Timestamp holds it, local time may not
        (-62_135_596_800 + 86_399, False),
        (-62_135_596_800 + 86_400, True),  # 0001-01-02T00:00:00Z
        (253_402_300_799 - 86_400, True),  # 9999-12-30T23:59:59Z
        (253_402_300_799 - 86_399, False),
        (253_402_300_799, False),  # 9999-12-31T23:59:59Z
    ],
)
def test_a_program_instant_lies_in_the_range_an_order_instant_does(
    seconds: int, accepted: bool
) -> None:
    """One range for every instant the server takes (state/instants.py): a program's too, since
    the engine puts a period's start in the program's time zone (a New York period starting
    0001-01-01T00:00Z failed the compile with OverflowError)."""
    request = apb.UpsertPromoCodePoolRequest(program="p")
    request.pool.id = "pool"
    request.pool.valid_from.seconds = seconds
    if accepted:
        edit = apply_edit(pb.Program(id="p"), "UpsertPromoCodePool", request)
        assert edit.draft.promo_code_pools[0].valid_from.seconds == seconds
        assert timestamp_violations(edit.draft, "program") == []
        return
    with pytest.raises(InvalidEdit) as caught:
        apply_edit(pb.Program(id="p"), "UpsertPromoCodePool", request)
    assert [(v.field, v.description) for v in caught.value.violations] == [
        ("pool.valid_from", TIMESTAMP_RANGE)
    ]


def test_timestamps_in_repeated_messages_are_named_by_index() -> None:
    program = pb.Program(id="p")
    program.promotions.add(id="a")
    bad = program.promotions.add(id="b")
    bad.period.start.nanos = -5
    assert [v.field for v in timestamp_violations(program, "program")] == [
        "program.promotions[1].period.start"
    ]
