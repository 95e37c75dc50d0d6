"""MemberService: members, balances and manual points over the ledger; translate, call, back."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, time
from typing import Any, Final
from zoneinfo import ZoneInfo

from arbiter.server.api.actor import actor_of
from arbiter.server.api.translate import TIMESTAMP_RANGE, timestamp_in_range
from arbiter.server.engine import FieldViolation
from arbiter.server.ledger import (
    DEFAULT_PAGE_SIZE,
    MAX_ID_CHARS,
    MAX_PAGE_SIZE,
    AuditRecord,
    BalanceInfo,
    InvalidArgument,
    Ledger,
    MemberBatch,
    MemberInfo,
    NotFound,
    TierStatus,
    Transaction,
    TransactionFilter,
)
from arbiter.server.state import AppliedProgram, MemberDirectory, ProgramRegistry, after_write
from arbiter.v1 import member_pb2, member_pb2_grpc, program_pb2

__all__ = ["MAX_ENROLL_STREAM", "MAX_PAGE_SIZE", "MemberService"]

# One EnrollMembers stream enrolls at most this many members, whatever the messages carrying
# them (a bulk import is split into several streams); the ledger commits them in chunks.
MAX_ENROLL_STREAM: Final = 1_000_000

Clock = Callable[[], datetime]
_UTC_ZONE: Final = ZoneInfo("UTC")

_OPERATIONS: Final = {
    member_pb2.OPERATION_ACCRUAL: "ACCRUAL",
    member_pb2.OPERATION_DEDUCTION: "DEDUCTION",
}


def _enum_number(enum: Any, prefix: str, name: str) -> int:
    try:
        return int(enum.Value(prefix + name))
    except ValueError:
        return 0


def _timestamp(out: Any, at: datetime) -> None:
    out.FromDatetime(at.astimezone(UTC))


def _balances_to_proto(balances: tuple[BalanceInfo, ...], out: Any) -> None:
    for b in balances:
        item = out.add()
        item.point_type = b.point_type
        item.available = b.available
        item.held = b.held
        item.pending = b.pending
        item.expiring_soon = b.expiring_soon
        item.balance = b.balance


def _tiers_to_proto(tiers: tuple[TierStatus, ...], out: Any) -> None:
    for t in tiers:
        item = out.add()
        item.tier_group = t.tier_group
        item.tier = t.tier
        item.points = t.points
        item.next_tier = t.next_tier
        item.to_next = t.to_next
        if t.period_end is not None:
            _timestamp(item.period_end, t.period_end)


def _member_to_proto(
    info: MemberInfo, out: member_pb2.Member | member_pb2.GetMemberResponse
) -> None:
    out.member_id = info.member_id
    _timestamp(out.registered_at, info.registered_at)
    _balances_to_proto(info.balances, out.balances)
    _tiers_to_proto(info.tiers, out.tiers)


def _transaction_to_proto(txn: Transaction, out: member_pb2.Transaction) -> None:
    out.id = txn.id
    out.external_id = txn.external_id
    _timestamp(out.created_at, txn.created_at)
    out.type = _enum_number(member_pb2.TransactionType, "TRANSACTION_TYPE_", txn.type)  # type: ignore[assignment]
    out.member_id = txn.member_id
    out.point_type = txn.point_type
    out.balance_before = txn.balance_before
    out.value = txn.value
    out.balance_after = txn.balance_after
    out.source_type = _enum_number(member_pb2.SourceType, "SOURCE_TYPE_", txn.source_type)  # type: ignore[assignment]
    out.source_id = txn.source_id
    out.comment = txn.comment
    out.extra = txn.extra


def _check_id(bad: list[FieldViolation], value: str, field: str) -> None:
    if not value:
        bad.append(FieldViolation(field, "required"))
    elif len(value) > MAX_ID_CHARS:
        bad.append(FieldViolation(field, f"at most {MAX_ID_CHARS} characters"))


def _registered_at(
    request: member_pb2.EnrollMemberRequest | member_pb2.MemberEnrollment, field: str,
    bad: list[FieldViolation],
    tz: ZoneInfo = _UTC_ZONE,
) -> datetime | None:
    """`registered_at` when given; else the profile field `registration_field` names (RFC 3339,
    or a date: midnight in the program's time zone); else None (the server's clock)."""
    if request.HasField("registered_at"):
        stamp = request.registered_at
        at = timestamp_in_range(stamp.seconds, stamp.nanos)
        if at is None:
            bad.append(FieldViolation(field, TIMESTAMP_RANGE))
        return at
    name = request.registration_field
    if not name:
        return None
    prefix = field[: -len("registered_at")]
    if name not in request.fields:
        bad.append(FieldViolation(f"{prefix}fields[{name}]",
                                  "missing: registration_field names it"))
        return None
    text = request.fields[name].strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tz).astimezone(UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        bad.append(FieldViolation(f"{prefix}fields[{name}]",
                                  "not a date (YYYY-MM-DD) or an RFC 3339 instant"))
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def _registered_or_raise(
    request: member_pb2.EnrollMemberRequest | member_pb2.MemberEnrollment, index: int,
    tz: ZoneInfo,
) -> datetime | None:
    bad: list[FieldViolation] = []
    registered = _registered_at(request, f"members[{index}].registered_at", bad, tz)
    _raise_if(bad)
    return registered


def _batch(
    request: member_pb2.EnrollMemberRequest, first: int, tz: ZoneInfo
) -> tuple[list[str], list[datetime | None]]:
    """The members one message of an EnrollMembers stream carries (its own, then `members`),
    `first` the stream index of the first; a bad registration names `members[<i>]`."""
    ids: list[str] = []
    times: list[datetime | None] = []
    batch = request.members
    if (request.member_id or not batch or request.registration_field or request.fields
            or request.HasField("registered_at")):
        ids.append(request.member_id)
        times.append(_registered_or_raise(request, first, tz))
    add_id, add_time = ids.append, times.append
    for member in batch:
        add_id(member.member_id)
        if member.registration_field or member.HasField("registered_at"):
            add_time(_registered_or_raise(member, first + len(ids) - 1, tz))
        else:
            add_time(None)
    return ids, times


def _zone(program: program_pb2.Program) -> ZoneInfo:
    try:
        return ZoneInfo(program.time_zone or "UTC")
    except (ValueError, KeyError):
        return _UTC_ZONE


_TYPES: Final = {
    v.number: v.name.removeprefix("TRANSACTION_TYPE_")
    for v in member_pb2.TransactionType.DESCRIPTOR.values if v.number
}
_SOURCES: Final = {
    v.number: v.name.removeprefix("SOURCE_TYPE_")
    for v in member_pb2.SourceType.DESCRIPTOR.values if v.number
}


def _window_bound(request: Any, name: str, bad: list[FieldViolation]) -> datetime | None:
    if not request.HasField(name):
        return None
    stamp = getattr(request, name)
    at = timestamp_in_range(stamp.seconds, stamp.nanos)
    if at is None:
        bad.append(FieldViolation(name, TIMESTAMP_RANGE))
    return at


def _raise_if(bad: list[FieldViolation]) -> None:
    if bad:
        raise InvalidArgument(bad)


class MemberService(member_pb2_grpc.MemberServiceServicer):
    """Thin servicer over the ledger. Every write invalidates the member in the directory.

    Without a ledger every RPC is UNIMPLEMENTED (a quote-only server).
    """

    def __init__(
        self,
        programs: ProgramRegistry,
        members: MemberDirectory,
        clock: Clock,
        ledger: Ledger | None = None,
    ) -> None:
        self._programs = programs
        self._members = members
        self._clock = clock
        self._ledger = ledger

    def _forget(
        self, program_id: str, member_id: str, *, codes: bool = False
    ) -> Callable[[], Awaitable[None]]:
        """What a write of a member outdates: the member; with `codes`, the uses of every code
        of the program too (a removal releases the member's held codes)."""

        async def forget() -> None:
            self._members.invalidate(program_id, member_id)
            if codes:
                self._members.invalidate_codes(program_id)

        return forget

    def _begin(
        self, program_id: str, bad: list[FieldViolation]
    ) -> tuple[Ledger, AppliedProgram, program_pb2.Program]:
        if self._ledger is None:
            raise NotImplementedError("members need the ledger")
        if not program_id:
            bad.insert(0, FieldViolation("program", "required"))
            raise InvalidArgument(bad)
        _raise_if(bad)
        applied = self._programs.get(program_id)
        assert applied.source is not None
        return self._ledger, applied, applied.source

    @staticmethod
    def _check_point_type(
        bad: list[FieldViolation], applied: AppliedProgram, point_type: str, *, required: bool
    ) -> None:
        if not point_type:
            if required:
                bad.append(FieldViolation("point_type", "required"))
        elif point_type not in applied.compiled.point_type_ids:
            bad.append(FieldViolation("point_type", f"unknown point type {point_type[:40]!r}"))

    async def GetMember(
        self, request: member_pb2.GetMemberRequest, context: Any
    ) -> member_pb2.GetMemberResponse:
        bad: list[FieldViolation] = []
        _check_id(bad, request.member_id, "member_id")
        if request.expiring_within_days < 0:
            bad.append(FieldViolation("expiring_within_days", "must not be negative"))
        ledger, _, program = self._begin(request.program, bad)
        info = await ledger.get_member(
            program,
            request.member_id,
            expiring_within_days=request.expiring_within_days,
            now=self._clock(),
        )
        response = member_pb2.GetMemberResponse()
        _member_to_proto(info, response)
        return response

    async def ListTransactions(
        self, request: member_pb2.ListTransactionsRequest, context: Any
    ) -> member_pb2.ListTransactionsResponse:
        """A member's transactions, or without `member_id` the program's (the Transactions
        tab), filtered by point type, type, source and window; oldest first, paged."""
        bad: list[FieldViolation] = []
        if request.member_id:
            _check_id(bad, request.member_id, "member_id")
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            bad.append(
                FieldViolation(
                    "page_size",
                    f"must lie in [0, {MAX_PAGE_SIZE}] (0 means the default, {DEFAULT_PAGE_SIZE})",
                )
            )
        if request.type and request.type not in _TYPES:
            bad.append(FieldViolation("type", "not a TransactionType"))
        if request.source_type and request.source_type not in _SOURCES:
            bad.append(FieldViolation("source_type", "not a SourceType"))
        start = _window_bound(request, "from", bad)
        end = _window_bound(request, "to", bad)
        if start is not None and end is not None and end <= start:
            bad.append(FieldViolation("to", "must be after `from`"))
        ledger, applied, program = self._begin(request.program, bad)
        self._check_point_type(bad, applied, request.point_type, required=False)
        _raise_if(bad)
        page = await ledger.list_transactions(
            program,
            request.member_id,
            point_type=request.point_type,
            page_size=request.page_size,
            page_token=request.page_token,
            filters=TransactionFilter(
                point_type=request.point_type,
                type=_TYPES.get(request.type, ""),
                source_type=_SOURCES.get(request.source_type, ""),
                start=start,
                end=end,
            ),
        )
        response = member_pb2.ListTransactionsResponse(next_page_token=page.next_page_token)
        for txn in page.transactions:
            _transaction_to_proto(txn, response.transactions.add())
        return response

    async def GetExpiringPoints(
        self, request: member_pb2.GetExpiringPointsRequest, context: Any
    ) -> member_pb2.GetExpiringPointsResponse:
        bad: list[FieldViolation] = []
        _check_id(bad, request.member_id, "member_id")
        if request.within_days < 0:
            bad.append(FieldViolation("within_days", "must not be negative"))
        if not 0 <= request.limit <= MAX_PAGE_SIZE:
            bad.append(FieldViolation("limit", f"must lie in [0, {MAX_PAGE_SIZE}]"))
        ledger, applied, program = self._begin(request.program, bad)
        self._check_point_type(bad, applied, request.point_type, required=False)
        _raise_if(bad)
        lots = await ledger.expiring_points(
            program,
            request.member_id,
            point_type=request.point_type,
            within_days=request.within_days,
            limit=request.limit,
            descending=request.descending,
            now=self._clock(),
        )
        response = member_pb2.GetExpiringPointsResponse()
        for lot in lots:
            item = response.lots.add()
            item.point_type = lot.point_type
            item.points = lot.points
            _timestamp(item.expires_at, lot.expires_at)
        return response

    async def EnrollMember(
        self, request: member_pb2.EnrollMemberRequest, context: Any
    ) -> member_pb2.EnrollMemberResponse:
        bad: list[FieldViolation] = []
        _check_id(bad, request.member_id, "member_id")
        if request.members:
            bad.append(FieldViolation("members", "only EnrollMembers takes several members"))
        ledger, _, program = self._begin(request.program, bad)
        registered = _registered_at(request, "registered_at", bad, _zone(program))
        _raise_if(bad)
        result = await after_write(
            ledger.enroll(program, request.member_id, registered_at=registered, now=self._clock()),
            self._forget(request.program, request.member_id),
        )
        response = member_pb2.EnrollMemberResponse(created=result.created)
        _member_to_proto(result.member, response.member)
        return response

    async def EnrollMembers(
        self, request_iterator: AsyncIterable[member_pb2.EnrollMemberRequest], context: Any
    ) -> member_pb2.EnrollMembersResponse:
        if self._ledger is None:
            raise NotImplementedError("members need the ledger")
        ledger = self._ledger
        stream = aiter(request_iterator)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            return member_pb2.EnrollMembersResponse()
        _, _, program = self._begin(first.program, [])
        program_id = first.program
        zone = _zone(program)
        forget = self._members.invalidate

        def written(member_ids: Sequence[str]) -> None:
            for member_id in member_ids:
                forget(program_id, member_id)

        async def batches() -> AsyncIterator[MemberBatch]:
            index = 0  # members of the stream before this message
            request: member_pb2.EnrollMemberRequest | None = first
            while request is not None:
                if request.program != program_id:
                    raise InvalidArgument.field(
                        f"members[{index}].program", "every request of a stream names one program"
                    )
                ids, times = _batch(request, index, zone)
                index += len(ids)
                if index > MAX_ENROLL_STREAM:
                    raise InvalidArgument.field(
                        "members", f"at most {MAX_ENROLL_STREAM} members per stream"
                    )
                yield ids, times
                request = await anext(stream, None)

        result = await ledger.enroll_batches(program, batches(), now=self._clock(),
                                             written=written)
        return member_pb2.EnrollMembersResponse(
            enrolled=result.enrolled, already_enrolled=result.already_enrolled
        )

    async def RemoveMember(
        self, request: member_pb2.RemoveMemberRequest, context: Any
    ) -> member_pb2.RemoveMemberResponse:
        bad: list[FieldViolation] = []
        _check_id(bad, request.member_id, "member_id")
        ledger, _, program = self._begin(request.program, bad)
        await after_write(
            ledger.remove_member(program, request.member_id, now=self._clock()),
            self._forget(request.program, request.member_id, codes=True),
        )
        return member_pb2.RemoveMemberResponse()

    async def EnrollSegment(
        self, request: member_pb2.EnrollSegmentRequest, context: Any
    ) -> member_pb2.EnrollSegmentResponse:
        """Every profile id of a member segment of the applied version, as EnrollMembers."""
        bad: list[FieldViolation] = []
        if not request.segment:
            bad.append(FieldViolation("segment", "required: a member segment id"))
        registered = None
        if request.HasField("registered_at"):
            stamp = request.registered_at
            registered = timestamp_in_range(stamp.seconds, stamp.nanos)
            if registered is None:
                bad.append(FieldViolation("registered_at", TIMESTAMP_RANGE))
        ledger, _, program = self._begin(request.program, bad)
        segment = next((s for s in program.member_segments if s.id == request.segment), None)
        if segment is None:
            raise NotFound("member segment", request.segment)
        for i, member_id in enumerate(segment.members):
            _check_id(bad, member_id, f"segment.members[{i}]")
        _raise_if(bad)
        ids = list(segment.members)
        result = await ledger.enroll_many(
            program, [(m, registered) for m in ids], now=self._clock()
        )
        for member_id in ids:
            self._members.invalidate(request.program, member_id)
        return member_pb2.EnrollSegmentResponse(
            enrolled=result.enrolled, already_enrolled=result.already_enrolled
        )

    async def ClearMembers(
        self, request: member_pb2.ClearMembersRequest, context: Any
    ) -> AsyncIterator[member_pb2.ClearMembersResponse]:
        """Remove every member (their history kept, marked removed), a batch per transaction;
        progress after each batch, the last message `done`. Refused without `confirm`."""
        bad: list[FieldViolation] = []
        if not request.confirm:
            bad.append(FieldViolation(
                "confirm", "must be true: every member of the program is removed"))
        ledger, _, program = self._begin(request.program, bad)
        removed = total = 0
        try:
            async for removed, total in ledger.clear_members(program, now=self._clock()):
                yield member_pb2.ClearMembersResponse(removed=removed, total=total)
        finally:
            self._members.invalidate(request.program)
            self._members.invalidate_codes(request.program)
        yield member_pb2.ClearMembersResponse(removed=removed, total=total, done=True)

    async def ExportMembers(
        self, request: member_pb2.ExportMembersRequest, context: Any
    ) -> AsyncIterator[member_pb2.Member]:
        ledger, _, program = self._begin(request.program, [])
        async for info in ledger.export_members(program, now=self._clock()):
            member = member_pb2.Member()
            _member_to_proto(info, member)
            yield member

    def _points_request(
        self, request: member_pb2.ApplyTriggerRequest | member_pb2.CreateTransactionRequest
    ) -> tuple[Ledger, program_pb2.Program, str]:
        bad: list[FieldViolation] = []
        _check_id(bad, request.member_id, "member_id")
        if isinstance(request, member_pb2.ApplyTriggerRequest):
            _check_id(bad, request.trigger_promotion, "trigger_promotion")
        _check_id(bad, request.external_id, "external_id")
        operation = _OPERATIONS.get(request.operation)
        if operation is None:
            bad.append(FieldViolation("operation", "ACCRUAL or DEDUCTION"))
        if request.points <= 0:
            bad.append(FieldViolation("points", "must be positive"))
        ledger, applied, program = self._begin(request.program, bad)
        self._check_point_type(bad, applied, request.point_type, required=True)
        _raise_if(bad)
        assert operation is not None
        return ledger, program, operation

    async def ApplyTrigger(
        self, request: member_pb2.ApplyTriggerRequest, context: Any
    ) -> member_pb2.ApplyTriggerResponse:
        ledger, program, operation = self._points_request(request)
        txn = await after_write(
            ledger.apply_trigger(
                program,
                member_id=request.member_id,
                trigger_promotion=request.trigger_promotion,
                point_type=request.point_type,
                operation=operation,
                points=request.points,
                external_id=request.external_id,
                comment=request.comment,
                now=self._clock(),
            ),
            self._forget(request.program, request.member_id),
        )
        response = member_pb2.ApplyTriggerResponse()
        _transaction_to_proto(txn, response.transaction)
        return response

    async def CreateTransaction(
        self, request: member_pb2.CreateTransactionRequest, context: Any
    ) -> member_pb2.CreateTransactionResponse:
        ledger, program, operation = self._points_request(request)
        txn = await after_write(
            ledger.create_transaction(
                program,
                member_id=request.member_id,
                point_type=request.point_type,
                operation=operation,
                points=request.points,
                external_id=request.external_id,
                comment=request.comment,
                extra=request.extra,
                now=self._clock(),
                audit=AuditRecord(
                    request.program,
                    actor_of(context),
                    "create_transaction",
                    "transaction",
                    request.external_id,
                    {
                        "member_id": request.member_id,
                        "point_type": request.point_type,
                        "operation": operation,
                        "points": request.points,
                        "comment": request.comment,
                    },
                ),
            ),
            self._forget(request.program, request.member_id),
        )
        response = member_pb2.CreateTransactionResponse()
        _transaction_to_proto(txn, response.transaction)
        return response
