"""``evaluate``: one CalculateOrder quote by the reference evaluator (docs/rules.md)."""

import re
from collections.abc import Mapping
from datetime import datetime

from arbiter.v1 import checkout_pb2, program_pb2  # type: ignore[import-not-found, unused-ignore]

from ._arbitrate import Arbiter
from ._money import render_money
from ._program import ReferenceProgram, timestamp_ns
from ._select import (
    Member,
    audience_ok,
    available,
    channels_ok,
    code_problem,
    datetime_to_ns,
    in_period,
    ns_to_local,
    order_scope_matches,
    order_view,
    product_scope_lines,
    resolve_member,
    zone,
)
from ._state import ORDER_WIDE, Calc, Effect, initial_state

# Templates: `{{` and `}}` are literal braces, `{name}` a placeholder (checked valid before).
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")

# A distinct promo code of the order: (as first written, upper-case, pool or "", reason or None).
_Code = tuple[str, str, str, "checkout_pb2.PromoCodeReason | None"]


def _selected_codes(
    prog: ReferenceProgram,
    order: checkout_pb2.Order,
    now_ns: int,
    code_uses: Mapping[str, int] | None,
    member_pool_uses: Mapping[str, int] | None,
) -> tuple[list[_Code], set[str]]:
    """Distinct codes in the order's order as ``(written, CODE, pool, invalid reason or 0)``,
    and the pools holding a valid code."""
    codes: list[_Code] = []
    seen: set[str] = set()
    valid_pools: set[str] = set()
    for written in order.promo_codes:
        upper = written.upper()
        if upper in seen:
            continue
        seen.add(upper)
        known = prog.codes.get(upper)
        if known is None or known[0] not in prog.pools:
            codes.append((written, upper, "", checkout_pb2.PROMO_CODE_REASON_UNKNOWN_CODE))
            continue
        pool_id, max_uses = known
        reason = code_problem(
            prog.pools[pool_id],
            upper,
            max_uses,
            now_ns,
            code_uses,
            member_pool_uses,
        )
        codes.append((written, upper, pool_id, reason))
        if reason is None:
            valid_pools.add(pool_id)
    return codes, valid_pools


def _build_calc(
    prog: ReferenceProgram,
    request: checkout_pb2.CalculateOrderRequest,
    now_ns: int,
    member: Member | None,
    valid_pools: set[str],
) -> Calc:
    order = order_view(request.order)
    tz = zone(prog, request.order)
    local = ns_to_local(now_ns, tz)

    eligible: set[int] = set()
    for promotion in prog.promotions:
        if (
            promotion.active
            and in_period(promotion, now_ns, tz)
            and available(promotion, local)
            and audience_ok(promotion, member)
            and channels_ok(promotion, order)
            and (not promotion.pool or promotion.pool in valid_pools)
        ):
            eligible.add(promotion.index)

    # Scopes and min_quantity on the order as received, once (docs/rules.md, The program model).
    product_rule_lines: dict[tuple[int, int], tuple[int, ...]] = {}
    order_rule_ok: dict[tuple[int, int], bool] = {}
    for index in sorted(eligible):
        promotion = prog.promotions[index]
        for position, product_rule in enumerate(promotion.product_rules):
            lines = product_scope_lines(prog, product_rule.scope, product_rule.segments, order)
            units = sum(order.lines[line].quantity for line in lines)
            if lines and units >= product_rule.min_quantity:
                product_rule_lines[(index, position)] = lines
        for position, order_rule in enumerate(promotion.order_rules):
            order_rule_ok[(index, position)] = order_scope_matches(
                prog, order_rule.scope, order_rule.segments, order
            )

    # Rule 20: an inactive or deactivated type neither accrues nor pays; QUALIFICATION never pays.
    usable = {
        pt.id
        for pt in prog.point_types
        if pt.active and (pt.deactivate_at_ns is None or pt.deactivate_at_ns > now_ns)
    }
    budget: dict[str, int] = {}
    if member is not None:
        for point_type, requested in _requested(request.order).items():
            info = prog.point_type_by_id.get(point_type)
            if info is None or info.qualification or point_type not in usable:
                continue
            budget[point_type] = min(requested, max(0, member.balances.get(point_type, 0)))
    return Calc(
        prog=prog,
        order=order,
        member=member,
        now_ns=now_ns,
        base=tuple(line.base_price for line in order.lines),
        quantity=tuple(line.quantity for line in order.lines),
        unit_price=tuple(line.unit_price for line in order.lines),
        eligible=frozenset(eligible),
        product_rule_lines=product_rule_lines,
        order_rule_ok=order_rule_ok,
        budget=budget,
        accrue_ok=frozenset(usable),
        ratio={pt.id: (pt.ratio_points, pt.ratio_money) for pt in prog.point_types},
    )


def _requested(order: checkout_pb2.Order) -> dict[str, int]:
    """Points asked per type; a redemption of 0 points asks for nothing (rule 8)."""
    requested: dict[str, int] = {}
    for redemption in order.redeem:
        if redemption.points > 0:
            requested[redemption.point_type] = (
                requested.get(redemption.point_type, 0) + redemption.points
            )
    return requested


def _render(
    template: str,
    values: dict[str, str],
    prefixed: dict[str, dict[str, int]],
) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        key = match.group(1)
        if key in values:
            return values[key]
        for prefix, per_type in prefixed.items():
            if key.startswith(prefix):
                return str(per_type.get(key[len(prefix) :], 0))
        return match.group(0)

    return _TEMPLATE_TOKEN.sub(substitute, template)


def evaluate(
    prog: ReferenceProgram,
    request: checkout_pb2.CalculateOrderRequest,
    *,
    now: datetime,
    code_uses: Mapping[str, int] | None = None,
    member_pool_uses: Mapping[str, int] | None = None,
    program_version: int = 0,
) -> checkout_pb2.CalculateOrderResponse:
    """Quote ``request`` against ``prog`` the plain way (docs/rules.md)."""
    order = request.order
    has_time = order.HasField("created_at")
    now_ns = timestamp_ns(order.created_at) if has_time else datetime_to_ns(now)

    member = resolve_member(prog, request)
    codes, valid_pools = _selected_codes(prog, order, now_ns, code_uses, member_pool_uses)
    calc = _build_calc(prog, request, now_ns, member, valid_pools)
    effect = Arbiter(calc).group(prog.root, initial_state(calc))

    response = checkout_pb2.CalculateOrderResponse(program_version=program_version)
    if has_time:
        response.evaluated_at.CopyFrom(order.created_at)
    else:
        response.evaluated_at.seconds, response.evaluated_at.nanos = divmod(now_ns, 1_000_000_000)

    _fill_lines_and_totals(calc, effect, response)
    _fill_benefit_rows(calc, effect, response)
    accrued, redeemed = _fill_points(calc, effect, order, response)
    _fill_texts(calc, effect, response, accrued, redeemed)
    _fill_promo_codes(calc, effect, codes, response)
    return response


def _fill_lines_and_totals(
    calc: Calc, effect: Effect, response: checkout_pb2.CalculateOrderResponse
) -> None:
    count = calc.line_count
    discount = [0] * count
    paid = [0] * count
    shipping_discount = 0
    for index, out in effect.items():
        category = calc.benefits[index].category
        if category == "disc":
            for line, money in out.money.items():
                discount[line] += money
        elif category == "pay":
            for line, money in out.money.items():
                paid[line] += money
        elif category == "ship":
            shipping_discount += sum(out.money.values())
    for line in range(count):
        view = calc.order.lines[line]
        final = calc.base[line] - discount[line] - paid[line]
        assert 0 <= final <= calc.base[line], (line, final)
        result = response.lines.add(
            line_id=view.id,
            base_price=calc.base[line],
            discount=discount[line],
            paid_with_points=paid[line],
            final_price=final,
        )
        quantity = view.quantity
        if quantity > 0:
            high_units = final % quantity
            low_price = final // quantity
            if high_units:
                result.portions.add(quantity=high_units, unit_price=low_price + 1)
            if quantity - high_units:
                result.portions.add(quantity=quantity - high_units, unit_price=low_price)
    totals = response.totals
    totals.subtotal = sum(calc.base)
    totals.discount = sum(discount)
    totals.paid_with_points = sum(paid)
    totals.shipping = calc.order.shipping_cost
    totals.shipping_discount = shipping_discount
    totals.total = (
        totals.subtotal
        - totals.discount
        - totals.paid_with_points
        + totals.shipping
        - totals.shipping_discount
    )
    totals.items = sum(calc.quantity)


def _fill_benefit_rows(
    calc: Calc, effect: Effect, response: checkout_pb2.CalculateOrderResponse
) -> None:
    """Rule 17: one row per (benefit, line) with a non-zero amount or points; sorted by line in
    the order's order, order-wide rows last, then tree order."""
    rows: list[tuple[int, int, checkout_pb2.AppliedBenefit]] = []
    for index, out in effect.items():
        info = calc.benefits[index]
        if info.category == "text":
            continue
        promotion = calc.prog.promotions[info.promotion]
        for line in sorted(out.money.keys() | out.points.keys()):
            amount = out.money.get(line, 0)
            points = out.points.get(line, 0)
            if amount == 0 and points == 0:
                continue
            row = checkout_pb2.AppliedBenefit(
                line_id="" if line == ORDER_WIDE else calc.order.lines[line].id,
                promotion=promotion.id,
                promotion_kind=promotion.kind_label,
                benefit=info.name,
                amount=amount if info.category != "accrue" else 0,
                points=points,
            )
            if info.category in ("pay", "accrue"):
                row.point_type = info.point_type
            if info.category == "accrue":
                row.timing = info.timing
            sort_line = calc.line_count if line == ORDER_WIDE else line
            rows.append((sort_line, index, row))
    rows.sort(key=lambda r: (r[0], r[1]))
    response.benefits.extend(row for _, _, row in rows)


def _fill_points(
    calc: Calc,
    effect: Effect,
    order: checkout_pb2.Order,
    response: checkout_pb2.CalculateOrderResponse,
) -> tuple[dict[str, int], dict[str, int]]:
    """Rule 18; returns points accrued (both timings) and redeemed per type, for texts."""
    redeemed: dict[str, int] = {}
    on_create: dict[str, int] = {}
    on_delivery: dict[str, int] = {}
    for index, out in effect.items():
        info = calc.benefits[index]
        if info.category == "pay":
            redeemed[info.point_type] = redeemed.get(info.point_type, 0) + sum(
                out.points.values()
            )
        elif info.category == "accrue":
            target = on_delivery if info.timing == program_pb2.TIMING_ON_DELIVERY else on_create
            target[info.point_type] = target.get(info.point_type, 0) + sum(out.points.values())
    requested = _requested(order)
    accrued: dict[str, int] = {}
    for point_type in calc.prog.point_types:
        pid = point_type.id
        entry = (
            requested.get(pid, 0),
            redeemed.get(pid, 0),
            on_create.get(pid, 0),
            on_delivery.get(pid, 0),
        )
        accrued[pid] = entry[2] + entry[3]
        if any(entry):
            response.points.add(
                point_type=pid,
                requested=entry[0],
                redeemed=entry[1],
                accrued=entry[2],
                accrued_pending=entry[3],
            )
    return accrued, redeemed


def _fill_texts(
    calc: Calc,
    effect: Effect,
    response: checkout_pb2.CalculateOrderResponse,
    accrued: dict[str, int],
    redeemed: dict[str, int],
) -> None:
    """Rule 16: one text per surviving text benefit, in tree order, with the final values."""
    totals = response.totals
    member = calc.member
    values = {
        "member.id": member.id if member is not None else "",
        "order.id": calc.order.id,
        "order.subtotal": render_money(totals.subtotal),
        "order.discount": render_money(totals.discount),
        "order.total": render_money(totals.total),
        "order.items": str(totals.items),
        "order.shipping": render_money(totals.shipping),
    }
    prefixed = {
        "points.accrued.": accrued,
        "points.redeemed.": redeemed,
        "balance.": dict(member.balances) if member is not None else {},
    }
    for index in sorted(effect):
        info = calc.benefits[index]
        if info.category != "text" or not effect[index].text:
            continue
        promotion = calc.prog.promotions[info.promotion]
        response.texts.append(
            _render(info.template, {**values, "promotion.name": promotion.name}, prefixed)
        )


def _fill_promo_codes(
    calc: Calc,
    effect: Effect,
    codes: list[_Code],
    response: checkout_pb2.CalculateOrderResponse,
) -> None:
    """Rule 19 and rule 23: a code's pool contributes when any surviving effect (a text too) of
    the pool's promotions is in the result; only its first valid code is APPLIED."""
    contributing = {
        calc.prog.promotions[calc.benefits[index].promotion].pool for index in effect
    }
    applied_pools: set[str] = set()
    for written, _, pool, reason in codes:
        result = response.promo_codes.add(code=written, promo_code_pool=pool)
        if reason:
            result.status = checkout_pb2.PROMO_CODE_STATUS_INVALID
            result.reason = reason
        elif pool in contributing and pool not in applied_pools:
            applied_pools.add(pool)
            result.status = checkout_pb2.PROMO_CODE_STATUS_APPLIED
        else:
            result.status = checkout_pb2.PROMO_CODE_STATUS_NOT_APPLIED
            result.reason = (
                checkout_pb2.PROMO_CODE_REASON_ANOTHER_CODE_APPLIED
                if pool in applied_pools
                else checkout_pb2.PROMO_CODE_REASON_NO_PROMOTION_APPLIED
            )
