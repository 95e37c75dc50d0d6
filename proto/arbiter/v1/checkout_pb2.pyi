import datetime

from arbiter.v1 import program_pb2 as _program_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PromoCodeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROMO_CODE_STATUS_UNSPECIFIED: _ClassVar[PromoCodeStatus]
    PROMO_CODE_STATUS_APPLIED: _ClassVar[PromoCodeStatus]
    PROMO_CODE_STATUS_NOT_APPLIED: _ClassVar[PromoCodeStatus]
    PROMO_CODE_STATUS_INVALID: _ClassVar[PromoCodeStatus]

class PromoCodeReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROMO_CODE_REASON_UNSPECIFIED: _ClassVar[PromoCodeReason]
    PROMO_CODE_REASON_UNKNOWN_CODE: _ClassVar[PromoCodeReason]
    PROMO_CODE_REASON_EXPIRED: _ClassVar[PromoCodeReason]
    PROMO_CODE_REASON_NOT_YET_VALID: _ClassVar[PromoCodeReason]
    PROMO_CODE_REASON_EXHAUSTED: _ClassVar[PromoCodeReason]
    PROMO_CODE_REASON_NO_PROMOTION_APPLIED: _ClassVar[PromoCodeReason]
    PROMO_CODE_REASON_ANOTHER_CODE_APPLIED: _ClassVar[PromoCodeReason]
PROMO_CODE_STATUS_UNSPECIFIED: PromoCodeStatus
PROMO_CODE_STATUS_APPLIED: PromoCodeStatus
PROMO_CODE_STATUS_NOT_APPLIED: PromoCodeStatus
PROMO_CODE_STATUS_INVALID: PromoCodeStatus
PROMO_CODE_REASON_UNSPECIFIED: PromoCodeReason
PROMO_CODE_REASON_UNKNOWN_CODE: PromoCodeReason
PROMO_CODE_REASON_EXPIRED: PromoCodeReason
PROMO_CODE_REASON_NOT_YET_VALID: PromoCodeReason
PROMO_CODE_REASON_EXHAUSTED: PromoCodeReason
PROMO_CODE_REASON_NO_PROMOTION_APPLIED: PromoCodeReason
PROMO_CODE_REASON_ANOTHER_CODE_APPLIED: PromoCodeReason

class CalculateOrderRequest(_message.Message):
    __slots__ = ("program", "member_id", "member_context", "order")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    program: str
    member_id: str
    member_context: MemberContext
    order: Order
    def __init__(self, program: _Optional[str] = ..., member_id: _Optional[str] = ..., member_context: _Optional[_Union[MemberContext, _Mapping]] = ..., order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class MemberContext(_message.Message):
    __slots__ = ("balances", "tiers", "segments")
    BALANCES_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    balances: _containers.RepeatedCompositeFieldContainer[Balance]
    tiers: _containers.RepeatedCompositeFieldContainer[TierRef]
    segments: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, balances: _Optional[_Iterable[_Union[Balance, _Mapping]]] = ..., tiers: _Optional[_Iterable[_Union[TierRef, _Mapping]]] = ..., segments: _Optional[_Iterable[str]] = ...) -> None: ...

class Balance(_message.Message):
    __slots__ = ("point_type", "available")
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    point_type: str
    available: int
    def __init__(self, point_type: _Optional[str] = ..., available: _Optional[int] = ...) -> None: ...

class TierRef(_message.Message):
    __slots__ = ("tier_group", "tier")
    TIER_GROUP_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    tier_group: str
    tier: str
    def __init__(self, tier_group: _Optional[str] = ..., tier: _Optional[str] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("id", "channel", "point_of_contact", "region", "time_zone", "created_at", "shipping_cost", "lines", "promo_codes", "redeem")
    ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    POINT_OF_CONTACT_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_COST_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    PROMO_CODES_FIELD_NUMBER: _ClassVar[int]
    REDEEM_FIELD_NUMBER: _ClassVar[int]
    id: str
    channel: str
    point_of_contact: str
    region: str
    time_zone: str
    created_at: _timestamp_pb2.Timestamp
    shipping_cost: int
    lines: _containers.RepeatedCompositeFieldContainer[Line]
    promo_codes: _containers.RepeatedScalarFieldContainer[str]
    redeem: _containers.RepeatedCompositeFieldContainer[Redemption]
    def __init__(self, id: _Optional[str] = ..., channel: _Optional[str] = ..., point_of_contact: _Optional[str] = ..., region: _Optional[str] = ..., time_zone: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., shipping_cost: _Optional[int] = ..., lines: _Optional[_Iterable[_Union[Line, _Mapping]]] = ..., promo_codes: _Optional[_Iterable[str]] = ..., redeem: _Optional[_Iterable[_Union[Redemption, _Mapping]]] = ...) -> None: ...

class Line(_message.Message):
    __slots__ = ("id", "sku", "quantity", "unit_price", "categories", "brand", "partner", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    sku: str
    quantity: int
    unit_price: int
    categories: _containers.RepeatedScalarFieldContainer[str]
    brand: str
    partner: str
    fields: _containers.ScalarMap[str, int]
    def __init__(self, id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price: _Optional[int] = ..., categories: _Optional[_Iterable[str]] = ..., brand: _Optional[str] = ..., partner: _Optional[str] = ..., fields: _Optional[_Mapping[str, int]] = ...) -> None: ...

class Redemption(_message.Message):
    __slots__ = ("point_type", "points")
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    point_type: str
    points: int
    def __init__(self, point_type: _Optional[str] = ..., points: _Optional[int] = ...) -> None: ...

class CalculateOrderResponse(_message.Message):
    __slots__ = ("program_version", "evaluated_at", "totals", "lines", "benefits", "points", "texts", "promo_codes")
    PROGRAM_VERSION_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_AT_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    BENEFITS_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    PROMO_CODES_FIELD_NUMBER: _ClassVar[int]
    program_version: int
    evaluated_at: _timestamp_pb2.Timestamp
    totals: Totals
    lines: _containers.RepeatedCompositeFieldContainer[LineResult]
    benefits: _containers.RepeatedCompositeFieldContainer[AppliedBenefit]
    points: _containers.RepeatedCompositeFieldContainer[PointsChange]
    texts: _containers.RepeatedScalarFieldContainer[str]
    promo_codes: _containers.RepeatedCompositeFieldContainer[PromoCodeResult]
    def __init__(self, program_version: _Optional[int] = ..., evaluated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., totals: _Optional[_Union[Totals, _Mapping]] = ..., lines: _Optional[_Iterable[_Union[LineResult, _Mapping]]] = ..., benefits: _Optional[_Iterable[_Union[AppliedBenefit, _Mapping]]] = ..., points: _Optional[_Iterable[_Union[PointsChange, _Mapping]]] = ..., texts: _Optional[_Iterable[str]] = ..., promo_codes: _Optional[_Iterable[_Union[PromoCodeResult, _Mapping]]] = ...) -> None: ...

class Totals(_message.Message):
    __slots__ = ("subtotal", "discount", "paid_with_points", "shipping", "shipping_discount", "total", "items")
    SUBTOTAL_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    PAID_WITH_POINTS_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    subtotal: int
    discount: int
    paid_with_points: int
    shipping: int
    shipping_discount: int
    total: int
    items: int
    def __init__(self, subtotal: _Optional[int] = ..., discount: _Optional[int] = ..., paid_with_points: _Optional[int] = ..., shipping: _Optional[int] = ..., shipping_discount: _Optional[int] = ..., total: _Optional[int] = ..., items: _Optional[int] = ...) -> None: ...

class LineResult(_message.Message):
    __slots__ = ("line_id", "base_price", "discount", "paid_with_points", "final_price", "portions")
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_PRICE_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    PAID_WITH_POINTS_FIELD_NUMBER: _ClassVar[int]
    FINAL_PRICE_FIELD_NUMBER: _ClassVar[int]
    PORTIONS_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    base_price: int
    discount: int
    paid_with_points: int
    final_price: int
    portions: _containers.RepeatedCompositeFieldContainer[Portion]
    def __init__(self, line_id: _Optional[str] = ..., base_price: _Optional[int] = ..., discount: _Optional[int] = ..., paid_with_points: _Optional[int] = ..., final_price: _Optional[int] = ..., portions: _Optional[_Iterable[_Union[Portion, _Mapping]]] = ...) -> None: ...

class Portion(_message.Message):
    __slots__ = ("quantity", "unit_price")
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    quantity: int
    unit_price: int
    def __init__(self, quantity: _Optional[int] = ..., unit_price: _Optional[int] = ...) -> None: ...

class AppliedBenefit(_message.Message):
    __slots__ = ("line_id", "promotion", "promotion_kind", "benefit", "amount", "points", "point_type", "timing")
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_KIND_FIELD_NUMBER: _ClassVar[int]
    BENEFIT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    promotion: str
    promotion_kind: str
    benefit: str
    amount: int
    points: int
    point_type: str
    timing: _program_pb2.Timing
    def __init__(self, line_id: _Optional[str] = ..., promotion: _Optional[str] = ..., promotion_kind: _Optional[str] = ..., benefit: _Optional[str] = ..., amount: _Optional[int] = ..., points: _Optional[int] = ..., point_type: _Optional[str] = ..., timing: _Optional[_Union[_program_pb2.Timing, str]] = ...) -> None: ...

class PointsChange(_message.Message):
    __slots__ = ("point_type", "requested", "redeemed", "accrued", "accrued_pending")
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_FIELD_NUMBER: _ClassVar[int]
    ACCRUED_FIELD_NUMBER: _ClassVar[int]
    ACCRUED_PENDING_FIELD_NUMBER: _ClassVar[int]
    point_type: str
    requested: int
    redeemed: int
    accrued: int
    accrued_pending: int
    def __init__(self, point_type: _Optional[str] = ..., requested: _Optional[int] = ..., redeemed: _Optional[int] = ..., accrued: _Optional[int] = ..., accrued_pending: _Optional[int] = ...) -> None: ...

class PromoCodeResult(_message.Message):
    __slots__ = ("code", "status", "reason", "promo_code_pool")
    CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROMO_CODE_POOL_FIELD_NUMBER: _ClassVar[int]
    code: str
    status: PromoCodeStatus
    reason: PromoCodeReason
    promo_code_pool: str
    def __init__(self, code: _Optional[str] = ..., status: _Optional[_Union[PromoCodeStatus, str]] = ..., reason: _Optional[_Union[PromoCodeReason, str]] = ..., promo_code_pool: _Optional[str] = ...) -> None: ...

class ConfirmOrderRequest(_message.Message):
    __slots__ = ("program", "member_id", "member_context", "order", "expected_total")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    program: str
    member_id: str
    member_context: MemberContext
    order: Order
    expected_total: int
    def __init__(self, program: _Optional[str] = ..., member_id: _Optional[str] = ..., member_context: _Optional[_Union[MemberContext, _Mapping]] = ..., order: _Optional[_Union[Order, _Mapping]] = ..., expected_total: _Optional[int] = ...) -> None: ...

class ConfirmOrderResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: CalculateOrderResponse
    def __init__(self, result: _Optional[_Union[CalculateOrderResponse, _Mapping]] = ...) -> None: ...

class ReserveOrderRequest(_message.Message):
    __slots__ = ("program", "member_id", "member_context", "order", "expected_total", "hold_seconds")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    HOLD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    program: str
    member_id: str
    member_context: MemberContext
    order: Order
    expected_total: int
    hold_seconds: int
    def __init__(self, program: _Optional[str] = ..., member_id: _Optional[str] = ..., member_context: _Optional[_Union[MemberContext, _Mapping]] = ..., order: _Optional[_Union[Order, _Mapping]] = ..., expected_total: _Optional[int] = ..., hold_seconds: _Optional[int] = ...) -> None: ...

class ReserveOrderResponse(_message.Message):
    __slots__ = ("result", "hold_until")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    HOLD_UNTIL_FIELD_NUMBER: _ClassVar[int]
    result: CalculateOrderResponse
    hold_until: _timestamp_pb2.Timestamp
    def __init__(self, result: _Optional[_Union[CalculateOrderResponse, _Mapping]] = ..., hold_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeliverOrderRequest(_message.Message):
    __slots__ = ("program", "order_id")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    program: str
    order_id: str
    def __init__(self, program: _Optional[str] = ..., order_id: _Optional[str] = ...) -> None: ...

class DeliverOrderResponse(_message.Message):
    __slots__ = ("activated",)
    ACTIVATED_FIELD_NUMBER: _ClassVar[int]
    activated: _containers.RepeatedCompositeFieldContainer[PointsMovement]
    def __init__(self, activated: _Optional[_Iterable[_Union[PointsMovement, _Mapping]]] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("program", "order_id")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    program: str
    order_id: str
    def __init__(self, program: _Optional[str] = ..., order_id: _Optional[str] = ...) -> None: ...

class CancelOrderResponse(_message.Message):
    __slots__ = ("reversed",)
    REVERSED_FIELD_NUMBER: _ClassVar[int]
    reversed: _containers.RepeatedCompositeFieldContainer[PointsMovement]
    def __init__(self, reversed: _Optional[_Iterable[_Union[PointsMovement, _Mapping]]] = ...) -> None: ...

class ReturnOrderRequest(_message.Message):
    __slots__ = ("program", "order_id", "return_id", "lines")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    RETURN_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    program: str
    order_id: str
    return_id: str
    lines: _containers.RepeatedCompositeFieldContainer[ReturnLine]
    def __init__(self, program: _Optional[str] = ..., order_id: _Optional[str] = ..., return_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[ReturnLine, _Mapping]]] = ...) -> None: ...

class ReturnLine(_message.Message):
    __slots__ = ("line_id", "quantity")
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    quantity: int
    def __init__(self, line_id: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class ReturnOrderResponse(_message.Message):
    __slots__ = ("reversed",)
    REVERSED_FIELD_NUMBER: _ClassVar[int]
    reversed: _containers.RepeatedCompositeFieldContainer[PointsMovement]
    def __init__(self, reversed: _Optional[_Iterable[_Union[PointsMovement, _Mapping]]] = ...) -> None: ...

class PointsMovement(_message.Message):
    __slots__ = ("point_type", "accrual_reversed", "redemption_refunded", "activated", "shortfall")
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ACCRUAL_REVERSED_FIELD_NUMBER: _ClassVar[int]
    REDEMPTION_REFUNDED_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_FIELD_NUMBER: _ClassVar[int]
    SHORTFALL_FIELD_NUMBER: _ClassVar[int]
    point_type: str
    accrual_reversed: int
    redemption_refunded: int
    activated: int
    shortfall: int
    def __init__(self, point_type: _Optional[str] = ..., accrual_reversed: _Optional[int] = ..., redemption_refunded: _Optional[int] = ..., activated: _Optional[int] = ..., shortfall: _Optional[int] = ...) -> None: ...
