import datetime

from arbiter.v1 import checkout_pb2 as _checkout_pb2
from arbiter.v1 import program_pb2 as _program_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TraceNodeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRACE_NODE_KIND_UNSPECIFIED: _ClassVar[TraceNodeKind]
    TRACE_NODE_KIND_PROMOTION: _ClassVar[TraceNodeKind]
    TRACE_NODE_KIND_GROUP: _ClassVar[TraceNodeKind]

class TraceVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRACE_VERDICT_UNSPECIFIED: _ClassVar[TraceVerdict]
    TRACE_VERDICT_APPLIED: _ClassVar[TraceVerdict]
    TRACE_VERDICT_CUT: _ClassVar[TraceVerdict]
    TRACE_VERDICT_NOT_SELECTED: _ClassVar[TraceVerdict]
    TRACE_VERDICT_NO_EFFECT: _ClassVar[TraceVerdict]
    TRACE_VERDICT_OUTRANKED: _ClassVar[TraceVerdict]

class TraceReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRACE_REASON_UNSPECIFIED: _ClassVar[TraceReason]
    TRACE_REASON_STATUS: _ClassVar[TraceReason]
    TRACE_REASON_PERIOD: _ClassVar[TraceReason]
    TRACE_REASON_AVAILABILITY: _ClassVar[TraceReason]
    TRACE_REASON_AUDIENCE: _ClassVar[TraceReason]
    TRACE_REASON_CHANNEL: _ClassVar[TraceReason]
    TRACE_REASON_PROMO_CODE: _ClassVar[TraceReason]
TRACE_NODE_KIND_UNSPECIFIED: TraceNodeKind
TRACE_NODE_KIND_PROMOTION: TraceNodeKind
TRACE_NODE_KIND_GROUP: TraceNodeKind
TRACE_VERDICT_UNSPECIFIED: TraceVerdict
TRACE_VERDICT_APPLIED: TraceVerdict
TRACE_VERDICT_CUT: TraceVerdict
TRACE_VERDICT_NOT_SELECTED: TraceVerdict
TRACE_VERDICT_NO_EFFECT: TraceVerdict
TRACE_VERDICT_OUTRANKED: TraceVerdict
TRACE_REASON_UNSPECIFIED: TraceReason
TRACE_REASON_STATUS: TraceReason
TRACE_REASON_PERIOD: TraceReason
TRACE_REASON_AVAILABILITY: TraceReason
TRACE_REASON_AUDIENCE: TraceReason
TRACE_REASON_CHANNEL: TraceReason
TRACE_REASON_PROMO_CODE: TraceReason

class CreateProgramRequest(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: _program_pb2.Program
    def __init__(self, program: _Optional[_Union[_program_pb2.Program, _Mapping]] = ...) -> None: ...

class CreateProgramResponse(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: _program_pb2.Program
    def __init__(self, program: _Optional[_Union[_program_pb2.Program, _Mapping]] = ...) -> None: ...

class UpdateProgramRequest(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: _program_pb2.Program
    def __init__(self, program: _Optional[_Union[_program_pb2.Program, _Mapping]] = ...) -> None: ...

class UpdateProgramResponse(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: _program_pb2.Program
    def __init__(self, program: _Optional[_Union[_program_pb2.Program, _Mapping]] = ...) -> None: ...

class GetProgramRequest(_message.Message):
    __slots__ = ("program", "draft")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    program: str
    draft: bool
    def __init__(self, program: _Optional[str] = ..., draft: _Optional[bool] = ...) -> None: ...

class GetProgramResponse(_message.Message):
    __slots__ = ("program", "version", "has_draft_changes")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HAS_DRAFT_CHANGES_FIELD_NUMBER: _ClassVar[int]
    program: _program_pb2.Program
    version: int
    has_draft_changes: bool
    def __init__(self, program: _Optional[_Union[_program_pb2.Program, _Mapping]] = ..., version: _Optional[int] = ..., has_draft_changes: _Optional[bool] = ...) -> None: ...

class ListProgramsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProgramsResponse(_message.Message):
    __slots__ = ("programs",)
    PROGRAMS_FIELD_NUMBER: _ClassVar[int]
    programs: _containers.RepeatedCompositeFieldContainer[ProgramSummary]
    def __init__(self, programs: _Optional[_Iterable[_Union[ProgramSummary, _Mapping]]] = ...) -> None: ...

class ProgramSummary(_message.Message):
    __slots__ = ("id", "name", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    version: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class EditResponse(_message.Message):
    __slots__ = ("draft",)
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    draft: _program_pb2.Program
    def __init__(self, draft: _Optional[_Union[_program_pb2.Program, _Mapping]] = ...) -> None: ...

class UpsertPointTypeRequest(_message.Message):
    __slots__ = ("program", "point_type")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    program: str
    point_type: _program_pb2.PointType
    def __init__(self, program: _Optional[str] = ..., point_type: _Optional[_Union[_program_pb2.PointType, _Mapping]] = ...) -> None: ...

class ClonePointTypeRequest(_message.Message):
    __slots__ = ("program", "point_type", "new_id")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    NEW_ID_FIELD_NUMBER: _ClassVar[int]
    program: str
    point_type: str
    new_id: str
    def __init__(self, program: _Optional[str] = ..., point_type: _Optional[str] = ..., new_id: _Optional[str] = ...) -> None: ...

class UpsertTierGroupRequest(_message.Message):
    __slots__ = ("program", "tier_group")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    TIER_GROUP_FIELD_NUMBER: _ClassVar[int]
    program: str
    tier_group: _program_pb2.TierGroup
    def __init__(self, program: _Optional[str] = ..., tier_group: _Optional[_Union[_program_pb2.TierGroup, _Mapping]] = ...) -> None: ...

class UpsertPartnerRequest(_message.Message):
    __slots__ = ("program", "partner")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    program: str
    partner: _program_pb2.Partner
    def __init__(self, program: _Optional[str] = ..., partner: _Optional[_Union[_program_pb2.Partner, _Mapping]] = ...) -> None: ...

class UpsertMemberSegmentRequest(_message.Message):
    __slots__ = ("program", "segment")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    program: str
    segment: _program_pb2.MemberSegment
    def __init__(self, program: _Optional[str] = ..., segment: _Optional[_Union[_program_pb2.MemberSegment, _Mapping]] = ...) -> None: ...

class UpsertProductSegmentRequest(_message.Message):
    __slots__ = ("program", "segment")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    program: str
    segment: _program_pb2.ProductSegment
    def __init__(self, program: _Optional[str] = ..., segment: _Optional[_Union[_program_pb2.ProductSegment, _Mapping]] = ...) -> None: ...

class UpsertOrderSegmentRequest(_message.Message):
    __slots__ = ("program", "segment")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    program: str
    segment: _program_pb2.OrderSegment
    def __init__(self, program: _Optional[str] = ..., segment: _Optional[_Union[_program_pb2.OrderSegment, _Mapping]] = ...) -> None: ...

class UpsertPromoCodePoolRequest(_message.Message):
    __slots__ = ("program", "pool")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    program: str
    pool: _program_pb2.PromoCodePool
    def __init__(self, program: _Optional[str] = ..., pool: _Optional[_Union[_program_pb2.PromoCodePool, _Mapping]] = ...) -> None: ...

class UpsertTriggerPromotionRequest(_message.Message):
    __slots__ = ("program", "trigger_promotion")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_PROMOTION_FIELD_NUMBER: _ClassVar[int]
    program: str
    trigger_promotion: _program_pb2.TriggerPromotion
    def __init__(self, program: _Optional[str] = ..., trigger_promotion: _Optional[_Union[_program_pb2.TriggerPromotion, _Mapping]] = ...) -> None: ...

class DeleteObjectRequest(_message.Message):
    __slots__ = ("program", "object_kind", "id")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    OBJECT_KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    program: str
    object_kind: str
    id: str
    def __init__(self, program: _Optional[str] = ..., object_kind: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class CreatePromotionRequest(_message.Message):
    __slots__ = ("program", "promotion", "group")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    program: str
    promotion: _program_pb2.Promotion
    group: str
    def __init__(self, program: _Optional[str] = ..., promotion: _Optional[_Union[_program_pb2.Promotion, _Mapping]] = ..., group: _Optional[str] = ...) -> None: ...

class UpdatePromotionRequest(_message.Message):
    __slots__ = ("program", "promotion")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    program: str
    promotion: _program_pb2.Promotion
    def __init__(self, program: _Optional[str] = ..., promotion: _Optional[_Union[_program_pb2.Promotion, _Mapping]] = ...) -> None: ...

class PromotionRef(_message.Message):
    __slots__ = ("program", "promotion")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    program: str
    promotion: str
    def __init__(self, program: _Optional[str] = ..., promotion: _Optional[str] = ...) -> None: ...

class ClonePromotionRequest(_message.Message):
    __slots__ = ("program", "promotion", "new_id")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    NEW_ID_FIELD_NUMBER: _ClassVar[int]
    program: str
    promotion: str
    new_id: str
    def __init__(self, program: _Optional[str] = ..., promotion: _Optional[str] = ..., new_id: _Optional[str] = ...) -> None: ...

class UpsertGroupRequest(_message.Message):
    __slots__ = ("program", "group", "parent")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    program: str
    group: _program_pb2.Group
    parent: str
    def __init__(self, program: _Optional[str] = ..., group: _Optional[_Union[_program_pb2.Group, _Mapping]] = ..., parent: _Optional[str] = ...) -> None: ...

class MoveNodeRequest(_message.Message):
    __slots__ = ("program", "node", "to_group", "position")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    TO_GROUP_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    program: str
    node: str
    to_group: str
    position: int
    def __init__(self, program: _Optional[str] = ..., node: _Optional[str] = ..., to_group: _Optional[str] = ..., position: _Optional[int] = ...) -> None: ...

class ReorderGroupRequest(_message.Message):
    __slots__ = ("program", "group", "children")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    program: str
    group: str
    children: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, program: _Optional[str] = ..., group: _Optional[str] = ..., children: _Optional[_Iterable[str]] = ...) -> None: ...

class ImportProgramRequest(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: _program_pb2.Program
    def __init__(self, program: _Optional[_Union[_program_pb2.Program, _Mapping]] = ...) -> None: ...

class ImportProgramResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExportProgramRequest(_message.Message):
    __slots__ = ("program", "draft")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    program: str
    draft: bool
    def __init__(self, program: _Optional[str] = ..., draft: _Optional[bool] = ...) -> None: ...

class ExportProgramResponse(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: _program_pb2.Program
    def __init__(self, program: _Optional[_Union[_program_pb2.Program, _Mapping]] = ...) -> None: ...

class ApplyRequest(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: str
    def __init__(self, program: _Optional[str] = ...) -> None: ...

class ApplyResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class RevertRequest(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: str
    def __init__(self, program: _Optional[str] = ...) -> None: ...

class RevertResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetDraftDiffRequest(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: str
    def __init__(self, program: _Optional[str] = ...) -> None: ...

class GetDraftDiffResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[DiffEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[DiffEntry, _Mapping]]] = ...) -> None: ...

class DiffEntry(_message.Message):
    __slots__ = ("object_kind", "id", "change", "fields")
    OBJECT_KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    object_kind: str
    id: str
    change: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, object_kind: _Optional[str] = ..., id: _Optional[str] = ..., change: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ...) -> None: ...

class TestCalculateOrderRequest(_message.Message):
    __slots__ = ("program", "member_id", "member_context", "order", "use_draft")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    USE_DRAFT_FIELD_NUMBER: _ClassVar[int]
    program: str
    member_id: str
    member_context: _checkout_pb2.MemberContext
    order: _checkout_pb2.Order
    use_draft: bool
    def __init__(self, program: _Optional[str] = ..., member_id: _Optional[str] = ..., member_context: _Optional[_Union[_checkout_pb2.MemberContext, _Mapping]] = ..., order: _Optional[_Union[_checkout_pb2.Order, _Mapping]] = ..., use_draft: _Optional[bool] = ...) -> None: ...

class TestCalculateOrderResponse(_message.Message):
    __slots__ = ("result", "balances", "trace")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    BALANCES_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    result: _checkout_pb2.CalculateOrderResponse
    balances: _containers.RepeatedCompositeFieldContainer[BalanceChange]
    trace: _containers.RepeatedCompositeFieldContainer[TraceEntry]
    def __init__(self, result: _Optional[_Union[_checkout_pb2.CalculateOrderResponse, _Mapping]] = ..., balances: _Optional[_Iterable[_Union[BalanceChange, _Mapping]]] = ..., trace: _Optional[_Iterable[_Union[TraceEntry, _Mapping]]] = ...) -> None: ...

class BalanceChange(_message.Message):
    __slots__ = ("point_type", "before", "after", "pending")
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    point_type: str
    before: int
    after: int
    pending: int
    def __init__(self, point_type: _Optional[str] = ..., before: _Optional[int] = ..., after: _Optional[int] = ..., pending: _Optional[int] = ...) -> None: ...

class TraceEntry(_message.Message):
    __slots__ = ("node", "parent", "kind", "verdict", "reason", "benefit", "cut", "line_ids", "detail")
    NODE_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BENEFIT_FIELD_NUMBER: _ClassVar[int]
    CUT_FIELD_NUMBER: _ClassVar[int]
    LINE_IDS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    node: str
    parent: str
    kind: TraceNodeKind
    verdict: TraceVerdict
    reason: TraceReason
    benefit: int
    cut: int
    line_ids: _containers.RepeatedScalarFieldContainer[str]
    detail: str
    def __init__(self, node: _Optional[str] = ..., parent: _Optional[str] = ..., kind: _Optional[_Union[TraceNodeKind, str]] = ..., verdict: _Optional[_Union[TraceVerdict, str]] = ..., reason: _Optional[_Union[TraceReason, str]] = ..., benefit: _Optional[int] = ..., cut: _Optional[int] = ..., line_ids: _Optional[_Iterable[str]] = ..., detail: _Optional[str] = ...) -> None: ...

class GetProgramReportRequest(_message.Message):
    __slots__ = ("program", "to")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    program: str
    to: _timestamp_pb2.Timestamp
    def __init__(self, program: _Optional[str] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., **kwargs) -> None: ...

class GetProgramReportResponse(_message.Message):
    __slots__ = ("members", "point_types", "orders", "member_counts", "order_counts", "days", "promotions")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    POINT_TYPES_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_COUNTS_FIELD_NUMBER: _ClassVar[int]
    ORDER_COUNTS_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    PROMOTIONS_FIELD_NUMBER: _ClassVar[int]
    members: int
    point_types: _containers.RepeatedCompositeFieldContainer[PointTypeReport]
    orders: int
    member_counts: MemberCounts
    order_counts: OrderCounts
    days: _containers.RepeatedCompositeFieldContainer[DayReport]
    promotions: _containers.RepeatedCompositeFieldContainer[PromotionReport]
    def __init__(self, members: _Optional[int] = ..., point_types: _Optional[_Iterable[_Union[PointTypeReport, _Mapping]]] = ..., orders: _Optional[int] = ..., member_counts: _Optional[_Union[MemberCounts, _Mapping]] = ..., order_counts: _Optional[_Union[OrderCounts, _Mapping]] = ..., days: _Optional[_Iterable[_Union[DayReport, _Mapping]]] = ..., promotions: _Optional[_Iterable[_Union[PromotionReport, _Mapping]]] = ...) -> None: ...

class MemberCounts(_message.Message):
    __slots__ = ("enrolled", "active")
    ENROLLED_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    enrolled: int
    active: int
    def __init__(self, enrolled: _Optional[int] = ..., active: _Optional[int] = ...) -> None: ...

class OrderCounts(_message.Message):
    __slots__ = ("confirmed", "cancelled", "returned")
    CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    RETURNED_FIELD_NUMBER: _ClassVar[int]
    confirmed: int
    cancelled: int
    returned: int
    def __init__(self, confirmed: _Optional[int] = ..., cancelled: _Optional[int] = ..., returned: _Optional[int] = ...) -> None: ...

class DayReport(_message.Message):
    __slots__ = ("date", "orders", "revenue", "discount", "paid_with_points", "accrued", "redeemed")
    DATE_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    PAID_WITH_POINTS_FIELD_NUMBER: _ClassVar[int]
    ACCRUED_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_FIELD_NUMBER: _ClassVar[int]
    date: str
    orders: int
    revenue: int
    discount: int
    paid_with_points: int
    accrued: int
    redeemed: int
    def __init__(self, date: _Optional[str] = ..., orders: _Optional[int] = ..., revenue: _Optional[int] = ..., discount: _Optional[int] = ..., paid_with_points: _Optional[int] = ..., accrued: _Optional[int] = ..., redeemed: _Optional[int] = ...) -> None: ...

class PromotionReport(_message.Message):
    __slots__ = ("promotion", "orders", "discount", "points")
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    promotion: str
    orders: int
    discount: int
    points: int
    def __init__(self, promotion: _Optional[str] = ..., orders: _Optional[int] = ..., discount: _Optional[int] = ..., points: _Optional[int] = ...) -> None: ...

class BacktestDraftRequest(_message.Message):
    __slots__ = ("program", "to", "limit")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    program: str
    to: _timestamp_pb2.Timestamp
    limit: int
    def __init__(self, program: _Optional[str] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ..., **kwargs) -> None: ...

class BacktestDraftResponse(_message.Message):
    __slots__ = ("progress", "summary")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    progress: BacktestProgress
    summary: BacktestSummary
    def __init__(self, progress: _Optional[_Union[BacktestProgress, _Mapping]] = ..., summary: _Optional[_Union[BacktestSummary, _Mapping]] = ...) -> None: ...

class BacktestProgress(_message.Message):
    __slots__ = ("done", "total")
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    done: int
    total: int
    def __init__(self, done: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class BacktestMoney(_message.Message):
    __slots__ = ("discount", "paid_with_points", "total")
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    PAID_WITH_POINTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    discount: int
    paid_with_points: int
    total: int
    def __init__(self, discount: _Optional[int] = ..., paid_with_points: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class BacktestPoints(_message.Message):
    __slots__ = ("point_type", "before", "after")
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    point_type: str
    before: int
    after: int
    def __init__(self, point_type: _Optional[str] = ..., before: _Optional[int] = ..., after: _Optional[int] = ...) -> None: ...

class BacktestPromotionFigures(_message.Message):
    __slots__ = ("orders", "amount", "points")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    orders: int
    amount: int
    points: int
    def __init__(self, orders: _Optional[int] = ..., amount: _Optional[int] = ..., points: _Optional[int] = ...) -> None: ...

class BacktestPromotion(_message.Message):
    __slots__ = ("promotion", "before", "after")
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    promotion: str
    before: BacktestPromotionFigures
    after: BacktestPromotionFigures
    def __init__(self, promotion: _Optional[str] = ..., before: _Optional[_Union[BacktestPromotionFigures, _Mapping]] = ..., after: _Optional[_Union[BacktestPromotionFigures, _Mapping]] = ...) -> None: ...

class BacktestExample(_message.Message):
    __slots__ = ("order_id", "total_before", "total_after")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BEFORE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_AFTER_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    total_before: int
    total_after: int
    def __init__(self, order_id: _Optional[str] = ..., total_before: _Optional[int] = ..., total_after: _Optional[int] = ...) -> None: ...

class BacktestSummary(_message.Message):
    __slots__ = ("orders", "reproduced", "changed", "before", "after", "points", "promotions", "examples", "without_member_state", "failed_under_draft")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    REPRODUCED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    PROMOTIONS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    WITHOUT_MEMBER_STATE_FIELD_NUMBER: _ClassVar[int]
    FAILED_UNDER_DRAFT_FIELD_NUMBER: _ClassVar[int]
    orders: int
    reproduced: int
    changed: int
    before: BacktestMoney
    after: BacktestMoney
    points: _containers.RepeatedCompositeFieldContainer[BacktestPoints]
    promotions: _containers.RepeatedCompositeFieldContainer[BacktestPromotion]
    examples: _containers.RepeatedCompositeFieldContainer[BacktestExample]
    without_member_state: int
    failed_under_draft: int
    def __init__(self, orders: _Optional[int] = ..., reproduced: _Optional[int] = ..., changed: _Optional[int] = ..., before: _Optional[_Union[BacktestMoney, _Mapping]] = ..., after: _Optional[_Union[BacktestMoney, _Mapping]] = ..., points: _Optional[_Iterable[_Union[BacktestPoints, _Mapping]]] = ..., promotions: _Optional[_Iterable[_Union[BacktestPromotion, _Mapping]]] = ..., examples: _Optional[_Iterable[_Union[BacktestExample, _Mapping]]] = ..., without_member_state: _Optional[int] = ..., failed_under_draft: _Optional[int] = ...) -> None: ...

class PointTypeReport(_message.Message):
    __slots__ = ("point_type", "accrued", "redeemed", "expired", "outstanding")
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ACCRUED_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_FIELD_NUMBER: _ClassVar[int]
    point_type: str
    accrued: int
    redeemed: int
    expired: int
    outstanding: int
    def __init__(self, point_type: _Optional[str] = ..., accrued: _Optional[int] = ..., redeemed: _Optional[int] = ..., expired: _Optional[int] = ..., outstanding: _Optional[int] = ...) -> None: ...

class ListAuditEntriesRequest(_message.Message):
    __slots__ = ("program", "page_size", "page_token")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    program: str
    page_size: int
    page_token: str
    def __init__(self, program: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAuditEntriesResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("id", "created_at", "actor", "action", "object_kind", "object_id", "detail")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OBJECT_KIND_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    id: str
    created_at: _timestamp_pb2.Timestamp
    actor: str
    action: str
    object_kind: str
    object_id: str
    detail: str
    def __init__(self, id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., object_kind: _Optional[str] = ..., object_id: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("role", "name")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    role: str
    name: str
    def __init__(self, role: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class RevokeApiKeyRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class RevokeApiKeyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
