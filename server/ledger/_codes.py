"""Promo code usage for quotes: each code's uses by everyone, and until when that count holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from arbiter.server.ledger.errors import InvalidArgument

__all__ = ["MAX_CODES_PER_READ", "CodeUses", "read_code_uses"]

# An order carries at most 100 codes (api.translate); a read of many orders' codes at once is
# still bounded so that one call cannot turn into a table scan of arbitrary size.
MAX_CODES_PER_READ: Final = 1_000


@dataclass(frozen=True, slots=True)
class CodeUses:
    """Uses of one code (upper-case) by everyone: CONFIRMED, or HELD with `hold_until > now`.

    `stale_at`: the earliest `hold_until` of the held uses counted, the instant the count drops
    by time alone; None when no held use is counted (only a write changes the count then).
    """

    code: str
    uses: int
    stale_at: datetime | None


async def read_code_uses(
    conn: asyncpg.Connection, program_id: str, codes: Sequence[str], now: datetime
) -> dict[str, CodeUses]:
    """One entry per distinct code (upper-cased), zero uses for a code nobody used."""
    upper = sorted({c.upper() for c in codes})
    if len(upper) > MAX_CODES_PER_READ:
        raise InvalidArgument.field("codes", f"at most {MAX_CODES_PER_READ} codes per read")
    if not upper:
        return {}
    rows = await conn.fetch(
        """
        SELECT code, count(*) AS uses, min(hold_until) FILTER (WHERE state = 'HELD') AS stale_at
        FROM promo_code_uses
        WHERE program = $1 AND code = ANY($2::text[])
          AND (state = 'CONFIRMED' OR (state = 'HELD' AND hold_until > $3))
        GROUP BY code
        """,
        program_id,
        upper,
        now,
    )
    found = {r["code"]: CodeUses(r["code"], int(r["uses"]), r["stale_at"]) for r in rows}
    return {code: found.get(code) or CodeUses(code, 0, None) for code in upper}
