import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PointKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POINT_KIND_UNSPECIFIED: _ClassVar[PointKind]
    POINT_KIND_STANDARD: _ClassVar[PointKind]
    POINT_KIND_QUALIFICATION: _ClassVar[PointKind]

class PromotionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROMOTION_KIND_UNSPECIFIED: _ClassVar[PromotionKind]
    PROMOTION_KIND_DISCOUNT: _ClassVar[PromotionKind]
    PROMOTION_KIND_POINTS: _ClassVar[PromotionKind]

class PromotionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROMOTION_STATUS_UNSPECIFIED: _ClassVar[PromotionStatus]
    PROMOTION_STATUS_DRAFT: _ClassVar[PromotionStatus]
    PROMOTION_STATUS_ACTIVE: _ClassVar[PromotionStatus]
    PROMOTION_STATUS_INACTIVE: _ClassVar[PromotionStatus]
    PROMOTION_STATUS_ENDED: _ClassVar[PromotionStatus]

class AudienceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIENCE_KIND_UNSPECIFIED: _ClassVar[AudienceKind]
    AUDIENCE_KIND_ALL_MEMBERS: _ClassVar[AudienceKind]
    AUDIENCE_KIND_IN_SEGMENTS: _ClassVar[AudienceKind]
    AUDIENCE_KIND_NOT_IN_SEGMENTS: _ClassVar[AudienceKind]
    AUDIENCE_KIND_TIERS: _ClassVar[AudienceKind]
    AUDIENCE_KIND_EVERYONE: _ClassVar[AudienceKind]

class ScopeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCOPE_KIND_UNSPECIFIED: _ClassVar[ScopeKind]
    SCOPE_KIND_ALL: _ClassVar[ScopeKind]
    SCOPE_KIND_IN_SEGMENTS: _ClassVar[ScopeKind]
    SCOPE_KIND_NOT_IN_SEGMENTS: _ClassVar[ScopeKind]

class ArbitrationMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ARBITRATION_MODE_UNSPECIFIED: _ClassVar[ArbitrationMode]
    ARBITRATION_MODE_SEQUENTIAL: _ClassVar[ArbitrationMode]
    ARBITRATION_MODE_INCOMPATIBLE: _ClassVar[ArbitrationMode]
    ARBITRATION_MODE_SUMMATION: _ClassVar[ArbitrationMode]
    ARBITRATION_MODE_MAX_BENEFIT: _ClassVar[ArbitrationMode]

class BenefitArbitration(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BENEFIT_ARBITRATION_UNSPECIFIED: _ClassVar[BenefitArbitration]
    BENEFIT_ARBITRATION_PARALLEL: _ClassVar[BenefitArbitration]
    BENEFIT_ARBITRATION_SEQUENTIAL: _ClassVar[BenefitArbitration]

class Timing(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIMING_UNSPECIFIED: _ClassVar[Timing]
    TIMING_ON_CREATE: _ClassVar[Timing]
    TIMING_ON_DELIVERY: _ClassVar[Timing]

class RoundMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUND_MODE_UNSPECIFIED: _ClassVar[RoundMode]
    ROUND_MODE_ROUND_INTEGER: _ClassVar[RoundMode]
    ROUND_MODE_ROUND_HALF: _ClassVar[RoundMode]
    ROUND_MODE_FLOOR_INTEGER: _ClassVar[RoundMode]
    ROUND_MODE_FLOOR_TENS: _ClassVar[RoundMode]
    ROUND_MODE_ROUND_TENS: _ClassVar[RoundMode]

class FieldOp(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIELD_OP_UNSPECIFIED: _ClassVar[FieldOp]
    FIELD_OP_EQ: _ClassVar[FieldOp]
    FIELD_OP_NE: _ClassVar[FieldOp]
    FIELD_OP_LT: _ClassVar[FieldOp]
    FIELD_OP_LE: _ClassVar[FieldOp]
    FIELD_OP_GT: _ClassVar[FieldOp]
    FIELD_OP_GE: _ClassVar[FieldOp]
    FIELD_OP_IN: _ClassVar[FieldOp]

class Weekday(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEEKDAY_UNSPECIFIED: _ClassVar[Weekday]
    WEEKDAY_MONDAY: _ClassVar[Weekday]
    WEEKDAY_TUESDAY: _ClassVar[Weekday]
    WEEKDAY_WEDNESDAY: _ClassVar[Weekday]
    WEEKDAY_THURSDAY: _ClassVar[Weekday]
    WEEKDAY_FRIDAY: _ClassVar[Weekday]
    WEEKDAY_SATURDAY: _ClassVar[Weekday]
    WEEKDAY_SUNDAY: _ClassVar[Weekday]

class PeriodUnit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERIOD_UNIT_UNSPECIFIED: _ClassVar[PeriodUnit]
    PERIOD_UNIT_DAY: _ClassVar[PeriodUnit]
    PERIOD_UNIT_WEEK: _ClassVar[PeriodUnit]
    PERIOD_UNIT_MONTH: _ClassVar[PeriodUnit]
    PERIOD_UNIT_YEAR: _ClassVar[PeriodUnit]

class TierModel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIER_MODEL_UNSPECIFIED: _ClassVar[TierModel]
    TIER_MODEL_CUMULATIVE: _ClassVar[TierModel]
    TIER_MODEL_CYCLIC: _ClassVar[TierModel]
    TIER_MODEL_DYNAMIC: _ClassVar[TierModel]
POINT_KIND_UNSPECIFIED: PointKind
POINT_KIND_STANDARD: PointKind
POINT_KIND_QUALIFICATION: PointKind
PROMOTION_KIND_UNSPECIFIED: PromotionKind
PROMOTION_KIND_DISCOUNT: PromotionKind
PROMOTION_KIND_POINTS: PromotionKind
PROMOTION_STATUS_UNSPECIFIED: PromotionStatus
PROMOTION_STATUS_DRAFT: PromotionStatus
PROMOTION_STATUS_ACTIVE: PromotionStatus
PROMOTION_STATUS_INACTIVE: PromotionStatus
PROMOTION_STATUS_ENDED: PromotionStatus
AUDIENCE_KIND_UNSPECIFIED: AudienceKind
AUDIENCE_KIND_ALL_MEMBERS: AudienceKind
AUDIENCE_KIND_IN_SEGMENTS: AudienceKind
AUDIENCE_KIND_NOT_IN_SEGMENTS: AudienceKind
AUDIENCE_KIND_TIERS: AudienceKind
AUDIENCE_KIND_EVERYONE: AudienceKind
SCOPE_KIND_UNSPECIFIED: ScopeKind
SCOPE_KIND_ALL: ScopeKind
SCOPE_KIND_IN_SEGMENTS: ScopeKind
SCOPE_KIND_NOT_IN_SEGMENTS: ScopeKind
ARBITRATION_MODE_UNSPECIFIED: ArbitrationMode
ARBITRATION_MODE_SEQUENTIAL: ArbitrationMode
ARBITRATION_MODE_INCOMPATIBLE: ArbitrationMode
ARBITRATION_MODE_SUMMATION: ArbitrationMode
ARBITRATION_MODE_MAX_BENEFIT: ArbitrationMode
BENEFIT_ARBITRATION_UNSPECIFIED: BenefitArbitration
BENEFIT_ARBITRATION_PARALLEL: BenefitArbitration
BENEFIT_ARBITRATION_SEQUENTIAL: BenefitArbitration
TIMING_UNSPECIFIED: Timing
TIMING_ON_CREATE: Timing
TIMING_ON_DELIVERY: Timing
ROUND_MODE_UNSPECIFIED: RoundMode
ROUND_MODE_ROUND_INTEGER: RoundMode
ROUND_MODE_ROUND_HALF: RoundMode
ROUND_MODE_FLOOR_INTEGER: RoundMode
ROUND_MODE_FLOOR_TENS: RoundMode
ROUND_MODE_ROUND_TENS: RoundMode
FIELD_OP_UNSPECIFIED: FieldOp
FIELD_OP_EQ: FieldOp
FIELD_OP_NE: FieldOp
FIELD_OP_LT: FieldOp
FIELD_OP_LE: FieldOp
FIELD_OP_GT: FieldOp
FIELD_OP_GE: FieldOp
FIELD_OP_IN: FieldOp
WEEKDAY_UNSPECIFIED: Weekday
WEEKDAY_MONDAY: Weekday
WEEKDAY_TUESDAY: Weekday
WEEKDAY_WEDNESDAY: Weekday
WEEKDAY_THURSDAY: Weekday
WEEKDAY_FRIDAY: Weekday
WEEKDAY_SATURDAY: Weekday
WEEKDAY_SUNDAY: Weekday
PERIOD_UNIT_UNSPECIFIED: PeriodUnit
PERIOD_UNIT_DAY: PeriodUnit
PERIOD_UNIT_WEEK: PeriodUnit
PERIOD_UNIT_MONTH: PeriodUnit
PERIOD_UNIT_YEAR: PeriodUnit
TIER_MODEL_UNSPECIFIED: TierModel
TIER_MODEL_CUMULATIVE: TierModel
TIER_MODEL_CYCLIC: TierModel
TIER_MODEL_DYNAMIC: TierModel

class Program(_message.Message):
    __slots__ = ("id", "name", "description", "database", "currency", "time_zone", "point_types", "tier_groups", "partners", "member_segments", "product_segments", "order_segments", "promo_code_pools", "trigger_promotions", "promotions", "arbitration")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    POINT_TYPES_FIELD_NUMBER: _ClassVar[int]
    TIER_GROUPS_FIELD_NUMBER: _ClassVar[int]
    PARTNERS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    ORDER_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    PROMO_CODE_POOLS_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_PROMOTIONS_FIELD_NUMBER: _ClassVar[int]
    PROMOTIONS_FIELD_NUMBER: _ClassVar[int]
    ARBITRATION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    database: str
    currency: str
    time_zone: str
    point_types: _containers.RepeatedCompositeFieldContainer[PointType]
    tier_groups: _containers.RepeatedCompositeFieldContainer[TierGroup]
    partners: _containers.RepeatedCompositeFieldContainer[Partner]
    member_segments: _containers.RepeatedCompositeFieldContainer[MemberSegment]
    product_segments: _containers.RepeatedCompositeFieldContainer[ProductSegment]
    order_segments: _containers.RepeatedCompositeFieldContainer[OrderSegment]
    promo_code_pools: _containers.RepeatedCompositeFieldContainer[PromoCodePool]
    trigger_promotions: _containers.RepeatedCompositeFieldContainer[TriggerPromotion]
    promotions: _containers.RepeatedCompositeFieldContainer[Promotion]
    arbitration: Group
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., database: _Optional[str] = ..., currency: _Optional[str] = ..., time_zone: _Optional[str] = ..., point_types: _Optional[_Iterable[_Union[PointType, _Mapping]]] = ..., tier_groups: _Optional[_Iterable[_Union[TierGroup, _Mapping]]] = ..., partners: _Optional[_Iterable[_Union[Partner, _Mapping]]] = ..., member_segments: _Optional[_Iterable[_Union[MemberSegment, _Mapping]]] = ..., product_segments: _Optional[_Iterable[_Union[ProductSegment, _Mapping]]] = ..., order_segments: _Optional[_Iterable[_Union[OrderSegment, _Mapping]]] = ..., promo_code_pools: _Optional[_Iterable[_Union[PromoCodePool, _Mapping]]] = ..., trigger_promotions: _Optional[_Iterable[_Union[TriggerPromotion, _Mapping]]] = ..., promotions: _Optional[_Iterable[_Union[Promotion, _Mapping]]] = ..., arbitration: _Optional[_Union[Group, _Mapping]] = ...) -> None: ...

class Ratio(_message.Message):
    __slots__ = ("points", "money")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    MONEY_FIELD_NUMBER: _ClassVar[int]
    points: int
    money: int
    def __init__(self, points: _Optional[int] = ..., money: _Optional[int] = ...) -> None: ...

class Period(_message.Message):
    __slots__ = ("count", "unit")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    count: int
    unit: PeriodUnit
    def __init__(self, count: _Optional[int] = ..., unit: _Optional[_Union[PeriodUnit, str]] = ...) -> None: ...

class PointType(_message.Message):
    __slots__ = ("id", "name", "kind", "active", "initial_balance", "validity", "allow_refund", "allow_negative_balance", "deactivate_at", "ratio")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    INITIAL_BALANCE_FIELD_NUMBER: _ClassVar[int]
    VALIDITY_FIELD_NUMBER: _ClassVar[int]
    ALLOW_REFUND_FIELD_NUMBER: _ClassVar[int]
    ALLOW_NEGATIVE_BALANCE_FIELD_NUMBER: _ClassVar[int]
    DEACTIVATE_AT_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    kind: PointKind
    active: bool
    initial_balance: int
    validity: Period
    allow_refund: bool
    allow_negative_balance: bool
    deactivate_at: _timestamp_pb2.Timestamp
    ratio: Ratio
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[_Union[PointKind, str]] = ..., active: _Optional[bool] = ..., initial_balance: _Optional[int] = ..., validity: _Optional[_Union[Period, _Mapping]] = ..., allow_refund: _Optional[bool] = ..., allow_negative_balance: _Optional[bool] = ..., deactivate_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ratio: _Optional[_Union[Ratio, _Mapping]] = ...) -> None: ...

class TierGroup(_message.Message):
    __slots__ = ("id", "name", "model", "point_type", "tiers", "period", "anchor", "reset", "upgrade_immediately", "extend_to_month_end")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    UPGRADE_IMMEDIATELY_FIELD_NUMBER: _ClassVar[int]
    EXTEND_TO_MONTH_END_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    model: TierModel
    point_type: str
    tiers: _containers.RepeatedCompositeFieldContainer[Tier]
    period: Period
    anchor: _timestamp_pb2.Timestamp
    reset: bool
    upgrade_immediately: bool
    extend_to_month_end: bool
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., model: _Optional[_Union[TierModel, str]] = ..., point_type: _Optional[str] = ..., tiers: _Optional[_Iterable[_Union[Tier, _Mapping]]] = ..., period: _Optional[_Union[Period, _Mapping]] = ..., anchor: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reset: _Optional[bool] = ..., upgrade_immediately: _Optional[bool] = ..., extend_to_month_end: _Optional[bool] = ...) -> None: ...

class Tier(_message.Message):
    __slots__ = ("id", "name", "min_balance")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_BALANCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    min_balance: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., min_balance: _Optional[int] = ...) -> None: ...

class Partner(_message.Message):
    __slots__ = ("id", "name", "website", "email", "since", "discount_bp", "points_bp")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    WEBSITE_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_BP_FIELD_NUMBER: _ClassVar[int]
    POINTS_BP_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    website: str
    email: str
    since: _timestamp_pb2.Timestamp
    discount_bp: int
    points_bp: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., website: _Optional[str] = ..., email: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., discount_bp: _Optional[int] = ..., points_bp: _Optional[int] = ...) -> None: ...

class MemberSegment(_message.Message):
    __slots__ = ("id", "name", "members")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    members: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., members: _Optional[_Iterable[str]] = ...) -> None: ...

class ProductSegment(_message.Message):
    __slots__ = ("id", "name", "skus", "categories", "brands", "partners", "min_unit_price", "max_unit_price", "fields")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SKUS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    BRANDS_FIELD_NUMBER: _ClassVar[int]
    PARTNERS_FIELD_NUMBER: _ClassVar[int]
    MIN_UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    MAX_UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    skus: _containers.RepeatedScalarFieldContainer[str]
    categories: _containers.RepeatedScalarFieldContainer[str]
    brands: _containers.RepeatedScalarFieldContainer[str]
    partners: _containers.RepeatedScalarFieldContainer[str]
    min_unit_price: int
    max_unit_price: int
    fields: _containers.RepeatedCompositeFieldContainer[FieldPredicate]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., skus: _Optional[_Iterable[str]] = ..., categories: _Optional[_Iterable[str]] = ..., brands: _Optional[_Iterable[str]] = ..., partners: _Optional[_Iterable[str]] = ..., min_unit_price: _Optional[int] = ..., max_unit_price: _Optional[int] = ..., fields: _Optional[_Iterable[_Union[FieldPredicate, _Mapping]]] = ...) -> None: ...

class FieldPredicate(_message.Message):
    __slots__ = ("field", "op", "value", "values")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    field: str
    op: FieldOp
    value: int
    values: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, field: _Optional[str] = ..., op: _Optional[_Union[FieldOp, str]] = ..., value: _Optional[int] = ..., values: _Optional[_Iterable[int]] = ...) -> None: ...

class OrderSegment(_message.Message):
    __slots__ = ("id", "name", "min_subtotal", "max_subtotal", "min_items", "channels", "regions", "contains")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_SUBTOTAL_FIELD_NUMBER: _ClassVar[int]
    MAX_SUBTOTAL_FIELD_NUMBER: _ClassVar[int]
    MIN_ITEMS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    CONTAINS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    min_subtotal: int
    max_subtotal: int
    min_items: int
    channels: _containers.RepeatedScalarFieldContainer[str]
    regions: _containers.RepeatedScalarFieldContainer[str]
    contains: _containers.RepeatedCompositeFieldContainer[Contains]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., min_subtotal: _Optional[int] = ..., max_subtotal: _Optional[int] = ..., min_items: _Optional[int] = ..., channels: _Optional[_Iterable[str]] = ..., regions: _Optional[_Iterable[str]] = ..., contains: _Optional[_Iterable[_Union[Contains, _Mapping]]] = ...) -> None: ...

class Contains(_message.Message):
    __slots__ = ("product_segment", "min_quantity")
    PRODUCT_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    MIN_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    product_segment: str
    min_quantity: int
    def __init__(self, product_segment: _Optional[str] = ..., min_quantity: _Optional[int] = ...) -> None: ...

class PromoCodePool(_message.Message):
    __slots__ = ("id", "name", "codes", "max_uses_per_member", "valid_from", "valid_to")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CODES_FIELD_NUMBER: _ClassVar[int]
    MAX_USES_PER_MEMBER_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    codes: _containers.RepeatedCompositeFieldContainer[PromoCode]
    max_uses_per_member: int
    valid_from: _timestamp_pb2.Timestamp
    valid_to: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., codes: _Optional[_Iterable[_Union[PromoCode, _Mapping]]] = ..., max_uses_per_member: _Optional[int] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PromoCode(_message.Message):
    __slots__ = ("code", "max_uses")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MAX_USES_FIELD_NUMBER: _ClassVar[int]
    code: str
    max_uses: int
    def __init__(self, code: _Optional[str] = ..., max_uses: _Optional[int] = ...) -> None: ...

class TriggerPromotion(_message.Message):
    __slots__ = ("id", "name", "period", "rules")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    period: ActivePeriod
    rules: _containers.RepeatedCompositeFieldContainer[TriggerRule]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., period: _Optional[_Union[ActivePeriod, _Mapping]] = ..., rules: _Optional[_Iterable[_Union[TriggerRule, _Mapping]]] = ...) -> None: ...

class TriggerRule(_message.Message):
    __slots__ = ("point_type", "accrual", "deduction")
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ACCRUAL_FIELD_NUMBER: _ClassVar[int]
    DEDUCTION_FIELD_NUMBER: _ClassVar[int]
    point_type: str
    accrual: AmountRule
    deduction: AmountRule
    def __init__(self, point_type: _Optional[str] = ..., accrual: _Optional[_Union[AmountRule, _Mapping]] = ..., deduction: _Optional[_Union[AmountRule, _Mapping]] = ...) -> None: ...

class AmountRule(_message.Message):
    __slots__ = ("fixed", "min", "max")
    FIXED_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    fixed: int
    min: int
    max: int
    def __init__(self, fixed: _Optional[int] = ..., min: _Optional[int] = ..., max: _Optional[int] = ...) -> None: ...

class Promotion(_message.Message):
    __slots__ = ("id", "name", "description", "kind", "status", "audience", "period", "availability", "promo_code_pool", "channels", "benefit_arbitration", "product_rules", "order_rules")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    PROMO_CODE_POOL_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    BENEFIT_ARBITRATION_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_RULES_FIELD_NUMBER: _ClassVar[int]
    ORDER_RULES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    kind: PromotionKind
    status: PromotionStatus
    audience: Audience
    period: ActivePeriod
    availability: Availability
    promo_code_pool: str
    channels: _containers.RepeatedCompositeFieldContainer[ChannelRef]
    benefit_arbitration: BenefitArbitration
    product_rules: _containers.RepeatedCompositeFieldContainer[ProductRule]
    order_rules: _containers.RepeatedCompositeFieldContainer[OrderRule]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., kind: _Optional[_Union[PromotionKind, str]] = ..., status: _Optional[_Union[PromotionStatus, str]] = ..., audience: _Optional[_Union[Audience, _Mapping]] = ..., period: _Optional[_Union[ActivePeriod, _Mapping]] = ..., availability: _Optional[_Union[Availability, _Mapping]] = ..., promo_code_pool: _Optional[str] = ..., channels: _Optional[_Iterable[_Union[ChannelRef, _Mapping]]] = ..., benefit_arbitration: _Optional[_Union[BenefitArbitration, str]] = ..., product_rules: _Optional[_Iterable[_Union[ProductRule, _Mapping]]] = ..., order_rules: _Optional[_Iterable[_Union[OrderRule, _Mapping]]] = ...) -> None: ...

class ActivePeriod(_message.Message):
    __slots__ = ("start", "end", "duration")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    duration: Period
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[Period, _Mapping]] = ...) -> None: ...

class Availability(_message.Message):
    __slots__ = ("weekdays", "months", "time_windows")
    WEEKDAYS_FIELD_NUMBER: _ClassVar[int]
    MONTHS_FIELD_NUMBER: _ClassVar[int]
    TIME_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    weekdays: _containers.RepeatedScalarFieldContainer[Weekday]
    months: _containers.RepeatedScalarFieldContainer[int]
    time_windows: _containers.RepeatedCompositeFieldContainer[TimeWindow]
    def __init__(self, weekdays: _Optional[_Iterable[_Union[Weekday, str]]] = ..., months: _Optional[_Iterable[int]] = ..., time_windows: _Optional[_Iterable[_Union[TimeWindow, _Mapping]]] = ...) -> None: ...

class TimeWindow(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ...) -> None: ...

class Audience(_message.Message):
    __slots__ = ("kind", "segments", "tiers")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    kind: AudienceKind
    segments: _containers.RepeatedScalarFieldContainer[str]
    tiers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kind: _Optional[_Union[AudienceKind, str]] = ..., segments: _Optional[_Iterable[str]] = ..., tiers: _Optional[_Iterable[str]] = ...) -> None: ...

class ChannelRef(_message.Message):
    __slots__ = ("channel", "points_of_contact")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    POINTS_OF_CONTACT_FIELD_NUMBER: _ClassVar[int]
    channel: str
    points_of_contact: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, channel: _Optional[str] = ..., points_of_contact: _Optional[_Iterable[str]] = ...) -> None: ...

class ProductRule(_message.Message):
    __slots__ = ("scope", "min_quantity", "benefits")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    MIN_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    BENEFITS_FIELD_NUMBER: _ClassVar[int]
    scope: Scope
    min_quantity: int
    benefits: _containers.RepeatedCompositeFieldContainer[Benefit]
    def __init__(self, scope: _Optional[_Union[Scope, _Mapping]] = ..., min_quantity: _Optional[int] = ..., benefits: _Optional[_Iterable[_Union[Benefit, _Mapping]]] = ...) -> None: ...

class OrderRule(_message.Message):
    __slots__ = ("scope", "benefits")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    BENEFITS_FIELD_NUMBER: _ClassVar[int]
    scope: Scope
    benefits: _containers.RepeatedCompositeFieldContainer[Benefit]
    def __init__(self, scope: _Optional[_Union[Scope, _Mapping]] = ..., benefits: _Optional[_Iterable[_Union[Benefit, _Mapping]]] = ...) -> None: ...

class Scope(_message.Message):
    __slots__ = ("kind", "segments")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    kind: ScopeKind
    segments: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kind: _Optional[_Union[ScopeKind, str]] = ..., segments: _Optional[_Iterable[str]] = ...) -> None: ...

class Benefit(_message.Message):
    __slots__ = ("discount", "price_from_field", "round_price", "text", "partner_discount", "shipping_discount", "pay_with_points", "accrue_points", "accrue_per_spent", "accrue_from_field", "partner_points")
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    PRICE_FROM_FIELD_FIELD_NUMBER: _ClassVar[int]
    ROUND_PRICE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PARTNER_DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    PAY_WITH_POINTS_FIELD_NUMBER: _ClassVar[int]
    ACCRUE_POINTS_FIELD_NUMBER: _ClassVar[int]
    ACCRUE_PER_SPENT_FIELD_NUMBER: _ClassVar[int]
    ACCRUE_FROM_FIELD_FIELD_NUMBER: _ClassVar[int]
    PARTNER_POINTS_FIELD_NUMBER: _ClassVar[int]
    discount: Discount
    price_from_field: PriceFromField
    round_price: RoundPrice
    text: Text
    partner_discount: PartnerDiscount
    shipping_discount: ShippingDiscount
    pay_with_points: PayWithPoints
    accrue_points: AccruePoints
    accrue_per_spent: AccruePerSpent
    accrue_from_field: AccrueFromField
    partner_points: PartnerPoints
    def __init__(self, discount: _Optional[_Union[Discount, _Mapping]] = ..., price_from_field: _Optional[_Union[PriceFromField, _Mapping]] = ..., round_price: _Optional[_Union[RoundPrice, _Mapping]] = ..., text: _Optional[_Union[Text, _Mapping]] = ..., partner_discount: _Optional[_Union[PartnerDiscount, _Mapping]] = ..., shipping_discount: _Optional[_Union[ShippingDiscount, _Mapping]] = ..., pay_with_points: _Optional[_Union[PayWithPoints, _Mapping]] = ..., accrue_points: _Optional[_Union[AccruePoints, _Mapping]] = ..., accrue_per_spent: _Optional[_Union[AccruePerSpent, _Mapping]] = ..., accrue_from_field: _Optional[_Union[AccrueFromField, _Mapping]] = ..., partner_points: _Optional[_Union[PartnerPoints, _Mapping]] = ...) -> None: ...

class Discount(_message.Message):
    __slots__ = ("percent_bp", "amount", "fixed_price", "max_items")
    PERCENT_BP_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    FIXED_PRICE_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    percent_bp: int
    amount: int
    fixed_price: int
    max_items: int
    def __init__(self, percent_bp: _Optional[int] = ..., amount: _Optional[int] = ..., fixed_price: _Optional[int] = ..., max_items: _Optional[int] = ...) -> None: ...

class PriceFromField(_message.Message):
    __slots__ = ("field", "factor_bp")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    FACTOR_BP_FIELD_NUMBER: _ClassVar[int]
    field: str
    factor_bp: int
    def __init__(self, field: _Optional[str] = ..., factor_bp: _Optional[int] = ...) -> None: ...

class RoundPrice(_message.Message):
    __slots__ = ("mode",)
    MODE_FIELD_NUMBER: _ClassVar[int]
    mode: RoundMode
    def __init__(self, mode: _Optional[_Union[RoundMode, str]] = ...) -> None: ...

class Text(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: str
    def __init__(self, template: _Optional[str] = ...) -> None: ...

class PartnerDiscount(_message.Message):
    __slots__ = ("partners",)
    PARTNERS_FIELD_NUMBER: _ClassVar[int]
    partners: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, partners: _Optional[_Iterable[str]] = ...) -> None: ...

class ShippingDiscount(_message.Message):
    __slots__ = ("percent_bp", "amount")
    PERCENT_BP_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    percent_bp: int
    amount: int
    def __init__(self, percent_bp: _Optional[int] = ..., amount: _Optional[int] = ...) -> None: ...

class PayWithPoints(_message.Message):
    __slots__ = ("point_type", "percent_bp", "amount", "points", "max_items")
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_BP_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    point_type: str
    percent_bp: int
    amount: int
    points: int
    max_items: int
    def __init__(self, point_type: _Optional[str] = ..., percent_bp: _Optional[int] = ..., amount: _Optional[int] = ..., points: _Optional[int] = ..., max_items: _Optional[int] = ...) -> None: ...

class AccruePoints(_message.Message):
    __slots__ = ("point_type", "percent_bp", "points", "timing")
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_BP_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    point_type: str
    percent_bp: int
    points: int
    timing: Timing
    def __init__(self, point_type: _Optional[str] = ..., percent_bp: _Optional[int] = ..., points: _Optional[int] = ..., timing: _Optional[_Union[Timing, str]] = ...) -> None: ...

class AccruePerSpent(_message.Message):
    __slots__ = ("point_type", "points", "per_amount", "timing")
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    PER_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    point_type: str
    points: int
    per_amount: int
    timing: Timing
    def __init__(self, point_type: _Optional[str] = ..., points: _Optional[int] = ..., per_amount: _Optional[int] = ..., timing: _Optional[_Union[Timing, str]] = ...) -> None: ...

class AccrueFromField(_message.Message):
    __slots__ = ("point_type", "field", "timing")
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    point_type: str
    field: str
    timing: Timing
    def __init__(self, point_type: _Optional[str] = ..., field: _Optional[str] = ..., timing: _Optional[_Union[Timing, str]] = ...) -> None: ...

class PartnerPoints(_message.Message):
    __slots__ = ("partners", "point_type", "timing")
    PARTNERS_FIELD_NUMBER: _ClassVar[int]
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    partners: _containers.RepeatedScalarFieldContainer[str]
    point_type: str
    timing: Timing
    def __init__(self, partners: _Optional[_Iterable[str]] = ..., point_type: _Optional[str] = ..., timing: _Optional[_Union[Timing, str]] = ...) -> None: ...

class Group(_message.Message):
    __slots__ = ("id", "name", "mode", "limits", "children")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    mode: ArbitrationMode
    limits: Limits
    children: _containers.RepeatedCompositeFieldContainer[Child]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., mode: _Optional[_Union[ArbitrationMode, str]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., children: _Optional[_Iterable[_Union[Child, _Mapping]]] = ...) -> None: ...

class Child(_message.Message):
    __slots__ = ("promotion", "group")
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    promotion: str
    group: Group
    def __init__(self, promotion: _Optional[str] = ..., group: _Optional[_Union[Group, _Mapping]] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_discount_bp", "max_discount_amount", "min_unit_price", "min_unit_price_bp")
    MAX_DISCOUNT_BP_FIELD_NUMBER: _ClassVar[int]
    MAX_DISCOUNT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    MIN_UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    MIN_UNIT_PRICE_BP_FIELD_NUMBER: _ClassVar[int]
    max_discount_bp: int
    max_discount_amount: int
    min_unit_price: int
    min_unit_price_bp: int
    def __init__(self, max_discount_bp: _Optional[int] = ..., max_discount_amount: _Optional[int] = ..., min_unit_price: _Optional[int] = ..., min_unit_price_bp: _Optional[int] = ...) -> None: ...
