"""Translation between the calculation messages of arbiter.v1 and the engine's boundary types.

`order_from_proto` is the boundary check (docs/contract.md): it reads the request once and reports
every bad field in one `InvalidOrder`, with paths such as `order.lines[2].quantity`.
`result_to_proto` builds the response in place (`add()` then attribute sets: measured to be the
cheapest way with the upb runtime, cheaper than keyword constructors and `extend`).

This module holds no business rule: it checks what the engine must be able to rely on (signs,
uniqueness, known names, bounds that keep every int64 product of the engine from overflowing)
and copies fields. The limits are public constants, documented in docs/api.md.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from arbiter.server.engine import (
    CalculationResult,
    FieldViolation,
    InvalidOrder,
    LineInput,
    MemberState,
    OrderInput,
)
from arbiter.server.engine.types import MAX_PROMO_CODES
from arbiter.server.state.instants import (
    EPOCH,
    TIMESTAMP_RANGE,
    timestamp_in_range,
    timestamp_valid,
)
from arbiter.v1 import checkout_pb2, program_pb2

__all__ = [
    "MAX_BALANCES",
    "MAX_CATEGORIES_PER_LINE",
    "MAX_FIELDS_PER_LINE",
    "MAX_LINES",
    "MAX_MONEY_MINOR",
    "MAX_POINTS",
    "MAX_PROMO_CODES",
    "MAX_QUANTITY",
    "MAX_REDEMPTIONS",
    "MAX_SEGMENTS",
    "MAX_TIERS",
    "TIMESTAMP_RANGE",
    "order_from_proto",
    "result_to_proto",
    "timestamp_in_range",
]

# --- Limits on what enters (docs/api.md). ---------------------------------------------------
MAX_LINES: Final = 1000
MAX_REDEMPTIONS: Final = 64
MAX_CATEGORIES_PER_LINE: Final = 64
MAX_FIELDS_PER_LINE: Final = 64
MAX_BALANCES: Final = 256
MAX_TIERS: Final = 64
MAX_SEGMENTS: Final = 10_000
MAX_QUANTITY: Final = 1_000_000
# A unit price, the order's subtotal and its shipping stay below 10^13 minor units (100 billion
# in currency units), so that an amount times basis points (even a 100x accrual, 10^6 bp) stays
# below 2^63 in the engine's int64 arithmetic.
MAX_MONEY_MINOR: Final = 10**13
# Redemptions and member-context balances: the same reasoning for points times a ratio.
MAX_POINTS: Final = 10**15

# A caller's value is echoed in an error at most this long (errors travel in headers).
_MAX_ECHO_CHARS: Final = 40

# Lines without custom fields and member contexts without balances or tiers (the usual cases)
# share one empty read-only mapping, and members without segments one empty set.
_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
_NO_SEGMENTS: Final[frozenset[str]] = frozenset()

# The input types are built from one tuple of their fields by the named tuples' public `_make`
# (measured cheaper than their keyword-capable constructors: about 2k instructions per order).
_new_line: Final = LineInput._make


# The longest IANA name is about 30 characters; longer is not looked up (nor cached).
_MAX_TIME_ZONE_CHARS: Final = 64


def _is_time_zone(name: str) -> bool:
    return len(name) <= _MAX_TIME_ZONE_CHARS and _is_time_zone_name(name)


@lru_cache(maxsize=512)
def _is_time_zone_name(name: str) -> bool:
    # Bounded cache of short keys: garbage names can evict good ones, never grow memory much.
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a name that is a directory ("Europe") or that the file system rejects.
        return False
    return True


def _echo(value: str) -> str:
    if len(value) > _MAX_ECHO_CHARS:
        value = value[:_MAX_ECHO_CHARS] + "…"
    return repr(value)


def order_from_proto(
    request: checkout_pb2.CalculateOrderRequest,
    known_point_types: Collection[str],
) -> tuple[OrderInput, MemberState | None]:
    """The request's order and member state, or InvalidOrder naming every bad field.

    The member: `member_context` given -> a MemberState from it, named by `member_id` (possibly
    empty); otherwise None. None with a non-empty `request.member_id` means an enrolled member
    that the caller resolves (a MemberDirectory); None without one is an anonymous buyer.

    The request is read once by a fast path that only proves it valid (a valid request runs no
    other code); any doubt sends the whole request to `_violations`, which names every bad field.
    """
    order = request.order

    lines: tuple[LineInput, ...] | None = ()
    lines_pb = order.lines
    if lines_pb:
        lines = _lines_fast(lines_pb)

    promo_codes: tuple[str, ...] = ()
    codes_pb = order.promo_codes
    if codes_pb:
        promo_codes = tuple(codes_pb[:])

    redeem: tuple[tuple[str, int], ...] | None = ()
    redeem_pb = order.redeem
    if redeem_pb:
        redeem = _redemptions_fast(redeem_pb, known_point_types)

    created_at: datetime | None = None
    created_at_valid = True
    if order.HasField("created_at"):
        stamp = order.created_at
        created_at = timestamp_in_range(stamp.seconds, stamp.nanos)
        created_at_valid = created_at is not None

    member: MemberState | None = None
    member_valid = True
    if request.HasField("member_context"):
        member = _member_fast(request, known_point_types)
        member_valid = member is not None

    shipping_cost = order.shipping_cost
    time_zone = order.time_zone
    if (
        lines is None
        or redeem is None
        or not (
            member_valid
            and created_at_valid
            and 0 <= shipping_cost <= MAX_MONEY_MINOR
            and len(promo_codes) <= MAX_PROMO_CODES
            and "" not in promo_codes
            and (not time_zone or _is_time_zone(time_zone))
        )
    ):
        raise InvalidOrder(_violations(request, known_point_types))
    return (
        OrderInput._make(
            (
                order.id,
                lines,
                order.channel,
                order.point_of_contact,
                order.region,
                time_zone,
                created_at,
                shipping_cost,
                promo_codes,
                redeem,
            )
        ),
        member,
    )


def _lines_fast(lines_pb: Sequence[checkout_pb2.Line]) -> tuple[LineInput, ...] | None:
    """The lines, or None unless every line is proved valid.

    One combined condition per line; the usual line (no custom fields) builds no dictionary.
    The container is sliced before the loop: iterating a upb repeated field directly ends in an
    IndexError raised and formatted inside (measured: most of an empty loop's cost).
    """
    if len(lines_pb) > MAX_LINES:
        return None
    built: list[LineInput] = []
    ids: set[str] = set()
    subtotal = 0
    for line in lines_pb[:]:
        line_id = line.id
        quantity = line.quantity
        unit_price = line.unit_price
        categories = line.categories
        fields = line.fields
        if not (
            line_id
            and 0 < quantity <= MAX_QUANTITY
            and 0 <= unit_price <= MAX_MONEY_MINOR
            and len(categories) <= MAX_CATEGORIES_PER_LINE
            and len(fields) <= MAX_FIELDS_PER_LINE
        ):
            return None
        ids.add(line_id)
        subtotal += quantity * unit_price
        built.append(
            _new_line(
                (
                    line_id,
                    line.sku,
                    quantity,
                    unit_price,
                    # Slicing first: the upb container's C slice beats tuple()'s iteration.
                    tuple(categories[:]) if categories else (),
                    line.brand,
                    line.partner,
                    # A comprehension beats dict() over the upb map (measured, ~3x).
                    {key: fields[key] for key in fields} if fields else _EMPTY,
                )
            )
        )
    if len(ids) != len(built) or subtotal > MAX_MONEY_MINOR:
        return None
    return tuple(built)


def _redemptions_fast(
    redeem_pb: Sequence[checkout_pb2.Redemption], known_point_types: Collection[str]
) -> tuple[tuple[str, int], ...] | None:
    """The (point_type, points) pairs in request order, or None unless all are proved valid."""
    if len(redeem_pb) > MAX_REDEMPTIONS:
        return None
    redeem: list[tuple[str, int]] = []
    seen: set[str] = set()
    for redemption in redeem_pb[:]:
        point_type = redemption.point_type
        points = redemption.points
        if not (
            point_type
            and point_type in known_point_types
            and point_type not in seen
            and 0 <= points <= MAX_POINTS
        ):
            return None
        seen.add(point_type)
        redeem.append((point_type, points))
    return tuple(redeem)


def _member_fast(
    request: checkout_pb2.CalculateOrderRequest, known_point_types: Collection[str]
) -> MemberState | None:
    """The member context's state, or None unless all of it is proved valid."""
    context = request.member_context

    balances: Mapping[str, int] = _EMPTY
    balances_pb = context.balances
    if balances_pb:
        if len(balances_pb) > MAX_BALANCES:
            return None
        summed: dict[str, int] = {}
        for balance in balances_pb[:]:
            point_type = balance.point_type
            available = balance.available
            # Negative is legitimate (a type may allow a negative balance); only the size is
            # bounded.
            if not (point_type in known_point_types and -MAX_POINTS <= available <= MAX_POINTS):
                return None
            # Rule 23 (docs/rules.md): a context's balances of one type are summed.
            summed[point_type] = summed.get(point_type, 0) + available
        balances = summed

    tiers: Mapping[str, str] = _EMPTY
    tiers_pb = context.tiers
    if tiers_pb:
        if len(tiers_pb) > MAX_TIERS:
            return None
        chosen: dict[str, str] = {}
        for tier_ref in tiers_pb[:]:
            group = tier_ref.tier_group
            tier = tier_ref.tier
            if not (group and tier and group not in chosen):
                return None
            chosen[group] = tier
        tiers = chosen

    segments: frozenset[str] = _NO_SEGMENTS
    segments_pb = context.segments
    if segments_pb:
        if len(segments_pb) > MAX_SEGMENTS:
            return None
        segments = frozenset(segments_pb[:])

    return MemberState._make((request.member_id, balances, tiers, segments))


# --- The detailed checks: run only for a request the fast path could not prove valid. ---------


def _violations(
    request: checkout_pb2.CalculateOrderRequest, known_point_types: Collection[str]
) -> list[FieldViolation]:
    """Every bad field of the request, in the order of its parts (never empty: it is called
    only when the fast path found something wrong, and checks the same conditions)."""
    order = request.order
    bad: list[FieldViolation] = []

    if order.lines:
        _line_errors(order.lines, bad)

    shipping_cost = order.shipping_cost
    if not 0 <= shipping_cost <= MAX_MONEY_MINOR:
        bad.append(
            FieldViolation(
                "order.shipping_cost",
                "must not be negative"
                if shipping_cost < 0
                else f"at most {MAX_MONEY_MINOR} minor units",
            )
        )

    codes_pb = order.promo_codes
    code_count = len(codes_pb)
    if code_count > MAX_PROMO_CODES:
        bad.append(
            FieldViolation(
                "order.promo_codes", f"at most {MAX_PROMO_CODES} codes, got {code_count}"
            )
        )
    else:
        bad.extend(
            FieldViolation(f"order.promo_codes[{i}]", "must not be empty")
            for i, code in enumerate(codes_pb[:])
            if not code
        )

    if order.redeem:
        _redemption_errors(order.redeem, known_point_types, bad)

    time_zone = order.time_zone
    if time_zone and not _is_time_zone(time_zone):
        bad.append(FieldViolation("order.time_zone", f"unknown time zone {_echo(time_zone)}"))

    if order.HasField("created_at"):
        stamp = order.created_at
        if not timestamp_valid(stamp.seconds, stamp.nanos):
            bad.append(FieldViolation("order.created_at", TIMESTAMP_RANGE))

    if request.HasField("member_context"):
        _member_errors(request.member_context, known_point_types, bad)

    if not bad:
        # The fast path refused what these checks accept: a bug here, not the caller's.
        raise RuntimeError("order_from_proto: the fast path and the detailed checks disagree")
    return bad


def _line_errors(lines_pb: Sequence[checkout_pb2.Line], bad: list[FieldViolation]) -> None:
    """Every bad field of the lines, added to `bad` (no line is built: the order is refused)."""
    line_count = len(lines_pb)
    if line_count > MAX_LINES:
        # Per-line checks are skipped: the order is refused whole, and a huge order must not buy
        # a huge error.
        bad.append(FieldViolation("order.lines", f"at most {MAX_LINES} lines, got {line_count}"))
        return
    first_index: dict[str, int] = {}
    subtotal = 0
    for index, line in enumerate(lines_pb[:]):
        line_id = line.id
        quantity = line.quantity
        unit_price = line.unit_price
        category_count = len(line.categories)
        field_count = len(line.fields)
        seen_at = first_index.setdefault(line_id, index)
        if (
            seen_at != index
            or not line_id
            or not 0 < quantity <= MAX_QUANTITY
            or not 0 <= unit_price <= MAX_MONEY_MINOR
            or category_count > MAX_CATEGORIES_PER_LINE
            or field_count > MAX_FIELDS_PER_LINE
        ):
            _line_violations(bad, index, line, seen_at, category_count, field_count)
        else:
            subtotal += quantity * unit_price
    if subtotal > MAX_MONEY_MINOR:
        bad.append(
            FieldViolation(
                "order.lines",
                f"the subtotal (sum of quantity * unit_price) is at most {MAX_MONEY_MINOR}",
            )
        )


def _line_violations(
    bad: list[FieldViolation],
    index: int,
    line: checkout_pb2.Line,
    seen_at: int,
    category_count: int,
    field_count: int,
) -> None:
    # Entered only for a line with something wrong: say what, field by field.
    path = f"order.lines[{index}]"
    if not line.id:
        bad.append(FieldViolation(f"{path}.id", "required"))
    elif seen_at != index:
        bad.append(
            FieldViolation(f"{path}.id", f"duplicate of order.lines[{seen_at}].id {_echo(line.id)}")
        )
    quantity = line.quantity
    if quantity <= 0:
        bad.append(FieldViolation(f"{path}.quantity", "must be positive"))
    elif quantity > MAX_QUANTITY:
        bad.append(FieldViolation(f"{path}.quantity", f"at most {MAX_QUANTITY}"))
    unit_price = line.unit_price
    if unit_price < 0:
        bad.append(FieldViolation(f"{path}.unit_price", "must not be negative"))
    elif unit_price > MAX_MONEY_MINOR:
        bad.append(FieldViolation(f"{path}.unit_price", f"at most {MAX_MONEY_MINOR} minor units"))
    if category_count > MAX_CATEGORIES_PER_LINE:
        bad.append(
            FieldViolation(f"{path}.categories", f"at most {MAX_CATEGORIES_PER_LINE} categories")
        )
    if field_count > MAX_FIELDS_PER_LINE:
        bad.append(FieldViolation(f"{path}.fields", f"at most {MAX_FIELDS_PER_LINE} fields"))


def _redemption_errors(
    redeem_pb: Sequence[checkout_pb2.Redemption],
    known_point_types: Collection[str],
    bad: list[FieldViolation],
) -> None:
    if len(redeem_pb) > MAX_REDEMPTIONS:
        bad.append(FieldViolation("order.redeem", f"at most {MAX_REDEMPTIONS} redemptions"))
        return
    first_index: dict[str, int] = {}
    for index, redemption in enumerate(redeem_pb[:]):
        point_type = redemption.point_type
        points = redemption.points
        seen_at = first_index.setdefault(point_type, index)
        if not point_type:
            bad.append(FieldViolation(f"order.redeem[{index}].point_type", "required"))
        elif point_type not in known_point_types:
            bad.append(
                FieldViolation(
                    f"order.redeem[{index}].point_type",
                    f"unknown point type {_echo(point_type)}",
                )
            )
        elif seen_at != index:
            bad.append(
                FieldViolation(
                    f"order.redeem[{index}].point_type",
                    f"{_echo(point_type)} is redeemed twice (first at order.redeem[{seen_at}])",
                )
            )
        if points < 0:
            bad.append(FieldViolation(f"order.redeem[{index}].points", "must not be negative"))
        elif points > MAX_POINTS:
            bad.append(FieldViolation(f"order.redeem[{index}].points", f"at most {MAX_POINTS}"))


def _member_errors(
    context: checkout_pb2.MemberContext,
    known_point_types: Collection[str],
    bad: list[FieldViolation],
) -> None:
    balances_pb = context.balances
    if len(balances_pb) > MAX_BALANCES:
        bad.append(FieldViolation("member_context.balances", f"at most {MAX_BALANCES} balances"))
    else:
        for index, balance in enumerate(balances_pb[:]):
            point_type = balance.point_type
            if point_type not in known_point_types:
                bad.append(
                    FieldViolation(
                        f"member_context.balances[{index}].point_type",
                        f"unknown point type {_echo(point_type)}" if point_type else "required",
                    )
                )
            if not -MAX_POINTS <= balance.available <= MAX_POINTS:
                bad.append(
                    FieldViolation(
                        f"member_context.balances[{index}].available",
                        f"at most {MAX_POINTS} in absolute value",
                    )
                )

    tiers_pb = context.tiers
    if len(tiers_pb) > MAX_TIERS:
        bad.append(FieldViolation("member_context.tiers", f"at most {MAX_TIERS} tiers"))
    else:
        groups: set[str] = set()
        for index, tier_ref in enumerate(tiers_pb[:]):
            group = tier_ref.tier_group
            path = f"member_context.tiers[{index}]"
            if not group:
                bad.append(FieldViolation(f"{path}.tier_group", "required"))
            elif group in groups:
                bad.append(
                    FieldViolation(
                        f"{path}.tier_group", f"tier group {_echo(group)} is given twice"
                    )
                )
            if not tier_ref.tier:
                bad.append(FieldViolation(f"{path}.tier", "required"))
            groups.add(group)

    if len(context.segments) > MAX_SEGMENTS:
        bad.append(FieldViolation("member_context.segments", f"at most {MAX_SEGMENTS} segments"))


# --- Result -> response. ----------------------------------------------------------------------
# Built once at import from the enums' descriptors: the engine speaks the unprefixed names.
def _enum_numbers(enum: object, prefix: str) -> dict[str, int]:
    values = enum.DESCRIPTOR.values  # type: ignore[attr-defined]
    numbers = {value.name.removeprefix(prefix): value.number for value in values}
    numbers[""] = 0
    return numbers


_TIMING: Final = _enum_numbers(program_pb2.Timing, "TIMING_")
_CODE_STATUS: Final = _enum_numbers(checkout_pb2.PromoCodeStatus, "PROMO_CODE_STATUS_")
_CODE_REASON: Final = _enum_numbers(checkout_pb2.PromoCodeReason, "PROMO_CODE_REASON_")


def result_to_proto(
    result: CalculationResult, program_version: int
) -> checkout_pb2.CalculateOrderResponse:
    """The response (docs/contract.md) for `result`, computed on `program_version`.

    Result rows are read by index (named tuples, field order checked by the tests) and an
    empty part of the result touches no repeated field of the response.
    """
    response = checkout_pb2.CalculateOrderResponse()
    response.program_version = program_version

    evaluated_at = result.evaluated_at
    if evaluated_at.tzinfo is None:
        evaluated_at = evaluated_at.replace(tzinfo=UTC)
    since_epoch = evaluated_at - EPOCH
    stamp = response.evaluated_at
    stamp.seconds = since_epoch.days * 86_400 + since_epoch.seconds
    stamp.nanos = since_epoch.microseconds * 1000

    totals = result.totals
    totals_pb = response.totals
    totals_pb.subtotal = totals.subtotal
    totals_pb.discount = totals.discount
    totals_pb.paid_with_points = totals.paid_with_points
    totals_pb.shipping = totals.shipping
    totals_pb.shipping_discount = totals.shipping_discount
    totals_pb.total = totals.total
    totals_pb.items = totals.items

    # Rows read as objects by index: compiled (server/native.py), a typed row's integers would
    # be unboxed on reading and boxed again for each setter, and unpacking an untyped row goes
    # through the iterator protocol.
    lines = cast(tuple[tuple[Any, ...], ...], result.lines)
    if lines:
        add_line = response.lines.add
        for line in lines:
            line_pb = add_line()
            line_pb.line_id = line[0]
            line_pb.base_price = line[1]
            discount = line[2]
            if discount:
                line_pb.discount = discount
            paid_with_points = line[3]
            if paid_with_points:
                line_pb.paid_with_points = paid_with_points
            line_pb.final_price = line[4]
            add_portion = line_pb.portions.add
            for quantity, unit_price in line[5]:
                portion = add_portion()
                portion.quantity = quantity
                portion.unit_price = unit_price

    benefits = cast(tuple[tuple[Any, ...], ...], result.benefits)
    if benefits:
        add_benefit = response.benefits.add
        timing_numbers = _TIMING
        for b in benefits:
            row = add_benefit()
            line_id = b[0]
            if line_id:
                row.line_id = line_id
            row.promotion = b[1]
            row.promotion_kind = b[2]
            row.benefit = b[3]
            amount = b[4]
            if amount:
                row.amount = amount
            points = b[5]
            if points:
                row.points = points
            point_type = b[6]
            if point_type:
                row.point_type = point_type
            timing = b[7]
            if timing:
                row.timing = timing_numbers[timing]  # type: ignore[assignment]

    changes = result.points
    if changes:
        add_change = response.points.add
        for change in changes:
            change_pb = add_change()
            change_pb.point_type = change.point_type
            change_pb.requested = change.requested
            change_pb.redeemed = change.redeemed
            change_pb.accrued = change.accrued
            change_pb.accrued_pending = change.accrued_pending

    texts = result.texts
    if texts:
        response.texts.extend(texts)

    codes = result.promo_codes
    if codes:
        add_code = response.promo_codes.add
        for code in codes:
            code_pb = add_code()
            code_pb.code = code.code
            code_pb.status = _CODE_STATUS[code.status]  # type: ignore[assignment]
            if code.reason:
                code_pb.reason = _CODE_REASON[code.reason]  # type: ignore[assignment]
            if code.pool:
                code_pb.promo_code_pool = code.pool

    return response
