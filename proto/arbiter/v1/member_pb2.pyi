import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TransactionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSACTION_TYPE_UNSPECIFIED: _ClassVar[TransactionType]
    TRANSACTION_TYPE_ACCRUAL: _ClassVar[TransactionType]
    TRANSACTION_TYPE_REDEMPTION: _ClassVar[TransactionType]
    TRANSACTION_TYPE_EXPIRATION: _ClassVar[TransactionType]
    TRANSACTION_TYPE_REFUND: _ClassVar[TransactionType]
    TRANSACTION_TYPE_REVERSAL: _ClassVar[TransactionType]
    TRANSACTION_TYPE_ADJUSTMENT: _ClassVar[TransactionType]
    TRANSACTION_TYPE_RESET: _ClassVar[TransactionType]

class SourceType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_TYPE_UNSPECIFIED: _ClassVar[SourceType]
    SOURCE_TYPE_ORDER: _ClassVar[SourceType]
    SOURCE_TYPE_TRIGGER_PROMOTION: _ClassVar[SourceType]
    SOURCE_TYPE_MANUAL: _ClassVar[SourceType]
    SOURCE_TYPE_ENROLLMENT: _ClassVar[SourceType]
    SOURCE_TYPE_EXPIRATION: _ClassVar[SourceType]
    SOURCE_TYPE_TIER_RESET: _ClassVar[SourceType]

class Operation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_UNSPECIFIED: _ClassVar[Operation]
    OPERATION_ACCRUAL: _ClassVar[Operation]
    OPERATION_DEDUCTION: _ClassVar[Operation]
TRANSACTION_TYPE_UNSPECIFIED: TransactionType
TRANSACTION_TYPE_ACCRUAL: TransactionType
TRANSACTION_TYPE_REDEMPTION: TransactionType
TRANSACTION_TYPE_EXPIRATION: TransactionType
TRANSACTION_TYPE_REFUND: TransactionType
TRANSACTION_TYPE_REVERSAL: TransactionType
TRANSACTION_TYPE_ADJUSTMENT: TransactionType
TRANSACTION_TYPE_RESET: TransactionType
SOURCE_TYPE_UNSPECIFIED: SourceType
SOURCE_TYPE_ORDER: SourceType
SOURCE_TYPE_TRIGGER_PROMOTION: SourceType
SOURCE_TYPE_MANUAL: SourceType
SOURCE_TYPE_ENROLLMENT: SourceType
SOURCE_TYPE_EXPIRATION: SourceType
SOURCE_TYPE_TIER_RESET: SourceType
OPERATION_UNSPECIFIED: Operation
OPERATION_ACCRUAL: Operation
OPERATION_DEDUCTION: Operation

class EnrollMemberRequest(_message.Message):
    __slots__ = ("program", "member_id", "registered_at", "fields", "registration_field", "members")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_FIELD_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    program: str
    member_id: str
    registered_at: _timestamp_pb2.Timestamp
    fields: _containers.ScalarMap[str, str]
    registration_field: str
    members: _containers.RepeatedCompositeFieldContainer[MemberEnrollment]
    def __init__(self, program: _Optional[str] = ..., member_id: _Optional[str] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fields: _Optional[_Mapping[str, str]] = ..., registration_field: _Optional[str] = ..., members: _Optional[_Iterable[_Union[MemberEnrollment, _Mapping]]] = ...) -> None: ...

class MemberEnrollment(_message.Message):
    __slots__ = ("member_id", "registered_at", "fields", "registration_field")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_FIELD_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    registered_at: _timestamp_pb2.Timestamp
    fields: _containers.ScalarMap[str, str]
    registration_field: str
    def __init__(self, member_id: _Optional[str] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fields: _Optional[_Mapping[str, str]] = ..., registration_field: _Optional[str] = ...) -> None: ...

class EnrollSegmentRequest(_message.Message):
    __slots__ = ("program", "segment", "registered_at")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    program: str
    segment: str
    registered_at: _timestamp_pb2.Timestamp
    def __init__(self, program: _Optional[str] = ..., segment: _Optional[str] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EnrollSegmentResponse(_message.Message):
    __slots__ = ("enrolled", "already_enrolled")
    ENROLLED_FIELD_NUMBER: _ClassVar[int]
    ALREADY_ENROLLED_FIELD_NUMBER: _ClassVar[int]
    enrolled: int
    already_enrolled: int
    def __init__(self, enrolled: _Optional[int] = ..., already_enrolled: _Optional[int] = ...) -> None: ...

class ClearMembersRequest(_message.Message):
    __slots__ = ("program", "confirm")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    CONFIRM_FIELD_NUMBER: _ClassVar[int]
    program: str
    confirm: bool
    def __init__(self, program: _Optional[str] = ..., confirm: _Optional[bool] = ...) -> None: ...

class ClearMembersResponse(_message.Message):
    __slots__ = ("removed", "total", "done")
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    removed: int
    total: int
    done: bool
    def __init__(self, removed: _Optional[int] = ..., total: _Optional[int] = ..., done: _Optional[bool] = ...) -> None: ...

class EnrollMemberResponse(_message.Message):
    __slots__ = ("member", "created")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    member: Member
    created: bool
    def __init__(self, member: _Optional[_Union[Member, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class EnrollMembersResponse(_message.Message):
    __slots__ = ("enrolled", "already_enrolled")
    ENROLLED_FIELD_NUMBER: _ClassVar[int]
    ALREADY_ENROLLED_FIELD_NUMBER: _ClassVar[int]
    enrolled: int
    already_enrolled: int
    def __init__(self, enrolled: _Optional[int] = ..., already_enrolled: _Optional[int] = ...) -> None: ...

class RemoveMemberRequest(_message.Message):
    __slots__ = ("program", "member_id")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    program: str
    member_id: str
    def __init__(self, program: _Optional[str] = ..., member_id: _Optional[str] = ...) -> None: ...

class RemoveMemberResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExportMembersRequest(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: str
    def __init__(self, program: _Optional[str] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("member_id", "registered_at", "balances", "tiers")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    BALANCES_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    registered_at: _timestamp_pb2.Timestamp
    balances: _containers.RepeatedCompositeFieldContainer[BalanceInfo]
    tiers: _containers.RepeatedCompositeFieldContainer[TierStatus]
    def __init__(self, member_id: _Optional[str] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., balances: _Optional[_Iterable[_Union[BalanceInfo, _Mapping]]] = ..., tiers: _Optional[_Iterable[_Union[TierStatus, _Mapping]]] = ...) -> None: ...

class GetMemberRequest(_message.Message):
    __slots__ = ("program", "member_id", "expiring_within_days")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRING_WITHIN_DAYS_FIELD_NUMBER: _ClassVar[int]
    program: str
    member_id: str
    expiring_within_days: int
    def __init__(self, program: _Optional[str] = ..., member_id: _Optional[str] = ..., expiring_within_days: _Optional[int] = ...) -> None: ...

class GetMemberResponse(_message.Message):
    __slots__ = ("member_id", "registered_at", "balances", "tiers")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    BALANCES_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    registered_at: _timestamp_pb2.Timestamp
    balances: _containers.RepeatedCompositeFieldContainer[BalanceInfo]
    tiers: _containers.RepeatedCompositeFieldContainer[TierStatus]
    def __init__(self, member_id: _Optional[str] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., balances: _Optional[_Iterable[_Union[BalanceInfo, _Mapping]]] = ..., tiers: _Optional[_Iterable[_Union[TierStatus, _Mapping]]] = ...) -> None: ...

class BalanceInfo(_message.Message):
    __slots__ = ("point_type", "available", "held", "pending", "expiring_soon", "balance")
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    EXPIRING_SOON_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    point_type: str
    available: int
    held: int
    pending: int
    expiring_soon: int
    balance: int
    def __init__(self, point_type: _Optional[str] = ..., available: _Optional[int] = ..., held: _Optional[int] = ..., pending: _Optional[int] = ..., expiring_soon: _Optional[int] = ..., balance: _Optional[int] = ...) -> None: ...

class TierStatus(_message.Message):
    __slots__ = ("tier_group", "tier", "points", "next_tier", "to_next", "period_end")
    TIER_GROUP_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TIER_FIELD_NUMBER: _ClassVar[int]
    TO_NEXT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    tier_group: str
    tier: str
    points: int
    next_tier: str
    to_next: int
    period_end: _timestamp_pb2.Timestamp
    def __init__(self, tier_group: _Optional[str] = ..., tier: _Optional[str] = ..., points: _Optional[int] = ..., next_tier: _Optional[str] = ..., to_next: _Optional[int] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ApplyTriggerRequest(_message.Message):
    __slots__ = ("program", "member_id", "trigger_promotion", "point_type", "operation", "points", "external_id", "comment")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_PROMOTION_FIELD_NUMBER: _ClassVar[int]
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    program: str
    member_id: str
    trigger_promotion: str
    point_type: str
    operation: Operation
    points: int
    external_id: str
    comment: str
    def __init__(self, program: _Optional[str] = ..., member_id: _Optional[str] = ..., trigger_promotion: _Optional[str] = ..., point_type: _Optional[str] = ..., operation: _Optional[_Union[Operation, str]] = ..., points: _Optional[int] = ..., external_id: _Optional[str] = ..., comment: _Optional[str] = ...) -> None: ...

class ApplyTriggerResponse(_message.Message):
    __slots__ = ("transaction",)
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    transaction: Transaction
    def __init__(self, transaction: _Optional[_Union[Transaction, _Mapping]] = ...) -> None: ...

class CreateTransactionRequest(_message.Message):
    __slots__ = ("program", "member_id", "point_type", "operation", "points", "external_id", "comment", "extra")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    program: str
    member_id: str
    point_type: str
    operation: Operation
    points: int
    external_id: str
    comment: str
    extra: str
    def __init__(self, program: _Optional[str] = ..., member_id: _Optional[str] = ..., point_type: _Optional[str] = ..., operation: _Optional[_Union[Operation, str]] = ..., points: _Optional[int] = ..., external_id: _Optional[str] = ..., comment: _Optional[str] = ..., extra: _Optional[str] = ...) -> None: ...

class CreateTransactionResponse(_message.Message):
    __slots__ = ("transaction",)
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    transaction: Transaction
    def __init__(self, transaction: _Optional[_Union[Transaction, _Mapping]] = ...) -> None: ...

class ListTransactionsRequest(_message.Message):
    __slots__ = ("program", "member_id", "point_type", "page_size", "page_token", "type", "source_type", "to")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    program: str
    member_id: str
    point_type: str
    page_size: int
    page_token: str
    type: TransactionType
    source_type: SourceType
    to: _timestamp_pb2.Timestamp
    def __init__(self, program: _Optional[str] = ..., member_id: _Optional[str] = ..., point_type: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., type: _Optional[_Union[TransactionType, str]] = ..., source_type: _Optional[_Union[SourceType, str]] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., **kwargs) -> None: ...

class ListTransactionsResponse(_message.Message):
    __slots__ = ("transactions", "next_page_token")
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedCompositeFieldContainer[Transaction]
    next_page_token: str
    def __init__(self, transactions: _Optional[_Iterable[_Union[Transaction, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Transaction(_message.Message):
    __slots__ = ("id", "external_id", "created_at", "type", "member_id", "point_type", "balance_before", "value", "balance_after", "source_type", "source_id", "comment", "extra")
    ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    BALANCE_BEFORE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    id: str
    external_id: str
    created_at: _timestamp_pb2.Timestamp
    type: TransactionType
    member_id: str
    point_type: str
    balance_before: int
    value: int
    balance_after: int
    source_type: SourceType
    source_id: str
    comment: str
    extra: str
    def __init__(self, id: _Optional[str] = ..., external_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., type: _Optional[_Union[TransactionType, str]] = ..., member_id: _Optional[str] = ..., point_type: _Optional[str] = ..., balance_before: _Optional[int] = ..., value: _Optional[int] = ..., balance_after: _Optional[int] = ..., source_type: _Optional[_Union[SourceType, str]] = ..., source_id: _Optional[str] = ..., comment: _Optional[str] = ..., extra: _Optional[str] = ...) -> None: ...

class GetExpiringPointsRequest(_message.Message):
    __slots__ = ("program", "member_id", "point_type", "within_days", "limit", "descending")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    WITHIN_DAYS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    program: str
    member_id: str
    point_type: str
    within_days: int
    limit: int
    descending: bool
    def __init__(self, program: _Optional[str] = ..., member_id: _Optional[str] = ..., point_type: _Optional[str] = ..., within_days: _Optional[int] = ..., limit: _Optional[int] = ..., descending: _Optional[bool] = ...) -> None: ...

class GetExpiringPointsResponse(_message.Message):
    __slots__ = ("lots",)
    LOTS_FIELD_NUMBER: _ClassVar[int]
    lots: _containers.RepeatedCompositeFieldContainer[ExpiringLot]
    def __init__(self, lots: _Optional[_Iterable[_Union[ExpiringLot, _Mapping]]] = ...) -> None: ...

class ExpiringLot(_message.Message):
    __slots__ = ("point_type", "points", "expires_at")
    POINT_TYPE_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    point_type: str
    points: int
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, point_type: _Optional[str] = ..., points: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
