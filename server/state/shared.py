"""Many replicas on one PostgreSQL and one Redis: the configuration bus and member invalidations.

PostgreSQL is the truth; Redis only carries news of it (docs/replicas.md):
- `arbiter:config`: after an Apply (or an import) has committed, the replica publishes
  `{"o": origin, "p": program, "v": version}`; every other replica reads the applied version
  from PostgreSQL and swaps to it. Each replica also compares its versions with PostgreSQL every
  `poll_s` (5 s), so a message lost, or Redis down, only delays the swap.
- `arbiter:members`: after a write, the replica that made it drops the member from its own
  cache at once and publishes `{"o": origin, "p": program, "m": member}` (a program-wide drop has
  no "m"), or `{"o", "p", "c": [codes]}` for uses of promo codes (no "c": every code); every
  other replica drops the same entries, exactly as the local write did.
- While this replica is not subscribed (Redis down, reconnecting) it cannot hear of others'
  writes: its member directory is bypassed (every quote reads PostgreSQL), and when the
  subscription comes back every cached member and code use is dropped, since messages may have
  been missed meanwhile. Health's service `arbiter.redis` says whether the link is up.

Messages are published from a queue by one task, so a write's `invalidate` never waits for
Redis; a message that cannot be sent is dropped (the receivers were cut off too, and drop
everything when they reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final

from arbiter.server.engine import CodeUsage, MemberState
from arbiter.server.state.config import Configuration
from arbiter.server.state.members import LedgerMemberDirectory, MemberDirectory
from arbiter.server.state.second import RedisMemberLevel

__all__ = [
    "CONFIG_CHANNEL",
    "DEFAULT_POLL_S",
    "MEMBERS_CHANNEL",
    "ConfigFollower",
    "RedisBus",
    "SharedMemberDirectory",
]

logger = logging.getLogger("arbiter.replicas")

CONFIG_CHANNEL: Final = "arbiter:config"
MEMBERS_CHANNEL: Final = "arbiter:members"
#: How often a replica compares its served versions with PostgreSQL, with or without Redis.
DEFAULT_POLL_S: Final = 5.0
#: Wait between attempts to reach Redis again.
RECONNECT_S: Final = 0.5
#: A silent connection is probed this often (a dead Redis is noticed within about this long).
_HEALTH_CHECK_S: Final = 1
#: Invalidations waiting to be published, at most (beyond: dropped, see the module docstring).
_MAX_QUEUED: Final = 100_000

OnConfig = Callable[[str, int], Awaitable[None]]
OnLink = Callable[[bool], Awaitable[None]]


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


class RedisBus:
    """One replica's publish/subscribe link to Redis (see the module docstring)."""

    def __init__(self, url: str, *, reconnect_s: float = RECONNECT_S) -> None:
        import redis.asyncio as aioredis

        self.origin = secrets.token_hex(8)
        self._url = url
        self._reconnect_s = reconnect_s
        self.client: Any = aioredis.from_url(
            url, health_check_interval=_HEALTH_CHECK_S, socket_connect_timeout=2,
            socket_timeout=5,
        )
        self.subscribed = False
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(_MAX_QUEUED)
        self._tasks: list[asyncio.Task[None]] = []
        self._members: SharedMemberDirectory | None = None
        #: The members' second level in Redis (server/state/second.py), when there is one.
        self.level: RedisMemberLevel | None = None
        self._on_config: OnConfig | None = None
        self._on_link: OnLink | None = None
        self.received = 0

    def attach(self, *, members: SharedMemberDirectory | None = None,
               on_config: OnConfig | None = None, on_link: OnLink | None = None) -> None:
        """Who hears what: remote invalidations, remote applies, and the link going up/down."""
        if members is not None:
            self._members = members
        if on_config is not None:
            self._on_config = on_config
        if on_link is not None:
            self._on_link = on_link

    # -- publishing ------------------------------------------------------------------------------

    def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Queue a message for the other replicas (never waits)."""
        message["o"] = self.origin
        try:
            self._queue.put_nowait((channel, _encode(message)))
        except asyncio.QueueFull:
            logger.warning("replica bus: %s message dropped (queue full)", channel)

    def config_applied(self, program_id: str, version: int) -> None:
        self.publish(CONFIG_CHANNEL, {"p": program_id, "v": version})

    async def _publisher(self) -> None:
        level = self.level
        while True:
            batch: list[tuple[str, bytes]] = []
            if level is not None:
                # Second-level invalidations waiting without a message (sent again after a
                # failure, or those of a link coming up) leave within this pause.
                with contextlib.suppress(TimeoutError):
                    batch.append(await asyncio.wait_for(self._queue.get(), self._reconnect_s))
            else:
                batch.append(await self._queue.get())
            while not self._queue.empty() and len(batch) < 500:
                batch.append(self._queue.get_nowait())
            drops = level.take() if level is not None else {}
            if not batch and not drops:
                continue
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    if level is not None:
                        # In one pipeline, before the messages: Redis runs them in order.
                        level.add_commands(pipe, drops)
                    for channel, data in batch:
                        pipe.publish(channel, data)
                    await pipe.execute()
            except asyncio.CancelledError:
                if level is not None:
                    level.not_sent(drops)
                raise
            except Exception as exc:
                if level is not None:
                    level.not_sent(drops)
                logger.debug("replica bus: %d message(s) not published: %s", len(batch), exc)
            else:
                if level is not None:
                    level.sent(drops)

    # -- listening -------------------------------------------------------------------------------

    async def _set_link(self, up: bool) -> None:
        if up == self.subscribed:
            return
        self.subscribed = up
        if up:
            logger.info("replica bus: subscribed to Redis")
            if self._members is not None:
                # Whatever was said while this replica was not listening is lost: forget all.
                self._members.forget_everything()
        else:
            logger.warning("replica bus: Redis unreachable; reading members from PostgreSQL")
        if self._on_link is not None:
            await self._on_link(up)

    async def _handle(self, channel: str, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("o") == self.origin:
            return
        self.received += 1
        program = message.get("p")
        if not isinstance(program, str):
            return
        if channel == MEMBERS_CHANNEL and self._members is not None:
            self._members.remote(program, message)
        elif channel == CONFIG_CHANNEL and self._on_config is not None:
            version = message.get("v")
            if isinstance(version, int):
                await self._on_config(program, version)

    async def _subscriber(self) -> None:
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CONFIG_CHANNEL, MEMBERS_CHANNEL)
                await self._set_link(True)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    channel = message["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    try:
                        await self._handle(channel, message["data"])
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        # A handler failing (PostgreSQL down during a swap): the poll catches up.
                        logger.exception("replica bus: handling a %s message failed", channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.subscribed:
                    logger.debug("replica bus: subscription lost: %s", exc)
                await self._set_link(False)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(self._reconnect_s)

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._publisher(), name="arbiter-bus-publish"),
                asyncio.create_task(self._subscriber(), name="arbiter-bus-subscribe"),
            ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self.client.aclose()


class SharedMemberDirectory:
    """A replica's member directory whose writes also reach the other replicas' caches.

    Wraps the local directory (`LedgerMemberDirectory`): `invalidate` / `invalidate_codes`
    drop the local entries at once and publish the same drop on `arbiter:members`; a message
    from another replica drops the same entries here. While the bus is not subscribed, reads
    bypass the local cache (see the module docstring).
    """

    def __init__(self, local: MemberDirectory, bus: RedisBus) -> None:
        self.local = local
        self._bus = bus
        self._programs: set[str] = set()
        bus.attach(members=self)
        self.level: RedisMemberLevel | None = None
        if isinstance(local, LedgerMemberDirectory):
            # Members also shared through Redis (docs/replicas.md, "Member state").
            self.level = RedisMemberLevel(bus.client, available=lambda: bus.subscribed)
            local.second = bus.level = self.level

    def __getattr__(self, name: str) -> Any:
        # hits, misses, cached(), codes: the local directory's.
        return getattr(self.local, name)

    async def get(self, program_id: str, member_id: str) -> MemberState:
        self._programs.add(program_id)
        if not self._bus.subscribed:
            self.local.invalidate(program_id, member_id)
        return await self.local.get(program_id, member_id)

    async def usage(
        self, program_id: str, member_id: str | None, codes: Sequence[str]
    ) -> CodeUsage | None:
        self._programs.add(program_id)
        if not self._bus.subscribed and codes:
            self.local.invalidate_codes(program_id, codes)
            if member_id:
                self.local.invalidate(program_id, member_id)
        return await self.local.usage(program_id, member_id, codes)

    def invalidate(self, program_id: str, member_id: str | None = None) -> None:
        self.local.invalidate(program_id, member_id)
        if self.level is not None:
            self.level.dropped(program_id, member_id)
        message: dict[str, Any] = {"p": program_id}
        if member_id is not None:
            message["m"] = member_id
        self._bus.publish(MEMBERS_CHANNEL, message)

    def invalidate_codes(self, program_id: str, codes: Iterable[str] | None = None) -> None:
        listed = None if codes is None else list(codes)
        self.local.invalidate_codes(program_id, listed)
        self._bus.publish(MEMBERS_CHANNEL, {"p": program_id, "c": listed})

    def remote(self, program_id: str, message: dict[str, Any]) -> None:
        """Another replica's drop, applied to the local cache only."""
        if "c" in message:
            codes = message["c"]
            self.local.invalidate_codes(
                program_id, None if codes is None else [str(c) for c in codes]
            )
            return
        member = message.get("m")
        self.local.invalidate(program_id, member if isinstance(member, str) else None)

    def forget_everything(self) -> None:
        """Drop every cached member and code use of every program read so far; and, in Redis,
        every program's entries: a write this replica made while cut off (or before it died and
        started again) may not have dropped its member's entry."""
        for program_id in list(self._programs):
            self.local.invalidate(program_id)
            self.local.invalidate_codes(program_id)
        if self.level is not None and isinstance(self.local, LedgerMemberDirectory):
            for program_id in self.local.programs.program_ids():
                self.level.dropped(program_id, None)


class ConfigFollower:
    """Keeps a replica on the applied versions in PostgreSQL: at once on a bus message, and by
    comparing every `poll_s` (works without Redis too). A swap drops the program's cached
    members here (their snapshots were read with the old version's point types and tiers)."""

    def __init__(self, config: Configuration, members: MemberDirectory, *,
                 poll_s: float = DEFAULT_POLL_S) -> None:
        self._config = config
        self._members = members.local if isinstance(members, SharedMemberDirectory) else members
        self._poll_s = poll_s
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def on_applied(self, program_id: str, version: int) -> None:
        """Another replica applied `version` (a bus message)."""
        served = self._config.served_version(program_id)
        if served is not None and served >= version:
            return
        async with self._lock:
            if await self._config.follow(program_id):
                self._swapped(program_id)

    async def check(self) -> list[str]:
        """Compare with PostgreSQL now; the programs swapped."""
        async with self._lock:
            swapped = await self._config.follow_all()
        for program_id in swapped:
            self._swapped(program_id)
        return swapped

    def _swapped(self, program_id: str) -> None:
        logger.info("program %r version %s served (applied by another replica)", program_id,
                    self._config.served_version(program_id))
        self._members.invalidate(program_id)

    async def _loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    logger.warning("configuration check failing (%s); retrying", exc)
                failing = True
                continue
            failing = False

    def start(self) -> None:
        if self._poll_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="arbiter-config-follow")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
