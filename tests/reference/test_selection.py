"""Selection of candidate promotions (docs/rules.md, The calculation, step 3), segments and
scopes, promo codes (rule 19)."""

from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from arbiter.v1 import checkout_pb2 as ck
from arbiter.v1 import program_pb2 as pb

from ._programs import (
    NOON,
    SEQ,
    accrue_pct,
    discounts,
    group,
    line,
    order_rule,
    pay_pct,
    pct,
    point_type,
    points_changes,
    product_rule,
    program,
    promo,
    request,
    run,
    text,
)


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _applies(prog: pb.Program, req: ck.CalculateOrderRequest, **kwargs: object) -> bool:
    return run(prog, req, **kwargs).totals.discount > 0  # type: ignore[arg-type]


def _ten(**extra: Any) -> pb.Program:
    return program([promo("p", product_rule(pct(1000)), **extra)], group(SEQ, "p"))


# --- status and period --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "applies"),
    [
        (pb.PROMOTION_STATUS_ACTIVE, True),
        (pb.PROMOTION_STATUS_DRAFT, False),
        (pb.PROMOTION_STATUS_INACTIVE, False),
        (pb.PROMOTION_STATUS_ENDED, False),
        (pb.PROMOTION_STATUS_UNSPECIFIED, False),
    ],
)
def test_only_active_promotions(status: int, applies: bool) -> None:
    assert _applies(_ten(status=status), request(line("a", 1000))) is applies


def test_period_start_inclusive_end_exclusive() -> None:
    period = pb.ActivePeriod(start=_ts(NOON), end=_ts(datetime(2025, 3, 6, tzinfo=UTC)))
    prog = _ten(period=period)
    assert _applies(prog, request(line("a", 1000), when=NOON))
    before = datetime(2025, 3, 5, 11, 59, tzinfo=UTC)
    assert not _applies(prog, request(line("a", 1000), when=before))
    assert not _applies(prog, request(line("a", 1000), when=datetime(2025, 3, 6, tzinfo=UTC)))


def test_period_duration_in_calendar_months() -> None:
    # 1 month from 31 January: to 28 February (the day is clamped to the month's end).
    period = pb.ActivePeriod(
        start=_ts(datetime(2025, 1, 31, tzinfo=UTC)),
        duration=pb.Period(count=1, unit=pb.PERIOD_UNIT_MONTH),
    )
    prog = _ten(period=period)
    inside = datetime(2025, 2, 27, 23, 59, tzinfo=UTC)
    assert _applies(prog, request(line("a", 1000), when=inside))
    assert not _applies(prog, request(line("a", 1000), when=datetime(2025, 2, 28, tzinfo=UTC)))


def test_period_duration_in_local_days() -> None:
    # 2 days from Friday 28 March 2025 00:00 in Berlin (UTC+1) cross the switch to summer time:
    # the period ends on Sunday 30 March 00:00 local = 29 March 23:00 UTC.
    period = pb.ActivePeriod(
        start=_ts(datetime(2025, 3, 27, 23, 0, tzinfo=UTC)),
        duration=pb.Period(count=2, unit=pb.PERIOD_UNIT_DAY),
    )
    prog = program(
        [promo("p", product_rule(pct(1000)), period=period)],
        group(SEQ, "p"),
        time_zone="Europe/Berlin",
    )
    inside = datetime(2025, 3, 29, 22, 59, tzinfo=UTC)
    assert _applies(prog, request(line("a", 1000), when=inside))
    assert not _applies(prog, request(line("a", 1000), when=datetime(2025, 3, 29, 23, tzinfo=UTC)))


def test_order_without_created_at_uses_now() -> None:
    period = pb.ActivePeriod(end=_ts(datetime(2025, 3, 1, tzinfo=UTC)))
    prog = _ten(period=period)
    early = datetime(2025, 2, 1, tzinfo=UTC)
    response = run(prog, request(line("a", 1000), when=None), now=early)
    assert response.totals.discount == 100
    assert response.evaluated_at.ToDatetime(tzinfo=UTC) == early
    response = run(prog, request(line("a", 1000), when=None), now=NOON)
    assert response.totals.discount == 0


# --- availability in the order's time zone ------------------------------------------------------

LATE = datetime(2025, 3, 5, 23, 30, tzinfo=UTC)  # Wednesday UTC; Thursday 02:30 in Moscow


def test_weekdays_in_the_order_time_zone() -> None:
    prog = _ten(availability=pb.Availability(weekdays=[pb.WEEKDAY_THURSDAY]))
    assert _applies(prog, request(line("a", 1000), when=LATE, time_zone="Europe/Moscow"))
    assert not _applies(prog, request(line("a", 1000), when=LATE))  # the program's UTC
    moscow = program(
        [
            promo(
                "p",
                product_rule(pct(1000)),
                availability=pb.Availability(weekdays=[pb.WEEKDAY_THURSDAY]),
            )
        ],
        group(SEQ, "p"),
        time_zone="Europe/Moscow",
    )
    assert _applies(moscow, request(line("a", 1000), when=LATE))


def test_months() -> None:
    assert _applies(_ten(availability=pb.Availability(months=[3])), request(line("a", 1000)))
    assert not _applies(_ten(availability=pb.Availability(months=[4, 5])), request(line("a", 1000)))


@pytest.mark.parametrize(
    ("start", "end", "applies"),
    [
        ("22:00", "06:00", True),  # wraps midnight: 02:30 is inside
        ("09:00", "18:00", False),
        ("10:00", "10:00", True),  # equal: the whole day
        ("02:30", "02:31", True),  # start inclusive
        ("01:00", "02:30", False),  # end exclusive
    ],
)
def test_time_windows(start: str, end: str, applies: bool) -> None:
    prog = _ten(availability=pb.Availability(time_windows=[pb.TimeWindow(start=start, end=end)]))
    req = request(line("a", 1000), when=LATE, time_zone="Europe/Moscow")
    assert _applies(prog, req) is applies


# --- audience -----------------------------------------------------------------------------------


def test_audience_members_and_everyone() -> None:
    assert not _applies(_ten(), request(line("a", 1000), member=None))
    assert _applies(_ten(), request(line("a", 1000)))
    everyone = _ten(audience=pb.Audience(kind=pb.AUDIENCE_KIND_EVERYONE))
    assert _applies(everyone, request(line("a", 1000), member=None))


def test_audience_segments_from_the_context_or_the_program() -> None:
    vip = pb.MemberSegment(id="vip", members=["m2"])
    in_vip = program(
        [
            promo(
                "p",
                product_rule(pct(1000)),
                audience=pb.Audience(kind=pb.AUDIENCE_KIND_IN_SEGMENTS, segments=["vip"]),
            )
        ],
        group(SEQ, "p"),
        member_segments=[vip],
    )
    assert _applies(in_vip, request(line("a", 1000), segments=["vip"]))
    assert not _applies(in_vip, request(line("a", 1000)))
    # an enrolled member named by id alone: the program's static segment lists m2
    assert _applies(in_vip, request(line("a", 1000), member="m2", context=False))
    assert not _applies(in_vip, request(line("a", 1000), member="m3", context=False))
    not_vip = program(
        [
            promo(
                "p",
                product_rule(pct(1000)),
                audience=pb.Audience(kind=pb.AUDIENCE_KIND_NOT_IN_SEGMENTS, segments=["vip"]),
            )
        ],
        group(SEQ, "p"),
        member_segments=[vip],
    )
    assert not _applies(not_vip, request(line("a", 1000), segments=["vip"]))
    assert _applies(not_vip, request(line("a", 1000)))
    assert not _applies(not_vip, request(line("a", 1000), member=None))


def test_audience_tiers_resolved_from_the_balance_when_the_context_has_none() -> None:
    status = pb.TierGroup(
        id="status",
        model=pb.TIER_MODEL_CYCLIC,
        point_type="q",
        tiers=[pb.Tier(id="silver", min_balance=0), pb.Tier(id="gold", min_balance=1000)],
    )
    prog = program(
        [
            promo(
                "p",
                product_rule(pct(1000)),
                audience=pb.Audience(kind=pb.AUDIENCE_KIND_TIERS, tiers=["gold"]),
            )
        ],
        group(SEQ, "p"),
        point_types=[point_type("bonus"), point_type("q", qualification=True)],
        tier_groups=[status],
    )
    assert _applies(prog, request(line("a", 1000), balances={"q": 1500}))
    assert _applies(prog, request(line("a", 1000), balances={"q": 1000}))
    assert not _applies(prog, request(line("a", 1000), balances={"q": 999}))
    assert not _applies(prog, request(line("a", 1000)))  # no balance: the first tier
    # a TierRef in the context wins over the balance
    assert not _applies(
        prog, request(line("a", 1000), balances={"q": 1500}, tiers={"status": "silver"})
    )
    assert _applies(prog, request(line("a", 1000), tiers={"status": "gold"}))


# --- channels -----------------------------------------------------------------------------------


def test_channels_and_points_of_contact() -> None:
    prog = _ten(
        channels=[
            pb.ChannelRef(channel="pos", points_of_contact=["store1"]),
            pb.ChannelRef(channel="app"),
        ]
    )
    assert _applies(prog, request(line("a", 1000), channel="pos", point_of_contact="store1"))
    assert not _applies(prog, request(line("a", 1000), channel="pos", point_of_contact="store2"))
    assert _applies(prog, request(line("a", 1000), channel="app", point_of_contact="any"))
    assert not _applies(prog, request(line("a", 1000), channel="web"))
    assert _applies(_ten(), request(line("a", 1000), channel="web"))  # no channels: every one


# --- point types (rule 20) ----------------------------------------------------------------------


def test_inactive_or_deactivated_types_neither_accrue_nor_pay() -> None:
    deactivated = point_type("old")
    deactivated.deactivate_at.FromDatetime(NOON)  # at the order's time: already off
    prog = program(
        [
            promo(
                "p",
                product_rule(
                    accrue_pct("bonus", 1000),
                    accrue_pct("off", 1000),
                    accrue_pct("old", 1000),
                    pay_pct("off", 5000),
                    pay_pct("old", 5000),
                ),
            )
        ],
        group(SEQ, "p"),
        point_types=[point_type("bonus"), point_type("off", active=False), deactivated],
    )
    balances = {"off": 100, "old": 100}
    response = run(prog, request(line("a", 10_000), balances=balances, redeem=balances))
    assert points_changes(response) == [
        ("bonus", 0, 0, 10, 0),
        ("off", 100, 0, 0, 0),
        ("old", 100, 0, 0, 0),
    ]


# --- segments, scopes, min_quantity -------------------------------------------------------------


def _segment_program(segment: pb.ProductSegment, *, not_in: bool = False) -> pb.Program:
    return program(
        [promo("p", product_rule(pct(1000), segments=[segment.id], not_in=not_in))],
        group(SEQ, "p"),
        product_segments=[segment],
    )


def test_product_segment_criteria() -> None:
    segment = pb.ProductSegment(
        id="s",
        categories=["tv", "audio"],
        brands=["sony"],
        min_unit_price=1000,
        max_unit_price=5000,
    )
    response = run(
        _segment_program(segment),
        request(
            line("ok", 1000, categories=["audio", "x"], brand="sony"),
            line("brand", 2000, categories=["tv"], brand="lg"),
            line("cheap", 999, categories=["tv"], brand="sony"),
            line("dear", 5001, categories=["tv"], brand="sony"),
            line("max", 5000, categories=["tv"], brand="sony"),
            line("category", 2000, categories=["pc"], brand="sony"),
        ),
    )
    assert discounts(response) == [100, 0, 0, 0, 500, 0]
    response = run(
        _segment_program(segment, not_in=True),
        request(line("ok", 1000, categories=["tv"], brand="sony"), line("other", 1000)),
    )
    assert discounts(response) == [0, 100]


def test_product_segment_field_predicates() -> None:
    segment = pb.ProductSegment(
        id="s",
        fields=[
            pb.FieldPredicate(field="age", op=pb.FIELD_OP_GE, value=18),
            pb.FieldPredicate(field="kind", op=pb.FIELD_OP_IN, values=[3, 5]),
        ],
    )
    response = run(
        _segment_program(segment),
        request(
            line("adult", 1000, fields={"age": 18}),
            line("child", 1000, fields={"age": 17}),
            line("kind", 1000, fields={"kind": 5}),
            line("none", 1000),
        ),
    )
    assert discounts(response) == [100, 0, 100, 0]
    # NE never matches a line without the field (rule 21)
    ne = pb.ProductSegment(id="s", fields=[pb.FieldPredicate(field="age", op=pb.FIELD_OP_NE)])
    response = run(
        _segment_program(ne), request(line("a", 1000, fields={"age": 3}), line("b", 1000))
    )
    assert discounts(response) == [100, 0]


def test_min_quantity_counts_the_matching_units() -> None:
    prog = program([promo("p", product_rule(pct(1000), min_quantity=3))], group(SEQ, "p"))
    assert run(prog, request(line("a", 1000, 2))).totals.discount == 0
    assert run(prog, request(line("a", 1000, 2), line("b", 1000))).totals.discount == 300


def test_order_segments() -> None:
    segments = [
        pb.OrderSegment(id="big", min_subtotal=5000, regions=["north"]),
        pb.OrderSegment(
            id="bundle", contains=[pb.Contains(product_segment="tv", min_quantity=2)]
        ),
    ]
    prog = program(
        [
            promo("big", order_rules=[order_rule(pct(1000), segments=["big"])]),
            promo("bundle", order_rules=[order_rule(text("bundle!"), segments=["bundle"])]),
        ],
        group(SEQ, "big", "bundle"),
        order_segments=segments,
        product_segments=[pb.ProductSegment(id="tv", categories=["tv"])],
    )
    response = run(prog, request(line("a", 5000, categories=["tv"]), region="north"))
    assert response.totals.discount == 500
    assert list(response.texts) == []
    response = run(prog, request(line("a", 4999, categories=["tv"]), region="north"))
    assert response.totals.discount == 0
    response = run(prog, request(line("a", 2500, 2, categories=["tv"]), region="south"))
    assert response.totals.discount == 0
    assert list(response.texts) == ["bundle!"]


# --- promo codes (rule 19) ----------------------------------------------------------------------

A = ck.PROMO_CODE_STATUS_APPLIED
N = ck.PROMO_CODE_STATUS_NOT_APPLIED
INV = ck.PROMO_CODE_STATUS_INVALID


def _code_program() -> pb.Program:
    pools = [
        pb.PromoCodePool(
            id="spring",
            codes=[pb.PromoCode(code="SPRING10", max_uses=1), pb.PromoCode(code="VIP")],
            max_uses_per_member=2,
        ),
        pb.PromoCodePool(
            id="old",
            codes=[pb.PromoCode(code="OLD")],
            valid_to=_ts(datetime(2025, 1, 1, tzinfo=UTC)),
        ),
        pb.PromoCodePool(
            id="next",
            codes=[pb.PromoCode(code="NEXT")],
            valid_from=_ts(datetime(2026, 1, 1, tzinfo=UTC)),
        ),
        pb.PromoCodePool(id="idle", codes=[pb.PromoCode(code="IDLE")]),
    ]
    return program(
        [
            promo("p", product_rule(pct(1000)), pool="spring"),
            promo("q", product_rule(pct(1000), segments=["none"]), pool="idle"),
        ],
        group(SEQ, "p", "q"),
        promo_code_pools=pools,
        product_segments=[pb.ProductSegment(id="none", skus=["nothing"])],
    )


def _codes(response: ck.CalculateOrderResponse) -> list[tuple[str, int, int, str]]:
    return [(c.code, c.status, c.reason, c.promo_code_pool) for c in response.promo_codes]


CODES = ["spring10", "vip", "bogus", "old", "Next", "SPRING10", "idle"]


def test_promo_code_statuses() -> None:
    response = run(_code_program(), request(line("a", 1000), codes=CODES))
    assert response.totals.discount == 100
    assert _codes(response) == [
        ("spring10", A, 0, "spring"),
        ("vip", N, ck.PROMO_CODE_REASON_ANOTHER_CODE_APPLIED, "spring"),
        ("bogus", INV, ck.PROMO_CODE_REASON_UNKNOWN_CODE, ""),
        ("old", INV, ck.PROMO_CODE_REASON_EXPIRED, "old"),
        ("Next", INV, ck.PROMO_CODE_REASON_NOT_YET_VALID, "next"),
        ("idle", N, ck.PROMO_CODE_REASON_NO_PROMOTION_APPLIED, "idle"),
    ]


def test_promo_code_exhausted_by_everyone_then_the_next_code_applies() -> None:
    response = run(
        _code_program(), request(line("a", 1000), codes=CODES), code_uses={"SPRING10": 1}
    )
    assert response.totals.discount == 100
    assert _codes(response)[:2] == [
        ("spring10", INV, ck.PROMO_CODE_REASON_EXHAUSTED, "spring"),
        ("vip", A, 0, "spring"),
    ]


def test_promo_code_exhausted_by_the_member() -> None:
    response = run(
        _code_program(), request(line("a", 1000), codes=CODES), member_pool_uses={"spring": 2}
    )
    assert response.totals.discount == 0  # no valid code of the pool: p is not a candidate
    assert _codes(response)[:2] == [
        ("spring10", INV, ck.PROMO_CODE_REASON_EXHAUSTED, "spring"),
        ("vip", INV, ck.PROMO_CODE_REASON_EXHAUSTED, "spring"),
    ]


def test_promotion_with_a_pool_needs_a_code() -> None:
    response = run(_code_program(), request(line("a", 1000)))
    assert response.totals.discount == 0
    assert list(response.promo_codes) == []
