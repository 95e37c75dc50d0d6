"""Calendar arithmetic in a program's time zone: validity ends, tier periods, month ends."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["Span", "add_span", "month_end", "period_containing", "require_aware"]

_UNITS = ("DAY", "WEEK", "MONTH", "YEAR")
# A tier period search never walks further than this many periods from its estimate.
_MAX_STEPS = 10_000


@dataclass(frozen=True, slots=True)
class Span:
    """`count` calendar units (DAY | WEEK | MONTH | YEAR); count 0 means "no span" (never)."""

    count: int
    unit: str

    def __post_init__(self) -> None:
        assert self.unit in _UNITS, self.unit
        assert self.count >= 0, self.count

    @property
    def empty(self) -> bool:
        return self.count == 0


def require_aware(instant: datetime, name: str = "now") -> datetime:
    """Every instant in the ledger is UTC-aware; a naive one is a caller bug."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {instant!r}")
    return instant.astimezone(UTC)


def _add_months_local(local: datetime, months: int) -> datetime:
    index = local.year * 12 + (local.month - 1) + months
    year, month0 = divmod(index, 12)
    day = min(local.day, calendar.monthrange(year, month0 + 1)[1])
    return local.replace(year=year, month=month0 + 1, day=day)


def _shift(anchor: datetime, span: Span, times: int, tz: ZoneInfo) -> datetime:
    """`anchor` moved by `times` spans on the local wall clock (months clamp to the month's end).

    Each boundary is computed from the anchor, not from the previous boundary, so that a period
    anchored on the 31st comes back to the 31st after February.
    """
    local = anchor.astimezone(tz).replace(tzinfo=None)
    n = span.count * times
    if span.unit == "DAY":
        moved = local + timedelta(days=n)
    elif span.unit == "WEEK":
        moved = local + timedelta(weeks=n)
    elif span.unit == "MONTH":
        moved = _add_months_local(local, n)
    else:
        moved = _add_months_local(local, 12 * n)
    return moved.replace(tzinfo=tz).astimezone(UTC)


def add_span(instant: datetime, span: Span, tz: ZoneInfo) -> datetime:
    """`instant` plus one span in the program's calendar."""
    return _shift(instant, span, 1, tz)


def month_end(instant: datetime, tz: ZoneInfo) -> datetime:
    """The first instant of the calendar month after the one holding `instant` (local time)."""
    local = instant.astimezone(tz).replace(tzinfo=None)
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return _add_months_local(first, 1).replace(tzinfo=tz).astimezone(UTC)


def period_containing(
    anchor: datetime, span: Span, instant: datetime, tz: ZoneInfo
) -> tuple[datetime, datetime]:
    """The period [start, end) of the series anchored at `anchor` that holds `instant`."""
    assert not span.empty
    unit_days = {"DAY": 1.0, "WEEK": 7.0, "MONTH": 30.436875, "YEAR": 365.2425}[span.unit]
    k = int((instant - anchor).total_seconds() // (86_400 * unit_days * span.count))
    for _ in range(_MAX_STEPS):
        start = _shift(anchor, span, k, tz)
        if start > instant:
            k -= 1
            continue
        end = _shift(anchor, span, k + 1, tz)
        if end <= instant:
            k += 1
            continue
        return start, end
    raise AssertionError(f"no period of {span} from {anchor} holds {instant}")
