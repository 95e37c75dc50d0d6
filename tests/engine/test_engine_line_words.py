"""The typed core reads each rule's matching lines straight from the selection's bit sets
(64-bit words, engine/_select.pxd): orders whose line count sits on a word's edge (63, 64, 65,
127, 128, 129 lines), with scopes holding the lines at the edges, for the benefits that read a
value per matching line (price from a field, accrual from a field, partner discount and
points) and plain ones, held to the reference evaluator. And the core's integer bounds: an
amount of 2^40 minor units or more is left to the batched evaluator, one below is not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from arbiter.server.api.translate import order_from_proto
from arbiter.server.engine import compile_program, core
from arbiter.server.engine import evaluate as evaluate_module
from arbiter.v1 import checkout_pb2 as ck
from arbiter.v1 import program_pb2 as pb
from tests.property.test_engine_vs_reference import assert_agree
from tests.reference._programs import (
    MAX,
    SEQ,
    SUM,
    accrue_pct,
    from_field,
    from_field_points,
    group,
    line,
    partner_discount,
    partner_points,
    pct,
    product_rule,
    program,
    promo,
    request,
)

NOW = datetime(2026, 11, 23, tzinfo=UTC)
EDGES = frozenset({0, 1, 62, 63, 64, 65, 126, 127, 128})
PARTNERS = ("acme", "beta", "")


def _program() -> pb.Program:
    promotions = [
        promo("field", product_rule(from_field("cost", 9000), segments=["edge"])),
        promo("partner", product_rule(partner_discount("acme"), segments=["odd"])),
        promo("pct", product_rule(pct(700), segments=["edge"], not_in=True)),
        promo("best_a", product_rule(pct(1500), segments=["edge"])),
        promo("best_b", product_rule(partner_discount("acme", "beta"))),
        promo("pp", product_rule(partner_points("bonus", "acme", "beta"), segments=["odd"])),
        promo("fp", product_rule(from_field_points("bonus", "pts"), segments=["edge"])),
        promo("acc", product_rule(accrue_pct("bonus", 300), segments=["last"])),
    ]
    root = group(
        SEQ,
        "field",
        group(MAX, "best_a", "best_b", "partner", gid="best"),
        "pct",
        group(SUM, "pp", "fp", "acc", gid="accruals"),
        gid="main",
    )
    return program(
        promotions,
        root,
        product_segments=[
            pb.ProductSegment(id="edge", categories=["edge"]),
            pb.ProductSegment(id="odd", categories=["odd"]),
            pb.ProductSegment(id="last", categories=["last"]),
        ],
        partners=[
            pb.Partner(id="acme", name="Acme", discount_bp=1200, points_bp=400),
            pb.Partner(id="beta", name="Beta", discount_bp=300, points_bp=900),
        ],
    )


def _lines(count: int) -> list[ck.Line]:
    out = []
    for i in range(count):
        categories = ["odd" if i % 2 else "even"]
        if i in EDGES or i >= count - 2:
            categories.append("edge")
        if i == count - 1:
            categories.append("last")
        fields = {}
        if i % 3 != 1:
            fields["cost"] = 1000 + 37 * i
        if i % 4 != 3:
            fields["pts"] = 50 - 3 * i  # negative from line 17 on: accrues nothing
        out.append(
            line(
                f"l{i}",
                2000 + 113 * i,
                1 + i % 3,
                categories=categories,
                partner=PARTNERS[i % 3],
                fields=fields,
            )
        )
    return out


@pytest.mark.parametrize("count", [1, 63, 64, 65, 127, 128, 129])
def test_lines_at_the_edges_of_the_words_agree_with_the_reference(count: int) -> None:
    prog = _program()
    req = request(*_lines(count))
    compiled = compile_program(prog)
    order, member = order_from_proto(req, compiled.point_type_ids)
    _at, _zone, _sel, _requested, single = evaluate_module.start(
        compiled, order, member, NOW, None
    )
    # the C core evaluates these (nothing is declined), so it is the core that is compared
    assert core.evaluate(single, compiled.root) is not None
    assert_agree(prog, req, compiled)


@pytest.mark.parametrize("price", [(1 << 40) - 1, 1 << 40, 10**13])
def test_the_core_takes_every_amount_the_api_accepts(price: int) -> None:
    prog = program([promo("p1", product_rule(pct(1000)))], group(SEQ, "p1", gid="main"))
    req = request(line("a", price))
    compiled = compile_program(prog)
    order, member = order_from_proto(req, compiled.point_type_ids)
    _at, _zone, _sel, _requested, single = evaluate_module.start(
        compiled, order, member, NOW, None
    )
    assert core.evaluate(single, compiled.root) is not None
    assert_agree(prog, req, compiled)
