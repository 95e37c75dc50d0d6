"""CalculationResult to JSON and back, so that a stored order answers exactly as it first did."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from arbiter.server.engine.types import (
    AppliedBenefit,
    CalculationResult,
    LineResult,
    PointsChange,
    PromoCodeResult,
    Totals,
)

__all__ = ["result_from_json", "result_from_obj", "result_to_json", "result_to_obj"]

_FORMAT = 1


def result_to_obj(result: CalculationResult) -> dict[str, Any]:
    """A plain JSON-able dict; every money and points figure stays an integer."""
    t = result.totals
    return {
        "format": _FORMAT,
        "evaluated_at": result.evaluated_at.isoformat(),
        "totals": [
            t.subtotal, t.discount, t.paid_with_points, t.shipping, t.shipping_discount,
            t.total, t.items,
        ],
        "lines": [
            [
                line.line_id, line.base_price, line.discount, line.paid_with_points,
                line.final_price, [list(p) for p in line.portions],
            ]
            for line in result.lines
        ],
        "benefits": [
            [
                b.line_id, b.promotion, b.promotion_kind, b.benefit, b.amount, b.points,
                b.point_type, b.timing,
            ]
            for b in result.benefits
        ],
        "points": [
            [p.point_type, p.requested, p.redeemed, p.accrued, p.accrued_pending]
            for p in result.points
        ],
        "texts": list(result.texts),
        "promo_codes": [[c.code, c.status, c.reason, c.pool] for c in result.promo_codes],
    }


def result_from_obj(obj: dict[str, Any]) -> CalculationResult:
    if obj.get("format") != _FORMAT:
        raise ValueError(f"stored result has format {obj.get('format')!r}, expected {_FORMAT}")
    return CalculationResult(
        evaluated_at=datetime.fromisoformat(obj["evaluated_at"]),
        totals=Totals(*(int(x) for x in obj["totals"])),
        lines=tuple(
            LineResult(
                str(line[0]), int(line[1]), int(line[2]), int(line[3]), int(line[4]),
                tuple((int(q), int(p)) for q, p in line[5]),
            )
            for line in obj["lines"]
        ),
        benefits=tuple(
            AppliedBenefit(
                str(b[0]), str(b[1]), str(b[2]), str(b[3]), int(b[4]), int(b[5]), str(b[6]),
                str(b[7]),
            )
            for b in obj["benefits"]
        ),
        points=tuple(
            PointsChange(str(p[0]), int(p[1]), int(p[2]), int(p[3]), int(p[4]))
            for p in obj["points"]
        ),
        texts=tuple(str(t) for t in obj["texts"]),
        promo_codes=tuple(
            PromoCodeResult(str(c[0]), str(c[1]), str(c[2]), str(c[3])) for c in obj["promo_codes"]
        ),
    )


def result_to_json(result: CalculationResult) -> str:
    return json.dumps(result_to_obj(result), ensure_ascii=False, separators=(",", ":"))


def result_from_json(text: str) -> CalculationResult:
    return result_from_obj(json.loads(text))
