"""The guard of tests/conftest.py: no process of the test session serves from a real data folder.

A server owns its data folder by writing its pid into `<folder>/arbiter.lock` (and clearing it
when it lets go; server/app/embedded_pg.py). The guard reads that file, never writes it, every
POLL_S from a thread of its own, and records each pid it finds there that is this process or
one of its descendants: a test (or a server it started, at any depth) that serves from the
user's folder. A pid of anything else (the user's own `make run`, another checkout's tests) is
not the session's doing and is ignored, so a real server running beside the suite never fails
it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from arbiter.server.app.embedded_pg import ROOT_DATA_DIR, default_data_dir

__all__ = ["POLL_S", "DataFolderGuard", "Trespass", "descends_from"]

# A server holds its folder from its lock to its stop: seconds, even when its start fails.
POLL_S = 0.02
LOCK_FILE = "arbiter.lock"


@dataclass(frozen=True, slots=True)
class Trespass:
    """A process of the session found holding a real data folder."""

    folder: Path
    pid: int
    command: str

    def __str__(self) -> str:
        return f"{self.folder} held by pid {self.pid} ({self.command})"


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether `pid` is `ancestor` or one of its descendants (by /proc: Linux)."""
    seen = 0
    current: int | None = pid
    while current and current > 1 and seen < 256:
        if current == ancestor:
            return True
        current = _parent(current)
        seen += 1
    return current == ancestor


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "gone"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:200]


class DataFolderGuard:
    """Watches the lock files of `folders` for pids of this process tree."""

    def __init__(self, folders: list[Path], *, root_pid: int | None = None) -> None:
        self.folders = tuple(folders)
        self.root_pid = os.getpid() if root_pid is None else root_pid
        self._found: list[Trespass] = []
        self._seen: set[tuple[Path, int]] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def of_environment(cls, env: Mapping[str, str]) -> DataFolderGuard:
        """The folders `arbiter serve` would use under `env`: its default data folder, the one
        under the home (~/.local/share/arbiter) and, for root, /var/lib/arbiter."""
        folders = {default_data_dir(env)}
        home = env.get("HOME")
        if home:
            folders.add(Path(home) / ".local" / "share" / "arbiter")
        if os.geteuid() == 0:
            folders.add(ROOT_DATA_DIR)
        return cls(sorted(folders))

    def look(self) -> None:
        """Read each lock file once; record a holder of this process tree."""
        for folder in self.folders:
            try:
                text = (folder / LOCK_FILE).read_text(errors="replace").strip()
            except OSError:
                continue
            if not text.isdigit():
                continue
            pid = int(text)
            if (folder, pid) in self._seen or not descends_from(pid, self.root_pid):
                continue
            with self._lock:
                self._seen.add((folder, pid))
                self._found.append(Trespass(folder, pid, _command(pid)))

    def take(self) -> list[Trespass]:
        """What was found since the last take (after one more look)."""
        self.look()
        with self._lock:
            found, self._found = self._found, []
        return found

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="data-folder-guard", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        while not self._stopping.wait(POLL_S):
            self.look()
