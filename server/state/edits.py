"""Draft edits: the AdminService's edit RPCs as pure functions on an `arbiter.v1.Program`.

    apply_edit(draft, rpc, request) -> Edit      the new draft and what changed, for the journal
    diff(applied, draft) -> list[DiffEntry]      what the draft changes against the applied version

Both are pure: no I/O, no clock, and `apply_edit` never mutates the draft it is given (it edits a
copy). The caller (the AdminService) loads the draft, calls `apply_edit` inside the transaction
that holds the draft's row, stores `Edit.draft` and journals the rest.

An edit checks only what makes the edit itself meaningless (a missing id, an unknown object, a
cycle in the tree, an ENDED promotion); the draft may be invalid while it is edited (a promotion
may name a segment not created yet), and `Apply` validates the whole program. The rules are set
down in docs/configuration.md, "Editing a draft".

The arbitration tree stays explicit: every edit that places a node (CreatePromotion,
ClonePromotion, UpsertGroup creating a group, MoveNode, ReorderGroup) first lists the promotions
no group lists at the end of the main arbitration, in the order of `promotions`, which is where
the calculation puts them anyway. From then on each promotion has exactly one visible place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar, cast

from google.protobuf import json_format
from google.protobuf.message import Message

from arbiter.server.engine.errors import FieldViolation
from arbiter.server.state.errors import (
    AlreadyExists,
    EditRefused,
    InvalidEdit,
    NotFound,
    shown_id,
)
from arbiter.server.state.instants import TIMESTAMP_RANGE, timestamp_valid
from arbiter.v1 import admin_pb2
from arbiter.v1 import program_pb2 as pb

__all__ = [
    "DELETABLE_KINDS",
    "EDIT_RPCS",
    "OBJECT_KINDS",
    "PLACEMENT",
    "Edit",
    "apply_edit",
    "diff",
    "timestamp_violations",
]

# The object kinds of a program, in the order of `Program`'s fields: the diff's order too.
OBJECT_KINDS: Final = (
    "program",
    "point_type",
    "tier_group",
    "partner",
    "member_segment",
    "product_segment",
    "order_segment",
    "promo_code_pool",
    "trigger_promotion",
    "promotion",
    "group",
)
DELETABLE_KINDS: Final = OBJECT_KINDS[1:]

# The diff's pseudo-field of a promotion or group that now sits in another group.
PLACEMENT: Final = "placement"

# The journal's actions.
CREATE: Final = "create"
UPDATE: Final = "update"
DELETE: Final = "delete"
CLONE: Final = "clone"
ACTIVATE: Final = "activate"
DEACTIVATE: Final = "deactivate"
END: Final = "end"
MOVE: Final = "move"
REORDER: Final = "reorder"

_ENDED: Final = pb.PROMOTION_STATUS_ENDED
_SHARED_TREE = "group ids and promotion ids share the arbitration tree: choose another id"


@dataclass(frozen=True, slots=True)
class Edit:
    """One applied edit: the new draft and, for the audit journal, what it did.

    `detail` is JSON-able: `{"object": ...}` for a created, cloned or deleted object (its
    protobuf JSON), `{"changed": {field: {"before": ..., "after": ...}}}` for an update (top-level
    fields, protobuf JSON values, null for a field at its default), and the places for a move or
    reorder. `changed` is False when the new draft equals the old one (an upsert of an identical
    object, activating an ACTIVE promotion): the caller may skip storing and journaling it.
    """

    draft: pb.Program
    action: str
    object_kind: str
    object_id: str
    detail: dict[str, Any]
    changed: bool = True


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


_M = TypeVar("_M", bound=Message)


@dataclass(frozen=True, slots=True)
class _Section:
    """A list of objects of one kind in `Program`, and the upsert RPC that writes one."""

    kind: str
    field: str  # the Program field
    request_field: str  # the upsert request's field holding the object
    rpc: str


_SECTIONS: Final = (
    _Section("point_type", "point_types", "point_type", "UpsertPointType"),
    _Section("tier_group", "tier_groups", "tier_group", "UpsertTierGroup"),
    _Section("partner", "partners", "partner", "UpsertPartner"),
    _Section("member_segment", "member_segments", "segment", "UpsertMemberSegment"),
    _Section("product_segment", "product_segments", "segment", "UpsertProductSegment"),
    _Section("order_segment", "order_segments", "segment", "UpsertOrderSegment"),
    _Section("promo_code_pool", "promo_code_pools", "pool", "UpsertPromoCodePool"),
    _Section(
        "trigger_promotion", "trigger_promotions", "trigger_promotion", "UpsertTriggerPromotion"
    ),
    _Section("promotion", "promotions", "promotion", ""),
)
_SECTION_BY_KIND: Final = {s.kind: s for s in _SECTIONS}
_UPSERT_SECTION_BY_RPC: Final = {s.rpc: s for s in _SECTIONS if s.rpc}

# The program's own fields (UpdateProgram, the diff's "program" entry); `database` never changes.
_PROGRAM_FIELDS: Final = ("id", "name", "description", "database", "currency", "time_zone")
_UPDATABLE_PROGRAM_FIELDS: Final = ("name", "description", "currency", "time_zone")
# A group's own settings: everything but its children.
_GROUP_SETTINGS: Final = tuple(f.name for f in pb.Group.DESCRIPTOR.fields if f.name != "children")


# --------------------------------------------------------------------------------------------
# Small helpers


def _invalid(field: str, description: str) -> InvalidEdit:
    return InvalidEdit([FieldViolation(field, description)])


def _copy(message: _M) -> _M:
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def _to_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _differing_fields(
    before: Message, after: Message, names: Sequence[str] | None = None
) -> list[str]:
    """The top-level fields (in proto order) whose values, or presence, differ."""
    out: list[str] = []
    for field in before.DESCRIPTOR.fields:
        name = field.name
        if names is not None and name not in names:
            continue
        presence_differs = field.has_presence and before.HasField(name) != after.HasField(name)
        if presence_differs or getattr(before, name) != getattr(after, name):
            out.append(name)
    return out


# A list whose elements differ in more places than this is reported by its name alone.
MAX_PATHS_PER_LIST: Final = 16


def _differing_paths(
    before: Message, after: Message, names: Sequence[str] | None = None, prefix: str = ""
) -> list[str]:
    """The field paths (proto names, list indices) down to each difference, in proto order.

    A message field present on both sides is descended into; a list of messages of one length
    is compared element by element (`product_rules[0].benefits[1].discount.percent_bp`); a
    field set on one side only, a list of scalars, or a list whose length changed is named whole.
    """
    out: list[str] = []
    for field in before.DESCRIPTOR.fields:
        name = field.name
        if names is not None and name not in names:
            continue
        path = prefix + name
        old, new = getattr(before, name), getattr(after, name)
        if field.has_presence and before.HasField(name) != after.HasField(name):
            out.append(path)
        elif old == new:
            continue
        elif field.message_type is None:
            out.append(path)
        elif not field.is_repeated:
            out.extend(_differing_paths(old, new, prefix=f"{path}."))
        elif len(old) != len(new):
            out.append(path)
        else:
            inner: list[str] = []
            for i, (a, b) in enumerate(zip(old, new, strict=True)):
                inner.extend(_differing_paths(a, b, prefix=f"{path}[{i}]."))
            out.extend(inner if len(inner) <= MAX_PATHS_PER_LIST else [path])
    return out


def _changes(
    before: Message, after: Message, names: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """{field: {"before": value, "after": value}} for each top-level field that differs."""
    fields = _differing_fields(before, after, names)
    if not fields:
        return {}
    old, new = _to_json(before), _to_json(after)
    return {name: {"before": old.get(name), "after": new.get(name)} for name in fields}


def _index_of(items: Sequence[_HasId], object_id: str) -> int | None:
    for i, item in enumerate(items):
        if item.id == object_id:
            return i
    return None


def _replace_all(items: Any, values: Sequence[Message]) -> None:
    """Set a repeated message field to `values` (copies)."""
    values = [_copy(v) for v in values]
    del items[:]
    items.extend(values)


def _insert(items: Any, position: int, value: Message) -> None:
    values = list(items)
    values.insert(position, value)
    _replace_all(items, values)


def _edit(
    before: pb.Program,
    after: pb.Program,
    action: str,
    kind: str,
    object_id: str,
    detail: dict[str, Any],
) -> Edit:
    return Edit(after, action, kind, object_id, detail, changed=after != before)


def _require(request: Message, *fields: str) -> None:
    """INVALID_ARGUMENT naming every one of `fields` (strings) that is empty."""
    missing = [
        FieldViolation(name, "must not be empty") for name in fields if not getattr(request, name)
    ]
    if missing:
        raise InvalidEdit(missing)


# --------------------------------------------------------------------------------------------
# The arbitration tree

MAIN = ""  # how requests and journal details name the main arbitration


@dataclass(frozen=True, slots=True)
class _Node:
    """A child of some group, met walking the tree depth first."""

    parent: pb.Group
    parent_label: str  # the nearest named group holding it; MAIN for the main arbitration
    index: int
    child: pb.Child


def _walk(group: pb.Group, label: str = MAIN) -> Iterator[_Node]:
    for i, child in enumerate(group.children):
        yield _Node(group, label, i, child)
        if child.WhichOneof("node") == "group":
            yield from _walk(child.group, child.group.id or label)


def _is_group(child: pb.Child, group_id: str) -> bool:
    return child.WhichOneof("node") == "group" and child.group.id == group_id


def _is_promotion(child: pb.Child, promotion_id: str) -> bool:
    return child.WhichOneof("node") == "promotion" and child.promotion == promotion_id


def _child_key(child: pb.Child) -> str | None:
    """How requests name a child: its promotion or group id; None for an anonymous group."""
    which = child.WhichOneof("node")
    if which == "promotion":
        return child.promotion
    if which == "group":
        return child.group.id or None
    return None


def _find_group(root: pb.Group, group_id: str) -> pb.Group | None:
    """The group named `group_id`; MAIN (or the root's own id) is the main arbitration."""
    if group_id == MAIN or group_id == root.id:
        return root
    return _find_nested_group(root, group_id)


def _find_nested_group(root: pb.Group, group_id: str) -> pb.Group | None:
    for node in _walk(root):
        if _is_group(node.child, group_id):
            return node.child.group
    return None


def _group_node(root: pb.Group, group_id: str) -> _Node | None:
    for node in _walk(root):
        if _is_group(node.child, group_id):
            return node
    return None


def _promotion_node(root: pb.Group, promotion_id: str) -> _Node | None:
    for node in _walk(root):
        if _is_promotion(node.child, promotion_id):
            return node
    return None


def _group_ids(root: pb.Group) -> set[str]:
    ids = {node.child.group.id for node in _walk(root) if node.child.WhichOneof("node") == "group"}
    ids.add(root.id)
    ids.discard("")
    return ids


def _listed_promotions(root: pb.Group) -> set[str]:
    return {
        node.child.promotion for node in _walk(root) if node.child.WhichOneof("node") == "promotion"
    }


def _unlisted_promotions(program: pb.Program) -> list[str]:
    """The promotions no group lists, once each, in the order of `promotions`."""
    listed = _listed_promotions(program.arbitration)
    out: list[str] = []
    for promotion in program.promotions:
        if promotion.id and promotion.id not in listed:
            listed.add(promotion.id)
            out.append(promotion.id)
    return out


def _make_explicit(program: pb.Program) -> None:
    """List the unlisted promotions at the end of the main arbitration (where they sit anyway)."""
    for promotion_id in _unlisted_promotions(program):
        program.arbitration.children.add(promotion=promotion_id)


def _remove_children(group: pb.Group, is_target: Callable[[pb.Child], bool]) -> list[pb.Child]:
    """Remove every child `is_target` picks, anywhere under `group`; return them (copies)."""
    removed: list[pb.Child] = []
    kept: list[pb.Child] = []
    touched = False
    for child in group.children:
        if is_target(child):
            removed.append(_copy(child))
            touched = True
            continue
        kept_child = _copy(child)
        if kept_child.WhichOneof("node") == "group":
            below = _remove_children(kept_child.group, is_target)
            if below:
                removed.extend(below)
                touched = True
        kept.append(kept_child)
    if touched:
        _replace_all(group.children, kept)
    return removed


def _first_only(matches: Callable[[pb.Child], bool]) -> Callable[[pb.Child], bool]:
    taken = False

    def pick(child: pb.Child) -> bool:
        nonlocal taken
        if not taken and matches(child):
            taken = True
            return True
        return False

    return pick


def _promotion_known(program: pb.Program, promotion_id: str) -> bool:
    """A promotion of the program, or an id the tree lists (a dangling listing)."""
    return _index_of(program.promotions, promotion_id) is not None or any(
        _is_promotion(node.child, promotion_id) for node in _walk(program.arbitration)
    )


def _place(node: _Node | None) -> dict[str, Any]:
    if node is None:
        return {"group": MAIN, "position": None}
    return {"group": node.parent_label, "position": node.index}


def _tree_target(program: pb.Program, group_id: str) -> tuple[str, str]:
    """(object_kind, object_id) of a group for the journal; the main arbitration: the program."""
    root = program.arbitration
    if group_id == MAIN or group_id == root.id:
        return "program", program.id
    return "group", group_id


# --------------------------------------------------------------------------------------------
# Upserts and clones of the top-level objects


def _upsert(draft: pb.Program, section: _Section, request: Message) -> Edit:
    field = section.request_field
    if not request.HasField(field):
        raise _invalid(field, f"the {section.kind} to write is missing")
    obj = getattr(request, field)
    if not obj.id:
        raise _invalid(f"{field}.id", "must not be empty")
    new = _copy(draft)
    items = getattr(new, section.field)
    i = _index_of(items, obj.id)
    if i is None:
        items.add().CopyFrom(obj)
        return _edit(draft, new, CREATE, section.kind, obj.id, {"object": _to_json(obj)})
    changes = _changes(items[i], obj)
    items[i].CopyFrom(obj)
    return _edit(draft, new, UPDATE, section.kind, obj.id, {"changed": changes})


def _clone_point_type(draft: pb.Program, request: admin_pb2.ClonePointTypeRequest) -> Edit:
    _require(request, "point_type", "new_id")
    new = _copy(draft)
    i = _index_of(new.point_types, request.point_type)
    if i is None:
        raise NotFound("point_type", request.point_type)
    if _index_of(new.point_types, request.new_id) is not None:
        raise AlreadyExists("point_type", request.new_id)
    clone = _copy(new.point_types[i])
    clone.id = request.new_id
    clone.active = False
    _insert(new.point_types, i + 1, clone)
    detail = {"from": request.point_type, "object": _to_json(clone)}
    return _edit(draft, new, CLONE, "point_type", request.new_id, detail)


def _delete(draft: pb.Program, request: admin_pb2.DeleteObjectRequest) -> Edit:
    violations: list[FieldViolation] = []
    if request.object_kind not in DELETABLE_KINDS:
        violations.append(
            FieldViolation(
                "object_kind",
                f"unknown object kind {shown_id(request.object_kind)}: "
                f"one of {', '.join(DELETABLE_KINDS)}",
            )
        )
    if not request.id:
        violations.append(FieldViolation("id", "must not be empty"))
    if violations:
        raise InvalidEdit(violations)
    kind, object_id = request.object_kind, request.id
    if kind == "group":
        return _delete_group(draft, object_id)
    new = _copy(draft)
    section = _SECTION_BY_KIND[kind]
    items = getattr(new, section.field)
    doomed = [item for item in items if item.id == object_id]
    detail: dict[str, Any] = {"object": _to_json(doomed[0]) if doomed else None}
    if kind == "promotion":
        node = _promotion_node(new.arbitration, object_id)
        if not doomed and node is None:
            raise NotFound(kind, object_id)
        detail.update(_place(node))
        _remove_children(new.arbitration, lambda child: _is_promotion(child, object_id))
    elif not doomed:
        raise NotFound(kind, object_id)
    _replace_all(items, [item for item in items if item.id != object_id])
    return _edit(draft, new, DELETE, kind, object_id, detail)


def _delete_group(draft: pb.Program, group_id: str) -> Edit:
    if group_id == draft.arbitration.id:
        raise _invalid("id", "the main arbitration cannot be deleted")
    new = _copy(draft)
    node = _group_node(new.arbitration, group_id)
    if node is None:
        raise NotFound("group", group_id)
    group = node.child.group
    if group.children:
        names = ", ".join(shown_id(_child_key(c) or "(a group without id)") for c in group.children)
        raise EditRefused(
            f"group {shown_id(group_id)} is not empty (it holds {names}): "
            "move or delete its children first"
        )
    detail = {"object": _to_json(group), **_place(node)}
    _remove_children(new.arbitration, _first_only(lambda child: _is_group(child, group_id)))
    return _edit(draft, new, DELETE, "group", group_id, detail)


# --------------------------------------------------------------------------------------------
# Promotions


def _promotion_index(program: pb.Program, promotion_id: str) -> int:
    i = _index_of(program.promotions, promotion_id)
    if i is None:
        raise NotFound("promotion", promotion_id)
    return i


def _refuse_ended(promotion: pb.Promotion, doing: str) -> None:
    if promotion.status == _ENDED:
        raise EditRefused(
            f"promotion {shown_id(promotion.id)} is ENDED, and ENDED is final: it cannot be "
            f"{doing} (ClonePromotion makes a new DRAFT copy)"
        )


def _check_new_promotion_id(program: pb.Program, new_id: str) -> None:
    """A new promotion's id must be free among promotions and groups (they share the tree).

    A listing of that id the tree holds already without a promotion (a dangling one, from an
    import) is no obstacle: it gives way to the place the edit gives the new promotion.
    """
    if _index_of(program.promotions, new_id) is not None:
        raise AlreadyExists("promotion", new_id)
    if new_id in _group_ids(program.arbitration):
        raise AlreadyExists("group", new_id, _SHARED_TREE)


def _create_promotion(draft: pb.Program, request: admin_pb2.CreatePromotionRequest) -> Edit:
    if not request.HasField("promotion"):
        raise _invalid("promotion", "the promotion to create is missing")
    promotion = _copy(request.promotion)
    if not promotion.id:
        raise _invalid("promotion.id", "must not be empty")
    _check_new_promotion_id(draft, promotion.id)
    if _find_group(draft.arbitration, request.group) is None:
        raise NotFound("group", request.group)
    if promotion.status == pb.PROMOTION_STATUS_UNSPECIFIED:
        promotion.status = pb.PROMOTION_STATUS_DRAFT
    new = _copy(draft)
    _make_explicit(new)
    _remove_children(new.arbitration, lambda child: _is_promotion(child, promotion.id))
    new.promotions.add().CopyFrom(promotion)
    group = _find_group(new.arbitration, request.group)
    assert group is not None
    group.children.add(promotion=promotion.id)
    detail = {
        "object": _to_json(promotion),
        "group": request.group,
        "position": len(group.children) - 1,
    }
    return _edit(draft, new, CREATE, "promotion", promotion.id, detail)


def _update_promotion(draft: pb.Program, request: admin_pb2.UpdatePromotionRequest) -> Edit:
    if not request.HasField("promotion"):
        raise _invalid("promotion", "the promotion to write is missing")
    promotion = _copy(request.promotion)
    if not promotion.id:
        raise _invalid("promotion.id", "must not be empty")
    new = _copy(draft)
    current = new.promotions[_promotion_index(new, promotion.id)]
    _refuse_ended(current, "updated")
    if promotion.status == pb.PROMOTION_STATUS_UNSPECIFIED:
        promotion.status = current.status
    elif promotion.status != current.status:
        raise _invalid(
            "promotion.status",
            "UpdatePromotion keeps the status: ActivatePromotion, DeactivatePromotion and "
            "EndPromotion change it",
        )
    changes = _changes(current, promotion)
    current.CopyFrom(promotion)
    return _edit(draft, new, UPDATE, "promotion", promotion.id, {"changed": changes})


def _set_status(draft: pb.Program, request: admin_pb2.PromotionRef, action: str) -> Edit:
    _require(request, "promotion")
    new = _copy(draft)
    promotion = new.promotions[_promotion_index(new, request.promotion)]
    before = promotion.status
    if action == ACTIVATE:
        _refuse_ended(promotion, "activated")
        promotion.status = pb.PROMOTION_STATUS_ACTIVE
    elif action == DEACTIVATE:
        _refuse_ended(promotion, "deactivated")
        # Only a running promotion stops; a DRAFT or INACTIVE one is not running already.
        if before == pb.PROMOTION_STATUS_ACTIVE:
            promotion.status = pb.PROMOTION_STATUS_INACTIVE
    else:
        promotion.status = _ENDED  # ending an ENDED promotion again changes nothing
    name = pb.PromotionStatus.Name
    detail: dict[str, Any] = {"changed": {}}
    if promotion.status != before:
        detail = {"changed": {"status": {"before": name(before), "after": name(promotion.status)}}}
    return _edit(draft, new, action, "promotion", request.promotion, detail)


def _clone_promotion(draft: pb.Program, request: admin_pb2.ClonePromotionRequest) -> Edit:
    _require(request, "promotion", "new_id")
    i = _promotion_index(draft, request.promotion)
    _check_new_promotion_id(draft, request.new_id)
    new = _copy(draft)
    _make_explicit(new)
    _remove_children(new.arbitration, lambda child: _is_promotion(child, request.new_id))
    clone = _copy(new.promotions[i])
    clone.id = request.new_id
    clone.status = pb.PROMOTION_STATUS_DRAFT
    _insert(new.promotions, i + 1, clone)
    node = _promotion_node(new.arbitration, request.promotion)
    assert node is not None  # listed, or made explicit just now
    _insert(node.parent.children, node.index + 1, pb.Child(promotion=clone.id))
    detail = {
        "from": request.promotion,
        "object": _to_json(clone),
        "group": node.parent_label,
        "position": node.index + 1,
    }
    return _edit(draft, new, CLONE, "promotion", clone.id, detail)


# --------------------------------------------------------------------------------------------
# Groups and the tree


def _upsert_group(draft: pb.Program, request: admin_pb2.UpsertGroupRequest) -> Edit:
    if not request.HasField("group"):
        raise _invalid("group", "the group to write is missing")
    group = request.group
    violations: list[FieldViolation] = []
    if not group.id:
        violations.append(FieldViolation("group.id", "must not be empty"))
    if group.children:
        violations.append(
            FieldViolation(
                "group.children",
                "must be empty: CreatePromotion, MoveNode and ReorderGroup place a group's "
                "children",
            )
        )
    if violations:
        raise InvalidEdit(violations)
    new = _copy(draft)
    root = new.arbitration
    existing = _find_group(root, group.id)
    if existing is None:
        return _create_group(draft, new, group, request.parent)
    is_root = group.id == root.id
    current_parent = MAIN if is_root else _parent_label(root, group.id)
    if (
        request.parent
        and request.parent != current_parent
        and not (current_parent == MAIN and request.parent == root.id)
    ):
        where = "the main arbitration" if current_parent == MAIN else shown_id(current_parent)
        raise _invalid(
            "parent",
            f"group {shown_id(group.id)} sits in {where}: MoveNode moves it "
            "(leave parent empty to keep it where it is)",
        )
    changes = _changes(existing, group, _GROUP_SETTINGS)
    children = [_copy(child) for child in existing.children]
    existing.CopyFrom(group)
    _replace_all(existing.children, children)
    kind, object_id = ("program", new.id) if is_root else ("group", group.id)
    detail: dict[str, Any] = {"changed": changes}
    if is_root:
        detail["group"] = MAIN
    return _edit(draft, new, UPDATE, kind, object_id, detail)


def _parent_label(root: pb.Group, group_id: str) -> str:
    node = _group_node(root, group_id)
    assert node is not None
    return node.parent_label


def _create_group(draft: pb.Program, new: pb.Program, group: pb.Group, parent_id: str) -> Edit:
    if _promotion_known(new, group.id):
        raise AlreadyExists("promotion", group.id, _SHARED_TREE)
    if _find_group(new.arbitration, parent_id) is None:
        raise NotFound("group", parent_id)
    _make_explicit(new)
    parent = _find_group(new.arbitration, parent_id)
    assert parent is not None
    parent.children.add().group.CopyFrom(group)
    detail = {"object": _to_json(group), "group": parent_id, "position": len(parent.children) - 1}
    return _edit(draft, new, CREATE, "group", group.id, detail)


def _move_node(draft: pb.Program, request: admin_pb2.MoveNodeRequest) -> Edit:
    _require(request, "node")
    node_id, to_group = request.node, request.to_group
    root = draft.arbitration
    if node_id == root.id:
        raise _invalid("node", "the main arbitration cannot be moved")
    is_promotion = _promotion_known(draft, node_id)
    group = _find_nested_group(root, node_id)
    if is_promotion and group is not None:
        raise _invalid(
            "node", f"{shown_id(node_id)} names both a promotion and a group: rename one first"
        )
    if not is_promotion and group is None:
        raise NotFound("promotion or group", node_id)
    target = _find_group(root, to_group)
    if target is None:
        raise NotFound("group", to_group)
    if group is not None and (to_group == node_id or to_group in _group_ids(group)):
        raise _invalid(
            "to_group",
            f"group {shown_id(node_id)} cannot move into itself or a group inside it",
        )
    if request.position < 0:
        raise _invalid("position", "must not be negative")
    new = _copy(draft)
    _make_explicit(new)
    if group is not None:
        before = _group_node(new.arbitration, node_id)
        picked = _first_only(lambda child: _is_group(child, node_id))
        kind = "group"
    else:
        before = _promotion_node(new.arbitration, node_id)
        # Every listing goes: the promotion ends up listed exactly once, where the request says.
        picked = lambda child: _is_promotion(child, node_id)  # noqa: E731
        kind = "promotion"
    source = _place(before)
    moved = _remove_children(new.arbitration, picked)
    child = moved[0] if moved else pb.Child(promotion=node_id)
    target = _find_group(new.arbitration, to_group)
    assert target is not None
    if request.position > len(target.children):
        raise _invalid(
            "position",
            f"must be 0..{len(target.children)} (the number of the group's other children)",
        )
    _insert(target.children, request.position, child)
    detail = {"from": source, "to": {"group": to_group, "position": request.position}}
    return _edit(draft, new, MOVE, kind, node_id, detail)


def _reorder_group(draft: pb.Program, request: admin_pb2.ReorderGroupRequest) -> Edit:
    new = _copy(draft)
    _make_explicit(new)
    group = _find_group(new.arbitration, request.group)
    if group is None:
        raise NotFound("group", request.group)
    current = [_child_key(child) for child in group.children]
    if None in current:
        raise EditRefused(
            f"group {shown_id(request.group)} holds a child group without an id, which "
            "ReorderGroup cannot name: give it an id in the program file"
        )
    keys = cast(list[str], current)
    if len(set(keys)) != len(keys):
        raise EditRefused(
            f"group {shown_id(request.group)} lists one id twice: MoveNode or DeleteObject "
            "the duplicate first"
        )
    wanted = list(request.children)
    if sorted(wanted) != sorted(keys):
        missing = [k for k in keys if k not in wanted]
        unknown = [k for k in wanted if k not in keys]
        twice = sorted({k for k in wanted if wanted.count(k) > 1})
        parts = []
        if missing:
            parts.append(f"missing {', '.join(map(shown_id, missing))}")
        if unknown:
            parts.append(f"not children of the group {', '.join(map(shown_id, unknown))}")
        if twice:
            parts.append(f"listed twice {', '.join(map(shown_id, twice))}")
        raise _invalid(
            "children",
            "must list the group's current children exactly once each: " + "; ".join(parts),
        )
    by_key = {key: child for key, child in zip(keys, group.children, strict=True)}
    _replace_all(group.children, [by_key[key] for key in wanted])
    kind, object_id = _tree_target(new, request.group)
    detail = {"group": request.group, "before": keys, "after": wanted}
    return _edit(draft, new, REORDER, kind, object_id, detail)


# --------------------------------------------------------------------------------------------
# The program's own fields


def _update_program(draft: pb.Program, request: admin_pb2.UpdateProgramRequest) -> Edit:
    if not request.HasField("program"):
        raise _invalid("program", "the program's fields are missing")
    program = request.program
    if not program.id:
        raise _invalid("program.id", "must not be empty")
    if program.id != draft.id:
        raise _invalid(
            "program.id",
            f"is {shown_id(program.id)}, but the draft is of program {shown_id(draft.id)}: "
            "a program's id never changes",
        )
    if program.database and program.database != draft.database:
        raise EditRefused(
            f"program {shown_id(draft.id)} is bound to database {shown_id(draft.database)}: "
            "a program's database never changes after creation"
        )
    new = _copy(draft)
    changes = _changes(draft, program, _UPDATABLE_PROGRAM_FIELDS)
    for name in _UPDATABLE_PROGRAM_FIELDS:
        setattr(new, name, getattr(program, name))
    if program.HasField("arbitration"):
        root = program.arbitration
        if root.id and root.id != draft.arbitration.id:
            if _find_nested_group(draft.arbitration, root.id) is not None:
                raise AlreadyExists("group", root.id)
            if _promotion_known(draft, root.id):
                raise AlreadyExists("promotion", root.id, _SHARED_TREE)
        for name, change in _changes(draft.arbitration, root, _GROUP_SETTINGS).items():
            changes[f"arbitration.{name}"] = change
        children = [_copy(child) for child in new.arbitration.children]
        new.arbitration.CopyFrom(root)
        _replace_all(new.arbitration.children, children)
    return _edit(draft, new, UPDATE, "program", draft.id, {"changed": changes})


# --------------------------------------------------------------------------------------------
# Dispatch

_Handler = Callable[[pb.Program, Any], Edit]


def _upsert_handler(section: _Section) -> _Handler:
    return lambda draft, request: _upsert(draft, section, request)


_HANDLERS: Final[dict[str, _Handler]] = {
    **{rpc: _upsert_handler(section) for rpc, section in _UPSERT_SECTION_BY_RPC.items()},
    "ClonePointType": _clone_point_type,
    "DeleteObject": _delete,
    "CreatePromotion": _create_promotion,
    "UpdatePromotion": _update_promotion,
    "ActivatePromotion": lambda draft, request: _set_status(draft, request, ACTIVATE),
    "DeactivatePromotion": lambda draft, request: _set_status(draft, request, DEACTIVATE),
    "EndPromotion": lambda draft, request: _set_status(draft, request, END),
    "ClonePromotion": _clone_promotion,
    "UpsertGroup": _upsert_group,
    "MoveNode": _move_node,
    "ReorderGroup": _reorder_group,
    "UpdateProgram": _update_program,
}

EDIT_RPCS: Final[frozenset[str]] = frozenset(_HANDLERS)


def _request_type(rpc: str) -> type[Message]:
    method = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].methods_by_name[rpc]
    return cast(type[Message], getattr(admin_pb2, method.input_type.name))


_REQUEST_TYPES: Final = {rpc: _request_type(rpc) for rpc in EDIT_RPCS}


_TIMESTAMP: Final = "google.protobuf.Timestamp"


def timestamp_violations(message: Message, path: str) -> list[FieldViolation]:
    """Every Timestamp inside `message` (named by its path below `path`) that lies outside the
    range the server accepts (state/instants.py: the engine puts a program's instants in its
    time zone too), or whose nanos are outside 0..999,999,999."""
    found: list[FieldViolation] = []
    for field, value in message.ListFields():
        name = f"{path}.{field.name}" if path else field.name
        if field.message_type is None:
            continue
        items = value if field.is_repeated else (value,)
        if field.message_type.GetOptions().map_entry:
            continue  # the program's maps hold scalars only
        for index, item in enumerate(items):
            where = f"{name}[{index}]" if field.is_repeated else name
            if field.message_type.full_name == _TIMESTAMP:
                if not timestamp_valid(item.seconds, item.nanos):
                    found.append(FieldViolation(where, TIMESTAMP_RANGE))
            else:
                found.extend(timestamp_violations(item, where))
    return found


def apply_edit(draft: pb.Program, rpc: str, request: Message) -> Edit:
    """Apply the AdminService edit `rpc` (its request message) to a copy of `draft`.

    Raises InvalidEdit (a malformed request, naming the request field), NotFound (an object the
    request names is not in the draft), AlreadyExists (a new id in use) or EditRefused (the
    draft's state refuses the edit). `draft` itself is never changed.
    """
    handler = _HANDLERS.get(rpc)
    if handler is None:
        raise ValueError(f"{rpc!r} is not a draft edit; one of {sorted(EDIT_RPCS)}")
    expected = _REQUEST_TYPES[rpc]
    if not isinstance(request, expected):
        raise TypeError(f"{rpc} takes {expected.__name__}, not {type(request).__name__}")
    bad = timestamp_violations(request, "")
    if bad:
        raise InvalidEdit(bad)
    return handler(draft, request)


# --------------------------------------------------------------------------------------------
# The diff


def _keyed(items: Sequence[Any]) -> dict[tuple[str, int], Message]:
    """Objects by (id, occurrence): an invalid draft may hold one id twice."""
    seen: dict[str, int] = {}
    out: dict[tuple[str, int], Message] = {}
    for item in items:
        n = seen.get(item.id, 0)
        seen[item.id] = n + 1
        out[(item.id, n)] = item
    return out


# A group's children as the diff compares them: promotions and named groups by id, an anonymous
# group by its settings and its own children (it is part of its nearest named group).
_Shape = tuple[Any, ...]


def _settings_bytes(group: pb.Group) -> bytes:
    settings = _copy(group)
    settings.ClearField("children")
    return settings.SerializeToString(deterministic=True)


def _shape(group: pb.Group, extra: Sequence[str] = ()) -> _Shape:
    out: list[Any] = []
    for child in group.children:
        which = child.WhichOneof("node")
        if which == "promotion":
            out.append(("promotion", child.promotion))
        elif which == "group" and child.group.id:
            out.append(("group", child.group.id))
        elif which == "group":
            out.append(("anonymous", _settings_bytes(child.group), _shape(child.group)))
        else:
            out.append(("empty",))
    out.extend(("promotion", promotion_id) for promotion_id in extra)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _Tree:
    """What the diff reads of a program's tree."""

    root_shape: _Shape  # the main arbitration's children, the unlisted promotions included
    groups: dict[tuple[str, int], Message]  # the named groups below the root
    placement: dict[str, str]  # promotion or group id -> the nearest named group holding it

    @staticmethod
    def of(program: pb.Program | None) -> _Tree:
        if program is None:
            return _Tree((), {}, {})
        root = program.arbitration
        groups: list[pb.Group] = []
        placement: dict[str, str] = {}
        for node in _walk(root):
            key = _child_key(node.child)
            if node.child.WhichOneof("node") == "group" and key is not None:
                groups.append(node.child.group)
            if key is not None:
                placement.setdefault(key, node.parent_label)
        unlisted = _unlisted_promotions(program)
        for promotion_id in unlisted:
            placement.setdefault(promotion_id, MAIN)
        return _Tree(_shape(root, unlisted), _keyed(groups), placement)


def _entry(
    kind: str, object_id: str, change: str, fields: Sequence[str] = ()
) -> admin_pb2.DiffEntry:
    return admin_pb2.DiffEntry(object_kind=kind, id=object_id, change=change, fields=fields)


def _diff_program(
    applied: pb.Program | None, draft: pb.Program, old: _Tree, new: _Tree
) -> list[admin_pb2.DiffEntry]:
    if applied is None:
        return [_entry("program", draft.id, "added")]
    fields = _differing_paths(applied, draft, _PROGRAM_FIELDS)
    settings = _differing_paths(applied.arbitration, draft.arbitration, _GROUP_SETTINGS)
    fields.extend(f"arbitration.{name}" for name in settings)
    if old.root_shape != new.root_shape:
        fields.append("arbitration.children")
    return [_entry("program", draft.id, "changed", fields)] if fields else []


def _diff_objects(
    kind: str,
    before: dict[tuple[str, int], Message],
    after: dict[tuple[str, int], Message],
    extra: Callable[[str, Message, Message], list[str]],
) -> list[tuple[tuple[str, int], admin_pb2.DiffEntry]]:
    out: list[tuple[tuple[str, int], admin_pb2.DiffEntry]] = []
    for key in before.keys() | after.keys():
        object_id = key[0]
        if key not in after:
            out.append((key, _entry(kind, object_id, "removed")))
        elif key not in before:
            out.append((key, _entry(kind, object_id, "added")))
        else:
            fields = extra(object_id, before[key], after[key])
            if fields:
                out.append((key, _entry(kind, object_id, "changed", fields)))
    out.sort(key=lambda pair: pair[0])
    return out


def diff(applied: pb.Program | None, draft: pb.Program) -> list[admin_pb2.DiffEntry]:
    """What `draft` changes against `applied` (None: nothing applied yet, everything is added).

    One entry per object added, removed or changed, by kind in OBJECT_KINDS order, then by id.
    A "changed" entry lists the paths of the fields that differ, in proto order, each starting
    with a top-level field of the object (`name`, `ratio.money`,
    `product_rules[0].benefits[0].discount.percent_bp`; see `_differing_paths`). The tree: a
    group's `children` (the main arbitration's: the program's `arbitration.children`) differ
    when the list of its children's ids, in order, does; a promotion or named group that now
    sits in another group also has the pseudo-field PLACEMENT, last. A promotion no group lists
    counts as the last child of the main arbitration, so listing it there explicitly is no
    change.
    """
    old, new = _Tree.of(applied), _Tree.of(draft)
    entries = _diff_program(applied, draft, old, new)

    def placement(object_id: str) -> list[str]:
        moved = old.placement.get(object_id, MAIN) != new.placement.get(object_id, MAIN)
        return [PLACEMENT] if moved else []

    for section in _SECTIONS:
        items_before = _keyed(getattr(applied, section.field)) if applied is not None else {}
        items_after = _keyed(getattr(draft, section.field))
        is_promotion = section.kind == "promotion"

        def fields(
            object_id: str, a: Message, b: Message, is_promotion: bool = is_promotion
        ) -> list[str]:
            out = _differing_paths(a, b)
            return out + placement(object_id) if is_promotion else out

        entries.extend(e for _, e in _diff_objects(section.kind, items_before, items_after, fields))

    def group_fields(object_id: str, a: Message, b: Message) -> list[str]:
        ga, gb = cast(pb.Group, a), cast(pb.Group, b)
        out = _differing_paths(ga, gb, _GROUP_SETTINGS)
        if _shape(ga) != _shape(gb):
            out.append("children")
        return out + placement(object_id)

    entries.extend(
        e
        for _, e in _diff_objects(
            "group",
            old.groups,
            new.groups,
            group_fields,
        )
    )
    return entries
