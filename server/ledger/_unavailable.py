"""Which foreign errors mean "PostgreSQL cannot be reached", translated to StorageUnavailable.

The ledger's facade and the state room (which keeps two small tables on the ledger's pool) share
this one list, so that a database that is down answers UNAVAILABLE whichever room noticed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import asyncpg

from arbiter.server.ledger.errors import StorageUnavailable

__all__ = ["UNAVAILABLE_ERRORS", "storage_errors"]

# Refused or lost connections (OSError covers ECONNREFUSED and a missing unix socket), a pool
# that timed out waiting, a connection the server ended (shutdown, crash of another backend,
# still starting) and too many clients. Nothing was committed by the statement that failed.
UNAVAILABLE_ERRORS: Final = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


@contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Raise StorageUnavailable, naming `what` was being read or written, for a database that
    cannot be reached; any other error passes unchanged."""
    try:
        yield
    except UNAVAILABLE_ERRORS as exc:
        raise StorageUnavailable(
            f"{what}: the database is unavailable ({exc}); retry when it is back"
        ) from exc
