"""API keys and roles: who may call what (docs/api.md, "Authentication").

A caller sends `authorization: Bearer <key>`. Auth is on whenever a bootstrap admin key is
configured (ARBITER_ADMIN_KEY); then every arbiter.v1 RPC needs a live key whose role allows
it (`ROLE_RPCS`), while health and reflection stay open.

Per call the cost is one dict lookup of the presented header among those already verified;
a header not seen yet costs one SHA-256 and one lookup of the digest in the table of live keys
(`ApiKeys.authenticate`). The verified headers are forgotten whenever a key leaves the table.
The table is refreshed from PostgreSQL every `REFRESH_INTERVAL_S`, so a key revoked on another
replica stops working there within 1 s, and one created there works here within 1 s too; a
digest not in the table triggers an early refresh when the last one is older than
`MISS_REFRESH_S` (so a flood of wrong keys costs the database at most a few reads a second).

Keys are not compared character by character: the verified-header cache is a dict, whose lookup
compares a presented string only with one of equal SipHash (keyed per process), and the table
compares SHA-256 digests, where a timing difference could only tell an attacker about the
digest of their own guess, not about any stored key (finding a key from its digest's prefix is
a preimage search). The bootstrap key is compared with `hmac.compare_digest` where it is
compared directly (RevokeApiKey).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from arbiter.server.engine import FieldViolation
from arbiter.server.ledger import InvalidArgument
from arbiter.server.ledger import errors as ledger_errors
from arbiter.server.ledger.keys import ApiKeyStore, StoredKey

__all__ = [
    "BOOTSTRAP_NAME",
    "LOCAL",
    "MAX_KEY_NAME_CHARS",
    "REFRESH_INTERVAL_S",
    "ROLES",
    "ROLE_RPCS",
    "ApiKeys",
    "PermissionDenied",
    "Principal",
    "Unauthenticated",
    "caller",
    "caller_name",
    "hash_key",
    "roles_for",
]

logger = logging.getLogger("arbiter.auth")

ROLES: Final = ("pos", "app", "admin")

_CHECKOUT: Final = "arbiter.v1.CheckoutService"
_MEMBER: Final = "arbiter.v1.MemberService"

#: What each role may call besides `admin`, which may call everything: (service, method), with
#: method "*" for a whole service.
ROLE_RPCS: Final[dict[str, frozenset[tuple[str, str]]]] = {
    "pos": frozenset({(_CHECKOUT, "*"), (_MEMBER, "GetMember")}),
    "app": frozenset(
        {(_MEMBER, "GetMember"), (_MEMBER, "ListTransactions"), (_MEMBER, "GetExpiringPoints")}
    ),
    "admin": frozenset(),
}

BOOTSTRAP_NAME: Final = "admin"
MAX_KEY_NAME_CHARS: Final = 100
REFRESH_INTERVAL_S: Final = 0.5
MISS_REFRESH_S: Final = 0.25
_KEY_PREFIX: Final = "arb_"
_KEY_BYTES: Final = 32
_BEARER: Final = "bearer "
_MAX_VERIFIED: Final = 10_000


class Unauthenticated(Exception):
    """A missing, malformed, wrong or revoked credential."""


class PermissionDenied(Exception):
    """A valid key whose role does not allow the RPC."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's name (the audit journal's actor) and role."""

    name: str
    role: str


#: The caller when auth is off (no admin key configured: a loopback-only server).
LOCAL: Final = Principal("local", "admin")

_CALLER: contextvars.ContextVar[Principal] = contextvars.ContextVar("arbiter_caller", default=LOCAL)


def caller() -> Principal:
    """The authenticated caller of the RPC running in this task (LOCAL when auth is off)."""
    return _CALLER.get()


def caller_name(context: Any = None) -> str:
    """The authenticated key's name for the audit journal; "local" when auth is off.

    Each grpc.aio call runs in its own task, whose context the call wrapper sets; `context` (the
    servicer context) is accepted so that callers need not know that.
    """
    return _CALLER.get().name


def set_caller(principal: Principal) -> None:
    _CALLER.set(principal)


def roles_for(service: str, method: str) -> frozenset[str]:
    """The roles allowed to call `service`/`method` (admin always is)."""
    return frozenset(
        role
        for role, rpcs in ROLE_RPCS.items()
        if role == "admin" or (service, "*") in rpcs or (service, method) in rpcs
    )


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def new_key() -> str:
    """A fresh key: 256 random bits, URL-safe text."""
    return _KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)


def _bearer(metadata: Iterable[Any] | None) -> str | None:
    for item in metadata or ():
        if item[0] == "authorization":
            value = item[1]
            if isinstance(value, bytes):
                return None
            return value  # type: ignore[no-any-return]
    return None


class ApiKeys:
    """The live keys in memory, refreshed from the store; create and revoke."""

    def __init__(
        self,
        admin_key: str | None,
        store: ApiKeyStore | None = None,
        *,
        now: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = bool(admin_key)
        self._store = store
        self._now = now
        self._monotonic = monotonic
        self._bootstrap: dict[bytes, Principal] = {}
        if admin_key:
            self._bootstrap[hash_key(admin_key)] = Principal(BOOTSTRAP_NAME, "admin")
        self._by_digest: dict[bytes, Principal] = dict(self._bootstrap)
        # Headers already verified against the table (emptied whenever a key leaves it): the
        # next call with the same header costs one dict lookup, no hashing.
        self._verified: dict[str, Principal] = {}
        self._refreshed_at = float("-inf")
        self._refreshing: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def stored(self) -> bool:
        """Keys beyond the bootstrap one can be created (PostgreSQL is there)."""
        return self._store is not None

    # -- the per-call check ----------------------------------------------------------------------

    async def authenticate(self, metadata: Iterable[Any] | None) -> Principal:
        """The caller presenting `metadata`'s bearer key; Unauthenticated when none is valid."""
        value = _bearer(metadata)
        if value is not None:
            known = self._verified.get(value)
            if known is not None:
                return known
        if value is None or value[:7].lower() != _BEARER or len(value) > 1024:
            raise Unauthenticated(
                "missing credentials: send the metadata authorization: Bearer <key>"
            )
        digest = hash_key(value[7:].strip())
        principal = self._by_digest.get(digest)
        if principal is None and self._store is not None:
            await self._refresh_soon()
            principal = self._by_digest.get(digest)
        if principal is None:
            raise Unauthenticated("the API key is not valid (unknown or revoked)")
        if len(self._verified) < _MAX_VERIFIED:
            self._verified[value] = principal
        return principal

    # -- the table -------------------------------------------------------------------------------

    def _install(self, keys: Iterable[StoredKey]) -> None:
        table = {key.digest: Principal(key.name, key.role) for key in keys}
        table.update(self._bootstrap)
        if table != self._by_digest:
            self._by_digest = table
            self._verified = {}

    async def refresh(self) -> None:
        """Reload the live keys from the store (no-op without one)."""
        if self._store is None:
            return
        started = self._monotonic()
        keys = await self._store.live()
        self._install(keys)
        self._refreshed_at = started

    async def _refresh_soon(self) -> None:
        if self._monotonic() - self._refreshed_at < MISS_REFRESH_S:
            return
        task = self._refreshing
        if task is None or task.done():
            task = self._refreshing = asyncio.ensure_future(self._quiet_refresh())
        await asyncio.shield(task)

    async def _quiet_refresh(self) -> None:
        try:
            await self.refresh()
        except ledger_errors.StorageUnavailable as exc:
            # Keep the last table: keys keep working while PostgreSQL is away.
            self._refreshed_at = self._monotonic()
            logger.warning("API keys not refreshed: %s", exc)
        except Exception:  # the refresh loop must outlive any one failure
            self._refreshed_at = self._monotonic()
            logger.exception("API keys not refreshed")

    async def _loop(self, interval_s: float) -> None:
        while True:
            await self._quiet_refresh()
            await asyncio.sleep(interval_s)

    def start(self, interval_s: float = REFRESH_INTERVAL_S) -> None:
        """Refresh every `interval_s` in the background (when keys are stored and auth is on)."""
        if self._store is not None and self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(interval_s))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- create and revoke -----------------------------------------------------------------------

    def _stored_store(self) -> ApiKeyStore:
        if self._store is None:
            raise NotImplementedError("API keys need PostgreSQL storage")
        return self._store

    def _clock(self) -> datetime:
        if self._now is None:
            return datetime.now(UTC)
        return self._now()

    async def create(self, name: str, role: str) -> str:
        """A new key for `role` named `name`; returned once, only its digest is stored."""
        bad: list[FieldViolation] = []
        if role not in ROLES:
            bad.append(FieldViolation("role", f"must be one of {', '.join(ROLES)}"))
        if not name.strip():
            bad.append(
                FieldViolation("name", "required: the key's name, shown in the audit journal")
            )
        elif len(name) > MAX_KEY_NAME_CHARS or not name.isprintable():
            bad.append(FieldViolation("name", f"at most {MAX_KEY_NAME_CHARS} printable characters"))
        elif name == BOOTSTRAP_NAME or name == LOCAL.name:
            bad.append(FieldViolation("name", f"{name!r} is reserved"))
        if bad:
            raise InvalidArgument(bad)
        store = self._stored_store()
        key = new_key()
        stored = StoredKey(hash_key(key), name, role)
        await store.create(stored, self._clock())
        table = dict(self._by_digest)
        table[stored.digest] = Principal(name, role)
        self._by_digest = table
        return key

    async def revoke(self, key: str) -> Principal:
        """End `key` here at once (on other replicas within REFRESH_INTERVAL_S)."""
        if not key:
            raise InvalidArgument([FieldViolation("key", "required: the key to revoke")])
        digest = hash_key(key)
        if any(hmac.compare_digest(digest, d) for d in self._bootstrap):
            raise ledger_errors.FailedPrecondition(
                "the bootstrap admin key comes from ARBITER_ADMIN_KEY: change the variable and"
                " restart to replace it"
            )
        revoked = await self._stored_store().revoke(digest, self._clock())
        table = dict(self._by_digest)
        table.pop(digest, None)
        self._by_digest = table
        self._verified = {}
        return Principal(revoked.name, revoked.role)
