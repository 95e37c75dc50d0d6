"""The embedded PostgreSQL: real clusters in temporary folders, started, crashed and restarted."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from arbiter.server.app.embedded_pg import (
    BinariesNotFoundError,
    DataDirError,
    DataDirInUseError,
    EmbeddedPostgres,
    PortInUseError,
    PostgresStartError,
    default_data_dir,
)

SYSTEM_PG15_BIN = Path("/usr/lib/postgresql/15/bin")
GONE_TIMEOUT_S = 10.0


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not tmp_path: pytest's base folder is 0700, which the unprivileged account PostgreSQL runs
    # as under root could not traverse; the clusters of these tests live one level below.
    path = Path(tempfile.mkdtemp(prefix="arbiter-test-epg-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def _fetchval(dsn: str, sql: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def _postmaster_pid(pg: EmbeddedPostgres) -> int:
    return int((pg.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])


def _wait_gone(pid: int) -> None:
    """Wait until `pid` no longer runs (a zombie counts as gone: nobody may reap it here)."""
    deadline_s = time.monotonic() + GONE_TIMEOUT_S
    while time.monotonic() < deadline_s:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} still runs")


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_start_connect_stop(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir) as pg:
        port = pg.port
        assert pg.dsn == f"postgresql://postgres@127.0.0.1:{port}/arbiter"
        assert await _fetchval(pg.dsn, "SELECT 1") == 1
        assert await _fetchval(pg.dsn, "SELECT current_database()") == "arbiter"
        assert await _fetchval(pg.socket_dsn, "SELECT 2") == 2
        assert await _fetchval(pg.dsn, "SHOW server_encoding") == "UTF8"
        assert await _fetchval(pg.dsn, "SHOW listen_addresses") == "127.0.0.1"
        assert (pg.socket_dir / f".s.PGSQL.{port}").is_socket()
        assert pg.socket_dir.stat().st_mode & 0o777 == 0o700
    assert not pg.running
    assert not _port_open(port)
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()


async def test_restart_keeps_rows(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir) as pg:
        conn = await asyncpg.connect(pg.dsn)
        try:
            await conn.execute("CREATE TABLE kept (id int PRIMARY KEY, note text)")
            await conn.executemany("INSERT INTO kept VALUES ($1, $2)", [(1, "один"), (2, "two")])
        finally:
            await conn.close()
    with EmbeddedPostgres(data_dir) as pg:
        assert await _fetchval(pg.dsn, "SELECT string_agg(note, ',' ORDER BY id) FROM kept") == (
            "один,two"
        )


async def test_stale_pid_after_kill_9_is_recovered(data_dir: Path) -> None:
    first = EmbeddedPostgres(data_dir)
    first.start()
    await _fetchval(first.dsn, "CREATE TABLE survivor AS SELECT 42 AS answer")
    pid = _postmaster_pid(first)
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    first.stop()  # notices the postmaster is gone; lets go of the folder
    assert (data_dir / "pgdata" / "postmaster.pid").exists()
    with EmbeddedPostgres(data_dir) as second:
        assert await _fetchval(second.dsn, "SELECT answer FROM survivor") == 42


async def test_orphaned_postmaster_of_a_killed_arbiter_is_replaced(data_dir: Path) -> None:
    # An Arbiter killed with -9 leaves its postmaster running; the next one must take over.
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from arbiter.server.app.embedded_pg import EmbeddedPostgres
        EmbeddedPostgres(Path({str(data_dir)!r})).start()
        print("ready", flush=True)
        sys.stdin.read()
        """
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "ready"
    finally:
        owner.kill()
        owner.communicate()
    orphan_pid = int((data_dir / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0])
    os.kill(orphan_pid, 0)  # still alive
    with EmbeddedPostgres(data_dir) as pg:
        assert _postmaster_pid(pg) != orphan_pid
        assert await _fetchval(pg.dsn, "SELECT 1") == 1
    _wait_gone(orphan_pid)


async def test_second_owner_is_refused(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir) as pg:
        with pytest.raises(
            DataDirInUseError, match=f"in use by another Arbiter server.*{os.getpid()}"
        ):
            EmbeddedPostgres(data_dir).start()
        assert await _fetchval(pg.dsn, "SELECT 1") == 1
    # Released on stop: a new owner may come.
    with EmbeddedPostgres(data_dir) as pg:
        assert await _fetchval(pg.dsn, "SELECT 1") == 1


async def test_busy_port_is_reported(data_dir: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy_port = squatter.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {busy_port} .* already in use"):
            EmbeddedPostgres(data_dir, port=busy_port).start()
    # The failed start let go of the folder.
    with EmbeddedPostgres(data_dir) as pg:
        assert await _fetchval(pg.dsn, "SELECT 1") == 1


def test_missing_binaries_are_reported(data_dir: Path) -> None:
    empty_bin = data_dir / "bin"
    empty_bin.mkdir()
    with pytest.raises(BinariesNotFoundError, match="initdb, pg_ctl, postgres, psql"):
        EmbeddedPostgres(data_dir / "cluster", bin_dir=empty_bin).start()


def test_unusable_data_dir_is_reported(data_dir: Path) -> None:
    blocker = data_dir / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(DataDirError, match="ARBITER_DATA_DIR"):
        EmbeddedPostgres(blocker / "arbiter").start()


def test_default_data_dir_follows_xdg() -> None:
    assert default_data_dir({"XDG_DATA_HOME": "/srv/data"}) == Path("/srv/data/arbiter")
    # A relative XDG_DATA_HOME is invalid by the XDG spec and ignored.
    fallback = default_data_dir({"XDG_DATA_HOME": "relative"})
    assert fallback.is_absolute()
    assert fallback.name == "arbiter"
    if os.geteuid() == 0:
        assert fallback == Path("/var/lib/arbiter")


@pytest.mark.skipif(not (SYSTEM_PG15_BIN / "initdb").exists(), reason="no system PostgreSQL 15")
async def test_bin_dir_runs_the_machines_own_binaries(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir / "pg15", bin_dir=SYSTEM_PG15_BIN) as pg:
        version = await _fetchval(pg.dsn, "SHOW server_version_num")
        assert isinstance(version, str)
        assert version.startswith("15")
    # A cluster of 15 cannot be run by the wheel's 18: say so instead of failing obscurely.
    with pytest.raises(PostgresStartError, match=r"PostgreSQL 15 .* PostgreSQL 18"):
        EmbeddedPostgres(data_dir / "pg15").start()
