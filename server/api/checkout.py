"""CheckoutService: quotes, and the order lifecycle (reserve, confirm, ...) with the ledger."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from time import perf_counter
from typing import Any, Final

from arbiter.server.api.calls import Undecodable, tolerant
from arbiter.server.api.translate import MAX_LINES, order_from_proto, result_to_proto
from arbiter.server.engine import (
    CalculationResult,
    CodeUsage,
    CompiledProgram,
    FieldViolation,
    InvalidOrder,
    MemberState,
    OrderInput,
    calculate,
    calculate_packed,
    with_static_segments,
)
from arbiter.server.ledger import (
    MAX_HOLD_SECONDS,
    Ledger,
    OrderOutcome,
    OrderRequest,
    PointsMovement,
)
from arbiter.server.state import (
    AppliedProgram,
    MemberDirectory,
    ProgramRegistry,
    after_write,
)
from arbiter.v1 import checkout_pb2, checkout_pb2_grpc, program_pb2

__all__ = [
    "REQUEST_READING",
    "RESPONSE_ENCODING",
    "SERIALIZED",
    "CheckoutService",
    "Clock",
    "encode_response",
    "payload_hash",
    "quote_inputs",
    "utc_now",
]

logger = logging.getLogger("arbiter.api")


Clock = Callable[[], datetime]

OrderMessage = checkout_pb2.ConfirmOrderRequest | checkout_pb2.ReserveOrderRequest


def utc_now() -> datetime:
    """The server's clock: an aware UTC instant."""
    return datetime.now(UTC)


async def quote_inputs(
    request: checkout_pb2.CalculateOrderRequest,
    compiled: CompiledProgram,
    members: MemberDirectory,
) -> tuple[OrderInput, MemberState | None, CodeUsage | None]:
    """What a quote calculates on (CalculateOrder, and TestCalculateOrder in api/testmode.py):
    the validated order (InvalidOrder naming every bad field), the member (the inline
    `member_context`; else the enrolled `member_id` through `members`, NOT_FOUND when it is not
    enrolled; else an anonymous buyer) and the uses of the order's promo codes."""
    order, member = order_from_proto(request, compiled.point_type_ids)
    member, usage = await _member_inputs(
        request.program, request.member_id, order, member, compiled, members
    )
    return order, member, usage


async def _member_inputs(
    program_id: str,
    member_id: str,
    order: OrderInput,
    member: MemberState | None,
    compiled: CompiledProgram,
    members: MemberDirectory,
) -> tuple[MemberState | None, CodeUsage | None]:
    """The member and the promo code uses of a validated order; `member` is the inline
    context's state, or None."""
    enrolled = member is None and bool(member_id)
    if enrolled:
        member = with_static_segments(compiled, await members.get(program_id, member_id))
    # Uses matter only to promo codes: an order without any awaits nothing for them.
    usage = (
        await members.usage(program_id, member_id if enrolled else None, order.promo_codes)
        if order.promo_codes
        else None
    )
    return member, usage


def _encode_plain(result: CalculationResult, program_version: int) -> bytes:
    return result_to_proto(result, program_version).SerializeToString()


# CalculateOrder answers with the response's wire bytes, encoded by the compiled encoder
# (api/_encode.pyx, built by `pip install`) from the engine's packed rows and lines (no Python
# object per benefit row or line result); where it is not built, or no longer matches the
# proto, the same bytes come from result_to_proto, and the server says so at start.
encode_response: Callable[[CalculationResult, int], bytes]
encode_packed: (
    Callable[[CalculationResult, int, bytes, bytes, CompiledProgram, Any], bytes] | None
)
try:
    from arbiter.server.api._encode import encode_packed as _encode_packed
    from arbiter.server.api._encode import encode_response as _encode_native
except ImportError as exc:
    encode_response = _encode_plain
    encode_packed = None
    RESPONSE_ENCODING: str = f"protobuf (the native encoder is not available: {exc})"
else:
    encode_response = _encode_native
    encode_packed = _encode_packed
    RESPONSE_ENCODING = "native"

# The request is read natively too (api/_decode.pyx) where built: a valid request straight into
# the engine's inputs; any doubt, and every request where it is not built, through protobuf and
# order_from_proto.
QuoteReader = Callable[[bytes], tuple[str, str, OrderInput, MemberState | None] | None]
read_quote: QuoteReader | None
try:
    from arbiter.server.api._decode import point_types_of, read_quote
except ImportError as exc:
    read_quote = None
    REQUEST_READING: str = f"protobuf (the native reader is not available: {exc})"
else:
    REQUEST_READING = "native"


def _quote_request(request: OrderMessage) -> checkout_pb2.CalculateOrderRequest:
    # The fields a ConfirmOrder / ReserveOrder shares with a quote; member_context is refused
    # before this is called.
    quote = checkout_pb2.CalculateOrderRequest(program=request.program, member_id=request.member_id)
    quote.order.CopyFrom(request.order)
    return quote


def payload_hash(quote: checkout_pb2.CalculateOrderRequest) -> str:
    """SHA-256 of every field that identifies the order (not `expected_total`, `hold_seconds`).

    Deterministic serialization sorts map entries (line `fields`), so equal requests hash
    equally; ReserveOrder and ConfirmOrder of one order give the same hash.
    """
    return hashlib.sha256(quote.SerializeToString(deterministic=True)).hexdigest()


def _movements_to_proto(movements: Sequence[PointsMovement], out: Any) -> None:
    for m in movements:
        item = out.add()
        item.point_type = m.point_type
        item.accrual_reversed = m.accrual_reversed
        item.redemption_refunded = m.redemption_refunded
        item.activated = m.activated
        item.shortfall = m.shortfall


def _parsed_quote(data: bytes) -> checkout_pb2.CalculateOrderRequest:
    """The plain path's parse of a serialized quote; bytes that are no such message answer as
    every other method's do (calls.Undecodable: INVALID_ARGUMENT, field "(request)")."""
    parse = _tolerant_quote(data)
    if type(parse) is Undecodable:
        raise parse.invalid("", checkout_pb2.CalculateOrderRequest.DESCRIPTOR.full_name)
    return parse  # type: ignore[no-any-return]


_tolerant_quote = tolerant(checkout_pb2.CalculateOrderRequest)


class CheckoutService(checkout_pb2_grpc.CheckoutServiceServicer):
    """Thin servicer: take the applied program, translate, calculate or call the ledger, translate
    back. Without a ledger (a server built for quotes only) the lifecycle RPCs are UNIMPLEMENTED.
    """

    def __init__(
        self,
        programs: ProgramRegistry,
        members: MemberDirectory,
        clock: Clock = utc_now,
        *,
        ledger: Ledger | None = None,
    ) -> None:
        self._programs = programs
        self._members = members
        self._clock = clock
        self._ledger = ledger
        # Set by the server when metrics are on: gets each calculation's duration in seconds.
        self.observe_calculation: Callable[[float], None] | None = None

    async def CalculateOrder(self, request: bytes, context: Any) -> bytes:
        """The quote of the serialized CalculateOrderRequest, as the serialized response
        (the server registers it with `calls.register(serialized=SERIALIZED)`, which passes both
        through unparsed)."""
        read = read_quote(request) if read_quote is not None else None
        if read is None:
            return await self._quote(_parsed_quote(request))
        program_id, member_id, order, member = read
        if not program_id:
            raise InvalidOrder([FieldViolation("program", "required")])
        # Taken once: a version published meanwhile does not change this request's answer.
        applied = self._programs.get(program_id)
        compiled = applied.compiled
        if (order.redeem or member is not None) and not compiled.point_type_ids.issuperset(
            point_types_of(order, member)
        ):
            # An unknown point type: the plain path names it.
            return await self._quote(checkout_pb2.CalculateOrderRequest.FromString(request))
        usage: CodeUsage | None = None
        if (member is None and member_id) or order.promo_codes:
            member, usage = await _member_inputs(
                program_id, member_id, order, member, compiled, self._members
            )
        # Else (the member's context inline, or a guest; no promo code) nothing is awaited.
        return self._answer(applied, order, member, usage)

    async def _quote(self, request: checkout_pb2.CalculateOrderRequest) -> bytes:
        """CalculateOrder through protobuf's parse and order_from_proto."""
        program_id = request.program
        if not program_id:
            raise InvalidOrder([FieldViolation("program", "required")])
        applied = self._programs.get(program_id)
        order, member, usage = await quote_inputs(request, applied.compiled, self._members)
        return self._answer(applied, order, member, usage)

    def _answer(
        self,
        applied: AppliedProgram,
        order: OrderInput,
        member: MemberState | None,
        usage: CodeUsage | None,
    ) -> bytes:
        """The serialized response: the calculation at the server's clock (timed when metrics
        are on), encoded natively from its packed rows where the encoder is built."""
        compiled = applied.compiled
        now = self._clock()
        observe = self.observe_calculation
        start = perf_counter() if observe is not None else 0.0
        if encode_packed is not None:
            result, rows, lines = calculate_packed(compiled, order, member, now=now, usage=usage)
        else:
            result = calculate(compiled, order, member, now=now, usage=usage)
        if observe is not None:
            observe(perf_counter() - start)
        if encode_packed is not None:
            return encode_packed(result, applied.version, rows, lines, compiled, order.lines)
        return encode_response(result, applied.version)

    # -- the order lifecycle -------------------------------------------------------------------

    def _storage(self) -> Ledger:
        if self._ledger is None:
            raise NotImplementedError("the order lifecycle needs the ledger")
        return self._ledger

    def _prepare(
        self, request: OrderMessage, hold_seconds: int | None
    ) -> tuple[AppliedProgram, OrderInput, OrderRequest]:
        """Validate a ConfirmOrder / ReserveOrder; every bad field in one InvalidOrder."""
        bad: list[FieldViolation] = []
        if not request.program:
            raise InvalidOrder([FieldViolation("program", "required")])
        applied = self._programs.get(request.program)
        if request.HasField("member_context"):
            bad.append(
                FieldViolation(
                    "member_context",
                    "not accepted here: the order is committed for the enrolled member_id,"
                    " or for a guest when member_id is empty",
                )
            )
        if not request.order.id:
            bad.append(FieldViolation("order.id", "required: the order's idempotency key"))
        if hold_seconds is not None and not 0 <= hold_seconds <= MAX_HOLD_SECONDS:
            bad.append(
                FieldViolation(
                    "hold_seconds", f"must lie in [0, {MAX_HOLD_SECONDS}] (0 means the default)"
                )
            )
        quote = _quote_request(request)
        order: OrderInput | None = None
        try:
            order, _ = order_from_proto(quote, applied.compiled.point_type_ids)
        except InvalidOrder as exc:
            bad.extend(exc.violations)
        if bad or order is None:
            raise InvalidOrder(bad)
        expected = request.expected_total if request.HasField("expected_total") else None
        raw = quote.SerializeToString(deterministic=True)
        ledger_request = OrderRequest(
            order_id=order.id,
            member_id=request.member_id,
            payload_hash=hashlib.sha256(raw).hexdigest(),
            request_bytes=raw,
            promo_codes=order.promo_codes,
            expected_total=expected,
            program_version=applied.version,
            redeem=order.redeem,
        )
        return applied, order, ledger_request

    def _compute(
        self, applied: AppliedProgram, order: OrderInput, now: datetime
    ) -> Callable[[MemberState | None, CodeUsage], CalculationResult]:
        compiled = applied.compiled

        def compute(member: MemberState | None, usage: CodeUsage) -> CalculationResult:
            # The ledger's member is enrolled: the program's static segments listing it count.
            # None is a guest order: an anonymous buyer.
            if member is not None:
                member = with_static_segments(compiled, member)
            observe = self.observe_calculation
            if observe is None:
                return calculate(compiled, order, member, now=now, usage=usage)
            start = perf_counter()
            result = calculate(compiled, order, member, now=now, usage=usage)
            observe(perf_counter() - start)
            return result

        return compute

    @staticmethod
    def _version(applied: AppliedProgram, outcome: OrderOutcome) -> int:
        # The version the stored result was computed on (the reservation's, for a posted hold),
        # stored with the order; an order stored before versions were kept answers with this
        # request's.
        if outcome.program_version is None:
            return applied.version
        return outcome.program_version

    def _forget_order(
        self, program_id: str, member_id: str, codes: Sequence[str]
    ) -> Callable[[], Awaitable[None]]:
        """What a confirm or reserve outdates: the member (balances, pool uses; a guest has
        none) and the uses of the order's codes by everyone."""

        async def forget() -> None:
            if member_id:
                self._members.invalidate(program_id, member_id)
            self._members.invalidate_codes(program_id, codes)

        return forget

    @staticmethod
    def _program_id(applied: AppliedProgram) -> str:
        assert applied.source is not None
        return applied.source.id

    @staticmethod
    def _source(applied: AppliedProgram) -> program_pb2.Program:
        assert applied.source is not None, "the lifecycle needs the published program"
        return applied.source

    async def ConfirmOrder(
        self, request: checkout_pb2.ConfirmOrderRequest, context: Any
    ) -> checkout_pb2.ConfirmOrderResponse:
        ledger = self._storage()
        applied, order, ledger_request = self._prepare(request, None)
        now = self._clock()
        outcome = await after_write(
            ledger.confirm_order(
                self._source(applied), ledger_request, self._compute(applied, order, now), now=now
            ),
            self._forget_order(request.program, request.member_id, ledger_request.promo_codes),
        )
        version = self._version(applied, outcome)
        response = checkout_pb2.ConfirmOrderResponse()
        response.result.CopyFrom(result_to_proto(outcome.result, version))
        return response

    async def ReserveOrder(
        self, request: checkout_pb2.ReserveOrderRequest, context: Any
    ) -> checkout_pb2.ReserveOrderResponse:
        ledger = self._storage()
        applied, order, ledger_request = self._prepare(request, request.hold_seconds)
        now = self._clock()
        outcome = await after_write(
            ledger.reserve_order(
                self._source(applied),
                ledger_request,
                self._compute(applied, order, now),
                hold_seconds=request.hold_seconds,
                now=now,
            ),
            self._forget_order(request.program, request.member_id, ledger_request.promo_codes),
        )
        version = self._version(applied, outcome)
        response = checkout_pb2.ReserveOrderResponse()
        response.result.CopyFrom(result_to_proto(outcome.result, version))
        if outcome.hold_until is not None:
            response.hold_until.FromDatetime(outcome.hold_until)
        return response

    async def _order_step(self, program_id: str, order_id: str) -> tuple[Ledger, AppliedProgram]:
        ledger = self._storage()
        bad = []
        if not program_id:
            bad.append(FieldViolation("program", "required"))
        if not order_id:
            bad.append(FieldViolation("order_id", "required"))
        if bad:
            raise InvalidOrder(bad)
        return ledger, self._programs.get(program_id)

    def _forget_order_member(
        self, program_id: str, order_id: str, *, codes: bool = False
    ) -> Callable[[], Awaitable[None]]:
        """What a step on a stored order outdates: its member; with `codes`, the uses of every
        code of the program (a cancel releases the order's codes, which only the ledger knows).
        Deliver and return leave code uses as they are (docs/ledger.md: only a cancel releases)."""

        async def forget() -> None:
            if codes:
                self._members.invalidate_codes(program_id)
            ledger = self._storage()
            try:
                member_id = await ledger.order_member(program_id, order_id)
            except Exception:
                member_id = None
            if member_id == "":
                return  # a guest order: no member's state changed
            # An order the ledger does not know (or cannot tell now): forget the whole program
            # rather than guess.
            self._members.invalidate(program_id, member_id)

        return forget

    async def DeliverOrder(
        self, request: checkout_pb2.DeliverOrderRequest, context: Any
    ) -> checkout_pb2.DeliverOrderResponse:
        ledger, applied = await self._order_step(request.program, request.order_id)
        movements = await after_write(
            ledger.deliver_order(self._source(applied), request.order_id, now=self._clock()),
            self._forget_order_member(request.program, request.order_id),
        )
        response = checkout_pb2.DeliverOrderResponse()
        _movements_to_proto(movements, response.activated)
        return response

    async def CancelOrder(
        self, request: checkout_pb2.CancelOrderRequest, context: Any
    ) -> checkout_pb2.CancelOrderResponse:
        ledger, applied = await self._order_step(request.program, request.order_id)
        movements = await after_write(
            ledger.cancel_order(self._source(applied), request.order_id, now=self._clock()),
            self._forget_order_member(request.program, request.order_id, codes=True),
        )
        response = checkout_pb2.CancelOrderResponse()
        _movements_to_proto(movements, response.reversed)
        return response

    async def ReturnOrder(
        self, request: checkout_pb2.ReturnOrderRequest, context: Any
    ) -> checkout_pb2.ReturnOrderResponse:
        ledger, applied = await self._order_step(request.program, request.order_id)
        bad = []
        if not request.return_id:
            bad.append(FieldViolation("return_id", "required: the return's idempotency key"))
        if not request.lines:
            bad.append(FieldViolation("lines", "at least one line to return"))
        elif len(request.lines) > MAX_LINES:
            raise InvalidOrder([FieldViolation("lines", f"at most {MAX_LINES} lines")])
        for index, line in enumerate(request.lines):
            if not line.line_id:
                bad.append(FieldViolation(f"lines[{index}].line_id", "required"))
            if line.quantity <= 0:
                bad.append(FieldViolation(f"lines[{index}].quantity", "must be positive"))
        if bad:
            raise InvalidOrder(bad)
        lines = [(line.line_id, line.quantity) for line in request.lines]
        movements = await after_write(
            ledger.return_order(
                self._source(applied),
                request.order_id,
                request.return_id,
                lines,
                now=self._clock(),
            ),
            self._forget_order_member(request.program, request.order_id),
        )
        response = checkout_pb2.ReturnOrderResponse()
        _movements_to_proto(movements, response.reversed)
        return response


#: The methods of CheckoutService whose servicer takes the request and returns the response
#: serialized.
SERIALIZED: Final = frozenset({"CalculateOrder"})
