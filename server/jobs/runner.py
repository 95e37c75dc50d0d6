"""The periodic jobs runner: every `interval_s`, for each applied program, expire lots, close
tier periods, then relay the outbox.

Safe with many replicas: the ledger's job functions claim rows with SKIP LOCKED and are
idempotent, so replicas running the same job at once share the work instead of doubling it.
The outbox relay is at least once: a batch is marked published only after `send` returned.

Where events go:
- with Redis (`ARBITER_REDIS_URL`): XADD to the stream `arbiter:events:{program}`, one entry per
  event (fields `id`, `type`, `member_id`, `occurred_at`, `data` as JSON), MAXLEN ~ 1,000,000
  (docs/replicas.md); the relay then also runs on its own every `relay_interval_s`, so events
  leave within about that long of their commit;
- without Redis: logged at DEBUG and dropped once marked published; the outbox table keeps them
  (`Ledger.outbox_events`), so nothing is lost for an inspection, only not streamed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from arbiter.server.ledger import ExpiryReport, Ledger, OutboxEvent, TierPeriodReport
from arbiter.server.state import MemberDirectory, ProgramRegistry

__all__ = [
    "DEFAULT_RELAY_INTERVAL_S",
    "STREAM_MAXLEN",
    "JobReport",
    "JobRunner",
    "log_sender",
    "redis_sender",
    "stream_name",
]

logger = logging.getLogger("arbiter.jobs")

Send = Callable[[Sequence[OutboxEvent]], Awaitable[None]]
Clock = Callable[[], datetime]

# One run relays at most this many batches, so a backlog cannot starve the next run's expiry.
_MAX_RELAY_BATCHES: Final = 100
_RELAY_BATCH: Final = 500
#: The bound of each program's event stream (XADD MAXLEN ~: Redis trims whole nodes, so a stream
#: holds at least this many entries and a little more).
STREAM_MAXLEN: Final = 1_000_000
#: How often the relay runs on its own when events go to Redis.
DEFAULT_RELAY_INTERVAL_S: Final = 0.2


def stream_name(program_id: str) -> str:
    """The Redis stream of a program's events."""
    return f"arbiter:events:{program_id}"


@dataclass(frozen=True, slots=True)
class JobReport:
    """What one run did, per program for expiry and tiers, in total for the outbox."""

    expiry: dict[str, ExpiryReport]
    tiers: dict[str, TierPeriodReport]
    relayed: int


async def log_sender(events: Sequence[OutboxEvent]) -> None:
    """No Redis: the events are logged (DEBUG) and dropped once marked published."""
    for event in events:
        logger.debug(
            "event %d %s %s member=%s", event.id, event.program, event.topic, event.member_id
        )


def redis_sender(client: Any) -> Send:
    """XADD each event to `arbiter:events:{program}` in one pipeline per batch."""

    async def send(events: Sequence[OutboxEvent]) -> None:
        async with client.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(
                    stream_name(event.program),
                    {
                        "id": str(event.id),
                        "type": event.topic,
                        "member_id": event.member_id,
                        "occurred_at": event.created_at.isoformat(),
                        "data": json.dumps(dict(event.payload), separators=(",", ":")),
                    },
                    maxlen=STREAM_MAXLEN,
                    approximate=True,
                )
            await pipe.execute()

    return send


class JobRunner:
    """Runs the jobs every `interval_s` in a background task; `run_once` runs them now."""

    def __init__(
        self,
        ledger: Ledger,
        programs: ProgramRegistry,
        members: MemberDirectory,
        *,
        send: Send = log_sender,
        interval_s: float = 60.0,
        relay_interval_s: float = 0.0,
        clock: Clock | None = None,
    ) -> None:
        assert interval_s >= 0 and relay_interval_s >= 0
        self._relay_interval_s = relay_interval_s
        self._relay_task: asyncio.Task[None] | None = None
        self._ledger = ledger
        self._programs = programs
        self._members = members
        self._send = send
        self._interval_s = interval_s
        self._clock = clock or (lambda: datetime.now(UTC))
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, now: datetime | None = None) -> JobReport:
        """Expire lots and close tier periods of every applied program, then relay the outbox."""
        at = now or self._clock()
        expiry: dict[str, ExpiryReport] = {}
        tiers: dict[str, TierPeriodReport] = {}
        for program_id in self._programs.program_ids():
            program = self._programs.get(program_id).source
            if program is None:
                continue
            expired = await self._ledger.expire_lots(program, now=at)
            periods = await self._ledger.run_tier_periods(program, now=at)
            expiry[program_id], tiers[program_id] = expired, periods
            if expired.lots or periods.members or periods.changes:
                # The reports do not name members: forget the program's cache entries rather
                # than keep one that a job changed.
                self._members.invalidate(program_id)
        return JobReport(expiry, tiers, await self.relay(at))

    async def relay(self, now: datetime | None = None) -> int:
        """Move the outbox to the event sink now (a bounded number of batches): how many went.
        0 also when another replica holds the relay's claim."""
        at = now or self._clock()
        relayed = 0
        for _ in range(_MAX_RELAY_BATCHES):
            count = await self._ledger.relay_outbox(self._send, limit=_RELAY_BATCH, now=at)
            relayed += count
            if count < _RELAY_BATCH:
                break
        return relayed

    async def _relay_loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._relay_interval_s)
            try:
                await self.relay()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis or PostgreSQL down: the events wait in the outbox; logged once per outage.
                if not failing:
                    logger.warning("event relay failing (%s); events wait in the outbox", exc)
                failing = True
                continue
            if failing:
                logger.info("event relay working again")
            failing = False

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                report = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A failed run (storage down, Redis down) is retried at the next tick.
                logger.exception("periodic jobs failed; retrying in %.0f s", self._interval_s)
                continue
            if report.relayed or any(r.lots for r in report.expiry.values()):
                logger.info(
                    "jobs: %d lots expired, %d events relayed",
                    sum(r.lots for r in report.expiry.values()),
                    report.relayed,
                )

    def start(self) -> None:
        if self._interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="arbiter-jobs")
        if self._relay_interval_s > 0 and self._relay_task is None:
            self._relay_task = asyncio.create_task(self._relay_loop(), name="arbiter-relay")

    async def stop(self) -> None:
        tasks = (self._task, self._relay_task)
        self._task = self._relay_task = None
        for task in tasks:
            if task is None:
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
