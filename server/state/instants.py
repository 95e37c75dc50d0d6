"""The instants the server accepts: one range for every google.protobuf.Timestamp it is given.

A Timestamp can hold 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z; the server accepts one day
inside that, in an order (`created_at`), a member's dates and a program alike, so that any
instant it keeps can be placed in any time zone (the order's local time, the program's calendar
months) without leaving what a `datetime` holds. An instant outside is a bad field whose
violation says `TIMESTAMP_RANGE`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = [
    "EPOCH",
    "MAX_SECONDS",
    "MIN_SECONDS",
    "TIMESTAMP_RANGE",
    "timestamp_in_range",
    "timestamp_valid",
]

#: The accepted range, in a Timestamp's seconds since the epoch (both ends included).
MIN_SECONDS: Final = -62_135_596_800 + 86_400  # 0001-01-02T00:00:00Z
MAX_SECONDS: Final = 253_402_300_799 - 86_400  # 9999-12-30T23:59:59Z
_NANOS_PER_SECOND: Final = 1_000_000_000
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: What an out-of-range instant's violation says.
TIMESTAMP_RANGE: Final = "outside 0001-01-02 .. 9999-12-30 UTC"


def timestamp_valid(seconds: int, nanos: int) -> bool:
    """Whether a Timestamp's (seconds, nanos) lies in the accepted range, nanos in 0..10^9-1."""
    return MIN_SECONDS <= seconds <= MAX_SECONDS and 0 <= nanos < _NANOS_PER_SECOND


def timestamp_in_range(seconds: int, nanos: int) -> datetime | None:
    """A Timestamp's (seconds, nanos) as an aware UTC datetime (sub-microsecond digits dropped:
    a datetime holds microseconds), or None when it lies outside the accepted range."""
    if MIN_SECONDS <= seconds <= MAX_SECONDS and 0 <= nanos < _NANOS_PER_SECOND:
        return EPOCH + timedelta(0, seconds, nanos // 1000)
    return None
