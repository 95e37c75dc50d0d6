"""The guard of tests/conftest.py: the real data folders, fingerprinted between tests."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from arbiter.server.app.embedded_pg import ROOT_DATA_DIR, default_data_dir

__all__ = ["DataFolderGuard", "Fingerprint", "fingerprint"]

# What a folder looks like from outside: its own and each direct entry's (inode, mtime, size).
# A server starting in a folder writes its lock file, log and pgdata/, so any start changes it.
Fingerprint = tuple[tuple[str, int, int, int], ...] | None


def fingerprint(folder: Path) -> Fingerprint:
    """None when `folder` does not exist; else the stat of it and of its direct entries."""
    try:
        info = folder.stat()
    except FileNotFoundError:
        return None
    rows = [("", info.st_ino, info.st_mtime_ns, info.st_size)]
    try:
        entries = sorted(folder.iterdir())
    except (NotADirectoryError, PermissionError):
        entries = []
    for entry in entries:
        try:
            item = entry.lstat()
        except FileNotFoundError:
            continue
        rows.append((entry.name, item.st_ino, item.st_mtime_ns, item.st_size))
    return tuple(rows)


@dataclass
class DataFolderGuard:
    """The real data folders, and what they looked like when the guard last looked."""

    folders: tuple[Path, ...]
    seen: dict[Path, Fingerprint]

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
        return cls.watching(sorted(folders))

    @classmethod
    def watching(cls, folders: list[Path]) -> DataFolderGuard:
        return cls(tuple(folders), {f: fingerprint(f) for f in folders})

    def changed(self) -> list[Path]:
        """The folders created or modified since the last look; then looks again."""
        now = {f: fingerprint(f) for f in self.folders}
        moved = [f for f in self.folders if now[f] != self.seen[f]]
        self.seen = now
        return moved
